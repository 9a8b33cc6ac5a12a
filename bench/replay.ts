/**
 * `deno run -A bench/replay.ts [--runs 3] [--sizes 10000,100000,1000000]`: what a restart after kill -9
 * costs, by how much the write-ahead log holds.
 *
 * For each size, a server (`tests/reliability/server_process.ts`, the real `main.ts`) is sent that many
 * log records (requests of 1 000 generated records, `bench/data.ts`, protobuf, 4 clients), every one
 * acknowledged, then killed with SIGKILL:
 *
 * - **unflushed**: batch settings that write nothing (`batch.max_rows` 100M, `max_age_secs` 36 000,
 *   `max_bytes` 4 GiB): every record is in the log only, and a restart must batch them all again;
 * - **flushed**: `batch.max_rows` 100 000 and `max_age_secs` 1; the kill comes once every object is
 *   written (the log's live requests are all finished).
 *
 * Then, `--runs` times, a restart with the same settings is timed from spawn to listening (the replay
 * happens before the server listens; measured to the listening line, polled every 20 ms), its peak RSS
 * read from /proc, and it is killed again (a replay writes nothing while its batches are not due, so the
 * next restart finds the same log). An empty folder gives the baseline. Prints a markdown table.
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { encodeProtobuf, generateLogs } from "./data.ts";
import { machineMarkdown } from "./machine.ts";
import { parquetFilesUnder } from "../tests/reliability/id_audit.ts";
import { type ServerProcess, spawnServer } from "../tests/reliability/server_process.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    sizes: { type: "string", default: "10000,100000,1000000" },
  },
});
const RUNS = Number(values.runs);
const SIZES = values.sizes!.split(",").map(Number);
const PER_REQUEST = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function env(dir: string, flushed: boolean): Record<string, string> {
  return {
    OTLP2PARQUET_STORAGE_PATH: join(dir, "data"),
    OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
    OTLP2PARQUET_WAL_MAX_BYTES: "8GiB",
    OTLP2PARQUET_BATCH_MAX_BYTES: "4GiB",
    OTLP2PARQUET_MAX_INFLIGHT_BYTES: "256MiB",
    OTLP2PARQUET_LOG_LEVEL: "info",
    DENO_V8_FLAGS: "--max-semi-space-size=4,--expose-gc",
    ...(flushed
      ? { OTLP2PARQUET_BATCH_MAX_ROWS: "100000", OTLP2PARQUET_BATCH_MAX_AGE_SECS: "1" }
      : { OTLP2PARQUET_BATCH_MAX_ROWS: "100000000", OTLP2PARQUET_BATCH_MAX_AGE_SECS: "36000" }),
  };
}

/** Sends `records` records in requests of PER_REQUEST, 4 at a time; every one must be acknowledged. */
async function send(server: ServerProcess, records: number): Promise<void> {
  const requests = Math.ceil(records / PER_REQUEST);
  let next = 0;
  const client = async () => {
    for (let i = next++; i < requests; i = next++) {
      const body = encodeProtobuf("logs", generateLogs(PER_REQUEST, { seed: i + 1, serviceOffset: i % 8 }));
      for (;;) {
        const r = await fetch(`${server.url}/v1/logs`, {
          method: "POST",
          headers: { "content-type": "application/x-protobuf" },
          body,
        });
        await r.arrayBuffer();
        if (r.status === 200) break;
        if (r.status !== 429 && r.status !== 503) throw new Error(`status ${r.status}`);
        await sleep(200);
      }
    }
  };
  await Promise.all([client(), client(), client(), client()]);
}

function walBytes(dir: string): number {
  let sum = 0;
  try {
    Deno.statSync(join(dir, "wal"));
  } catch {
    return 0;
  }
  for (const e of Deno.readDirSync(join(dir, "wal"))) {
    if (e.name.endsWith(".wal")) sum += Deno.statSync(join(dir, "wal", e.name)).size;
  }
  return sum;
}

interface Row {
  label: string;
  log: string;
  startMs: number[];
  peakMiB: number[];
  replay: string;
}

async function measure(label: string, dir: string, flushed: boolean, records: number): Promise<Row> {
  if (records > 0) {
    const server = await spawnServer(env(dir, flushed), { startTimeoutMs: 600_000 });
    await send(server, records);
    if (flushed) {
      // Every batch written: nothing open, nothing waiting (the log's requests are then all finished).
      for (let i = 0; i < 600; i++) {
        const files = parquetFilesUnder(join(dir, "data")).length;
        await sleep(2000);
        if (files > 0 && parquetFilesUnder(join(dir, "data")).length === files) break;
      }
    }
    await server.kill();
  }
  const log = `${(walBytes(dir) / 2 ** 20).toFixed(1)} MiB`;
  const row: Row = { label, log, startMs: [], peakMiB: [], replay: "" };
  for (let run = 0; run < RUNS; run++) {
    const started = performance.now();
    const server = await spawnServer(env(dir, flushed), { startTimeoutMs: 600_000 });
    row.startMs.push(performance.now() - started);
    row.peakMiB.push(server.memory().peakKiB / 1024);
    const m = /replayed the write-ahead log (.*)/.exec(server.output());
    row.replay = m ? m[1].replace(/\s+$/, "") : "nothing replayed";
    await server.kill();
  }
  console.error(`${label}: ${row.startMs.map((t) => t.toFixed(0)).join(", ")} ms; ${row.replay}`);
  return row;
}

const rows: Row[] = [];
const base = Deno.makeTempDirSync({ prefix: "o2p-bench-replay-" });
try {
  rows.push(await measure("empty log", join(base, "empty"), false, 0));
  for (const size of SIZES) {
    rows.push(await measure(`${size.toLocaleString("en")} unflushed`, join(base, `u${size}`), false, size));
    Deno.removeSync(join(base, `u${size}`), { recursive: true });
  }
  const largest = Math.max(...SIZES);
  rows.push(await measure(`${largest.toLocaleString("en")} flushed`, join(base, "flushed"), true, largest));
} finally {
  Deno.removeSync(base, { recursive: true });
}

console.log(machineMarkdown());
console.log();
console.log(
  "| Log holds | Log size | Start to listening (median, runs) | Peak RSS | Replay (server's log line) |",
);
console.log("| --- | --- | --- | --- | --- |");
for (const r of rows) {
  console.log(
    `| ${r.label} | ${r.log} | ${median(r.startMs).toFixed(0)} ms (${
      r.startMs.map((t) => t.toFixed(0)).join(", ")
    }) | ` +
      `${median(r.peakMiB).toFixed(0)} MiB | ${r.replay} |`,
  );
}
