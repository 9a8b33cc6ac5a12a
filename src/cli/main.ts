/**
 * Entry point of the `otlp2parquet` command (Deno: `deno task cli …`; Bun: `bun src/cli/main.ts …`).
 *
 * @module
 */

import process from "node:process";
import { runCli } from "./program.ts";
import { registerServe } from "./serve_command.ts";

try {
  // process.argv is [runtime, script, ...args] under Deno, Bun and Node alike.
  process.exitCode = await runCli(process.argv.slice(2), { extra: registerServe });
} catch (e) {
  process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
