import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { constants, zstdCompressSync } from "node:zlib";
import fc from "fast-check";
import { concatBytes } from "../core/parquet/byte_sink.ts";
import { BodyTooLargeError } from "../http/body_errors.ts";
import { ZstdStreamDecoder } from "./zstd.ts";
import { randomBytes, runCli, telemetryBytes, throws } from "./test_samples.ts";
import {
  blockHeader,
  frameHeader,
  HISTORY,
  le32,
  longRun,
  rawBlock,
  rleBlock,
  rleSequencesBlock,
  tableHeavyBlock,
} from "./zstd_samples.ts";

const KB = 1024;
const MB = 1 << 20;
const MAX_BLOCK = 128 * KB;

/**
 * The bound every input must respect, in the decoder's work units: a small multiple of the bytes in
 * and out, plus one block's worth (a refused block may have done up to that much before refusal).
 * The input factor covers table builds: a few bytes can describe a 512-entry FSE table or a
 * 2048-entry Huffman table, so each input byte may cost a few hundred units (all typed-array fills).
 */
const WORK_PER_OUTPUT = 4;
const WORK_PER_INPUT = 512;
const WORK_CONSTANT = 4 * MAX_BLOCK;

interface Decoded {
  output?: Uint8Array;
  error?: unknown;
  work: number;
  allocated: number;
  produced: number;
  /** How many arrays `onData` received. */
  pieces: number;
}

/** Decodes `input` pushed in `piece`-byte chunks, recording the outcome and the counters. */
function decode(input: Uint8Array, maxBytes = 64 * MB, piece = 65536): Decoded {
  const parts: Uint8Array[] = [];
  const decoder = new ZstdStreamDecoder(maxBytes, (c) => parts.push(c));
  try {
    for (let at = 0; at < input.length; at += piece) decoder.push(input.subarray(at, at + piece));
    decoder.finish();
  } catch (error) {
    const { work, allocated, total } = decoder;
    return { error, work, allocated, produced: total, pieces: parts.length };
  }
  const output = concat(parts);
  return {
    output,
    work: decoder.work,
    allocated: decoder.allocated,
    produced: output.length,
    pieces: parts.length,
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts, parts.reduce((n, p) => n + p.length, 0));
}

function assertBounded(input: Uint8Array, result: Decoded, label = ""): void {
  const limit = WORK_PER_INPUT * input.length + WORK_PER_OUTPUT * result.produced + WORK_CONSTANT;
  ok(
    result.work <= limit,
    `${label}: ${result.work} work units for ${input.length} in, ${result.produced} out`,
  );
  ok(
    result.allocated <= 4 * result.produced + 8 * MAX_BLOCK,
    `${label}: ${result.allocated} bytes allocated for ${result.produced} out`,
  );
}

function assertDecodes(input: Uint8Array, expected: Uint8Array, label: string, piece?: number): Decoded {
  const result = decode(input, 64 * MB, piece);
  if (result.error) throw new Error(`${label}: ${result.error}`, { cause: result.error });
  strictEqual(result.output!.length, expected.length, label);
  ok(result.output!.every((b, i) => b === expected[i]), `${label}: output differs`);
  assertBounded(input, result, label);
  return result;
}

function zstd(data: Uint8Array, level: number, checksum: boolean): Uint8Array {
  const params = {
    [constants.ZSTD_c_compressionLevel]: level,
    [constants.ZSTD_c_checksumFlag]: checksum ? 1 : 0,
  };
  const out = zstdCompressSync(data, { params } as Parameters<typeof zstdCompressSync>[1]);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

// ---- Real frames ----

Deno.test("ZstdStreamDecoder round-trips node:zlib frames at every level, with and without checksums", () => {
  const samples: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["1 byte", new Uint8Array([42])],
    ["telemetry 700 B", telemetryBytes(700, 2)],
    ["telemetry 100 KB", telemetryBytes(100_000, 3)],
    ["random 70 KB", randomBytes(70_000)],
    ["zeros 300 KB", new Uint8Array(300_000)],
    ["mixed 400 KB", concat([telemetryBytes(200_000, 4), randomBytes(50_000, 5), new Uint8Array(150_000)])],
  ];
  for (const [name, data] of samples) {
    for (let level = 1; level <= 19; level++) {
      for (const checksum of [false, true]) {
        const label = `${name}, level ${level}, checksum ${checksum}`;
        assertDecodes(zstd(data, level, checksum), data, label, 1 + ((level * 7919) % 70_000));
      }
    }
  }
});

Deno.test("ZstdStreamDecoder round-trips multi-MiB bodies, negative levels, and long windows", () => {
  const data = concat([telemetryBytes(3 * MB, 6), telemetryBytes(MB, 6)]); // a repeat 3 MiB back
  for (const level of [-5, 1, 3, 9, 19]) {
    assertDecodes(zstd(data, level, true), data, `4 MiB, level ${level}`);
  }
  // The CLI: no content size (a windowed frame), a 128 MiB window, and the default checksum.
  assertDecodes(runCli("zstd", ["-q", "-c", "-3", "--no-content-size"], data), data, "CLI no size");
  assertDecodes(runCli("zstd", ["-q", "-c", "-5", "--long=27"], data), data, "CLI --long=27");
});

Deno.test("ZstdStreamDecoder decodes concatenated and skippable frames, in pieces of any size", () => {
  const a = telemetryBytes(150_000, 7);
  const b = randomBytes(5_000, 8);
  const skippable = new Uint8Array([0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
  const input = concat([zstd(a, 3, true), skippable, zstd(new Uint8Array(0), 1, false), zstd(b, 19, false)]);
  for (const piece of [1, 3, 1000, input.length]) {
    assertDecodes(input, concat([a, b]), `pieces of ${piece}`, piece);
  }
});

// ---- Checksums and corruption ----

Deno.test("ZstdStreamDecoder verifies the content checksum: a corrupted body is refused, never returned", () => {
  const data = telemetryBytes(50_000, 9);
  const framed = zstd(data, 3, true);
  // The checksum itself.
  const flipped = framed.slice();
  flipped[flipped.length - 1] ^= 1;
  throws(
    () => {
      const r = decode(flipped);
      if (r.error) throw r.error;
    },
    SyntaxError,
    "checksum",
  );
  // Any single-byte change: refused, or (never) returned different.
  const random = randomBytes(400, 10);
  for (let i = 0; i < 400; i++) {
    const at = Math.floor((random[i] / 256) * framed.length);
    const corrupt = framed.slice();
    corrupt[at] ^= 1 + (i % 255);
    const r = decode(corrupt);
    if (r.error === undefined) deepStrictEqual(r.output, data, `byte ${at} changed, output accepted`);
    else ok(r.error instanceof SyntaxError || r.error instanceof BodyTooLargeError, String(r.error));
    assertBounded(corrupt, r, `corrupt byte ${at}`);
  }
});

Deno.test("ZstdStreamDecoder rejects every truncation with SyntaxError", () => {
  const framed = zstd(telemetryBytes(20_000, 11), 19, true);
  for (let cut = 1; cut < framed.length; cut += 7) {
    const r = decode(framed.subarray(0, cut));
    ok(r.error instanceof SyntaxError, `cut at ${cut}: ${r.error}`);
  }
});

// ---- Hostile frames, by construction ----

Deno.test("ZstdStreamDecoder refuses the 18-byte attack (98,047 long RLE matches) before copying", () => {
  // One block declaring 98,047 sequences of 65,539-byte matches (ML code 52; its 16 extra bits read
  // as zeros past the stream's start). fzstd executed all of them: 454 s of event loop.
  const input = longRun(98_047, { ml: 52 });
  const r = decode(input);
  ok(r.error instanceof SyntaxError, String(r.error));
  ok(String(r.error).includes("98047 sequences cannot fit"), String(r.error));
  strictEqual(r.produced, HISTORY.length);
  ok(r.work < 1000, `${r.work} work units`);
  // Fewer sequences, so the count alone passes: refused at the first one past the block's end.
  const r2 = decode(longRun(40_000, { ml: 52 }));
  ok(r2.error instanceof SyntaxError && String(r2.error).includes("block maximum"), String(r2.error));
  ok(r2.work < 40_000 + 2 * MAX_BLOCK, `${r2.work} work units`);
});

Deno.test("ZstdStreamDecoder decodes a block of the most sequences it may hold, and refuses one more", () => {
  // 3855 matches of 34 bytes = 131,070 bytes: a legitimate ~4,000:1 block.
  const fits = decode(longRun(3855));
  ok(fits.error === undefined, String(fits.error));
  strictEqual(fits.produced, HISTORY.length + 3855 * 34);
  assertBounded(longRun(3855), fits, "3855 sequences");
  // One more sequence passes the count check (3 bytes each) but not the block's room.
  const over = decode(longRun(3856));
  ok(over.error instanceof SyntaxError && String(over.error).includes("block maximum"), String(over.error));
  strictEqual(over.produced, HISTORY.length, "nothing of the refused block is handed on");
  assertBounded(longRun(3856), over, "3856 sequences");
  // Minimal matches: 43,690 sequences of 3 bytes fit exactly; 43,691 are refused on the count alone.
  const most = decode(longRun(43_690, { ml: 0 }));
  strictEqual(most.produced, HISTORY.length + 131_070, String(most.error));
  const tooMany = decode(longRun(43_691, { ml: 0 }));
  ok(String(tooMany.error).includes("43691 sequences cannot fit"), String(tooMany.error));
  ok(tooMany.work < 1000, `${tooMany.work} work units`);
});

Deno.test("ZstdStreamDecoder checks declared content sizes against what the frame produces", () => {
  const frame = (declared: number, blocks: number[]) =>
    new Uint8Array([...frameHeader({ contentSize: declared }), ...blocks]);
  deepStrictEqual(decode(frame(5, rawBlock([1, 2, 3, 4, 5], true))).output, new Uint8Array([1, 2, 3, 4, 5]));
  // More than declared: refused at the first block past it (the block maximum is the content size).
  ok(decode(frame(5, rleBlock(7, 100_000, true))).error instanceof SyntaxError);
  // Less than declared.
  ok(String(decode(frame(500, rawBlock([1], true))).error).includes("declares 500"));
  // Over the limit on the header alone, before any block.
  const big = decode(frame(10 * MB, rleBlock(0, 10, true)), MB);
  ok(big.error instanceof BodyTooLargeError);
  strictEqual(big.allocated, 0);
});

Deno.test("ZstdStreamDecoder keeps memory to the budget whatever window a frame declares", () => {
  // A 2 TiB window and a stream of RLE blocks: the window kept is bounded by what may be decoded.
  const blocks: number[] = [];
  for (let i = 0; i < 40; i++) blocks.push(...rleBlock(i, MAX_BLOCK, i === 39));
  const input = new Uint8Array([...frameHeader({ descriptor: 0xf8 }), ...blocks]);
  const r = decode(input, 2 * MB);
  ok(r.error instanceof BodyTooLargeError);
  ok(r.allocated <= 8 * MB, `${r.allocated} bytes allocated`);
  const fine = decode(input, 16 * MB);
  strictEqual(fine.produced, 40 * MAX_BLOCK);
  assertBounded(input, fine, "windowed RLE blocks");
});

Deno.test("ZstdStreamDecoder: many tiny frames and empty blocks cost work linear in the input", () => {
  const empty = [...frameHeader({ contentSize: 0 }), ...rawBlock([], true)];
  const frames: number[] = [];
  for (let i = 0; i < 20_000; i++) frames.push(...empty);
  const input = new Uint8Array(frames);
  const r = decode(input);
  strictEqual(r.produced, 0, String(r.error));
  ok(r.work <= 2 * input.length, `${r.work} work units for ${input.length} bytes`);
  // One frame of 50,000 one-byte blocks: handed on in a few large pieces, not 50,000 arrays.
  const blocks: number[] = [...frameHeader({ descriptor: 0x50 })];
  for (let i = 0; i < 50_000; i++) blocks.push(...rawBlock([i & 0xff], i === 49_999));
  const many = new Uint8Array(blocks);
  const r2 = decode(many, 64 * MB, many.length);
  strictEqual(r2.produced, 50_000, String(r2.error));
  ok(r2.work <= 3 * many.length + WORK_CONSTANT, `${r2.work} work units for ${many.length} bytes`);
  ok(r2.pieces <= 2, `${r2.pieces} pieces`);
});

Deno.test("ZstdStreamDecoder refuses repeat modes and treeless literals without a previous table", () => {
  const repeat = new Uint8Array([
    ...frameHeader({ descriptor: 0x50 }),
    ...blockHeader(2, 5, true),
    0x00, // no literals
    0x01, // one sequence
    0xfc, // all three repeat
    0x01,
    0x00,
  ]);
  ok(String(decode(repeat).error).includes("without a previous one"));
});

/** A random frame built from the format's parts, sized and counted at random. */
const hostileFrame = fc.record({
  header: fc.oneof(
    fc.record({ descriptor: fc.integer({ min: 0, max: 255 }), checksum: fc.boolean() }),
    fc.record({ contentSize: fc.integer({ min: 0, max: 400_000 }), checksum: fc.boolean() }),
  ),
  blocks: fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant("raw"), size: fc.integer({ min: 0, max: 300 }) }),
      fc.record({
        kind: fc.constant("rle"),
        size: fc.oneof(fc.integer({ min: 0, max: 140_000 }), fc.nat(0x1fffff)),
      }),
      fc.record({
        kind: fc.constant("seq"),
        literals: fc.integer({ min: 0, max: 64 }),
        nbSeq: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 98_047 })),
        modes: fc.oneof(fc.constant(0x54), fc.integer({ min: 0, max: 255 })), // mostly all-RLE
        codes: fc.tuple(fc.nat(38), fc.nat(33), fc.nat(55)), // mostly in range
        bitstream: fc.uint8Array({ minLength: 0, maxLength: 24 }),
      }),
    ),
    { minLength: 1, maxLength: 6 },
  ),
  checksum: fc.nat(),
});

type HostileFrame = typeof hostileFrame extends fc.Arbitrary<infer T> ? T : never;

function buildHostile(frames: HostileFrame[], seed: number): Uint8Array {
  const bytes: number[] = [];
  for (const { header, blocks, checksum } of frames) {
    bytes.push(...frameHeader(header));
    blocks.forEach((b, i) => {
      const last = i === blocks.length - 1;
      if (b.kind === "raw") {
        bytes.push(...rawBlock(Array.from({ length: b.size }, (_, k) => (k * seed) & 0xff), last));
      } else if (b.kind === "rle") bytes.push(...rleBlock(seed & 0xff, b.size, last));
      else {
        const literals = Array.from({ length: b.literals }, (_, k) => (k + seed) & 0xff);
        const block = rleSequencesBlock({
          literals,
          nbSeq: b.nbSeq,
          // Modes other than RLE (predefined, FSE, repeat) read the same bytes differently: fine.
          modes: b.modes & 0xfc,
          ll: b.codes[0],
          of: b.codes[1],
          ml: b.codes[2],
          bitstream: [...b.bitstream],
          last,
        });
        bytes.push(...block);
      }
    });
    if ("checksum" in header && header.checksum) bytes.push(...le32(checksum));
  }
  return new Uint8Array(bytes);
}

Deno.test("ZstdStreamDecoder fuzz: hostile frames built by construction stay within the work bound", () => {
  fc.assert(
    fc.property(
      fc.array(hostileFrame, { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 1, max: 255 }),
      fc.integer({ min: 1_000, max: 4 * MB }),
      (frames, seed, maxBytes) => {
        const input = buildHostile(frames, seed);
        const r = decode(input, maxBytes, 1 + (seed * 31) % 500);
        if (r.error !== undefined) {
          ok(r.error instanceof SyntaxError || r.error instanceof BodyTooLargeError, String(r.error));
        }
        ok(r.produced <= maxBytes);
        assertBounded(input, r, "fuzz");
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("ZstdStreamDecoder fuzz: real frames with bytes changed never return wrong data", () => {
  const data = telemetryBytes(30_000, 12);
  const framed = [zstd(data, 1, true), zstd(data, 9, true), zstd(data, 19, true)];
  fc.assert(
    fc.property(
      fc.nat(2),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
      (which, edits) => {
        const corrupt = framed[which].slice();
        for (const [at, x] of edits) corrupt[at % corrupt.length] ^= x;
        const r = decode(corrupt);
        if (r.error === undefined) deepStrictEqual(r.output, data);
        else ok(r.error instanceof SyntaxError || r.error instanceof BodyTooLargeError, String(r.error));
        assertBounded(corrupt, r, "mutated");
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("ZstdStreamDecoder: blocks that rebuild every table are held to the output they make", () => {
  // Valid 21-byte blocks, each rebuilding a 2048-entry Huffman table and three FSE tables for 4 bytes
  // of output. A few hundred fit the per-body allowance; a stream of them is refused once table
  // building passes 32 entries per output byte plus the allowance, which bounds its cost.
  const stream = (n: number) => {
    const blocks: number[] = [...frameHeader({ descriptor: 0x50 }), ...rawBlock(HISTORY)];
    for (let i = 0; i < n; i++) blocks.push(...tableHeavyBlock(i === n - 1));
    return new Uint8Array(blocks);
  };
  const few = decode(stream(200));
  strictEqual(few.produced, HISTORY.length + 200 * 4, String(few.error));
  ok(few.work >= 200 * 3000, "the counter sees the table builds");
  const input = stream(20_000);
  const many = decode(input);
  ok(String(many.error).includes("tables rebuilt far more often"), String(many.error));
  ok(many.work <= 2 * (1 << 20), `${many.work} work units`);
  assertBounded(input, many, "table-heavy blocks");
});

Deno.test("ZstdStreamDecoder pauses after 1 MiB of output from one push, and resumes", () => {
  // 2.4 KB that decode to 26 MiB: one push must not run them all at once.
  const blocks: number[] = [...frameHeader({ descriptor: 0x50 }), ...rawBlock(HISTORY)];
  for (let i = 0; i < 200; i++) blocks.push(...longRun(43_690, { ml: 0, last: false }).subarray(17));
  blocks.push(...rawBlock([], true));
  const input = new Uint8Array(blocks);
  let produced = 0;
  const decoder = new ZstdStreamDecoder(64 * MB, (c) => produced += c.length);
  decoder.push(input);
  const pieces = [produced];
  while (decoder.paused) {
    decoder.resume();
    pieces.push(produced - pieces.reduce((a, b) => a + b, 0));
  }
  decoder.finish();
  strictEqual(produced, HISTORY.length + 200 * 131_070);
  ok(pieces.length >= 6, `${pieces.length} pieces`);
  ok(pieces.every((n) => n <= MB + MAX_BLOCK), `pieces ${pieces}`);
  // A caller that ignores the pause loses nothing: finish() carries on.
  const lazy = decode(input, 64 * MB, input.length);
  strictEqual(lazy.produced, produced);
});

Deno.test("ZstdStreamDecoder round-trips the zstd CLI's unusual settings: tiny windows, --ultra, --fast, small jobs", () => {
  const data = concat([telemetryBytes(300_000, 3), randomBytes(20_000), telemetryBytes(100_000, 4)]);
  const variants = [
    ["--zstd=wlog=10", "--no-content-size"], // 1 KiB window: 1 KiB blocks
    ["-19", "--zstd=wlog=12", "--no-content-size"],
    ["--ultra", "-22"],
    ["--fast=10"],
    ["-1", "--zstd=strategy=1"],
    ["-9", "-B4096"],
  ];
  for (const args of variants) {
    assertDecodes(runCli("zstd", ["-q", "-c", ...args], data), data, args.join(" "), 4093);
  }
});
