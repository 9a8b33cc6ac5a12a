import { strictEqual } from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { adler32 } from "./adler32.ts";
import { randomBytes, telemetryBytes } from "./test_samples.ts";

/** The Adler-32 a real zlib wrote into its stream's trailer. */
function zlibTrailer(data: Uint8Array): number {
  const z = deflateSync(data);
  return z.readUInt32BE(z.length - 4);
}

Deno.test('adler32() gives the well-known value for "Wikipedia" and 1 for nothing', () => {
  strictEqual(adler32(new TextEncoder().encode("Wikipedia")), 0x11e60398);
  strictEqual(adler32(new Uint8Array(0)), 1);
});

Deno.test("adler32() matches node:zlib's trailers, whole and in pieces", () => {
  for (const data of [telemetryBytes(1 << 20), randomBytes(100_000), new Uint8Array(70_000).fill(0xff)]) {
    const expected = zlibTrailer(data);
    strictEqual(adler32(data), expected);
    let running = 1;
    for (let at = 0; at < data.length; at += 7777) running = adler32(data.subarray(at, at + 7777), running);
    strictEqual(running, expected);
  }
});
