import { strictEqual } from "node:assert/strict";
// lz4js ships its own xxHash32 (the one its frame encoder uses): an independent implementation.
import lz4jsXxh32 from "lz4js/xxh32.js";
import { xxh32 } from "./xxh32.ts";
import { randomBytes } from "./test_samples.ts";

Deno.test("xxh32() gives the reference values for short inputs", () => {
  strictEqual(xxh32(new Uint8Array(0)), 0x02cc5d05);
  strictEqual(xxh32(new TextEncoder().encode("abc")), 0x32d153ff);
});

Deno.test("xxh32() agrees with lz4js's implementation at every length up to 100, with seeds", () => {
  const data = randomBytes(200, 11);
  for (const seed of [0, 1, 0x9e3779b1]) {
    for (let length = 0; length <= 100; length++) {
      const expected = lz4jsXxh32.hash(seed, data, 3, length) >>> 0;
      strictEqual(xxh32(data.subarray(3, 3 + length), seed), expected, `seed ${seed} length ${length}`);
    }
  }
  const big = randomBytes(1_000_003, 12);
  strictEqual(xxh32(big), lz4jsXxh32.hash(0, big, 0, big.length) >>> 0);
});
