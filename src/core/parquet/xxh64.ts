/**
 * xxHash64 (the zstd frame's content checksum: its low 32 bits, RFC 8878 §3.1.1; and the hash of
 * Parquet's bloom filters), written from the xxHash specification. Streaming, because the zstd decoder hashes each block as it is produced and
 * keeps only the window. JavaScript has no fast 64-bit integers (BigInt allocates per operation), so
 * every 64-bit value is a pair of unsigned 32-bit halves and multiplication is done in 16-bit pieces.
 *
 * @module
 */

// The five primes as [high, low] halves.
const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;

/** The high and low halves of the last 64-bit result (a scratch register, so nothing allocates). */
let rh = 0;
let rl = 0;

/** (ah:al) * (bh:bl) mod 2^64 into rh:rl. */
function mul(ah: number, al: number, bh: number, bl: number): void {
  rh = (mulHigh(al, bl) + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
  rl = Math.imul(al, bl) >>> 0;
}

/** The high 32 bits of the 64-bit product of unsigned 32-bit `a` and `b`, in 16-bit pieces. */
function mulHigh(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p01 = a0 * b1, p10 = a1 * b0;
  const carry = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (carry >>> 16);
}

/** (ah:al) + (bh:bl) mod 2^64 into rh:rl. */
function add(ah: number, al: number, bh: number, bl: number): void {
  const low = al + bl;
  rl = low >>> 0;
  rh = (ah + bh + (low > 0xffffffff ? 1 : 0)) >>> 0;
}

/** Rotates (h:l) left by r bits (0 < r < 32) into rh:rl. */
function rotl(h: number, l: number, r: number): void {
  rh = ((h << r) | (l >>> (32 - r))) >>> 0;
  rl = ((l << r) | (h >>> (32 - r))) >>> 0;
}

/** One accumulator round: rotl(acc + lane * P2, 31) * P1, into rh:rl. */
function round(acch: number, accl: number, laneh: number, lanel: number): void {
  // Inlined (the helpers' calls and register traffic made short hashes ~3x slower).
  const ml = Math.imul(lanel, P2L) >>> 0;
  const mh = mulHigh(lanel, P2L) + Math.imul(laneh, P2L) + Math.imul(lanel, P2H);
  const sl = accl + ml;
  const sh = (acch + mh + (sl > 0xffffffff ? 1 : 0)) >>> 0;
  const slo = sl >>> 0;
  const th = ((sh << 31) | (slo >>> 1)) >>> 0;
  const tl = ((slo << 31) | (sh >>> 1)) >>> 0;
  rh = (mulHigh(tl, P1L) + Math.imul(th, P1L) + Math.imul(tl, P1H)) >>> 0;
  rl = Math.imul(tl, P1L) >>> 0;
}

/** Incremental xxHash64 with seed 0. */
export class Xxh64 {
  readonly #v = new Uint32Array(8); // four accumulators, [high, low] each
  readonly #pending = new Uint8Array(32);
  #pendingLength = 0;
  #length = 0;

  constructor() {
    this.reset();
  }

  /** Starts over, as for a fresh hash. */
  reset(): void {
    initAccumulators(this.#v);
    this.#pendingLength = 0;
    this.#length = 0;
  }

  /** Hashes `bytes[start, end)`. */
  update(bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.#length += end - start;
    let i = start;
    const pending = this.#pending;
    if (this.#pendingLength > 0) {
      const take = Math.min(32 - this.#pendingLength, end - i);
      pending.set(bytes.subarray(i, i + take), this.#pendingLength);
      this.#pendingLength += take;
      i += take;
      if (this.#pendingLength < 32) return;
      this.#stripes(pending, 0, 32);
      this.#pendingLength = 0;
    }
    const whole = i + ((end - i) & ~31);
    if (whole > i) this.#stripes(bytes, i, whole);
    if (whole < end) {
      pending.set(bytes.subarray(whole, end));
      this.#pendingLength = end - whole;
    }
  }

  /** Consumes the 32-byte stripes of `b[i, end)` ((end - i) a multiple of 32). The hot loop: inlined. */
  #stripes(b: Uint8Array, i: number, end: number): void {
    const v = this.#v;
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength); // ~12% faster than byte loads
    for (; i < end; i += 32) {
      for (let k = 0; k < 8; k += 2) {
        const p = i + 4 * k;
        const ll = view.getUint32(p, true), lh = view.getUint32(p + 4, true);
        // acc + lane * P2
        const ml = Math.imul(ll, P2L) >>> 0;
        const mh = mulHigh(ll, P2L) + Math.imul(lh, P2L) + Math.imul(ll, P2H);
        const sl = v[k + 1] + ml;
        const sh = (v[k] + mh + (sl > 0xffffffff ? 1 : 0)) >>> 0;
        const slo = sl >>> 0;
        // rotl 31, then * P1
        const th = ((sh << 31) | (slo >>> 1)) >>> 0;
        const tl = ((slo << 31) | (sh >>> 1)) >>> 0;
        v[k] = mulHigh(tl, P1L) + Math.imul(th, P1L) + Math.imul(tl, P1H);
        v[k + 1] = Math.imul(tl, P1L);
      }
    }
  }

  /** The hash of everything so far, as [high, low] unsigned 32-bit halves. */
  digest(): [number, number] {
    let h = P5H, l = P5L;
    if (this.#length >= 32) converge(this.#v), h = rh, l = rl;
    add(h, l, Math.floor(this.#length / 2 ** 32) >>> 0, this.#length >>> 0);
    finish(rh, rl, this.#pending, 0, this.#pendingLength);
    return [rh, rl];
  }
}

/** The four accumulators ([high, low] each) of seed 0: P1 + P2, P2, 0, -P1. */
function initAccumulators(v: Uint32Array): void {
  add(P1H, P1L, P2H, P2L);
  v[0] = rh, v[1] = rl;
  v[2] = P2H, v[3] = P2L;
  v[4] = 0, v[5] = 0;
  add(0, 0, (-P1H - 1) >>> 0, (-P1L) >>> 0); // 0 - P1
  v[6] = rh, v[7] = rl;
}

/** Merges the four accumulators `v` ([high, low] each) into one 64-bit value, into rh:rl. */
function converge(v: Uint32Array): void {
  rotl(v[0], v[1], 1);
  let sh = rh, sl = rl;
  rotl(v[2], v[3], 7);
  add(sh, sl, rh, rl);
  sh = rh, sl = rl;
  rotl(v[4], v[5], 12);
  add(sh, sl, rh, rl);
  sh = rh, sl = rl;
  rotl(v[6], v[7], 18);
  add(sh, sl, rh, rl);
  let h = rh, l = rl;
  for (let k = 0; k < 8; k += 2) {
    round(0, 0, v[k], v[k + 1]);
    h ^= rh, l ^= rl;
    mul(h >>> 0, l >>> 0, P1H, P1L);
    add(rh, rl, P4H, P4L);
    h = rh, l = rl;
  }
  rh = h >>> 0, rl = l >>> 0;
}

/** Mixes the last bytes `b[i, n)` (fewer than 32) into (h:l) and avalanches: the hash into rh:rl. */
function finish(h: number, l: number, b: Uint8Array, i: number, n: number): void {
  for (; i + 8 <= n; i += 8) {
    round(0, 0, u32(b, i + 4), u32(b, i));
    h = (h ^ rh) >>> 0, l = (l ^ rl) >>> 0;
    rotl(h, l, 27);
    mul(rh, rl, P1H, P1L);
    add(rh, rl, P4H, P4L);
    h = rh, l = rl;
  }
  if (i + 4 <= n) {
    mul(0, u32(b, i), P1H, P1L);
    h = (h ^ rh) >>> 0, l = (l ^ rl) >>> 0;
    rotl(h, l, 23);
    mul(rh, rl, P2H, P2L);
    add(rh, rl, P3H, P3L);
    h = rh, l = rl;
    i += 4;
  }
  for (; i < n; i++) {
    mul(0, b[i], P5H, P5L);
    h = (h ^ rh) >>> 0, l = (l ^ rl) >>> 0;
    rotl(h, l, 11);
    mul(rh, rl, P1H, P1L);
    h = rh, l = rl;
  }
  l = (l ^ (h >>> 1)) >>> 0; // ^= >> 33
  mul(h, l, P2H, P2L);
  l = (rl ^ ((rl >>> 29) | (rh << 3))) >>> 0; // ^= >> 29
  h = (rh ^ (rh >>> 29)) >>> 0;
  mul(h, l, P3H, P3L);
  rl = (rl ^ rh) >>> 0; // ^= >> 32
}

function u32(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

/** xxHash64 (seed 0) of `bytes`, as [high, low] unsigned 32-bit halves. */
export function xxh64(bytes: Uint8Array): [number, number] {
  const hash = new Xxh64();
  hash.update(bytes);
  return hash.digest();
}

/** The halves of the last `xxh64Range` hash. */
export const xxh64Out = { high: 0, low: 0 };

const acc = new Uint32Array(8);

/**
 * xxHash64 (seed 0) of `bytes[start, end)` into `xxh64Out`, allocating nothing: for hashing many short
 * values (Parquet bloom filters hash every id of a column chunk; a hex trace id is 32 bytes, one stripe).
 */
export function xxh64Range(bytes: Uint8Array, start: number, end: number): void {
  const n = end - start;
  let i = start;
  if (n >= 32) {
    initAccumulators(acc);
    for (const stop = start + (n & ~31); i < stop; i += 32) {
      for (let k = 0; k < 8; k += 2) {
        round(acc[k], acc[k + 1], u32(bytes, i + 4 * k + 4), u32(bytes, i + 4 * k));
        acc[k] = rh, acc[k + 1] = rl;
      }
    }
    converge(acc);
  } else rh = P5H, rl = P5L;
  add(rh, rl, Math.floor(n / 2 ** 32) >>> 0, n >>> 0);
  finish(rh, rl, bytes, i, end);
  xxh64Out.high = rh, xxh64Out.low = rl;
}
