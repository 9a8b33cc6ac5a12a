/**
 * Parquet encoding. Two writers produce the same files: the TypeScript writer (`parquet_writer.ts`),
 * used for a codec whose page compressor the platform registered (`registerCompressor`: zstd and gzip
 * from `node:zlib` on Deno and Bun) or for no compression, and parquet-wasm for every other case
 * (snappy, lz4_raw, runtimes without zstd). The wasm module is initialised explicitly by the platform
 * (`initParquet`), never at import time: the core does no I/O.
 *
 * @module
 */

import { tableToIPC } from "apache-arrow";
import {
  Compression,
  EnabledStatistics,
  initSync,
  Table as WasmTable,
  transformParquetStream,
  writeParquet,
  type WriterProperties,
  WriterPropertiesBuilder,
  WriterVersion,
} from "parquet-wasm/esm";
import { toArrowTable } from "./arrow.ts";
import { concatBytes } from "./byte_sink.ts";
import { type PageCompressor, ParquetFileWriter, type WriterOptions } from "./parquet_writer.ts";
import { type BatchOrder, gatherRange, type Rows } from "../table/rows.ts";
import type { TableDef } from "../table/schema.ts";
import { isIdColumn, SCHEMA_VERSION } from "../table/schema.ts";
import { VERSION } from "../version.ts";

let ready = false;

/**
 * Initialises parquet-wasm from its compiled module or bytes (`parquet-wasm/esm/parquet_wasm_bg.wasm`).
 * Idempotent. Every platform entry calls it once before converting.
 */
export function initParquet(wasm: WebAssembly.Module | BufferSource): void {
  if (ready) return;
  initSync({ module: wasm });
  ready = true;
}

/** Whether `initParquet` has run. */
export function parquetReady(): boolean {
  return ready;
}

const compressors = new Map<ParquetCompression, PageCompressor>();

/**
 * Registers the page compressor of a codec: files with that codec are then written by the TypeScript
 * writer instead of parquet-wasm (about twice as fast; the same schema, values and encodings).
 */
export function registerCompressor(
  codec: Exclude<ParquetCompression, "none">,
  compress: PageCompressor,
): void {
  compressors.set(codec, compress);
}

/**
 * Whether files with `codec` are written by parquet-wasm (no page compressor registered for it), so its
 * module must be initialised first. Platforms use it to skip loading the wasm (tens of MB) otherwise.
 */
export function needsWasm(codec: ParquetCompression): boolean {
  return codec !== "none" && !compressors.has(codec);
}

/** Parquet's `CompressionCodec` ids. */
const CODEC_IDS: Record<ParquetCompression, number> = { none: 0, snappy: 1, gzip: 2, zstd: 6, lz4_raw: 7 };

/** The TypeScript writer's settings for `def`, or undefined when the codec has no registered compressor. */
function tsWriterOptions(def: TableDef, options: ParquetOptions): WriterOptions | undefined {
  const codec = options.compression ?? "zstd";
  const compress = compressors.get(codec);
  if (codec !== "none" && !compress) return undefined;
  return {
    codec: CODEC_IDS[codec],
    compress,
    rowGroupRows: options.rowGroupRows ?? 131072,
    metadata: [["otlp2parquet", metadataOf(def)], ...(options.metadata ?? [])],
    createdBy: CREATED_BY,
  };
}

const CREATED_BY = `otlp2parquet version ${VERSION}`;

function metadataOf(def: TableDef): string {
  return JSON.stringify({ version: VERSION, schema_version: SCHEMA_VERSION, table: def.name });
}

/** Parquet compression codecs offered. */
export type ParquetCompression = "zstd" | "snappy" | "gzip" | "lz4_raw" | "none";

/** Writer settings. */
export interface ParquetOptions {
  /** Codec; default `zstd`. */
  compression?: ParquetCompression;
  /** Rows per row group; default 131072. */
  rowGroupRows?: number;
  /**
   * Awaited between column chunks while a batch is encoded (`batchToParquet`), so that a server can serve
   * requests meanwhile: a macrotask yield such as `setImmediate`. Default: none (one synchronous run).
   */
  pause?: () => Promise<void>;
  /**
   * Key-value metadata written after the `otlp2parquet` entry (`compact` lists its inputs there).
   * Default none. parquet-wasm (codecs without a registered compressor) may write them in any order.
   */
  metadata?: readonly [string, string][];
}

const CODECS: Record<ParquetCompression, Compression> = {
  zstd: Compression.ZSTD,
  snappy: Compression.SNAPPY,
  gzip: Compression.GZIP,
  lz4_raw: Compression.LZ4_RAW,
  none: Compression.UNCOMPRESSED,
};

function writerProperties(def: TableDef, options: ParquetOptions): WriterProperties {
  let props = new WriterPropertiesBuilder()
    .setCompression(CODECS[options.compression ?? "zstd"])
    .setMaxRowGroupSize(options.rowGroupRows ?? 131072)
    .setDictionaryEnabled(true)
    // Columns with many distinct values (bodies, attribute values) fall back to plain encoding once their
    // dictionary passes 32 KiB: measured 10-15 % faster and 5-15 % smaller (zstd does better on plain
    // values than on a large dictionary plus indices) than the 1 MiB default.
    .setDictionaryPageSizeLimit(32 * 1024)
    // Page-level statistics: arrow-rs then writes a ColumnIndex (bounds cut to 64 bytes) besides the
    // OffsetIndex it always writes, as the TypeScript writer does. parquet-wasm 0.8 has no bloom filter
    // setting: its files have none (see docs/schema.md).
    .setStatisticsEnabled(EnabledStatistics.Page)
    .setWriterVersion(WriterVersion.V1)
    .setCreatedBy(CREATED_BY)
    // One entry: parquet-wasm keeps key-value metadata in a hash map whose order varies between calls, and
    // the bytes must not (object names end in a hash of them).
    .setKeyValueMetadata(new Map([["otlp2parquet", metadataOf(def)], ...(options.metadata ?? [])]));
  // Ids are unique per row: a dictionary is pure overhead for them (measured ~5% of encode time).
  for (const col of def.columns) {
    if (isIdColumn(col.name)) {
      props = props.setColumnDictionaryEnabled(col.name, false);
    }
  }
  return props.build();
}

/** Encodes rows as one Parquet file, all at once (small inputs: one request, one file to convert). */
export function rowsToParquet(rows: Rows, options: ParquetOptions = {}): Uint8Array {
  const ts = tsWriterOptions(rows.def, options);
  if (ts) {
    const writer = new ParquetFileWriter(rows.def, ts);
    writer.write(rows);
    return writer.finish();
  }
  return rowsToParquetWasm(rows, options);
}

/** `rowsToParquet` through parquet-wasm whatever compressors are registered (comparisons, benchmarks). */
export function rowsToParquetWasm(rows: Rows, options: ParquetOptions = {}): Uint8Array {
  if (!ready) throw new Error("parquet-wasm is not initialised: call initParquet() first");
  const ipc = tableToIPC(toArrowTable(rows), "stream");
  const props = writerProperties(rows.def, options);
  const table = WasmTable.fromIPCStream(ipc);
  try {
    return writeParquet(table, props);
  } finally {
    try {
      table.free();
    } catch {
      // writeParquet may already have consumed the table.
    }
  }
}

/** Rows handed to the Parquet writer at a time when streaming a batch. */
export const STREAM_CHUNK_ROWS = 16384;

/**
 * Encodes a sorted batch as one Parquet file, gathering and handing it to the writer a chunk of rows at a
 * time: neither a full sorted copy of the batch nor its whole Arrow form is ever in memory, and the wasm
 * heap (which never shrinks) stays near one chunk plus one encoded row group.
 */
export async function batchToParquet(order: BatchOrder, options: ParquetOptions = {}): Promise<Uint8Array> {
  const def = order.selections[0].rows.def;
  const n = order.from.length;
  const ts = tsWriterOptions(def, options);
  if (ts) {
    // The writer reads the requests' buffers in the batch's order: no sorted copy of the batch is made.
    const writer = new ParquetFileWriter(def, ts);
    const group = { sources: order.selections.map((s) => s.rows), from: order.from, rows: order.rows };
    if (options.pause) await writer.writeOrderedAsync(group, options.pause);
    else writer.writeOrdered(group);
    return writer.finish();
  }
  if (!ready) throw new Error("parquet-wasm is not initialised: call initParquet() first");
  let at = 0;
  const input = new ReadableStream({
    pull(controller) {
      if (at >= n) return controller.close();
      const end = Math.min(n, at + STREAM_CHUNK_ROWS);
      const ipc = tableToIPC(toArrowTable(gatherRange(order, at, end)), "stream");
      at = end;
      const table = WasmTable.fromIPCStream(ipc);
      const batch = table.recordBatch(0);
      table.free(); // the batch keeps its data; the table would otherwise hold wasm memory until a GC
      controller.enqueue(batch);
    },
  });
  const output = await transformParquetStream(input, writerProperties(def, options));
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = output.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  return concatBytes(chunks, size);
}
