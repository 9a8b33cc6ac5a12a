/**
 * Loads parquet-wasm's compiled module for entry points hosted by Deno or Bun (the CLI, the server).
 * Workers bundle the wasm instead. A single-executable build embeds the file and names its path with
 * `useWasmPath` before anything converts.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { initParquet, parquetReady } from "../core/parquet.ts";
import { registerNodeCompressors } from "./node_codecs.ts";

let embeddedPath: string | undefined;

/** Uses the wasm file at `path` (an embedded file of a compiled executable) instead of the installed package. */
export function useWasmPath(path: string): void {
  embeddedPath = path;
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
