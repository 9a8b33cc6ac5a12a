/**
 * How long a graceful stop takes to write what the server holds: the number to size a stop timeout
 * (`server.stop_timeout_secs`, systemd's `TimeoutStopSec`, Kubernetes' `terminationGracePeriodSeconds`,
 * `docker stop -t`) from. Starts the server (`deno run`, as `deno task start`) with the fs store in a temp
 * folder and batches that only the stop writes, sends `--records` log records (generated, ~250 protobuf bytes
 * each, as OTLP/JSON requests of 10,000), sends SIGTERM, and reports the time from the signal to "stopped" (both
 * from the server's own log), the objects and rows written and their bytes.
 *
 * ```sh
 * deno run -A bench/stop_drain.ts --records 200000
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { generateLogs } from "./data.ts";

const { values } = parseArgs({ options: { records: { type: "string", default: "200000" } } });
const records = Number(values.records);
const ROOT = new URL("..", import.meta.url).pathname;
const dir = Deno.makeTempDirSync({ prefix: "o2p-stop-drain-" });

/** Parquet files under `root` (dot-folders skipped: the log, the staging folder) and their bytes. */
function count(root: string): { files: number; bytes: number } {
  let files = 0, bytes = 0;
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory) walk(`${d}/${e.name}`);
      else if (e.name.endsWith(".parquet")) files++, bytes += Deno.statSync(`${d}/${e.name}`).size;
    }
  };
  try {
    walk(root);
  } catch {
    // nothing written yet
  }
  return { files, bytes };
}

const child = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", "--v8-flags=--max-semi-space-size=4,--expose-gc", "src/cli/main.ts", "serve"],
  cwd: ROOT,
  env: {
    NO_COLOR: "1",
    OTLP2PARQUET_LISTEN_ADDR: "127.0.0.1:0",
    OTLP2PARQUET_STORAGE_PATH: `${dir}/data`,
    OTLP2PARQUET_WAL_DIR: `${dir}/wal`,
    OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600",
    OTLP2PARQUET_BATCH_MAX_ROWS: "100000000",
  },
  stdout: "piped",
  stderr: "piped",
}).spawn();
let log = "";
const pump = async (s: ReadableStream<Uint8Array>) => {
  for await (const chunk of s.pipeThrough(new TextDecoderStream())) log += chunk;
};
const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
try {
  let url = "";
  while (!url) {
    url = /listening on (http:\/\/[\d.]+:\d+)/.exec(log)?.[1] ?? "";
    await new Promise((r) => setTimeout(r, 50));
  }
  const per = 10_000;
  for (let sent = 0, i = 0; sent < records; sent += per, i++) {
    const body = JSON.stringify(
      generateLogs(Math.min(per, records - sent), { seed: i + 1, serviceOffset: i }),
    );
    const res = await fetch(`${url}/v1/logs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    await res.body?.cancel();
    if (res.status !== 200) throw new Error(`request ${i}: ${res.status}`);
  }
  const before = count(`${dir}/data`).files;
  child.kill("SIGTERM");
  const { code } = await child.status;
  await pumped;
  const at = (pattern: RegExp) =>
    Date.parse(new RegExp(`^(\\S+) .*${pattern.source}`, "m").exec(log)?.[1] ?? "");
  const ms = at(/SIGTERM received/) && at(/stopped:/) - at(/SIGTERM received/);
  const m = /stopped: every batch written objects=(\d+) rows=(\d+)/.exec(log);
  const { files, bytes } = count(`${dir}/data`);
  console.log(
    `exit ${code}; ${records} records sent; ${before} objects written before the signal; in all ${m?.[1]} ` +
      `objects (${files} files), ${m?.[2]} rows, ${(bytes / 1024 / 1024).toFixed(1)} MiB of Parquet; ` +
      `the stop took ${ms} ms (signal to "stopped", server log)`,
  );
} finally {
  try {
    child.kill("SIGKILL");
  } catch {
    // exited
  }
  Deno.removeSync(dir, { recursive: true });
}
