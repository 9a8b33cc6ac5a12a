/**
 * Storage outage against a real server of each protocol on loopback (S3: s3rver, GCS: fake-gcs-server,
 * Azure Blob: Azurite): under load, the object store goes away;
 * the server keeps acknowledging into its write-ahead log while it has room, then answers 503 with
 * Retry-After (never 500), reports not ready, and once the store is back drains by itself: everything
 * acknowledged ends up in the bucket exactly once.
 */

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { GcsFetchStore, type ObjectStore } from "../../src/storage/mod.ts";
import { createOpendalStore } from "../../src/storage/opendal_store.ts";
import { startAzurite } from "../support/azurite.ts";
import { GCS_SKIP_REASON, startGcsServer } from "../support/gcs_server.ts";
import { bucketOf, s3ServerEnv, startS3Server } from "../support/s3_server.ts";
import { audit, countIds, describeAudit } from "./id_audit.ts";
import { describeStatuses, type LoadResult, seedFor, startLoad } from "./load.ts";
import { problems, type ServerProcess, spawnServer, waitForStatus } from "./server_process.ts";

const WAL_MAX_BYTES = 2 * 1024 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Statuses seen since `from` (a copy of the counts taken earlier). */
function since(now: Map<number, number>, from: Map<number, number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const [s, n] of now) if (n - (from.get(s) ?? 0) > 0) out.set(s, n - (from.get(s) ?? 0));
  return out;
}

/** Polls `url` until it answers `status`; returns the ms it took, or -1. */
async function timeUntil(url: string, status: number, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  return await waitForStatus(url, { status, timeoutMs }) ? Date.now() - t0 : -1;
}

/** A real object store server the otlp2parquet server writes to, and a reader of what it holds. */
interface Backend {
  /** Settings that point the server at it. */
  env: Record<string, string>;
  /** Reads the objects as a consumer would. */
  reader: ObjectStore;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

const BACKENDS: { name: string; skip?: string; start(): Promise<Backend> }[] = [
  {
    name: "s3 (s3rver)",
    async start() {
      const s3 = await startS3Server();
      return {
        env: s3ServerEnv(s3),
        reader: bucketOf(s3),
        stop: () => s3.stop(),
        restart: () => s3.restart(),
      };
    },
  },
  {
    name: "gcs (fake-gcs-server)",
    skip: GCS_SKIP_REASON,
    async start() {
      const gcs = await startGcsServer();
      return {
        env: {
          OTLP2PARQUET_STORAGE_BACKEND: "gcs",
          OTLP2PARQUET_GCS_BUCKET: gcs.bucket,
          OTLP2PARQUET_GCS_ENDPOINT: gcs.endpoint,
          OTLP2PARQUET_GCS_ANONYMOUS: "true",
        },
        reader: new GcsFetchStore({ bucket: gcs.bucket, endpoint: gcs.endpoint, timeoutMs: 10_000 }),
        stop: () => gcs.stop(),
        restart: () => gcs.restart(),
      };
    },
  },
  {
    name: "azblob (Azurite)",
    async start() {
      const azure = await startAzurite();
      return {
        env: {
          OTLP2PARQUET_STORAGE_BACKEND: "azblob",
          OTLP2PARQUET_AZURE_CONTAINER: azure.container,
          OTLP2PARQUET_AZURE_ACCOUNT: azure.account,
          OTLP2PARQUET_AZURE_ENDPOINT: azure.endpoint,
          AZBLOB_ACCOUNT_KEY: azure.accountKey,
        },
        reader: createOpendalStore({
          backend: "azblob",
          container: azure.container,
          endpoint: azure.endpoint,
          accountName: azure.account,
          accountKey: azure.accountKey,
          timeoutMs: 10_000,
        }),
        stop: () => azure.stop(),
        restart: () => azure.restart(),
      };
    },
  },
];

/** Server settings for a store with a small log (2 MiB) and batches written every 0.3 s. */
function serverEnv(storeSettings: Record<string, string>, dir: string): Record<string, string> {
  return {
    ...storeSettings,
    OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
    OTLP2PARQUET_WAL_MAX_BYTES: String(WAL_MAX_BYTES),
    OTLP2PARQUET_BATCH_MAX_AGE_SECS: "0.3",
    OTLP2PARQUET_BATCH_MAX_ROWS: "2000",
    OTLP2PARQUET_BATCH_MAX_BYTES: "1MiB",
    OTLP2PARQUET_MAX_PAYLOAD_BYTES: "1MiB",
  };
}

/** Reads the bucket as a consumer would: new objects are copied into `dir/objects`, then all are counted. */
function bucketReader(bucket: ObjectStore, dir: string) {
  const downloaded = new Set<string>();
  const readBucket = async () => {
    for (const key of await bucket.list("")) {
      if (downloaded.has(key)) continue;
      const bytes = await bucket.get(key);
      if (!bytes) continue;
      const file = join(dir, "objects", key);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, bytes);
      downloaded.add(key);
    }
    return await countIds(
      [...downloaded].filter((k) => k.endsWith(".parquet")).map((k) => join(dir, "objects", k)),
    );
  };
  return { downloaded, readBucket };
}

for (const backend of BACKENDS) {
  if (backend.skip !== undefined) {
    console.warn(`storage outage on ${backend.name} is skipped: ${backend.skip}`);
  }
  Deno.test({
    name:
      `storage outage, ${backend.name}: accepted into the log, 503 when it is full, drained exactly once when storage returns`,
    ignore: backend.skip !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const seed = seedFor(`outage ${backend.name}`);
      const s3 = await backend.start();
      const dir = Deno.makeTempDirSync({ prefix: "o2p-outage-" });
      const { downloaded, readBucket } = bucketReader(s3.reader, dir);
      let server: ServerProcess | undefined;
      let load: ReturnType<typeof startLoad> | undefined;
      try {
        server = await spawnServer(serverEnv(s3.env, dir));
        const url = server.url;
        load = startLoad({
          url: () => url,
          clients: 4,
          seed,
          prefix: `o${seed}`,
          padding: 64,
          maxRecords: 20,
        });
        const stats = () => new Map(load!.result.statuses);

        // 1. Storage up: everything is acknowledged and written.
        await sleep(1500);
        assert.equal((await fetch(`${url}/ready`)).status, 200);
        const beforeOutage = stats();
        assert.ok(
          (beforeOutage.get(200) ?? 0) > 20,
          `too few 200s before the outage: ${describeStatuses(beforeOutage)}`,
        );

        // 2. Storage down.
        await s3.stop();
        const outageStart = stats();
        const notReadyMs = await timeUntil(`${url}/ready`, 503, 15_000);
        assert.ok(notReadyMs >= 0, "/ready did not turn 503 while the object store was down");
        const whileDown = stats();
        // Still accepting into the log after the server knows storage is down.
        await sleep(500);
        const acceptedWhileDown = since(stats(), whileDown).get(200) ?? 0;
        assert.ok(acceptedWhileDown > 10, `no 200s while storage was down and the log had room`);
        // Keep sending until the log is full: then 503 with Retry-After.
        const deadline = Date.now() + 30_000;
        while (!(since(stats(), outageStart).get(503) ?? 0) && Date.now() < deadline) await sleep(100);
        const duringOutage = since(stats(), outageStart);
        assert.ok(
          (duringOutage.get(503) ?? 0) > 0,
          `no 503 once the log was full: ${describeStatuses(duringOutage)}`,
        );
        await sleep(1000); // a while at "full"
        const full = since(stats(), outageStart);
        console.log(
          `outage: /ready 503 after ${notReadyMs} ms; during the outage ${describeStatuses(full)}`,
        );

        // 3. Storage back: the server drains by itself and accepts again.
        await s3.restart();
        const afterOutage = stats();
        const readyMs = await timeUntil(`${url}/ready`, 200, 60_000);
        assert.ok(
          readyMs >= 0,
          `/ready did not return to 200 after the store came back:\n${server.output().slice(-3000)}`,
        );
        const acceptDeadline = Date.now() + 30_000;
        while (!(since(stats(), afterOutage).get(200) ?? 0) && Date.now() < acceptDeadline) await sleep(100);
        const recovered = since(stats(), afterOutage);
        assert.ok(
          (recovered.get(200) ?? 0) > 0,
          `no 200s after the store came back: ${describeStatuses(recovered)}\n${problems(server.output())}`,
        );
        await sleep(1000);
        const seen: LoadResult = await load.stop();
        load = undefined;
        assert.equal(seen.statuses.get(500) ?? 0, 0, "a 500 was answered");
        assert.equal(seen.missingRetryAfter, 0, "a 429/503 came without Retry-After");
        for (const s of seen.statuses.keys()) assert.ok([200, 503].includes(s), `unexpected status ${s}`);

        // Everything acknowledged reaches the bucket without a restart or a shutdown.
        const drainStart = Date.now();
        let result = audit(seen.acked, seen.unacked, await readBucket());
        while (result.lost.length && Date.now() - drainStart < 60_000) {
          await sleep(1000);
          result = audit(seen.acked, seen.unacked, await readBucket());
        }
        const drainMs = Date.now() - drainStart;
        console.log(
          `outage figures: requests ${seen.requests} (${describeStatuses(seen.statuses)}); ${
            describeAudit(result)
          }; ` +
            `/ready 200 again ${readyMs} ms after the store returned; drained ${drainMs} ms after the load stopped; ` +
            `objects ${downloaded.size}`,
        );
        assert.deepEqual(
          result.lost.slice(0, 10),
          [],
          `${result.lost.length} acknowledged records not in the bucket\n${problems(server.output())}`,
        );
        assert.deepEqual(
          result.duplicated.slice(0, 10),
          [],
          `${result.duplicated.length} records duplicated`,
        );
        assert.deepEqual(result.unacknowledgedDuplicated.slice(0, 10), []);
        assert.deepEqual(result.unknown.slice(0, 10), []);

        // A graceful stop adds no duplicates either.
        assert.equal(await server.stop(), 0);
        server = undefined;
        const final = audit(seen.acked, seen.unacked, await readBucket());
        assert.equal(final.lost.length, 0);
        assert.equal(final.duplicated.length, 0);
        assert.equal(final.unacknowledgedDuplicated.length, 0);
      } finally {
        await load?.stop();
        await server?.kill();
        await s3.stop();
        Deno.removeSync(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "kill -9 during a storage outage, restart once storage is back: interrupted writes are redone exactly once",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const seed = seedFor("outage kill");
    const s3 = await startS3Server();
    const dir = Deno.makeTempDirSync({ prefix: "o2p-outage-kill-" });
    const { readBucket } = bucketReader(bucketOf(s3), dir);
    let server: ServerProcess | undefined;
    let load: ReturnType<typeof startLoad> | undefined;
    try {
      server = await spawnServer(serverEnv(s3ServerEnv(s3), dir));
      let url = server.url;
      load = startLoad({ url: () => url, clients: 4, seed, prefix: `d${seed}`, padding: 64 });
      await sleep(1000);
      await s3.stop();
      // Batches cut now log their intents and then fail to be written, again and again.
      await sleep(1500);
      await server.kill();
      url = "http://127.0.0.1:1";
      const seen = await load.stop();
      load = undefined;
      await s3.restart();
      server = await spawnServer(serverEnv(s3ServerEnv(s3), dir));
      const m = /replayed the write-ahead log requests=(\d+) records=(\d+) redoneWrites=(\d+)/.exec(
        server.output(),
      );
      assert.ok(m, "nothing was replayed");
      assert.ok(Number(m[3]) > 0, "no interrupted write to redo: the scenario did not happen");
      assert.equal(await server.stop(), 0);
      server = undefined;
      const result = audit(seen.acked, seen.unacked, await readBucket());
      console.log(
        `outage kill: requests ${seen.requests} (${describeStatuses(seen.statuses)}); ${
          describeAudit(result)
        }; ` +
          `replayed ${m[1]} requests (${m[2]} records), ${m[3]} interrupted writes redone`,
      );
      assert.deepEqual(result.lost.slice(0, 10), [], `${result.lost.length} acknowledged records lost`);
      assert.deepEqual(result.duplicated.slice(0, 10), [], `${result.duplicated.length} records duplicated`);
      assert.deepEqual(result.unacknowledgedDuplicated.slice(0, 10), []);
      assert.deepEqual(result.unknown.slice(0, 10), []);
    } finally {
      await load?.stop();
      await server?.kill();
      await s3.stop();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
