/**
 * The stop rule, end to end, the way people start the server: `npx deno task start`, `deno task start` and the
 * single executable, each in its own process group, signalled as a terminal (Ctrl-C) or systemd's default
 * `KillMode=control-group` signals it: the whole group at once, so the server gets the signal directly and
 * again from each runner that forwards it. One signal must be one graceful stop: every acknowledged record is
 * in Parquet and the server exits 0. A second request made on purpose (the other signal, or the same one after
 * the repeat window) forces the exit, and so does the stop timeout while the store is down; the data then
 * stays in the write-ahead log and the next start writes all of it, exactly once.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPEAT_WINDOW_MS } from "../src/platforms/server/stop_signals.ts";
import { countIds, parquetFilesUnder } from "./reliability/id_audit.ts";
import { idLogsRequest } from "./reliability/otlp_proto.ts";
import { spawnServer } from "./reliability/server_process.ts";
import { ensureExecutable } from "./support/executable.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The environment without the developer's own `OTLP2PARQUET_*` settings. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) if (!k.startsWith("OTLP2PARQUET_")) env[k] = v;
  return env;
}

/** The members of process group `pgid` still alive (zombies excluded), from /proc. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) === pgid && state !== "Z") out.push(Number(e.name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** A server started through a launcher, leading its own process group. */
interface Group {
  readonly pgid: number;
  readonly url: string;
  output(): string;
  /** How the group leader (the launcher, or the executable itself) ended: exit code or signal. */
  readonly leaderExit: Promise<number | string>;
  /** Sends `signal` to every process of the group, as a terminal or systemd does. */
  signalGroup(signal: Deno.Signal): void;
  /** Resolves once no process of the group is left; rejects (after SIGKILL) past `ms`. */
  gone(ms?: number): Promise<void>;
  kill(): void;
}

const groups = new Set<Group>();
globalThis.addEventListener("unload", () => {
  for (const g of groups) g.kill();
});

/**
 * Starts `command` leading a new process group, its output (and that of every process it starts) going to
 * the file `logFile`: not a pipe, which the runtime stops reading when the leader exits, and npm exits before
 * the server has finished stopping.
 */
async function launch(
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
  logFile: string,
): Promise<Group> {
  const fd = openSync(logFile, "w");
  const child: ChildProcess = spawn(command, args, {
    cwd,
    env: { ...cleanEnv(), NO_COLOR: "1", OTLP2PARQUET_LISTEN_ADDR: "127.0.0.1:0", ...env },
    detached: true,
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  const pgid = child.pid!;
  const leaderExit = new Promise<number | string>((r) =>
    child.on("exit", (code, signal) => r(code ?? signal!))
  );
  const text = () => readFileSync(logFile, "utf8");
  const group: Group = {
    pgid,
    url: "",
    leaderExit,
    output: text,
    signalGroup: (signal) => Deno.kill(-pgid, signal),
    async gone(ms = 60_000) {
      const deadline = Date.now() + ms;
      while (groupMembers(pgid).length) {
        if (Date.now() > deadline) {
          group.kill();
          throw new Error(`the process group did not exit within ${ms} ms:\n${text()}`);
        }
        await sleep(50);
      }
      groups.delete(group);
    },
    kill() {
      try {
        Deno.kill(-pgid, "SIGKILL");
      } catch {
        // already gone
      }
    },
  };
  groups.add(group);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(text());
    if (m) return { ...group, url: m[1] };
    if (Date.now() > deadline || !groupMembers(pgid).length) {
      group.kill();
      throw new Error(`the server did not start:\n${text()}`);
    }
    await sleep(50);
  }
}

/** Sends `requests` requests of `perRequest` ids each; every one must be acknowledged. Returns the ids. */
async function sendAcknowledged(
  url: string,
  prefix: string,
  requests = 8,
  perRequest = 250,
): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let r = 0; r < requests; r++) {
    const batch = Array.from({ length: perRequest }, (_, i) => `${prefix}-${r}-${i}`);
    const res = await fetch(`${url}/v1/logs`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf" },
      body: idLogsRequest("stop-test", batch),
    });
    await res.body?.cancel();
    assert.equal(res.status, 200, `request ${r} was not acknowledged`);
    for (const id of batch) ids.add(id);
  }
  return ids;
}

/** Asserts that every id is in the Parquet files under `dataDir` exactly once, and nothing else is. */
async function assertStoredOnce(dataDir: string, ids: Set<string>, context: string): Promise<void> {
  const counts = await countIds(parquetFilesUnder(dataDir));
  const missing = [...ids].filter((id) => !counts.has(id));
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  const unknown = [...counts.keys()].filter((id) => !ids.has(id));
  assert.deepEqual(
    { missing: missing.length, duplicated: duplicated.length, unknown: unknown.length },
    { missing: 0, duplicated: 0, unknown: 0 },
    `${context}: e.g. missing ${missing.slice(0, 3)}, duplicated ${duplicated.slice(0, 3)}`,
  );
}

/** How each way of starting the server is launched: command, arguments, working folder. */
const LAUNCHERS: {
  name: string;
  start: (dir: string) => Promise<[string, string[], string]>;
  /** Whether the group leader exits with the server's exit code. */
  passesExitCode: boolean;
}[] = [
  {
    name: "npx deno task start",
    start: () => Promise.resolve(["npx", ["deno", "task", "start"], ROOT]),
    passesExitCode: false,
  },
  {
    name: "deno task start",
    start: () => Promise.resolve([Deno.execPath(), ["task", "start"], ROOT]),
    passesExitCode: true,
  },
  {
    name: "the single executable",
    start: async (dir) => [await ensureExecutable(), [], dir],
    passesExitCode: true,
  },
];

for (const launcher of LAUNCHERS) {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.test({
      name:
        `${launcher.name}: ${signal} to the whole process group is one graceful stop; every record is in Parquet`,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: async () => {
        const dir = mkdtempSync(join(tmpdir(), "o2p-stop-"));
        const data = join(dir, "data");
        try {
          const [command, args, cwd] = await launcher.start(dir);
          const group = await launch(
            command,
            args,
            {
              OTLP2PARQUET_STORAGE_PATH: data,
              OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
              // Only the stop writes the batches.
              OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600",
            },
            cwd,
            join(dir, "server.log"),
          );
          const ids = await sendAcknowledged(group.url, `${signal}`);
          assert.equal(parquetFilesUnder(data).length, 0, "a batch was written before the stop");
          group.signalGroup(signal);
          await group.gone();
          const out = group.output();
          assert.match(out, new RegExp(`${signal} received: stopping gracefully`));
          assert.doesNotMatch(out, /exiting now|still stopping/, out);
          assert.match(out, /stopped: every batch written objects=\d+ rows=2000/, out);
          // The server's exit code, passed on by `deno task`; npm instead ends itself with the signal it got.
          if (launcher.passesExitCode) assert.equal(await group.leaderExit, 0);
          await assertStoredOnce(data, ids, `${launcher.name}, ${signal}`);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    });
  }
}

/**
 * A server whose store fails every write (its root is a regular file), so a stop cannot finish by itself;
 * then a forced exit, and a restart with a working store that must write everything from the log.
 */
async function forcedThenReplayed(
  force: (pid: number) => Promise<void>,
  expect: RegExp,
  extraEnv: Record<string, string> = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "o2p-stop-force-"));
  const data = join(dir, "data");
  const env = { OTLP2PARQUET_WAL_DIR: join(dir, "wal"), OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600" };
  try {
    writeFileSync(data, "not a folder");
    const broken = await spawnServer({ ...env, OTLP2PARQUET_STORAGE_PATH: data, ...extraEnv });
    let ids: Set<string>;
    try {
      ids = await sendAcknowledged(broken.url, "forced");
      await force(broken.pid);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const code = await Promise.race([
        broken.exited,
        new Promise<"hung">((r) => timer = setTimeout(() => r("hung"), 90_000)),
      ]);
      clearTimeout(timer);
      assert.equal(code, 1, `exit code ${code}:\n${broken.output().slice(-3000)}`);
      assert.match(broken.output(), expect);
      assert.doesNotMatch(broken.output(), /stopped: every batch written/);
    } finally {
      await broken.kill();
    }
    rmSync(data);
    const fixed = await spawnServer({ ...env, OTLP2PARQUET_STORAGE_PATH: data });
    try {
      assert.match(fixed.output(), /replayed the write-ahead log requests=8 records=2000/);
      assert.equal(await fixed.stop(), 0);
    } finally {
      await fixed.kill();
    }
    await assertStoredOnce(data, ids, "after the replay");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

Deno.test({
  name: "the other signal during a stop forces the exit; the restart writes every record from the log",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    forcedThenReplayed(
      async (pid) => {
        Deno.kill(pid, "SIGINT");
        await sleep(500);
        Deno.kill(pid, "SIGTERM");
      },
      /SIGTERM after SIGINT: exiting now without waiting for the stop; what is not yet written stays in the write-ahead log/,
    ),
});

Deno.test({
  name: "the same signal again after the repeat window forces the exit; the restart writes every record",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    forcedThenReplayed(async (pid) => {
      Deno.kill(pid, "SIGTERM");
      await sleep(200);
      Deno.kill(pid, "SIGTERM"); // within the window: the same stop
      await sleep(REPEAT_WINDOW_MS + 800);
      Deno.kill(pid, "SIGTERM");
    }, /SIGTERM again after \d+ ms: the same stop[\s\S]*SIGTERM again [\d.]+ s after the first: exiting now/),
});

Deno.test({
  name: "a stop while the store is down gives up at server.stop_timeout_secs, exits 1, and loses nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    forcedThenReplayed(
      (pid) => Promise.resolve(Deno.kill(pid, "SIGTERM")),
      /stopped after 2 s \(server.stop_timeout_secs\) with batches not written[\s\S]*they stay in the write-ahead log/,
      { OTLP2PARQUET_STOP_TIMEOUT_SECS: "2" },
    ),
});
