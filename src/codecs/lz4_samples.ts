/**
 * Test-only LZ4 frames built by construction from the frame format's parts, for the tests and the
 * decode-cost benchmark: declared content sizes that may lie, stored or compressed blocks, and the
 * best-ratio block.
 *
 * @module
 */

import { concatBytes } from "../core/parquet/byte_sink.ts";
import { xxh32 } from "./xxh32.ts";

/** An LZ4 frame built by construction: header with a declared content size, then the given blocks. */
export function sizedFrame(contentSize: number, blocks: Uint8Array[], stored = false): Uint8Array {
  const descriptor = new Uint8Array(10);
  descriptor[0] = 0x68; // version 01, independent blocks, content size present
  descriptor[1] = 0x70; // 4 MiB blocks
  new DataView(descriptor.buffer).setUint32(2, contentSize % 2 ** 32, true);
  new DataView(descriptor.buffer).setUint32(6, Math.floor(contentSize / 2 ** 32), true);
  const hc = (xxh32(descriptor) >>> 8) & 0xff;
  const parts: Uint8Array[] = [new Uint8Array([0x04, 0x22, 0x4d, 0x18]), descriptor, new Uint8Array([hc])];
  for (const b of blocks) {
    const size = new Uint8Array(4);
    new DataView(size.buffer).setUint32(0, (b.length | (stored ? 0x80000000 : 0)) >>> 0, true);
    parts.push(size, b);
  }
  parts.push(new Uint8Array(4)); // EndMark
  return concatBytes(parts, parts.reduce((n, p) => n + p.length, 0));
}

/** A raw block of `n` zero bytes: one literal, then one long match at offset 1, then 5 literals. */
export function zerosBlock(n: number): Uint8Array {
  const matchLength = n - 6 - 4;
  const bytes = [0x1f, 0, 1, 0];
  for (let left = matchLength - 15;; left -= 255) {
    bytes.push(Math.min(left, 255));
    if (left < 255) break;
  }
  bytes.push(0x50, 0, 0, 0, 0, 0);
  return new Uint8Array(bytes);
}
