/**
 * The commands a user reaches for around the server: `connect` (client configuration), `schema duckdb`
 * (views over the stored objects), `plan` (batch tuning and cost) and `check` (the store, end to end).
 * Each reads the same configuration as `serve` (defaults < `--config` file < `OTLP2PARQUET_*` < flags)
 * and registers itself on the program with one call (see program.ts).
 *
 * @module
 */

import { opendir, readFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { Argument, type Command, Option } from "commander";
import { type Config, ConfigError, parseSize, resolveConfig, SETTINGS } from "../config/mod.ts";
import { TABLES } from "../core/table/schema.ts";
import { storeFromConfig } from "../storage/from_config.ts";
import { checkStore, reportCheck } from "./check.ts";
import { CONNECT_TARGETS, type ConnectTarget, connectText } from "./connect.ts";
import { duckdbSql, locationOf, parseLocation } from "./duckdb_views.ts";
import { BUNDLED_PRICES, formatPlan, parsePrices, plan, PLATFORMS, PROVIDERS } from "./plan.ts";
import type { CliRun } from "./program.ts";

/** Adds `--config` and the flags of the settings whose keys start with one of `prefixes`. */
export function settingFlags(cmd: Command, prefixes: string[]): Command {
  cmd.option("--config <path>", "TOML configuration file (env OTLP2PARQUET_CONFIG)");
  for (const s of SETTINGS) {
    if (!s.flag || !prefixes.some((p) => s.key.startsWith(p))) continue;
    cmd.option(s.flagArg ? `${s.flag} ${s.flagArg}` : s.flag, `${s.description} (env ${s.env})`);
  }
  return cmd;
}

/** The configuration as `serve` would resolve it, with these flags; warnings go to stderr. */
export async function loadConfig(run: CliRun, flags: Record<string, unknown>): Promise<Config> {
  const { config, warnings } = await resolveConfig({
    env: process.env,
    flags,
    readTextFile: (path) => readFile(path, "utf8"),
  });
  for (const w of warnings) run.io.stderr(`warning: ${w}\n`);
  return config;
}

/** Runs an action; a bad input or configuration is reported on stderr with exit code 2. */
export function action<A extends unknown[]>(
  run: CliRun,
  fn: (...args: A) => Promise<void> | void,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      if (!(e instanceof RangeError || e instanceof ConfigError)) throw e;
      run.io.stderr(`error: ${e.message}\n`);
      run.exitCode = Math.max(run.exitCode, 2);
    }
  };
}

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  ${l}`).join("\n")}\n`;
}

/** `connect <target>`. */
export function registerConnect(program: Command, run: CliRun): void {
  const cmd = program.command("connect")
    .summary("print config that points a client here")
    .description("print configuration that points a Collector, an SDK, Claude Code or Codex at this server")
    .addArgument(
      new Argument("<client>", "what to configure").choices(CONNECT_TARGETS),
    )
    .option(
      "--endpoint <url>",
      "the server's base URL as clients reach it (default: from server.listen_addr)",
    )
    .option("--show-token", "print the configured token itself instead of ${OTLP2PARQUET_AUTH_TOKEN}")
    .addOption(new Option("--compression <codec>", "Collector body compression").choices(["zstd", "gzip"]));
  settingFlags(cmd, ["server.listen_addr", "server.max_payload_bytes"]);
  cmd.addHelpText(
    "after",
    examples(
      "otlp2parquet connect otel-collector --endpoint http://otlp2parquet.internal:4318 > exporter.yaml",
      'eval "$(otlp2parquet connect sdk-env)" && python app.py',
      "otlp2parquet connect claude-code >> ~/.bashrc",
      "otlp2parquet connect codex --show-token >> ~/.codex/config.toml",
    ) +
      "\nWith a token configured (OTLP2PARQUET_AUTH_TOKEN), the output reads it from that variable unless\n" +
      "--show-token is given (Claude Code's settings.json and Codex's config.toml take literal values only).\n",
  );
  cmd.action(action(run, async (client: ConnectTarget, opts: Record<string, unknown>) => {
    const config = await loadConfig(run, opts);
    run.io.stdout(connectText(client, config, {
      endpoint: opts.endpoint as string | undefined,
      showToken: Boolean(opts.showToken),
      compression: opts.compression as "zstd" | "gzip" | undefined,
    }));
  }));
}

/** Names of the tables with at least one object in a local folder (a walk that stops at the first one). */
async function tablesWithObjects(root: string): Promise<Set<string>> {
  const found = new Set<string>();
  const hasParquet = async (dir: string): Promise<boolean> => {
    let handle;
    try {
      handle = await opendir(dir);
    } catch {
      return false;
    }
    for await (const entry of handle) {
      if (entry.isFile() && entry.name.endsWith(".parquet")) return true;
      if (entry.isDirectory() && await hasParquet(join(dir, entry.name))) return true;
    }
    return false;
  };
  for (const t of TABLES) if (await hasParquet(join(root, ...t.path.split("/")))) found.add(t.name);
  return found;
}

/** `schema duckdb`, on the `schema` command. */
export function registerSchemaDuckdb(schema: Command, run: CliRun): void {
  const cmd = schema.command("duckdb")
    .summary("DuckDB views over the stored objects")
    .description("DuckDB views over the stored objects (a folder, s3://, r2://, gs://, az://)")
    .option("--url <location>", "folder or URL of the objects (default: the configured storage)");
  settingFlags(cmd, ["storage."]);
  cmd.addHelpText(
    "after",
    examples(
      "otlp2parquet schema duckdb | duckdb telemetry.db      # views over ./data (the default storage)",
      "otlp2parquet schema duckdb --url s3://telemetry/otel   # plus the httpfs/aws setup and a secret",
      'duckdb -c "$(otlp2parquet schema duckdb --url ./data) SELECT count(*) FROM otel_logs"',
    ) +
      "\nFor a folder, tables without objects yet are printed commented out: DuckDB cannot create a view\n" +
      "over a pattern that matches no file.\n",
  );
  cmd.action(action(run, async (opts: Record<string, unknown>) => {
    const loc = typeof opts.url === "string"
      ? parseLocation(opts.url, process.cwd())
      : locationOf(await loadConfig(run, opts), process.cwd());
    const present = loc.kind === "local" ? await tablesWithObjects(loc.base) : undefined;
    run.io.stdout(duckdbSql(loc, { present }));
  }));
}

const number = (name: string) => (text: string): number => {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n)) {
    throw new RangeError(`${name} ${JSON.stringify(text)}: not a number`);
  }
  return n;
};

/** `plan`. */
export function registerPlan(program: Command, run: CliRun): void {
  const cmd = program.command("plan")
    .summary("batch tuning and monthly cost per object store")
    .description("batch settings for healthy objects, and the monthly cost on S3, R2, GCS and Azure")
    .requiredOption("--records-per-second <n>", "records received per second (of --signal)")
    .requiredOption(
      "--bytes-per-record <b>",
      "OTLP protobuf bytes per record, as sent (logs ~290, spans ~275)",
    )
    .addOption(
      new Option("--signal <signal>", "what the records are").choices(["logs", "traces", "metrics"]).default(
        "logs",
      ),
    )
    .addOption(new Option("--provider <store>", "one object store (default: all four)").choices(PROVIDERS))
    .addOption(
      new Option("--platform <platform>", "where the receiver runs").choices(PLATFORMS).default("server"),
    )
    .option(
      "--prices <file>",
      "price list (JSON, the shape of src/cli/prices.json) instead of the bundled one",
    )
    .option("--ratio <r>", "OTLP protobuf bytes ÷ Parquet bytes (default: measured per signal)")
    .option("--services <n>", "services sending (each is a partition per table and hour)", "1")
    .option("--retention-days <n>", "days the objects are kept", "30")
    .option("--records-per-request <n>", "records per request the clients send (Lambda, Workers)", "8192")
    .option("--read-gb <n>", "GB a month read from outside the store's network (egress)", "0")
    .option("--lambda-memory <mb>", "Lambda memory size in MB", "1024")
    .option("--memory <size>", "decoded bytes the server's open batches may hold (recommendation)", "512MiB")
    .addOption(new Option("--format <format>", "output").choices(["text", "json"]).default("text"));
  settingFlags(cmd, ["batch.enabled", "batch.max_rows", "batch.max_bytes", "batch.max_age_secs"]);
  cmd.addHelpText(
    "after",
    examples(
      "otlp2parquet plan --records-per-second 5000 --bytes-per-record 300",
      "otlp2parquet plan --records-per-second 200 --bytes-per-record 300 --services 12 --provider r2",
      "otlp2parquet plan --records-per-second 50000 --bytes-per-record 250 --signal traces --platform lambda",
      "otlp2parquet plan --records-per-second 1000 --bytes-per-record 300 --prices my-prices.json --format json",
    ) +
      "\nThe batch settings are the configured ones (--config, OTLP2PARQUET_BATCH_*, or the flags above).\n" +
      "Prices are list prices as of the date in the price file: check them (see docs/cli.md).\n",
  );
  cmd.action(action(run, async (opts: Record<string, unknown>) => {
    const config = await loadConfig(run, opts);
    const prices = typeof opts.prices === "string"
      ? parsePrices(await readFile(opts.prices, "utf8"), opts.prices)
      : BUNDLED_PRICES;
    const num = (flag: string, key: string) => number(flag)(String(opts[key]));
    const result = plan({
      recordsPerSecond: num("--records-per-second", "recordsPerSecond"),
      bytesPerRecord: num("--bytes-per-record", "bytesPerRecord"),
      signal: opts.signal as "logs" | "traces" | "metrics",
      platform: opts.platform as "server" | "lambda" | "workers",
      provider: opts.provider as (typeof PROVIDERS)[number] | undefined,
      ratio: opts.ratio === undefined ? undefined : num("--ratio", "ratio"),
      services: num("--services", "services"),
      retentionDays: num("--retention-days", "retentionDays"),
      recordsPerRequest: num("--records-per-request", "recordsPerRequest"),
      readGbPerMonth: num("--read-gb", "readGb"),
      lambdaMemoryMb: num("--lambda-memory", "lambdaMemory"),
      memoryBudgetBytes: parseSize(String(opts.memory)),
      batch: {
        enabled: config.batch.enabled,
        maxRows: config.batch.maxRows,
        maxBytes: config.batch.maxBytes,
        maxAgeSecs: config.batch.maxAgeSecs,
        maxOpenBatches: config.batch.maxOpenBatches,
        maxQueuedBytes: config.batch.maxQueuedBytes,
        rowGroupRows: config.parquet.rowGroupRows,
        walMaxBytes: config.durability.walMaxBytes,
      },
      prices,
    });
    run.io.stdout(opts.format === "json" ? JSON.stringify(result, null, 2) + "\n" : formatPlan(result));
  }));
}

/** `check`. */
export function registerCheck(program: Command, run: CliRun): void {
  const cmd = program.command("check")
    .summary("verify the storage with a probe object")
    .description("verify the configured storage: write, read back, list and delete a probe object");
  settingFlags(cmd, ["storage."]);
  cmd.addHelpText(
    "after",
    examples(
      "otlp2parquet check                                    # the configured storage (./data by default)",
      "otlp2parquet check --storage s3 --s3-bucket telemetry --s3-region eu-west-1",
      "OTLP2PARQUET_CONFIG=/etc/otlp2parquet.toml otlp2parquet check",
    ) +
      "\nThe probe is otlp2parquet-check/<time>-<id>.txt under the bucket's prefix; it is deleted again.\n" +
      "Exit code 0 when every step passed, 1 otherwise (with what to fix on stderr).\n",
  );
  cmd.action(action(run, async (opts: Record<string, unknown>) => {
    const config = await loadConfig(run, opts);
    const results = await checkStore(() => storeFromConfig(config, { env: process.env }), config);
    run.exitCode = Math.max(run.exitCode, reportCheck(results, config, run.io));
  }));
}
