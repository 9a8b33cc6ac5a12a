/**
 * The `otlp2parquet` command line: `convert` and `schema` here, `connect`, `plan`, `check` and
 * `schema duckdb` from client_commands.ts (one line each below); other commands (`serve`) register
 * themselves through `buildCli(extra)`, so this file does not depend on the server.
 *
 * @module
 */

import process from "node:process";
import { Command, CommanderError, Option } from "commander";
import type { Format } from "../core/convert.ts";
import type { ParquetCompression } from "../core/parquet/parquet.ts";
import type { Signal } from "../core/table/schema.ts";
import { VERSION } from "../core/version.ts";
import { prepareParquet } from "../platforms/wasm.ts";
import { registerBench } from "./bench_command.ts";
import { registerCompact } from "./compact_command.ts";
import { type CliIo, runConvert } from "./convert.ts";
import { schemaText } from "./schema.ts";
import { registerCheck, registerConnect, registerPlan, registerSchemaDuckdb } from "./client_commands.ts";

/** State shared by the commands of one run: where they write and the exit code they leave. */
export interface CliRun {
  readonly io: CliIo;
  /** 0 unless a command sets it (1: some input failed). Usage errors give 2 (see `runCli`). */
  exitCode: number;
}

/** Writes to the process's stdout and stderr. */
export const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/**
 * Builds the program. `extra` registers further commands (e.g. `serve`) on it; they share `run`.
 * Commander never exits the process: errors surface as `CommanderError` (see `runCli`).
 */
export function buildCli(
  extra?: (program: Command, run: CliRun) => void,
  options: {
    /** Output and exit code holder; default: process stdout/stderr, exit code 0. */
    run?: CliRun;
  } = {},
): Command {
  const run = options.run ?? { io: processIo, exitCode: 0 };
  const program = new Command("otlp2parquet")
    .description("OpenTelemetry (OTLP) to ClickHouse-compatible Parquet")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: run.io.stdout, writeErr: run.io.stderr })
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText("after", TOP_EXAMPLES);

  program.command("convert")
    .summary("convert OTLP request files to Parquet")
    .description("convert OTLP request files (protobuf, JSON, JSON Lines; .gz too) to Parquet under a folder")
    .argument("<files...>", "OTLP request files")
    .requiredOption("--out <dir>", "folder to write the Parquet files under, at their object keys")
    .addOption(new Option("--signal <signal>", "signal of the inputs (default: detected)").choices(SIGNALS))
    .addOption(
      new Option("--format <format>", "encoding of the inputs (default: from extension or content)").choices(
        FORMATS,
      ),
    )
    .addOption(new Option("--compression <codec>", "Parquet compression").choices(CODECS).default("zstd"))
    .option("--instance-id <id>", "instance id in the file names", "local")
    .option("--json", "machine-readable report on stdout")
    .addHelpText(
      "after",
      "\nExamples:\n  otlp2parquet convert --out ./data requests/*.pb exported.jsonl.gz\n" +
        "  otlp2parquet convert --json --signal metrics --format json --out ./out dump.bin\n",
    )
    .action(async (files: string[], opts: ConvertFlags) => {
      await prepareParquet(opts.compression);
      run.exitCode = Math.max(run.exitCode, await runConvert(files, run.io, opts));
    });

  const schema = program.command("schema").summary("print table schemas: clickhouse, duckdb, arrow")
    .description("print the output tables' schema");
  schema.command("clickhouse")
    .description("CREATE TABLE statements of the seven tables (the OpenTelemetry exporter's)")
    .option("--database <name>", "database the table names are qualified with")
    .addHelpText(
      "after",
      "\nExamples:\n  otlp2parquet schema clickhouse --database otel | clickhouse-client --multiquery\n",
    )
    .action((opts: { database?: string }) => run.io.stdout(schemaText("clickhouse", opts)));
  schema.command("arrow")
    .description("every table's columns with their Arrow types")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  otlp2parquet schema arrow --json | jq '.[0].columns[0]'\n")
    .action((opts: { json?: boolean }) => run.io.stdout(schemaText("arrow", opts)));
  registerSchemaDuckdb(schema, run);
  registerConnect(program, run);
  registerPlan(program, run);
  registerCheck(program, run);
  registerBench(program, run);
  registerCompact(program, run);

  // ---- further commands (`serve`) are registered here, by the caller's `extra` ----
  extra?.(program, run);
  return program;
}

const TOP_EXAMPLES = `
Examples:
  otlp2parquet                                   serve on 0.0.0.0:4318, writing to ./data
  otlp2parquet connect otel-collector            Collector exporter YAML for this server
  otlp2parquet plan --records-per-second 5000 --bytes-per-record 300
  otlp2parquet check                             write, read, list, delete a probe object
  otlp2parquet <command> --help                  a command's options and examples
Details: docs/cli.md
`;

const SIGNALS: Signal[] = ["logs", "traces", "metrics"];
const FORMATS: Format[] = ["protobuf", "json", "jsonl"];
const CODECS: ParquetCompression[] = ["zstd", "snappy", "gzip", "lz4_raw", "none"];

interface ConvertFlags {
  out: string;
  signal?: Signal;
  format?: Format;
  compression: ParquetCompression;
  instanceId: string;
  json?: boolean;
}

/**
 * Parses `args` (without the runtime and script), runs the command and returns the exit code:
 * 0 success (and `--help`/`--version`), 1 a command failed (e.g. an input could not be converted),
 * 2 usage error.
 */
export async function runCli(
  args: readonly string[],
  options: {
    /** Registers further commands; default none. */
    extra?: (program: Command, run: CliRun) => void;
    /** Default: process stdout/stderr. */
    io?: CliIo;
  } = {},
): Promise<number> {
  const run: CliRun = { io: options.io ?? processIo, exitCode: 0 };
  const program = buildCli(options.extra, { run });
  try {
    await program.parseAsync([...args], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  return run.exitCode;
}
