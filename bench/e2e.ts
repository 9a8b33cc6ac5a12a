/**
 * End-to-end load runs: an OTLP/HTTP server pinned to core 0, `bench/loadgen.ts` pinned to core 1,
 * 5,000-record requests with 4 in flight for a bounded time and count, then SIGTERM, wait for the exit,
 * and count the rows actually written to Parquet (DuckDB) against the records acknowledged.
 *
 * ```sh
 * deno run -A bench/e2e.ts                      # ours, protobuf / JSON / protobuf+gzip
 * deno run -A bench/e2e.ts --compare-rust       # and the Rust otlp2parquet on the same load
 * deno run -A bench/e2e.ts --server-cmd "./other-server --port {port} --out {dir}" --health tcp
 * ```
 *
 * Any command can be the server: `{port}`, `{addr}` (127.0.0.1:port) and `{dir}` (an empty storage
 * directory) are substituted, and `OTLP2PARQUET_LISTEN_ADDR` / `OTLP2PARQUET_STORAGE_PATH` are set too.
 * Readiness: `GET /health` answering 200, or (`--health tcp`) the port accepting connections.
 *
 * JSON requests carry 3,000 records (`--json-records`), not 5,000: with its defaults the Rust server
 * refuses bodies over 2 MiB (413), and 5,000 JSON records are 3.2 MB.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import type { Variant } from "./bodies.ts";
import type { LoadResult } from "./loadgen.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DENO = `${ROOT}/node_modules/.bin/deno`;

/** Where `bench/install_rust_reference.sh` installs the Rust otlp2parquet. */
export const RUST_BIN = Deno.env.get("OTLP2PARQUET_RUST_BIN") ??
  "/work/tools/otlp2parquet-rust/bin/otlp2parquet";

/** How to start and probe one server. */
export interface ServerSpec {
  name: string;
  /** argv; `{port}`, `{addr}`, `{dir}` are substituted. */
  cmd: string[];
  cwd?: string;
  /** `"/health"`-like path answering 200 when up, or `"tcp"` for "the port accepts". */
  health: string;
  /** Set when the server cannot run here; the runs are then reported with this status. */
  unavailable?: string;
}

/** One server × variant run. */
export interface E2eResult {
  server: string;
  variant: Variant;
  /** "ok", or why there are no numbers (e.g. "pending server", "not installed", "failed: …"). */
  status: string;
  load?: LoadResult;
  /** Peak of the summed VmRSS of the server's process tree (sampled every 100 ms), MB. */
  peakRssMB?: number;
  /** VmHWM of the server's main process at its last sample, MB. */
  hwmMB?: number;
  /** From SIGTERM to exit, seconds. */
  shutdownSeconds?: number;
  exitCode?: number | null;
  rowsWritten?: number;
  files?: number;
  parquetBytes?: number;
  /** Acknowledged records / (first request → server exit): includes the final flush. */
  e2eRecordsPerSecond?: number;
  /** rows written == records acknowledged. */
  complete?: boolean;
  logFile?: string;
}

/** Our server. */
export function oursSpec(): ServerSpec {
  const main = `${ROOT}/src/cli/main.ts`;
  let unavailable: string | undefined;
  try {
    Deno.statSync(main);
  } catch {
    unavailable = "pending server";
  }
  // The command of `deno task start` (deno.json): a 4 MiB young generation keeps V8's heap near what it
  // uses (measured: peak RSS 455 -> 395 MB under the protobuf load, same throughput).
  const cmd = [DENO, "run", "-A", "--v8-flags=--max-semi-space-size=4,--expose-gc", main, "serve"];
  return { name: "ours", cmd, cwd: ROOT, health: "/health", unavailable };
}

/** The Rust otlp2parquet (only its installed binary is run), with its own defaults and fs storage. */
export function rustSpec(): ServerSpec {
  let unavailable: string | undefined;
  try {
    Deno.statSync(RUST_BIN);
  } catch {
    unavailable = `not installed (run bench/install_rust_reference.sh; looked for ${RUST_BIN})`;
  }
  return { name: "rust", cmd: [RUST_BIN, "serve", "--output", "{dir}"], health: "/health", unavailable };
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

let canPin: boolean | undefined;
/** `taskset -c CORE` when taskset exists and the machine has more than one core. */
export async function pin(core: number): Promise<string[]> {
  if (canPin === undefined) {
    try {
      const out = await new Deno.Command("taskset", { args: ["-c", "0", "true"] }).output();
      canPin = out.success && navigator.hardwareConcurrency > 1;
    } catch {
      canPin = false;
    }
    if (!canPin) console.error("e2e: taskset unavailable or one core only: processes are not pinned");
  }
  return canPin ? ["taskset", "-c", String(core)] : [];
}

export function readProc(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** The pids of a process and all its descendants. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const stat = readProc(`/proc/${e.name}/stat`);
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid)!.push(Number(e.name));
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length && out.length < 10_000) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** A `/proc/PID/status` field in kB (0 when absent). */
export function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = readProc(`/proc/${pid}/status`).match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return m ? Number(m[1]) : 0;
}

export function substitute(args: string[], vars: Record<string, string>): string[] {
  return args.map((a) => a.replace(/\{(port|addr|dir)\}/g, (_, k: string) => vars[k]));
}

export async function waitReady(port: number, health: string, child: Deno.ChildProcess, limitMs: number) {
  let exited = false;
  child.status.then(() => exited = true);
  const until = performance.now() + limitMs;
  while (performance.now() < until) {
    if (exited) throw new Error("server exited during start-up");
    try {
      if (health === "tcp") {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return;
      }
      const res = await fetch(`http://127.0.0.1:${port}${health}`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server not ready after ${limitMs / 1000} s`);
}

export function parquetStats(dir: string): { files: string[]; bytes: number } {
  const files: string[] = [];
  let bytes = 0;
  const walk = (d: string, depth: number): void => {
    if (depth > 16) return;
    for (const e of Deno.readDirSync(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) walk(p, depth + 1);
      else if (e.isFile && e.name.endsWith(".parquet")) files.push(p), bytes += Deno.statSync(p).size;
    }
  };
  try {
    walk(dir, 0);
  } catch {
    // no directory: nothing written
  }
  return { files, bytes };
}

/** Rows in Parquet files, read with DuckDB. */
export async function countRows(files: readonly string[]): Promise<number> {
  if (files.length === 0) return 0;
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  try {
    const list = files.map((f) => `'${f.replaceAll("'", "''")}'`).join(",");
    const reader = await conn.runAndReadAll(
      `SELECT count(*) FROM read_parquet([${list}], union_by_name = true)`,
    );
    return Number(reader.getRows()[0][0]);
  } finally {
    conn.closeSync();
  }
}

/** A server process started by a bench: its output goes to a log file. */
export interface BenchServer {
  readonly child: Deno.ChildProcess;
  /** The exit status once it has exited. */
  exited(): Deno.CommandStatus | undefined;
  /**
   * SIGTERM, then SIGKILL if it has not exited within `limitMs`: resolves with the exit status, or
   * undefined when it had to be killed.
   */
  stop(limitMs: number): Promise<Deno.CommandStatus | undefined>;
  /** Kills it if still running (after a failure) and waits for the exit. */
  kill(): Promise<void>;
  /** Largest VmRSS sum over its process tree so far, and its own VmHWM, kB (sampled every 100 ms). */
  peakRssKb(): number;
  hwmKb(): number;
  /** Stops sampling, waits for its output to be written and closes the log. */
  close(): Promise<void>;
}

/**
 * Starts `argv` with stdout and stderr both written to `logFile` (small lines: interleaving is fine), and
 * samples its memory every 100 ms (the process tree re-listed every second) until `close`; `onSample` is
 * called at each sample with the tree while the process runs.
 */
export async function spawnServer(
  argv: readonly string[],
  options: {
    cwd: string;
    env: Record<string, string>;
    logFile: string;
    onSample?: (now: number, tree: readonly number[]) => void;
  },
): Promise<BenchServer> {
  const log = await Deno.open(options.logFile, { write: true, create: true, truncate: true });
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const drain = Promise.all([child.stdout, child.stderr].map(async (s) => {
    for await (const chunk of s) await log.write(chunk);
  }));
  let exited: Deno.CommandStatus | undefined;
  child.status.then((s) => exited = s);
  let peakKb = 0, hwmKb = 0, sampling = true, tree = [child.pid], treeAt = 0;
  const sampler = (async () => {
    while (sampling) {
      const now = Date.now();
      if (now - treeAt > 1000) tree = processTree(child.pid), treeAt = now;
      let sum = 0;
      for (const pid of tree) sum += statusKb(pid, "VmRSS");
      peakKb = Math.max(peakKb, sum);
      hwmKb = Math.max(hwmKb, statusKb(child.pid, "VmHWM"));
      if (!exited) options.onSample?.(now, tree);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    child,
    peakRssKb: () => peakKb,
    hwmKb: () => hwmKb,
    exited: () => exited,
    async stop(limitMs) {
      child.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        child.status,
        new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), limitMs)),
      ]);
      clearTimeout(timer);
      if (!status) {
        child.kill("SIGKILL");
        await child.status;
      }
      return status;
    },
    async kill() {
      if (!exited) child.kill("SIGKILL");
      await child.status;
    },
    async close() {
      sampling = false;
      await sampler;
      await drain.catch(() => {});
      log.close();
    },
  };
}

/** Options of one run. */
export interface RunOptions {
  variant: Variant;
  /** Seconds of load; default 15. */
  duration?: number;
  /** Request bound; default 2000. */
  maxRequests?: number;
  /** Records per request; default 5000. */
  records?: number;
  /** In flight; default 4. */
  concurrency?: number;
  /** Where logs and storage dirs go; default a new temp dir. */
  workDir?: string;
  /** Keep the written Parquet files; default false. */
  keepData?: boolean;
  /** Seconds allowed for start-up and for shutdown; default 60 and 180. */
  startTimeout?: number;
  shutdownTimeout?: number;
}

/** Starts the server, loads it, stops it, counts what it wrote. */
export async function runE2e(spec: ServerSpec, options: RunOptions): Promise<E2eResult> {
  const result: E2eResult = { server: spec.name, variant: options.variant, status: "ok" };
  if (spec.unavailable) return { ...result, status: spec.unavailable };
  const work = options.workDir ?? await Deno.makeTempDir({ prefix: "otlp2parquet_e2e_" });
  const tag = `${spec.name}-${options.variant.replace("+", "_")}`;
  const dir = `${work}/${tag}-data`;
  Deno.mkdirSync(dir, { recursive: true });
  const port = freePort();
  const addr = `127.0.0.1:${port}`;
  const argv = [...await pin(0), ...substitute(spec.cmd, { port: String(port), addr, dir })];
  result.logFile = `${work}/${tag}.log`;
  const server = await spawnServer(argv, {
    cwd: spec.cwd ?? dir,
    env: { OTLP2PARQUET_LISTEN_ADDR: addr, OTLP2PARQUET_STORAGE_PATH: dir },
    logFile: result.logFile,
  });
  const child = server.child;
  try {
    await waitReady(port, spec.health, child, (options.startTimeout ?? 60) * 1000);
    const genArgv = [
      ...await pin(1),
      DENO,
      "run",
      "-A",
      `${ROOT}/bench/loadgen.ts`,
      `--url=http://${addr}/v1/logs`,
      `--variant=${options.variant}`,
      `--records=${options.records ?? 5000}`,
      `--concurrency=${options.concurrency ?? 4}`,
      `--duration=${options.duration ?? 15}`,
      `--max-requests=${options.maxRequests ?? 2000}`,
    ];
    const cmd = new Deno.Command(genArgv[0], { args: genArgv.slice(1), stdout: "piped", stderr: "inherit" });
    const out = await cmd.output();
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
    if (!out.success || !line.startsWith("{")) throw new Error(`load generator failed (exit ${out.code})`);
    result.load = JSON.parse(line) as LoadResult;
    const early = server.exited();
    if (early) throw new Error(`server exited during the load (code ${early.code})`);
    const stopAt = performance.now();
    const limit = (options.shutdownTimeout ?? 180) * 1000;
    const status = await server.stop(limit);
    result.shutdownSeconds = Math.round(performance.now() - stopAt) / 1000;
    if (!status) result.status = `failed: no exit ${limit / 1000} s after SIGTERM (killed)`;
    result.exitCode = status?.code ?? null;
    const endMs = Date.now();
    const { files, bytes } = parquetStats(dir);
    result.files = files.length, result.parquetBytes = bytes;
    result.rowsWritten = await countRows(files);
    result.complete = result.rowsWritten === result.load.ackedRecords;
    result.e2eRecordsPerSecond = Math.round(
      result.load.ackedRecords / ((endMs - result.load.startMs) / 1000),
    );
    if (result.status === "ok" && result.load.acked === 0) result.status = "failed: no request acknowledged";
    else if (result.status === "ok" && !result.complete) {
      result.status = "rows written ≠ records acknowledged";
    }
  } catch (e) {
    result.status = `failed: ${(e as Error).message}`;
    await server.kill();
  } finally {
    await server.close();
    result.peakRssMB = Math.round(server.peakRssKb() / 1024);
    result.hwmMB = Math.round(server.hwmKb() / 1024);
    if (!options.keepData) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return result;
}

const f0 = (x: number | undefined): string => (x === undefined ? "" : Math.round(x).toLocaleString("en-US"));
const f1 = (x: number | undefined): string => (x === undefined ? "" : x.toFixed(1));

/** The results as a markdown table, with ours/rust ratios when both ran. */
export function e2eTable(results: readonly E2eResult[]): string {
  const lines = [
    "| server | variant | records/request | status | records/s (acked) | records/s (to Parquet, incl. shutdown flush) | MB/s (raw) | p50 ms | p99 ms | errors | peak RSS MB | shutdown s | rows written / acked |",
    "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
  ];
  for (const r of results) {
    const l = r.load;
    const errors = l
      ? Object.entries(l.statuses).filter(([s]) => !s.startsWith("2")).map(([s, n]) => `${s}×${n}`).join(
        " ",
      ) ||
        "0"
      : "";
    lines.push(
      `| ${r.server} | ${r.variant} | ${f0(l?.recordsPerRequest)} | ${r.status} | ${
        f0(l?.recordsPerSecond)
      } | ${f0(r.e2eRecordsPerSecond)} | ${f1(l?.rawMBps)} | ${f1(l?.latencyMs.p50)} | ${
        f1(l?.latencyMs.p99)
      } | ${errors} | ${f0(r.peakRssMB)} | ${f1(r.shutdownSeconds)} | ${
        l ? `${f0(r.rowsWritten)} / ${f0(l.ackedRecords)}` : ""
      } |`,
    );
  }
  const ratios: string[] = [];
  const measured = (r: E2eResult): boolean => !!r.load && r.load.ackedRecords > 0;
  for (const o of results.filter((r) => r.server === "ours" && measured(r))) {
    const rust = results.find((r) => r.server === "rust" && r.variant === o.variant && measured(r));
    if (!rust) continue;
    ratios.push(
      `| ${o.variant} | ${(o.load!.recordsPerSecond / rust.load!.recordsPerSecond).toFixed(2)} | ${
        ((o.e2eRecordsPerSecond ?? 0) / (rust.e2eRecordsPerSecond || 1)).toFixed(2)
      } | ${((o.peakRssMB ?? 0) / (rust.peakRssMB || 1)).toFixed(2)} |`,
    );
  }
  if (ratios.length) {
    lines.push(
      "",
      "| variant | ours/rust records/s (acked) | ours/rust records/s (to Parquet) | ours/rust peak RSS |",
      "| --- | ---: | ---: | ---: |",
      ...ratios,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "compare-rust": { type: "boolean", default: false },
      "no-rust": { type: "boolean", default: false },
      "rust-only": { type: "boolean", default: false },
      "server-cmd": { type: "string" },
      "server-name": { type: "string", default: "custom" },
      health: { type: "string", default: "/health" },
      variants: { type: "string", default: "protobuf,json,protobuf+gzip" },
      duration: { type: "string", default: "15" },
      "max-requests": { type: "string", default: "2000" },
      records: { type: "string", default: "5000" },
      "json-records": { type: "string", default: "3000" },
      concurrency: { type: "string", default: "4" },
      "json-out": { type: "string" },
      "keep-data": { type: "boolean", default: false },
    },
  });
  const specs: ServerSpec[] = [];
  if (values["server-cmd"]) {
    specs.push({
      name: values["server-name"],
      cmd: values["server-cmd"].split(/\s+/),
      health: values.health,
    });
  } else {
    if (!values["rust-only"]) specs.push(oursSpec());
    const rust = rustSpec();
    // Rust runs when asked, or by default when it is installed.
    if (!values["no-rust"] && (values["compare-rust"] || values["rust-only"] || !rust.unavailable)) {
      specs.push(rust);
    }
  }
  // Server logs stay for reading after the run; the data directories are removed after counting.
  const work = `${ROOT}/.bench/e2e`;
  Deno.mkdirSync(work, { recursive: true });
  console.error(`e2e: server logs and data under ${work}`);
  const results: E2eResult[] = [];
  for (const variant of values.variants.split(",") as Variant[]) {
    for (const spec of specs) {
      console.error(`e2e: ${spec.name} ${variant} …`);
      const r = await runE2e(spec, {
        variant,
        duration: Number(values.duration),
        maxRequests: Number(values["max-requests"]),
        records: Number(variant.startsWith("json") ? values["json-records"] : values.records),
        concurrency: Number(values.concurrency),
        workDir: work,
        keepData: values["keep-data"],
      });
      console.error(
        `e2e: ${spec.name} ${variant}: ${r.status}${r.load ? `, ${r.load.recordsPerSecond} records/s` : ""}`,
      );
      results.push(r);
    }
  }
  if (values["json-out"]) Deno.writeTextFileSync(values["json-out"], JSON.stringify(results, null, 2));
  console.log(e2eTable(results));
}
