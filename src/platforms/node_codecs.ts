/**
 * Page compressors from `node:zlib` for the TypeScript Parquet writer, on runtimes that have them
 * (Deno and Bun: native zstd and gzip). Where zstd is missing, files keep being written by parquet-wasm.
 *
 * @module
 */

import * as zlib from "node:zlib";
import { registerCompressor } from "../core/parquet.ts";

/** zstd level 1, the level arrow-rs (parquet-wasm) uses by default: measured as small as level 3 here, faster. */
export const ZSTD_LEVEL = 1;

/** Registers zstd and gzip page compression when this runtime's `node:zlib` offers them. */
export function registerNodeCompressors(): void {
  const z = zlib as typeof zlib & { zstdCompressSync?: typeof zlib.gzipSync };
  const level = (zlib.constants as Record<string, number>).ZSTD_c_compressionLevel;
  if (typeof z.zstdCompressSync === "function" && level !== undefined) {
    const zstd = z.zstdCompressSync;
    const options = { params: { [level]: ZSTD_LEVEL } } as zlib.ZlibOptions;
    registerCompressor("zstd", (page) => zstd(page, options));
  }
  registerCompressor("gzip", (page) => zlib.gzipSync(page));
}
