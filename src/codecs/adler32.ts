/**
 * Adler-32 (RFC 1950 §8), the checksum that ends a zlib stream. Some runtimes' DecompressionStream
 * ("deflate") do not check it, or notice a stream cut short; `readBody` checks it itself.
 *
 * @module
 */

const MOD = 65521;
/** Bytes summed between reductions: zlib's NMAX, the most that keeps `b` within 32 bits. */
const NMAX = 5552;

/**
 * Adler-32 of `bytes`, as an unsigned 32-bit number.
 *
 * @param previous the Adler-32 of the bytes before, to checksum data in pieces. Default 1 (nothing before).
 */
export function adler32(bytes: Uint8Array, previous = 1): number {
  let a = previous & 0xffff;
  let b = previous >>> 16;
  const n = bytes.length;
  for (let i = 0; i < n;) {
    const end = Math.min(n, i + NMAX);
    for (; i < end; i++) {
      a += bytes[i];
      b += a;
    }
    a %= MOD;
    b %= MOD;
  }
  return ((b << 16) | a) >>> 0;
}
