/**
 * The core's entry points: decode an OTLP request (protobuf, JSON or JSON Lines) into table rows, and
 * turn rows into Parquet files with their object keys.
 *
 * @module
 */

import { DecodeError } from "./errors.ts";
import { decodeLogsJson } from "./logs_json.ts";
import { decodeLogsProto } from "./logs_proto.ts";
import { decodeMetricsJson } from "./metrics_json.ts";
import { decodeMetricsProto } from "./metrics_proto.ts";
import { type KeyOptions, objectKey } from "./keys.ts";
import { batchToParquet, type ParquetOptions, rowsToParquet } from "./parquet.ts";
import { gatherSorted, type Partition, type Rows, type RowSelection, sortBatch } from "./rows.ts";
import type { Signal, TableName } from "./schema.ts";
import { decodeTracesJson } from "./traces_json.ts";
import { decodeTracesProto } from "./traces_proto.ts";

/** Request body encodings. */
export type Format = "protobuf" | "json" | "jsonl";

/** A decoded request. */
export interface Decoded {
  readonly signal: Signal;
  /** Rows per table (metrics: one per metric type that had data points). Tables without rows are left out. */
  readonly tables: Rows[];
  /** Records (log records, spans, data points) stored. */
  readonly records: number;
  /** Records refused (e.g. a metric data point without a value), for `partial_success`. */
  readonly rejected: number;
  /** Why records were refused ("" when none were). */
  readonly rejectMessage: string;
}

/** What the metrics decoders return: rows of the five metric tables plus refused data points. */
export interface MetricsDecoded {
  /** gauge, sum, histogram, exponential histogram, summary: in this order. */
  readonly tables: Rows[];
  readonly rejected: number;
  readonly rejectMessage: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Parses JSON or JSON Lines bodies; `SyntaxError`s become DecodeErrors naming the line. */
export function parseJsonBody(bytes: Uint8Array, lines: boolean): unknown[] {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new DecodeError("body is not valid UTF-8");
  }
  if (!lines) {
    try {
      return [JSON.parse(text)];
    } catch (e) {
      throw new DecodeError(`invalid JSON: ${(e as Error).message}`);
    }
  }
  const out: unknown[] = [];
  let n = 0;
  for (const line of text.split("\n")) {
    n++;
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      throw new DecodeError(`invalid JSON on line ${n}: ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * Decodes one request body of a signal. Throws a DecodeError ("cannot decode logs request: …") for
 * invalid input; nothing is returned for a request that fails, so no part of it can be stored.
 *
 * @example
 * ```ts
 * import { decodeRequest } from "./convert.ts";
 * const body = new TextEncoder().encode(JSON.stringify({
 *   resourceLogs: [{ scopeLogs: [{ logRecords: [{ timeUnixNano: "1700000000000000000", body: { stringValue: "hi" } }] }] }],
 * }));
 * const decoded = decodeRequest("logs", body, { format: "json" });
 * console.log(decoded.records); // 1
 * ```
 */
export function decodeRequest(signal: Signal, bytes: Uint8Array, options: { format: Format }): Decoded {
  try {
    if (signal === "metrics") {
      const m = options.format === "protobuf"
        ? decodeMetricsProto(bytes)
        : decodeMetricsJson(parseJsonBody(bytes, options.format === "jsonl"));
      const tables = m.tables.filter((t) => t.length > 0);
      return {
        signal,
        tables,
        records: tables.reduce((n, t) => n + t.length, 0),
        rejected: m.rejected,
        rejectMessage: m.rejectMessage,
      };
    }
    let rows: Rows;
    if (options.format === "protobuf") {
      rows = signal === "logs" ? decodeLogsProto(bytes) : decodeTracesProto(bytes);
    } else {
      const requests = parseJsonBody(bytes, options.format === "jsonl");
      rows = signal === "logs" ? decodeLogsJson(requests) : decodeTracesJson(requests);
    }
    return {
      signal,
      tables: rows.length ? [rows] : [],
      records: rows.length,
      rejected: 0,
      rejectMessage: "",
    };
  } catch (e) {
    if (e instanceof DecodeError) throw e.forSignal(signal);
    if (e instanceof RangeError) {
      throw new DecodeError(`input too large or too deep: ${e.message}`).forSignal(signal);
    }
    throw e;
  }
}

/** Guesses the body format from its first bytes: `{` starts JSON (JSON Lines if several lines hold objects). */
export function detectFormat(bytes: Uint8Array): Format {
  let i = 0;
  while (
    i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)
  ) i++;
  if (bytes[i] !== 0x7b) return "protobuf";
  // JSON Lines: the first line is a whole JSON value by itself and another object line follows.
  const nl = bytes.indexOf(0x0a, i);
  if (nl < 0) return "json";
  let k = nl + 1;
  while (
    k < bytes.length && (bytes[k] === 0x20 || bytes[k] === 0x0a || bytes[k] === 0x0d || bytes[k] === 0x09)
  ) k++;
  if (bytes[k] !== 0x7b) return "json";
  try {
    JSON.parse(new TextDecoder().decode(bytes.subarray(i, nl)));
    return "jsonl";
  } catch {
    return "json";
  }
}

/**
 * Guesses the signal of a body: the one whose strict decoding succeeds with records. `hint` (e.g. a file
 * name) settles ties. Throws when none or several fit.
 */
export function detectSignal(bytes: Uint8Array, format: Format, hint = ""): Signal {
  const fits: Signal[] = [];
  for (const signal of ["logs", "traces", "metrics"] as const) {
    try {
      if (decodeRequest(signal, bytes, { format }).records > 0) fits.push(signal);
    } catch {
      // not this signal
    }
  }
  if (fits.length === 1) return fits[0];
  const h = hint.toLowerCase();
  const byHint = fits.find((s) => h.includes(s === "traces" ? "trace" : s === "logs" ? "log" : "metric"));
  if (byHint) return byHint;
  throw new DecodeError(
    fits.length === 0
      ? "cannot tell the signal: the body is not a logs, traces or metrics request with records"
      : `cannot tell the signal: the body decodes as ${fits.join(" and ")}; name it explicitly`,
  );
}

/** One Parquet file ready to store. */
export interface ParquetFile {
  readonly table: TableName;
  readonly key: string;
  readonly bytes: Uint8Array;
  readonly rows: number;
  readonly partition: Partition;
}

/** Options for files: Parquet writer settings and key options. */
export interface FileOptions extends ParquetOptions, KeyOptions {}

/** Encodes rows (one table, one partition) sorted by event time as a Parquet file with its key. */
export function encodeFile(rows: Rows, options: FileOptions = {}): ParquetFile {
  const bytes = rowsToParquet(rows, options);
  const part = rows.parts[0] ?? { service: "", hour: 0 };
  const words = rows.time.words;
  const key = objectKey(rows.def, { part, firstLo: words[0], firstHi: words[1], bytes }, options);
  return { table: rows.def.name, key, bytes, rows: rows.length, partition: part };
}

/**
 * Encodes a batch (rows of one table and partition, from any number of requests) as one Parquet file,
 * sorted by event time and streamed through the writer in chunks (bounded memory for large batches).
 */
export async function encodeBatch(
  selections: readonly RowSelection[],
  options: FileOptions = {},
): Promise<ParquetFile> {
  const order = sortBatch(selections);
  const bytes = await batchToParquet(order, options);
  const first = order.selections[order.from[0]].rows.time.words, row = order.rows[0];
  const def = selections[0].rows.def;
  const key = objectKey(def, {
    part: order.part,
    firstLo: first[row * 2],
    firstHi: first[row * 2 + 1],
    bytes,
  }, options);
  return { table: def.name, key, bytes, rows: order.from.length, partition: order.part };
}

/**
 * Splits decoded rows by partition (service, event hour) and encodes one Parquet file per table and
 * partition, rows sorted by time.
 */
export function toParquetFiles(decoded: Pick<Decoded, "tables">, options: FileOptions = {}): ParquetFile[] {
  const files: ParquetFile[] = [];
  for (const rows of decoded.tables) {
    rows.rowsByPartition().forEach((indices) => {
      if (indices.length) files.push(encodeFile(gatherSorted([{ rows, indices }]), options));
    });
  }
  return files;
}
