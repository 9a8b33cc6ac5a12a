import { strictEqual } from "node:assert/strict";
import { crc32c } from "./crc32c.ts";
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
