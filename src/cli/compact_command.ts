/**
 * Registers `compact` on the program: the storage flags of `serve` (and `--config`), the batch age
 * (young objects are left alone), and the compaction's own flags. The compaction (`compact.ts`, with
 * parquet-wasm to read the inputs) is loaded only when the command runs.
 *
 * `OTLP2PARQUET_COMPACT_EXIT_AFTER=<step>:<n>` (step `written`, `verified` or `deleted`) ends the
 * process with exit code 137, as a kill would, right after the n-th such step: the tests use it to show
 * that a rerun finishes an interrupted compaction.
 *
 * @module
 */

import { type Command, InvalidArgumentError, Option } from "commander";
import process from "node:process";
import { parseSize } from "../config/mod.ts";
import { type TableDef, TABLES } from "../core/table/schema.ts";
import { action, loadConfig, settingFlags } from "./client_commands.ts";
import type { CliRun } from "./program.ts";

/** A table by name (`otel_logs`), short name (`logs`, `gauge`) or path (`metrics/gauge`). */
export function tableByName(name: string): TableDef {
  const t = TABLES.find((t) =>
    t.name === name || t.path === name || t.name === `otel_${name}` || t.name === `otel_metrics_${name}`
  );
  if (!t) {
    throw new InvalidArgumentError(`--table ${name}: one of ${TABLES.map((t) => t.name).join(", ")}`);
  }
  return t;
}

/** A time flag: ISO 8601 (`2025-01-15T10:00Z`, `2025-01-15`) or epoch milliseconds. */
export function parseTime(name: string): (v: string) => number {
  return (v) => {
    const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(ms)) {
      throw new InvalidArgumentError(`${name}: expected an ISO 8601 time, e.g. 2025-01-15T10:00Z`);
    }
    return ms;
  };
}

/** A size flag (`128MiB`, `1GB`, bytes). */
function sizeFlag(name: string): (v: string) => number {
  return (v) => {
    try {
      return parseSize(v);
    } catch (e) {
      throw new InvalidArgumentError(`${name}: ${(e as Error).message}`);
    }
  };
}

/** Margin added to the batch age: writes that retry or a log replayed after a restart come later. */
export const AGE_MARGIN_SECS = 600;

interface CompactFlags {
  table: TableDef;
  service?: string;
  from?: number;
  to?: number;
  targetSize: number;
  maxMemory: number;
  minAge?: number;
  dryRun?: boolean;
  json?: boolean;
  [flag: string]: unknown;
}

/** Registers `compact`. */
export function registerCompact(program: Command, run: CliRun): void {
  const cmd = program.command("compact")
    .summary("merge the small objects of closed hours")
    .description("merge the small objects of closed partitions into sorted objects of a target size")
    .requiredOption(
      "--table <table>",
      "table: otel_logs, otel_traces, otel_metrics_gauge, … (or logs, traces, gauge, …)",
      tableByName,
    )
    .option("--service <name>", "only this service")
    .option(
      "--from <time>",
      "only partitions from this hour on (ISO 8601, e.g. 2025-01-15T00:00Z)",
      parseTime("--from"),
    )
    .option("--to <time>", "only partitions before this time", parseTime("--to"))
    .addOption(
      new Option("--target-size <size>", "output object size aimed at (objects below half of it are merged)")
        .argParser(sizeFlag("--target-size")).default(128 * 1024 * 1024, "128MiB"),
    )
    .option(
      "--min-age <secs>",
      `leave objects modified less than this ago alone (default: batch.max_age_secs + ${AGE_MARGIN_SECS})`,
      (v: string) => {
        const n = Number(v);
        if (!(n >= 0)) throw new InvalidArgumentError("--min-age: expected seconds");
        return n;
      },
    )
    .addOption(
      new Option(
        "--max-memory <size>",
        "close an output early when its inputs, decoded, hold this much (16x their Parquet size measured)",
      ).argParser(sizeFlag("--max-memory")).default(512 * 1024 * 1024, "512MiB"),
    )
    .option("--dry-run", "print the plan (partitions, inputs -> outputs) and change nothing")
    .option("--json", "machine-readable report on stdout");
  settingFlags(cmd, ["storage.", "batch.max_age_secs"]);
  cmd.addHelpText(
    "after",
    `
Storage, Parquet settings and batch age come from the same settings as serve (flags, env, --config).
The current hour and objects younger than the batch age plus ${AGE_MARGIN_SECS} s are never touched.

Examples:
  otlp2parquet compact --table otel_logs --dry-run
      what would be merged, per partition, changing nothing
  otlp2parquet compact --path ./data --table logs --from 2025-01-15 --to 2025-01-16
  OTLP2PARQUET_S3_BUCKET=telemetry otlp2parquet compact --storage s3 --table traces --target-size 256MiB`,
  );
  cmd.action(action(run, async (flags: CompactFlags) => {
    const config = await loadConfig(run, flags);
    const [{ compact, formatCompact }, { storeFromConfig }, { loadParquetWasm }] = await Promise.all([
      import("./compact.ts"),
      import("../storage/from_config.ts"),
      import("../platforms/wasm.ts"),
    ]);
    await loadParquetWasm();
    const store = await storeFromConfig(config, { env: process.env, s3OverFetch: true });
    const exitAfter = /^(written|verified|deleted):(\d+)$/.exec(
      process.env.OTLP2PARQUET_COMPACT_EXIT_AFTER ?? "",
    );
    let steps = 0;
    const report = await compact(store, {
      table: flags.table,
      service: flags.service,
      fromMs: flags.from,
      toMs: flags.to,
      targetBytes: flags.targetSize,
      maxMemoryBytes: flags.maxMemory,
      minAgeMs: (flags.minAge ?? config.batch.maxAgeSecs + AGE_MARGIN_SECS) * 1000,
      dryRun: flags.dryRun,
      files: { compression: config.parquet.compression, rowGroupRows: config.parquet.rowGroupRows },
      log: (line) => run.io.stderr(line + "\n"),
      onStep: exitAfter
        ? (step) => {
          if (step === exitAfter[1] && ++steps === Number(exitAfter[2])) process.exit(137);
        }
        : undefined,
    });
    run.io.stdout(flags.json ? JSON.stringify(report, null, 2) + "\n" : formatCompact(report));
  }));
}
