/**
 * The Cloudflare Workers bundle for tests: built by `build/compile.ts --workers` into a temporary folder,
 * the Miniflare options that load it into workerd, and the objects it writes to R2 copied out for DuckDB.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Miniflare } from "miniflare";
import type { R2BucketLike } from "../../src/storage/r2_store.ts";

const ROOT = new URL("../../", import.meta.url);
/** Worker code that uses the workerd of the installed Miniflare must not ask for a newer date than it knows. */
export const COMPATIBILITY_DATE = "2026-04-01";
/** The compressed size limit of a Worker on the Free plan. */
export const GZIP_LIMIT = 3 * 1024 * 1024;

/** Builds the bundle; returns its folder (`worker.js`, `parquet_wasm_bg.wasm`, `size.json`). */
export async function buildWorkersBundle(): Promise<string> {
  const outdir = mkdtempSync(join(tmpdir(), "otlp2parquet-workers-"));
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "build/compile.ts", "--workers", "--outdir", outdir],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  if (code !== 0) throw new Error(text);
  assert.match(text, /MiB raw, [\d.]+ MiB gzip/);
  return outdir;
}

/** The bundle's modules in `outdir`, as Miniflare loads them. */
export function bundleModules(outdir: string) {
  return {
    modulesRoot: outdir,
    modules: [
      { type: "ESModule" as const, path: join(outdir, "worker.js") },
      { type: "CompiledWasm" as const, path: join(outdir, "parquet_wasm_bg.wasm") },
    ],
    compatibilityDate: COMPATIBILITY_DATE,
  };
}

/** Miniflare options for the bundle in `outdir` with an R2 bucket `BUCKET` and `bindings` as its variables. */
export function workersOptions(outdir: string, bindings: Record<string, string>) {
  return { ...bundleModules(outdir), r2Buckets: ["BUCKET"], bindings };
}

/** A bucket through the binding's own API; Miniflare's types of it do not resolve under Deno. */
export async function r2(mf: Miniflare, binding = "BUCKET", worker?: string): Promise<R2BucketLike> {
  return (await mf.getR2Bucket(binding, worker)) as unknown as R2BucketLike;
}

/** Every key in the bucket under `prefix` (all pages), sorted. */
export async function listKeys(bucket: R2BucketLike, prefix = ""): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor, limit: 1000 });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor !== undefined);
  return keys.sort();
}

/** Copies every object under `prefix` into a fresh local folder (same relative keys) and returns it. */
export async function download(bucket: R2BucketLike, prefix = ""): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-r2-"));
  for (const key of await listKeys(bucket, prefix)) {
    const object = await bucket.get(key);
    assert.ok(object, key);
    const local = join(dir, key);
    Deno.mkdirSync(join(local, ".."), { recursive: true });
    writeFileSync(local, new Uint8Array(await object.arrayBuffer()));
  }
  return dir;
}
