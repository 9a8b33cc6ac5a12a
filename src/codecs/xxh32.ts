/**
 * xxHash32 (the LZ4 frame format's header, block and content checksum), written from the xxHash
 * specification. 32-bit arithmetic throughout via `Math.imul` and `| 0`.
 *
 * @module
 */

const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;
const P4 = 0x27d4eb2f | 0;
const P5 = 0x165667b1 | 0;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function round(acc: number, lane: number): number {
  return Math.imul(rotl((acc + Math.imul(lane, P2)) | 0, 13), P1);
}

function u32(b: Uint8Array, i: number): number {
  return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
}

/**
 * xxHash32 of `bytes`, as an unsigned 32-bit number.
 *
 * @param seed the hash seed. Default 0 (what LZ4 uses).
 */
export function xxh32(bytes: Uint8Array, seed = 0): number {
  const n = bytes.length;
  let i = 0;
  let acc: number;
  if (n >= 16) {
    let v1 = (seed + P1 + P2) | 0;
    let v2 = (seed + P2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P1) | 0;
    for (const end = n - 15; i < end; i += 16) {
      v1 = round(v1, u32(bytes, i));
      v2 = round(v2, u32(bytes, i + 4));
      v3 = round(v3, u32(bytes, i + 8));
      v4 = round(v4, u32(bytes, i + 12));
    }
    acc = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    acc = (seed + P5) | 0;
  }
  acc = (acc + n) | 0;
  for (; i + 4 <= n; i += 4) acc = Math.imul(rotl((acc + Math.imul(u32(bytes, i), P3)) | 0, 17), P4);
  for (; i < n; i++) acc = Math.imul(rotl((acc + Math.imul(bytes[i], P5)) | 0, 11), P1);
  acc ^= acc >>> 15;
  acc = Math.imul(acc, P2);
  acc ^= acc >>> 13;
  acc = Math.imul(acc, P3);
  acc ^= acc >>> 16;
  return acc >>> 0;
}
