/**
 * The building blocks of the Parquet indexes on their own: truncated string bounds, the split-block
 * bloom filter (no false negatives, its false-positive rate as sized) and its serialised header.
 */
import assert from "node:assert/strict";
import {
  BLOOM_MAX_BYTES,
  BloomFilter,
  bloomFilterBytes,
  distinctHashes,
  truncateMax,
  truncateMin,
} from "./parquet_index.ts";
import { xxh64Out, xxh64Range } from "./xxh64.ts";
import { ThriftReader } from "../../../tests/support/thrift_reader.ts";

const enc = new TextEncoder(), dec = new TextDecoder();
const min = (s: string, limit: number) =>
  dec.decode(truncateMin(enc.encode(s), 0, enc.encode(s).length, limit));
const max = (s: string, limit: number) => {
  const b = truncateMax(enc.encode(s), 0, enc.encode(s).length, limit);
  return b && dec.decode(b);
};

Deno.test("short strings are their own bounds; long ones are cut, the maximum incremented", () => {
  assert.equal(min("abc", 3), "abc");
  assert.equal(max("abc", 3), "abc");
  assert.equal(min("abcdef", 3), "abc");
  assert.equal(max("abcdef", 3), "abd");
  // The last character is incremented as a character: ÿ (U+00FF, C3 BF) becomes Ā (U+0100, C4 80).
  assert.equal(max("abÿzzz", 4), "abĀ");
  assert.deepEqual([...truncateMax(enc.encode("abÿzzz"), 0, 7, 4)!], [0x61, 0x62, 0xc4, 0x80]);
  // A character that cannot grow within its length is dropped and the one before it incremented.
  assert.equal(max("a\u007fzz", 2), "b");
  assert.equal(max("a\u{10ffff}zz", 5), "b");
  assert.equal(max("x\uffffzz", 4), "y");
  // U+D7FF is followed by U+E000: surrogates are not characters.
  assert.equal(max("\ud7ffzz", 3), "\ue000");
  // Nothing can be incremented: no maximum shorter than the string.
  assert.equal(max("\u{10ffff}\u{10ffff}z", 8), null);
});

Deno.test("a cut never falls inside a character", () => {
  // "é" is two bytes: a limit of 4 on "abcé…" keeps "abc", not a broken "abc\xc3".
  assert.equal(min("abcéf", 4), "abc");
  assert.equal(max("abcéf", 4), "abd");
  assert.equal(min("ab😀x", 5), "ab");
  assert.equal(max("ab😀x", 5), "ac");
  assert.equal(min("ab😀x", 6), "ab😀");
  assert.equal(max("ab😀x", 6), "ab😁");
});

Deno.test("truncated bounds bound every string they stand for, byte for byte", () => {
  const cmp = (a: Uint8Array, b: Uint8Array) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  };
  const alphabet = ["a", "z", "\u007f", "é", "\u07ff", "ࠀ", "\uffff", "😀", "\u{10ffff}"];
  let seed = 7;
  const rand = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
  for (let t = 0; t < 3000; t++) {
    let s = "";
    for (let i = 0, n = 1 + rand(12); i < n; i++) s += alphabet[rand(alphabet.length)];
    const b = enc.encode(s), limit = 1 + rand(10);
    const lo = truncateMin(b, 0, b.length, limit), hi = truncateMax(b, 0, b.length, limit);
    assert.ok(lo.length <= limit && cmp(lo, b) <= 0, `min of ${JSON.stringify(s)}`);
    assert.doesNotThrow(() => new TextDecoder("utf-8", { fatal: true }).decode(lo));
    if (hi) {
      assert.ok(hi.length <= Math.max(limit, b.length <= limit ? b.length : 0) && cmp(hi, b) >= 0, s);
      new TextDecoder("utf-8", { fatal: true }).decode(hi);
    } else assert.ok(b.length > limit);
  }
});

function hashOf(s: string): [number, number] {
  const b = enc.encode(s);
  xxh64Range(b, 0, b.length);
  return [xxh64Out.high, xxh64Out.low];
}

Deno.test("a bloom filter finds every value put in and rejects absent ones near its sized rate", () => {
  for (const n of [100, 5_000, 50_000]) {
    const bytes = bloomFilterBytes(n, 0.01);
    const filter = new BloomFilter(bytes);
    const ids = Array.from({ length: n }, (_, i) => `present-${i.toString(16).padStart(32, "0")}`);
    for (const id of ids) filter.insert(...hashOf(id));
    for (const id of ids) assert.ok(filter.check(...hashOf(id)), `${id} in a filter of ${n}`);
    let hits = 0;
    const probes = 100_000;
    for (let i = 0; i < probes; i++) if (filter.check(...hashOf(`absent-${i}`))) hits++;
    // Sized for 1 % and rounded up to a power of two: the measured rate stays at or under about 1 %.
    assert.ok(hits / probes < 0.015, `${n} values in ${bytes} bytes: ${hits / probes} false positives`);
  }
});

Deno.test("bloom filters are sized from distinct values, in powers of two from 32 bytes to 1 MiB", () => {
  assert.equal(bloomFilterBytes(0, 0.01), 32);
  assert.equal(bloomFilterBytes(1, 0.01), 32);
  // 10,000 values at 1 %: 95,851 bits = 11,982 bytes, rounded up to 16 KiB.
  assert.equal(bloomFilterBytes(10_000, 0.01), 16384);
  assert.equal(bloomFilterBytes(131_072, 0.01), 262144);
  assert.equal(bloomFilterBytes(1e9, 0.01), BLOOM_MAX_BYTES);
  const high = new Uint32Array([1, 1, 2, 1, 0]), low = new Uint32Array([5, 5, 5, 6, 5]);
  assert.equal(distinctHashes(high, low, 5), 4);
  assert.throws(() => new BloomFilter(48), RangeError);
});

Deno.test("a serialised bloom filter is a BloomFilterHeader (BLOCK, XXHASH, UNCOMPRESSED) and the bitset", () => {
  const filter = new BloomFilter(64);
  filter.insert(...hashOf("x"));
  const bytes = filter.serialize();
  const reader = new ThriftReader(bytes);
  const header = reader.struct();
  assert.equal(header.get(1), 64);
  for (const id of [2, 3, 4]) {
    const union = header.get(id) as Map<number, unknown>;
    assert.deepEqual([...union.keys()], [1], `field ${id} holds its first (only) variant`);
  }
  assert.equal(bytes.length - reader.pos, 64);
  const words = new Uint32Array(bytes.slice(reader.pos).buffer);
  assert.deepEqual(words, filter.words);
  // One value sets one bit in each of the eight words of its block.
  assert.equal(words.reduce((n, w) => n + (w.toString(2).match(/1/g)?.length ?? 0), 0), 8);
});
