/**
 * Configuration, resolved once at start-up: defaults → TOML file → `OTLP2PARQUET_*` environment
 * variables → command-line flags, into one deeply frozen, validated {@link Config}.
 *
 * The environment and the flags arrive as plain objects because only platform entry points may read
 * the process environment; the same code then runs under Deno, Bun and Node.
 *
 * @module
 */

import { parse as parseToml, TomlError } from "smol-toml";

/** Where Parquet objects go. */
export type StorageBackend = "fs" | "s3" | "gcs" | "azblob";
/** `wal`: a request is on disk before it is acknowledged; `none`: batches live only in memory. */
export type DurabilityMode = "wal" | "none";
/** Least severe level that is logged. */
export type LogLevel = "error" | "warn" | "info" | "debug";
/** `text` for people, `json` (one object a line) for log pipelines. */
export type LogFormat = "text" | "json";
/** `token`: requests need a token (Bearer, or the Basic password); `none`: no authentication. */
export type AuthMode = "token" | "none";
/** Parquet column compression codec. */
export type ParquetCompression = "zstd" | "snappy" | "gzip" | "lz4_raw" | "none";

/** The resolved configuration. Every level is frozen. */
export interface Config {
  readonly server: {
    /** Normalised `host:port` (IPv6 hosts in brackets). */
    readonly listenAddr: string;
    /** Host to bind, without brackets (`::1`), ready for `Deno.serve`/`Bun.serve`. */
    readonly hostname: string;
    /** 0 means any free port. */
    readonly port: number;
    readonly maxPayloadBytes: number;
    readonly maxInflightBytes: number;
    readonly requestTimeoutSecs: number;
    readonly minBodyRateBytesPerSec: number;
    readonly bodyRateGraceSecs: number;
    readonly headerTimeoutSecs: number;
    readonly idleTimeoutSecs: number;
    /** From the first stop signal until the server gives up writing batches (the rest stays in the log). */
    readonly stopTimeoutSecs: number;
    /** `""` when no source set one and the entry passed none: the caller derives one. */
    readonly instanceId: string;
    /**
     * Threads that decode and encode (1: all on the main thread, no worker threads); `auto`: the CPUs the
     * process may use, which the platform entry resolves.
     */
    readonly workers: number | "auto";
    /** Whether `GET /metrics` serves the Prometheus metrics (open like `/health`). */
    readonly metrics: boolean;
  };
  readonly auth: {
    /** `token`: every request but `/health`, `/ready` (and the server's `/metrics`) must present one of `tokens`; `none`: no check. */
    readonly mode: AuthMode;
    /** `auth.token` as set, or undefined. */
    readonly token: string | undefined;
    /** Every accepted token: `auth.token`, then the comma-separated `auth.tokens`, without duplicates. */
    readonly tokens: readonly string[];
  };
  readonly storage: {
    readonly backend: StorageBackend;
    readonly path: string;
    /** How often `/ready` probes the store while no write has shown it reachable. */
    readonly probeIntervalSecs: number;
    readonly s3: {
      readonly bucket: string | undefined;
      readonly region: string;
      readonly endpoint: string | undefined;
      readonly prefix: string;
      readonly forcePathStyle: boolean;
    };
    readonly gcs: {
      readonly bucket: string | undefined;
      readonly endpoint: string | undefined;
      readonly prefix: string;
      readonly anonymous: boolean;
    };
    readonly azblob: {
      readonly container: string | undefined;
      readonly account: string | undefined;
      /** Defaults to `https://<account>.blob.core.windows.net` when only the account is set. */
      readonly endpoint: string | undefined;
      readonly prefix: string;
    };
  };
  readonly batch: {
    readonly enabled: boolean;
    readonly maxRows: number;
    readonly maxBytes: number;
    readonly maxAgeSecs: number;
    readonly maxPartitionsPerRequest: number;
    readonly maxOpenBatches: number;
    readonly maxQueuedBytes: number;
    readonly maxPendingBytes: number;
    /** Undefined: no limit. */
    readonly acceptPastSecs: number | undefined;
    readonly acceptFutureSecs: number | undefined;
  };
  /** The Cloudflare Workers batcher (a Durable Object); nothing else reads it. */
  readonly batcher: { readonly shards: number };
  readonly durability: {
    readonly mode: DurabilityMode;
    readonly walDir: string;
    readonly walMaxBytes: number;
    /** A request with the same bytes as one accepted this recently (or still in the log) is stored once. */
    readonly dedupeWindowSecs: number;
    readonly dedupeMaxEntries: number;
  };
  readonly log: { readonly level: LogLevel; readonly format: LogFormat };
  readonly parquet: { readonly compression: ParquetCompression; readonly rowGroupRows: number };
}

/** How a setting's text is read and checked. */
export type SettingType =
  | "address" // host:port
  | "string" // non-empty
  | "text" // may be empty
  | "id" // [A-Za-z0-9_-], at most 64, may be empty
  | "url" // http(s)
  | "enum"
  | "count" // positive integer
  | "workers" // positive integer or "auto"
  | "size" // positive byte count, units allowed
  | "seconds" // positive number, fractions allowed
  | "boolean";

/** One setting as data: the CLI builds its flags from these, and the docs test checks them. */
export interface Setting {
  /** Dotted TOML key; the {@link Config} path is the same with camelCase names. */
  readonly key: string;
  /** Environment variable, fixed by the product spec. */
  readonly env: string;
  /** Long flag, e.g. `--batch-max-rows`; a `--no-` flag turns a boolean off. */
  readonly flag?: string;
  /** Placeholder of the flag's value, e.g. `<rows>`; absent for switches. */
  readonly flagArg?: string;
  readonly type: SettingType;
  /** Allowed values of an `enum`. */
  readonly choices?: readonly string[];
  /** The default, as documented. */
  readonly default: string;
  readonly description: string;
  /** The value is a credential: messages never show it. */
  readonly secret?: boolean;
}

/** Environment variable naming the TOML file (the `--config` flag wins over it). */
export const CONFIG_ENV = "OTLP2PARQUET_CONFIG";
/** Flag naming the TOML file; in the flags object its key is `config`. */
export const CONFIG_FLAG = "--config";

const MiB = 1024 * 1024;

/** Every setting, in documentation order. */
export const SETTINGS: readonly Setting[] = deepFreeze(
  [
    {
      key: "server.listen_addr",
      env: "OTLP2PARQUET_LISTEN_ADDR",
      flag: "--listen",
      flagArg: "<host:port>",
      type: "address",
      default: "0.0.0.0:4318",
      description:
        "Address the OTLP/HTTP receiver listens on; IPv6 in brackets (`[::1]:4318`); port 0 = any free port.",
    },
    {
      key: "server.max_payload_bytes",
      env: "OTLP2PARQUET_MAX_PAYLOAD_BYTES",
      flag: "--max-payload",
      flagArg: "<size>",
      type: "size",
      default: "67108864 (64MiB)",
      description: "Largest request body accepted, measured after decompression (413 beyond).",
    },
    {
      key: "server.max_inflight_bytes",
      env: "OTLP2PARQUET_MAX_INFLIGHT_BYTES",
      type: "size",
      default: "268435456 (256MiB)",
      description: "Budget of decoded bytes held by requests in progress; requests beyond it get 429.",
    },
    {
      key: "server.request_timeout_secs",
      env: "OTLP2PARQUET_REQUEST_TIMEOUT_SECS",
      type: "seconds",
      default: "30",
      description: "Time allowed to read a request body, so slow clients cannot hold memory.",
    },
    {
      key: "server.min_body_rate_bytes_per_sec",
      env: "OTLP2PARQUET_MIN_BODY_RATE_BYTES_PER_SEC",
      type: "size",
      default: "1024 (1KiB)",
      description:
        "Slowest average upload accepted once the grace period is over; a slower body gets 408 and its connection is closed.",
    },
    {
      key: "server.body_rate_grace_secs",
      env: "OTLP2PARQUET_BODY_RATE_GRACE_SECS",
      type: "seconds",
      default: "5",
      description: "Time a body may take before `server.min_body_rate_bytes_per_sec` applies.",
    },
    {
      key: "server.header_timeout_secs",
      env: "OTLP2PARQUET_HEADER_TIMEOUT_SECS",
      type: "seconds",
      default: "10",
      description:
        "A new connection whose first request headers are not complete within this time is closed (Bun: fixed at about 10 s).",
    },
    {
      key: "server.idle_timeout_secs",
      env: "OTLP2PARQUET_IDLE_TIMEOUT_SECS",
      type: "seconds",
      default: "60",
      description:
        "A kept-alive connection with no complete request headers within this time after its last response is closed (Bun: at most 255).",
    },
    {
      key: "server.stop_timeout_secs",
      env: "OTLP2PARQUET_STOP_TIMEOUT_SECS",
      type: "seconds",
      default: "30",
      description:
        "On SIGINT/SIGTERM, time to finish requests and write batches; the rest stays in the log for the next start.",
    },
    {
      key: "server.instance_id",
      env: "OTLP2PARQUET_INSTANCE_ID",
      type: "id",
      default: '"" (derived at start)',
      description:
        "Part of every object name, unique per instance; letters, digits, `_` and `-`, at most 64.",
    },
    {
      key: "server.workers",
      env: "OTLP2PARQUET_WORKERS",
      flag: "--workers",
      flagArg: "<n|auto>",
      type: "workers",
      default: "auto",
      description:
        "Threads that decode requests and encode Parquet: `auto` = the CPUs this process may use (affinity and cgroup quota); 1 = no worker threads.",
    },
    {
      key: "server.metrics",
      env: "OTLP2PARQUET_METRICS",
      flag: "--no-metrics",
      type: "boolean",
      default: "true",
      description:
        "Serve Prometheus metrics on `GET /metrics`, without authentication like `/health` (docs/metrics.md).",
    },
    {
      key: "auth.mode",
      env: "OTLP2PARQUET_AUTH",
      type: "enum",
      choices: ["token", "none"],
      default: "`token` (server: only if a token is set)",
      description:
        "`token`: every request but `/health`, `/ready` and `/metrics` needs a token; `none`: off on purpose.",
    },
    {
      key: "auth.token",
      env: "OTLP2PARQUET_AUTH_TOKEN",
      type: "string",
      default: "(none)",
      description:
        "Accepted as `Authorization: Bearer <token>` or as the Basic auth password (any user name).",
      secret: true,
    },
    {
      key: "auth.tokens",
      env: "OTLP2PARQUET_AUTH_TOKENS",
      type: "string",
      default: "(none)",
      description: "More accepted tokens, comma-separated (rotation: add the new one, then drop the old).",
      secret: true,
    },
    {
      key: "storage.backend",
      env: "OTLP2PARQUET_STORAGE_BACKEND",
      flag: "--storage",
      flagArg: "<backend>",
      type: "enum",
      choices: ["fs", "s3", "gcs", "azblob"],
      default: "fs",
      description: "Object store: `fs`, `s3`, `gcs` or `azblob`.",
    },
    {
      key: "storage.path",
      env: "OTLP2PARQUET_STORAGE_PATH",
      flag: "--path",
      flagArg: "<dir>",
      type: "string",
      default: "./data",
      description: "Root directory of the `fs` backend.",
    },
    {
      key: "storage.probe_interval_secs",
      env: "OTLP2PARQUET_STORAGE_PROBE_INTERVAL_SECS",
      type: "seconds",
      default: "10",
      description:
        "Probe the store this often while no write has shown it reachable (`/ready`); an S3 `HEAD` each.",
    },
    {
      key: "storage.s3.bucket",
      env: "OTLP2PARQUET_S3_BUCKET",
      flag: "--s3-bucket",
      flagArg: "<bucket>",
      type: "string",
      default: "(required for s3)",
      description: "S3 bucket.",
    },
    {
      key: "storage.s3.region",
      env: "OTLP2PARQUET_S3_REGION",
      flag: "--s3-region",
      flagArg: "<region>",
      type: "string",
      default: "$AWS_REGION, else us-east-1",
      description: "S3 region.",
    },
    {
      key: "storage.s3.endpoint",
      env: "OTLP2PARQUET_S3_ENDPOINT",
      flag: "--s3-endpoint",
      flagArg: "<url>",
      type: "url",
      default: "(AWS)",
      description: "S3-compatible endpoint URL (MinIO, R2, …).",
    },
    {
      key: "storage.s3.prefix",
      env: "OTLP2PARQUET_S3_PREFIX",
      type: "text",
      default: '""',
      description: "Key prefix for every object in the bucket.",
    },
    {
      key: "storage.s3.force_path_style",
      env: "OTLP2PARQUET_S3_FORCE_PATH_STYLE",
      type: "boolean",
      default: "true if an endpoint is set",
      description: "Address the bucket in the path instead of the host name.",
    },
    {
      key: "storage.gcs.bucket",
      env: "OTLP2PARQUET_GCS_BUCKET",
      type: "string",
      default: "(required for gcs)",
      description: "Google Cloud Storage bucket.",
    },
    {
      key: "storage.gcs.endpoint",
      env: "OTLP2PARQUET_GCS_ENDPOINT",
      type: "url",
      default: "(Google)",
      description: "GCS JSON API endpoint URL (e.g. fake-gcs-server).",
    },
    {
      key: "storage.gcs.prefix",
      env: "OTLP2PARQUET_GCS_PREFIX",
      type: "text",
      default: '""',
      description: "Key prefix for every object in the bucket.",
    },
    {
      key: "storage.gcs.anonymous",
      env: "OTLP2PARQUET_GCS_ANONYMOUS",
      type: "boolean",
      default: "false",
      description:
        "Send no credentials and skip the metadata server (emulators); otherwise `GOOGLE_APPLICATION_CREDENTIALS` or the metadata server.",
    },
    {
      key: "storage.azblob.container",
      env: "OTLP2PARQUET_AZURE_CONTAINER",
      type: "string",
      default: "(required for azblob)",
      description: "Azure Blob Storage container.",
    },
    {
      key: "storage.azblob.account",
      env: "OTLP2PARQUET_AZURE_ACCOUNT",
      type: "string",
      default: "(none)",
      description: "Azure storage account name (account or endpoint is required for azblob).",
    },
    {
      key: "storage.azblob.endpoint",
      env: "OTLP2PARQUET_AZURE_ENDPOINT",
      type: "url",
      default: "https://<account>.blob.core.windows.net",
      description: "Azure Blob endpoint URL (e.g. Azurite).",
    },
    {
      key: "storage.azblob.prefix",
      env: "OTLP2PARQUET_AZURE_PREFIX",
      type: "text",
      default: '""',
      description: "Key prefix for every blob in the container. The key comes from `AZBLOB_ACCOUNT_KEY`.",
    },
    {
      key: "batch.enabled",
      env: "OTLP2PARQUET_BATCH_ENABLED",
      flag: "--no-batch",
      type: "boolean",
      default: "true",
      description: "Batch rows across requests; off writes one set of files per request.",
    },
    {
      key: "batch.max_rows",
      env: "OTLP2PARQUET_BATCH_MAX_ROWS",
      flag: "--batch-max-rows",
      flagArg: "<rows>",
      type: "count",
      default: "200000",
      description: "A batch is written when it holds this many rows.",
    },
    {
      key: "batch.max_bytes",
      env: "OTLP2PARQUET_BATCH_MAX_BYTES",
      flag: "--batch-max-bytes",
      flagArg: "<size>",
      type: "size",
      default: "134217728 (128MiB)",
      description: "… or this many bytes of decoded rows (counted as plain Arrow columns hold them).",
    },
    {
      key: "batch.max_age_secs",
      env: "OTLP2PARQUET_BATCH_MAX_AGE_SECS",
      flag: "--batch-max-age",
      flagArg: "<secs>",
      type: "seconds",
      default: "60",
      description: "… or when its oldest row is this old.",
    },
    {
      key: "batch.max_partitions_per_request",
      env: "OTLP2PARQUET_BATCH_MAX_PARTITIONS_PER_REQUEST",
      type: "count",
      default: "128",
      description:
        "Partitions (table, service, event hour) one request may write; records of the smallest others are refused in `partial_success`.",
    },
    {
      key: "batch.max_open_batches",
      env: "OTLP2PARQUET_BATCH_MAX_OPEN_BATCHES",
      type: "count",
      default: "1024",
      description:
        "Open batches; one more cuts the oldest early. Also bounds batches waiting to be encoded (503 beyond).",
    },
    {
      key: "batch.max_queued_bytes",
      env: "OTLP2PARQUET_BATCH_MAX_QUEUED_BYTES",
      type: "size",
      default: "134217728 (128MiB)",
      description: "Decoded bytes of batches waiting to be encoded; beyond it, 503 before bodies are read.",
    },
    {
      key: "batch.max_pending_bytes",
      env: "OTLP2PARQUET_BATCH_MAX_PENDING_BYTES",
      type: "size",
      default: "268435456 (256MiB)",
      description: "Encoded objects waiting for (or retrying against) the store; beyond it, 503.",
    },
    {
      key: "batch.accept_past_secs",
      env: "OTLP2PARQUET_BATCH_ACCEPT_PAST_SECS",
      type: "seconds",
      default: "(no limit)",
      description:
        "Refuse records (in `partial_success`) whose event time is more than this before arrival. A backfill sets none.",
    },
    {
      key: "batch.accept_future_secs",
      env: "OTLP2PARQUET_BATCH_ACCEPT_FUTURE_SECS",
      type: "seconds",
      default: "(no limit)",
      description: "Refuse records (in `partial_success`) whose event time is more than this after arrival.",
    },
    {
      key: "batcher.shards",
      env: "OTLP2PARQUET_BATCHER_SHARDS",
      type: "count",
      default: "1",
      description:
        "Workers only: batching Durable Objects, chosen per request by its signal and main service.",
    },
    {
      key: "durability.mode",
      env: "OTLP2PARQUET_DURABILITY",
      flag: "--durability",
      flagArg: "<mode>",
      type: "enum",
      choices: ["wal", "none"],
      default: "wal",
      description: "`wal`: fsync each request to a write-ahead log before answering; `none`: memory only.",
    },
    {
      key: "durability.wal_dir",
      env: "OTLP2PARQUET_WAL_DIR",
      flag: "--wal-dir",
      flagArg: "<dir>",
      type: "string",
      default: "<storage.path>/.wal for fs, else ./data/.wal",
      description: "Directory of the write-ahead log.",
    },
    {
      key: "durability.wal_max_bytes",
      env: "OTLP2PARQUET_WAL_MAX_BYTES",
      type: "size",
      default: "2147483648 (2GiB)",
      description: "Most bytes the write-ahead log may hold.",
    },
    {
      key: "durability.dedupe_window_secs",
      env: "OTLP2PARQUET_DEDUPE_WINDOW_SECS",
      type: "seconds",
      default: "600",
      description:
        "A request with the same bytes as one accepted this recently (server uptime) or still logged is stored once.",
    },
    {
      key: "durability.dedupe_max_entries",
      env: "OTLP2PARQUET_DEDUPE_MAX_ENTRIES",
      type: "count",
      default: "1000000",
      description:
        "Most request identities the retry window keeps (about 45 bytes each); beyond it the oldest is forgotten.",
    },
    {
      key: "log.level",
      env: "OTLP2PARQUET_LOG_LEVEL",
      flag: "--log-level",
      flagArg: "<level>",
      type: "enum",
      choices: ["error", "warn", "info", "debug"],
      default: "info",
      description: "`error`, `warn`, `info` or `debug`.",
    },
    {
      key: "log.format",
      env: "OTLP2PARQUET_LOG_FORMAT",
      flag: "--log-format",
      flagArg: "<format>",
      type: "enum",
      choices: ["text", "json"],
      default: "text",
      description: "`text` or `json` (one object a line).",
    },
    {
      key: "parquet.compression",
      env: "OTLP2PARQUET_PARQUET_COMPRESSION",
      type: "enum",
      choices: ["zstd", "snappy", "gzip", "lz4_raw", "none"],
      default: "zstd",
      description: "Column codec: `zstd`, `snappy`, `gzip`, `lz4_raw` or `none`.",
    },
    {
      key: "parquet.row_group_rows",
      env: "OTLP2PARQUET_PARQUET_ROW_GROUP_ROWS",
      type: "count",
      default: "131072",
      description: "Rows per Parquet row group.",
    },
  ] satisfies Setting[],
);

/** Values before any source; `undefined` ones are derived after all layers (see `derive`). */
const DEFAULTS: Readonly<Record<string, unknown>> = {
  "server.listen_addr": { hostname: "0.0.0.0", port: 4318 },
  "server.max_payload_bytes": 64 * MiB,
  "server.max_inflight_bytes": 256 * MiB,
  "server.request_timeout_secs": 30,
  "server.min_body_rate_bytes_per_sec": 1024,
  "server.body_rate_grace_secs": 5,
  "server.header_timeout_secs": 10,
  "server.idle_timeout_secs": 60,
  "server.stop_timeout_secs": 30,
  "server.instance_id": "",
  "server.workers": "auto",
  "server.metrics": true,
  "auth.mode": undefined,
  "auth.token": undefined,
  "auth.tokens": undefined,
  "storage.backend": "fs",
  "storage.path": "./data",
  "storage.probe_interval_secs": 10,
  "storage.s3.bucket": undefined,
  "storage.s3.region": undefined,
  "storage.s3.endpoint": undefined,
  "storage.s3.prefix": "",
  "storage.s3.force_path_style": undefined,
  "storage.gcs.bucket": undefined,
  "storage.gcs.endpoint": undefined,
  "storage.gcs.prefix": "",
  "storage.gcs.anonymous": false,
  "storage.azblob.container": undefined,
  "storage.azblob.account": undefined,
  "storage.azblob.endpoint": undefined,
  "storage.azblob.prefix": "",
  "batch.enabled": true,
  "batch.max_rows": 200_000,
  "batch.max_bytes": 128 * MiB,
  "batch.max_age_secs": 60,
  "batch.max_partitions_per_request": 128,
  "batch.max_open_batches": 1024,
  "batch.max_queued_bytes": 128 * MiB,
  "batch.max_pending_bytes": 256 * MiB,
  "batch.accept_past_secs": undefined,
  "batch.accept_future_secs": undefined,
  "batcher.shards": 1,
  "durability.mode": "wal",
  "durability.wal_dir": undefined,
  "durability.wal_max_bytes": 2048 * MiB,
  "durability.dedupe_window_secs": 600,
  "durability.dedupe_max_entries": 1_000_000,
  "log.level": "info",
  "log.format": "text",
  "parquet.compression": "zstd",
  "parquet.row_group_rows": 131_072,
};

const BY_KEY = new Map(SETTINGS.map((s) => [s.key, s]));
const ENV_NAMES = new Set([CONFIG_ENV, ...SETTINGS.map((s) => s.env)]);
/** TOML tables that may hold settings: every proper prefix of a key. */
const SECTIONS = new Set(
  SETTINGS.flatMap((s) =>
    s.key.split(".").slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join("."))
  ),
);

/** Thrown by {@link resolveConfig}; lists every problem found, not only the first. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(
      problems.length === 1
        ? `invalid configuration: ${problems[0]}`
        : `invalid configuration (${problems.length} problems):\n${
          problems.map((p) => `  - ${p}`).join("\n")
        }`,
    );
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Sources handed over by the platform entry point. */
export interface ConfigSources {
  /** Environment variables; only `OTLP2PARQUET_*` and `AWS_REGION` are read. Empty values count as unset. Default `{}`. */
  env?: Record<string, string | undefined>;
  /**
   * Parsed command-line flags, keyed by the long name without dashes, in kebab-case (`batch-max-rows`)
   * or camelCase (`batchMaxRows`, as commander's `opts()` gives them); `config` names the TOML file.
   * `undefined` values and unknown keys are ignored, so pass only flags the user gave. `--no-batch`
   * is `no-batch: true` or commander's `batch: false`. Default `{}`.
   */
  flags?: Record<string, unknown>;
  /** Reads the TOML file; required only when `--config` or `OTLP2PARQUET_CONFIG` names one. */
  readTextFile?: (path: string) => Promise<string>;
  /** Instance id used when no source sets `server.instance_id`. Default: none (`""`). */
  instanceId?: string;
  /**
   * The host is public by nature (Workers, Lambda, Deno Deploy): `auth.mode` defaults to `token`, and a
   * missing token is no error here, because the handler then answers 503 (misconfigured) until one is set.
   * Default false: `auth.mode` is `token` only when a token is set, and `token` without one is an error.
   */
  requireAuth?: boolean;
}

/** The outcome of {@link resolveConfig}. */
export interface ResolvedConfig {
  config: Config;
  /** Non-fatal findings, e.g. unknown `OTLP2PARQUET_*` variables. */
  warnings: string[];
}

interface Chosen {
  value: unknown;
  /** "default", "config file X", an env var name or a flag. */
  source: string;
}

/**
 * Resolves the configuration from defaults, the TOML file, the environment and the flags, each
 * layer overriding the previous one.
 *
 * @example
 * ```ts
 * const { config, warnings } = await resolveConfig({ env: { OTLP2PARQUET_BATCH_MAX_ROWS: "1000" } });
 * config.batch.maxRows; // 1000
 * ```
 * @throws {ConfigError} listing every invalid, unknown or inconsistent setting.
 */
export async function resolveConfig(sources: ConfigSources = {}): Promise<ResolvedConfig> {
  const env = sources.env ?? {};
  const flags = sources.flags ?? {};
  const problems: string[] = [];
  const warnings: string[] = [];
  const chosen = new Map<string, Chosen>(
    Object.entries(DEFAULTS).map(([k, value]) => [k, { value, source: "default" }]),
  );
  /** Keys with an invalid value somewhere: cross-checks on them would only add noise. */
  const invalid = new Set<string>();

  const offer = (
    setting: Setting,
    raw: unknown,
    source: string,
    describe: (shown: string) => string,
    negate = false,
  ) => {
    const parsed = parseValue(setting, raw);
    if (parsed instanceof Invalid) {
      problems.push(`${describe(setting.secret ? "(value hidden)" : show(raw))}: ${parsed.expected}`);
      invalid.add(setting.key);
    } else {
      chosen.set(setting.key, { value: negate ? !parsed : parsed, source });
    }
  };

  // Layer 1: the TOML file.
  const file = configPath(env, flags, problems);
  if (file !== undefined) {
    if (!sources.readTextFile) {
      throw new TypeError("resolveConfig: a config file is named but no readTextFile was given");
    }
    const where = `config file ${file}`;
    let table: Record<string, unknown> | undefined;
    try {
      const text = await sources.readTextFile(file);
      try {
        table = parseToml(text);
      } catch (e) {
        // The message carries a code frame; the position says the same in one line.
        const at = e instanceof TomlError ? ` at line ${e.line}, column ${e.column}` : "";
        problems.push(`${where}: invalid TOML${at}: ${(e as Error).message.split("\n")[0]}`);
      }
    } catch (e) {
      problems.push(`${where}: cannot read: ${(e as Error).message}`);
    }
    if (table) {
      walkToml(
        table,
        "",
        (setting, raw) => offer(setting, raw, where, (v) => `${where}: invalid ${setting.key} ${v}`),
        (p) => problems.push(`${where}: ${p}`),
      );
    }
  }

  // Layer 2: the environment.
  for (const name of Object.keys(env)) {
    if (!name.startsWith("OTLP2PARQUET_") || ENV_NAMES.has(name)) continue;
    warnings.push(`unknown environment variable ${name} (ignored)${hint(name, [...ENV_NAMES])}`);
  }
  for (const setting of SETTINGS) {
    const raw = env[setting.env];
    if (raw === undefined || raw.trim() === "") continue;
    offer(setting, raw, setting.env, (v) => `invalid ${setting.env} ${v}`);
  }

  // Layer 3: the flags.
  for (const setting of SETTINGS) {
    if (!setting.flag) continue;
    const found = flagValue(setting.flag, flags);
    if (!found) continue;
    offer(setting, found.raw, setting.flag, (v) => `invalid ${setting.flag} ${v}`, found.negate);
  }

  derive(chosen, env, sources, problems, invalid);
  crossCheck(chosen, problems, invalid, warnings);
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: deepFreeze(build(chosen)), warnings };
}

function configPath(
  env: Record<string, string | undefined>,
  flags: Record<string, unknown>,
  problems: string[],
): string | undefined {
  const flag = flags.config;
  if (flag !== undefined) {
    if (typeof flag === "string" && flag.trim() !== "") return flag;
    problems.push(`invalid ${CONFIG_FLAG} ${show(flag)}: expected a file path`);
    return undefined;
  }
  const fromEnv = env[CONFIG_ENV];
  return fromEnv === undefined || fromEnv.trim() === "" ? undefined : fromEnv;
}

function walkToml(
  table: Record<string, unknown>,
  prefix: string,
  onSetting: (setting: Setting, raw: unknown) => void,
  onProblem: (problem: string) => void,
): void {
  for (const [name, value] of Object.entries(table)) {
    const key = prefix ? `${prefix}.${name}` : name;
    const setting = BY_KEY.get(key);
    if (setting) onSetting(setting, value);
    else if (SECTIONS.has(key)) {
      if (isTable(value)) walkToml(value, key, onSetting, onProblem);
      else onProblem(`"${key}" must be a table ([${key}]), not ${show(value)}`);
    } else {
      // Suggesting the enclosing table for a key inside it would only confuse.
      const candidates = [...BY_KEY.keys(), ...SECTIONS].filter((c) => !key.startsWith(`${c}.`));
      onProblem(`unknown key "${key}"${hint(key, candidates)}`);
    }
  }
}

/** Finds a flag under its kebab-case or camelCase name; a `--no-` flag reports the value to invert. */
function flagValue(
  flag: string,
  flags: Record<string, unknown>,
): { raw: unknown; negate: boolean } | undefined {
  const name = flag.replace(/^--/, "");
  const pick = (n: string) => flags[n] ?? flags[camel(n)];
  if (!name.startsWith("no-")) {
    const raw = pick(name);
    return raw === undefined ? undefined : { raw, negate: false };
  }
  const negated = pick(name);
  if (negated !== undefined) return { raw: negated, negate: true };
  // commander stores `--no-batch` as `batch: false` and defaults `batch` to true, so only false counts.
  const positive = pick(name.slice(3));
  return positive === false ? { raw: true, negate: true } : undefined;
}

/** Fills in defaults that depend on other settings. */
function derive(
  chosen: Map<string, Chosen>,
  env: Record<string, string | undefined>,
  { instanceId, requireAuth }: ConfigSources,
  problems: string[],
  invalid: Set<string>,
): void {
  const get = (key: string) => chosen.get(key)!.value;
  const unset = (key: string) => chosen.get(key)!.source === "default" && !invalid.has(key);

  if (unset("storage.s3.region")) {
    const region = env.AWS_REGION?.trim();
    chosen.set(
      "storage.s3.region",
      region ? { value: region, source: "AWS_REGION" } : {
        value: "us-east-1",
        source: "default",
      },
    );
  }
  if (unset("storage.s3.force_path_style")) {
    chosen.get("storage.s3.force_path_style")!.value = get("storage.s3.endpoint") !== undefined;
  }
  if (unset("storage.azblob.endpoint") && get("storage.azblob.account") !== undefined) {
    chosen.get("storage.azblob.endpoint")!.value = `https://${
      get("storage.azblob.account")
    }.blob.core.windows.net`;
  }
  if (unset("durability.wal_dir")) {
    chosen.get("durability.wal_dir")!.value = get("storage.backend") === "fs"
      ? joinPath(get("storage.path") as string, ".wal")
      : "./data/.wal";
  }
  if (unset("auth.mode")) {
    chosen.set(
      "auth.mode",
      requireAuth
        ? { value: "token", source: "platform default" }
        : { value: tokensOf(chosen).length ? "token" : "none", source: "default" },
    );
  }
  if (unset("server.instance_id") && instanceId !== undefined) {
    const parsed = parseValue(BY_KEY.get("server.instance_id")!, instanceId);
    if (typeof parsed === "string") {
      chosen.set("server.instance_id", { value: parsed, source: "instanceId option" });
    } else problems.push(`invalid instanceId option ${show(instanceId)}: ${(parsed as Invalid).expected}`);
  }
}

/** Rules that involve more than one setting. */
function crossCheck(
  chosen: Map<string, Chosen>,
  problems: string[],
  invalid: Set<string>,
  warnings: string[],
): void {
  const get = (key: string) => chosen.get(key)!.value;
  const ok = (...keys: string[]) => keys.every((k) => !invalid.has(k));
  const from = (key: string) => {
    const source = chosen.get(key)!.source;
    return source === "default" ? "default" : `from ${source}`;
  };
  const ways = (key: string) => {
    const s = BY_KEY.get(key)!;
    return [s.key, s.env, s.flag].filter(Boolean).join(" / ");
  };
  const size = (key: string) => `${key} ${formatSize(get(key) as number)} (${from(key)})`;

  const backend = get("storage.backend");
  if (ok("storage.backend")) {
    if (backend === "s3" && get("storage.s3.bucket") === undefined && ok("storage.s3.bucket")) {
      problems.push(`storage.backend is "s3" but no bucket is set (${ways("storage.s3.bucket")})`);
    }
    if (backend === "gcs" && get("storage.gcs.bucket") === undefined && ok("storage.gcs.bucket")) {
      problems.push(`storage.backend is "gcs" but no bucket is set (${ways("storage.gcs.bucket")})`);
    }
    if (
      backend === "azblob" && get("storage.azblob.container") === undefined && ok("storage.azblob.container")
    ) {
      problems.push(
        `storage.backend is "azblob" but no container is set (${ways("storage.azblob.container")})`,
      );
    }
    if (
      backend === "azblob" && get("storage.azblob.endpoint") === undefined &&
      ok("storage.azblob.account", "storage.azblob.endpoint")
    ) {
      problems.push(
        `storage.backend is "azblob" but neither an account (${
          ways("storage.azblob.account")
        }) nor an endpoint (${ways("storage.azblob.endpoint")}) is set`,
      );
    }
  }
  if (get("durability.mode") === "wal" && ok("durability.mode", "durability.wal_max_bytes")) {
    const wal = get("durability.wal_max_bytes") as number;
    const room = walRequestBytes(wal);
    const payload = get("server.max_payload_bytes") as number;
    const batch = get("batch.max_bytes") as number;
    // A batch is cut from the log, so the log must be able to hold a whole one, and a whole request.
    if (ok("batch.max_bytes") && batch > wal) {
      problems.push(`${size("batch.max_bytes")} exceeds ${size("durability.wal_max_bytes")}`);
    }
    // A request larger than the room for requests is refused whenever anything else is in the log.
    if (ok("server.max_payload_bytes") && payload > room) {
      problems.push(
        `${size("server.max_payload_bytes")} exceeds the ${formatSize(room)} of ` +
          `${
            size("durability.wal_max_bytes")
          } that requests may use (an eighth of it, at most 64MiB, is kept ` +
          "for the records that let batches be written)",
      );
    } else if (ok("server.max_payload_bytes", "batch.max_bytes") && batch <= wal) {
      // OTLP/JSON bodies are 1.2 to 3 times their decoded rows (docs/reliability.md): the log must hold
      // twice a batch's rows in bodies, plus one request, for JSON batches to fill before the log does.
      const want = JSON_LOG_RATIO * batch + payload;
      if (room < want) {
        const need = Math.ceil((want + Math.min(64 * MiB, Math.ceil(want / 7))) / MiB) * MiB;
        warnings.push(
          `${size("durability.wal_max_bytes")} holds ${formatSize(room)} of requests, less than ` +
            `${JSON_LOG_RATIO} × ${size("batch.max_bytes")} + ${size("server.max_payload_bytes")}: ` +
            "OTLP/JSON bodies fill the log before their rows fill a batch, so batches are written when the " +
            "log fills, as smaller objects (nothing is refused for it); for full batches set " +
            `durability.wal_max_bytes to at least ${formatSize(need)}`,
        );
      }
    }
  }
  if (ok("auth.mode", "auth.token", "auth.tokens")) {
    const tokens = tokensOf(chosen);
    const mode = get("auth.mode");
    // Token values never appear in messages: only their position.
    tokens.forEach((token, i) => {
      if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(token)) {
        problems.push(
          `auth token ${i + 1} (of ${ways("auth.token")}, then ${ways("auth.tokens")}) has a character ` +
            "other than visible ASCII: use letters, digits and symbols (no spaces, commas or non-ASCII)",
        );
      }
    });
    if (mode === "token" && tokens.length === 0 && chosen.get("auth.mode")!.source !== "platform default") {
      problems.push(
        `auth.mode is "token" (${from("auth.mode")}) but no token is set (${ways("auth.token")} or ${
          ways("auth.tokens")
        })`,
      );
    }
    if (mode === "none" && tokens.length > 0) {
      problems.push(
        `auth.mode is "none" (${from("auth.mode")}) but a token is set: remove the token, or the mode`,
      );
    }
  }
  // Otherwise a request of the largest allowed size could never be admitted and would get 429 forever.
  if (
    ok("server.max_payload_bytes", "server.max_inflight_bytes") &&
    (get("server.max_payload_bytes") as number) > (get("server.max_inflight_bytes") as number)
  ) {
    problems.push(`${size("server.max_payload_bytes")} exceeds ${size("server.max_inflight_bytes")}`);
  }
}

/**
 * How many times their decoded rows OTLP/JSON request bodies are taken to weigh, for the log's size warning
 * (measured 1.15-3 for compact JSON logs; protobuf bodies are 0.5-1 times their rows).
 */
const JSON_LOG_RATIO = 2;

/**
 * The part of a write-ahead log of `walMaxBytes` that request records may fill: all but an eighth (at most
 * 64 MiB), which stays free for the intent and commit records without which a full log could never drain.
 */
export function walRequestBytes(walMaxBytes: number): number {
  return walMaxBytes - Math.min(64 * MiB, Math.floor(walMaxBytes / 8));
}

/** `auth.token`, then `auth.tokens` split at commas: trimmed, without empty entries or duplicates. */
function tokensOf(chosen: Map<string, Chosen>): string[] {
  const one = chosen.get("auth.token")!.value as string | undefined;
  const many = chosen.get("auth.tokens")!.value as string | undefined;
  const all = [one ?? "", ...(many ?? "").split(",")].map((t) => t.trim()).filter((t) => t !== "");
  return [...new Set(all)];
}

function build(chosen: Map<string, Chosen>): Config {
  // deno-lint-ignore no-explicit-any
  const v = (key: string): any => chosen.get(key)!.value;
  const listen = v("server.listen_addr") as { hostname: string; port: number };
  return {
    server: {
      listenAddr: `${
        listen.hostname.includes(":") ? `[${listen.hostname}]` : listen.hostname
      }:${listen.port}`,
      hostname: listen.hostname,
      port: listen.port,
      maxPayloadBytes: v("server.max_payload_bytes"),
      maxInflightBytes: v("server.max_inflight_bytes"),
      requestTimeoutSecs: v("server.request_timeout_secs"),
      minBodyRateBytesPerSec: v("server.min_body_rate_bytes_per_sec"),
      bodyRateGraceSecs: v("server.body_rate_grace_secs"),
      headerTimeoutSecs: v("server.header_timeout_secs"),
      idleTimeoutSecs: v("server.idle_timeout_secs"),
      stopTimeoutSecs: v("server.stop_timeout_secs"),
      instanceId: v("server.instance_id"),
      workers: v("server.workers"),
      metrics: v("server.metrics"),
    },
    auth: { mode: v("auth.mode"), token: v("auth.token"), tokens: tokensOf(chosen) },
    storage: {
      backend: v("storage.backend"),
      path: v("storage.path"),
      probeIntervalSecs: v("storage.probe_interval_secs"),
      s3: {
        bucket: v("storage.s3.bucket"),
        region: v("storage.s3.region"),
        endpoint: v("storage.s3.endpoint"),
        prefix: v("storage.s3.prefix"),
        forcePathStyle: v("storage.s3.force_path_style"),
      },
      gcs: {
        bucket: v("storage.gcs.bucket"),
        endpoint: v("storage.gcs.endpoint"),
        prefix: v("storage.gcs.prefix"),
        anonymous: v("storage.gcs.anonymous"),
      },
      azblob: {
        container: v("storage.azblob.container"),
        account: v("storage.azblob.account"),
        endpoint: v("storage.azblob.endpoint"),
        prefix: v("storage.azblob.prefix"),
      },
    },
    batch: {
      enabled: v("batch.enabled"),
      maxRows: v("batch.max_rows"),
      maxBytes: v("batch.max_bytes"),
      maxAgeSecs: v("batch.max_age_secs"),
      maxPartitionsPerRequest: v("batch.max_partitions_per_request"),
      maxOpenBatches: v("batch.max_open_batches"),
      maxQueuedBytes: v("batch.max_queued_bytes"),
      maxPendingBytes: v("batch.max_pending_bytes"),
      acceptPastSecs: v("batch.accept_past_secs"),
      acceptFutureSecs: v("batch.accept_future_secs"),
    },
    batcher: { shards: v("batcher.shards") },
    durability: {
      mode: v("durability.mode"),
      walDir: v("durability.wal_dir"),
      walMaxBytes: v("durability.wal_max_bytes"),
      dedupeWindowSecs: v("durability.dedupe_window_secs"),
      dedupeMaxEntries: v("durability.dedupe_max_entries"),
    },
    log: { level: v("log.level"), format: v("log.format") },
    parquet: { compression: v("parquet.compression"), rowGroupRows: v("parquet.row_group_rows") },
  };
}

// ---------------------------------------------------------------------------------------------------
// Values

/** What a value should have been, for the message. */
class Invalid {
  readonly expected: string;
  constructor(expected: string) {
    this.expected = expected;
  }
}

/** Longest timer Deno, Bun and Node honour (2^31-1 ms); longer ones fire at once. */
const MAX_SECONDS = Math.floor((2 ** 31 - 1) / 1000);
const SIZE_EXPECTED = 'expected a positive size in bytes, e.g. 134217728, "128MiB" or "64MB"';
const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

function parseValue(setting: Setting, raw: unknown): unknown {
  const text = typeof raw === "string" ? raw.trim() : undefined;
  switch (setting.type) {
    case "address": {
      if (text === undefined) return new Invalid("expected a string host:port");
      return parseAddress(text);
    }
    case "string":
      return text ? text : new Invalid("expected a non-empty string");
    case "text":
      return text ?? new Invalid("expected a string");
    case "id":
      return text !== undefined && /^[A-Za-z0-9_-]{0,64}$/.test(text)
        ? text
        : new Invalid("expected at most 64 letters, digits, '_' or '-'");
    case "url": {
      if (text) {
        try {
          if (/^https?:$/.test(new URL(text).protocol)) return text;
        } catch { /* falls through to the message */ }
      }
      return new Invalid("expected an http:// or https:// URL");
    }
    case "enum": {
      const choice = text?.toLowerCase();
      return choice !== undefined && setting.choices!.includes(choice)
        ? choice
        : new Invalid(`expected one of ${setting.choices!.join(", ")}`);
    }
    case "workers": {
      if (text?.toLowerCase() === "auto") return "auto";
      const n = typeof raw === "number" ? raw : text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN;
      return Number.isSafeInteger(n) && n > 0 ? n : new Invalid("expected a positive integer or auto");
    }
    case "count": {
      const n = typeof raw === "number" ? raw : text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN;
      return Number.isSafeInteger(n) && n > 0 ? n : new Invalid("expected a positive integer");
    }
    case "size": {
      const n = sizeOf(raw);
      return n === undefined ? new Invalid(SIZE_EXPECTED) : n;
    }
    case "seconds": {
      const n = typeof raw === "number"
        ? raw
        : text !== undefined && /^\d+(\.\d+)?$/.test(text)
        ? Number(text)
        : NaN;
      return n > 0 && n <= MAX_SECONDS
        ? n
        : new Invalid(`expected a positive number of seconds up to ${MAX_SECONDS}`);
    }
    case "boolean": {
      if (typeof raw === "boolean") return raw;
      if (raw === 1 || raw === 0) return raw === 1;
      const word = text?.toLowerCase();
      if (word === "true" || word === "1" || word === "yes") return true;
      if (word === "false" || word === "0" || word === "no") return false;
      return new Invalid("expected true/false, 1/0 or yes/no");
    }
  }
}

function parseAddress(text: string): { hostname: string; port: number } | Invalid {
  const usage = "expected host:port, e.g. 0.0.0.0:4318 or [::1]:4318";
  let host: string;
  let port: string;
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(text);
  if (bracketed) {
    try {
      // The URL parser is the one IPv6 validator every runtime has; it also normalises the address.
      host = new URL(`http://[${bracketed[1]}]/`).hostname.slice(1, -1);
    } catch {
      return new Invalid(`expected a valid IPv6 address in brackets, e.g. [::1]:4318`);
    }
    port = bracketed[2];
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return new Invalid(usage);
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
    if (host.includes(":")) return new Invalid("expected an IPv6 host in brackets, e.g. [::1]:4318");
    if (host === "") host = "0.0.0.0";
    else if (!isHostname(host)) return new Invalid(usage);
  }
  const n = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (!(n >= 0 && n <= 65535)) return new Invalid("expected a port from 0 to 65535 (0 = any free port)");
  return { hostname: host, port: n };
}

function isHostname(host: string): boolean {
  if (/^[\d.]+$/.test(host)) {
    const parts = host.split(".");
    return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
  }
  return host.length <= 253 &&
    /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
      host,
    );
}

function sizeOf(raw: unknown): number | undefined {
  if (typeof raw === "number") return Number.isSafeInteger(raw) && raw > 0 ? raw : undefined;
  if (typeof raw !== "string") return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i.exec(raw.trim());
  if (!m) return undefined;
  const exact = Number(m[1]) * SIZE_UNITS[(m[2] ?? "").toLowerCase()];
  const n = Math.round(exact);
  // Fractions are fine ("1.5GiB") as long as they name whole bytes.
  return Math.abs(exact - n) < 1e-6 && n > 0 && Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Reads a byte size: a positive integer, or a number with a decimal (kB, MB, GB, TB) or binary
 * (KiB, MiB, GiB, TiB) unit, case-insensitive: `"128MiB"`, `"64MB"`, `"1.5 GiB"`.
 *
 * @throws {RangeError} when the value is not a positive whole number of bytes.
 */
export function parseSize(value: string | number): number {
  const n = sizeOf(value);
  if (n === undefined) throw new RangeError(`invalid size ${show(value)}: ${SIZE_EXPECTED}`);
  return n;
}

/** Writes a byte count with the largest binary or decimal unit that divides it: `134217728` → `128MiB`. */
export function formatSize(bytes: number): string {
  for (const unit of ["TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "kB"]) {
    const size = SIZE_UNITS[unit.toLowerCase()];
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}

/** A raw value as it appears in messages: strings quoted, tables and arrays named. */
function show(raw: unknown): string {
  if (typeof raw === "string") return JSON.stringify(raw);
  if (raw instanceof Date) return "a date";
  if (Array.isArray(raw)) return "an array";
  if (typeof raw === "object" && raw !== null) return "a table";
  return String(raw);
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function camel(kebab: string): string {
  return kebab.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function joinPath(dir: string, name: string): string {
  const trimmed = dir.replace(/[/\\]+$/, "");
  return `${trimmed === "" && dir !== "" ? "" : trimmed}/${name}`;
}

/** `" (did you mean "x"?)"` for the closest candidate within a few edits, else `""`. */
function hint(word: string, candidates: string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.min(3, Math.floor(word.length / 3))
    ? ` (did you mean "${best}"?)`
    : "";
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------
// Banner

/**
 * A multi-line summary for the start-up banner. Endpoints lose their user info and query string
 * (SAS tokens live there) and auth tokens are only counted; nothing else in a {@link Config} is secret.
 */
export function describeConfig(config: Config): string {
  const { server, storage, batch, durability, log, parquet } = config;
  const s = storage;
  let where: string;
  switch (s.backend) {
    case "fs":
      where = `fs at ${s.path}`;
      break;
    case "s3":
      where = `s3 bucket ${s.s3.bucket}, region ${s.s3.region}` +
        (s.s3.endpoint ? `, endpoint ${redactUrl(s.s3.endpoint)}` : "") +
        (s.s3.forcePathStyle ? ", path-style" : "") +
        (s.s3.prefix ? `, prefix ${JSON.stringify(s.s3.prefix)}` : "");
      break;
    case "gcs":
      where = `gcs bucket ${s.gcs.bucket}` +
        (s.gcs.endpoint ? `, endpoint ${redactUrl(s.gcs.endpoint)}` : "") +
        (s.gcs.anonymous ? ", anonymous" : "") +
        (s.gcs.prefix ? `, prefix ${JSON.stringify(s.gcs.prefix)}` : "");
      break;
    case "azblob":
      where = `azblob container ${s.azblob.container}` +
        (s.azblob.account ? `, account ${s.azblob.account}` : "") +
        (s.azblob.endpoint ? `, endpoint ${redactUrl(s.azblob.endpoint)}` : "") +
        (s.azblob.prefix ? `, prefix ${JSON.stringify(s.azblob.prefix)}` : "");
      break;
  }
  const lines: [string, string][] = [
    ["listen", server.listenAddr],
    [
      "limits",
      `payload ${formatSize(server.maxPayloadBytes)}, in flight ${formatSize(server.maxInflightBytes)}, ` +
      `read timeout ${server.requestTimeoutSecs}s, body rate ≥ ${
        formatSize(server.minBodyRateBytesPerSec)
      }/s after ${server.bodyRateGraceSecs}s, header timeout ${server.headerTimeoutSecs}s, ` +
      `idle timeout ${server.idleTimeoutSecs}s, stop timeout ${server.stopTimeoutSecs}s`,
    ],
    ["instance", server.instanceId || "(derived at start)"],
    [
      "workers",
      server.workers === "auto"
        ? "auto: a thread a CPU this process may use"
        : server.workers === 1
        ? "1: decoding and encoding on the main thread"
        : `${server.workers} threads decode and encode`,
    ],
    [
      "auth",
      config.auth.mode === "none"
        ? "none: anyone who reaches the address can write"
        : `token (Bearer, or Basic password): ${config.auth.tokens.length} accepted`,
    ],
    ["metrics", server.metrics ? "GET /metrics (Prometheus text, no authentication)" : "off"],
    ["storage", where],
    [
      "batching",
      batch.enabled
        ? `on: ${batch.maxRows} rows, ${formatSize(batch.maxBytes)} or ${batch.maxAgeSecs}s, whichever first`
        : "off: one write per request",
    ],
    [
      "requests",
      `each at most ${batch.maxPartitionsPerRequest} partitions; event times ${
        batch.acceptPastSecs === undefined && batch.acceptFutureSecs === undefined
          ? "any"
          : `from now-${batch.acceptPastSecs ?? "∞"}s to now+${batch.acceptFutureSecs ?? "∞"}s`
      }`,
    ],
    [
      "durability",
      durability.mode === "wal"
        ? `wal in ${durability.walDir} (at most ${
          formatSize(durability.walMaxBytes)
        }); retries recognised for ${durability.dedupeWindowSecs}s (at most ${durability.dedupeMaxEntries})`
        : `none: unflushed batches are lost on a crash; retries recognised for ${durability.dedupeWindowSecs}s`,
    ],
    ["parquet", `${parquet.compression}, row groups of ${parquet.rowGroupRows} rows`],
    ["log", `${log.level}, ${log.format}`],
  ];
  return lines.map(([name, text]) => `  ${name.padEnd(11)}${text}`).join("\n");
}

function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    const hidden = url.username !== "" || url.password !== "" || url.search !== "";
    url.username = "";
    url.password = "";
    url.search = "";
    return hidden ? `${url.href} (credentials hidden)` : text;
  } catch {
    return "(unparseable URL)";
  }
}
