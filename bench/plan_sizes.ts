/**
 * The sizes `plan` starts from, measured on the benchmark generator's records (bench/data.ts): per signal,
 * protobuf bytes per record (what a client sends), decoded bytes per record (what a batch counts against
 * `batch.max_bytes`) and Parquet (zstd) bytes per record, for one service at a time, in files of 10k and
 * 100k rows. `src/cli/prices.json` (`sizes`) carries the 100k-row figures.
 *
 * Run: `deno run -A bench/plan_sizes.ts [--json]`.
 *
 * @module
 */

import process from "node:process";
import { decodeRequest, toParquetFiles } from "../src/core/convert.ts";
import { UNCAPPED } from "../src/core/decode/decode_limits.ts";
import { prepareParquet } from "../src/platforms/wasm.ts";
import { encodeProtobuf, generateRequest, type Signal } from "./data.ts";

await prepareParquet("zstd");

/** One signal's sizes at one file size. */
export interface SignalSizes {
  signal: Signal;
  records: number;
  protobufBytesPerRecord: number;
  decodedBytesPerRecord: number;
  parquetBytesPerRecord: number;
  /** protobuf bytes ÷ Parquet bytes. */
  ratio: number;
}

/** Measures one signal at `records` records of one service. */
export function measure(signal: Signal, records: number): SignalSizes {
  const body = encodeProtobuf(signal, generateRequest(signal, records, { services: 1 }));
  const decoded = decodeRequest(signal, body, { format: "protobuf", ...UNCAPPED });
  let decodedBytes = 0;
  for (const rows of decoded.tables) decodedBytes += rows.byteLength();
  const files = toParquetFiles(decoded, { compression: "zstd" });
  const parquet = files.reduce((n, f) => n + f.bytes.length, 0);
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    signal,
    records: decoded.records,
    protobufBytesPerRecord: round(body.length / decoded.records),
    decodedBytesPerRecord: round(decodedBytes / decoded.records),
    parquetBytesPerRecord: round(parquet / decoded.records),
    ratio: round(body.length / parquet),
  };
}

if (import.meta.main) {
  const out: SignalSizes[] = [];
  for (const signal of ["logs", "traces", "metrics"] as const) {
    for (const records of [10_000, 100_000]) out.push(measure(signal, records));
  }
  if (process.argv.includes("--json")) console.log(JSON.stringify(out, null, 2));
  else {
    console.log("signal   records  protobuf B/rec  decoded B/rec  parquet B/rec  ratio");
    for (const s of out) {
      console.log(
        `${s.signal.padEnd(8)} ${String(s.records).padStart(7)} ${
          String(s.protobufBytesPerRecord).padStart(15)
        } ${String(s.decodedBytesPerRecord).padStart(14)} ${String(s.parquetBytesPerRecord).padStart(14)} ${
          String(s.ratio).padStart(6)
        }`,
      );
    }
  }
}
