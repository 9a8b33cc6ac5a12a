import { strictEqual } from "node:assert/strict";
import { crc32c, crc32cCombine } from "./crc32c.ts";
import { randomBytes } from "./test_samples.ts";

const ascii = (s: string) => new TextEncoder().encode(s);

/** The CRC-32C definition, one bit at a time: the reference the fast version must agree with. */
function bitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

Deno.test('crc32c() gives the published check value for "123456789"', () => {
  strictEqual(crc32c(ascii("123456789")), 0xe3069283);
  strictEqual(crc32c(new Uint8Array(0)), 0);
});

Deno.test("crc32c() matches the RFC 3720 (iSCSI) test vectors", () => {
  strictEqual(crc32c(new Uint8Array(32)), 0x8a9136aa);
  strictEqual(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  strictEqual(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  strictEqual(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

Deno.test("crc32c() agrees with the bitwise definition at every length and alignment", () => {
  const data = randomBytes(300, 3);
  for (let offset = 0; offset < 8; offset++) {
    for (let length = 0; length <= 200; length++) {
      const view = data.subarray(offset, offset + length);
      strictEqual(crc32c(view), bitwise(view), `offset ${offset} length ${length}`);
    }
  }
});

Deno.test("crc32c() continues from a previous CRC", () => {
  const data = randomBytes(10_000, 5);
  const whole = crc32c(data);
  for (const cut of [0, 1, 7, 8, 9, 4096, 9999, 10_000]) {
    strictEqual(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), whole, `cut at ${cut}`);
  }
});

Deno.test("crc32cCombine() gives the CRC of the concatenation, at every split and length", () => {
  const data = randomBytes(2_000, 11);
  for (const total of [0, 1, 7, 8, 9, 63, 64, 65, 1_000, 2_000]) {
    const whole = crc32c(data.subarray(0, total));
    for (
      const split of new Set(
        [0, 1, Math.floor(total / 3), total - 1, total].filter((s) => s >= 0 && s <= total),
      )
    ) {
      const a = data.subarray(0, split), b = data.subarray(split, total);
      strictEqual(crc32cCombine(crc32c(a), crc32c(b), b.length), whole, `total ${total} split ${split}`);
    }
  }
  // A 4 MiB part combines like four appends of 1 MiB of zeros.
  const zeros = new Uint8Array(1 << 20);
  let viaAppend = crc32c(ascii("head"));
  for (let i = 0; i < 4; i++) viaAppend = crc32c(zeros, viaAppend);
  strictEqual(crc32cCombine(crc32c(ascii("head")), crc32c(new Uint8Array(4 << 20)), 4 << 20), viaAppend);
});
