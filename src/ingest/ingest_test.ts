import assert from "node:assert/strict";
import { tableFromIPC } from "apache-arrow";
import { readParquet } from "parquet-wasm/esm";
import { decodeRequest, encodeBatch } from "../core/convert.ts";
import { loadParquetWasm } from "../platforms/wasm.ts";
import { MemoryStore } from "../storage/memory_store.ts";
import { createHandler } from "../http/handler.ts";
import { UnavailableError } from "./errors.ts";
import { Ingest, type IngestOptions } from "./ingest.ts";
import type { RequestLimits } from "./request_limits.ts";
import { BASE_HOUR, consecutiveHours, hoursRequest } from "./testdata/spread_requests.ts";
import { Wal } from "./wal.ts";
import { crc32c } from "../codecs/crc32c.ts";
import { requestId } from "./dedupe.ts";

await loadParquetWasm();
const enc = new TextEncoder();

/** A logs request with `perService` records for each of two services, as the handler hands it over. */
function request(seed: number, perService: number) {
  const resource = (service: string) => ({
    resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
    scopeLogs: [{
      logRecords: Array.from({ length: perService }, (_, i) => ({
        timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(seed * 1_000_000 + i)),
        body: { stringValue: `${service} record ${seed}/${i} ${"x".repeat(200)}` },
      })),
    }],
  });
  const body = enc.encode(JSON.stringify({ resourceLogs: [resource("big"), resource("small")] }));
  const decoded = decodeRequest("logs", body, { format: "json" });
  return { signal: "logs" as const, format: "json" as const, body, decoded };
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(done(), "timed out");
}

Deno.test("Ingest writes the batches that share requests together when the byte bound is passed", async () => {
  const store = new MemoryStore();
  const first = request(1, 400);
  const bytes = first.decoded.tables[0].byteLength();
  // Room for a bit more than one request: the second passes the bound.
  const { ingest } = await Ingest.start({
    store,
    maxBytes: Math.ceil(bytes * 1.5),
    maxRows: 1_000_000,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
  });
  try {
    await ingest.accept(first);
    assert.equal(ingest.stats().openBatches, 2);
    await ingest.accept(request(2, 400));
    // Both services' batches hold rows of both requests: flushing only the largest would free nothing.
    assert.equal(ingest.stats().openBatches, 0, "both batches flushed together");
    assert.equal(ingest.stats().bufferedBytes, 0);
    await until(() => ingest.stats().objects === 2);
    const keys = await store.list("");
    assert.deepEqual(keys.map((k) => k.split("/")[1]).sort(), ["big", "small"]);
    assert.equal(ingest.stats().objectRows, 1600);
  } finally {
    await ingest.close();
  }
});

Deno.test("Ingest keeps batches of unrelated requests open when the bound is passed", async () => {
  const store = new MemoryStore();
  const one = (service: string, seed: number) => {
    const body = enc.encode(JSON.stringify({
      resourceLogs: [{
        resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
        scopeLogs: [{
          logRecords: Array.from({ length: service === "big" ? 500 : 300 }, (_, i) => ({
            timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(seed * 1_000_000 + i)),
            body: { stringValue: `${service} ${i} ${"y".repeat(200)}` },
          })),
        }],
      }],
    }));
    return {
      signal: "logs" as const,
      format: "json" as const,
      body,
      decoded: decodeRequest("logs", body, { format: "json" }),
    };
  };
  const small = one("small", 1), big = one("big", 2);
  const bound = small.decoded.tables[0].byteLength() + big.decoded.tables[0].byteLength() - 1;
  const { ingest } = await Ingest.start({
    store,
    maxBytes: bound,
    maxRows: 1_000_000,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
  });
  try {
    await ingest.accept(small);
    await ingest.accept(big);
    // Over the bound: the largest batch goes; the other shares no request with it and stays open.
    assert.equal(ingest.stats().openBatches, 1);
    await until(() => ingest.stats().objects === 1);
    assert.equal((await store.list(""))[0].split("/")[1], "big");
  } finally {
    await ingest.close();
  }
});

Deno.test("Ingest.accept() opens at most maxPartitions batches for 20,000 records in 20,000 hours", async () => {
  const store = new MemoryStore();
  const { ingest } = await Ingest.start({ store, maxAgeMs: 3_600_000, files: { instanceId: "test" } });
  try {
    const out = await ingest.accept(hoursRequest(consecutiveHours(20_000)));
    assert.equal(out.rejected, 20_000 - 128);
    assert.match(
      out.rejectMessage,
      /19872 records refused: the request spans 20000 partitions .* at most 128/,
    );
    assert.equal(ingest.stats().openBatches, 128);
    await ingest.flushAll();
    assert.equal(store.size, 128);
    assert.equal(ingest.stats().objectRows, 128);
    assert.equal(ingest.stats().rejected, 20_000 - 128);
  } finally {
    await ingest.close();
  }
});

Deno.test("Ingest cuts the oldest open batch when opening one more would pass maxOpenBatches", async () => {
  const store = new MemoryStore();
  const { ingest } = await Ingest.start({
    store,
    maxOpenBatches: 4,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
  });
  try {
    for (let i = 0; i < 10; i++) {
      await ingest.accept(hoursRequest([BASE_HOUR + i]));
      assert.ok(ingest.stats().openBatches <= 4, `${ingest.stats().openBatches} open batches`);
    }
    // Hours 0..5 were cut early, oldest first; 6..9 are still open.
    await until(() => ingest.stats().objects === 6);
    const hours = (await store.list("")).map((k) => /hour=(\d+)/.exec(k)![1]).sort();
    assert.deepEqual(hours, ["00", "01", "02", "03", "22", "23"]);
    assert.equal(ingest.stats().openBatches, 4);
  } finally {
    await ingest.close();
  }
});

Deno.test("Ingest.admit() refuses with 503 before decoding while the encode queue is over its bound", async () => {
  const store = new MemoryStore();
  // The encoder stops at its first page until the gate opens: one batch is being encoded, the next waits.
  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  const { ingest } = await Ingest.start({
    store,
    maxRows: 10,
    maxQueuedBytes: 1,
    maxOpenBatches: 2,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
    encodePause: () => gate,
  });
  const handler = createHandler({ sink: ingest });
  const post = (body: string) =>
    handler(
      new Request("http://x/v1/logs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      }),
    );
  try {
    // 20 records in one hour: the batch reaches maxRows and is cut. Being encoded, it is not waiting: its
    // rows are the memory bound's "batch being encoded", so requests are still admitted.
    await ingest.accept(hoursRequest(Array(20).fill(BASE_HOUR)));
    await until(() => ingest.stats().queuedBatches === 1);
    ingest.admit(100)();
    assert.equal(ingest.ready(), true);
    // A second request's batch is cut while the first is encoded: its rows wait, over the 1-byte bound.
    await ingest.accept(hoursRequest(Array(20).fill(BASE_HOUR + 1)));
    assert.equal(ingest.stats().queuedBatches, 2);
    assert.ok(ingest.stats().queuedBytes > 1);
    assert.throws(() => ingest.admit(100), (e) => e instanceof UnavailableError && e.retryAfterSecs === 2);
    assert.equal(ingest.ready(), false);
    // Refused before the body is read: an undecodable body gets 503, not 400.
    const refused = await post("not json");
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get("retry-after"), "2");
    assert.match((await refused.json()).message, /encoding is behind \(2 batches/);
    assert.equal(ingest.stats().inflightBytes, 0);
    // Once encoded, requests are taken again.
    open();
    await until(() => ingest.stats().queuedBatches === 0);
    assert.equal(ingest.stats().queuedBytes, 0);
    assert.equal((await post("not json")).status, 400);
    assert.equal(ingest.ready(), true);
  } finally {
    open();
    await ingest.close();
  }
});

Deno.test("Ingest encoding in this thread answers other clients between its pages while its queue is short", async () => {
  const store = new MemoryStore();
  const { ingest } = await Ingest.start({
    store,
    maxRows: 1_000_000,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
  });
  // Another client of the same process: a loopback server, answered only when the runtime polls for I/O.
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => new Response("ok"));
  try {
    // One batch of 60,000 rows (two services): an encode of about a hundred pages.
    await ingest.accept(request(1, 30_000));
    const flushed = ingest.flushAll();
    const objectsWhenAnswered = fetch(`http://127.0.0.1:${server.addr.port}/`)
      .then((r) => r.text())
      .then(() => ingest.stats().objects);
    // Answered while the batches were still being encoded (a yield that does not poll for I/O, as
    // `setImmediate`, would leave the client waiting for the whole encode).
    assert.equal(await objectsWhenAnswered, 0);
    await flushed;
    assert.equal(ingest.stats().objects, 2);
  } finally {
    await server.shutdown();
    await ingest.close();
  }
});

Deno.test("Ingest.admit() refuses while more batches wait to be encoded than maxOpenBatches", async () => {
  const store = new MemoryStore();
  const { ingest } = await Ingest.start({
    store,
    maxRows: 1,
    maxOpenBatches: 2,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
  });
  try {
    // Three one-record partitions, each cut at once (maxRows 1): three batches queued, the bound is two.
    await ingest.accept(hoursRequest(consecutiveHours(3)));
    assert.equal(ingest.stats().queuedBatches, 3);
    assert.throws(() => ingest.admit(100), UnavailableError);
    await until(() => ingest.stats().objects === 3);
    ingest.admit(100)();
  } finally {
    await ingest.close();
  }
});

/** A store that refuses every write (retryable). */
class DownStore extends MemoryStore {
  constructor() {
    super();
    this.failWith(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
  }
}

/**
 * Accepts `hours` (one record each) with `limits` while the store is down, so the records stay only in the
 * log, then replays the log ten hours later; returns the refused count and the hours (UTC) stored.
 */
async function acceptThenReplay(
  limits: RequestLimits,
  hours: number[],
): Promise<{ rejected: number; replayed: number; stored: string[]; rows: number }> {
  const dir = await Deno.makeTempDir({ prefix: "o2p-ingest-limits-" });
  const arrival = (BASE_HOUR + 10) * 3_600_000;
  try {
    const first = await Ingest.start({
      store: new DownStore(),
      wal: await Wal.open({ dir, maxBytes: 1 << 24, sync: false }),
      limits,
      now: () => arrival,
      retry: { initialMs: 1, maxMs: 5 },
      maxAgeMs: 3_600_000,
      files: { instanceId: "test" },
    });
    const out = await first.ingest.accept(hoursRequest(hours));
    assert.equal((await first.ingest.close({ deadlineMs: 50 })).flushed, false);
    // Second run, ten hours later: a window applies around the logged arrival, not around now.
    const store = new MemoryStore();
    const second = await Ingest.start({
      store,
      wal: await Wal.open({ dir, maxBytes: 1 << 24, sync: false }),
      limits,
      now: () => arrival + 10 * 3_600_000,
      maxAgeMs: 3_600_000,
      files: { instanceId: "test" },
    });
    await second.ingest.close();
    return {
      rejected: out.rejected,
      replayed: second.replayed.records,
      stored: (await store.list("")).map((k) => /hour=(\d+)/.exec(k)![1]).sort(),
      rows: second.ingest.stats().objectRows,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("Ingest replay refuses the same records as the answer did: window around the logged arrival, cap", async () => {
  // Hours 0 and 1 are outside the window; of hours 7, 8 (two records) and 9, the cap keeps 8 and 7.
  const out = await acceptThenReplay(
    { maxPartitions: 2, acceptPastMs: 3 * 3_600_000 },
    [BASE_HOUR, BASE_HOUR + 1, ...consecutiveHours(3, BASE_HOUR + 7), BASE_HOUR + 8],
  );
  // BASE_HOUR is 22:00: hours 7 and 8 after it are 05:00 and 06:00.
  assert.deepEqual(out, { rejected: 3, replayed: 3, stored: ["05", "06"], rows: 3 });
});

Deno.test("Ingest replay without a window applies the same partition cap", async () => {
  const out = await acceptThenReplay({ maxPartitions: 2 }, [
    BASE_HOUR,
    BASE_HOUR + 1,
    BASE_HOUR + 1,
    BASE_HOUR + 2,
  ]);
  assert.deepEqual(out, { rejected: 1, replayed: 3, stored: ["22", "23"], rows: 3 });
});

Deno.test("Ingest counts a request's rows whole while any of its batches is open", async () => {
  const store = new MemoryStore();
  // Each request: 100 records in one hour (a batch cut at once: maxRows) and one record in the next hour,
  // whose batch stays open and so keeps every request's whole buffer alive.
  const make = () => hoursRequest([...Array(100).fill(BASE_HOUR), BASE_HOUR + 1]);
  const probe = make().decoded.tables[0];
  probe.compact();
  const whole = probe.byteLength();
  const { ingest } = await Ingest.start({
    store,
    maxRows: 100,
    maxBytes: 3 * whole,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
    // The same request ten times, stored ten times: not retries here.
    dedupe: { windowMs: 0 },
  });
  try {
    for (let i = 0; i < 10; i++) {
      await ingest.accept(make());
      const { heldBytes, queuedBytes } = ingest.stats();
      assert.ok(heldBytes - queuedBytes <= 3 * whole, `open batches hold ${heldBytes - queuedBytes} bytes`);
    }
    // The one-record batch was written early because of what it held, not what it counted (1% of it).
    // 10 batches of the full hour, and the small one's at every fourth request (4 × whole > 3 × whole),
    // its rows of requests 9 and 10 still open. (Identical requests make identical objects, under one key.)
    await until(() => ingest.stats().objects === 12);
    assert.equal(ingest.stats().openBatches, 1);
    assert.equal(ingest.stats().bufferedBytes < whole / 10, true);
    await ingest.flushAll();
    assert.equal(ingest.stats().heldBytes, 0);
    assert.equal(ingest.stats().objectRows, 1010);
  } finally {
    await ingest.close();
  }
});

// ---------------------------------------------------------------------------------------------------
// A retried request is stored once

/** Rows stored in every object of `store` (read back from the Parquet files). */
async function storedRows(store: MemoryStore): Promise<number> {
  let rows = 0;
  for (const key of await store.list("")) {
    rows += tableFromIPC(readParquet((await store.get(key))!).intoIPCStream()).numRows;
  }
  return rows;
}

/** A logs request of `n` records whose bodies carry `tag`, in protobuf-free OTLP/JSON. */
function tagged(tag: string, n = 3, format: "json" | "jsonl" = "json") {
  const body = enc.encode(JSON.stringify({
    resourceLogs: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "svc" } }] },
      scopeLogs: [{
        logRecords: Array.from({ length: n }, (_, i) => ({
          timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i)),
          body: { stringValue: `${tag} ${i}` },
        })),
      }],
    }],
  }));
  return { signal: "logs" as const, format, body, decoded: decodeRequest("logs", body, { format }) };
}

/** A log and ingest in `dir`, as the server sets them up (the identity file beside the log). */
async function durable(dir: string, store: MemoryStore, extra: Partial<IngestOptions> = {}) {
  const wal = await Wal.open({ dir, maxBytes: 64 * 1024 * 1024, segmentBytes: 4096, sync: false });
  const started = await Ingest.start({
    store,
    wal,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
    ...extra,
    dedupe: { dir, sync: false, ...extra.dedupe },
  });
  return { ...started, wal };
}

/** A copy of the log folder as it is now: what a kill -9 at this moment would leave. */
function snapshot(dir: string): string {
  const copy = Deno.makeTempDirSync({ prefix: "o2p-crash-" });
  for (const e of Deno.readDirSync(dir)) {
    if (e.isFile) Deno.copyFileSync(`${dir}/${e.name}`, `${copy}/${e.name}`);
  }
  return copy;
}

/**
 * Runs `work` on an ingest with its log in a fresh folder, then "kills" it: returns a copy of the folder as
 * it was at that moment (the ingest itself is closed without flushing, and its folder removed).
 */
async function crashAfter(store: MemoryStore, work: (ingest: Ingest) => Promise<void>): Promise<string> {
  const dir = Deno.makeTempDirSync({ prefix: "o2p-dedupe-" });
  const { ingest } = await durable(dir, store);
  try {
    await work(ingest);
    return snapshot(dir);
  } finally {
    await ingest.close({ deadlineMs: 0 });
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("Ingest stores a request sent twice with the same bytes once, and answers both alike", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "o2p-dedupe-" });
  const store = new MemoryStore();
  const { ingest } = await durable(dir, store);
  try {
    const answer = await ingest.accept(tagged("a"));
    assert.equal(answer.rejected, 0);
    assert.deepEqual(await ingest.accept(tagged("a")), answer);
    assert.equal(ingest.stats().deduplicated, 1);
    // The same records in another format (JSON Lines) are another request: stored again.
    await ingest.accept(tagged("a", 3, "jsonl"));
    await ingest.accept(tagged("b"));
    await ingest.flushAll();
    assert.equal(await storedRows(store), 9);
    assert.equal(ingest.stats().deduplicated, 1);
  } finally {
    await ingest.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Ingest answers two identical requests in flight with one append and one answer", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "o2p-dedupe-" });
  const store = new MemoryStore();
  // Partition cap 1: each request has records in two hours, one of them refused.
  const { ingest, wal } = await durable(dir, store, { limits: { maxPartitions: 1 } });
  try {
    const request = () => hoursRequest([BASE_HOUR, BASE_HOUR, BASE_HOUR + 1]);
    const answers = await Promise.all([
      ingest.accept(request()),
      ingest.accept(request()),
      ingest.accept(request()),
    ]);
    assert.equal(answers[0].rejected, 1);
    assert.deepEqual(answers[1], answers[0]);
    assert.deepEqual(answers[2], answers[0]);
    assert.equal(ingest.stats().deduplicated, 2);
    assert.equal(wal.stats().appends, 1, "one request record in the log");
    await ingest.flushAll();
    assert.equal(await storedRows(store), 2);
    // A later retry gets the original's partial_success too.
    assert.deepEqual(await ingest.accept(request()), answers[0]);
  } finally {
    await ingest.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Ingest recognises a retry after a crash: request logged but not written, then replayed", async () => {
  // kill -9 before the 200 went out: the log has the request, no object has its rows.
  const crashed = await crashAfter(
    new MemoryStore(),
    (ingest) => ingest.accept(tagged("logged")).then(() => {}),
  );
  const restore = new MemoryStore();
  const second = await durable(crashed, restore);
  try {
    assert.equal(second.replayed.requests, 1);
    await second.ingest.accept(tagged("logged")); // the client's retry, same bytes
    assert.equal(second.ingest.stats().deduplicated, 1);
    await second.ingest.flushAll();
    assert.equal(await storedRows(restore), 3);
  } finally {
    await second.ingest.close();
    Deno.removeSync(crashed, { recursive: true });
  }
});

Deno.test("Ingest takes a body CRC and identity computed elsewhere: the same log record, replay and retry", async () => {
  // What a decode worker hands over with the rows; the ingest must log and recognise exactly as without.
  const withKnown = () => {
    const r = tagged("worker");
    return { ...r, bodyCrc: crc32c(r.body), id: requestId(0, 1, r.body) }; // logs = 0, json = 1
  };
  const crashed = await crashAfter(new MemoryStore(), (ingest) => ingest.accept(withKnown()).then(() => {}));
  const restore = new MemoryStore();
  const second = await durable(crashed, restore);
  try {
    assert.equal(second.replayed.requests, 1, "the record's joined checksum holds at replay");
    await second.ingest.accept(tagged("worker")); // the retry, identity computed here this time
    assert.equal(second.ingest.stats().deduplicated, 1);
    await second.ingest.accept(withKnown());
    assert.equal(second.ingest.stats().deduplicated, 2);
    await second.ingest.flushAll();
    assert.equal(await storedRows(restore), 3);
  } finally {
    await second.ingest.close();
    Deno.removeSync(crashed, { recursive: true });
  }
  // The given CRC is the one written (not recomputed): a wrong one leaves a record the replay refuses.
  const wrong = await crashAfter(new MemoryStore(), async (ingest) => {
    await ingest.accept({ ...withKnown(), bodyCrc: crc32c(tagged("worker").body) ^ 1 });
  });
  const third = await durable(wrong, new MemoryStore());
  try {
    assert.equal(third.replayed.requests, 0);
  } finally {
    await third.ingest.close();
    Deno.removeSync(wrong, { recursive: true });
  }
});

Deno.test("Ingest recognises a retry after a crash: rows written and the log released before it", async () => {
  const store = new MemoryStore();
  const crashed = await crashAfter(store, async (ingest) => {
    await ingest.accept(tagged("written", 40));
    await ingest.flushAll();
    // More requests until the segment holding the first one is released (4 KiB segments).
    for (let i = 0; ingest.stats().objects < 4 && i < 50; i++) {
      await ingest.accept(tagged(`filler-${i}`, 40));
      await ingest.flushAll();
    }
  });
  // The first request's record is gone from the log: only the identity file knows it.
  const log = await Wal.open({ dir: crashed, maxBytes: 64 * 1024 * 1024, sync: false });
  const logged: string[] = [];
  for await (const r of log.records()) logged.push(new TextDecoder().decode(r.payload));
  await log.close();
  assert.ok(!logged.some((p) => p.includes("written 0")), "the first request's segment was released");
  const rows = await storedRows(store);
  const second = await durable(crashed, store);
  try {
    await second.ingest.accept(tagged("written", 40));
    assert.equal(second.ingest.stats().deduplicated, 1);
    await second.ingest.flushAll();
    assert.equal(await storedRows(store), rows, "nothing stored again");
  } finally {
    await second.ingest.close();
    Deno.removeSync(crashed, { recursive: true });
  }
});

Deno.test("Ingest forgets a request after the window (counted on a clock that stops while it is down)", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "o2p-dedupe-" });
  const store = new MemoryStore();
  let now = 1_000_000;
  const clock = { now: () => now, dedupe: { windowMs: 60_000 } };
  const first = await durable(dir, store, clock);
  try {
    await first.ingest.accept(tagged("w"));
    await first.ingest.flushAll(); // its identity is in the file now
    now += 59_000;
    await first.ingest.accept(tagged("w"));
    assert.equal(first.ingest.stats().deduplicated, 1);
  } finally {
    await first.ingest.close();
  }
  // Down for an hour: the window's clock resumes where it stopped (the file's newest entry).
  now += 3_600_000;
  // (Another instance id: identical rows written by the same instance make the same object key.)
  const second = await durable(dir, store, { ...clock, files: { instanceId: "second" } });
  try {
    await second.ingest.accept(tagged("w"));
    assert.equal(second.ingest.stats().deduplicated, 1, "known after a long outage");
    now += 61_000;
    await second.ingest.accept(tagged("w"));
    assert.equal(second.ingest.stats().deduplicated, 1, "forgotten after the window");
    await second.ingest.flushAll();
    assert.equal(await storedRows(store), 6);
  } finally {
    await second.ingest.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Ingest keeps at most dedupe.maxEntries identities, forgetting the oldest first", async () => {
  const store = new MemoryStore();
  const { ingest } = await Ingest.start({
    store,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
    dedupe: { maxEntries: 2 },
  });
  try {
    for (const tag of ["a", "b", "c"]) await ingest.accept(tagged(tag));
    assert.equal(ingest.stats().dedupeEntries, 2);
    assert.equal(ingest.stats().dedupeEvicted, 1);
    await ingest.accept(tagged("c"));
    assert.equal(ingest.stats().deduplicated, 1);
    await ingest.accept(tagged("a")); // beyond the bound: stored again
    assert.equal(ingest.stats().deduplicated, 1);
    await ingest.flushAll();
    assert.equal(await storedRows(store), 12);
  } finally {
    await ingest.close();
  }
});

Deno.test("Ingest keeps the identities of replayed requests whose rows were written (a log from before the file)", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "o2p-dedupe-" });
  const store = new MemoryStore();
  try {
    // A log as a version before the identity file and before commits listed finished requests left it:
    // the request (kind 1: [signal, format] + body), the intent of the object holding its rows (kind 2)
    // and that object's commit (kind 3), which does not say the request is finished.
    const old = await Wal.open({ dir, maxBytes: 1 << 20, sync: false });
    const request = tagged("old", 4);
    const seq = await old.append(1, [Uint8Array.of(0, 1), request.body]);
    const key = "logs/svc/old.parquet";
    const intent = { key, table: "otel_logs", service: "svc", hour: 472_222, members: [seq] };
    await old.append(2, enc.encode(JSON.stringify(intent)));
    await old.append(3, enc.encode(JSON.stringify({ key })));
    await old.close();
    // The next start reads the request back (nothing says it is finished), finds all its rows in objects,
    // batches nothing, and records its identity.
    const next = await durable(dir, store);
    assert.equal(next.ingest.stats().openBatches, 0, "its rows are in objects already");
    await next.ingest.close();
    // The log's segments are gone (released): the file alone still knows the request.
    for (const e of Deno.readDirSync(dir)) if (e.name.endsWith(".wal")) Deno.removeSync(`${dir}/${e.name}`);
    const last = await durable(dir, store, { files: { instanceId: "last" } });
    try {
      assert.equal(last.replayed.requests, 0);
      await last.ingest.accept(tagged("old", 4));
      assert.equal(last.ingest.stats().deduplicated, 1);
      await last.ingest.flushAll();
      assert.equal(await storedRows(store), 0, "not stored again (its object was written by the old run)");
    } finally {
      await last.ingest.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Ingest: batches cut together for memory share a request's rows, held for the encode in progress: not 'behind'", async () => {
  const store = new MemoryStore();
  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  const first = request(1, 400);
  const bytes = first.decoded.tables[0].byteLength();
  const { ingest } = await Ingest.start({
    store,
    maxBytes: Math.ceil(bytes * 1.5),
    maxQueuedBytes: Math.ceil(bytes / 2),
    maxRows: 1_000_000,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
    encodePause: () => gate,
  });
  try {
    await ingest.accept(first);
    // The second request passes the byte bound: both services' batches are cut, sharing both requests.
    await ingest.accept(request(2, 400));
    assert.equal(ingest.stats().queuedBatches, 2);
    // The first batch's encode holds every row (the second batch's are the same requests'): nothing waits
    // beyond it, so requests are admitted (it was refused when the encode counted its rows before the
    // second batch was cut).
    await until(() => ingest.stats().queuedBatches === 2);
    await new Promise((r) => setTimeout(r, 0));
    ingest.admit(100)();
    open();
    await until(() => ingest.stats().objects === 2);
  } finally {
    open();
    await ingest.close();
  }
});

Deno.test("Ingest encodes `encoder.concurrency` batches at once, while their own rows stay within maxBytes", async () => {
  const store = new MemoryStore();
  const gates: (() => void)[] = [];
  let running = 0, most = 0;
  const { encodeBatch } = await import("../core/convert.ts");
  const encoder = {
    concurrency: 2,
    async encode(...args: Parameters<typeof encodeBatch>) {
      running++, most = Math.max(most, running);
      await new Promise<void>((r) => gates.push(r));
      try {
        return await encodeBatch(...args);
      } finally {
        running--;
      }
    },
  };
  const one = request(1, 50);
  const perBatch = one.decoded.tables[0].byteLength() / 2;
  const { ingest } = await Ingest.start({
    store,
    encoder,
    maxRows: 50,
    // Two batches' own rows fit, three do not.
    maxBytes: Math.ceil(perBatch * 2.5),
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
  });
  try {
    // 3 requests of 2 services, 50 rows each: six batches cut by rows.
    for (let i = 1; i <= 3; i++) await ingest.accept(request(i, 50));
    await until(() => gates.length === 2);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(running, 2, "two encodes at once, the rest wait");
    while (ingest.stats().objects < 6) {
      gates.shift()?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(most, 2);
  } finally {
    for (const g of gates) g();
    await ingest.close();
  }
});

Deno.test("Ingest writes two batches of identical rows from different requests as two objects", async () => {
  // The same 3 records of "svc" in both requests, each with one record of a service of its own: the bodies
  // differ (no deduplication), the "svc" batches cut one after the other hold byte-identical rows.
  const twin = (other: string) => {
    const { body: _, ...base } = tagged("same");
    const json = JSON.parse(new TextDecoder().decode(tagged("same").body));
    json.resourceLogs.push({
      resource: { attributes: [{ key: "service.name", value: { stringValue: other } }] },
      scopeLogs: [{ logRecords: [{ timeUnixNano: "1700000000000000000", body: { stringValue: other } }] }],
    });
    const body = enc.encode(JSON.stringify(json));
    return { ...base, body, decoded: decodeRequest("logs", body, { format: "json" }) };
  };
  for (const logged of [true, false]) {
    const dir = Deno.makeTempDirSync({ prefix: "o2p-twins-" });
    const store = new MemoryStore();
    const ingest = logged
      ? (await durable(dir, store)).ingest
      : (await Ingest.start({ store, maxAgeMs: 3_600_000, files: { instanceId: "test" } })).ingest;
    try {
      for (const other of ["one", "two"]) {
        assert.equal((await ingest.accept(twin(other))).rejected, 0);
        await ingest.flushAll();
      }
      const svc = (await store.list("")).filter((k) => k.includes("/svc/"));
      assert.equal(svc.length, 2, `logged=${logged}: ${svc.join(", ")}`);
      assert.equal(await storedRows(store), 8, `logged=${logged}`);
    } finally {
      await ingest.close();
      Deno.removeSync(dir, { recursive: true });
    }
  }
});

Deno.test("Ingest encodes `concurrency` batches at once, and `maxConcurrency` once the queue is past half its bound", async () => {
  const store = new MemoryStore();
  // An encoder whose encodes wait for the gate: how many run at once is what the ingest started.
  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  let running = 0, most = 0;
  const encoder = {
    concurrency: 1,
    maxConcurrency: 3,
    async encode(selections: Parameters<typeof encodeBatch>[0], options: Parameters<typeof encodeBatch>[1]) {
      most = Math.max(most, ++running);
      await gate;
      running--;
      return encodeBatch(selections, options);
    },
  };
  const one = hoursRequest(Array(20).fill(BASE_HOUR)).decoded.tables[0].byteLength();
  const { ingest } = await Ingest.start({
    store,
    maxRows: 10,
    // With the first batch being encoded, two more waiting are past half of this bound.
    maxQueuedBytes: Math.floor(one * 3.5),
    maxOpenBatches: 8,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
    encoder,
  });
  try {
    await ingest.accept(hoursRequest(Array(20).fill(BASE_HOUR)));
    await ingest.accept(hoursRequest(Array(20).fill(BASE_HOUR + 1)));
    await until(() => ingest.stats().queuedBatches === 2);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(most, 1, "a second encode started with the queue under half its bound");
    await ingest.accept(hoursRequest(Array(20).fill(BASE_HOUR + 2)));
    // Past half: one more encode starts, until what waits is under half again.
    await until(() => running === 2);
    await ingest.accept(hoursRequest(Array(20).fill(BASE_HOUR + 3)));
    await until(() => running === 3);
    await ingest.accept(hoursRequest(Array(20).fill(BASE_HOUR + 4)));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(most, 3, "more than maxConcurrency encodes at once");
    open();
    await until(() => ingest.stats().queuedBatches === 0);
    assert.equal(await storedRows(store), 100);
  } finally {
    open();
    await ingest.close();
  }
});
