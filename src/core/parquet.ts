/**
 * Parquet encoding with parquet-wasm. The wasm module is initialised explicitly by the platform
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
  writeParquet,
  WriterPropertiesBuilder,
  WriterVersion,
} from "parquet-wasm/esm";
import { toArrowTable } from "./arrow.ts";
import type { Rows } from "./rows.ts";
import { SCHEMA_VERSION } from "./schema.ts";
import { VERSION } from "./version.ts";

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

/** Parquet compression codecs offered. */
export type ParquetCompression = "zstd" | "snappy" | "gzip" | "lz4_raw" | "none";

/** Writer settings. */
export interface ParquetOptions {
  /** Codec; default `zstd`. */
  compression?: ParquetCompression;
  /** Rows per row group; default 131072. */
  rowGroupRows?: number;
}

const CODECS: Record<ParquetCompression, Compression> = {
  zstd: Compression.ZSTD,
  snappy: Compression.SNAPPY,
  gzip: Compression.GZIP,
  lz4_raw: Compression.LZ4_RAW,
  none: Compression.UNCOMPRESSED,
};

/** Encodes rows as one Parquet file. */
export function rowsToParquet(rows: Rows, options: ParquetOptions = {}): Uint8Array {
  if (!ready) throw new Error("parquet-wasm is not initialised: call initParquet() first");
  const ipc = tableToIPC(toArrowTable(rows), "stream");
  let props = new WriterPropertiesBuilder()
    .setCompression(CODECS[options.compression ?? "zstd"])
    .setMaxRowGroupSize(options.rowGroupRows ?? 131072)
    .setDictionaryEnabled(true)
    .setStatisticsEnabled(EnabledStatistics.Chunk)
    .setWriterVersion(WriterVersion.V1)
    .setCreatedBy(`otlp2parquet version ${VERSION}`)
    // One entry: parquet-wasm keeps key-value metadata in a hash map whose order varies between calls, and
    // the bytes must not (object names end in a hash of them).
    .setKeyValueMetadata(
      new Map([[
        "otlp2parquet",
        JSON.stringify({ version: VERSION, schema_version: SCHEMA_VERSION, table: rows.def.name }),
      ]]),
    );
  // Ids are unique per row: a dictionary is pure overhead for them (measured ~5% of encode time).
  for (const col of rows.def.columns) {
    if (/(^|\.)(Trace|Span|ParentSpan)Id$/.test(col.name)) {
      props = props.setColumnDictionaryEnabled(col.name, false);
    }
  }
  const table = WasmTable.fromIPCStream(ipc);
  try {
    return writeParquet(table, props.build());
  } finally {
    try {
      table.free();
    } catch {
      // writeParquet may already have consumed the table.
    }
  }
}
