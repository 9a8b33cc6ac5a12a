/**
 * `deno task bench --startup` (or `deno run -A bench/startup.ts`): what a new instance costs. Builds the
 * single executable and the Lambda bootstrap into `.bench/startup/` (or takes `--exe` / `--bootstrap`),
 * then, from an empty folder each time:
 *
 * - server: time from spawn to the first 200 from `/health` (polled every 2 ms), and the resident memory
 *   (VmRSS) one second later, idle;
 * - Lambda: under a fake Runtime API on loopback, time from spawn to the first invocation's response
 *   posted (init plus a `GET /health` event: the cold start), then the latency of warm invocations (a
 *   81-record protobuf logs export each, written to an fs folder), and the idle VmRSS after the cold
 *   invocation and after the warm ones;
 * - artefact sizes: raw, and gzip (about what the Lambda zip weighs).
 *
 * Medians of `--runs` (default 10) runs. Prints a markdown report and writes `.bench/startup.md`.
 *
 * @module
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { FakeRuntimeApi, functionUrlEvent } from "../tests/support/fake_runtime_api.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const OUT = `${ROOT}/.bench`;
const LOGS = readFileSync(`${ROOT}/../shared/testdata/otlp2parquet-rust/logs.pb`);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const ms = (x: number): string => `${x.toFixed(x < 10 ? 1 : 0)} ms`;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) * 1024;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function build(args: string[]): Promise<void> {
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/build/compile.ts`, ...args],
    cwd: ROOT,
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error(`build ${args.join(" ")} failed`);
}

/** Spawns `exe` with exactly `env`, in a fresh empty folder that `stop` removes. */
function spawn(exe: string, env: Record<string, string>) {
  const cwd = mkdtempSync(join(tmpdir(), "otlp2parquet-startup-"));
  const started = performance.now();
  const child = new Deno.Command(exe, {
    env: { ...env, HOME: cwd },
    clearEnv: true,
    cwd,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    child,
    cwd,
    started,
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
      await child.status;
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}

interface ServerRun {
  firstAnswerMs: number;
  idleRss: number;
}

async function serverRun(exe: string): Promise<ServerRun> {
  const port = freePort();
  const p = spawn(exe, { OTLP2PARQUET_LISTEN_ADDR: `127.0.0.1:${port}` });
  try {
    for (;;) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/health`);
        await response.body?.cancel();
        if (response.ok) break;
      } catch {
        // not listening yet
      }
      if (performance.now() - p.started > 30_000) throw new Error(`${exe} did not answer /health in 30 s`);
      await sleep(2);
    }
    const firstAnswerMs = performance.now() - p.started;
    await sleep(1000);
    return { firstAnswerMs, idleRss: rssBytes(p.child.pid) };
  } finally {
    await p.stop();
  }
}

interface LambdaRun {
  coldStartMs: number;
  /** VmRSS idle after the cold invocation: what a new instance holds. */
  initRss: number;
  warmMs: number[];
  /** VmRSS idle after the warm invocations (the GC heap grows with work before it collects). */
  idleRss: number;
}

async function lambdaRun(exe: string, warm: number): Promise<LambdaRun> {
  const api = new FakeRuntimeApi();
  const out = mkdtempSync(join(tmpdir(), "otlp2parquet-startup-out-"));
  // Queued before the spawn: Lambda hands the first event over as soon as the runtime asks.
  const first = api.invoke(functionUrlEvent("/health", new Uint8Array(), "", "GET"));
  const p = spawn(exe, {
    AWS_LAMBDA_RUNTIME_API: api.address,
    OTLP2PARQUET_STORAGE_BACKEND: "fs",
    OTLP2PARQUET_STORAGE_PATH: out,
    OTLP2PARQUET_AUTH: "none",
  });
  try {
    const outcome = await first;
    const coldStartMs = performance.now() - p.started;
    if (outcome.body.statusCode !== 200) throw new Error(`cold invocation: ${JSON.stringify(outcome.body)}`);
    await sleep(500);
    const initRss = rssBytes(p.child.pid);
    const warmMs: number[] = [];
    const event = functionUrlEvent("/v1/logs", LOGS, "application/x-protobuf");
    for (let i = 0; i < warm; i++) {
      const t = performance.now();
      const r = await api.invoke(event);
      warmMs.push(performance.now() - t);
      if (r.body.statusCode !== 200) throw new Error(`warm invocation: ${JSON.stringify(r.body)}`);
    }
    await sleep(1000);
    return { coldStartMs, initRss, warmMs, idleRss: rssBytes(p.child.pid) };
  } finally {
    await p.stop();
    await api.close();
    rmSync(out, { recursive: true, force: true });
  }
}

function sizeRow(name: string, path: string): string {
  const bytes = Deno.readFileSync(path);
  return `| ${name} | ${mib(bytes.length)} | ${mib(gzipSync(bytes, { level: 6 }).length)} |`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "10" },
      warm: { type: "string", default: "20" },
      exe: { type: "string" },
      bootstrap: { type: "string" },
      /** `server`, `lambda` or both (default): e.g. an older build that has only one of the modes. */
      modes: { type: "string", default: "server,lambda" },
    },
  });
  const runs = Number(values.runs), warm = Number(values.warm);
  const modes = new Set(values.modes.split(","));
  const dir = `${OUT}/startup`;
  Deno.mkdirSync(dir, { recursive: true });
  // Absolute: each run starts in its own empty folder.
  const exe = resolve(values.exe ?? `${dir}/otlp2parquet`);
  const bootstrap = resolve(values.bootstrap ?? `${dir}/bootstrap`);
  if (!values.exe) await build(["--outfile", exe]);
  if (!values.bootstrap) await build(["--lambda", "--no-zip", "--outfile", bootstrap]);

  const rows: string[] = [];
  const servers: Record<string, ServerRun[]> = { [exe]: [], [bootstrap]: [] };
  const lambdas: Record<string, LambdaRun[]> = { [exe]: [], [bootstrap]: [] };
  // Interleaved, so a burst of load on a shared machine spreads over every variant alike.
  for (let i = 0; i < runs; i++) {
    console.error(`startup: run ${i + 1}/${runs}`);
    for (const e of new Set([exe, bootstrap])) {
      if (modes.has("server")) servers[e].push(await serverRun(e));
      if (modes.has("lambda")) lambdas[e].push(await lambdaRun(e, warm));
    }
  }
  const spread = (xs: number[]) => `${ms(median(xs))} (${ms(Math.min(...xs))}-${ms(Math.max(...xs))})`;
  const names = exe === bootstrap
    ? [[`\`${exe}\``, exe]]
    : [[`\`${values.exe ?? "dist/otlp2parquet"}\``, exe], [
      `\`${values.bootstrap ?? "bootstrap (--lambda)"}\``,
      bootstrap,
    ]];
  for (const [name, e] of names) {
    const s = servers[e], l = lambdas[e];
    const warms = l.flatMap((r) => r.warmMs).sort((a, b) => a - b);
    rows.push(
      `| ${name} | ${s.length ? spread(s.map((r) => r.firstAnswerMs)) : "-"} | ${
        s.length ? mib(median(s.map((r) => r.idleRss))) : "-"
      } | ${l.length ? spread(l.map((r) => r.coldStartMs)) : "-"} | ${
        l.length ? `${ms(median(warms))} (p90 ${ms(warms[Math.floor(warms.length * 0.9)])})` : "-"
      } | ${
        l.length ? `${mib(median(l.map((r) => r.initRss)))} / ${mib(median(l.map((r) => r.idleRss)))}` : "-"
      } |`,
    );
  }
  const load = Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  const report = [
    `### Start-up and cold start (${
      new Date().toISOString().slice(0, 16)
    }Z, ${runs} runs, load average ${load})`,
    "",
    "| executable | server: spawn → first /health 200, median (min-max) | server idle RSS | Lambda: spawn → first response posted | Lambda warm invocation (81-record logs export) | Lambda idle RSS: after init / after the warm ones |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows,
    "",
    "| artefact | raw | gzip |",
    "| --- | ---: | ---: |",
    ...names.map(([name, e]) => sizeRow(name, e)),
    "",
  ].join("\n");
  console.log(report);
  Deno.writeTextFileSync(`${OUT}/startup.md`, report);
}
