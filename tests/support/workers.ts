/**
 * The Cloudflare Workers bundle for tests: built by `build/compile.ts --workers` into a temporary folder,
 * and the Miniflare options that load it into workerd with an R2 bucket named `BUCKET`.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("../../", import.meta.url);
/** Worker code that uses the workerd of the installed Miniflare must not ask for a newer date than it knows. */
export const COMPATIBILITY_DATE = "2026-04-01";

/** Builds the bundle; returns its folder (`worker.js`, `parquet_wasm_bg.wasm`). */
export async function buildWorkersBundle(): Promise<string> {
  const outdir = mkdtempSync(join(tmpdir(), "otlp2parquet-workers-"));
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "build/compile.ts", "--workers", "--outdir", outdir],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr));
  }
  return outdir;
}

/** Miniflare options for the bundle in `outdir` with `bindings` as its variables. */
export function workersOptions(outdir: string, bindings: Record<string, string>) {
  return {
    modulesRoot: outdir,
    modules: [
      { type: "ESModule" as const, path: join(outdir, "worker.js") },
      { type: "CompiledWasm" as const, path: join(outdir, "parquet_wasm_bg.wasm") },
    ],
    compatibilityDate: COMPATIBILITY_DATE,
    r2Buckets: ["BUCKET"],
    bindings,
  };
}
