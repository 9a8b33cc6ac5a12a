/**
 * `connect`: configuration, ready to paste, that points a client at this server: an OpenTelemetry
 * Collector (YAML), any OpenTelemetry SDK (`OTEL_EXPORTER_OTLP_*` variables), Claude Code (its telemetry
 * variables) or the Codex CLI (its `~/.codex/config.toml` `[otel]` table). The address, the token and
 * the payload limit come from the server's configuration; `--endpoint` overrides the address.
 *
 * The token is printed as a reference to the `OTLP2PARQUET_AUTH_TOKEN` environment variable (where the
 * client's tool expands one), never as the secret itself, unless `showToken` asks for it.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";

/** Clients `connect` knows. */
export const CONNECT_TARGETS = ["otel-collector", "sdk-env", "claude-code", "codex"] as const;
/** One of {@link CONNECT_TARGETS}. */
export type ConnectTarget = typeof CONNECT_TARGETS[number];

/** The environment variable the printed configuration reads the token from. */
export const TOKEN_ENV = "OTLP2PARQUET_AUTH_TOKEN";

/** Options of {@link connectText}. */
export interface ConnectOptions {
  /** Base URL of the server (no `/v1/...`); default from `server.listen_addr`, see {@link defaultEndpoint}. */
  endpoint?: string;
  /** Print the configured token itself instead of a reference to {@link TOKEN_ENV}. Default false. */
  showToken?: boolean;
  /** Collector body compression; default `zstd`. */
  compression?: "zstd" | "gzip";
}

/**
 * The base URL clients use: `http://<host>:<port>` from `server.listen_addr`, with a wildcard host
 * (`0.0.0.0`, `::`) shown as `127.0.0.1`.
 *
 * @throws {RangeError} when the port is 0 (any free port): the address is known only once it runs.
 */
export function defaultEndpoint(config: Config): string {
  const { hostname, port } = config.server;
  if (port === 0) {
    throw new RangeError(
      "server.listen_addr has port 0 (any free port): pass --endpoint with the real address",
    );
  }
  const host = hostname === "0.0.0.0" || hostname === "::" || hostname === ""
    ? "127.0.0.1"
    : hostname.includes(":")
    ? `[${hostname}]`
    : hostname;
  return `http://${host}:${port}`;
}

/** Checks and normalises an `--endpoint`: an http(s) URL without query; the trailing `/` dropped. */
export function parseEndpoint(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RangeError(
      `--endpoint ${JSON.stringify(text)}: expected a URL such as http://collector-host:4318`,
    );
  }
  if (!/^https?:$/.test(url.protocol)) {
    throw new RangeError(`--endpoint ${JSON.stringify(text)}: expected http:// or https://`);
  }
  if (url.search || url.hash) {
    throw new RangeError(`--endpoint ${JSON.stringify(text)}: no query or fragment`);
  }
  if (/\/v1\/(logs|traces|metrics)\/?$/.test(url.pathname)) {
    throw new RangeError(
      `--endpoint ${JSON.stringify(text)}: give the base URL; the /v1/<signal> paths are appended`,
    );
  }
  return url.href.replace(/\/+$/, "");
}

/** What a printed configuration needs to know about the server. */
interface Target {
  endpoint: string;
  /** The token as the client's config should carry it, or undefined when the server needs none. */
  token: { literal: string } | { env: string } | undefined;
  maxPayloadBytes: number;
  compression: "zstd" | "gzip";
  /** Whether the endpoint came from a wildcard listen address (a note says so). */
  wildcard: boolean;
}

function targetOf(config: Config, options: ConnectOptions): Target {
  const endpoint = options.endpoint !== undefined ? parseEndpoint(options.endpoint) : defaultEndpoint(config);
  const configured = config.auth.tokens[0];
  let token: Target["token"];
  if (config.auth.mode === "token") {
    token = options.showToken && configured !== undefined ? { literal: configured } : { env: TOKEN_ENV };
  }
  const h = config.server.hostname;
  return {
    endpoint,
    token,
    maxPayloadBytes: config.server.maxPayloadBytes,
    compression: options.compression ?? "zstd",
    wildcard: options.endpoint === undefined && (h === "0.0.0.0" || h === "::"),
  };
}

const MiB = 1024 * 1024;

/**
 * The Collector's batch bounds in bytes (its `bytes` sizer counts a request's uncompressed protobuf size,
 * which is what `server.max_payload_bytes` limits): at most half the payload limit and 8 MiB, so one
 * batch never meets a 413 and the server's in-flight budget holds several at once.
 */
export function collectorBatchBytes(maxPayloadBytes: number): { minSize: number; maxSize: number } {
  const maxSize = Math.max(1, Math.min(8 * MiB, Math.floor(maxPayloadBytes / 2)));
  return { minSize: Math.max(1, Math.min(1 * MiB, Math.floor(maxSize / 2))), maxSize };
}

function wildcardNote(t: Target, comment: string): string[] {
  return t.wildcard
    ? [
      `${comment} The server listens on every interface: from another machine, replace 127.0.0.1 with its`,
      `${comment} address (or pass --endpoint).`,
    ]
    : [];
}

function collectorYaml(t: Target): string {
  const { minSize, maxSize } = collectorBatchBytes(t.maxPayloadBytes);
  const lines = [
    "# OpenTelemetry Collector → otlp2parquet at " + t.endpoint,
    "# Generated by `otlp2parquet connect otel-collector`. `otlp_http` is the exporter's name since",
    "# Collector 0.144; `otlphttp`, its old name, still works as a deprecated alias.",
    ...wildcardNote(t, "#"),
    "receivers:",
    "  otlp:",
    "    protocols:",
    "      grpc:",
    "        endpoint: 0.0.0.0:4317",
    "exporters:",
    "  otlp_http/otlp2parquet:",
    `    endpoint: ${t.endpoint} # /v1/logs, /v1/traces and /v1/metrics are appended`,
    "    encoding: proto",
    `    compression: ${t.compression} # the server also takes gzip, deflate, snappy, lz4`,
    "    timeout: 30s",
  ];
  if (t.token) {
    const value = "literal" in t.token ? t.token.literal : `\${env:${t.token.env}}`;
    lines.push(
      "    headers:",
      `      Authorization: "Bearer ${value}"${
        "env" in t.token ? ` # set ${t.token.env} where the Collector runs` : ""
      }`,
    );
  }
  lines.push(
    "    retry_on_failure: # 429 and 503 (with Retry-After) from otlp2parquet are retried",
    "      enabled: true",
    "      initial_interval: 1s",
    "      max_interval: 30s",
    "      max_elapsed_time: 0 # retry forever: nothing is dropped while the queue has room",
    "    sending_queue:",
    "      enabled: true",
    "      sizer: bytes",
    "      queue_size: 268435456 # 256 MiB held in the Collector while the server is unreachable",
    "      block_on_overflow: true # a full queue slows the receivers instead of dropping data",
    "      # Persistent queue (survives a Collector restart): add the file_storage extension below, then",
    "      # storage: file_storage/otlp2parquet",
    "      batch:",
    "        flush_timeout: 5s",
    "        sizer: bytes # uncompressed protobuf bytes, what server.max_payload_bytes limits",
    `        min_size: ${minSize}`,
    `        max_size: ${maxSize} # under the server's max_payload_bytes (${t.maxPayloadBytes})`,
    "# extensions:",
    "#   file_storage/otlp2parquet:",
    "#     directory: /var/lib/otelcol/otlp2parquet-queue # must exist and be writable",
    "service:",
    "  # extensions: [file_storage/otlp2parquet]",
    "  pipelines:",
    "    logs:",
    "      receivers: [otlp]",
    "      exporters: [otlp_http/otlp2parquet]",
    "    traces:",
    "      receivers: [otlp]",
    "      exporters: [otlp_http/otlp2parquet]",
    "    metrics:",
    "      receivers: [otlp]",
    "      exporters: [otlp_http/otlp2parquet]",
  );
  return lines.join("\n") + "\n";
}

/** `Authorization=Bearer%20<token>`: the header list format of `OTEL_EXPORTER_OTLP_HEADERS` (percent-encoded). */
function headersVar(token: NonNullable<Target["token"]>): string {
  return "literal" in token
    ? `Authorization=Bearer%20${encodeURIComponent(token.literal)}`
    : `Authorization=Bearer%20\${${token.env}}`;
}

function shellQuote(value: string, expand: boolean): string {
  return expand ? `"${value}"` : `'${value.replaceAll("'", `'\\''`)}'`;
}

function sdkEnv(t: Target): string {
  const lines = [
    "# OpenTelemetry SDKs (any language) → otlp2parquet at " + t.endpoint,
    "# Generated by `otlp2parquet connect sdk-env`; paste into a shell or an env file.",
    ...wildcardNote(t, "#"),
    `export OTEL_EXPORTER_OTLP_ENDPOINT=${shellQuote(t.endpoint, false)}`,
    "export OTEL_EXPORTER_OTLP_PROTOCOL='http/protobuf'",
    "export OTEL_EXPORTER_OTLP_COMPRESSION='gzip'",
    "export OTEL_TRACES_EXPORTER='otlp' OTEL_METRICS_EXPORTER='otlp' OTEL_LOGS_EXPORTER='otlp'",
  ];
  if (t.token) {
    if ("env" in t.token) lines.push(`# ${t.token.env} must hold the server's token.`);
    lines.push(`export OTEL_EXPORTER_OTLP_HEADERS=${shellQuote(headersVar(t.token), "env" in t.token)}`);
  }
  return lines.join("\n") + "\n";
}

function claudeCode(t: Target): string {
  const vars: [string, string][] = [
    ["CLAUDE_CODE_ENABLE_TELEMETRY", "1"],
    ["OTEL_METRICS_EXPORTER", "otlp"],
    ["OTEL_LOGS_EXPORTER", "otlp"],
    ["OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", t.endpoint],
  ];
  const lines = [
    "# Claude Code → otlp2parquet at " + t.endpoint + " (metrics and events as logs)",
    "# Generated by `otlp2parquet connect claude-code`; variables as documented by Claude Code (2025).",
    ...wildcardNote(t, "#"),
    ...vars.map(([k, v]) => `export ${k}=${shellQuote(v, false)}`),
  ];
  if (t.token) {
    if ("env" in t.token) lines.push(`# ${t.token.env} must hold the server's token.`);
    lines.push(`export OTEL_EXPORTER_OTLP_HEADERS=${shellQuote(headersVar(t.token), "env" in t.token)}`);
  }
  lines.push(
    "# Optional: OTEL_METRIC_EXPORT_INTERVAL=10000 (ms, default 60000), OTEL_LOGS_EXPORT_INTERVAL=5000,",
    "# OTEL_LOG_USER_PROMPTS=1 (prompt text in events; off by default).",
    "#",
    '# Or, for every session, in ~/.claude/settings.json ("env" takes literal values, no ${VAR}):',
  );
  const env: Record<string, string> = Object.fromEntries(vars);
  if (t.token) {
    env.OTEL_EXPORTER_OTLP_HEADERS = "literal" in t.token
      ? headersVar(t.token)
      : `Authorization=Bearer%20<value of ${t.token.env}>`;
  }
  for (const line of JSON.stringify({ env }, null, 2).split("\n")) lines.push(`# ${line}`);
  return lines.join("\n") + "\n";
}

/** A TOML basic string. */
function tomlString(s: string): string {
  return JSON.stringify(s);
}

function codex(t: Target): string {
  const lines = [
    "# Codex CLI → otlp2parquet at " + t.endpoint + " (its events, as OTLP logs)",
    "# Generated by `otlp2parquet connect codex`: the [otel] table of ~/.codex/config.toml, as documented by",
    "# Codex (2025). Codex posts to the endpoint as given, so it names /v1/logs.",
    ...wildcardNote(t, "#"),
  ];
  let headers = "";
  if (t.token) {
    if ("env" in t.token) {
      lines.push(
        "# config.toml takes literal values: replace the placeholder with the server's token",
        `# (the value of ${t.token.env}), or print it with --show-token.`,
      );
    }
    const value = "literal" in t.token ? t.token.literal : `<value of ${t.token.env}>`;
    headers = `, headers = { "Authorization" = ${tomlString(`Bearer ${value}`)} }`;
  }
  lines.push(
    "[otel]",
    'environment = "dev"',
    "log_user_prompt = false # true records prompt text",
    `exporter = { otlp-http = { endpoint = ${
      tomlString(`${t.endpoint}/v1/logs`)
    }, protocol = "binary"${headers} } }`,
  );
  return lines.join("\n") + "\n";
}

/**
 * The configuration `connect <target>` prints.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "../config/mod.ts";
 * import { connectText } from "./connect.ts";
 *
 * const { config } = await resolveConfig({ env: { OTLP2PARQUET_AUTH_TOKEN: "s3cr3t-token" } });
 * const yaml = connectText("otel-collector", config, { endpoint: "http://otlp2parquet:4318" });
 * yaml.includes("Bearer ${env:OTLP2PARQUET_AUTH_TOKEN}"); // true: the secret itself is not printed
 * ```
 * @throws {RangeError} on a bad `endpoint`, or when the address cannot be known (port 0) and none is given.
 */
export function connectText(target: ConnectTarget, config: Config, options: ConnectOptions = {}): string {
  const t = targetOf(config, options);
  switch (target) {
    case "otel-collector":
      return collectorYaml(t);
    case "sdk-env":
      return sdkEnv(t);
    case "claude-code":
      return claudeCode(t);
    case "codex":
      return codex(t);
  }
}
