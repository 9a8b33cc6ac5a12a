/**
 * An in-process otlp2parquet server for end-to-end tests: the real `startServer` on a free loopback port,
 * with a fresh temporary folder for the `fs` store and the write-ahead log, its log lines kept in memory.
 */
import { readdir, rm } from "node:fs/promises";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { type Config, resolveConfig } from "../../src/config/mod.ts";
import { startServer } from "../../src/platforms/server/serve.ts";
import type { RunningServer } from "../../src/platforms/server/serve.ts";
import { createLogger } from "../../src/platforms/server/log.ts";

export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The temporary folder: the fs store's root and, by default, the write-ahead log's (`.wal`). */
  dir: string;
  config: Config;
  server: RunningServer;
  /** Every log line so far (level debug), oldest first. */
  logs: string[];
  /** Stops the server (flushing every batch); the folder stays until dispose(). Idempotent. */
  stop(): Promise<void>;
  /** Stops, then removes the folder. */
  dispose(): Promise<void>;
}

/** Options of {@link startTestServer}. */
export interface TestServerOptions {
  /**
   * Extra `OTLP2PARQUET_*` settings. Defaults set here: listen on `127.0.0.1:0`, store and write-ahead log
   * (`.wal`) in the temp folder, batches flushed after 3600 s (so only stop() or a size limit writes them), instance id `e2e`.
   */
  env?: Record<string, string>;
}

/** Starts a server; see {@link TestServerOptions} for the defaults. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-e2e-"));
  const { config } = await resolveConfig({
    env: {
      OTLP2PARQUET_LISTEN_ADDR: "127.0.0.1:0",
      OTLP2PARQUET_STORAGE_PATH: dir,
      OTLP2PARQUET_WAL_DIR: join(dir, ".wal"),
      OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600",
      OTLP2PARQUET_INSTANCE_ID: "e2e",
      ...options.env,
    },
  });
  const logs: string[] = [];
  const log = createLogger({ level: "debug", write: (line) => logs.push(line) });
  const server = await startServer(config, log);
  let stopped: Promise<void> | undefined;
  const stop = () => stopped ??= server.stop().then(() => {});
  return {
    url: `http://${server.address}`,
    dir,
    config,
    server,
    logs,
    stop,
    async dispose() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The Parquet files under `root` (relative paths, sorted), leaving out the log and staging folders. */
export async function listParquet(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name.startsWith(".")) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith(".parquet")) out.push(relative(root, path));
    }
  };
  await walk(root);
  return out.sort();
}
