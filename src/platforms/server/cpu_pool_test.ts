/**
 * The CPU worker pool with real worker threads: decodes and encodes give what the main thread's own
 * functions give (rows, Parquet bytes, errors and their messages), a worker holds at most its bound of
 * jobs however many wait, a refused budget cancels a decode, and a worker that dies fails its decodes
 * with 503, retries its encodes elsewhere and is replaced.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { decodeRequest, decodeRequestAsync, encodeBatch } from "../../core/convert.ts";
import { DecodeLimitError } from "../../core/decode/decode_limits.ts";
import { DecodeError } from "../../core/errors.ts";
import { inSharedMemory } from "../../core/table/columns.ts";
import type { Rows } from "../../core/table/rows.ts";
import { crc32c } from "../../codecs/crc32c.ts";
import { requestId } from "../../ingest/dedupe.ts";
import { OverloadedError, UnavailableError } from "../../ingest/errors.ts";
import { FORMAT_CODES, SIGNAL_CODES } from "../../ingest/sink.ts";
import { prepareParquet } from "../wasm.ts";
import { encodeJob } from "./cpu_jobs.ts";
import { CpuPool } from "./cpu_pool.ts";

const DATA = fileURLToPath(new URL("../../../../shared/testdata/otlp2parquet-rust/", import.meta.url));
const LOGS = readFileSync(DATA + "logs.pb");
const TRACES = readFileSync(DATA + "traces.pb");
const METRICS = readFileSync(DATA + "metrics_mixed.pb");
const now = () => Promise.resolve();
const all = (rows: Rows) => Uint32Array.from({ length: rows.length }, (_, i) => i);
const FILES = { instanceId: "t", compression: "zstd" as const };

/** A pool for one test, closed after it (the threads would keep the test's process alive). */
async function withPool(size: number, fn: (pool: CpuPool) => Promise<void>, maxJobsPerWorker = 2) {
  await prepareParquet("zstd");
  const pool = new CpuPool({ size, compression: "zstd", maxJobsPerWorker });
  try {
    await fn(pool);
  } finally {
    pool.close();
  }
}

Deno.test("CpuPool decodes and encodes exactly as the main thread does, for every signal", async () => {
  await withPool(2, async (pool) => {
    for (const [signal, body] of [["logs", LOGS], ["traces", TRACES], ["metrics", METRICS]] as const) {
      const here = decodeRequest(signal, body, { format: "protobuf" });
      const reported: number[] = [];
      const there = await pool.decode(signal, body, {
        format: "protobuf",
        pause: now,
        onDecodedBytes: (n) => void reported.push(n),
      });
      assert.equal(there.records, here.records);
      assert.equal(there.tables.length, here.tables.length);
      // The body's checksum and identity, computed in the worker, are what the log and the ingest compute.
      assert.equal(there.bodyCrc, crc32c(body));
      assert.deepEqual(
        there.id,
        requestId(SIGNAL_CODES.indexOf(signal), FORMAT_CODES.indexOf("protobuf"), body),
      );
      assert.ok(reported.length > 0, "decoded bytes are reported to the main thread");
      // The caller's body is left as it was (the worker got a copy).
      assert.equal(body.byteLength > 0, true);
      for (let t = 0; t < here.tables.length; t++) {
        const a = await encodeBatch([{ rows: here.tables[t], indices: all(here.tables[t]) }], FILES);
        const b = await encodeBatch([{ rows: there.tables[t], indices: all(there.tables[t]) }], FILES);
        assert.deepEqual(b.bytes, a.bytes, `${signal}: rows decoded in a worker encode the same`);
        // Encoded in a worker: the same object, and the rows stay usable here.
        const c = await pool.encode([{ rows: here.tables[t], indices: all(here.tables[t]) }], FILES);
        assert.equal(c.key, a.key);
        assert.deepEqual(c.bytes, a.bytes);
        assert.equal(here.tables[t].length, a.rows);
      }
    }
    const s = pool.stats();
    assert.equal(s.workers, 2);
    assert.ok(s.busySeconds.reduce((x, y) => x + y, 0) > 0);
    assert.ok(s.encodeCopyBytes > 0);
  });
});

Deno.test("CpuPool: rows a worker decoded are in shared memory, and an encode reads them there, uncopied", async () => {
  await withPool(2, async (pool) => {
    for (const [signal, body] of [["logs", LOGS], ["traces", TRACES], ["metrics", METRICS]] as const) {
      const here = decodeRequest(signal, body, { format: "protobuf" });
      const there = await pool.decode(signal, body, { format: "protobuf", pause: now });
      for (let t = 0; t < here.tables.length; t++) {
        const rows = there.tables[t];
        rows.compact(); // as the ingest does on accepting a request: cut to size already, they stay shared
        assert.equal(inSharedMemory(rows.snapshot("view")), true, `${signal}: decoded into shared memory`);
        // All of the rows, every other row, and each partition alone (what a batch holds of a request).
        const every = all(rows), half = every.filter((i) => i % 2 === 0);
        for (const indices of [every, half, ...rows.rowsByPartition()]) {
          const expected = await encodeBatch([{ rows: here.tables[t], indices }], FILES);
          const copied = pool.stats().encodeCopyBytes;
          const file = await pool.encode([{ rows, indices }], FILES);
          assert.deepEqual(file.bytes, expected.bytes, `${signal} ${rows.def.name}: the same Parquet`);
          // Copied: the row numbers, and a few small per-column caches (under 1 KiB), not the rows.
          const extra = pool.stats().encodeCopyBytes - copied - indices.byteLength;
          assert.ok(extra >= 0 && extra < 1024, `${extra} bytes copied besides the row numbers`);
        }
      }
    }
    // A job for one partition of a request carries that partition only, not the request's others.
    const logs = (await pool.decode("logs", LOGS, { format: "protobuf", pause: now })).tables[0];
    const byPart = logs.rowsByPartition();
    assert.ok(byPart.length > 1, "the test's logs span several partitions");
    const job = encodeJob(1, [{ rows: logs, indices: byPart[1] }], FILES);
    assert.deepEqual(Object.keys(job.message.rows[0].parts), ["1"]);
    assert.deepEqual(job.message.rows[0].parts[1], logs.parts[1]);
    // Rows decoded in this thread (a replay's) are copied for the worker, as before.
    const mine = decodeRequest("logs", LOGS, { format: "protobuf" }).tables[0];
    const copied = pool.stats().encodeCopyBytes;
    await pool.encode([{ rows: mine, indices: all(mine) }], FILES);
    assert.ok(pool.stats().encodeCopyBytes - copied > mine.byteLength() / 2);
    // A worker that dies while encoding shared rows: the encode is retried from the same memory.
    const rows = (await pool.decode("logs", LOGS, { format: "protobuf", pause: now })).tables[0];
    const expected = await encodeBatch([{ rows, indices: all(rows) }], FILES);
    pool.crashForTest(0);
    pool.crashForTest(1);
    assert.deepEqual((await pool.encode([{ rows, indices: all(rows) }], FILES)).bytes, expected.bytes);
  });
});

Deno.test("CpuPool gives back a worker's decode errors as the same classes and messages", async () => {
  await withPool(1, async (pool) => {
    const bad = new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]);
    const expected = await decodeRequestAsync("logs", bad, { format: "protobuf", pause: now }).then(
      () => assert.fail("decoded"),
      (e) => e,
    );
    assert.ok(expected instanceof DecodeError);
    await assert.rejects(pool.decode("logs", bad, { format: "protobuf", pause: now }), (e) => {
      assert.ok(e instanceof DecodeError);
      assert.equal((e as Error).message, expected.message);
      return true;
    });
    const json = new TextEncoder().encode('{"resourceLogs": [}');
    const jsonError = await decodeRequestAsync("logs", json, { format: "json", pause: now }).catch((e) => e);
    await assert.rejects(pool.decode("logs", json, { format: "json", pause: now }), (e) => {
      assert.ok(e instanceof DecodeError);
      assert.equal((e as Error).message, jsonError.message);
      return true;
    });
    const limit = await decodeRequestAsync("logs", LOGS, {
      format: "protobuf",
      pause: now,
      maxDecodedBytes: 1000,
    })
      .catch((e) => e);
    assert.ok(limit instanceof DecodeLimitError);
    await assert.rejects(
      pool.decode("logs", LOGS, { format: "protobuf", pause: now, maxDecodedBytes: 1000 }),
      (e) => e instanceof DecodeLimitError && e.message === limit.message,
    );
  });
});

Deno.test("CpuPool: a worker holds at most its bound of jobs however many wait, and all complete", async () => {
  // A large body: 40 copies of the logs request's records in one request.
  const body = new Uint8Array(LOGS.length * 40);
  for (let i = 0; i < 40; i++) body.set(LOGS, i * LOGS.length);
  const records = decodeRequest("logs", body, { format: "protobuf" }).records;
  await withPool(2, async (pool) => {
    const results = await Promise.all(
      Array.from({ length: 24 }, () => pool.decode("logs", body, { format: "protobuf", pause: now })),
    );
    for (const d of results) assert.equal(d.records, records);
    const s = pool.stats();
    assert.ok(s.peakJobsPerWorker <= 2, `a worker held ${s.peakJobsPerWorker} jobs`);
    assert.ok(s.peakQueued >= 24 - 4, `only ${s.peakQueued} jobs waited in the main thread`);
    assert.equal(s.inFlight, 0);
    assert.equal(s.queued, 0);
  });
});

Deno.test("CpuPool: with `move`, a body owning its buffer goes to the worker and back uncopied", async () => {
  await withPool(1, async (pool) => {
    const options = { format: "protobuf" as const, pause: now };
    const expected = decodeRequest("logs", LOGS, { format: "protobuf" }).records;
    // Owns its buffer: moved. The caller's view is detached; the same bytes come back as `body`.
    const owned = new Uint8Array(LOGS);
    const buffer = owned.buffer;
    const moved = await pool.decode("logs", owned, options, true);
    assert.equal(buffer.detached, true, "the body was moved, not copied");
    assert.equal(owned.byteLength, 0);
    assert.ok(moved.body);
    assert.deepEqual(moved.body, new Uint8Array(LOGS));
    assert.equal(moved.records, expected);
    assert.equal(moved.bodyCrc, crc32c(LOGS));
    // A view into a larger buffer (other data around it): copied, the caller's bytes untouched.
    const larger = new Uint8Array(LOGS.length + 16);
    larger.set(LOGS, 8);
    const view = larger.subarray(8, 8 + LOGS.length);
    const copied = await pool.decode("logs", view, options, true);
    assert.equal(larger.buffer.detached, false);
    assert.equal(copied.body, undefined);
    assert.deepEqual(view, new Uint8Array(LOGS));
    assert.equal(copied.records, expected);
    // Without `move`: copied, whatever the buffer.
    const kept = new Uint8Array(LOGS);
    const plain = await pool.decode("logs", kept, options);
    assert.equal(kept.buffer.detached, false);
    assert.equal(plain.body, undefined);
    assert.equal(plain.records, expected);
    // A decode error with `move`: the 400 as in-thread (the moved body is the worker's to drop).
    const bad = new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    await assert.rejects(pool.decode("logs", bad, options, true), DecodeError);
  });
});

Deno.test("CpuPool: a refused budget fails the decode with the refusal and cancels the worker's job", async () => {
  const body = new Uint8Array(LOGS.length * 200);
  for (let i = 0; i < 200; i++) body.set(LOGS, i * LOGS.length);
  await withPool(1, async (pool) => {
    const refusal = new OverloadedError("too much data in flight; retry later");
    await assert.rejects(
      pool.decode("logs", body, {
        format: "protobuf",
        pause: now,
        onDecodedBytes: (n) => {
          if (n > 100_000) throw refusal;
        },
      }),
      (e) => e === refusal,
    );
    // The worker stopped that job and takes the next.
    const d = await pool.decode("logs", LOGS, { format: "protobuf", pause: now });
    assert.ok(d.records > 0);
    assert.equal(pool.stats().inFlight, 0);
  });
});

Deno.test("CpuPool: a worker that dies fails its decodes with 503, retries its encodes, and is replaced", async () => {
  await withPool(1, async (pool) => {
    const rows = decodeRequest("logs", LOGS, { format: "protobuf" }).tables[0];
    const expected = await encodeBatch([{ rows, indices: all(rows) }], FILES);
    pool.crashForTest(0);
    const decode = pool.decode("logs", LOGS, { format: "protobuf", pause: now });
    await assert.rejects(decode, (e) => e instanceof UnavailableError);
    assert.equal(pool.stats().restarts, 1);
    pool.crashForTest(0);
    const encoded = await pool.encode([{ rows, indices: all(rows) }], FILES);
    assert.deepEqual(encoded.bytes, expected.bytes);
    assert.equal(pool.stats().restarts, 2);
    const d = await pool.decode("logs", LOGS, { format: "protobuf", pause: now });
    assert.ok(d.records > 0);
    // The replacement has loaded its modules; a pool whose thread never says so is not ready.
    assert.equal(await pool.ready(), true);
  });
});

Deno.test("CpuPool.ready() waits for every thread to load its modules, and gives up after its timeout", async () => {
  await withPool(2, async (pool) => {
    assert.equal(await pool.ready(), true);
  });
  // A worker module that never answers "ready" (it loads, but ignores the init).
  const silent = URL.createObjectURL(new Blob(["self.onmessage = () => {};"], { type: "text/javascript" }));
  const pool = new CpuPool({ size: 1, compression: "zstd", workerUrl: silent });
  try {
    assert.equal(await pool.ready(200), false);
  } finally {
    pool.close();
    URL.revokeObjectURL(silent);
  }
});

Deno.test("CpuPool.close() fails what is waiting with 503 and ends the threads", async () => {
  await prepareParquet("zstd");
  const pool = new CpuPool({ size: 1, compression: "zstd" });
  const pending = Array.from(
    { length: 4 },
    () => pool.decode("logs", LOGS, { format: "protobuf", pause: now }),
  );
  pool.close();
  for (const p of pending) await assert.rejects(p, (e) => e instanceof UnavailableError);
  await assert.rejects(pool.decode("logs", LOGS, { format: "protobuf", pause: now }), UnavailableError);
});
