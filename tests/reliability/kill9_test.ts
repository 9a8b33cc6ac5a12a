/**
 * kill -9 under concurrent load, many times over: every record acknowledged before a kill must be stored
 * after the restarts, exactly once. The clients resend every unanswered request with the same bytes until
 * it is answered, as the Collector does: a request logged before a kill and resent after the restart is
 * stored once, not twice (the retry window, `src/ingest/dedupe.ts`). Seeded (RELIABILITY_SEED) for reproducibility; the figures are printed
 * and quoted in docs/reliability.md.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { audit, countIds, describeAudit, parquetFilesUnder } from "./id_audit.ts";
import { describeStatuses, prng, seedFor, startLoad } from "./load.ts";
import { idLogsRequest } from "./otlp_proto.ts";
import { type ServerProcess, spawnServer } from "./server_process.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CYCLES = Number(Deno.env.get("RELIABILITY_KILL_CYCLES") ?? 24);

/** Batch settings per cycle: frequent flushes (writes interrupted mid-way), and data kept in the log only. */
const PROFILES: { name: string; env: Record<string, string> }[] = [
  {
    name: "small batches",
    env: { OTLP2PARQUET_BATCH_MAX_AGE_SECS: "0.2", OTLP2PARQUET_BATCH_MAX_ROWS: "300" },
  },
  {
    name: "large batches (data in the log only)",
    env: { OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600", OTLP2PARQUET_BATCH_MAX_ROWS: "1000000" },
  },
  {
    name: "medium batches",
    env: { OTLP2PARQUET_BATCH_MAX_AGE_SECS: "0.6", OTLP2PARQUET_BATCH_MAX_ROWS: "2000" },
  },
];

/**
 * The loop: `workers` is `server.workers` (1: decoding and encoding on the main thread; 2: in two worker
 * threads, whose in-flight jobs the kills cut off too).
 */
async function killLoop(workers: number, cycles: number): Promise<void> {
  {
    const seed = seedFor(workers === 1 ? "kill9" : `kill9-${workers}`);
    const random = prng(seed);
    // RELIABILITY_KEEP=1 keeps the data, the log and every server's output for a post-mortem.
    const keep = Boolean(Deno.env.get("RELIABILITY_KEEP"));
    const dir = Deno.makeTempDirSync({ prefix: "o2p-kill9-" });
    const base = {
      OTLP2PARQUET_STORAGE_PATH: join(dir, "data"),
      OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
      OTLP2PARQUET_LOG_LEVEL: "info",
      // A small log (3 MiB segments) so segments are released between kills, and replays meet intent
      // records whose requests are gone.
      OTLP2PARQUET_WAL_MAX_BYTES: "48MiB",
      OTLP2PARQUET_BATCH_MAX_BYTES: "24MiB",
      OTLP2PARQUET_MAX_PAYLOAD_BYTES: "8MiB",
      OTLP2PARQUET_WORKERS: String(workers),
    };
    let server: ServerProcess | undefined;
    let url = "http://127.0.0.1:1";
    const load = startLoad({ url: () => url, clients: 4, seed, prefix: `k${seed}`, retry: true });
    let replays = 0, replayedRecords = 0, redone = 0;
    const countReplay = (s: ServerProcess) => {
      const m = /replayed the write-ahead log requests=(\d+) records=(\d+) redoneWrites=(\d+)/.exec(
        s.output(),
      );
      if (m) replays++, replayedRecords += Number(m[2]), redone += Number(m[3]);
    };
    try {
      for (let cycle = 0; cycle < cycles; cycle++) {
        const profile = PROFILES[cycle % PROFILES.length];
        server = await spawnServer({ ...base, ...profile.env });
        countReplay(server);
        url = server.url;
        const before = load.result.ackedRequests;
        const lifetime = 150 + Math.floor(random() * 1100);
        await new Promise((r) => setTimeout(r, lifetime));
        await server.kill();
        if (keep) Deno.writeTextFileSync(join(dir, `server-${cycle + 1}.log`), server.output());
        assert.ok(!/unexpected error|ERROR/.test(server.output()), `errors logged:\n${server.output()}`);
        console.log(
          `cycle ${cycle + 1}/${cycles} (${profile.name}): killed after ${lifetime} ms, ` +
            `${load.result.ackedRequests - before} requests acknowledged in this cycle`,
        );
        server = undefined;
      }
      url = "http://127.0.0.1:1";
      const seen = await load.stop();

      // A last start replays what is left; a graceful stop flushes it all.
      server = await spawnServer({ ...base, ...PROFILES[1].env });
      countReplay(server);
      assert.equal(await server.stop(), 0);
      assert.ok(!/unexpected error|ERROR/.test(server.output()), `errors logged:\n${server.output()}`);
      server = undefined;

      const files = parquetFilesUnder(join(dir, "data"));
      const result = audit(seen.acked, seen.unacked, await countIds(files));
      console.log(
        `kill9 figures (workers ${workers}): cycles ${cycles}, requests sent ${seen.requests}, acknowledged ${seen.ackedRequests} ` +
          `(${describeStatuses(seen.statuses)}), resent ${seen.resent}; ${describeAudit(result)}; ` +
          `replays ${replays} (${replayedRecords} records replayed, ${redone} interrupted writes redone), ` +
          `objects ${files.length}`,
      );
      assert.ok(seen.ackedRequests > cycles * 10, "too little load to mean anything");
      assert.ok(
        seen.resent >= cycles,
        `only ${seen.resent} requests resent: the kills cut off too few answers`,
      );
      assert.ok(replays >= cycles / 2, `the log was replayed only ${replays} times`);
      const requestsOf = (ids: string[]) => [...new Set(ids.map((id) => id.replace(/-\d+$/, "")))];
      assert.deepEqual(
        result.lost.slice(0, 10),
        [],
        `${result.lost.length} acknowledged records lost, of requests ${requestsOf(result.lost).join(" ")}`,
      );
      assert.deepEqual(result.duplicated.slice(0, 10), [], `${result.duplicated.length} records duplicated`);
      assert.deepEqual(result.unacknowledgedDuplicated.slice(0, 10), []);
      assert.deepEqual(result.unknown.slice(0, 10), []);

      // A start over a fully flushed log adds nothing.
      server = await spawnServer(base);
      assert.equal(await server.stop(), 0);
      server = undefined;
      const again = audit(seen.acked, seen.unacked, await countIds(parquetFilesUnder(join(dir, "data"))));
      assert.equal(again.stored, result.stored, "a restart after a clean stop changed the stored rows");
    } finally {
      await load.stop();
      await server?.kill();
      if (keep) console.log(`kept ${dir}`);
      else Deno.removeSync(dir, { recursive: true });
    }
  }
}

Deno.test({
  name: "kill -9 under concurrent load: every acknowledged record is stored exactly once",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => killLoop(1, CYCLES),
});

Deno.test({
  name:
    "kill -9 under concurrent load with two worker threads: every acknowledged record is stored exactly once",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => killLoop(2, CYCLES),
});

Deno.test({
  name: "a replay keeps every log segment whose requests are not written yet (kill -9 right after a replay)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = Deno.makeTempDirSync({ prefix: "o2p-replay-release-" });
    const env = {
      OTLP2PARQUET_STORAGE_PATH: join(dir, "data"),
      OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
      // 1 MiB segments; a batch is written at 100 rows, else only at shutdown.
      OTLP2PARQUET_WAL_MAX_BYTES: "16MiB",
      OTLP2PARQUET_BATCH_MAX_BYTES: "8MiB",
      OTLP2PARQUET_MAX_PAYLOAD_BYTES: "4MiB",
      OTLP2PARQUET_BATCH_MAX_ROWS: "100",
      OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600",
    };
    const send = async (server: ServerProcess, body: Uint8Array<ArrayBuffer>) => {
      const r = await fetch(`${server.url}/v1/logs`, {
        method: "POST",
        headers: { "content-type": "application/x-protobuf" },
        body,
      });
      await r.arrayBuffer();
      assert.equal(r.status, 200);
    };
    let server: ServerProcess | undefined;
    try {
      // The oldest segment starts with a request whose batch is written (100 rows), followed by requests
      // whose batch stays open (one large row each), until the log moves on to a second segment.
      server = await spawnServer(env);
      const first = Array.from({ length: 100 }, (_, i) => `written-${i}`);
      await send(server, idLogsRequest("svc-written", first));
      await sleep(1000);
      const open: string[] = [];
      for (let i = 0; i < 16; i++) {
        const id = `open-${i}`;
        open.push(id);
        await send(server, idLogsRequest("svc-open", [id + "-".padEnd(100_000, "p")]));
      }
      await server.kill();
      // Replay (the open batch is rebuilt in memory), then a crash before it is written.
      server = await spawnServer(env);
      await sleep(300);
      await server.kill();
      server = await spawnServer(env);
      assert.equal(await server.stop(), 0);
      server = undefined;
      const counts = await countIds(parquetFilesUnder(join(dir, "data")));
      const stored = (id: string) => counts.get(id) ?? counts.get(id + "-".padEnd(100_000, "p")) ?? 0;
      const lost = [...first, ...open].filter((id) => stored(id) !== 1);
      assert.deepEqual(lost, [], "acknowledged records not stored exactly once");
    } finally {
      await server?.kill();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
