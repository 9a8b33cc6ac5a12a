/**
 * Per-stage throughput of the core: `deno bench -A bench/stages_bench.ts`.
 *
 * For logs, traces and metrics at 1k / 10k / 100k records: protobuf decode into columns, OTLP/JSON
 * decode, the protobufjs object-decode baseline, Arrow table, Arrow IPC, Parquet encode (zstd: the
 * TypeScript writer the server uses, and parquet-wasm from Arrow IPC for comparison), object key, and the
 * whole in-process conversion (decode, split by partition, sort, one Parquet file each).
 * A signal whose decoder throws at start (not written yet) is skipped with a note.
 *
 * Env: `BENCH_SIZES=1000,10000` limits the sizes; `BENCH_META=path` (default `.bench/stages_meta.json`)
 * receives the input sizes of every bench and the Parquet sizes, for `bench/main.ts` to turn times into
 * MB/s and compression ratios.
 *
 * @module
 */

import { type Table, tableToIPC } from "apache-arrow";
import { toArrowTable } from "../src/core/parquet/arrow.ts";
import { type Decoded, decodeRequest, type Format, toParquetFiles } from "../src/core/convert.ts";
import { objectKey } from "../src/core/table/keys.ts";
import { initParquet, rowsToParquet, rowsToParquetWasm } from "../src/core/parquet/parquet.ts";
import { registerNodeCompressors } from "../src/platforms/node_codecs.ts";
import type { Rows } from "../src/core/table/rows.ts";
import { encodeJson, encodeProtobuf, generateRequest, type Signal } from "./data.ts";
import { decodeWithProtobufjs } from "./protobufjs_baseline.ts";

/** What `bench/main.ts` needs besides the timings. */
export interface StageMeta {
  /** Per bench name: its signal, records, stage and the bytes its input stands for. */
  benches: Record<string, { signal: Signal; records: number; stage: string; bytes: number }>;
  /** Per `signal size`: protobuf, JSON and Parquet (zstd, one file per table) bytes. */
  sizes: Record<string, { signal: Signal; records: number; protobuf: number; json: number; parquet: number }>;
  /** Stages not run, with why. */
  skipped: string[];
}

initParquet(
  Deno.readFileSync(new URL("../node_modules/parquet-wasm/esm/parquet_wasm_bg.wasm", import.meta.url)),
);
// As the server does: zstd from node:zlib, so Parquet is written by the TypeScript writer.
registerNodeCompressors();

const SIZES = (Deno.env.get("BENCH_SIZES") ?? "1000,10000,100000").split(",").map(Number).filter((n) =>
  n > 0
);
const SIGNALS: readonly Signal[] = ["logs", "traces", "metrics"];
const meta: StageMeta = { benches: {}, sizes: {}, skipped: [] };

const label = (n: number): string => (n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n));
/** Iterations: enough for stable numbers at 1k, bounded at 100k (each iteration there is 0.1-2 s). */
const iterations = (n: number): { n: number; warmup: number } =>
  n <= 1_000 ? { n: 100, warmup: 10 } : n <= 10_000 ? { n: 20, warmup: 3 } : { n: 4, warmup: 1 };

function tryDecode(signal: Signal, bytes: Uint8Array, format: Format): Decoded | string {
  try {
    return decodeRequest(signal, bytes, { format });
  } catch (e) {
    return (e as Error).message;
  }
}

for (const signal of SIGNALS) {
  for (const records of SIZES) {
    const group = `${signal} ${label(records)}`;
    const request = generateRequest(signal, records, { seed: 42 });
    const pb = encodeProtobuf(signal, request);
    const json = encodeJson(request);
    const fromPb = tryDecode(signal, pb, "protobuf");
    const fromJson = tryDecode(signal, json, "json");
    const opts = { group, ...iterations(records) };
    const add = (stage: string, bytes: number, fn: () => void, baseline = false): void => {
      const name = `${group}: ${stage}`;
      meta.benches[name] = { signal, records, stage, bytes };
      Deno.bench({ name, ...opts, baseline, fn });
    };
    if (typeof fromPb === "string") {
      const note = `${group}: protobuf decode skipped (${fromPb})`;
      meta.skipped.push(note), console.error(note);
    } else {
      add("protobuf decode", pb.length, () => void decodeRequest(signal, pb, { format: "protobuf" }), true);
      add("protobufjs objects (baseline)", pb.length, () => void decodeWithProtobufjs(signal, pb));
    }
    if (typeof fromJson === "string") {
      const note = `${group}: JSON decode skipped (${fromJson})`;
      meta.skipped.push(note), console.error(note);
    } else {
      add("JSON decode", json.length, () => void decodeRequest(signal, json, { format: "json" }));
    }
    const decoded = typeof fromPb !== "string" ? fromPb : typeof fromJson !== "string" ? fromJson : undefined;
    if (!decoded) {
      const note = `${group}: Arrow/Parquet stages skipped (no decoder works yet)`;
      meta.skipped.push(note), console.error(note);
      continue;
    }
    const tables: Rows[] = decoded.tables;
    const arrow: Table[] = tables.map((t) => toArrowTable(t));
    const parquet = tables.map((t) => rowsToParquet(t));
    meta.sizes[group] = {
      signal,
      records,
      protobuf: pb.length,
      json: json.length,
      parquet: parquet.reduce((n, p) => n + p.length, 0),
    };
    add("Arrow table", pb.length, () => tables.forEach((t) => toArrowTable(t)));
    add("Arrow IPC", pb.length, () => arrow.forEach((t) => tableToIPC(t, "stream")));
    add("Parquet encode (zstd)", pb.length, () => tables.forEach((t) => rowsToParquet(t)));
    add("Parquet encode (zstd, parquet-wasm)", pb.length, () => tables.forEach((t) => rowsToParquetWasm(t)));
    add("object key", pb.length, () =>
      tables.forEach((t, i) => {
        const words = t.time.words;
        objectKey(t.def, { part: t.parts[0], firstLo: words[0], firstHi: words[1], bytes: parquet[i] });
      }));
    if (decoded === fromPb) {
      add("convert: protobuf → Parquet files", pb.length, () => {
        toParquetFiles(decodeRequest(signal, pb, { format: "protobuf" }));
      });
    }
  }
}

const metaPath = Deno.env.get("BENCH_META") ??
  new URL("../.bench/stages_meta.json", import.meta.url).pathname;
Deno.mkdirSync(metaPath.replace(/\/[^/]*$/, ""), { recursive: true });
Deno.writeTextFileSync(metaPath, JSON.stringify(meta, null, 2));
