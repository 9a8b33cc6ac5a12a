/**
 * MurmurHash3, x86 128-bit variant, written from Austin Appleby's description of the algorithm (public
 * domain). It needs only 32-bit multiplies (`Math.imul`), so it is several times faster in JavaScript than
 * a 64-bit hash such as XXH64, whose multiplies have to be done in 16-bit pieces. Used as the identity of a
 * request (`src/ingest/dedupe.ts`): not a cryptographic hash.
 *
 * @module
 */

const C1 = 0x239b961b, C2 = 0xab0e9789, C3 = 0x38b34ae5, C4 = 0xa1e38b93;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

/** A lane's word before it joins the lane: `rotl(k * a, r) * b`. */
const mixK = (k: number, a: number, r: number, b: number) => Math.imul(rotl(Math.imul(k, a), r), b);

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Incremental MurmurHash3_x86_128. */
export class Murmur3x128 {
  #h1 = 0;
  #h2 = 0;
  #h3 = 0;
  #h4 = 0;
  readonly #tail = new Uint8Array(16);
  #tailLength = 0;
  #length = 0;

  constructor(seed = 0) {
    this.reset(seed);
  }

  /** Starts over with `seed` (a u32). */
  reset(seed = 0): void {
    this.#h1 =
      this.#h2 =
      this.#h3 =
      this.#h4 =
        seed >>> 0;
    this.#tailLength = 0;
    this.#length = 0;
  }

  /** Hashes `bytes[start, end)`. */
  update(bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.#length += end - start;
    let i = start;
    if (this.#tailLength > 0) {
      const take = Math.min(16 - this.#tailLength, end - i);
      this.#tail.set(bytes.subarray(i, i + take), this.#tailLength);
      this.#tailLength += take;
      i += take;
      if (this.#tailLength < 16) return;
      this.#blocks(this.#tail, 0, 16);
      this.#tailLength = 0;
    }
    const whole = i + ((end - i) & ~15);
    if (whole > i) this.#blocks(bytes, i, whole);
    if (whole < end) {
      this.#tail.set(bytes.subarray(whole, end));
      this.#tailLength = end - whole;
    }
  }

  /** The 16-byte blocks of `b[i, end)` ((end - i) a multiple of 16): the hot loop. */
  #blocks(b: Uint8Array, i: number, end: number): void {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let h1 = this.#h1, h2 = this.#h2, h3 = this.#h3, h4 = this.#h4;
    for (; i < end; i += 16) {
      let k1 = view.getUint32(i, true), k2 = view.getUint32(i + 4, true);
      let k3 = view.getUint32(i + 8, true), k4 = view.getUint32(i + 12, true);
      k1 = Math.imul(k1, C1), k1 = rotl(k1, 15), k1 = Math.imul(k1, C2), h1 ^= k1;
      h1 = rotl(h1, 19), h1 = (h1 + h2) | 0, h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;
      k2 = Math.imul(k2, C2), k2 = rotl(k2, 16), k2 = Math.imul(k2, C3), h2 ^= k2;
      h2 = rotl(h2, 17), h2 = (h2 + h3) | 0, h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;
      k3 = Math.imul(k3, C3), k3 = rotl(k3, 17), k3 = Math.imul(k3, C4), h3 ^= k3;
      h3 = rotl(h3, 15), h3 = (h3 + h4) | 0, h3 = (Math.imul(h3, 5) + 0x96cd1c35) | 0;
      k4 = Math.imul(k4, C4), k4 = rotl(k4, 18), k4 = Math.imul(k4, C1), h4 ^= k4;
      h4 = rotl(h4, 13), h4 = (h4 + h1) | 0, h4 = (Math.imul(h4, 5) + 0x32ac3b17) | 0;
    }
    this.#h1 = h1, this.#h2 = h2, this.#h3 = h3, this.#h4 = h4;
  }

  /** The hash of everything so far: h1..h4 as unsigned 32-bit words (the canonical bytes are each LE). */
  digest(): Uint32Array {
    let h1 = this.#h1, h2 = this.#h2, h3 = this.#h3, h4 = this.#h4;
    const t = this.#tail, n = this.#tailLength;
    const word = (at: number) => {
      let k = 0;
      for (let j = Math.min(n, at + 4) - 1; j >= at; j--) k = (k << 8) | t[j];
      return k;
    };
    // The tail's words (little-endian, zero-filled) mix into their lanes as in the block loop.
    if (n > 12) h4 ^= mixK(word(12), C4, 18, C1);
    if (n > 8) h3 ^= mixK(word(8), C3, 17, C4);
    if (n > 4) h2 ^= mixK(word(4), C2, 16, C3);
    if (n > 0) h1 ^= mixK(word(0), C1, 15, C2);
    // The length as 32 bits, as the reference does (its length parameter is an int).
    const len = this.#length | 0;
    h1 ^= len, h2 ^= len, h3 ^= len, h4 ^= len;
    h1 = (h1 + h2 + h3 + h4) | 0;
    h2 = (h2 + h1) | 0, h3 = (h3 + h1) | 0, h4 = (h4 + h1) | 0;
    h1 = fmix(h1), h2 = fmix(h2), h3 = fmix(h3), h4 = fmix(h4);
    h1 = (h1 + h2 + h3 + h4) | 0;
    h2 = (h2 + h1) | 0, h3 = (h3 + h1) | 0, h4 = (h4 + h1) | 0;
    return Uint32Array.of(h1, h2, h3, h4);
  }
}

/** MurmurHash3_x86_128 of `bytes` with `seed`. */
export function murmur3x128(bytes: Uint8Array, seed = 0): Uint32Array {
  const hash = new Murmur3x128(seed);
  hash.update(bytes);
  return hash.digest();
}
