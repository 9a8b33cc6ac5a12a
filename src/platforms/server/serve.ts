/**
 * The server platform: configuration, storage, write-ahead log and ingest wired to the OTLP/HTTP
 * handler, served by Deno.serve (development) or Bun.serve (the single executable), with a graceful stop
 * on SIGINT/SIGTERM: one stop request is one graceful stop however many times it reaches the process, and
 * only a second request made on purpose forces the exit (the rule is in `stop_signals.ts`). Every refused
 * request is logged (rate-limited, `refusal_log.ts`) and, unless `server.metrics` is off, counted for
 * `GET /metrics`.
 *
 * @module
 */

import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import {
  type Config,
  ConfigError,
  describeConfig,
  resolveConfig,
  walRequestBytes,
} from "../../config/mod.ts";
import { VERSION } from "../../core/version.ts";
import { createHandler, type RequestInfo } from "../../http/handler.ts";
import { DirectSink } from "../../ingest/direct_sink.ts";
import { Ingest, type Logger } from "../../ingest/ingest.ts";
import { Wal } from "../../ingest/wal.ts";
import { limitsOf } from "../../ingest/request_limits.ts";
import { storeFromConfig } from "../../storage/from_config.ts";
import { RefusalLog } from "../../observability/refusal_log.ts";
import { ServerMetrics } from "../../observability/server_metrics.ts";
import { prepareParquet } from "../wasm.ts";
import { nodeInflateSync } from "../node_codecs.ts";
import { denoServeHttp, serveConnections } from "./deno_listener.ts";
import { availableCpus } from "./cpus.ts";
import { CpuPool } from "./cpu_pool.ts";
import { createLogger } from "./log.ts";
import { REPEAT_WINDOW_MS, StopSignals } from "./stop_signals.ts";

/** A running server. */
export interface RunningServer {
  /** The address it listens on, e.g. `127.0.0.1:4318`. */
  readonly address: string;
  readonly ingest: Ingest;
  /**
   * Stops accepting, finishes the requests in progress, writes every batch and closes the log, giving up
   * `server.stop_timeout_secs` after `since` (default: now; `Date.now()` time): what is not written by then
   * stays in the log. Resolves with whether every batch was written. Idempotent.
   */
  stop(since?: number): Promise<{ flushed: boolean }>;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /** The CPU worker threads; undefined with `server.workers` 1 (all on the main thread). */
  readonly pool: CpuPool | undefined;
}

/** After the stop timeout, how long closing may still take (a store call in flight) before the process exits. */
export const STOP_EXIT_MARGIN_MS = 10_000;

async function instanceId(config: Config, walDir: string | undefined): Promise<string> {
  if (config.server.instanceId) return config.server.instanceId;
  // Kept beside the log, so a restarted instance replays under the same name and its objects keep sorting together.
  const random = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  if (!walDir) return random;
  const file = join(walDir, "instance-id");
  try {
    const id = (await readFile(file, "utf8")).trim();
    if (/^[A-Za-z0-9_-]{1,64}$/.test(id)) return id;
  } catch {
    // first start
  }
  await mkdir(walDir, { recursive: true });
  await writeFile(file, random + "\n");
  return random;
}

/** Whether a listen host is reachable only from this machine. */
function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** What listening gives back to `startServer`. */
interface Listening {
  stop(): Promise<void>;
}

/** Accept errors are logged at most this often, with the count since the last line. */
const ACCEPT_ERROR_LOG_MS = 10_000;

/**
 * Serves a handler: on Bun with `Bun.serve`, on Deno from our own accept loop (`deno_listener.ts`, which
 * says why). Both survive accept errors (EMFILE) and close idle and slow-header connections:
 *
 * - Bun (uSockets) keeps accepting after EMFILE by itself. Its `idleTimeout` (at most 255 s) closes kept-alive
 *   connections (uSockets checks every 4 s, so it may take up to 4 s longer); a new connection must complete its
 *   headers within uWS's fixed ~10 s. A request in progress may be silent for `request_timeout_secs` + 5 s
 *   (`server.timeout`), so Bun never cuts a request our own body timeout and minimum rate still judge.
 * - Deno: see `serveConnections`.
 */
function listen(
  handler: (r: Request, info?: RequestInfo) => Promise<Response>,
  config: Config,
  log: Logger,
  onListen: (address: string) => void,
): Listening {
  const { hostname, port } = config.server;
  const bracket = (h: string) => h.includes(":") ? `[${h}]` : h;
  const bun = (globalThis as {
    Bun?: {
      serve(o: unknown): {
        port: number;
        stop(force?: boolean): Promise<void>;
        timeout(request: Request, seconds: number): void;
        requestIP(request: Request): { address: string; port: number } | null;
      };
    };
  }).Bun;
  if (bun) {
    const requestIdle = Math.min(255, Math.ceil(config.server.requestTimeoutSecs) + 5);
    const idle = Math.max(1, Math.min(255, Math.ceil(config.server.idleTimeoutSecs)));
    const server = bun.serve({
      hostname,
      port,
      fetch: async (request: Request) => {
        // The socket keeps the last timeout set: back to the idle one once the answer is ready.
        server.timeout(request, requestIdle);
        try {
          return await handler(request, {
            // Looked up only if read (the log of refused requests does).
            get remoteAddr() {
              const ip = server.requestIP(request);
              return ip ? { hostname: ip.address, port: ip.port } : undefined;
            },
          });
        } finally {
          server.timeout(request, idle);
        }
      },
      maxRequestBodySize: config.server.maxPayloadBytes + 1024,
      idleTimeout: idle,
    });
    onListen(`${bracket(hostname)}:${server.port}`);
    return { stop: () => server.stop(false) };
  }
  if (!denoServeHttp()) {
    // A later Deno without Deno.serveHttp: serve as before, without the connection bounds.
    log.warn("Deno.serveHttp is missing: connections are not timed out and an accept error stops the server");
    const deno = (globalThis as unknown as {
      Deno: { serve(o: unknown, h: unknown): { shutdown(): Promise<void> } };
    }).Deno;
    const server = deno.serve({
      hostname,
      port,
      onListen: (a: { hostname: string; port: number }) => onListen(`${bracket(a.hostname)}:${a.port}`),
    }, handler);
    return { stop: () => server.shutdown() };
  }
  let lastLogged = 0;
  let unlogged = 0;
  const server = serveConnections(handler, {
    hostname,
    port,
    headerTimeoutMs: config.server.headerTimeoutSecs * 1000,
    idleTimeoutMs: config.server.idleTimeoutSecs * 1000,
    onAcceptError: (error, stats) => {
      unlogged++;
      const now = Date.now();
      if (now - lastLogged < ACCEPT_ERROR_LOG_MS) return;
      lastLogged = now;
      log.warn("cannot accept connections; closing the longest idle one and retrying", {
        error: (error as Error)?.message ?? String(error),
        errors: unlogged,
        open: stats.open,
        idle: stats.idle,
        hint: "raise the descriptor limit (LimitNOFILE, ulimit -n); see docs/deploy.md",
      });
      unlogged = 0;
    },
  });
  onListen(server.address);
  return { stop: () => server.stop() };
}

/** Starts the server from resolved configuration. */
export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  // Only what this configuration uses is loaded: no wasm for zstd/gzip/none, no OpenDAL for fs.
  await prepareParquet(config.parquet.compression);
  const store = await storeFromConfig(config, { env: process.env });
  const metrics = config.server.metrics
    ? new ServerMetrics({
      residentMemory: () => process.memoryUsage.rss(),
      startTimeMs: performance.timeOrigin,
    })
    : undefined;
  let storeReachable = true, storeError: string | undefined;
  try {
    await store.check();
  } catch (e) {
    storeReachable = false;
    storeError = (e as Error).message;
    log.warn("object store not reachable at start-up; accepting into the log and retrying", {
      store: store.description,
      error: (e as Error).message,
    });
  }
  // Without batching every request is written before its 200 (DirectSink), so new requests need no log;
  // a log left by an earlier run with batching is still opened and replayed.
  const durable = config.durability.mode === "wal";
  let wal: Wal | undefined;
  const walMax = config.durability.walMaxBytes;
  if (durable) {
    wal = await Wal.open({
      dir: config.durability.walDir,
      maxBytes: walMax,
      // Only whole segments are released and the active one never is: segments must be a small part of
      // the bound, or a log that filled up once would stay full.
      segmentBytes: Math.max(4096, Math.min(64 * 1024 * 1024, Math.floor(walMax / 16))),
      onWarning: (message) => log.warn(message),
    });
  }
  const id = await instanceId(config, durable ? config.durability.walDir : undefined);
  // Worker threads decode and encode; with one, the main thread does, exactly as before (no pool at all).
  const cpus = availableCpus();
  const workers = config.server.workers === "auto" ? cpus.count : config.server.workers;
  const pool = workers > 1
    ? new CpuPool({ size: workers, compression: config.parquet.compression, log })
    : undefined;
  log.info(
    workers > 1
      ? `${workers} worker threads decode requests and encode Parquet`
      : "decoding and encoding on the main thread (one worker)",
    { workers, cpus: cpus.count, cpusLimitedBy: cpus.limitedBy, setting: config.server.workers },
  );
  // Threads load their modules before the first connection is accepted (see CpuPool.ready).
  if (pool && !(await pool.ready())) log.warn("worker threads have not all started after 30 s; going on");
  const files = {
    instanceId: id,
    compression: config.parquet.compression,
    rowGroupRows: config.parquet.rowGroupRows,
  };
  const { ingest, replayed } = await (async () => {
    try {
      return await Ingest.start({
        store,
        encoder: pool,
        storeReachable,
        storeError,
        wal,
        // An eighth of the log (at most 64 MiB) stays free for intent and commit records.
        maxLogBytes: walRequestBytes(walMax),
        probeIntervalMs: config.storage.probeIntervalSecs * 1000,
        maxRows: config.batch.maxRows,
        maxBytes: config.batch.maxBytes,
        maxAgeMs: config.batch.maxAgeSecs * 1000,
        maxInflightBytes: config.server.maxInflightBytes,
        maxOpenBatches: config.batch.maxOpenBatches,
        maxQueuedBytes: config.batch.maxQueuedBytes,
        maxPendingBytes: config.batch.maxPendingBytes,
        limits: limitsOf(config.batch),
        files,
        log,
        dedupe: {
          windowMs: config.durability.dedupeWindowSecs * 1000,
          maxEntries: config.durability.dedupeMaxEntries,
          dir: durable ? config.durability.walDir : undefined,
        },
        observer: metrics?.ingestObserver,
      });
    } catch (e) {
      pool?.close();
      throw e;
    }
  })();
  metrics?.replayed(replayed.requests, replayed.records);
  if (replayed.requests || replayed.skipped || replayed.redone) {
    log.info("replayed the write-ahead log", {
      requests: replayed.requests,
      records: replayed.records,
      redoneWrites: replayed.redone,
      // Logged requests whose rows were all in objects: neither read nor decoded.
      skippedRequests: replayed.skipped,
      readBytes: replayed.readBytes,
    });
  }
  const sink = config.batch.enabled ? ingest : new DirectSink(store, {
    files,
    maxInflightBytes: config.server.maxInflightBytes,
    limits: limitsOf(config.batch),
    log,
    observer: metrics?.ingestObserver,
  });
  const refusals = new RefusalLog(log);
  const handler = createHandler({
    sink,
    maxPayloadBytes: config.server.maxPayloadBytes,
    readTimeoutMs: config.server.requestTimeoutSecs * 1000,
    minBodyRateBytesPerSec: config.server.minBodyRateBytesPerSec,
    bodyRateGraceMs: config.server.bodyRateGraceSecs * 1000,
    inflateSync: nodeInflateSync,
    // The body read for this request is the handler's alone: moved to the worker and back, not copied.
    decode: pool && ((signal, body, options) => pool.decode(signal, body, options, true)),
    auth: config.auth.mode === "token" ? { tokens: config.auth.tokens } : undefined,
    onError: (error, request) =>
      log.error("unexpected error", { path: new URL(request.url).pathname, error: String(error) }),
    metrics: metrics && (() => metrics.render()),
    observe: (outcome, request, info) => {
      metrics?.observe(outcome);
      refusals.observe(outcome, request, info);
    },
  });
  metrics?.watch({
    openBatchesByTable: () => ingest.openBatchesByTable(),
    stats: () =>
      sink === ingest ? ingest.stats() : { ...ingest.stats(), inflightBytes: sink.stats().inflightBytes },
    wal,
    walMaxBytes: wal ? walMax : undefined,
    workers: () => {
      const p = pool?.stats();
      return { count: workers, busySeconds: p?.busySeconds ?? [], restarts: p?.restarts ?? 0 };
    },
  });
  let address = "";
  const server = listen(handler, config, log, (a) => address = a);
  log.info(`otlp2parquet ${VERSION} listening on http://${address}`, {
    store: store.description,
    durability: !config.batch.enabled
      ? "each request written to the store before its 200 (no batching)"
      : durable
      ? `write-ahead log in ${config.durability.walDir}`
      : "none (data in memory is lost on a crash)",
    instance: id,
  });
  for (const line of describeConfig(config).split("\n")) if (line.trim()) log.info(line);
  if (config.auth.mode === "none" && !isLoopback(config.server.hostname)) {
    log.warn(
      `listening on ${address} without authentication: anyone who reaches it can write; ` +
        "set OTLP2PARQUET_AUTH_TOKEN (see docs/deploy.md#authentication)",
    );
  }
  let stopping: Promise<{ flushed: boolean }> | undefined;
  let done!: () => void;
  const finished = new Promise<void>((r) => done = r);
  const stop = (since = Date.now()) =>
    stopping ??= (async () => {
      const deadline = since + config.server.stopTimeoutSecs * 1000;
      log.info("stopping: no new requests; writing every batch", {
        timeoutSecs: config.server.stopTimeoutSecs,
      });
      // Requests in progress are bounded by their own read timeouts; past the deadline they are left to
      // finish or fail while the batches are written.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        server.stop(),
        new Promise((r) => timer = setTimeout(r, Math.max(0, deadline - Date.now()))),
      ]);
      clearTimeout(timer);
      refusals.close();
      const { flushed } = await ingest.close({ deadlineMs: Math.max(0, deadline - Date.now()) });
      // After the final flush (the encodes it needed are done): the threads would keep the process alive.
      pool?.close();
      const s = ingest.stats();
      const counts = { objects: s.objects, rows: s.objectRows, retriesStoredOnce: s.deduplicated };
      if (flushed) log.info("stopped: every batch written", counts);
      else if (durable) {
        log.warn(
          `stopped after ${config.server.stopTimeoutSecs} s (server.stop_timeout_secs) with batches not ` +
            "written (is the store reachable?): they stay in the write-ahead log and are written at the next start",
          counts,
        );
      } else log.error("stopped with batches not written: without the write-ahead log they are lost", counts);
      done();
      return { flushed };
    })();
  return { address, ingest, stop, finished, pool };
}

/** The `serve` entry: reads env and flags, starts, and exits on signals. Only this function exits the process. */
export async function serveMain(flags: Record<string, unknown>): Promise<void> {
  let config: Config;
  let warnings: string[];
  try {
    ({ config, warnings } = await resolveConfig({
      env: process.env,
      flags,
      readTextFile: (path) => readFile(path, "utf8"),
    }));
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
  const log = createLogger({ level: config.log.level, format: config.log.format });
  for (const w of warnings) log.warn(w);
  // Handlers go in before start-up (replay can take a while), so an early SIGTERM still stops gracefully.
  const running: { server?: RunningServer } = {};
  const signals = new StopSignals();
  let stopAsked = 0;
  const kept = config.batch.enabled && config.durability.mode === "wal"
    ? "what is not yet written stays in the write-ahead log and is written at the next start"
    : config.batch.enabled
    ? "batches not yet written are lost (durability none)"
    : "every acknowledged request is already stored";
  const shutdown = (s: RunningServer) =>
    s.stop(stopAsked).then(({ flushed }) => process.exit(flushed ? 0 : 1), (e) => {
      log.error("stop failed", { error: String(e), kept });
      process.exit(1);
    });
  const onSignal = (name: string) => {
    const now = Date.now();
    const decision = signals.receive(name, now);
    if (decision.kind === "repeat") {
      log.info(`${name} again after ${decision.afterMs} ms: the same stop (not forcing the exit)`);
      return;
    }
    if (decision.kind === "force") {
      log.warn(`${decision.reason}: exiting now without waiting for the stop; ${kept}`);
      process.exit(1);
    }
    stopAsked = now;
    const timeout = config.server.stopTimeoutSecs;
    log.info(
      `${name} received: stopping gracefully (requests in progress finish, every batch is written; at most ` +
        `${timeout} s, server.stop_timeout_secs). The same signal within ${
          REPEAT_WINDOW_MS / 1000
        } s is this ` +
        `same stop; to exit at once, send it again later (Ctrl-C again after ${REPEAT_WINDOW_MS / 1000} s) ` +
        `or send the other signal: ${kept}.`,
    );
    // The stop gives up writing at the timeout; closing may still wait on one store call in flight.
    setTimeout(() => {
      log.error(`still stopping ${timeout + STOP_EXIT_MARGIN_MS / 1000} s after ${name}: exiting; ${kept}`);
      process.exit(1);
    }, timeout * 1000 + STOP_EXIT_MARGIN_MS);
    if (running.server) shutdown(running.server);
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  const server = running.server = await startServer(config, log);
  if (signals.stopping) shutdown(server);
  await server.finished;
}
