/**
 * Entry point of the `otlp2parquet` command (Deno: `deno task cli …`; Bun: `bun src/cli/main.ts …`; the
 * single executable `dist/otlp2parquet`). It knows where it runs: started with no arguments and
 * `AWS_LAMBDA_RUNTIME_API` set (which Lambda sets for a custom runtime's `bootstrap`), it runs the Lambda
 * Runtime API loop; otherwise the command line, whose default command serves HTTP.
 *
 * Both branches are imported on demand, so a Lambda cold start evaluates neither the command line nor the
 * server, and the server does not evaluate the Lambda runtime.
 *
 * @module
 */

import process from "node:process";

/** Whether this process is a Lambda custom runtime: what the single executable runs as. */
function runsOnLambda(
  env: Readonly<Record<string, string | undefined>>,
  args: readonly string[],
): boolean {
  return Boolean(env.AWS_LAMBDA_RUNTIME_API) && args.length === 0;
}

// process.argv is [runtime, script, ...args] under Deno, Bun and Node alike.
const args = process.argv.slice(2);
if (runsOnLambda(process.env, args)) {
  await import("../platforms/lambda/main.ts");
} else {
  try {
    const [{ runCli }, { registerServe }] = await Promise.all([
      import("./program.ts"),
      import("./serve_command.ts"),
    ]);
    process.exitCode = await runCli(args, { extra: registerServe });
  } catch (e) {
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
