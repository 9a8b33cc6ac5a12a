/**
 * What the page index and the bloom filters cost the TypeScript Parquet writer: bytes added per file and
 * encode time, for generated spans and logs (sorted by time, as the server writes them), with the
 * indexes off and on; `--tree DIR` encodes the same rows with another source tree's writer (e.g. main's,
 * unpacked with `git archive`) for a before/after. Minimum and median of `--runs` (default 7) on a shared machine:
 * noisy.
 *
 * ```sh
 * deno run -A bench/index_cost.ts                         # this tree, indexes off and on
 * deno run -A bench/index_cost.ts --tree /tmp/before      # main's writer on the same rows
 * ```
 *
 * @module
 */

import * as zlib from "node:zlib";
import { resolve } from "node:path";
import { encodeProtobuf, generateLogs, generateTraces } from "./data.ts";

const args = Deno.args;
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const tree = resolve(flag("tree", "."));
const runs = Number(flag("runs", "7"));
const { decodeRequest } = await import(`${tree}/src/core/convert.ts`);
const { writeParquetFile } = await import(`${tree}/src/core/parquet/parquet_writer.ts`);
const { gatherRange, sortBatch } = await import(`${tree}/src/core/table/rows.ts`);

const level = (zlib.constants as Record<string, number>).ZSTD_c_compressionLevel;
const zstdOptions = { params: { [level]: 1 } } as zlib.ZstdOptions;
const base = { codec: 6, compress: (p: Uint8Array) => zlib.zstdCompressSync(p, zstdOptions) };
const variants: [string, object][] = tree === resolve(".")
  ? [["no indexes", { pageIndex: false, bloomFilterFpp: 0 }], ["page index", { bloomFilterFpp: 0 }], [
    "page index + bloom",
    {},
  ]]
  : [[`writer of ${tree}`, {}]];

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
console.log("| table | rows | variant | bytes | encode ms (min) | (median) |");
console.log("| --- | ---: | --- | ---: | ---: | ---: |");
for (const n of [10_000, 100_000]) {
  for (const signal of ["traces", "logs"] as const) {
    const request = signal === "traces" ? generateTraces(n, { seed: 3 }) : generateLogs(n, { seed: 3 });
    const rows = decodeRequest(signal, encodeProtobuf(signal, request), { format: "protobuf" }).tables[0];
    const sorted = gatherRange(
      sortBatch([{ rows, indices: Uint32Array.from({ length: rows.length }, (_, i) => i) }]),
    );
    // Variants interleaved run by run, so a burst of load elsewhere hits them alike; the minimum is the
    // least disturbed run.
    const times = variants.map(() => [] as number[]), bytes = variants.map(() => 0);
    for (let r = 0; r < runs; r++) {
      variants.forEach(([, options], v) => {
        const t = performance.now();
        bytes[v] = writeParquetFile(sorted, { ...base, ...options }).length;
        times[v].push(performance.now() - t);
      });
    }
    variants.forEach(([name], v) => {
      const min = Math.min(...times[v]).toFixed(1), med = median(times[v]).toFixed(1);
      console.log(`| ${signal} | ${n} | ${name} | ${bytes[v]} | ${min} | ${med} |`);
    });
  }
}
