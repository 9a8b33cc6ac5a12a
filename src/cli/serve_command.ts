/**
 * The `serve` command: the OTLP/HTTP server, with one flag per setting that has one (see
 * docs/configuration.md). It is the default command, so the executable alone starts the server.
 *
 * @module
 */

import type { Command } from "commander";
import { SETTINGS } from "../config/mod.ts";
import { serveMain } from "../platforms/server/serve.ts";

/** Registers `serve` on the program. */
export function registerServe(program: Command): void {
  const cmd = program.command("serve", { isDefault: true })
    .summary("run the OTLP/HTTP receiver (the default command)")
    .description(
      "run the OTLP/HTTP receiver (default command); settings: defaults < --config file < env < flags",
    )
    .option("--config <path>", "TOML configuration file (env OTLP2PARQUET_CONFIG)");
  for (const s of SETTINGS) {
    if (!s.flag) continue;
    cmd.option(s.flagArg ? `${s.flag} ${s.flagArg}` : s.flag, `${s.description} (env ${s.env})`);
  }
  cmd.addHelpText(
    "after",
    `
Examples:
  otlp2parquet serve --listen 127.0.0.1:4318 --path ./data
  OTLP2PARQUET_AUTH_TOKEN=s3cr3t otlp2parquet serve --storage s3 --s3-bucket telemetry
  otlp2parquet serve --config /etc/otlp2parquet.toml
`,
  );
  cmd.action(async (opts: Record<string, unknown>) => {
    // Commander sets `batch: true` for the `--no-batch` switch by default; resolveConfig ignores that value.
    await serveMain(opts);
  });
}
