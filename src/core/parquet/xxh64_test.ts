import { strictEqual } from "node:assert/strict";
import { Xxh64, xxh64, xxh64Out, xxh64Range } from "./xxh64.ts";
import { randomBytes } from "../../codecs/test_samples.ts";

const hex = ([h, l]: [number, number]) => h.toString(16).padStart(8, "0") + l.toString(16).padStart(8, "0");

Deno.test("xxh64() matches the reference vectors", () => {
  const text = new TextEncoder();
  strictEqual(hex(xxh64(new Uint8Array(0))), "ef46db3751d8e999");
  strictEqual(hex(xxh64(text.encode("a"))), "d24ec4f1a98c6e5b");
  strictEqual(hex(xxh64(text.encode("abc"))), "44bc2cf5ad770999");
  strictEqual(hex(xxh64(text.encode("Nobody inspects the spammish repetition"))), "fbcea83c8a378bf1");
});

Deno.test("Xxh64 gives the same hash however the input is split", () => {
  const data = randomBytes(10_000, 3);
  const whole = hex(xxh64(data));
  for (const piece of [1, 7, 31, 32, 33, 1000]) {
    const hash = new Xxh64();
    for (let at = 0; at < data.length; at += piece) hash.update(data, at, Math.min(data.length, at + piece));
    strictEqual(hex(hash.digest()), whole, `pieces of ${piece}`);
  }
  const reused = new Xxh64();
  reused.update(data);
  reused.reset();
  strictEqual(hex(reused.digest()), "ef46db3751d8e999");
});

Deno.test("xxh64Range() hashes any slice like xxh64() of a copy", () => {
  const data = randomBytes(300, 5);
  for (let n = 0; n <= 100; n++) {
    for (const start of [0, 1, 3, 17]) {
      xxh64Range(data, start, start + n);
      strictEqual(
        hex([xxh64Out.high, xxh64Out.low]),
        hex(xxh64(data.slice(start, start + n))),
        `${n} bytes at ${start}`,
      );
    }
  }
});
