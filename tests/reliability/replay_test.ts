/**
 * Replay of the write-ahead log after a crash: it reads back only the requests whose rows are not all in
 * objects, holds no more than the live bounds while doing so, and stores every acknowledged record exactly
 * once. Counted bounds only (requests replayed, bytes read, decoded bytes held, RSS against the sum of the
 * settings), no timings.
 *
 * The in-process tests "crash" an ingest by freezing its store and closing its log before it can write
 * anything more: what is durable then (the log's files, the objects) is what a kill -9 would leave. The
 * last tests kill the real server process.
 */

import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { decodeRequest } from "../../src/core/convert.ts";
import { Ingest, type IngestOptions } from "../../src/ingest/ingest.ts";
import { Wal } from "../../src/ingest/wal.ts";
import { loadParquetWasm } from "../../src/platforms/wasm.ts";
import { FsStore } from "../../src/storage/fs_store.ts";
import type { ObjectStore } from "../../src/storage/object_store.ts";
import { openDuckDb } from "../support/duckdb.ts";
import { countIds, parquetFilesUnder } from "./id_audit.ts";
import {
  anyValue,
  concat,
  idLogsRequest,
  ld,
  logRecord,
  logsRequest,
  resource,
  scope,
} from "./otlp_proto.ts";
import { type ServerProcess, spawnServer } from "./server_process.ts";

await loadParquetWasm();

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A store that fails every write once frozen: the moment of the simulated kill. */
class FreezableStore implements ObjectStore {
  frozen = false;
  constructor(readonly inner: ObjectStore) {}
  get description() {
    return this.inner.description;
  }
  put(key: string, bytes: Uint8Array) {
    return this.frozen ? Promise.reject(new Error("crashed")) : this.inner.put(key, bytes);
  }
  get(key: string) {
    return this.inner.get(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  delete(key: string) {
    return this.frozen ? Promise.reject(new Error("crashed")) : this.inner.delete(key);
  }
  check() {
    return this.inner.check();
  }
}

/** One running ingest over `dir` (`data/` for objects, `wal/` for the log). */
async function startIngest(
  dir: string,
  options: Partial<IngestOptions> & { rollReleasedBytes?: number } = {},
) {
  const store = new FreezableStore(new FsStore({ root: join(dir, "data") }));
  const wal = await Wal.open({
    dir: join(dir, "wal"),
    maxBytes: 1 << 30,
    segmentBytes: 4 * MiB,
    rollReleasedBytes: options.rollReleasedBytes ?? 1 << 30,
    sync: false,
  });
  const { ingest, replayed } = await Ingest.start({
    store,
    wal,
    maxRows: 1_000_000,
    maxAgeMs: 3_600_000,
    files: { instanceId: "replay-test" },
    retry: { initialMs: 1, maxMs: 5 },
    ...options,
  });
  return {
    ingest,
    wal,
    store,
    replayed,
    /** kill -9: nothing more reaches the store or the log. */
    async crash() {
      store.frozen = true;
      await wal.close();
      await ingest.close({ deadlineMs: 0 });
    },
  };
}

function logs(body: Uint8Array) {
  return {
    signal: "logs" as const,
    format: "protobuf" as const,
    body,
    decoded: decodeRequest("logs", body, { format: "protobuf" }),
  };
}

async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !done(); i++) await sleep(10);
  assert.ok(done(), `timed out waiting for ${what}`);
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** Sends `requests` requests of `size` records of `service`, ids `${prefix}${r}-${i}`, noted in `sent`. */
async function sendIds(ingest: Ingest, sent: string[], prefix: string, requests: number, size: number) {
  for (let r = 0; r < requests; r++) {
    const batch = ids(`${prefix}${r}`, size);
    sent.push(...batch);
    await ingest.accept(logs(idLogsRequest(prefix, batch)));
  }
}

/** One request with the ids `a` for service "a" and `b` for service "b" (two partitions). */
function twoServices(a: string[], b: string[]) {
  const records = (list: string[]) =>
    list.map((id) => logRecord({ timeMs: Date.now(), body: anyValue.string(id) }));
  return logs(logsRequest([{ service: "a", records: records(a) }, { service: "b", records: records(b) }]));
}

/** Asserts every id of `expected` is stored exactly once under `dir/data`, and nothing else. */
async function assertStoredOnce(dir: string, expected: string[]): Promise<void> {
  const counts = await countIds(parquetFilesUnder(join(dir, "data")));
  const wrong = expected.filter((id) => counts.get(id) !== 1);
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} records not stored exactly once`);
  assert.equal(counts.size, expected.length, "records stored that were never sent");
}

async function withDir(prefix: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("replay after a crash reads back only the requests whose rows are not all in objects", async () => {
  await withDir("o2p-replay-unflushed-", async (dir) => {
    const first = await startIngest(dir, { maxRows: 100 });
    const sent: string[] = [];
    // 10 requests of 100 records: each fills a batch, written at once.
    await sendIds(first.ingest, sent, "flushed", 10, 100);
    // One request half written: its 100 records of "a" fill a batch, its 10 of "b" stay open.
    const a = ids("partial-a", 100), b = ids("partial-b", 10);
    sent.push(...a, ...b);
    await first.ingest.accept(twoServices(a, b));
    // 5 requests that stay in open batches.
    await sendIds(first.ingest, sent, "open", 5, 10);
    await until("11 objects", () => first.ingest.stats().objects === 11);
    // The commit records are appended right after the writes.
    await sleep(50);
    await first.crash();

    const second = await startIngest(dir, { maxRows: 100 });
    assert.equal(second.replayed.requests, 6, "the half-written request and the 5 open ones");
    assert.equal(second.replayed.skipped, 10, "the written requests are neither read nor decoded");
    assert.equal(second.replayed.records, 110 + 50);
    assert.equal(second.replayed.redone, 0);
    await second.ingest.close();
    await assertStoredOnce(dir, sent);

    // Everything is written now: nothing is decoded again.
    const third = await startIngest(dir, { maxRows: 100 });
    assert.equal(third.replayed.requests, 0);
    await third.ingest.close();
    await assertStoredOnce(dir, sent);
  });
});

Deno.test("replay redoes a write cut off by the crash under its key, while batching the rest of its requests again", async () => {
  await withDir("o2p-replay-redo-", async (dir) => {
    const first = await startIngest(dir, { maxRows: 100 });
    const sent: string[] = [];
    await sendIds(first.ingest, sent, "before", 3, 100);
    await until("3 objects", () => first.ingest.stats().objects === 3);
    // The store fails from here: the next full batch gets its intent record, never its object.
    first.store.frozen = true;
    const a = ids("cut-a", 100), b = ids("cut-b", 10);
    sent.push(...a, ...b);
    const appends = first.wal.stats().appends;
    await first.ingest.accept(twoServices(a, b));
    await until("the intent record", () => first.wal.stats().appends === appends + 2);
    await first.crash();
    assert.equal(parquetFilesUnder(join(dir, "data")).length, 3);

    const second = await startIngest(dir, { maxRows: 100 });
    assert.equal(second.replayed.requests, 1);
    assert.equal(second.replayed.skipped, 3);
    assert.equal(second.replayed.redone, 1);
    await second.ingest.close();
    await assertStoredOnce(dir, sent);
    assert.equal(parquetFilesUnder(join(dir, "data")).length, 5, "3 before, the redone one, b's");
  });
});

Deno.test("a log that decodes to far more than the batch bounds replays within the live bounds", async () => {
  await withDir("o2p-replay-bounded-", async (dir) => {
    const sent: string[] = [];
    const bodies = Array.from({ length: 24 }, (_, r) => {
      const batch = ids(`amp${r}`, 1000);
      sent.push(...batch);
      return idLogsRequest(`svc${r % 4}`, batch);
    });
    const perRequest = Math.max(...bodies.map((b) => logs(b).decoded.tables[0].byteLength()));
    // Logged with bounds large enough that nothing is written before the crash.
    const first = await startIngest(dir, { maxBytes: 1 << 30, maxQueuedBytes: 1 << 30 });
    for (const body of bodies) await first.ingest.accept(logs(body));
    assert.equal(first.ingest.stats().objects, 0);
    await first.crash();

    const bounds = { maxBytes: perRequest, maxQueuedBytes: perRequest };
    const second = await startIngest(dir, bounds);
    const { peakHeldBytes } = second.ingest.stats();
    assert.equal(second.replayed.requests, 24);
    // What `admit` allows live: open batches, the queue, the batch being encoded, and the request that
    // arrives while they are full (its rows are added before the flush that makes room).
    const allowed = 2 * bounds.maxBytes + bounds.maxQueuedBytes + 2 * perRequest;
    const total = 24 * perRequest;
    assert.ok(total > 3 * allowed, `the log decodes to ${total} bytes, not far more than ${allowed}`);
    assert.ok(peakHeldBytes <= allowed, `replay held ${peakHeldBytes} decoded bytes, over ${allowed}`);
    await second.ingest.close();
    await assertStoredOnce(dir, sent);
  });
});

Deno.test("once every batch is written, the log's active segment is rolled away: a restart reads nothing", async () => {
  await withDir("o2p-replay-roll-", async (dir) => {
    const first = await startIngest(dir, { maxRows: 100, rollReleasedBytes: 0 });
    const sent: string[] = [];
    await sendIds(first.ingest, sent, "r", 10, 100);
    await until("10 objects", () => first.ingest.stats().objects === 10);
    await until("the log emptied", () => first.wal.stats().bytes === 0);
    assert.ok(first.wal.stats().releaseRolls >= 1);
    assert.equal(first.wal.stats().segments, 1);
    await first.crash();

    const second = await startIngest(dir, { maxRows: 100 });
    assert.deepEqual(second.replayed, { requests: 0, records: 0, redone: 0, skipped: 0, readBytes: 0 });
    await second.ingest.close();
    await assertStoredOnce(dir, sent);
  });
});

/** Environment of a real server storing under `dir`. */
function serverEnv(dir: string, extra: Record<string, string>): Record<string, string> {
  return {
    OTLP2PARQUET_STORAGE_PATH: join(dir, "data"),
    OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
    OTLP2PARQUET_WAL_MAX_BYTES: "256MiB",
    OTLP2PARQUET_LOG_LEVEL: "info",
    DENO_V8_FLAGS: "--max-semi-space-size=4",
    ...extra,
  };
}

async function post(server: ServerProcess, body: Uint8Array<ArrayBuffer>): Promise<void> {
  const r = await fetch(`${server.url}/v1/logs`, {
    method: "POST",
    headers: { "content-type": "application/x-protobuf", "content-encoding": "gzip" },
    body: gzipSync(body),
    signal: AbortSignal.timeout(120_000),
  });
  await r.arrayBuffer();
  assert.equal(r.status, 200);
}

/** The figures of the server's "replayed the write-ahead log" line; zeros if it logged none. */
function replayLine(server: ServerProcess): { requests: number; skipped: number } {
  const m = /replayed the write-ahead log requests=(\d+) .*skippedRequests=(\d+)/.exec(server.output());
  return { requests: Number(m?.[1] ?? 0), skipped: Number(m?.[2] ?? 0) };
}

Deno.test({
  name: "kill -9 of the server: a restart replays exactly the acknowledged requests not yet written",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withDir("o2p-replay-kill-", async (dir) => {
      let server: ServerProcess | undefined;
      try {
        const flushing = serverEnv(dir, { OTLP2PARQUET_BATCH_MAX_ROWS: "100" });
        const holding = serverEnv(dir, {
          OTLP2PARQUET_BATCH_MAX_ROWS: "1000000",
          OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600",
        });
        const sent: string[] = [];
        server = await spawnServer(flushing);
        for (let r = 0; r < 30; r++) {
          const batch = ids(`w${r}`, 100);
          sent.push(...batch);
          await post(server, idLogsRequest("written", batch));
        }
        await until("30 objects", () => parquetFilesUnder(join(dir, "data")).length === 30);
        await sleep(200); // the last commit record
        await server.kill();

        server = await spawnServer(holding);
        assert.equal(replayLine(server).requests, 0, "written requests are not replayed");
        for (let r = 0; r < 7; r++) {
          const batch = ids(`u${r}`, 10);
          sent.push(...batch);
          await post(server, idLogsRequest("unwritten", batch));
        }
        await server.kill();

        server = await spawnServer(holding);
        assert.equal(replayLine(server).requests, 7, "exactly the 7 unwritten requests are replayed");
        assert.equal(await server.stop(), 0);
        server = undefined;
        await assertStoredOnce(dir, sent);
      } finally {
        await server?.kill();
      }
    });
  },
});

/**
 * A logs request of `n` empty LogRecords (2 bytes a record on the wire, ~60 decoded) and one record
 * dated `tag` ms after 1970, which keeps the objects of different requests apart (object keys are
 * a hash of their bytes: identical objects would be one).
 */
function emptyRecords(n: number, tag: number): Uint8Array<ArrayBuffer> {
  const records = new Uint8Array(n * 2);
  for (let i = 0; i < records.length; i += 2) records[i] = 0x12; // field 2 (log_records), length 0
  const scopeLogs = concat(ld(1, scope("amplified")), records, ld(2, logRecord({ timeMs: tag })));
  return concat(ld(1, concat(ld(1, resource("amplified")), ld(2, scopeLogs))));
}

/**
 * What a worker thread adds to the bound (docs/operations.md, sizing): its runtime at rest (~25 MiB with
 * Deno, measured) and the garbage its heap holds until it next collects (the job buffers it is given are
 * freed at once, the encoder's own are not): measured ~65 MiB a worker after this replay.
 */
const WORKER_THREAD_MIB = 75;

/** The replay's peak RSS with `workers` threads (1: none) against the bounds. */
function amplifyingReplay(workers: number): () => Promise<void> {
  return async () => {
    await withDir("o2p-replay-rss-", async (dir) => {
      const REQUESTS = 40, RECORDS = 100_000;
      const bounds = {
        OTLP2PARQUET_MAX_PAYLOAD_BYTES: "4MiB",
        OTLP2PARQUET_MAX_INFLIGHT_BYTES: "16MiB",
        OTLP2PARQUET_BATCH_MAX_BYTES: "8MiB",
        OTLP2PARQUET_BATCH_MAX_QUEUED_BYTES: "8MiB",
        OTLP2PARQUET_BATCH_MAX_PENDING_BYTES: "8MiB",
        OTLP2PARQUET_BATCH_MAX_ROWS: "100000000",
        OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600",
        OTLP2PARQUET_WORKERS: String(workers),
      };
      // Same bounds as hostile_memory_test sums them: in flight twice (body and decoded rows), open
      // batches, queue, the batch being encoded, pending objects, and 64 MiB of runtime slack; with worker
      // threads, the copy of the batches they encode (within batch.max_bytes together) and each thread.
      const threads = workers > 1 ? 8 + workers * WORKER_THREAD_MIB : 0;
      const allowedKiB = (2 * 16 + 8 + 8 + 8 + 8 + 64 + threads) * 1024;
      let server: ServerProcess | undefined;
      try {
        // Logged by a server whose batches hold everything (1 GiB): the log decodes to ~240 MiB.
        server = await spawnServer(serverEnv(dir, {
          ...bounds,
          OTLP2PARQUET_WAL_MAX_BYTES: "2GiB",
          OTLP2PARQUET_MAX_INFLIGHT_BYTES: "1GiB",
          OTLP2PARQUET_BATCH_MAX_BYTES: "1GiB",
          OTLP2PARQUET_BATCH_MAX_QUEUED_BYTES: "1GiB",
        }));
        for (let r = 0; r < REQUESTS; r++) await post(server, emptyRecords(RECORDS, r + 1));
        const loggedPeakKiB = server.memory().peakKiB;
        await server.kill();

        // The replay happens before the server listens: its peak is what the new process reached.
        server = await spawnServer(serverEnv(dir, { ...bounds, OTLP2PARQUET_WAL_MAX_BYTES: "2GiB" }));
        const restKiB = server.memory().rssKiB;
        assert.equal(replayLine(server).requests, REQUESTS);
        const peakKiB = server.memory().peakKiB;
        assert.equal(await server.stop(), 0);
        server = undefined;
        console.log(
          `replay of ${REQUESTS} x ${RECORDS} empty records, ${workers} worker(s): peak RSS ${
            (peakKiB / 1024).toFixed(0)
          } MiB ` +
            `(listening at ${(restKiB / 1024).toFixed(0)} MiB); the server that logged them peaked at ` +
            `${(loggedPeakKiB / 1024).toFixed(0)} MiB`,
        );
        assert.ok(
          peakKiB <= 100 * 1024 + allowedKiB,
          `peak RSS ${peakKiB} KiB over the ${
            100 * 1024 + allowedKiB
          } KiB allowed (100 MiB at rest + bounds)`,
        );
        const db = await openDuckDb();
        try {
          const list = parquetFilesUnder(join(dir, "data")).map((f) => `'${f}'`).join(", ");
          const [row] = await db.rows(`SELECT count(*)::BIGINT AS n FROM read_parquet([${list}])`);
          assert.equal(Number(row.n), REQUESTS * (RECORDS + 1), "every replayed record stored once");
        } finally {
          db.close();
        }
      } finally {
        await server?.kill();
      }
    });
  };
}

Deno.test({
  name: "kill -9 with a log of amplifying requests: the restart's RSS stays within the live bounds",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: amplifyingReplay(1),
});

Deno.test({
  name:
    "kill -9 with a log of amplifying requests, two worker threads: the restart's RSS stays within the bounds",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: amplifyingReplay(2),
});
