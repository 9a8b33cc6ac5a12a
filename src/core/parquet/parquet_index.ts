/**
 * The parts of a Parquet file that let readers skip data, written from the Parquet format
 * specification (parquet.thrift, BloomFilter.md, PageIndex.md): truncated string bounds for statistics
 * and column indexes, split-block bloom filters, and the serialised ColumnIndex, OffsetIndex and
 * BloomFilterHeader structures. Pure functions and buffers; `parquet_writer.ts` decides what to write.
 *
 * @module
 */

import { CompactWriter } from "./thrift.ts";

/** String bounds longer than this are truncated (arrow-rs' and parquet-java's column index default). */
export const STAT_BYTES = 64;

/** The end of the UTF-8 prefix of `b[s, e)` of at most `limit` bytes: never inside a character. */
function utf8Cut(b: Uint8Array, s: number, e: number, limit: number): number {
  if (e - s <= limit) return e;
  let cut = s + limit;
  // Back off continuation bytes (10xxxxxx): the cut then falls before a character's first byte.
  while (cut > s && (b[cut] & 0xc0) === 0x80) cut--;
  return cut;
}

/**
 * A lower bound of the string `b[s, e)` of at most `limit` bytes: the string itself if short enough, else
 * its longest prefix that ends on a character boundary (a prefix sorts before the string).
 */
export function truncateMin(b: Uint8Array, s: number, e: number, limit = STAT_BYTES): Uint8Array {
  return b.slice(s, utf8Cut(b, s, e, limit));
}

/**
 * An upper bound of the string `b[s, e)` of at most `limit` bytes, or null when there is none: the
 * string itself if short enough; else its prefix (on a character boundary) with the last character
 * incremented, as the Parquet specification asks of a truncated maximum. A character that cannot be
 * incremented within its UTF-8 length (U+007F, U+07FF, U+FFFF, U+10FFFF) is dropped and the one before
 * it incremented instead; if none can be, there is no bound shorter than the string. Bytes compare
 * like code points for characters of one length, so the result sorts after every string with that prefix.
 */
export function truncateMax(b: Uint8Array, s: number, e: number, limit = STAT_BYTES): Uint8Array | null {
  if (e - s <= limit) return b.slice(s, e);
  const out = b.slice(s, utf8Cut(b, s, e, limit));
  let end = out.length;
  while (end > 0) {
    let start = end - 1;
    while (start > 0 && (out[start] & 0xc0) === 0x80) start--;
    const len = end - start;
    let cp = len === 1 ? out[start] : out[start] & (0xff >> (len + 1));
    for (let i = start + 1; i < end; i++) cp = (cp << 6) | (out[i] & 0x3f);
    let next = cp + 1;
    if (next === 0xd800) next = 0xe000; // surrogates are not characters
    const max = len === 1 ? 0x7f : len === 2 ? 0x7ff : len === 3 ? 0xffff : 0x10ffff;
    if (next <= max) {
      if (len === 1) out[start] = next;
      else {
        for (let i = end - 1; i > start; i--, next >>= 6) out[i] = 0x80 | (next & 0x3f);
        out[start] = (0xff00 >> len) & 0xff | next;
      }
      return out.slice(0, end);
    }
    end = start;
  }
  return null;
}

/** Bytes of the bloom filter for `distinct` values at false-positive rate `fpp`: a power of two in [32, 1 MiB]. */
export function bloomFilterBytes(distinct: number, fpp: number): number {
  const bits = -Math.max(1, distinct) * Math.log(fpp) / (Math.LN2 * Math.LN2);
  let bytes = 32;
  while (bytes * 8 < bits && bytes < BLOOM_MAX_BYTES) bytes *= 2;
  return bytes;
}

/** The largest bloom filter written: 1 MiB holds ~870,000 distinct values at 1 %. */
export const BLOOM_MAX_BYTES = 1 << 20;

/** The eight odd constants of the split-block bloom filter (BloomFilter.md). */
const SALT = new Uint32Array([
  0x47b6137b,
  0x44974d91,
  0x8824ad5b,
  0xa2b7289d,
  0x705495c7,
  0x2df1424b,
  0x9efc4947,
  0x5c6bfb31,
]);

/**
 * A Parquet split-block bloom filter: blocks of eight 32-bit words (256 bits). A value's 64-bit xxHash
 * picks a block with its high half and sets one bit in each word of it from its low half.
 */
export class BloomFilter {
  readonly words: Uint32Array;
  readonly #blocks: number;

  constructor(bytes: number) {
    if (bytes < 32 || bytes % 32 !== 0) throw new RangeError(`bloom filter of ${bytes} bytes`);
    this.words = new Uint32Array(bytes / 4);
    this.#blocks = bytes / 32;
  }

  /** The first word of the block of a hash whose high half is `high`. */
  #block(high: number): number {
    // (high * blocks) >> 32, exact: high < 2^32 and blocks <= 2^15.
    return Math.floor(high * this.#blocks / 4294967296) * 8;
  }

  /** Adds the value whose xxHash64 is (high, low). */
  insert(high: number, low: number): void {
    const w = this.words, b = this.#block(high);
    for (let i = 0; i < 8; i++) w[b + i] |= 1 << (Math.imul(low, SALT[i]) >>> 27);
  }

  /** Whether the value whose xxHash64 is (high, low) may have been added (false: certainly not). */
  check(high: number, low: number): boolean {
    const w = this.words, b = this.#block(high);
    for (let i = 0; i < 8; i++) if ((w[b + i] & (1 << (Math.imul(low, SALT[i]) >>> 27))) === 0) return false;
    return true;
  }

  /** The BloomFilterHeader (BLOCK, XXHASH, UNCOMPRESSED) followed by the bitset, little-endian. */
  serialize(): Uint8Array {
    const size = this.words.length * 4;
    const header = new CompactWriter()
      .i32(1, size)
      .struct(2, (a) => a.struct(1, () => {}))
      .struct(3, (h) => h.struct(1, () => {}))
      .struct(4, (c) => c.struct(1, () => {}))
      .end();
    const out = new Uint8Array(header.length + size);
    out.set(header);
    const view = new DataView(out.buffer, header.length);
    for (let i = 0; i < this.words.length; i++) view.setUint32(i * 4, this.words[i], true);
    return out;
  }
}

/**
 * Counts the distinct 64-bit hashes among `count` (high, low) pairs: an open-addressing set over
 * preallocated arrays, two probes on average. Sizes a bloom filter from a row group's distinct values.
 */
export function distinctHashes(high: Uint32Array, low: Uint32Array, count: number): number {
  let size = 16;
  while (size < count * 2) size *= 2;
  const mask = size - 1;
  const used = new Uint8Array(size), sh = new Uint32Array(size), sl = new Uint32Array(size);
  let distinct = 0;
  for (let k = 0; k < count; k++) {
    const h = high[k], l = low[k];
    let slot = (l ^ Math.imul(h, 0x9e3779b1)) & mask;
    for (;;) {
      if (!used[slot]) {
        used[slot] = 1, sh[slot] = h, sl[slot] = l, distinct++;
        break;
      }
      if (sh[slot] === h && sl[slot] === l) break;
      slot = (slot + 1) & mask;
    }
  }
  return distinct;
}

/** Thrift `BoundaryOrder`. */
export const UNORDERED = 0, ASCENDING = 1, DESCENDING = 2;

/** A column chunk's ColumnIndex: per data page, whether it has no values, its bounds and its null count. */
export interface ColumnIndex {
  nullPages: boolean[];
  mins: Uint8Array[];
  maxes: Uint8Array[];
  boundaryOrder: number;
  nullCounts: number[];
}

/** Serialises a ColumnIndex (parquet.thrift). */
export function columnIndexBytes(ci: ColumnIndex): Uint8Array {
  return new CompactWriter()
    .boolList(1, ci.nullPages)
    .binaryList(2, ci.mins)
    .binaryList(3, ci.maxes)
    .i32(4, ci.boundaryOrder)
    .i64List(5, ci.nullCounts)
    .end()
    .slice();
}

/** One data page in an OffsetIndex: where it starts, its size with its header, its first row in the row group. */
export interface PageLocation {
  offset: number;
  size: number;
  firstRow: number;
}

/** Serialises an OffsetIndex (parquet.thrift). */
export function offsetIndexBytes(pages: readonly PageLocation[]): Uint8Array {
  return new CompactWriter()
    .structList(1, pages, (w, p) => w.i64(1, p.offset).i32(2, p.size).i64(3, p.firstRow))
    .end()
    .slice();
}
