import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { compress as snappyjsCompress } from "snappyjs";
import { BodyTooLargeError } from "../http/body_errors.ts";
import { crc32c } from "./crc32c.ts";
import {
  decodeFramedCounted,
  decodeSnappy,
  decodeSnappyBlock,
  decodeSnappyFramed,
  maskedCrc32c,
} from "./snappy.ts";
import { telemetryBytes, throws } from "./test_samples.ts";

const MB = 1 << 20;

function compressBlock(data: Uint8Array): Uint8Array {
  return new Uint8Array(snappyjsCompress(data) as Uint8Array);
}

/** The framing format's mask, from its spec, kept apart from the one under test. */
function mask(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

function chunk(type: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + data.length);
  out[0] = type;
  out[1] = data.length & 0xff;
  out[2] = (data.length >>> 8) & 0xff;
  out[3] = data.length >>> 16;
  out.set(data, 4);
  return out;
}

function withCrc(crc: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, crc, true);
  out.set(payload, 4);
  return out;
}

const IDENTIFIER = chunk(0xff, new TextEncoder().encode("sNaPpY"));

/** A framed stream as the spec describes: 64 KiB pieces, compressed ones from snappyjs, every
 * `storedEvery`-th stored uncompressed, each with its masked CRC-32C. */
function frame(data: Uint8Array, storedEvery = 0): Uint8Array {
  const parts = [IDENTIFIER];
  for (let at = 0, i = 1; at < data.length; at += 65536, i++) {
    const piece = data.subarray(at, at + 65536);
    const crc = mask(crc32c(piece));
    parts.push(
      storedEvery && i % storedEvery === 0
        ? chunk(0x01, withCrc(crc, piece))
        : chunk(0x00, withCrc(crc, compressBlock(piece))),
    );
  }
  return concat(parts);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("decodeSnappyBlock() round-trips snappyjs output on 1 MB of telemetry", () => {
  const data = telemetryBytes(MB);
  const compressed = compressBlock(data);
  ok(compressed.length < data.length / 2);
  deepStrictEqual(decodeSnappyBlock(compressed, MB), data);
  deepStrictEqual(decodeSnappy(compressed, MB), data);
});

Deno.test("decodeSnappyBlock() round-trips small, empty and highly repetitive inputs", () => {
  const cases = [
    new Uint8Array(0),
    new Uint8Array([42]),
    telemetryBytes(100, 2),
    new Uint8Array(100_000).fill(7), // offset-1 overlapping copies
    new TextEncoder().encode("ab".repeat(50_000) + "abc".repeat(30_000)),
  ];
  for (const data of cases) deepStrictEqual(decodeSnappyBlock(compressBlock(data), 1 << 20), data);
});

Deno.test("decodeSnappyFramed() decodes a spec-built stream with compressed, stored, padding and skippable chunks", () => {
  const data = telemetryBytes(MB, 3);
  const framed = frame(data, 3);
  deepStrictEqual(decodeSnappyFramed(framed, MB), data);
  deepStrictEqual(decodeSnappy(framed, MB), data);
  const extras = concat([
    frame(data.subarray(0, 1000)),
    chunk(0xfe, new Uint8Array(10)), // padding
    chunk(0x80, new Uint8Array(3)), // reserved skippable
    frame(data.subarray(1000, 2000)), // a second stream, concatenated
  ]);
  deepStrictEqual(decodeSnappy(extras, MB), data.subarray(0, 2000));
  deepStrictEqual(decodeSnappy(IDENTIFIER, MB), new Uint8Array(0));
});

Deno.test("maskedCrc32c() follows the framing format's definition", () => {
  const data = telemetryBytes(1000, 4);
  strictEqual(maskedCrc32c(data), mask(crc32c(data)));
});

Deno.test("decodeSnappy() refuses a lying preamble before allocating", () => {
  // Preamble says 10 MB; the limit is 1 MB: refused on the preamble alone.
  const lying = new Uint8Array([0x80, 0xad, 0xe2, 0x04, 0x00, 0x41]);
  const error = throws(() => decodeSnappy(lying, MB), BodyTooLargeError);
  strictEqual(error.limit, MB);
  // Within the limit but impossible for 2 bytes of data: invalid, not a 1 MB allocation.
  throws(() => decodeSnappy(new Uint8Array([0x80, 0x80, 0x20, 0x00, 0x41]), 2 * MB), SyntaxError);
  // A real stream of 10 MB of zeros (~470 KB of snappy) against a 1 MB limit.
  throws(() => decodeSnappy(compressBlock(new Uint8Array(10 * MB)), MB), BodyTooLargeError);
});

Deno.test("decodeSnappyFramed() enforces the limit across chunks", () => {
  const data = telemetryBytes(300_000, 5);
  throws(() => decodeSnappy(frame(data), 200_000), BodyTooLargeError);
  throws(() => decodeSnappy(frame(data, 1), 200_000), BodyTooLargeError);
  deepStrictEqual(decodeSnappy(frame(data), 300_000), data);
});

Deno.test("decodeSnappyBlock() rejects every truncation of a block with SyntaxError", () => {
  const compressed = compressBlock(telemetryBytes(5000, 6));
  for (let cut = 0; cut < compressed.length; cut++) {
    throws(() => decodeSnappyBlock(compressed.subarray(0, cut), MB), SyntaxError);
  }
});

Deno.test("decodeSnappyBlock() rejects bad elements with SyntaxError", () => {
  // offset 0; offset beyond the output; literal longer than the input; output longer than declared.
  for (
    const bad of [
      [0x05, 0x00, 0x61, 0x01, 0x00],
      [0x08, 0x00, 0x61, 0x0d, 0x05],
      [0x05, 0x10, 0x61],
      [0x01, 0x04, 0x61, 0x62],
      [0x80, 0x80, 0x80, 0x80, 0x7f], // preamble over 32 bits
    ]
  ) {
    throws(() => decodeSnappyBlock(new Uint8Array(bad), MB), SyntaxError);
  }
});

Deno.test("decodeSnappyFramed() rejects corrupt, truncated and malformed streams with SyntaxError", () => {
  const data = telemetryBytes(200_000, 8);
  const framed = frame(data, 2);
  for (const at of [20, 1000, 70_000, framed.length - 5]) {
    const corrupt = framed.slice();
    corrupt[at] ^= 0x10;
    throws(() => decodeSnappyFramed(corrupt, MB), SyntaxError);
  }
  for (const cut of [11, 14, 100, 70_000, framed.length - 1]) {
    throws(() => decodeSnappyFramed(framed.subarray(0, cut), MB), SyntaxError);
  }
  const body = framed.subarray(IDENTIFIER.length);
  throws(() => decodeSnappyFramed(body, MB), SyntaxError, "stream identifier");
  throws(() => decodeSnappyFramed(concat([IDENTIFIER, chunk(0x02, new Uint8Array(4))]), MB), SyntaxError);
  const big = new Uint8Array(65537);
  throws(
    () => decodeSnappyFramed(concat([IDENTIFIER, chunk(0x01, withCrc(mask(crc32c(big)), big))]), MB),
    SyntaxError,
    "65536",
  );
});

Deno.test("decodeSnappyFramed() costs linear work on streams of tiny and empty chunks", () => {
  // 100,000 empty compressed chunks, then one byte each: no per-chunk array, geometric growth.
  const empty = chunk(0x00, withCrc(mask(crc32c(new Uint8Array(0))), new Uint8Array([0x00])));
  const one = chunk(0x01, withCrc(mask(crc32c(new Uint8Array([7]))), new Uint8Array([7])));
  const parts = [IDENTIFIER];
  for (let i = 0; i < 100_000; i++) parts.push(i % 2 ? one : empty);
  const input = concat(parts);
  const { output, allocated } = decodeFramedCounted(input, 64 * MB);
  strictEqual(output.length, 50_000);
  ok(output.every((b) => b === 7));
  ok(allocated <= 2 * input.length + 4 * output.length, `${allocated} bytes allocated`);
  // A 64 KiB chunk then a thousand 1-byte ones (the LZ4 attack's shape): still linear.
  const big = new Uint8Array(65536).fill(1);
  const mixed = [IDENTIFIER, chunk(0x00, withCrc(mask(crc32c(big)), compressBlock(big)))];
  for (let i = 0; i < 1000; i++) mixed.push(one);
  const r = decodeFramedCounted(concat(mixed), 64 * MB);
  strictEqual(r.output.length, 65536 + 1000);
  ok(r.allocated <= 8 * r.output.length, `${r.allocated} bytes allocated`);
});
