/**
 * Parquet writing (and reading back): table rows to a Parquet file with statistics, dictionaries,
 * bloom filters and page indexes; Thrift compact encoding, the byte sink, the Arrow path for parquet-wasm.
 *
 * @module
 */

export * from "./arrow.ts";
export * from "./byte_sink.ts";
export * from "./parquet.ts";
export * from "./parquet_index.ts";
export * from "./parquet_read.ts";
export * from "./parquet_writer.ts";
export * from "./thrift.ts";
export * from "./xxh64.ts";
