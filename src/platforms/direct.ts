/**
 * What the serverless platforms (Lambda, Workers, Deno Deploy) share: configuration resolved from the
 * environment object their host hands over, with limits that suit the host, and the OTLP/HTTP handler
 * over a {@linkcode DirectSink} (write, then answer). Batching and the write-ahead log settings do not
 * apply there: nothing outlives a request.
 *
 * @module
 */

import {
  type Config,
  CONFIG_ENV,
  ConfigError,
  parseSize,
  resolveConfig,
  type ResolvedConfig,
  type StorageBackend,
} from "../config/mod.ts";
import type { InflateSync } from "../http/body.ts";
import { createHandler } from "../http/handler.ts";
import type { Sink } from "../ingest/sink.ts";
import { DirectSink } from "../ingest/direct_sink.ts";
import type { Logger } from "../ingest/ingest.ts";
import { limitsOf } from "../ingest/request_limits.ts";
import type { ObjectStore } from "../storage/object_store.ts";

/** Host-specific defaults applied under the `OTLP2PARQUET_*` variables. */
export interface PlatformDefaults {
  /** Default of `OTLP2PARQUET_MAX_PAYLOAD_BYTES` (the host's request or memory limit). */
  maxPayloadBytes: number;
  /**
   * Default of `OTLP2PARQUET_MAX_INFLIGHT_BYTES`; raised to the payload limit when only that one is set,
   * so a larger payload limit alone is never an inconsistent configuration.
   */
  maxInflightBytes: number;
  /** Default of `OTLP2PARQUET_STORAGE_BACKEND`. Default: the configuration's own (`fs`). */
  storageBackend?: StorageBackend;
}

/** Options of {@linkcode resolvePlatformConfig}. */
export interface PlatformConfigOptions {
  defaults: PlatformDefaults;
  /** Instance id unless `OTLP2PARQUET_INSTANCE_ID` sets one. */
  instanceId: string;
  /** Reads the TOML file `OTLP2PARQUET_CONFIG` names. Default: none, and naming a file is an error. */
  readTextFile?: (path: string) => Promise<string>;
}

/**
 * Resolves the configuration from a host's environment object (non-string entries such as bindings are
 * skipped) with the platform's defaults beneath it. These hosts are public by nature, so a token is
 * required unless `OTLP2PARQUET_AUTH=none` says otherwise (see {@linkcode createDirectHandler}).
 *
 * @throws {ConfigError} listing every invalid setting.
 */
export function resolvePlatformConfig(
  env: Readonly<Record<string, unknown>>,
  options: PlatformConfigOptions,
): Promise<ResolvedConfig> {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (typeof value === "string" && value.trim() !== "") vars[name] = value;
  }
  if (vars[CONFIG_ENV] !== undefined && !options.readTextFile) {
    return Promise.reject(
      new ConfigError([
        `${CONFIG_ENV} names a file, but this platform reads no files: use OTLP2PARQUET_* variables`,
      ]),
    );
  }
  const { defaults } = options;
  const layered: Record<string, string> = {};
  if (defaults.storageBackend) layered.OTLP2PARQUET_STORAGE_BACKEND = defaults.storageBackend;
  layered.OTLP2PARQUET_MAX_PAYLOAD_BYTES = String(defaults.maxPayloadBytes);
  let inflight = defaults.maxInflightBytes;
  const payload = vars.OTLP2PARQUET_MAX_PAYLOAD_BYTES;
  if (payload !== undefined) {
    try {
      inflight = Math.max(inflight, parseSize(payload));
    } catch {
      // resolveConfig reports the invalid value with its name.
    }
  }
  layered.OTLP2PARQUET_MAX_INFLIGHT_BYTES = String(inflight);
  return resolveConfig({
    env: { ...layered, ...vars },
    instanceId: options.instanceId,
    readTextFile: options.readTextFile,
    requireAuth: true,
  });
}

/** A fresh instance id: 12 hex digits, so objects written by concurrent instances never share a name. */
export function randomInstanceId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 12);
}

/**
 * The OTLP/HTTP handler writing each request to `store` before answering. `inflateSync`: the runtime's
 * one-call gzip/deflate inflater, where it has one (not on Workers). `sink`: what takes the requests
 * instead of a {@linkcode DirectSink} over `store` (Workers' batching Durable Object). Without a token
 * (and without `OTLP2PARQUET_AUTH=none`) it answers every request but `/health` and `/ready` with 503
 * (misconfigured) and logs why, once, here.
 */
export function createDirectHandler(
  store: ObjectStore,
  options: { config: Config; log: Logger; inflateSync?: InflateSync; sink?: Sink },
): (request: Request) => Promise<Response> {
  const { config, log } = options;
  if (config.auth.mode === "token" && config.auth.tokens.length === 0) {
    log.error(
      "no authentication token is set: every request gets 503 until OTLP2PARQUET_AUTH_TOKEN (or " +
        "OTLP2PARQUET_AUTH_TOKENS) is set, or OTLP2PARQUET_AUTH=none turns authentication off on purpose",
    );
  }
  const sink = options.sink ?? new DirectSink(store, {
    files: {
      instanceId: config.server.instanceId,
      compression: config.parquet.compression,
      rowGroupRows: config.parquet.rowGroupRows,
    },
    maxInflightBytes: config.server.maxInflightBytes,
    limits: limitsOf(config.batch),
    log,
  });
  return createHandler({
    sink,
    maxPayloadBytes: config.server.maxPayloadBytes,
    readTimeoutMs: config.server.requestTimeoutSecs * 1000,
    minBodyRateBytesPerSec: config.server.minBodyRateBytesPerSec,
    bodyRateGraceMs: config.server.bodyRateGraceSecs * 1000,
    inflateSync: options.inflateSync,
    auth: config.auth.mode === "token" ? { tokens: config.auth.tokens } : undefined,
    onError: (error, request) =>
      log.error("unexpected error", { path: new URL(request.url).pathname, error: String(error) }),
  });
}
