/**
 * Runs the `otlp2parquet` command line as a user does (`deno run -A src/cli/main.ts …`, a subprocess),
 * with exactly the environment given (plus PATH and HOME), and returns its exit code and output.
 */
import { join } from "node:path";

export const ROOT = new URL("../../", import.meta.url).pathname;
export const DENO = join(ROOT, "node_modules", ".bin", "deno");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args`; `env` replaces the inherited environment (PATH and HOME are kept). */
export function runCliProcess(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<CliResult> {
  return runProcess(DENO, ["run", "-A", join(ROOT, "src", "cli", "main.ts"), ...args], options);
}

/** Runs `command` (e.g. the single executable) the same way: only PATH, HOME and `env` in its environment. */
export async function runProcess(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<CliResult> {
  const out = await new Deno.Command(command, {
    args,
    cwd: options.cwd ?? ROOT,
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/tmp", ...options.env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
