/**
 * A full write-ahead log against the real server process (issue 15): with the setting of the issue
 * (`wal_max_bytes` = `batch.max_bytes` = 4 MiB, 1 MiB payloads) and a working store, steady protobuf and
 * OTLP/JSON load, one service and many, gets no 503 at all and every acknowledged record is stored once
 * (read back with DuckDB). With the store (s3rver) gone, `/ready` turns 503 by its probe alone, without
 * traffic, and back to 200 when it returns; under load the 503 for a full log names the store's failure.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { s3ServerEnv, startS3Server } from "../support/s3_server.ts";
import { audit, countIds, describeAudit, parquetFilesUnder } from "./id_audit.ts";
import { describeStatuses, type Load, mergeResults, prng, seedFor, startLoad } from "./load.ts";
import { idLogsJson } from "./otlp_proto.ts";
import { problems, type ServerProcess, spawnServer, waitForStatus } from "./server_process.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

/** The setting of issue 15, storing under `dir`: a log as large as a batch, 1 MiB payloads. */
function issueSetting(dir: string): Record<string, string> {
  return {
    OTLP2PARQUET_STORAGE_PATH: join(dir, "data"),
    OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
    OTLP2PARQUET_WAL_MAX_BYTES: "4MiB",
    OTLP2PARQUET_BATCH_MAX_BYTES: "4MiB",
    OTLP2PARQUET_MAX_PAYLOAD_BYTES: "1MiB",
    // Never due by age while a test runs: only the log's bound (or a full batch) writes one.
    OTLP2PARQUET_BATCH_MAX_AGE_SECS: "600",
  };
}

Deno.test({
  name: "4 MiB log, 4 MiB batches: steady protobuf and JSON load, one service and many, gets no 503",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const seed = seedFor("log full, store healthy");
    const dir = Deno.makeTempDirSync({ prefix: "o2p-logfull-" });
    let server: ServerProcess | undefined;
    const loads: Load[] = [];
    try {
      server = await spawnServer(issueSetting(dir));
      const url = server.url;
      const common = { url: () => url, seed, maxRecords: 200, padding: 48 };
      // Protobuf and JSON, one service and forty: four loads of two clients each at once.
      loads.push(startLoad({ ...common, clients: 2, prefix: `p1${seed}`, services: 1 }));
      loads.push(startLoad({ ...common, clients: 2, prefix: `j1${seed}`, services: 1, json: true }));
      loads.push(startLoad({ ...common, clients: 2, prefix: `pm${seed}`, services: 40 }));
      loads.push(startLoad({ ...common, clients: 2, prefix: `jm${seed}`, services: 40, json: true }));
      await sleep(8000);
      const ready = await fetch(`${url}/ready`);
      const readyAnswer = [ready.status, await ready.text()];
      const [p1, j1, pm, jm] = await Promise.all(loads.splice(0).map((l) => l.stop()));
      const seen = mergeResults([p1, j1, pm, jm]);
      // Objects written while the server ran: batches were cut before they were due.
      const writtenWhileRunning = parquetFilesUnder(join(dir, "data")).length;
      assert.equal(await server.stop(), 0);
      server = undefined;
      const result = audit(seen.acked, seen.unacked, await countIds(parquetFilesUnder(join(dir, "data"))));
      // Bodies acknowledged: several times what the log holds, so it filled and was freed.
      const jsonBytes = j1.ackedBytes + jm.ackedBytes;
      console.log(
        `log full, store healthy: requests ${seen.requests} (${describeStatuses(seen.statuses)}); ${
          describeAudit(result)
        }; objects written while running ${writtenWhileRunning}; ${(seen.ackedBytes / MiB).toFixed(1)} MiB ` +
          `acknowledged, ${(jsonBytes / MiB).toFixed(1)} MiB of it JSON`,
      );
      assert.deepEqual([...seen.statuses.keys()], [200], `not only 200s: ${describeStatuses(seen.statuses)}`);
      // Otherwise this run did not test what it is meant to (the machine was too slow to fill the log).
      assert.ok(seen.ackedBytes > 2 * 4 * MiB && jsonBytes > 4 * MiB, "too little load to fill the log");
      assert.ok(writtenWhileRunning > 0, "no batch was written while the server ran");
      assert.deepEqual(readyAnswer, [200, "ready\n"]);
      assert.deepEqual(result.lost.slice(0, 5), [], `${result.lost.length} acknowledged records lost`);
      assert.deepEqual(result.duplicated.slice(0, 5), [], `${result.duplicated.length} records duplicated`);
      assert.equal(result.acknowledged, seen.acked.size);
    } finally {
      await Promise.all(loads.map((l) => l.stop()));
      await server?.kill();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "4 MiB log, 4 MiB batches: kill -9 while full logs are freed and segments rotated loses and doubles nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const seed = seedFor("log full, kill -9");
    const random = prng(seed);
    const dir = Deno.makeTempDirSync({ prefix: "o2p-logfull-kill-" });
    const env = issueSetting(dir);
    let server: ServerProcess | undefined;
    let url = "http://127.0.0.1:1";
    const common = { url: () => url, seed, maxRecords: 200, padding: 48, clients: 2 };
    const loads = [
      startLoad({ ...common, prefix: `kj${seed}`, services: 1, json: true }),
      startLoad({ ...common, prefix: `km${seed}`, services: 40, json: true }),
    ];
    try {
      for (let cycle = 0; cycle < 4; cycle++) {
        server = await spawnServer(env);
        url = server.url;
        await sleep(1500 + Math.floor(random() * 1500));
        await server.kill();
        assert.ok(!/unexpected error|ERROR/.test(server.output()), `errors logged:\n${server.output()}`);
        server = undefined;
      }
      server = await spawnServer(env);
      url = server.url;
      await sleep(1000);
      const seen = mergeResults(await Promise.all(loads.splice(0).map((l) => l.stop())));
      assert.equal(await server.stop(), 0);
      server = undefined;
      const result = audit(seen.acked, seen.unacked, await countIds(parquetFilesUnder(join(dir, "data"))));
      console.log(
        `log full, kill -9: requests ${seen.requests} (${describeStatuses(seen.statuses)}); ${
          describeAudit(result)
        }; ${(seen.ackedBytes / MiB).toFixed(1)} MiB acknowledged over 4 kills`,
      );
      assert.ok(seen.ackedBytes > 4 * MiB, "too little load to fill the log");
      assert.equal(seen.statuses.get(503) ?? 0, 0, `503s: ${describeStatuses(seen.statuses)}`);
      assert.deepEqual(result.lost.slice(0, 5), [], `${result.lost.length} acknowledged records lost`);
      assert.deepEqual(result.duplicated.slice(0, 5), [], `${result.duplicated.length} records duplicated`);
      assert.deepEqual(result.unacknowledgedDuplicated.slice(0, 5), []);
    } finally {
      await Promise.all(loads.map((l) => l.stop()));
      await server?.kill();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "/ready: the store probe finds s3rver gone without traffic; a full log's 503 names the store failure",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const seed = seedFor("ready probe");
    const s3 = await startS3Server();
    const dir = Deno.makeTempDirSync({ prefix: "o2p-probe-" });
    let server: ServerProcess | undefined;
    let load: Load | undefined;
    try {
      server = await spawnServer({
        ...s3ServerEnv(s3),
        OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
        OTLP2PARQUET_WAL_MAX_BYTES: "2MiB",
        OTLP2PARQUET_BATCH_MAX_BYTES: "1MiB",
        OTLP2PARQUET_MAX_PAYLOAD_BYTES: "512KiB",
        OTLP2PARQUET_BATCH_MAX_AGE_SECS: "0.5",
        OTLP2PARQUET_STORAGE_PROBE_INTERVAL_SECS: "1",
      });
      const url = server.url;
      const ready = async () => {
        const r = await fetch(`${url}/ready`);
        return { status: r.status, body: await r.text() };
      };
      assert.deepEqual(await ready(), { status: 200, body: "ready\n" });

      // No traffic at all: only the probe can find out.
      await s3.stop();
      assert.ok(await waitForStatus(`${url}/ready`, { status: 503, timeoutMs: 15_000 }), "/ready stayed 200");
      const down = await ready();
      assert.equal(down.status, 503);
      assert.match(down.body, /^not ready: store: probe: /);
      await s3.restart();
      assert.ok(await waitForStatus(`${url}/ready`, { timeoutMs: 15_000 }), "/ready stayed 503");

      // Under load with the store gone, the log fills; its 503 says the store is failing and why.
      await s3.stop();
      load = startLoad({ url: () => url, clients: 4, seed, prefix: `r${seed}`, json: true, padding: 64 });
      const deadline = Date.now() + 30_000;
      let message = "";
      while (!message && Date.now() < deadline) {
        await sleep(100);
        if (!load.result.statuses.get(503)) continue;
        const r = await fetch(`${url}/v1/logs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: idLogsJson("svc-0", [`probe-${seed}`]),
        });
        const text = await r.text();
        if (r.status === 503 && /write-ahead log full/.test(text)) message = JSON.parse(text).message;
      }
      await load.stop();
      load = undefined;
      assert.match(
        message,
        /^write-ahead log full: the object store is failing \(last error: .+\); retry later$/,
        `no 503 for a full log naming the store:\n${problems(server.output())}`,
      );
      const notReady = await ready();
      assert.equal(notReady.status, 503);
      assert.match(notReady.body, /store: /);
      await s3.restart();
      assert.ok(
        await waitForStatus(`${url}/ready`, { timeoutMs: 60_000 }),
        "/ready stayed 503 after the store returned",
      );
    } finally {
      await load?.stop();
      await server?.kill();
      await s3.stop();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
