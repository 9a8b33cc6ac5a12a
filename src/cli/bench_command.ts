/**
 * Registers `bench` on the program; the load generator (`bench.ts`, with `bench/`'s data generators) is
 * imported only when the command runs, so other commands do not load it.
 *
 * @module
 */

import { type Command, InvalidArgumentError, Option } from "commander";
import process from "node:process";
import type { CliRun } from "./program.ts";

/** A positive number flag value. */
export function positive(name: string, integer = false): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${name}: expected a positive ${integer ? "integer" : "number"}`);
    }
    return n;
  };
}

interface BenchFlags {
  endpoint: string;
  signal: "logs" | "traces" | "metrics";
  encoding: "protobuf" | "json";
  compression: "gzip" | "zstd" | "none";
  rate?: number;
  max?: boolean;
  recordsPerRequest: number;
  concurrency: number;
  duration: number;
  token?: string;
  json?: boolean;
}

/** Registers `bench`. */
export function registerBench(program: Command, run: CliRun): void {
  program.command("bench")
    .summary("load-test an OTLP/HTTP endpoint")
    .description("load-test an OTLP/HTTP endpoint: records/s, MB/s, latency p50/p90/p99, errors")
    .option(
      "--endpoint <url>",
      "base URL (/v1/<signal> is appended) or the signal's URL",
      "http://127.0.0.1:4318",
    )
    .addOption(
      new Option("--signal <signal>", "records to send").choices(["logs", "traces", "metrics"]).default(
        "logs",
      ),
    )
    .addOption(
      new Option("--encoding <encoding>", "request encoding").choices(["protobuf", "json"]).default(
        "protobuf",
      ),
    )
    .addOption(
      new Option("--compression <codec>", "request body compression").choices(["gzip", "zstd", "none"])
        .default("gzip"),
    )
    .addOption(
      new Option("--rate <records>", "open loop: records per second (latency from the scheduled send time)")
        .argParser(positive("--rate")).conflicts("max"),
    )
    .option("--max", "closed loop: as fast as --concurrency requests in flight allow (the default)")
    .option(
      "--records-per-request <n>",
      "records in each request",
      positive("--records-per-request", true),
      1000,
    )
    .option("--concurrency <n>", "requests in flight (--rate: at most)", positive("--concurrency", true), 8)
    .option("--duration <secs>", "seconds of load", positive("--duration"), 10)
    .option("--token <token>", "sent as Authorization: Bearer <token> (env OTLP2PARQUET_AUTH_TOKEN)")
    .option("--json", "machine-readable summary on stdout")
    .addHelpText(
      "after",
      `
Examples:
  otlp2parquet bench --duration 30
      as fast as 8 requests in flight allow, 1000 log records each, gzip protobuf
  otlp2parquet bench --rate 50000 --records-per-request 500 --concurrency 64
      open loop: 100 requests/s whatever the server answers; says so when the rate was not reached
  otlp2parquet bench --endpoint https://otel.example.com --signal traces --encoding json --token $TOKEN`,
    )
    .action(async (flags: BenchFlags) => {
      const { runBenchCommand } = await import("./bench.ts");
      const tty = Boolean(process.stderr.isTTY);
      run.exitCode = Math.max(
        run.exitCode,
        await runBenchCommand(run.io, {
          endpoint: flags.endpoint,
          signal: flags.signal,
          encoding: flags.encoding,
          compression: flags.compression,
          rate: flags.rate,
          recordsPerRequest: flags.recordsPerRequest,
          concurrency: flags.concurrency,
          durationSecs: flags.duration,
          token: flags.token ?? process.env.OTLP2PARQUET_AUTH_TOKEN,
          json: flags.json,
          progress: { write: run.io.stderr, tty },
        }),
      );
    });
}
