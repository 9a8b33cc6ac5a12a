/**
 * `schema duckdb`: one DuckDB `CREATE VIEW` per table over the objects the server writes, so that
 * `SELECT * FROM otel_logs` reads every file of the table with its Hive partitions (`year`, `month`, `day`,
 * `hour`) as columns. The storage is a local folder or an `s3://`, `r2://`, `gs://`/`gcs://` or
 * `az://` URL; remote ones get the extension and secret statements DuckDB needs first.
 *
 * Object keys are `{prefix}{table path}/{service}/year=YYYY/month=MM/day=DD/hour=HH/{name}.parquet`
 * (src/core/table/keys.ts): the service folder carries no `name=`, so it is matched by `*` and its value comes
 * from the `ServiceName` column instead.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import type { Config } from "../config/mod.ts";
import { TABLES } from "../core/table/schema.ts";

/** A storage location as DuckDB addresses it. */
export interface DuckDbLocation {
  kind: "local" | "s3" | "r2" | "gcs" | "azure";
  /** Base URL or absolute path, without a trailing `/`. */
  base: string;
  /** S3: region and a custom endpoint (`host:port`), its scheme and URL style. */
  region?: string;
  endpoint?: string;
  useSsl?: boolean;
  /** R2: the account id, when the endpoint names it. Azure: the account name. */
  account?: string;
}

/** Folder, file or URL text → location. Relative paths are made absolute against `cwd`. */
export function parseLocation(text: string, cwd: string): DuckDbLocation {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.+)$/i.exec(text);
  if (!m) {
    if (text === "") throw new RangeError("--url: empty");
    const path = (isAbsolute(text) ? text : resolve(cwd, text)).replace(/\/+$/, "");
    return { kind: "local", base: path || "/" };
  }
  const scheme = m[1].toLowerCase();
  const rest = m[2].replace(/\/+$/, "");
  switch (scheme) {
    case "s3":
      return { kind: "s3", base: `s3://${rest}` };
    case "r2":
      return { kind: "r2", base: `r2://${rest}` };
    case "gs":
    case "gcs":
      return { kind: "gcs", base: `gs://${rest}` };
    case "az":
    case "azure":
      return { kind: "azure", base: `az://${rest}` };
    case "file":
      return { kind: "local", base: decodeURIComponent(new URL(text).pathname).replace(/\/+$/, "") || "/" };
    default:
      throw new RangeError(
        `--url ${JSON.stringify(text)}: expected a folder or an s3://, r2://, gs://, gcs:// or az:// URL`,
      );
  }
}

/** The configured storage as a location (`storage.*`): the folder of `fs`, the bucket and prefix of the others. */
export function locationOf(config: Config, cwd: string): DuckDbLocation {
  const s = config.storage;
  switch (s.backend) {
    case "fs":
      return parseLocation(s.path, cwd);
    case "s3": {
      const prefix = s.s3.prefix.replace(/^\/+|\/+$/g, "");
      const path = `${s.s3.bucket}${prefix ? `/${prefix}` : ""}`;
      if (s.s3.endpoint) {
        const url = new URL(s.s3.endpoint);
        const r2 = /^([0-9a-f]{32})\.r2\.cloudflarestorage\.com$/i.exec(url.hostname);
        if (r2) return { kind: "r2", base: `r2://${path}`, account: r2[1] };
        return {
          kind: "s3",
          base: `s3://${path}`,
          region: s.s3.region,
          endpoint: url.host,
          useSsl: url.protocol === "https:",
        };
      }
      return { kind: "s3", base: `s3://${path}`, region: s.s3.region };
    }
    case "gcs":
      return { kind: "gcs", base: `gs://${s.gcs.bucket}` };
    case "azblob":
      return { kind: "azure", base: `az://${s.azblob.container}`, account: s.azblob.account };
  }
}

const quote = (s: string): string => `'${s.replaceAll("'", "''")}'`;

/** The glob of one table's objects under `base`. */
export function tableGlob(base: string, tablePath: string): string {
  return `${base === "/" ? "" : base}/${tablePath}/*/year=*/month=*/day=*/hour=*/*.parquet`;
}

function secretLines(loc: DuckDbLocation): string[] {
  switch (loc.kind) {
    case "local":
      return [];
    case "s3": {
      const opts = ["TYPE s3", "PROVIDER credential_chain"];
      if (loc.region) opts.push(`REGION ${quote(loc.region)}`);
      if (loc.endpoint) {
        opts.push(`ENDPOINT ${quote(loc.endpoint)}`, "URL_STYLE 'path'");
        if (loc.useSsl === false) opts.push("USE_SSL false");
      }
      return [
        "-- S3: credentials from the usual chain (environment, profile, instance role).",
        "INSTALL httpfs; LOAD httpfs;",
        "INSTALL aws; LOAD aws;",
        `CREATE OR REPLACE SECRET otlp2parquet (${opts.join(", ")});`,
      ];
    }
    case "r2":
      return [
        "-- Cloudflare R2: fill in an R2 API token's S3 credentials, then run the secret statement.",
        "INSTALL httpfs; LOAD httpfs;",
        `-- CREATE OR REPLACE SECRET otlp2parquet (TYPE r2, KEY_ID '<access key id>', SECRET '<secret access key>', ACCOUNT_ID ${
          quote(loc.account ?? "<account id>")
        });`,
      ];
    case "gcs":
      return [
        "-- Google Cloud Storage: fill in an HMAC key (Cloud Storage → Settings → Interoperability), then run",
        "-- the secret statement.",
        "INSTALL httpfs; LOAD httpfs;",
        "-- CREATE OR REPLACE SECRET otlp2parquet (TYPE gcs, KEY_ID '<HMAC access id>', SECRET '<HMAC secret>');",
      ];
    case "azure":
      return loc.account
        ? [
          "-- Azure Blob Storage: credentials from the Azure chain (az login, managed identity, environment).",
          "INSTALL azure; LOAD azure;",
          `CREATE OR REPLACE SECRET otlp2parquet (TYPE azure, PROVIDER credential_chain, ACCOUNT_NAME ${
            quote(loc.account)
          });`,
        ]
        : [
          "-- Azure Blob Storage: fill in the storage account's connection string, then run the secret statement.",
          "INSTALL azure; LOAD azure;",
          "-- CREATE OR REPLACE SECRET otlp2parquet (TYPE azure, CONNECTION_STRING '<connection string>');",
        ];
  }
}

/**
 * The SQL `schema duckdb` prints: the secret statements a remote store needs, then a view per table.
 * `present`, when given, names the tables that have objects: DuckDB reads a view's columns from its files
 * when the view is created and refuses a pattern that matches none, so the others are printed commented
 * out, to rerun once they have data.
 *
 * @example
 * ```ts
 * import { duckdbSql, parseLocation } from "./duckdb_views.ts";
 * const sql = duckdbSql(parseLocation("s3://telemetry/otel", "/"));
 * sql.includes("read_parquet('s3://telemetry/otel/logs/*"); // true
 * ```
 */
export function duckdbSql(loc: DuckDbLocation, options: { present?: ReadonlySet<string> } = {}): string {
  const lines = [
    `-- DuckDB views over the otlp2parquet objects at ${loc.base}`,
    "-- Generated by `otlp2parquet schema duckdb`. Every table's columns as ClickHouse's exporter has them,",
    "-- plus the partition columns year, month, day and hour (filter on them to read fewer files).",
    ...secretLines(loc),
  ];
  if (loc.kind !== "local") {
    lines.push(
      "-- DuckDB reads a view's columns from its files when the view is created: a table with no objects",
      '-- yet fails with "No files found"; create its view again once it has some.',
    );
  }
  for (const t of TABLES) {
    // DuckDB appends Hive columns in its own order: name them, so they follow the table's in date order.
    const view =
      `CREATE OR REPLACE VIEW ${t.name} AS SELECT * EXCLUDE (year, month, day, hour), year, month, day, hour FROM read_parquet(${
        quote(tableGlob(loc.base, t.path))
      }, hive_partitioning = true, hive_types = {'year': INTEGER, 'month': INTEGER, 'day': INTEGER, 'hour': INTEGER});`;
    if (options.present && !options.present.has(t.name)) {
      lines.push(`-- ${t.name}: no objects yet under ${t.path}/; run this once there are:`, `-- ${view}`);
    } else lines.push(view);
  }
  return lines.join("\n") + "\n";
}
