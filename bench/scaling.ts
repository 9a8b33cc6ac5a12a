/**
 * `deno task bench --scaling`: issue #12's side-by-side run, in one go on this machine.
 *
 * Servers (each started fresh per run, storage in an empty directory, their own defaults otherwise):
 * ours with 1 worker pinned to core 0 (`taskset -c 0`, load generator on core 1), ours with 1 and with 2
 * workers unpinned, the Rust otlp2parquet pinned and unpinned (unpinned runs leave the load generator
 * unpinned too). Signals logs, traces, metrics × bodies protobuf, JSON, protobuf+gzip. Per cell and server:
 *
 * - closed loop: `concurrency` requests (default 8) of `records` records (5,000; JSON 3,000, since the Rust
 *   server refuses bodies over 2 MiB) always in flight for `duration` seconds, measured after
 *   `closedWarmup` seconds (8) of the same load: records/s acknowledged, sustained. The warm-up's own rate
 *   (the first seconds of a fresh server) is reported too: ours is still compiling its hot code then, and
 *   the Rust server acknowledges from memory until its 1 GiB of buffered batches is full, then slows to what
 *   it writes (at times answering 500 for what it cannot buffer);
 * - open loop: the same requests at a fixed rate, `openFraction` (70 %) of the slower server's closed-loop
 *   rate in its group (pinned: ours vs Rust; unpinned: ours 1 and 2 workers vs Rust), at most
 *   `openConcurrency` in flight, for `openDuration` seconds (default `duration`): p50/p99 latency from each
 *   request's scheduled send time, measured after `openWarmup` seconds (3) of the same load and until the
 *   server has written its first Parquet file (at most `openWarmupMax`), for every server: ours compiles
 *   its hot code meanwhile, the Parquet writer's when it writes its first batch;
 * - both: records acknowledged vs rows in the Parquet files written (DuckDB, after SIGTERM and the final
 *   flush), peak RSS (largest VmRSS sum of the process tree, sampled every 100 ms, or VmHWM), and "cores
 *   busy" = the server's CPU time (utime + stime of every thread, `/proc`) / wall time over the load
 *   window; for ours also its main thread and its worker threads apart.
 *
 * Then the "main-thread ceilings" (unless `--no-ceilings`): the accept loop and body read alone
 * (`bench/accept_server.ts`, pinned), the write-ahead log alone (`bench/wal_ceiling.ts`), and the parallel
 * part in process (`bench/parallel_cost.ts`: decode and Parquet encode per record), with an Amdahl estimate
 * for 8 and 16 cores. Markdown to stdout and `.bench/scaling.md`, everything measured to
 * `.bench/scaling.json`; a progress line per run on stderr.
 *
 * ```sh
 * deno task bench --scaling                                   # everything (~20 minutes)
 * deno task bench --scaling --signals logs --variants protobuf --duration 5
 * deno task bench --scaling --servers ours-w1,rust --no-ceilings
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { BenchOptions } from "../src/cli/bench.ts";
import {
  countRows,
  freePort,
  parquetStats,
  pin,
  RUST_BIN,
  spawnServer,
  substitute,
  waitReady,
} from "./e2e.ts";
import { machineMarkdown } from "./machine.ts";
import type { ParallelCost } from "./parallel_cost.ts";
import { type CpuSplit, cpuSplit, processCpuSeconds } from "./proc_stat.ts";
import type { ScalingLoadResult } from "./scaling_load.ts";
import type { Signal } from "./data.ts";
import type { WalCase, WalCeilingResult } from "./wal_ceiling.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DENO = `${ROOT}/node_modules/.bin/deno`;

/** BENCHMARKS.md "Targets": peak RSS under load ≤ 2 × batch bytes + 150 MB, with the default 128 MiB batches. */
export const RSS_BOUND_MB = Math.round((2 * 128 * 1024 * 1024) / 1e6 + 150);

/** The bound with `workers` worker threads: each thread's runtime adds about 75 MiB (docs/operations.md). */
export function rssBoundMB(workers: number): number {
  return RSS_BOUND_MB + (workers > 1 ? Math.round((workers * 75 * 1024 * 1024) / 1e6) : 0);
}

/**
 * docs/operations.md "Sizing", with the defaults: the data bounds (256 MiB in flight, 128 open batches,
 * 128 queued, 128 encoding, 256 pending) and 190 MiB at rest; with worker threads 128 MiB more (the copy a
 * replay's rows are encoded from) and 75 MiB a thread. In MB.
 */
export function sizingBoundMB(workers: number): number {
  const mib = 896 + 190 + (workers > 1 ? 128 + 75 * workers : 0);
  return Math.round((mib * 1024 * 1024) / 1e6);
}

/** Request bodies of the matrix. */
export type BodyVariant = "protobuf" | "json" | "protobuf+gzip";
/** All of them, in table order. */
export const BODY_VARIANTS: readonly BodyVariant[] = ["protobuf", "json", "protobuf+gzip"];
/** Signals, in table order. */
export const SIGNALS: readonly Signal[] = ["logs", "traces", "metrics"];

/** One server configuration of the matrix. */
export interface ServerConfig {
  id: string;
  label: string;
  kind: "ours" | "rust" | "accept";
  /** Server on core 0, load generator on core 1. */
  pinned: boolean;
  /** `OTLP2PARQUET_WORKERS` (ours). */
  workers?: number;
  /** Runs compared at the same open-loop rate. */
  group: "pinned" | "unpinned";
}

/** The five configurations of issue #12, in table order. */
export const SERVER_CONFIGS: readonly ServerConfig[] = [
  {
    id: "ours-w1-pinned",
    label: "ours, 1 worker, pinned",
    kind: "ours",
    pinned: true,
    workers: 1,
    group: "pinned",
  },
  { id: "rust-pinned", label: "Rust, pinned", kind: "rust", pinned: true, group: "pinned" },
  { id: "ours-w1", label: "ours, 1 worker", kind: "ours", pinned: false, workers: 1, group: "unpinned" },
  { id: "ours-w2", label: "ours, 2 workers", kind: "ours", pinned: false, workers: 2, group: "unpinned" },
  { id: "rust", label: "Rust", kind: "rust", pinned: false, group: "unpinned" },
];

/** The bench-only server that only accepts and reads bodies (the main-thread ceiling), pinned. */
export const ACCEPT_CONFIG: ServerConfig = {
  id: "accept-only",
  label: "accept loop + body read only",
  kind: "accept",
  pinned: true,
  group: "pinned",
};

/** One load run against one freshly started server. */
export interface RunResult {
  server: string;
  signal: Signal;
  variant: BodyVariant;
  mode: "closed" | "open";
  /** "ok", or what went wrong. */
  status: string;
  recordsPerRequest: number;
  /** Closed loop: in flight; open loop: at most in flight. */
  concurrency: number;
  /** Open loop: offered records/s. */
  targetRate?: number;
  load?: ScalingLoadResult;
  /**
   * Seconds of the same load before the measured window, the records it acked, and (closed loop) its
   * own rate and answers: what a fresh server does in its first seconds.
   */
  warmup?: {
    seconds: number;
    acknowledgedRecords: number;
    recordsPerSecond?: number;
    statuses?: Record<string, number>;
  };
  /** Server CPU seconds over the load window (total: the whole process tree), and the window, seconds. */
  cpu?: CpuSplit & { window: number };
  /** Load generator CPU seconds over the same window. */
  loadgenCpu?: number;
  peakRssMB?: number;
  rowsWritten?: number;
  files?: number;
  logFile?: string;
}

/** Options of {@link runScaling}. */
export interface ScalingOptions {
  servers?: readonly string[];
  signals?: readonly Signal[];
  variants?: readonly BodyVariant[];
  /** Seconds of each closed-loop and each open-loop run; default 8. */
  duration?: number;
  /**
   * Seconds of each open-loop run, default `duration`: at 5,000 records a request and a few tens of
   * thousands of records a second, 6 s is ~60 requests, whose p99 is their slowest one.
   */
  openDuration?: number;
  /** Records per request; default 5000 (JSON: `jsonRecords`, default 3000). */
  records?: number;
  jsonRecords?: number;
  /** Closed loop: requests in flight; default 8. */
  concurrency?: number;
  /** Open loop: fraction of the slower closed-loop rate of the group; default 0.7. */
  openFraction?: number;
  /** Open loop: at most in flight; default 32. */
  openConcurrency?: number;
  /**
   * Open loop: seconds of the same load before the measured window, default 3, so that the latency is
   * the server's steady state (ours compiles its hot code in the first seconds; Rust's is compiled ahead).
   * The warm-up goes on (2 s at a time, at most `openWarmupMax` in all) until the server has written a
   * Parquet file: the first batch's encode compiles the writer (~400 ms for logs, with requests waiting on
   * a busy machine meanwhile), a cost paid once per process. The same for every server; its records count
   * in the rows check. 0: measure from the start.
   */
  openWarmup?: number;
  /**
   * Closed loop: seconds of the same load before the measured window, default 8, so that the rate is the
   * one a server sustains: ours compiles its hot code in its first seconds, and the Rust server buffers up
   * to 1 GiB in memory before its rate falls to what it writes. The warm-up's rate is reported apart.
   * 0: measure from the start.
   */
  closedWarmup?: number;
  /** The longest an open loop's warm-up goes on waiting for the server's first Parquet file; default 30 s. */
  openWarmupMax?: number;
  /** Skip the open-loop runs. */
  noOpen?: boolean;
  /** Run the ceilings and the Amdahl inputs; default true. */
  ceilings?: boolean;
  /** Seconds of each accept-only run and each WAL case; default 5 and 3. */
  ceilingDuration?: number;
  walSeconds?: number;
  /** Logs and data directories; default a new temp dir. */
  workDir?: string;
  progress?: (line: string) => void;
}

/** Everything one scaling run measured. */
export interface ScalingReport {
  startedAt: string;
  /** /proc/loadavg's 1, 5 and 15 minute averages when the run started. */
  loadAverage: string;
  options: Required<Omit<ScalingOptions, "workDir" | "progress">>;
  runs: RunResult[];
  accept: RunResult[];
  wal: WalCeilingResult[];
  parallel: ParallelCost[];
  notes: string[];
}

/** Records per request of a body variant. */
function recordsOf(variant: BodyVariant, o: { records: number; jsonRecords: number }): number {
  return variant === "json" ? o.jsonRecords : o.records;
}

function serverArgv(config: ServerConfig): { cmd: string[]; env: Record<string, string> } {
  if (config.kind === "rust") return { cmd: [RUST_BIN, "serve", "--output", "{dir}"], env: {} };
  if (config.kind === "accept") {
    return { cmd: [DENO, "run", "-A", `${ROOT}/bench/accept_server.ts`, "--listen", "{addr}"], env: {} };
  }
  // `deno task start`'s command.
  const cmd = [
    DENO,
    "run",
    "-A",
    "--v8-flags=--max-semi-space-size=4,--expose-gc",
    `${ROOT}/src/cli/main.ts`,
    "serve",
  ];
  return { cmd, env: config.workers ? { OTLP2PARQUET_WORKERS: String(config.workers) } : {} };
}

interface Sample {
  t: number;
  server: CpuSplit;
  loadgen: number;
}

/** The CPU over [startMs, endMs]: the last sample at or before the start to the first at or after the end. */
export function windowCpu(
  samples: readonly Sample[],
  startMs: number,
  endMs: number,
): { server: CpuSplit & { window: number }; loadgen: number } | undefined {
  if (samples.length < 2) return undefined;
  let a = samples[0], b = samples[samples.length - 1];
  for (const s of samples) if (s.t <= startMs) a = s;
  for (let i = samples.length - 1; i >= 0; i--) if (samples[i].t >= endMs) b = samples[i];
  const window = (b.t - a.t) / 1000;
  if (!(window > 0)) return undefined;
  return {
    server: {
      total: b.server.total - a.server.total,
      main: b.server.main - a.server.main,
      workers: b.server.workers - a.server.workers,
      other: Math.max(0, b.server.other - a.server.other),
      window,
    },
    loadgen: b.loadgen - a.loadgen,
  };
}

/** Starts `config`'s server, runs one load against it, stops it and counts what it wrote. */
export async function runOne(
  config: ServerConfig,
  cell: { signal: Signal; variant: BodyVariant },
  load: {
    mode: "closed" | "open";
    records: number;
    concurrency: number;
    duration: number;
    rate?: number;
    /** Seconds of the same load first, not measured (a server in its steady state). */
    warmup?: number;
    /** Go on with the warm-up, 2 s at a time, until the server has written a Parquet file, or for this long in all. */
    warmupUntilWritten?: number;
  },
  workDir: string,
): Promise<RunResult> {
  const result: RunResult = {
    server: config.id,
    signal: cell.signal,
    variant: cell.variant,
    mode: load.mode,
    status: "ok",
    recordsPerRequest: load.records,
    concurrency: load.concurrency,
    targetRate: load.rate,
  };
  if (config.kind === "rust") {
    try {
      Deno.statSync(RUST_BIN);
    } catch {
      return {
        ...result,
        status: `not installed (bash bench/install_rust_reference.sh; looked for ${RUST_BIN})`,
      };
    }
  }
  const tag = `${config.id}-${cell.signal}-${cell.variant.replace("+", "_")}-${load.mode}`;
  const dir = `${workDir}/${tag}-data`;
  Deno.mkdirSync(dir, { recursive: true });
  const port = freePort();
  const addr = `127.0.0.1:${port}`;
  const { cmd, env } = serverArgv(config);
  const argv = [
    ...(config.pinned ? await pin(0) : []),
    ...substitute(cmd, { port: String(port), addr, dir }),
  ];
  result.logFile = `${workDir}/${tag}.log`;
  // CPU every 100 ms: the server's (its whole process tree; its threads apart) and the load generator's.
  let loadgenPid = 0, loadgenCpu = 0;
  const samples: Sample[] = [];
  const server = await spawnServer(argv, {
    cwd: dir,
    env: { ...env, OTLP2PARQUET_LISTEN_ADDR: addr, OTLP2PARQUET_STORAGE_PATH: dir },
    logFile: result.logFile,
    onSample(t, tree) {
      const split = cpuSplit(tree[0]);
      const total = tree.reduce((n, pid) => n + processCpuSeconds(pid), 0);
      samples.push({
        t,
        server: { ...split, total: Math.max(total, split.total) },
        // Kept when it has exited (its /proc entry gone): CPU time only grows.
        loadgen: loadgenCpu = Math.max(loadgenCpu, loadgenPid ? processCpuSeconds(loadgenPid) : 0),
      });
    },
  });
  const child = server.child;
  try {
    await waitReady(port, "/health", child, 60_000);
    const options: BenchOptions = {
      endpoint: `http://${addr}`,
      signal: cell.signal,
      encoding: cell.variant === "json" ? "json" : "protobuf",
      compression: cell.variant === "protobuf+gzip" ? "gzip" : "none",
      recordsPerRequest: load.records,
      concurrency: load.concurrency,
      durationSecs: load.duration,
      rate: load.rate,
      pool: 8,
      timeoutSecs: 60,
    };
    const generate = async (durationSecs: number): Promise<ScalingLoadResult> => {
      const genArgv = [
        ...(config.pinned ? await pin(1) : []),
        DENO,
        "run",
        "-A",
        `${ROOT}/bench/scaling_load.ts`,
        JSON.stringify({ ...options, durationSecs }),
      ];
      const gen = new Deno.Command(genArgv[0], { args: genArgv.slice(1), stdout: "piped", stderr: "piped" })
        .spawn();
      loadgenPid = gen.pid;
      const out = await gen.output();
      const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
      if (!out.success || !line.startsWith("{")) {
        throw new Error(
          `load generator failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr).slice(-300)}`,
        );
      }
      return JSON.parse(line) as ScalingLoadResult;
    };
    if (load.warmup && load.warmup > 0) {
      const w = await generate(load.warmup);
      result.warmup = {
        seconds: load.warmup,
        acknowledgedRecords: w.acknowledgedRecords,
        recordsPerSecond: w.recordsPerSecond,
        statuses: w.statuses,
      };
      while (
        load.warmupUntilWritten !== undefined && result.warmup.seconds < load.warmupUntilWritten &&
        parquetStats(dir).files.length === 0
      ) {
        const more = await generate(2), w = result.warmup;
        w.recordsPerSecond = (w.acknowledgedRecords + more.acknowledgedRecords) / (w.seconds + 2);
        w.seconds += 2;
        w.acknowledgedRecords += more.acknowledgedRecords;
        for (const [code, n] of Object.entries(more.statuses)) {
          w.statuses![code] = (w.statuses![code] ?? 0) + n;
        }
      }
      loadgenCpu = 0;
    }
    result.load = await generate(load.duration);
    // One more sample after the end of the load window.
    await new Promise((r) => setTimeout(r, 150));
    const cpu = windowCpu(samples, result.load.endMs - result.load.seconds * 1000, result.load.endMs);
    if (cpu) result.cpu = cpu.server, result.loadgenCpu = cpu.loadgen;
    const early = server.exited();
    if (early) throw new Error(`server exited during the load (code ${early.code})`);
    if (!await server.stop(180_000)) result.status = "failed: no exit 180 s after SIGTERM (killed)";
    if (config.kind !== "accept") {
      const { files } = parquetStats(dir);
      result.files = files.length;
      result.rowsWritten = await countRows(files);
      if (result.status === "ok" && result.rowsWritten !== acknowledged(result)) {
        result.status = `rows in Parquet ≠ records acknowledged (data kept in ${dir})`;
      }
    }
    if (result.status === "ok" && result.load.acknowledgedRecords === 0) {
      result.status = "failed: no request acknowledged";
    }
  } catch (e) {
    result.status = `failed: ${(e as Error).message}`;
    await server.kill();
  } finally {
    await server.close();
    result.peakRssMB = Math.round(Math.max(server.peakRssKb(), server.hwmKb()) / 1024);
    // Kept when rows are missing, to look into.
    if (!result.status.startsWith("rows in Parquet")) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
  return result;
}

/** Records a run's server acknowledged in all: the measured window and its warm-up. */
export const acknowledged = (r: RunResult): number =>
  (r.load?.acknowledgedRecords ?? 0) + (r.warmup?.acknowledgedRecords ?? 0);

/** Acked records/s of a run, or undefined when it measured nothing. */
const rate = (r: RunResult | undefined): number | undefined =>
  r?.load && r.load.acknowledgedRecords > 0 ? r.load.recordsPerSecond : undefined;

/** A one-line summary of a run, for progress. */
export function runLine(r: RunResult): string {
  const l = r.load;
  const parts = [
    `${r.signal} ${r.variant} ${r.server} ${r.mode}${r.targetRate ? ` @${fmt(r.targetRate)}/s` : ""}`,
  ];
  if (l) {
    parts.push(
      `${fmt(l.recordsPerSecond)} records/s`,
      `p50 ${l.latencyMs.p50} p99 ${l.latencyMs.p99} ms`,
      r.cpu ? `${(r.cpu.total / r.cpu.window).toFixed(2)} cores` : "",
      `RSS ${r.peakRssMB} MB`,
      r.rowsWritten !== undefined ? `rows ${fmt(r.rowsWritten)}/${fmt(acknowledged(r))}` : "",
    );
  }
  parts.push(r.status);
  return parts.filter(Boolean).join(", ");
}

/** Runs a subprocess (pinned to core 0 when possible) that prints one JSON value last on stdout. */
async function jsonProcess<T>(args: string[]): Promise<T> {
  const argv = [...await pin(0), DENO, "run", "-A", ...args];
  const out = await new Deno.Command(argv[0], { args: argv.slice(1), stdout: "piped", stderr: "inherit" })
    .output();
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success) throw new Error(`${args[0]} failed (exit ${out.code})`);
  return JSON.parse(line) as T;
}

/** Runs the whole matrix (and the ceilings); see the module comment. */
export async function runScaling(options: ScalingOptions = {}): Promise<ScalingReport> {
  const o = {
    servers: options.servers ?? SERVER_CONFIGS.map((c) => c.id),
    signals: options.signals ?? SIGNALS,
    variants: options.variants ?? BODY_VARIANTS,
    duration: options.duration ?? 8,
    records: options.records ?? 5000,
    jsonRecords: options.jsonRecords ?? 3000,
    concurrency: options.concurrency ?? 8,
    openFraction: options.openFraction ?? 0.7,
    openConcurrency: options.openConcurrency ?? 32,
    openWarmup: options.openWarmup ?? 3,
    openDuration: options.openDuration ?? options.duration ?? 8,
    closedWarmup: options.closedWarmup ?? 8,
    openWarmupMax: options.openWarmupMax ?? 30,
    noOpen: options.noOpen ?? false,
    ceilings: options.ceilings ?? true,
    ceilingDuration: options.ceilingDuration ?? 5,
    walSeconds: options.walSeconds ?? 3,
  };
  const progress = options.progress ?? (() => {});
  const configs = o.servers.map((id) => {
    const c = SERVER_CONFIGS.find((x) => x.id === id);
    if (!c) {
      throw new RangeError(`unknown server ${id}; one of ${SERVER_CONFIGS.map((x) => x.id).join(", ")}`);
    }
    return c;
  });
  const workDir = options.workDir ?? await Deno.makeTempDir({ prefix: "otlp2parquet_scaling_" });
  Deno.mkdirSync(workDir, { recursive: true });
  const report: ScalingReport = {
    startedAt: new Date().toISOString(),
    loadAverage: loadAverage(),
    options: o,
    runs: [],
    accept: [],
    wal: [],
    parallel: [],
    notes: [],
  };
  const cells = o.signals.flatMap((signal) => o.variants.map((variant) => ({ signal, variant })));
  const total = cells.length * configs.length * (o.noOpen ? 1 : 2);
  let done = 0;
  const t0 = performance.now();
  const step = (r: RunResult): void => {
    done++;
    const mins = ((performance.now() - t0) / 60_000).toFixed(1);
    progress(`scaling [${done}/${total}, ${mins} min] ${runLine(r)}`);
  };
  for (const cell of cells) {
    const records = recordsOf(cell.variant, o);
    const closed: RunResult[] = [];
    for (const config of configs) {
      const r = await runOne(
        config,
        cell,
        { mode: "closed", records, concurrency: o.concurrency, duration: o.duration, warmup: o.closedWarmup },
        workDir,
      );
      closed.push(r), report.runs.push(r), step(r);
    }
    if (o.noOpen) continue;
    for (const config of configs) {
      const rates = configs.filter((c) => c.group === config.group).map((c) =>
        rate(closed.find((r) => r.server === c.id))
      ).filter((x): x is number => x !== undefined);
      let r: RunResult;
      if (!rates.length) {
        r = {
          server: config.id,
          ...cell,
          mode: "open",
          status: "skipped: no closed-loop rate",
          recordsPerRequest: records,
          concurrency: o.openConcurrency,
        };
      } else {
        const target = Math.max(1, Math.round(Math.min(...rates) * o.openFraction));
        r = await runOne(
          config,
          cell,
          {
            mode: "open",
            records,
            concurrency: o.openConcurrency,
            duration: o.openDuration,
            rate: target,
            warmup: o.openWarmup,
            warmupUntilWritten: o.openWarmup > 0 ? o.openWarmupMax : undefined,
          },
          workDir,
        );
      }
      report.runs.push(r), step(r);
    }
  }
  if (o.ceilings) await runCeilings(report, cells, o, workDir, progress);
  return report;
}

async function runCeilings(
  report: ScalingReport,
  cells: readonly { signal: Signal; variant: BodyVariant }[],
  o: ScalingReport["options"],
  workDir: string,
  progress: (line: string) => void,
): Promise<void> {
  // (a) the accept loop and body read alone: every cell's requests, plus small ones for the per-request cost.
  const acceptCells = [...cells.map((c) => ({ ...c, records: recordsOf(c.variant, o) }))];
  acceptCells.push({ signal: "logs", variant: "protobuf", records: 100 });
  for (const c of acceptCells) {
    const r = await runOne(
      ACCEPT_CONFIG,
      c,
      { mode: "closed", records: c.records, concurrency: o.concurrency, duration: o.ceilingDuration },
      workDir,
    );
    report.accept.push(r);
    progress(`scaling ceiling: accept-only ${runLine(r)}`);
  }
  // (b) the write-ahead log alone, at the request sizes of the matrix (gzip bodies are logged inflated).
  const cases: WalCase[] = [];
  for (const c of cells) {
    if (c.variant === "protobuf+gzip") continue;
    const a = report.accept.find((r) => r.signal === c.signal && r.variant === c.variant && r.load);
    const bytes = a?.load
      ? Math.round(a.load.rawMBps * 1e6 * a.load.seconds / Math.max(1, a.load.requests))
      : 0;
    if (bytes > 0) {
      cases.push({ label: `${c.signal} ${c.variant}`, bytes, records: recordsOf(c.variant, o) });
    }
  }
  if (cases.length) {
    try {
      report.wal = await jsonProcess<WalCeilingResult[]>([
        `${ROOT}/bench/wal_ceiling.ts`,
        `--dir=${workDir}/wal`,
        `--seconds=${o.walSeconds}`,
        `--appenders=1,${o.concurrency}`,
        `--cases=${JSON.stringify(cases)}`,
      ]);
    } catch (e) {
      report.notes.push(`WAL ceiling not measured: ${(e as Error).message}`);
    }
  }
  // (c) the parallel part in process: decode and encode per record.
  const formats = [...new Set(cells.map((c) => (c.variant === "json" ? "json" : "protobuf")))];
  const signals = [...new Set(cells.map((c) => c.signal))];
  try {
    report.parallel = await jsonProcess<ParallelCost[]>([
      `${ROOT}/bench/parallel_cost.ts`,
      `--signals=${signals.join(",")}`,
      `--formats=${formats.join(",")}`,
      `--records=${o.records}`,
      `--json-records=${o.jsonRecords}`,
    ]);
  } catch (e) {
    report.notes.push(`decode/encode cost not measured: ${(e as Error).message}`);
  }
  progress("scaling ceilings: done");
}

// ---- tables ----

/** A number as the tables print it (en-US grouping, `digits` decimals); "–" for none. */
export const fmt = (x: number | undefined, digits = 0): string =>
  x === undefined || !Number.isFinite(x)
    ? "–"
    : x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ratio = (a: number | undefined, b: number | undefined): string =>
  a !== undefined && b !== undefined && b > 0 ? (a / b).toFixed(2) : "–";
const cores = (r: RunResult | undefined, part: "total" | "main" | "workers" = "total"): number | undefined =>
  r?.cpu && r.cpu.window > 0 ? r.cpu[part] / r.cpu.window : undefined;
const errorsOf = (r: RunResult, window: "measured" | "warmup" = "measured"): string => {
  const s = (window === "measured" ? r.load?.statuses : r.warmup?.statuses) ?? {};
  return Object.entries(s).filter(([k]) => k !== "200").map(([k, n]) => `${k}×${n}`).join(" ") || "0";
};
/** The offered rate, and what the load generator managed when it fell short of it. */
const offeredCell = (r: RunResult | undefined): string =>
  r?.load && r.load.targetReached === false
    ? `${fmt(r.targetRate)} (reached ${fmt(r.load.achievedRecordsPerSecond)})`
    : fmt(r?.targetRate);
const serverLabel = (id: string): string => SERVER_CONFIGS.find((c) => c.id === id)?.label ?? id;

function find(
  runs: readonly RunResult[],
  signal: Signal,
  variant: BodyVariant,
  server: string,
  mode: "closed" | "open",
): RunResult | undefined {
  return runs.find((r) =>
    r.signal === signal && r.variant === variant && r.server === server && r.mode === mode
  );
}

/** The full table: a row per cell and server, closed- and open-loop numbers side by side. */
export function fullTable(report: ScalingReport): string {
  const lines = [
    "| signal | body | server | records/s acked (closed loop) | MB/s (uncompressed) | server cores busy | of which main thread / workers | load generator cores | open loop: offered records/s | p50 ms | p99 ms | peak RSS MB | Parquet rows / acked (both runs) | errors (closed: warm-up, measured; open) | status |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
  ];
  const { signals, variants, servers } = report.options;
  for (const signal of signals) {
    for (const variant of variants) {
      for (const server of servers) {
        const c = find(report.runs, signal, variant, server, "closed");
        const op = find(report.runs, signal, variant, server, "open");
        if (!c && !op) continue;
        const ours = server.startsWith("ours");
        const split = ours && c?.cpu ? `${fmt(cores(c, "main"), 2)} / ${fmt(cores(c, "workers"), 2)}` : "";
        const rows = [c, op].reduce((n, r) => n + (r?.rowsWritten ?? 0), 0);
        const acked = [c, op].reduce((n, r) => n + (r ? acknowledged(r) : 0), 0);
        const status = [c, op].filter((r) => r && r.status !== "ok").map((r) => `${r!.mode}: ${r!.status}`)
          .join("; ") || "ok";
        lines.push(
          `| ${signal} | ${variant} | ${serverLabel(server)} | ${fmt(rate(c))} | ${
            fmt(c?.load?.rawMBps, 1)
          } | ${fmt(cores(c), 2)} | ${split} | ${
            fmt(c?.loadgenCpu !== undefined && c.cpu ? c.loadgenCpu / c.cpu.window : undefined, 2)
          } | ${offeredCell(op)} | ${fmt(op?.load?.latencyMs.p50, 0)} | ${
            fmt(op?.load?.latencyMs.p99, 0)
          } | ${fmt(Math.max(c?.peakRssMB ?? 0, op?.peakRssMB ?? 0) || undefined)} | ${fmt(rows)} / ${
            fmt(acked)
          }${rows === acked && acked > 0 ? " ✓" : ""} | ${
            c ? `${c.warmup ? `${errorsOf(c, "warmup")}, ` : ""}${errorsOf(c)}` : "–"
          }; ${op ? errorsOf(op) : "–"} | ${status} |`,
        );
      }
    }
  }
  return lines.join("\n");
}

/**
 * The scaling table: closed-loop records/s acked, 1 vs 2 workers vs Rust, pinned and unpinned, with ratios;
 * `window` "warmup": the rates of the warm-up instead (a fresh server's first seconds).
 */
export function scalingTable(report: ScalingReport, window: "measured" | "warmup" = "measured"): string {
  const lines = [
    "| signal | body | ours 1 worker, pinned | Rust, pinned | ours/Rust pinned | ours 1 worker | ours 2 workers | Rust | ours 2 workers/Rust | 2 workers/1 worker |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const signal of report.options.signals) {
    for (const variant of report.options.variants) {
      const v = (id: string) => {
        const r = find(report.runs, signal, variant, id, "closed");
        return window === "measured" ? rate(r) : r?.warmup?.recordsPerSecond;
      };
      lines.push(
        `| ${signal} | ${variant} | ${fmt(v("ours-w1-pinned"))} | ${fmt(v("rust-pinned"))} | ${
          ratio(v("ours-w1-pinned"), v("rust-pinned"))
        } | ${fmt(v("ours-w1"))} | ${fmt(v("ours-w2"))} | ${fmt(v("rust"))} | ${
          ratio(v("ours-w2"), v("rust"))
        } | ${ratio(v("ours-w2"), v("ours-w1"))} |`,
      );
    }
  }
  return lines.join("\n");
}

/** Open-loop latency at the same offered load per group, with the p99 ratios to Rust. */
export function latencyTable(report: ScalingReport): string {
  const lines = [
    "| signal | body | pinned: offered records/s | ours p50 / p99 ms | Rust p50 / p99 ms | p99 ours/Rust | unpinned: offered records/s | ours 1 worker p50 / p99 | ours 2 workers p50 / p99 | Rust p50 / p99 | p99 ours 2 workers/Rust |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const signal of report.options.signals) {
    for (const variant of report.options.variants) {
      const r = (id: string) => find(report.runs, signal, variant, id, "open");
      const pq = (x: RunResult | undefined) =>
        x?.load && x.load.acknowledgedRecords > 0
          ? `${fmt(x.load.latencyMs.p50)} / ${fmt(x.load.latencyMs.p99)}${
            x.load.targetReached === false
              ? ` (fell short: ${fmt(x.load.achievedRecordsPerSecond)}/s sent)`
              : ""
          }`
          : "–";
      const p99 = (x: RunResult | undefined) =>
        x?.load?.acknowledgedRecords ? x.load.latencyMs.p99 : undefined;
      const offered = (ids: string[]) => fmt(ids.map((id) => r(id)?.targetRate).find((x) => x !== undefined));
      lines.push(
        `| ${signal} | ${variant} | ${offered(["ours-w1-pinned", "rust-pinned"])} | ${
          pq(r("ours-w1-pinned"))
        } | ${pq(r("rust-pinned"))} | ${ratio(p99(r("ours-w1-pinned")), p99(r("rust-pinned")))} | ${
          offered(["ours-w1", "ours-w2", "rust"])
        } | ${pq(r("ours-w1"))} | ${pq(r("ours-w2"))} | ${pq(r("rust"))} | ${
          ratio(p99(r("ours-w2")), p99(r("rust")))
        } |`,
      );
    }
  }
  return lines.join("\n");
}

/** CPU ms per request of the accept-only server, and what one thread could take at that cost. */
export function acceptTable(report: ScalingReport): string {
  const lines = [
    "| requests | records/request | requests/s measured | MB/s measured (uncompressed) | server cores busy | CPU ms/request | one thread's ceiling: requests/s | MB/s | records/s |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of report.accept) {
    const l = r.load;
    if (!l || !r.cpu || !l.acknowledgedRecords) {
      lines.push(`| ${r.signal} ${r.variant} | ${fmt(r.recordsPerRequest)} | ${r.status} | | | | | | |`);
      continue;
    }
    const reqs = l.statuses["200"] ?? 0;
    const reqPerSec = reqs / l.seconds;
    const cpuMs = (r.cpu.total * 1000) / Math.max(1, reqPerSec * r.cpu.window);
    const bytesPerReq = (l.rawMBps * 1e6) / Math.max(1e-9, reqPerSec);
    const ceiling = 1000 / cpuMs;
    lines.push(
      `| ${r.signal} ${r.variant} | ${fmt(r.recordsPerRequest)} | ${fmt(reqPerSec)} | ${fmt(l.rawMBps)} | ${
        fmt(cores(r), 2)
      } | ${fmt(cpuMs, 2)} | ${fmt(ceiling)} | ${fmt((ceiling * bytesPerReq) / 1e6)} | ${
        fmt(ceiling * r.recordsPerRequest)
      } |`,
    );
  }
  return lines.join("\n");
}

/** The write-ahead log alone. */
export function walTable(report: ScalingReport): string {
  const lines = [
    "| request body logged | bytes | in flight | MB/s | appends/s | records/s | fsyncs/s | CPU ms/append (process) | main thread ms/append | main-thread ceiling records/s |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const w of report.wal) {
    lines.push(
      `| ${w.label} | ${fmt(w.bytes)} | ${w.appenders} | ${fmt(w.mbPerSecond)} | ${
        fmt(w.appendsPerSecond)
      } | ${fmt(w.recordsPerSecond)} | ${fmt(w.groups / w.seconds)} | ${fmt(w.cpuMsPerAppend, 2)} | ${
        fmt(w.mainMsPerAppend, 2)
      } | ${fmt(w.mainMsPerAppend > 0 ? (1000 / w.mainMsPerAppend) * w.records : undefined)} |`,
    );
  }
  return lines.join("\n");
}

/** Inputs and result of the Amdahl estimate for one cell. */
export interface AmdahlRow {
  signal: Signal;
  variant: BodyVariant;
  /** Serial µs of CPU per record, and where it comes from. */
  serialUs: number;
  serialSource: string;
  /** Parallel µs per record: decode + encode in process. */
  parallelUs: number;
  /** The accept loop + body read and the WAL's main-thread CPU per record (the ceilings), when measured. */
  acceptUs?: number;
  walUs?: number;
  /** Measured one-core rate (ours, 1 worker, pinned). */
  oneCore?: number;
  speedup8: number;
  speedup16: number;
  /** 1 / serial: the main thread's ceiling, records/s. */
  ceiling: number;
}

/** Amdahl: S(N) = 1 / (f + (1 - f) / N), f = s / (s + p). */
export function amdahl(serialUs: number, parallelUs: number, n: number): number {
  const f = serialUs / (serialUs + parallelUs);
  return 1 / (f + (1 - f) / n);
}

/**
 * Per cell: serial part s = main-thread CPU per record of ours with 2 workers when its worker threads did
 * work (measured), else accept + body read (accept-only server) + the WAL's main-thread cost per record;
 * parallel part p = decode + encode per record in process.
 */
export function amdahlRows(report: ScalingReport): AmdahlRow[] {
  const rows: AmdahlRow[] = [];
  for (const signal of report.options.signals) {
    for (const variant of report.options.variants) {
      const format = variant === "json" ? "json" : "protobuf";
      const pc = report.parallel.find((p) => p.signal === signal && p.format === format);
      if (!pc) continue;
      const parallelUs = pc.decodeUs + pc.encodeUs;
      // The ceilings' share of s: accept + body read per record, and the WAL's main-thread cost per record.
      const a = report.accept.find((r) =>
        r.signal === signal && r.variant === variant &&
        r.recordsPerRequest === recordsOf(variant, report.options)
      );
      const w = report.wal.find((x) =>
        x.label === `${signal} ${format}` && x.appenders === report.options.concurrency
      );
      const acceptUs = a?.cpu && a.load?.statuses["200"]
        ? (a.cpu.total * 1e6) / ((a.load.statuses["200"] / a.load.seconds) * a.cpu.window) /
          a.recordsPerRequest
        : undefined;
      const walUs = w ? (w.mainMsPerAppend * 1000) / w.records : undefined;
      const w2 = find(report.runs, signal, variant, "ours-w2", "closed");
      let serialUs: number | undefined, serialSource = "";
      if (w2?.cpu && w2.load && w2.cpu.workers > 0.05 * w2.cpu.total && w2.load.acknowledgedRecords) {
        const acked = w2.load.acknowledgedRecords * (w2.cpu.window / w2.load.seconds);
        serialUs = (w2.cpu.main * 1e6) / acked;
        serialSource = "main thread of ours with 2 workers (measured)";
      } else if (acceptUs !== undefined && walUs !== undefined) {
        serialUs = acceptUs + walUs;
        serialSource = "accept + body read + WAL (the ceilings; identity and batching not included)";
      }
      if (serialUs === undefined) continue;
      rows.push({
        signal,
        variant,
        serialUs,
        serialSource,
        acceptUs,
        walUs,
        parallelUs,
        oneCore: rate(find(report.runs, signal, variant, "ours-w1-pinned", "closed")),
        speedup8: amdahl(serialUs, parallelUs, 8),
        speedup16: amdahl(serialUs, parallelUs, 16),
        ceiling: 1e6 / serialUs,
      });
    }
  }
  return rows;
}

/** The Amdahl estimate as a table. */
export function amdahlTable(report: ScalingReport): string {
  const lines = [
    "| signal | body | serial s µs/record | of which accept + body | WAL | rest (identity, batching, hand-off) | parallel p µs/record | f = s/(s+p) | 1 core measured records/s | S(8) | estimate 8 cores records/s | S(16) | estimate 16 cores records/s | main-thread ceiling 1/s records/s | s from |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const r of amdahlRows(report)) {
    const est = (s: number) => r.oneCore === undefined ? undefined : Math.min(r.oneCore * s, r.ceiling);
    // Only when s is measured: otherwise s is the sum of the two and there is no rest to tell.
    const rest = r.acceptUs !== undefined && r.walUs !== undefined && r.serialSource.includes("measured")
      ? r.serialUs - r.acceptUs - r.walUs
      : undefined;
    lines.push(
      `| ${r.signal} | ${r.variant} | ${fmt(r.serialUs, 2)} | ${fmt(r.acceptUs, 2)} | ${fmt(r.walUs, 2)} | ${
        fmt(rest, 2)
      } | ${fmt(r.parallelUs, 2)} | ${fmt(r.serialUs / (r.serialUs + r.parallelUs), 2)} | ${
        fmt(r.oneCore)
      } | ${fmt(r.speedup8, 2)} | ${fmt(est(r.speedup8))} | ${fmt(r.speedup16, 2)} | ${
        fmt(est(r.speedup16))
      } | ${fmt(r.ceiling)} | ${r.serialSource} |`,
    );
  }
  return lines.join("\n");
}

/** The whole report as markdown. */
export function scalingMarkdown(report: ScalingReport, command: string): string {
  const o = report.options;
  const parts = [
    `## Scaling run (${report.startedAt.slice(0, 16)}Z)`,
    "",
    machineMarkdown(),
    `- Load average at the start: ${report.loadAverage}`,
    "",
    `Command: \`${command}\``,
    "",
    `Each run starts its server fresh. Closed loop: ${fmt(o.records)}-record requests (JSON ${
      fmt(o.jsonRecords)
    }), ${o.concurrency} in flight, ${o.duration} s${
      o.closedWarmup > 0
        ? ` after ${o.closedWarmup} s of the same load not measured (the rate a server sustains)`
        : ""
    }. Open loop: the same requests at ${
      Math.round(o.openFraction * 100)
    } % of the slower closed-loop rate of the group (pinned / unpinned), at most ${o.openConcurrency} in flight, ${o.openDuration} s after at least ${o.openWarmup} s of the same load not measured and until the server has written its first Parquet file (at most ${o.openWarmupMax} s in all; the steady state: ours compiles its hot code in its first seconds, the Parquet writer's on its first batch), latency from each request's scheduled send time. Pinned: server \`taskset -c 0\`, load generator \`taskset -c 1\`; unpinned: neither. Cores busy = server CPU time (all threads) / wall time over the load window.`,
    "",
    "### Records acknowledged per second (closed loop)",
    "",
    scalingTable(report),
    "",
    ...(o.closedWarmup > 0
      ? [
        `### Records acknowledged per second in a fresh server's first ${o.closedWarmup} s (the closed loop's warm-up)`,
        "",
        'Ours compiles its hot code meanwhile; the Rust server answers from memory until its buffered batches reach 1 GiB, then slows to what it writes, at times answering 500 for what it cannot buffer (the errors in this window are in "Every run").',
        "",
        scalingTable(report, "warmup"),
        "",
      ]
      : []),
    "### Latency at the same offered load (open loop)",
    "",
    latencyTable(report),
    "",
    "### Every run",
    "",
    fullTable(report),
    "",
  ];
  for (const workers of [1, 2]) {
    const runs = report.runs.filter((r) =>
      r.server.startsWith("ours") && r.load &&
      (SERVER_CONFIGS.find((c) => c.id === r.server)?.workers ?? 1) === workers
    );
    const peak = Math.max(0, ...runs.map((r) => r.peakRssMB ?? 0));
    if (peak === 0) continue;
    const bound = rssBoundMB(workers), sizing = sizingBoundMB(workers);
    parts.push(
      `Peak RSS of ours with ${workers === 1 ? "1 worker (no threads)" : `${workers} worker threads`}: ${
        fmt(peak)
      } MB. The server's documented bound (docs/operations.md "Sizing", defaults) is ${fmt(sizing)} MB: ${
        peak <= sizing ? "within" : "**above**"
      }. The benchmark envelope of the first performance issue (BENCHMARKS.md "Targets": 2 × batch bytes + 150 MB${
        workers > 1 ? ", + 75 MiB a worker thread" : ""
      }) is ${fmt(bound)} MB: ${peak <= bound ? "within" : "**above**"}.`,
      "",
    );
  }
  if (report.accept.length) {
    parts.push(
      "### Main-thread ceiling: accept loop + body read alone",
      "",
      "`bench/accept_server.ts` (bench only): the server's accept loop and body read (gzip inflated as the server does), no decode, log or batch; pinned to core 0, load generator on core 1. The ceiling is what one thread would take at the measured CPU per request.",
      "",
      acceptTable(report),
      "",
    );
  }
  if (report.wal.length) {
    parts.push(
      "### Main-thread ceiling: the write-ahead log alone",
      "",
      "`bench/wal_ceiling.ts`, pinned to core 0: append + group-commit fdatasync of the request bodies (as logged: decompressed).",
      "",
      walTable(report),
      "",
    );
  }
  if (report.parallel.length) {
    parts.push(
      "### Amdahl estimate",
      "",
      "Per record: s = the serial (main-thread) CPU, p = decode + Parquet encode CPU measured in process (`bench/parallel_cost.ts`, batches of the server's shape). f = s / (s + p); S(N) = 1 / (f + (1 − f) / N); estimate N cores = measured one-core rate × S(N), capped at the main-thread ceiling 1/s. An estimate, not a measurement: it leaves out GC threads, memory bandwidth and the load generator.",
      "",
      amdahlTable(report),
      "",
    );
  }
  if (report.notes.length) parts.push(...report.notes.map((n) => `- ${n}`), "");
  return parts.join("\n");
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args.filter((a) => a !== "--scaling"),
    options: {
      servers: { type: "string" },
      signals: { type: "string" },
      variants: { type: "string" },
      duration: { type: "string", default: "8" },
      records: { type: "string", default: "5000" },
      "json-records": { type: "string", default: "3000" },
      concurrency: { type: "string", default: "8" },
      "open-fraction": { type: "string", default: "0.7" },
      "open-concurrency": { type: "string", default: "32" },
      "open-warmup": { type: "string", default: "3" },
      "open-duration": { type: "string" },
      "open-warmup-max": { type: "string", default: "30" },
      "closed-warmup": { type: "string", default: "8" },
      "no-open": { type: "boolean", default: false },
      "no-ceilings": { type: "boolean", default: false },
      "ceiling-duration": { type: "string", default: "5" },
      "wal-seconds": { type: "string", default: "3" },
      out: { type: "string", default: `${ROOT}/.bench/scaling.md` },
    },
  });
  const list = <T extends string>(v: string | undefined): T[] | undefined => v?.split(",") as T[] | undefined;
  const workDir = `${ROOT}/.bench/scaling`;
  Deno.mkdirSync(workDir, { recursive: true });
  console.error(`scaling: server logs under ${workDir}`);
  const report = await runScaling({
    servers: list(values.servers),
    signals: list<Signal>(values.signals),
    variants: list<BodyVariant>(values.variants),
    duration: Number(values.duration),
    records: Number(values.records),
    jsonRecords: Number(values["json-records"]),
    concurrency: Number(values.concurrency),
    openFraction: Number(values["open-fraction"]),
    openConcurrency: Number(values["open-concurrency"]),
    openWarmup: Number(values["open-warmup"]),
    openDuration: values["open-duration"] === undefined ? undefined : Number(values["open-duration"]),
    openWarmupMax: Number(values["open-warmup-max"]),
    closedWarmup: Number(values["closed-warmup"]),
    noOpen: values["no-open"],
    ceilings: !values["no-ceilings"],
    ceilingDuration: Number(values["ceiling-duration"]),
    walSeconds: Number(values["wal-seconds"]),
    workDir,
    progress: (line) => console.error(line),
  });
  const command = `deno task bench --scaling ${Deno.args.filter((a) => a !== "--scaling").join(" ")}`.trim();
  const md = scalingMarkdown(report, command);
  Deno.writeTextFileSync(values.out, md);
  Deno.writeTextFileSync(values.out.replace(/\.md$/, "") + ".json", JSON.stringify(report, null, 2));
  console.log(md);
  console.error(`scaling: written to ${values.out} and ${values.out.replace(/\.md$/, "")}.json`);
}
