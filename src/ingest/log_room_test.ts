/**
 * Tests of what the ingest does when its write-ahead log fills (issue 15): with a healthy store it writes the
 * batches pinning the oldest segments and admits the request; 503 only when the store fails (the message
 * names its last error) or writing is slower than ingest. And of `/ready`: the store probe without traffic,
 * the log's fill, shutting down. Real write-ahead logs and a real folder store, read back with DuckDB.
 *
 * @module
 */

import assert from "node:assert/strict";
import { decodeRequest, type Format } from "../core/convert.ts";
import { createHandler } from "../http/handler.ts";
import { loadParquetWasm } from "../platforms/wasm.ts";
import { FsStore } from "../storage/fs_store.ts";
import { MemoryStore } from "../storage/memory_store.ts";
import type { ObjectStore } from "../storage/object_store.ts";
import { openDuckDb } from "../../tests/support/duckdb.ts";
import { idLogsJson, idLogsRequest } from "../../tests/reliability/otlp_proto.ts";
import { walRequestBytes } from "../config/mod.ts";
import { UnavailableError } from "./errors.ts";
import { Ingest, logLatch } from "./ingest.ts";
import { Wal } from "./wal.ts";

await loadParquetWasm();

const KiB = 1024;

/** A logs request of `records` records with ids `<prefix>-<k>`, as the handler hands it over. */
function logs(format: Format, service: string, prefix: string, records: number) {
  const ids = Array.from({ length: records }, (_, k) => `${prefix}-${k}`);
  const body = format === "json" ? idLogsJson(service, ids) : idLogsRequest(service, ids);
  return { signal: "logs" as const, format, body, decoded: decodeRequest("logs", body, { format }) };
}

async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(done(), `timed out waiting for ${what}`);
}

/** Rows of every Parquet file under `dir`, read by DuckDB. */
async function storedRows(dir: string): Promise<number> {
  const db = await openDuckDb();
  try {
    const rows = await db.rows(
      `SELECT count(*)::INTEGER AS n FROM read_parquet('${dir}/**/*.parquet')`,
    );
    return Number(rows[0].n);
  } finally {
    db.close();
  }
}

/** Bytes of the log's segment files on disk (a segment released between the listing and its stat counts 0). */
function walBytes(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) {
    if (!e.name.endsWith(".wal")) continue;
    try {
      n += Deno.statSync(`${dir}/${e.name}`).size;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return n;
}

/** A folder store whose writes wait until `open()`: a store slower than ingest. */
class GatedStore extends FsStore {
  #gate!: Promise<void>;
  open!: () => void;
  constructor(root: string) {
    super({ root });
    this.close();
  }
  close(): void {
    this.#gate = new Promise((r) => this.open = r);
  }
  override async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.#gate;
    return super.put(key, bytes);
  }
}

const WAL_MAX = 256 * KiB;

async function start(
  store: ObjectStore,
  walDir: string,
  options: { segmentBytes?: number; logWaitMs?: number; probeIntervalMs?: number } = {},
) {
  const wal = await Wal.open({
    dir: walDir,
    maxBytes: WAL_MAX,
    segmentBytes: options.segmentBytes ?? WAL_MAX / 16,
    sync: false,
  });
  const { ingest } = await Ingest.start({
    store,
    wal,
    maxLogBytes: walRequestBytes(WAL_MAX),
    // A batch as large as the log, never due by age or rows: only the log's bound can cut it.
    maxBytes: WAL_MAX,
    maxRows: 1_000_000,
    maxAgeMs: 3_600_000,
    retry: { initialMs: 5, maxMs: 20 },
    logWaitMs: options.logWaitMs,
    probeIntervalMs: options.probeIntervalMs ?? 0,
    files: { instanceId: "test" },
  });
  return { ingest, wal };
}

for (const segments of ["sixteenth", "one"] as const) {
  Deno.test(`A full log writes the batches pinning its oldest segments and admits every request (${segments} segment)`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "o2p-log-room-" });
    try {
      const store = new FsStore({ root: `${dir}/data` });
      // "one": a segment as large as the log, so only a rotation of the active segment frees anything.
      const { ingest } = await start(store, `${dir}/wal`, {
        segmentBytes: segments === "one" ? 4 * WAL_MAX : undefined,
      });
      let sent = 0, bodies = 0, maxOnDisk = 0;
      try {
        // Four clients, JSON and protobuf, one service and many: 6 times the log's size in bodies.
        const client = async (c: number) => {
          for (let n = 0; bodies < 6 * WAL_MAX; n++) {
            const format: Format = (c + n) % 3 === 0 ? "protobuf" : "json";
            const service = c < 2 ? "one" : `svc-${n % 40}`;
            const request = logs(format, service, `c${c}-${n}`, 1 + (n * 7 + c) % 30);
            await ingest.accept(request); // a refusal throws and fails the test
            sent += request.decoded.tables[0].length;
            bodies += request.body.length;
            maxOnDisk = Math.max(maxOnDisk, walBytes(`${dir}/wal`));
          }
        };
        await Promise.all([0, 1, 2, 3].map(client));
        assert.ok(ingest.stats().objects > 1, "batches were written before they were due");
        assert.ok(maxOnDisk <= WAL_MAX, `the log reached ${maxOnDisk} bytes`);
        assert.deepEqual(ingest.notReadyReasons(), []);
      } finally {
        await ingest.close();
      }
      assert.equal(await storedRows(`${dir}/data`), sent, "every record stored once");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("A full log with a failing store refuses with 503 naming the store's error, and recovers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "o2p-log-down-" });
  const store = new MemoryStore();
  const { ingest } = await start(store, dir);
  try {
    await ingest.accept(logs("json", "svc", "first", 10));
    store.failWith(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }));
    let refused: unknown;
    for (let n = 0; n < 1000 && !refused; n++) {
      await ingest.accept(logs("json", "svc", `r${n}`, 20)).catch((e) => refused = e);
    }
    assert.ok(refused instanceof UnavailableError, `not refused: ${refused}`);
    assert.match(
      refused.message,
      /^write-ahead log full: the object store is failing \(last error: .*ECONNREFUSED/,
    );
    assert.equal(refused.retryAfterSecs, 10);
    const reasons = ingest.notReadyReasons();
    assert.ok(reasons.some((r) => /^store: .*ECONNREFUSED/.test(r)), reasons.join("; "));
    assert.ok(reasons.some((r) => /^write-ahead log: \d+ of \d+ bytes/.test(r)), reasons.join("; "));
    // The store is back: the writes being retried drain the log, and requests are taken again.
    store.failWith(undefined);
    await until("the log to drain", () => ingest.ready());
    await ingest.accept(logs("json", "svc", "after", 5));
  } finally {
    await ingest.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("A full log whose batches are written slower than ingest refuses with 503 saying so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "o2p-log-slow-" });
  const store = new GatedStore(`${dir}/data`);
  const { ingest } = await start(store, `${dir}/wal`, { logWaitMs: 100 });
  try {
    let refused: unknown, accepted = 0;
    for (let n = 0; n < 1000 && !refused; n++) {
      await ingest.accept(logs("json", "svc", `r${n}`, 20)).then(() => accepted++, (e) => refused = e);
    }
    assert.ok(refused instanceof UnavailableError, `not refused: ${refused}`);
    assert.equal(
      refused.message,
      "write-ahead log full: writing to the object store is slower than ingest; retry later",
    );
    const reasons = ingest.notReadyReasons();
    assert.equal(reasons.length, 1, reasons.join("; "));
    assert.match(reasons[0], /^write-ahead log: \d+ of \d+ bytes \(\d+ %; ready again under 75 %\)$/);
    store.open();
    await until("the log to drain", () => ingest.ready());
    await ingest.close();
    assert.equal(await storedRows(`${dir}/data`), accepted * 20);
  } finally {
    store.open();
    await ingest.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("logLatch(): not ready from 90 % of the log until back under 75 %", () => {
  const path = [0.5, 0.8, 0.89, 0.9, 0.95, 0.8, 0.76, 0.75, 0.74, 0.8, 0.89, 0.91];
  let latched = false;
  const seen = path.map((fill) => latched = logLatch(latched, fill));
  assert.deepEqual(seen, [false, false, false, true, true, true, true, true, false, false, false, true]);
});

Deno.test("/ready: the probe finds the store gone without any traffic, and back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "o2p-probe-" });
  const store = new MemoryStore();
  const { ingest } = await start(store, dir, { probeIntervalMs: 20 });
  const handler = createHandler({ sink: ingest });
  const ready = async () => {
    const response = await handler(new Request("http://x/ready"));
    return { status: response.status, body: await response.text() };
  };
  try {
    assert.deepEqual(await ready(), { status: 200, body: "ready\n" });
    store.failWith(Object.assign(new Error("getaddrinfo ENOTFOUND bucket.example"), { code: "ENOTFOUND" }));
    await until("the probe to fail", () => !ingest.ready());
    const down = await ready();
    assert.equal(down.status, 503);
    assert.match(down.body, /^not ready: store: probe: .*ENOTFOUND bucket\.example/);
    store.failWith(undefined);
    await until("the probe to succeed", () => ingest.ready());
    assert.deepEqual(await ready(), { status: 200, body: "ready\n" });
    assert.equal(ingest.stats().requests, 0, "no traffic was needed");
  } finally {
    await ingest.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a probe that finds the store back retries the writes waiting out their backoff", async () => {
  const dir = await Deno.makeTempDir({ prefix: "o2p-probe-retry-" });
  const store = new MemoryStore();
  const wal = await Wal.open({ dir, maxBytes: WAL_MAX, sync: false });
  const { ingest } = await Ingest.start({
    store,
    wal,
    maxLogBytes: walRequestBytes(WAL_MAX),
    maxRows: 10,
    // A backoff far beyond the test's patience: only the probe's wake can retry in time.
    retry: { initialMs: 600_000, maxMs: 600_000 },
    probeIntervalMs: 20,
    maxAgeMs: 100,
    files: { instanceId: "test" },
  });
  try {
    store.failWith(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
    await ingest.accept(logs("json", "svc", "a", 10));
    await until("the write to fail", () => ingest.stats().writeRetries > 0);
    store.failWith(undefined);
    await until("the object to be written", () => ingest.stats().objects === 1);
    assert.equal(store.size, 1);
    await until("ready", () => ingest.ready());
  } finally {
    await ingest.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("/ready is 503 while shutting down, before the last batches are written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "o2p-stop-" });
  const store = new GatedStore(`${dir}/data`);
  const { ingest } = await start(store, `${dir}/wal`);
  const handler = createHandler({ sink: ingest });
  try {
    await ingest.accept(logs("protobuf", "svc", "a", 10));
    const closing = ingest.close();
    const response = await handler(new Request("http://x/ready"));
    assert.equal(response.status, 503);
    assert.equal(await response.text(), "not ready: shutting down\n");
    store.open();
    assert.deepEqual(await closing, { flushed: true });
    assert.equal(await storedRows(`${dir}/data`), 10);
  } finally {
    store.open();
    await ingest.close();
    await Deno.remove(dir, { recursive: true });
  }
});
