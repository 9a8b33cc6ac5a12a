// Decode speed of 3 MB request bodies: `deno bench -A src/http/body_bench.ts`.
import { gzipSync, zstdCompressSync } from "node:zlib";
import lz4js from "lz4js";
import { compress as snappyjsCompress } from "snappyjs";
import { readBody } from "./body.ts";
import { decodeLz4 } from "../codecs/lz4.ts";
import { decodeSnappy } from "../codecs/snappy.ts";
import { telemetryBytes } from "../codecs/test_samples.ts";

const SIZE = 3 * (1 << 20);
// Fixed counts: with its automatic budget, `deno bench` ran the millisecond-long cases for minutes.
const RUNS = { n: 100, warmup: 10 };
const data = telemetryBytes(SIZE);
const gzip = new Uint8Array(gzipSync(data));
const zstd = new Uint8Array(zstdCompressSync(data));
const snappy = new Uint8Array(snappyjsCompress(data) as Uint8Array);
const lz4 = new Uint8Array(lz4js.compress(data));

/** A body as a server sees it: 64 KiB chunks. */
function body(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(at, at += 65536));
    },
  });
}

async function check(bytes: Uint8Array, encoding: string): Promise<void> {
  const out = await readBody(body(bytes), { encoding, maxBytes: SIZE });
  if (out.length !== SIZE) throw new Error(`decoded ${out.length} bytes`);
}

Deno.bench("readBody identity 3 MB", { ...RUNS, group: "3 MB body" }, async () => {
  await check(data, "identity");
});
Deno.bench("readBody gzip 3 MB", { ...RUNS, group: "3 MB body", baseline: true }, async () => {
  await check(gzip, "gzip");
});
Deno.bench("readBody zstd 3 MB", { ...RUNS, group: "3 MB body" }, async () => {
  await check(zstd, "zstd");
});
Deno.bench("readBody snappy 3 MB", { ...RUNS, group: "3 MB body" }, async () => {
  await check(snappy, "snappy");
});
Deno.bench("readBody lz4 3 MB", { ...RUNS, group: "3 MB body" }, async () => {
  await check(lz4, "lz4");
});
Deno.bench("decodeSnappy 3 MB (no stream)", { ...RUNS, group: "decoders" }, () => {
  decodeSnappy(snappy, SIZE);
});
Deno.bench("decodeLz4 3 MB (no stream)", { ...RUNS, group: "decoders" }, () => {
  decodeLz4(lz4, SIZE);
});
