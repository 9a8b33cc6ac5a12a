/**
 * Loads parquet-wasm's compiled module for entry points hosted by Deno or Bun (the CLI, the server), only
 * when the configured codec needs it (`prepareParquet`).
 * Workers bundle the wasm instead. A single-executable build embeds the file and names its path with
 * `useWasmPath` before anything converts.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { initParquet, needsWasm, type ParquetCompression, parquetReady } from "../core/parquet/parquet.ts";
import { registerNodeCompressors } from "./node_codecs.ts";

let embeddedPath: string | undefined;

/** Uses the wasm file at `path` (an embedded file of a compiled executable) instead of the installed package. */
export function useWasmPath(path: string): void {
  embeddedPath = path;
}

/** The path given to `useWasmPath`, if any: worker threads are told it (they share no module state). */
export function wasmPathInUse(): string | undefined {
  return embeddedPath;
}

/**
 * Reads `parquet-wasm/esm/parquet_wasm_bg.wasm` and initialises the Parquet writers (with the `node:zlib`
 * page compressors for the TypeScript one). Idempotent.
 */
export async function loadParquetWasm(): Promise<void> {
  if (parquetReady()) return;
  registerNodeCompressors();
  const url = embeddedPath ?? import.meta.resolve("parquet-wasm/esm/parquet_wasm_bg.wasm");
  const bytes = await readFile(url.startsWith("file:") ? fileURLToPath(url) : url);
  initParquet(bytes);
}

/**
 * Makes files with `codec` writable: registers the `node:zlib` page compressors, and loads the wasm only
 * when the TypeScript writer cannot write that codec (snappy, lz4_raw, or zstd on a runtime without it).
 * Start-up of the server and of Lambda call this instead of `loadParquetWasm`: compiling the wasm costs
 * ~100 ms and ~45 MB of resident memory that the default (zstd) never uses.
 */
export async function prepareParquet(codec: ParquetCompression): Promise<void> {
  registerNodeCompressors();
  if (needsWasm(codec)) await loadParquetWasm();
}
