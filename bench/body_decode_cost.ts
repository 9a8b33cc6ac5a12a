/**
 * The worst cases we know for each request-body decoder, timed: nanoseconds per input byte and per
 * output byte (best of several runs, one thread). `deno run -A bench/body_decode_cost.ts`. The shapes are
 * built by construction (see `src/codecs/zstd_samples.ts`); docs/reliability.md quotes the results.
 *
 * @module
 */

import { constants, gzipSync, zstdCompressSync } from "node:zlib";
import { concatBytes } from "../src/core/parquet/byte_sink.ts";
import { decodeLz4 } from "../src/codecs/lz4.ts";
import { sizedFrame, zerosBlock } from "../src/codecs/lz4_samples.ts";
import { decodeSnappy } from "../src/codecs/snappy.ts";
import { crc32c } from "../src/codecs/crc32c.ts";
import { ZstdStreamDecoder } from "../src/codecs/zstd.ts";
import { nodeInflateSync } from "../src/platforms/node_codecs.ts";
import { telemetryBytes } from "../src/codecs/test_samples.ts";
import {
  frameHeader,
  HISTORY,
  longRun,
  rawBlock,
  rleBlock,
  tableHeavyBlock,
} from "../src/codecs/zstd_samples.ts";
import { machine } from "./machine.ts";

const MB = 1 << 20;
const LIMIT = 64 * MB;

interface Case {
  name: string;
  input: Uint8Array;
  /** Decodes; returns the bytes produced (or -1 when refused). */
  run: (input: Uint8Array) => number;
}

function zstd(input: Uint8Array): number {
  let n = 0;
  try {
    const d = new ZstdStreamDecoder(LIMIT, (c) => n += c.length);
    for (let at = 0; at < input.length; at += 65536) d.push(input.subarray(at, at + 65536));
    d.finish();
    return n;
  } catch {
    return -1;
  }
}

/** Decodes until done or refused; returns the bytes produced either way (the cost is what counts). */
function zstdUntilRefused(input: Uint8Array): number {
  let n = 0;
  const d = new ZstdStreamDecoder(LIMIT, (c) => n += c.length);
  try {
    d.push(input);
    d.finish();
  } catch {
    // refused once the table budget is spent
  }
  return d.total;
}

function attempt(f: () => Uint8Array): number {
  try {
    return f().length;
  } catch {
    return -1;
  }
}

function repeat(times: number, part: number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < times; i++) out.push(...part);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts, parts.reduce((n, p) => n + p.length, 0));
}

function le32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

function snappyChunk(type: number, payload: Uint8Array, data: Uint8Array): Uint8Array {
  const crc = crc32c(data);
  const masked = ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
  const len = payload.length + 4;
  return concat([new Uint8Array([type, len & 0xff, (len >>> 8) & 0xff, len >>> 16]), le32(masked), payload]);
}

function varint(n: number): Uint8Array {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return new Uint8Array(out);
}

const SNAPPY_ID = new Uint8Array([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]);

function cases(): Case[] {
  const list: Case[] = [];
  const ordinary = telemetryBytes(3 * MB);
  const level3 = zstdCompressSync(
    ordinary,
    {
      params: { [constants.ZSTD_c_compressionLevel]: 3, [constants.ZSTD_c_checksumFlag]: 1 },
    } as Parameters<typeof zstdCompressSync>[1],
  );
  list.push({
    name: "zstd: ordinary telemetry, level 3, checksum",
    input: new Uint8Array(level3),
    run: zstd,
  });
  list.push({ name: "zstd: the 18-byte attack (refused)", input: longRun(98_047, { ml: 52 }), run: zstd });
  list.push({
    name: "zstd: 43,690 3-byte matches per block",
    input: new Uint8Array([
      ...frameHeader({ descriptor: 0x50 }),
      ...rawBlock(HISTORY),
      ...repeat(200, [...longRun(43_690, { ml: 0, last: false }).subarray(6 + 11)]),
      ...rawBlock([], true),
    ]),
    run: zstd,
  });
  list.push({
    name: "zstd: every block rebuilds all tables (21 B -> 4 B)",
    input: new Uint8Array([
      ...frameHeader({ descriptor: 0x50 }),
      ...rawBlock(HISTORY),
      ...repeat(50_000, tableHeavyBlock()),
      ...rawBlock([], true),
    ]),
    run: zstd,
  });
  list.push({
    name: "zstd: 2 MiB of RLE output, then table rebuilds up to the budget",
    input: new Uint8Array([
      ...frameHeader({ descriptor: 0x70 }),
      ...repeat(16, rleBlock(0x61, 131072)),
      ...repeat(25_000, tableHeavyBlock()),
      ...rawBlock([], true),
    ]),
    run: zstdUntilRefused,
  });
  list.push({
    name: "zstd: RLE blocks (4 B -> 128 KiB)",
    input: new Uint8Array([
      ...frameHeader({ descriptor: 0x70 }),
      ...repeat(400, rleBlock(1, 131072)),
      ...rawBlock([], true),
    ]),
    run: zstd,
  });
  list.push({
    name: "zstd: empty frames (12 B -> 0 B)",
    input: new Uint8Array(repeat(100_000, [...frameHeader({ contentSize: 0 }), ...rawBlock([], true)])),
    run: zstd,
  });
  list.push({
    name: "lz4: a 32 MiB frame, then 1,000 one-byte frames",
    input: concat([
      sizedFrame(32 * MB, Array.from({ length: 8 }, () => zerosBlock(4 * MB))),
      ...Array.from({ length: 1000 }, () => sizedFrame(1, [new Uint8Array([0x61])], true)),
    ]),
    run: (input) => attempt(() => decodeLz4(input, LIMIT)),
  });
  list.push({
    name: "lz4: empty frames (19 B -> 0 B)",
    input: concat(Array.from({ length: 100_000 }, () => sizedFrame(0, []))),
    run: (input) => attempt(() => decodeLz4(input, LIMIT)),
  });
  const copies = [0x00, 0x61]; // one literal "a"
  for (let i = 0; i < 500_000; i++) copies.push(0xfe, 1, 0); // copy 64 bytes at offset 1
  const snappyRun = concat([varint(1 + 500_000 * 64), new Uint8Array(copies)]);
  list.push({
    name: "snappy: 64-byte copies (3 B -> 64 B)",
    input: snappyRun,
    run: (i) => attempt(() => decodeSnappy(i, LIMIT)),
  });
  list.push({
    name: "snappy: lying preamble, 21x the input (refused)",
    input: concat([varint(21 * 1_000_000), new Uint8Array(1_000_000)]),
    run: (i) => attempt(() => decodeSnappy(i, LIMIT)),
  });
  const emptyChunk = snappyChunk(0x00, new Uint8Array([0]), new Uint8Array(0));
  list.push({
    name: "snappy framed: empty chunks (9 B -> 0 B)",
    input: concat([SNAPPY_ID, ...Array.from({ length: 200_000 }, () => emptyChunk)]),
    run: (i) => attempt(() => decodeSnappy(i, LIMIT)),
  });
  const zeros = new Uint8Array(gzipSync(new Uint8Array(60 * MB), { level: 9 }));
  list.push({
    name: "gzip (node:zlib): 60 MiB of zeros",
    input: zeros,
    run: (i) => attempt(() => nodeInflateSync("gzip", i, LIMIT)),
  });
  return list;
}

function time(c: Case): { ms: number; out: number } {
  let best = Infinity;
  let out = 0;
  for (let i = 0; i < 7; i++) {
    const start = performance.now();
    out = c.run(c.input);
    best = Math.min(best, performance.now() - start);
  }
  return { ms: best, out };
}

const m = machine();
console.log(`${m.cpu}, ${m.cores} cores, Deno ${m.deno} (V8 ${m.v8})\n`);
console.log("| input | in | out | ms | ns / in byte | ns / out byte |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const c of cases()) {
  const { ms, out } = time(c);
  const perIn = (ms * 1e6) / c.input.length;
  const perOut = out > 0 ? ((ms * 1e6) / out).toFixed(2) : out < 0 ? "refused" : "—";
  console.log(
    `| ${c.name} | ${c.input.length} | ${out < 0 ? "refused" : out} | ${ms.toFixed(2)} | ${
      perIn.toFixed(2)
    } | ${perOut} |`,
  );
}
