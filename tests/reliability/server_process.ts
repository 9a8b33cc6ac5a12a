/**
 * The real server as a child process (`src/platforms/server/main.ts` through a watchdog entry), for tests
 * that kill it, restart it and watch its memory. Every child is registered and SIGKILLed when the test
 * process ends, and the watchdog makes a child exit when the test process dies (its stdin closes).
 *
 * @module
 */

import { fileURLToPath } from "node:url";

const ENTRY = fileURLToPath(new URL("./server_entry.ts", import.meta.url));
const BUN_ENTRY = fileURLToPath(new URL("./bun_server_entry.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));
/** The Bun binary itself (the npm `.bin` shim would be run by Deno's child_process as a script). */
const BUN = fileURLToPath(new URL("../../node_modules/bun/bin/bun.exe", import.meta.url));

/** A running server process. */
export interface ServerProcess {
  readonly pid: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Log output so far (stdout and stderr, the last 4 MiB). */
  output(): string;
  /** SIGKILL; resolves once the process is gone. Idempotent. */
  kill(): Promise<void>;
  /** SIGTERM (graceful: flush and exit), SIGKILL after `timeoutMs` (default 30 000); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Resolves with the exit code (null after a signal) when the process ends by itself or is stopped. */
  readonly exited: Promise<number | null>;
  /** Current and peak resident set size in KiB, from /proc. */
  memory(): { rssKiB: number; peakKiB: number };
  /** Open file descriptors, from /proc. */
  openFiles(): number;
}

const children = new Set<Deno.ChildProcess>();
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  globalThis.addEventListener("unload", () => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/** Environment variables that would leak the developer's own settings into a test server. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) if (!k.startsWith("OTLP2PARQUET_")) env[k] = v;
  return env;
}

/** Options of {@link spawnServer}. */
export interface SpawnOptions {
  /** Default 30 000. */
  startTimeoutMs?: number;
  /** `deno` (`Deno.serve`'s replacement, as `deno task start`) or `bun` (`Bun.serve`, as the single executable). Default `deno`. */
  runtime?: "deno" | "bun";
  /** The soft limit on open descriptors (`ulimit -n`) the server runs with. Default: the test's own. */
  fdLimit?: number;
}

/**
 * Starts the server with `env` (OTLP2PARQUET_* settings; LISTEN_ADDR defaults to 127.0.0.1:0) and resolves
 * once it listens. Rejects (after killing it) if it does not start within `startTimeoutMs` (default 30 000).
 */
export async function spawnServer(
  env: Record<string, string>,
  options: SpawnOptions = {},
): Promise<ServerProcess> {
  hook();
  let command = options.runtime === "bun" ? BUN : Deno.execPath();
  // `--expose-gc` as `deno task start`: idle worker threads collect (see `collect` in cpu_worker.ts).
  let args = options.runtime === "bun"
    ? [BUN_ENTRY]
    : ["run", "-A", "--v8-flags=--expose-gc", "--config", CONFIG, ENTRY];
  if (options.fdLimit !== undefined) {
    // `exec` keeps the pid, so /proc still shows the server itself.
    args = ["-c", `ulimit -n ${Math.floor(options.fdLimit)} && exec "$@"`, "bash", command, ...args];
    command = "bash";
  }
  const child = new Deno.Command(command, {
    args,
    env: { ...cleanEnv(), OTLP2PARQUET_LISTEN_ADDR: "127.0.0.1:0", NO_COLOR: "1", ...env },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  let log = "";
  const append = (text: string) => {
    log += text;
    if (log.length > 8 << 20) log = log.slice(-(4 << 20));
  };
  // Both pipes are always drained, or a chatty server would block on a full pipe.
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) append(decoder.decode(chunk, { stream: true }));
    } catch {
      // killed
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const exited = child.status.then(async (s) => {
    children.delete(child);
    await drained;
    return s.signal === null ? s.code : null;
  });
  let gone = false;
  void exited.then(() => gone = true);

  const kill = async () => {
    if (!gone) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    await exited;
    await child.stdin.close().catch(() => {});
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  let url = "";
  while (!url) {
    const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(log);
    if (m) url = m[1];
    else if (gone) throw new Error(`server exited before listening:\n${log}`);
    else if (Date.now() > deadline) {
      await kill();
      throw new Error(`server did not listen in time:\n${log}`);
    } else await new Promise((r) => setTimeout(r, 20));
  }
  // Signal handlers are installed just after the banner; an answered request means they are in place.
  if (!await waitForStatus(`${url}/health`, { timeoutMs: Math.max(1000, deadline - Date.now()) })) {
    await kill();
    throw new Error(`server does not answer /health:\n${log}`);
  }

  const proc = (field: string): number => {
    try {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      return Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
    } catch {
      return NaN;
    }
  };

  return {
    pid: child.pid,
    url,
    output: () => log,
    kill,
    async stop(timeoutMs = 30_000) {
      if (!gone) {
        try {
          child.kill("SIGTERM");
        } catch {
          // already gone
        }
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const code = await Promise.race([
        exited,
        new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), timeoutMs)),
      ]);
      clearTimeout(timer);
      if (code === "timeout") {
        await kill();
        throw new Error(`server did not stop within ${timeoutMs} ms:\n${log.slice(-4000)}`);
      }
      await child.stdin.close().catch(() => {});
      return code;
    },
    exited,
    memory: () => ({ rssKiB: proc("VmRSS"), peakKiB: proc("VmHWM") }),
    openFiles: () => {
      let n = 0;
      for (const _ of Deno.readDirSync(`/proc/${child.pid}/fd`)) n++;
      return n;
    },
  };
}

/** Polls `url` until it answers `status` (default 200) or `timeoutMs` passes; returns whether it did. */
export async function waitForStatus(
  url: string,
  options: { status?: number; timeoutMs?: number } = {},
): Promise<boolean> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await r.body?.cancel();
      if (r.status === (options.status ?? 200)) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** The distinct WARN and ERROR lines of a server log (timestamps cut, counted), for failure messages. */
export function problems(log: string, limit = 20): string {
  const counts = new Map<string, number>();
  for (const line of log.split("\n")) {
    const m = /^\S+ (WARN|ERROR) +(.*)$/.exec(line);
    if (m) {
      counts.set(`${m[1]} ${m[2].slice(0, 300)}`, (counts.get(`${m[1]} ${m[2].slice(0, 300)}`) ?? 0) + 1);
    }
  }
  return [...counts].slice(0, limit).map(([l, n]) => `${n}× ${l}`).join("\n");
}
