import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import lz4js from "lz4js";
import { BodyTooLargeError } from "../http/body_errors.ts";
import fc from "fast-check";
import { decodeLz4, decodeLz4Block, decodeLz4Frames, decodeLz4FramesCounted } from "./lz4.ts";
import { xxh32 } from "./xxh32.ts";
import { randomBytes, runCli, telemetryBytes, throws } from "./test_samples.ts";
import { sizedFrame, zerosBlock } from "./lz4_samples.ts";

const MB = 1 << 20;

function lz4jsFrame(data: Uint8Array): Uint8Array {
  return new Uint8Array(lz4js.compress(data));
}

/** A raw LZ4 block from lz4js's block compressor (no frame). */
function lz4jsBlock(data: Uint8Array): Uint8Array {
  const dst = new Uint8Array(lz4js.compressBound(data.length));
  const size = lz4js.compressBlock(data, dst, 0, data.length, new Uint32Array(1 << 16));
  return dst.subarray(0, size);
}

/** The lz4 CLI (1.9.x), the reference encoder, with the given frame options. */
function lz4Cli(data: Uint8Array, ...args: string[]): Uint8Array {
  return runCli("lz4", ["-q", "-c", ...args], data);
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

Deno.test("decodeLz4() round-trips lz4js frames (linked blocks) on 1 MB of telemetry", () => {
  const data = telemetryBytes(MB);
  const framed = lz4jsFrame(data);
  ok(framed.length < data.length / 2);
  strictEqual(framed[4] & 0x20, 0, "lz4js writes linked (dependent) blocks");
  deepStrictEqual(decodeLz4(framed, MB), data);
  deepStrictEqual(decodeLz4Frames(framed, MB), data);
});

Deno.test("decodeLz4() round-trips the lz4 CLI's frames in every option combination", () => {
  const data = concat([telemetryBytes(700_000, 2), randomBytes(100_000), new Uint8Array(200_000)]);
  const variants = [
    [], // independent 4 MiB blocks, content checksum
    ["-BD"], // linked blocks
    ["-B4", "-BX"], // 64 KiB blocks with block checksums
    ["-B5", "--content-size"],
    ["-B6", "--no-frame-crc", "-BD"],
    ["-9", "-B4", "-BD", "-BX", "--content-size"],
  ];
  for (const args of variants) {
    deepStrictEqual(decodeLz4(lz4Cli(data, ...args), MB), data, args.join(" "));
  }
});

Deno.test("decodeLz4() handles empty input frames, concatenated and skippable frames", () => {
  const a = telemetryBytes(50_000, 3);
  const b = telemetryBytes(70_000, 4);
  const skippable = new Uint8Array([0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
  const joined = concat([lz4jsFrame(a), skippable, lz4Cli(b, "--content-size"), lz4Cli(new Uint8Array(0))]);
  deepStrictEqual(decodeLz4(joined, MB), concat([a, b]));
  deepStrictEqual(decodeLz4(lz4Cli(new Uint8Array(0)), MB), new Uint8Array(0));
});

Deno.test("decodeLz4() falls back to the raw block format without a frame magic", () => {
  for (const data of [telemetryBytes(MB, 5), new Uint8Array(300_000).fill(9), telemetryBytes(100, 6)]) {
    const block = lz4jsBlock(data);
    ok(block.length > 0 && block.length < data.length);
    deepStrictEqual(decodeLz4Block(block, MB), data);
    deepStrictEqual(decodeLz4(block, MB), data);
  }
  // The empty block is one token with no literals (lz4js writes nothing for it).
  deepStrictEqual(decodeLz4(new Uint8Array([0x00]), MB), new Uint8Array(0));
});

Deno.test("decodeLz4() stops a bomb at the limit: frames, content size claims and raw blocks", () => {
  const zeros = new Uint8Array(10 * MB);
  const frame = lz4Cli(zeros);
  ok(frame.length < 100_000);
  strictEqual(throws(() => decodeLz4(frame, MB), BodyTooLargeError).limit, MB);
  throws(() => decodeLz4(lz4jsFrame(zeros), MB), BodyTooLargeError);
  throws(() => decodeLz4(lz4jsBlock(zeros), MB), BodyTooLargeError);
  // A declared content size over the limit is refused on the header alone.
  const sized = lz4Cli(zeros, "--content-size");
  throws(() => decodeLz4(sized.subarray(0, 20), MB), BodyTooLargeError);
});

Deno.test("decodeLz4() refuses a content size the input cannot produce before allocating it", () => {
  // Header: version 01, content size flag; 64 KiB blocks; content size 2 MB; then one tiny block.
  const descriptor = new Uint8Array([0x48, 0x40, 0x00, 0x00, 0x20, 0x00, 0, 0, 0, 0]);
  const hc = (xxh32(descriptor) >>> 8) & 0xff;
  const frame = concat([
    new Uint8Array([0x04, 0x22, 0x4d, 0x18]),
    descriptor,
    new Uint8Array([hc, 1, 0, 0, 0x80, 0x41, 0, 0, 0, 0]),
  ]);
  throws(() => decodeLz4(frame, 4 * MB), SyntaxError, "impossible");
});

Deno.test("decodeLz4() rejects every truncation of a frame with SyntaxError", () => {
  const framed = lz4Cli(telemetryBytes(3000, 6), "-BX", "--content-size");
  for (let cut = 4; cut < framed.length; cut++) {
    throws(() => decodeLz4(framed.subarray(0, cut), MB), SyntaxError);
  }
});

Deno.test("decodeLz4() rejects corrupt frames: header, block and content checksums, bad offsets", () => {
  const data = telemetryBytes(200_000, 7);
  const checked = lz4Cli(data, "-B4", "-BX");
  for (const at of [5, 6, 200, 5000, checked.length - 2]) {
    const corrupt = checked.slice();
    corrupt[at] ^= 0x04;
    throws(() => decodeLz4(corrupt, MB), SyntaxError);
  }
  // Without block checksums, a flipped literal byte is caught by the content checksum.
  const plain = lz4Cli(data, "-B4");
  const corrupt = plain.slice();
  corrupt[12] ^= 0x01;
  throws(() => decodeLz4(corrupt, MB), SyntaxError);
  // Raw blocks: an offset of 0, an offset before the start, a block ending on a match.
  for (const bad of [[0x10, 0x41, 0x00, 0x00], [0x10, 0x41, 0x05, 0x00], [0x14, 0x41, 0x01, 0x00]]) {
    throws(() => decodeLz4Block(new Uint8Array(bad), MB), SyntaxError);
  }
  throws(() => decodeLz4Frames(new Uint8Array([1, 2, 3, 4, 5]), MB), SyntaxError, "magic");
});

Deno.test("decodeLz4() keeps independent blocks from reaching into the previous block", () => {
  // Independent 64 KiB blocks: a match in block 2 pointing into block 1 is invalid.
  const descriptor = new Uint8Array([0x60, 0x40]);
  const hc = (xxh32(descriptor) >>> 8) & 0xff;
  const first = new Uint8Array(16).fill(0x61);
  const block2 = new Uint8Array([0x10, 0x62, 0x08, 0x00, 0x00]); // "b", then copy offset 8
  const u32 = (n: number) => new Uint8Array([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]);
  const frame = (flg: number) =>
    concat([
      new Uint8Array([0x04, 0x22, 0x4d, 0x18, flg, 0x40, (xxh32(new Uint8Array([flg, 0x40])) >>> 8) & 0xff]),
      u32(0x80000000 | first.length),
      first,
      u32(block2.length),
      block2,
      u32(0),
    ]);
  strictEqual(frame(0x60)[6], hc);
  throws(() => decodeLz4(frame(0x60), MB), SyntaxError, "window");
  // The same data with linked blocks is valid: 16 a's, b, then 4 more bytes from 8 back.
  deepStrictEqual(decodeLz4(frame(0x40), MB), new TextEncoder().encode("a".repeat(16) + "b" + "a".repeat(4)));
});

Deno.test("decodeLz4() grows geometrically: a big frame then many one-byte frames cost linear copying", () => {
  // The measured attack at CI size: a 4 MiB frame, then 1,000 frames each declaring 1 byte. With an
  // exact reallocation per declared size this copied 4 GB; growth must stay a small multiple of output.
  const big = 4 * MB;
  const frames = [sizedFrame(big, [zerosBlock(big)])];
  for (let i = 0; i < 1000; i++) frames.push(sizedFrame(1, [new Uint8Array([0x10, 0x61])]));
  const input = concat(frames);
  const { output, allocated, copied } = decodeLz4FramesCounted(input, 8 * MB);
  strictEqual(output.length, big + 1000);
  ok(allocated <= 4 * output.length, `allocated ${allocated} for ${output.length}`);
  ok(copied <= 2 * output.length, `copied ${copied} for ${output.length}`);
});

Deno.test("decodeLz4() treats a declared content size as a hint: lying sizes cost no more than honest ones", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 3000 })), {
        minLength: 1,
        maxLength: 60,
      }),
      (specs) => {
        // Each frame: `real` bytes as one stored block, declaring `declared` bytes.
        const input = concat(
          specs.map(([real, declared]) =>
            sizedFrame(declared, real > 0 ? [new Uint8Array(real).fill(7)] : [], true)
          ),
        );
        let result;
        try {
          result = decodeLz4FramesCounted(input, MB);
        } catch (e) {
          ok(e instanceof SyntaxError || e instanceof BodyTooLargeError, String(e));
          ok(specs.some(([real, declared]) => real !== declared));
          return;
        }
        ok(specs.every(([real, declared]) => real === declared));
        const produced = result.output.length;
        ok(result.allocated <= 4 * produced + 8192, `allocated ${result.allocated} for ${produced}`);
        ok(result.copied <= 2 * produced, `copied ${result.copied} for ${produced}`);
      },
    ),
    { numRuns: 200 },
  );
});
