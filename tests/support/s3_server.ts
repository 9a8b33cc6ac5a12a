/**
 * A real S3 server for tests: s3rver (npm, Node) as a child process on 127.0.0.1, in its own process group
 * so stop()/kill() take down everything it started. Restartable on the same port and data folder, which
 * outage tests need.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";

export interface S3Server {
  /** "http://127.0.0.1:<port>" */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The data folder: kept across stop()/restart(), removed when the test process exits. */
  directory: string;
  /** Graceful stop (SIGTERM, then SIGKILL after 3 s) of the whole process group. Idempotent. */
  stop(): Promise<void>;
  /** Immediate SIGKILL of the process group (a crash); the data folder stays for restart(). */
  kill(): void;
  /** Starts again on the same port and folder (stopping first if still running) and waits until it answers. */
  restart(): Promise<void>;
}

export interface S3ServerOptions {
  /** Default: "test-bucket". */
  bucket?: string;
  /** How long to wait for the server to answer. Default: 15000 ms. */
  startTimeoutMs?: number;
}

const S3RVER_BIN = resolve(import.meta.dirname ?? ".", "../../node_modules/s3rver/bin/s3rver.js");
// Runs the CLI but exits when our end of its stdin closes, so a test runner killed with SIGKILL does not
// leave a server behind.
const WATCHDOG =
  "process.stdin.on('end', () => process.exit(0)); process.stdin.on('error', () => process.exit(0));" +
  "process.stdin.resume(); require(process.argv[1]);";

const running = new Set<ChildProcess>();
const directories = new Set<string>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort for a test that forgot stop(): servers must not outlive the test process.
  globalThis.addEventListener("unload", () => {
    for (const child of running) killGroup(child, "SIGKILL");
    for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  });
}

/** The environment that points the server (or the single executable) at `s3`: credentials and storage settings. */
export function s3ServerEnv(s3: S3Server): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    OTLP2PARQUET_STORAGE_BACKEND: "s3",
    OTLP2PARQUET_S3_BUCKET: s3.bucket,
    OTLP2PARQUET_S3_ENDPOINT: s3.endpoint,
    OTLP2PARQUET_S3_REGION: "us-east-1",
  };
}

/** Starts s3rver on a free loopback port with a fresh data folder and one bucket; resolves once it answers. */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server> {
  const bucket = options.bucket ?? "test-bucket";
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  installExitHook();
  const directory = mkdtempSync(join(tmpdir(), "s3rver-"));
  directories.add(directory);

  let child: ChildProcess | undefined;
  let killed: ChildProcess | undefined;
  let port = 0;

  const launch = async (): Promise<void> => {
    // A killed server may still hold the port for a moment.
    if (killed !== undefined) await waitForExit(killed, 3000);
    killed = undefined;
    const args = [
      // s3rver encrypts ListObjectsV2 continuation tokens with DES, which Node 20's OpenSSL 3 only has in
      // its legacy provider: without it every paginated listing answers 500.
      "--openssl-legacy-provider",
      "-e",
      WATCHDOG,
      S3RVER_BIN,
      "-d",
      directory,
      "-a",
      "127.0.0.1",
      "-p",
      String(port),
      "--silent",
      "--configure-bucket",
      bucket,
    ];
    const proc = spawn("node", args, { detached: true, stdio: ["pipe", "pipe", "pipe"] });
    child = proc;
    running.add(proc);
    proc.once("exit", () => running.delete(proc));
    let output = "";
    const listening = new Promise<number>((resolveListening, reject) => {
      const timer = setTimeout(() => {
        killGroup(proc, "SIGKILL");
        reject(new Error(`s3rver did not start within ${timeoutMs} ms:\n${output}`));
      }, timeoutMs);
      const onData = (chunk: Uint8Array) => {
        output += new TextDecoder().decode(chunk);
        const match = /listening on [\d.]+:(\d+)/.exec(output);
        if (match !== null) {
          clearTimeout(timer);
          resolveListening(Number(match[1]));
        }
      };
      proc.stdout!.on("data", onData);
      proc.stderr!.on("data", (chunk: Uint8Array) => output += new TextDecoder().decode(chunk));
      proc.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited early (code ${code}, signal ${signal}):\n${output}`));
      });
    });
    port = await listening;
    await waitUntilAnswering(`http://127.0.0.1:${port}/`, timeoutMs);
  };

  const waitForExit = (proc: ChildProcess, ms: number): Promise<boolean> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
    return new Promise((resolveExit) => {
      const timer = setTimeout(() => resolveExit(false), ms);
      proc.once("exit", () => {
        clearTimeout(timer);
        resolveExit(true);
      });
    });
  };

  const shutdown = async (): Promise<void> => {
    if (killed !== undefined) await waitForExit(killed, 3000);
    const proc = child;
    if (proc === undefined) return;
    child = undefined;
    killGroup(proc, "SIGTERM");
    if (!await waitForExit(proc, 3000)) {
      killGroup(proc, "SIGKILL");
      await waitForExit(proc, 3000);
    }
    proc.stdin?.destroy();
    proc.stdout?.destroy();
    proc.stderr?.destroy();
  };

  try {
    await launch();
  } catch (error) {
    await shutdown();
    directories.delete(directory);
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }

  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    // s3rver's built-in account; it checks the key id and does not verify SigV4 signatures.
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    directory,
    stop: shutdown,
    kill() {
      const proc = child;
      if (proc === undefined) return;
      killGroup(proc, "SIGKILL");
      child = undefined;
      killed = proc;
      proc.stdin?.destroy();
      proc.stdout?.destroy();
      proc.stderr?.destroy();
    },
    async restart() {
      await shutdown();
      await launch();
    },
  };
}

async function waitUntilAnswering(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.body?.cancel();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`s3rver at ${url} does not answer`, { cause: error });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
