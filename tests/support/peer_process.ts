/**
 * A third-party server for tests (s3rver, fake-gcs-server, Azurite) as a child process on 127.0.0.1: in its
 * own process group so stop()/kill() take down everything it started, behind a small Node watchdog that
 * kills it when the test process goes away (even by SIGKILL: the watchdog's stdin closes), and restartable
 * on the same port and data folder, which outage tests need.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

export interface PeerProcess {
  /** The loopback port it listens on (kept across restarts). */
  port: number;
  /** The data folder: kept across stop()/restart(), removed when the test process exits. */
  directory: string;
  /** Graceful stop (SIGTERM, then SIGKILL after 3 s) of the whole process group. Idempotent. */
  stop(): Promise<void>;
  /** Immediate SIGKILL of the process group (a crash); the data folder stays for restart(). */
  kill(): void;
  /** Starts again on the same port and folder (stopping first if still running) and waits until it answers. */
  restart(): Promise<void>;
}

export interface PeerProcessOptions {
  /** Name in error messages. */
  name: string;
  /** Prefix of the temporary data folder. */
  folderPrefix: string;
  /** Program and arguments, given the port (0 at the first start when `portFromOutput` is set) and the folder. */
  command(port: number, directory: string): { program: string; args: string[] };
  /**
   * Reads the listening port from the peer's output, for peers that pick their own (started with port 0).
   * Without it a free port is chosen up front.
   */
  portFromOutput?: RegExp;
  /** A URL path that answers (any status) once the peer serves requests. */
  probePath: string;
  /** Runs after every start, once the peer answers (e.g. create a bucket). */
  afterStart?(port: number): Promise<void>;
  /** How long to wait for the peer to answer. Default: 15000 ms. */
  startTimeoutMs?: number;
}

// Runs the peer as its own child and kills it when our end of stdin closes, so a test runner killed with
// SIGKILL does not leave a server behind. The peer inherits stdout/stderr.
const WATCHDOG = "const c = require('node:child_process').spawn(process.argv[1], process.argv.slice(2)," +
  " { stdio: ['ignore', 'inherit', 'inherit'] });" +
  "const end = () => { c.kill('SIGKILL'); process.exit(0); };" +
  "process.stdin.on('end', end); process.stdin.on('error', end); process.stdin.resume();" +
  // The group's SIGTERM reaches the peer already; forwarding it would be a second signal, which some peers
  // (Azurite) take as "exit now, skip saving". The watchdog waits for the peer instead.
  "process.on('SIGTERM', () => {});" +
  "c.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));";

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

/** A free loopback port (bound, then released: the peer takes it at once). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => typeof address === "object" && address ? resolvePort(address.port) : reject());
    });
  });
}

/** Starts the peer with a fresh data folder; resolves once it answers on `probePath`. */
export async function startPeerProcess(options: PeerProcessOptions): Promise<PeerProcess> {
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  installExitHook();
  const directory = mkdtempSync(join(tmpdir(), options.folderPrefix));
  directories.add(directory);

  let child: ChildProcess | undefined;
  let killed: ChildProcess | undefined;
  let port = options.portFromOutput === undefined ? await freePort() : 0;

  const launch = async (): Promise<void> => {
    // A killed server may still hold the port for a moment.
    if (killed !== undefined) await waitForExit(killed, 3000);
    killed = undefined;
    const { program, args } = options.command(port, directory);
    const proc = spawn("node", ["-e", WATCHDOG, program, ...args], {
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    child = proc;
    running.add(proc);
    proc.once("exit", () => running.delete(proc));
    let output = "";
    const started = new Promise<number>((resolveStarted, reject) => {
      const timer = setTimeout(() => {
        killGroup(proc, "SIGKILL");
        reject(new Error(`${options.name} did not start within ${timeoutMs} ms:\n${output}`));
      }, timeoutMs);
      const onData = (chunk: Uint8Array) => {
        output += new TextDecoder().decode(chunk);
        if (output.length > 64 * 1024) output = output.slice(-32 * 1024);
        const match = options.portFromOutput?.exec(output);
        if (match) {
          clearTimeout(timer);
          resolveStarted(Number(match[1]));
        }
      };
      proc.stdout!.on("data", onData);
      proc.stderr!.on("data", onData);
      proc.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${options.name} exited early (code ${code}, signal ${signal}):\n${output}`));
      });
      if (options.portFromOutput === undefined) {
        clearTimeout(timer);
        resolveStarted(port);
      }
    });
    port = await started;
    await waitUntilAnswering(`http://127.0.0.1:${port}${options.probePath}`, timeoutMs, () => output);
    await options.afterStart?.(port);
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

  const release = (proc: ChildProcess): void => {
    proc.stdin?.destroy();
    proc.stdout?.destroy();
    proc.stderr?.destroy();
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
    release(proc);
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
    get port() {
      return port;
    },
    directory,
    stop: shutdown,
    kill() {
      const proc = child;
      if (proc === undefined) return;
      killGroup(proc, "SIGKILL");
      child = undefined;
      killed = proc;
      release(proc);
    },
    async restart() {
      await shutdown();
      await launch();
    },
  };
}

async function waitUntilAnswering(url: string, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.body?.cancel();
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`${url} does not answer:\n${output().slice(-3000)}`, { cause: error });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
