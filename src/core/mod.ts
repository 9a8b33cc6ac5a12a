/**
 * The pure core of otlp2parquet: OTLP requests (protobuf, JSON, JSON Lines) in, ClickHouse-compatible
 * Parquet files and their object keys out. No I/O, no clock, no randomness: the same input always gives
 * the same bytes, in Deno, Bun, Node and Cloudflare workerd alike. The platform initialises the
 * parquet-wasm module once with `initParquet`.
 *
 * Three parts, a folder each, and `convert.ts` joining them: `decode/` (request bytes to rows, under the
 * decode limits), `table/` (schema, column buffers, rows, object keys, value text) and `parquet/` (rows to
 * Parquet files). Decoding and Parquet writing depend on the table model, not on each other.
 *
 * @example Decode a request and look at its rows
 * ```ts
 * import { decodeRequest } from "./mod.ts";
 *
 * const body = new TextEncoder().encode(JSON.stringify({
 *   resourceLogs: [{
 *     resource: { attributes: [{ key: "service.name", value: { stringValue: "checkout" } }] },
 *     scopeLogs: [{ logRecords: [{ timeUnixNano: "1700000000000000000", body: { stringValue: "paid" } }] }],
 *   }],
 * }));
 * const decoded = decodeRequest("logs", body, { format: "json" });
 * console.log(decoded.records, decoded.tables[0].parts[0].service); // 1 "checkout"
 * ```
 *
 * @module
 */

export {
  type AsyncDecodeOptions,
  type Decoded,
  type DecodeOptions,
  decodeRequest,
  decodeRequestAsync,
  detectFormat,
  detectSignal,
  encodeFile,
  type FileOptions,
  type Format,
  type ParquetFile,
  toParquetFiles,
} from "./convert.ts";
export {
  DecodeLimitError,
  type DecodeLimits,
  type DecodeStats,
  MAX_ENVELOPES,
  MAX_ITEMS_PER_RECORD,
  MAX_RECORDS,
  UNCAPPED,
} from "./decode/mod.ts";
export { DecodeError } from "./errors.ts";
export {
  compactTime,
  hash64,
  type KeyOptions,
  objectKey,
  partitionPath,
  serviceSegment,
} from "./table/mod.ts";
export {
  initParquet,
  type ParquetCompression,
  type ParquetOptions,
  parquetReady,
  registerCompressor,
  rowsToParquet,
} from "./parquet/mod.ts";
export { type PageCompressor, ParquetFileWriter, type WriterOptions } from "./parquet/mod.ts";
export { gatherSorted, type Partition, Rows, type RowSelection } from "./table/mod.ts";
export { arrowSchema, toArrowTable } from "./parquet/mod.ts";
export {
  clickhouseDdl,
  type ColumnDef,
  SCHEMA_VERSION,
  type Signal,
  type TableDef,
  tableDef,
  type TableName,
  TABLES,
  type ValueType,
} from "./table/mod.ts";
export { VERSION } from "./version.ts";
