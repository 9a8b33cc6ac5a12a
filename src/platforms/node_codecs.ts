/**
 * Codecs from `node:zlib` (native in Deno and Bun): page compressors for the TypeScript Parquet writer
 * (where zstd is missing, files keep being written by parquet-wasm), and a one-call inflater for gzip and
 * deflate request bodies.
 *
 * @module
 */

import * as zlib from "node:zlib";
import { registerCompressor } from "../core/parquet/parquet.ts";
import { BodyTooLargeError } from "../http/body_errors.ts";
import type { InflateSync } from "../http/body.ts";

const INFLATERS = { gzip: zlib.gunzipSync, deflate: zlib.inflateSync, "deflate-raw": zlib.inflateRawSync };

/**
 * `node:zlib` inflation with the bounds `readBody` promises: output stops at `maxBytes` (zlib refuses to
 * produce more), and input left over after the data (which zlib itself ignores) is refused.
 */
export const nodeInflateSync: InflateSync = (format, data, maxBytes) => {
  let result: { buffer: Uint8Array; engine: { bytesWritten: number } };
  try {
    const options = { info: true, maxOutputLength: Math.max(1, maxBytes) } as zlib.ZlibOptions;
    result = INFLATERS[format](data, options) as unknown as typeof result;
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw new BodyTooLargeError(maxBytes);
    throw e;
  }
  if (result.buffer.length > maxBytes) throw new BodyTooLargeError(maxBytes);
  if (result.engine.bytesWritten !== data.length) {
    throw new SyntaxError(`${data.length - result.engine.bytesWritten} bytes after the end of the data`);
  }
  const out = result.buffer;
  return new Uint8Array(out.buffer, out.byteOffset, out.length); // a plain view, not a Buffer
};

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
