/**
 * The single executable (`deno task build`, Bun-compiled), built once (a few seconds; shared with the other test
 * files that run it: tests/support/executable.ts) and run from an empty folder: with no arguments it serves
 * HTTP; with `AWS_LAMBDA_RUNTIME_API` set it is a Lambda
 * `bootstrap` and runs the Runtime API loop against a fake Runtime API on loopback. Either way it loads
 * only what its configuration uses: OpenDAL's native addon stays unmapped for the fs store and for S3 on
 * Lambda (S3 over fetch, against s3rver here), and the idle resident memory stays far from what OpenDAL
 * (~55 MB) or the parquet wasm (~45 MB) would add.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureExecutable } from "./support/executable.ts";
import { FakeRuntimeApi, functionUrlEvent } from "./support/fake_runtime_api.ts";
import { runProcess } from "./support/cli_process.ts";
import { startS3Server } from "./support/s3_server.ts";

const LOGS = readFileSync(new URL("../../shared/testdata/otlp2parquet-rust/logs.pb", import.meta.url));

/**
 * Idle resident memory the executable must stay under. Measured ~43 MB (BENCHMARKS.md); with OpenDAL's
 * addon or the wasm loaded at start it was 125-135 MB. The bound leaves room for allocator variation.
 */
const IDLE_RSS_BOUND_BYTES = 80 * 1024 * 1024;

let EXECUTABLE = "";

/** Builds the executable once for every test file that runs it (tests/support/executable.ts). */
async function ensureBuilt(): Promise<void> {
  EXECUTABLE = await ensureExecutable();
}

interface Running {
  pid: number;
  /** Lines written so far (stdout and stderr). */
  output(): string;
  /** Resolves with the first output line matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stop(): Promise<void>;
}

/** Runs the executable with exactly `env` (no inherited variables) and no arguments in `cwd`. */
function start(env: Record<string, string>, cwd: string): Running {
  const child = new Deno.Command(EXECUTABLE, {
    args: [],
    env,
    clearEnv: true,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const waiters = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      for (const wake of waiters) wake();
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status;
  return {
    pid: child.pid,
    output: () => text,
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(text);
          if (!match) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(match);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no output matching ${pattern} within ${timeoutMs} ms:\n${text}`));
        }, timeoutMs);
        waiters.add(check);
        check();
        status.then(() => setTimeout(check, 0));
      }),
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await status;
      await pumped;
    },
  };
}

/**
 * The process's resident memory and whether a native addon is mapped into it: OpenDAL's is the only one,
 * and Bun maps it from a copy it extracts as `/tmp/.bun-<hash>.node`.
 */
function processMemory(pid: number): { rssBytes: number; opendalMapped: boolean } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  const maps = readFileSync(`/proc/${pid}/maps`, "utf8");
  return { rssBytes: kb * 1024, opendalMapped: /\.node( \(deleted\))?$/m.test(maps) };
}

function parquetFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith(".parquet"));
}

const TOKEN = "binary-test-token-0123456789";

/** A Function URL event carrying the token. */
function event(path: string, body?: Uint8Array): unknown {
  const auth = { authorization: `Bearer ${TOKEN}` };
  return body
    ? functionUrlEvent(path, body, "application/x-protobuf", "POST", auth)
    : functionUrlEvent(path, new Uint8Array(), "", "GET", auth);
}

const NO_LAMBDA = /Lambda runtime started/;

Deno.test("dist/otlp2parquet with no arguments serves /health from an empty folder, without OpenDAL or wasm", async () => {
  await ensureBuilt();
  const cwd = mkdtempSync(join(tmpdir(), "otlp2parquet-empty-"));
  const server = start({ OTLP2PARQUET_LISTEN_ADDR: "127.0.0.1:0", HOME: cwd }, cwd);
  try {
    const [, address] = await server.waitFor(/listening on http:\/\/(\S+)/);
    const health = await fetch(`http://${address}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const exported = await fetch(`http://${address}/v1/logs`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf" },
      body: LOGS,
    });
    assert.equal(exported.status, 200);
    await exported.body?.cancel();
    const memory = processMemory(server.pid);
    assert.equal(memory.opendalMapped, false, "OpenDAL's addon is mapped though the store is fs");
    assert.ok(
      memory.rssBytes < IDLE_RSS_BOUND_BYTES,
      `resident memory ${(memory.rssBytes / 2 ** 20).toFixed(1)} MiB, bound ${
        IDLE_RSS_BOUND_BYTES / 2 ** 20
      } MiB`,
    );
    assert.doesNotMatch(server.output(), NO_LAMBDA);
    assert.ok(readdirSync(join(cwd, "data", ".wal")).length > 0, "the write-ahead log is in ./data/.wal");
  } finally {
    await server.stop();
    rmSync(cwd, { recursive: true, force: true });
  }
});

Deno.test("dist/otlp2parquet with AWS_LAMBDA_RUNTIME_API set processes an invocation and posts the response", async () => {
  await ensureBuilt();
  const api = new FakeRuntimeApi();
  const cwd = mkdtempSync(join(tmpdir(), "otlp2parquet-lambda-"));
  const runtime = start({
    AWS_LAMBDA_RUNTIME_API: api.address,
    OTLP2PARQUET_STORAGE_BACKEND: "fs",
    OTLP2PARQUET_STORAGE_PATH: join(cwd, "out"),
    OTLP2PARQUET_AUTH_TOKEN: TOKEN,
    // A listen address it must not use: the Lambda loop never serves HTTP.
    OTLP2PARQUET_LISTEN_ADDR: "127.0.0.1:1",
  }, cwd);
  try {
    const outcome = await api.invoke(event("/v1/logs", LOGS));
    assert.equal(outcome.kind, "response", runtime.output());
    assert.equal(outcome.body.statusCode, 200);
    assert.equal(parquetFiles(join(cwd, "out")).length > 0, true, "Parquet written before the response");
    const health = await api.invoke(event("/health"));
    assert.equal(health.body.statusCode, 200);
    assert.match(runtime.output(), NO_LAMBDA);
    assert.doesNotMatch(runtime.output(), /listening on/);
    assert.equal(processMemory(runtime.pid).opendalMapped, false);
  } finally {
    await runtime.stop();
    await api.close();
    rmSync(cwd, { recursive: true, force: true });
  }
});

Deno.test("dist/otlp2parquet on Lambda writes S3 over fetch with the role's credentials, never loading OpenDAL", async () => {
  await ensureBuilt();
  const s3 = await startS3Server();
  const api = new FakeRuntimeApi();
  const cwd = mkdtempSync(join(tmpdir(), "otlp2parquet-lambda-s3-"));
  const runtime = start({
    AWS_LAMBDA_RUNTIME_API: api.address,
    OTLP2PARQUET_S3_BUCKET: s3.bucket,
    OTLP2PARQUET_S3_ENDPOINT: s3.endpoint,
    OTLP2PARQUET_S3_PREFIX: "lambda",
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_SESSION_TOKEN: "session",
    AWS_REGION: "us-east-1",
    // As behind a Function URL with IAM auth.
    OTLP2PARQUET_AUTH: "none",
  }, cwd);
  try {
    const outcome = await api.invoke(event("/v1/logs", LOGS));
    assert.equal(outcome.kind, "response", runtime.output());
    assert.equal(outcome.body.statusCode, 200, runtime.output());
    const listing = await (await fetch(`${s3.endpoint}/${s3.bucket}?list-type=2&prefix=lambda/logs/`)).text();
    assert.match(listing, /<Key>lambda\/logs\/[^<]+\.parquet<\/Key>/);
    assert.equal(processMemory(runtime.pid).opendalMapped, false, "OpenDAL's addon was loaded on Lambda");
  } finally {
    await runtime.stop();
    await api.close();
    await s3.stop();
    rmSync(cwd, { recursive: true, force: true });
  }
});

/** Runs the executable with `args` from an empty folder, with only PATH and HOME set. */
const runExecutable = (args: string[], cwd: string) =>
  runProcess(EXECUTABLE, args, { cwd, env: { HOME: cwd } });

Deno.test("dist/otlp2parquet runs every command from an empty folder: --help lists them, plan reads its bundled prices", async () => {
  await ensureBuilt();
  const cwd = mkdtempSync(join(tmpdir(), "otlp2parquet-commands-"));
  try {
    const help = await runExecutable(["--help"], cwd);
    assert.equal(help.code, 0, help.stderr);
    for (const command of ["convert", "schema", "connect", "plan", "check", "bench", "compact", "serve"]) {
      assert.match(help.stdout, new RegExp(`^ {2}${command} `, "m"), command);
    }
    const plan = await runExecutable(
      ["plan", "--records-per-second", "1000", "--bytes-per-record", "300", "--format", "json"],
      cwd,
    );
    assert.equal(plan.code, 0, plan.stderr);
    const parsed = JSON.parse(plan.stdout);
    assert.equal(
      parsed.prices.taken,
      JSON.parse(readFileSync(new URL("../src/cli/prices.json", import.meta.url), "utf8")).taken,
    );
    assert.equal(parsed.costs.length, 4);
    const connect = await runExecutable(["connect", "otel-collector"], cwd);
    assert.equal(connect.code, 0, connect.stderr);
    assert.match(connect.stdout, /^ {2}otlp_http\/otlp2parquet:$/m);
    const duck = await runExecutable(["schema", "duckdb", "--url", "s3://b/p"], cwd);
    assert.equal(duck.code, 0, duck.stderr);
    assert.match(duck.stdout, /CREATE OR REPLACE VIEW otel_logs AS/);
    const check = await runExecutable(["check"], cwd);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /The store works/);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

Deno.test("dist/otlp2parquet bench counts what its own server stores; compact merges small objects", async () => {
  await ensureBuilt();
  const cwd = mkdtempSync(join(tmpdir(), "otlp2parquet-ops-"));
  const { openDuckDb } = await import("./support/duckdb.ts");
  const db = await openDuckDb();
  const count = async (glob: string) =>
    Number((await db.rows(`SELECT count(*)::INTEGER AS n FROM '${glob}'`))[0].n);
  // Without batching every request is stored before its 200, so stop()'s SIGKILL loses nothing acknowledged.
  const server = start({
    OTLP2PARQUET_LISTEN_ADDR: "127.0.0.1:0",
    HOME: cwd,
    OTLP2PARQUET_BATCH_ENABLED: "false",
  }, cwd);
  try {
    const [, address] = await server.waitFor(/listening on http:\/\/(\S+)/);
    const bench = await runExecutable(
      [
        "bench",
        "--endpoint",
        `http://${address}`,
        "--rate",
        "1000",
        "--records-per-request",
        "100",
        "--duration",
        "1",
      ]
        .concat(["--compression", "zstd", "--json"]),
      cwd,
    );
    assert.equal(bench.code, 0, bench.stderr);
    const result = JSON.parse(bench.stdout);
    assert.equal(result.requests, 10);
    await server.stop();
    assert.equal(await count(join(cwd, "data", "logs", "**", "*.parquet")), result.acknowledgedRecords);

    // Two writers' copies of the same request: two objects per partition, merged into one.
    const logs = join(cwd, "logs.pb");
    Deno.writeFileSync(logs, LOGS);
    for (const id of ["a", "b"]) {
      const c = await runExecutable(["convert", "--out", "small", "--instance-id", id, logs], cwd);
      assert.equal(c.code, 0, c.stderr);
    }
    const before = parquetFiles(join(cwd, "small")).length;
    const rows = await count(join(cwd, "small", "logs", "**", "*.parquet"));
    const compact = await runExecutable(
      ["compact", "--path", "small", "--table", "logs", "--min-age", "0"],
      cwd,
    );
    assert.equal(compact.code, 0, compact.stderr);
    assert.match(compact.stdout, new RegExp(`otel_logs: merged ${before} objects`));
    assert.equal(parquetFiles(join(cwd, "small")).length, before / 2);
    assert.equal(await count(join(cwd, "small", "logs", "**", "*.parquet")), rows);
  } finally {
    db.close();
    await server.stop();
    rmSync(cwd, { recursive: true, force: true });
  }
});

Deno.test("dist/otlp2parquet with OTLP2PARQUET_WORKERS=2 decodes and encodes in its worker threads, and exits on SIGTERM", async () => {
  await ensureBuilt();
  const cwd = mkdtempSync(join(tmpdir(), "otlp2parquet-workers-"));
  const server = start(
    { OTLP2PARQUET_LISTEN_ADDR: "127.0.0.1:0", OTLP2PARQUET_WORKERS: "2", HOME: cwd },
    cwd,
  );
  try {
    const [, address] = await server.waitFor(/listening on http:\/\/(\S+)/);
    assert.match(server.output(), /2 worker threads decode requests and encode Parquet/);
    const post = async (path: string, body: Uint8Array, headers: Record<string, string> = {}) => {
      const r = await fetch(`http://${address}${path}`, {
        method: "POST",
        headers: { "content-type": "application/x-protobuf", ...headers },
        body: body as Uint8Array<ArrayBuffer>,
      });
      return { status: r.status, text: await r.text() };
    };
    for (let i = 0; i < 4; i++) assert.equal((await post("/v1/logs", LOGS)).status, 200);
    // gzip is inflated on the main thread (node:zlib), zstd compresses pages in the workers.
    assert.equal((await post("/v1/logs", gzipSync(LOGS), { "content-encoding": "gzip" })).status, 200);
    // A worker's decode error is the same 400 as on the main thread.
    const bad = await post("/v1/logs", new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]));
    assert.equal(bad.status, 400);
    assert.match(bad.text, /cannot decode logs request/);
    const metrics = await (await fetch(`http://${address}/metrics`)).text();
    assert.match(metrics, /^otlp2parquet_workers 2$/m);
    const busy = [...metrics.matchAll(/^otlp2parquet_worker_busy_seconds_total\{worker="\d"\} (\S+)$/gm)];
    assert.ok(busy.some((m) => Number(m[1]) > 0), `no worker did any work:\n${metrics}`);
    Deno.kill(server.pid, "SIGTERM");
    await server.waitFor(/stopped: every batch written/);
    const files = parquetFiles(join(cwd, "data"));
    assert.ok(files.length > 0);
    for (const f of files) assert.equal(readFileSync(join(cwd, "data", f)).subarray(0, 4).toString(), "PAR1");
  } finally {
    await server.stop();
    rmSync(cwd, { recursive: true, force: true });
  }
});
