/**
 * The single executable (`deno task build`, Bun-compiled) for tests that run it: built once per test process
 * into a temporary folder (about 2 s), shared by every test file that asks, and removed when the process ends.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("../../", import.meta.url);
let built: Promise<string> | undefined;

/** Builds the executable the first time it is called; resolves with its path. */
export function ensureExecutable(): Promise<string> {
  return built ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-binary-"));
    globalThis.addEventListener("unload", () => rmSync(dir, { recursive: true, force: true }));
    const executable = join(dir, "otlp2parquet");
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "build/compile.ts", "--outfile", executable],
      cwd: ROOT.pathname,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    return executable;
  })();
}
