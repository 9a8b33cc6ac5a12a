import { strictEqual } from "node:assert/strict";
import { Murmur3x128, murmur3x128 } from "./murmur3.ts";
import { randomBytes } from "./test_samples.ts";

/** The canonical byte order: h1..h4, each little-endian. */
const hex = (h: Uint32Array) =>
  [...new Uint8Array(h.buffer, h.byteOffset, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");

Deno.test("murmur3x128() matches the reference (mmh3 5.x, hash_bytes with x64arch=False)", () => {
  const text = new TextEncoder();
  const long = new Uint8Array(768).map((_, i) => i & 0xff);
  const cases: [Uint8Array, number, string][] = [
    [new Uint8Array(0), 0, "00000000000000000000000000000000"],
    [new Uint8Array(0), 7, "5ed8450d888984fb888984fb888984fb"],
    [text.encode("a"), 0, "3c9394a71bb056551bb056551bb05655"],
    [text.encode("abc"), 7, "141a91a08cab69b48cab69b48cab69b4"],
    [text.encode("hello world"), 0, "881ab2c0e1c1f3141a150d1c2c9e0c9b"],
    [text.encode("hello world"), 7, "1777c6780b285db00c6282ae5e3804dc"],
    [text.encode("0123456789abcdef"), 0, "09447dfb0ad3ae369b1dad48fd3b2b57"],
    [text.encode("0123456789abcdefX"), 7, "2b2f33741e22374cb557db1e4a364994"],
    [long, 0, "d7c3bf1b294aad21e645dbd0fbb54091"],
    [long, 7, "53ba14842af1074a88fb6118cadfc24d"],
  ];
  for (const [bytes, seed, want] of cases) {
    strictEqual(hex(murmur3x128(bytes, seed)), want, `${bytes.length} bytes, seed ${seed}`);
  }
});

Deno.test("Murmur3x128 gives the same hash however the input is split", () => {
  const data = randomBytes(10_000, 5);
  const whole = hex(murmur3x128(data));
  for (const piece of [1, 3, 15, 16, 17, 1000]) {
    const hash = new Murmur3x128();
    for (let at = 0; at < data.length; at += piece) hash.update(data, at, Math.min(data.length, at + piece));
    strictEqual(hex(hash.digest()), whole, `pieces of ${piece}`);
  }
  const reused = new Murmur3x128(9);
  reused.update(data);
  reused.reset();
  strictEqual(hex(reused.digest()), "00000000000000000000000000000000");
});
