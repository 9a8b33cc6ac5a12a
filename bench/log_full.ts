/**
 * Steady load into a small write-ahead log (issue 15): the server process with `durability.wal_max_bytes` as
 * given (default 4 MiB), 4 MiB batches that never fall due by age, 1 MiB payloads; four loads of two clients
 * each (protobuf and OTLP/JSON, one service and forty) for the given seconds. Prints the statuses and what was
 * acknowledged per second, so a 4 MiB log (batches written when it fills) can be set beside a large one.
 *
 * `deno run -A bench/log_full.ts [wal_max_bytes] [seconds]`, e.g. `4MiB 8` then `64MiB 8`.
 *
 * @module
 */

import { join } from "node:path";
import { describeStatuses, mergeResults, startLoad } from "../tests/reliability/load.ts";
import { parquetFilesUnder } from "../tests/reliability/id_audit.ts";
import { spawnServer } from "../tests/reliability/server_process.ts";

const wal = Deno.args[0] ?? "4MiB";
const secs = Number(Deno.args[1] ?? 8);
const dir = Deno.makeTempDirSync({ prefix: "o2p-log-full-bench-" });
try {
  const server = await spawnServer({
    OTLP2PARQUET_STORAGE_PATH: join(dir, "data"),
    OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
    OTLP2PARQUET_WAL_MAX_BYTES: wal,
    OTLP2PARQUET_BATCH_MAX_BYTES: "4MiB",
    OTLP2PARQUET_MAX_PAYLOAD_BYTES: "1MiB",
    OTLP2PARQUET_BATCH_MAX_AGE_SECS: "600",
  });
  const common = { url: () => server.url, seed: 1, maxRecords: 200, padding: 48 };
  const loads = [
    startLoad({ ...common, clients: 2, prefix: "p1", services: 1 }),
    startLoad({ ...common, clients: 2, prefix: "j1", services: 1, json: true }),
    startLoad({ ...common, clients: 2, prefix: "pm", services: 40 }),
    startLoad({ ...common, clients: 2, prefix: "jm", services: 40, json: true }),
  ];
  await new Promise((r) => setTimeout(r, secs * 1000));
  const seen = mergeResults(await Promise.all(loads.map((l) => l.stop())));
  const objects = parquetFilesUnder(join(dir, "data")).length;
  await server.stop();
  const mib = (seen.ackedBytes / 2 ** 20 / secs).toFixed(2);
  console.log(
    `wal ${wal}: ${seen.requests} requests (${
      describeStatuses(seen.statuses)
    }), ${seen.acked.size} records; ` +
      `${mib} MiB/s and ${(seen.acked.size / secs).toFixed(0)} records/s acknowledged; ${objects} objects ` +
      "written before the stop",
  );
} finally {
  Deno.removeSync(dir, { recursive: true });
}
