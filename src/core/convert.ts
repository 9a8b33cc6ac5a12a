/**
 * The core's entry points: decode an OTLP request (protobuf, JSON or JSON Lines) into table rows, and
 * turn rows into Parquet files with their object keys.
 *
 * @module
 */

import {
  DecodeLimitError,
  type DecodeLimits,
  DecodeMeter,
  type DecodeStats,
  runSteps,
  UNCAPPED,
} from "./decode/decode_limits.ts";
import { DecodeError } from "./errors.ts";
import { decodeJsonBody, type JsonDecoder, jsonRowsEstimate } from "./decode/json_request.ts";
import { checkJson } from "./decode/json_scan.ts";
import { logsJsonDecoder } from "./decode/logs_json.ts";
import { decodeLogsProtoSteps } from "./decode/logs_proto.ts";
import { metricsJsonDecoder } from "./decode/metrics_json.ts";
import { decodeMetricsProtoSteps, type MetricsDecoded } from "./decode/metrics_proto.ts";
export type { MetricsDecoded };
import { type KeyOptions, objectKey } from "./table/keys.ts";
import { batchToParquet, type ParquetOptions, rowsToParquet } from "./parquet/parquet.ts";
import {
  gatherSorted,
  type Partition,
  type Rows,
  type RowSelection,
  rowsInTimeRange,
  sortBatch,
} from "./table/rows.ts";
import type { Signal, TableName } from "./table/schema.ts";
import { tracesJsonDecoder } from "./decode/traces_json.ts";
import { decodeTracesProtoSteps } from "./decode/traces_proto.ts";

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

/** Options of decodeRequest: the body format, and the caps and budget of `DecodeLimits`. */
export interface DecodeOptions extends DecodeLimits {
  format: Format;
  /** Filled in with what the decode did (work counters); default: none. */
  stats?: DecodeStats;
}

/** Options of decodeRequestAsync. */
export interface AsyncDecodeOptions extends DecodeOptions {
  /**
   * Awaited between slices of the decode (`sliceUnits` / `sliceBytes` of work), so that the caller's
   * event loop serves others meanwhile: e.g. a macrotask. Pure code cannot pause by itself.
   */
  pause: () => Promise<void>;
}

/** What a record is called in reject messages. */
const RECORDS: Record<Signal, [string, string]> = {
  logs: ["log record", "log records"],
  traces: ["span", "spans"],
  metrics: ["data point", "data points"],
};

/** The reject message for `n` records refused by `rowsInTimeRange`. */
function lateMessage(signal: Signal, n: number): string {
  return `${n} ${RECORDS[signal][n === 1 ? 0 : 1]} with a time at or after 2^63 ns (2262-04-11T23:47:16Z), ` +
    "beyond DateTime64(9)";
}

function rowsDecoded(signal: Signal, decoded: Rows): Decoded {
  const { rows, refused } = rowsInTimeRange(decoded);
  return {
    signal,
    tables: rows.length ? [rows] : [],
    records: rows.length,
    rejected: refused,
    rejectMessage: refused ? lateMessage(signal, refused) : "",
  };
}

function metricsDecoded(m: MetricsDecoded): Decoded {
  let late = 0;
  const tables = m.tables.map((t) => {
    const { rows, refused } = rowsInTimeRange(t);
    late += refused;
    return rows;
  }).filter((t) => t.length > 0);
  const messages = [m.rejectMessage, late ? lateMessage("metrics", late) : ""].filter((s) => s);
  return {
    signal: "metrics",
    tables,
    records: tables.reduce((n, t) => n + t.length, 0),
    rejected: m.rejected + late,
    rejectMessage: messages.join("; "),
  };
}

/** The decode of one body as steps: each `yield` is a point where the caller may pause. */
function* decodeSteps(
  signal: Signal,
  bytes: Uint8Array,
  format: Format,
  meter: DecodeMeter,
): Generator<void, Decoded> {
  if (format === "protobuf") {
    if (signal === "metrics") return metricsDecoded(yield* decodeMetricsProtoSteps(bytes, meter));
    return rowsDecoded(
      signal,
      yield* (signal === "logs" ? decodeLogsProtoSteps(bytes, meter) : decodeTracesProtoSteps(bytes, meter)),
    );
  }
  const decoder: JsonDecoder<Rows | MetricsDecoded> = signal === "logs"
    ? logsJsonDecoder(meter, jsonRowsEstimate(bytes.length))
    : signal === "traces"
    ? tracesJsonDecoder(meter, jsonRowsEstimate(bytes.length))
    : metricsJsonDecoder(meter);
  const result = yield* decodeJsonBody(decoder, bytes, format === "jsonl", meter);
  meter.check();
  return signal === "metrics"
    ? metricsDecoded(result as MetricsDecoded)
    : rowsDecoded(signal, result as Rows);
}

/** Names the signal in the errors of a decode (DecodeErrors and limits) and classifies other RangeErrors. */
function classify(signal: Signal, e: unknown): never {
  if (e instanceof DecodeError || e instanceof DecodeLimitError) throw e.forSignal(signal);
  if (e instanceof RangeError) {
    throw new DecodeError(`input too large or too deep: ${e.message}`).forSignal(signal);
  }
  throw e;
}

/**
 * Decodes one request body of a signal. Throws a DecodeError ("cannot decode logs request: …") for
 * invalid input, and a DecodeLimitError (a RangeError) for input beyond the caps and budget of
 * `options` (see `DecodeLimits`); nothing is returned for a request that fails, so no part of it can be
 * stored. Errors thrown by `onDecodedBytes` pass through as they are.
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
export function decodeRequest(signal: Signal, bytes: Uint8Array, options: DecodeOptions): Decoded {
  try {
    return runSteps(
      decodeSteps(signal, bytes, options.format, new DecodeMeter(options, false, options.stats)),
    );
  } catch (e) {
    classify(signal, e);
  }
}

/**
 * decodeRequest in slices: awaits `options.pause()` whenever a slice of work is done, so a server's
 * event loop answers other clients while a large request is decoded. The same result and errors.
 */
export async function decodeRequestAsync(
  signal: Signal,
  bytes: Uint8Array,
  options: AsyncDecodeOptions,
): Promise<Decoded> {
  try {
    const steps = decodeSteps(signal, bytes, options.format, new DecodeMeter(options, true, options.stats));
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      await options.pause();
    }
  } catch (e) {
    classify(signal, e);
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
    checkJson(bytes.subarray(i, nl));
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
      if (decodeRequest(signal, bytes, { format, ...UNCAPPED }).records > 0) fits.push(signal);
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
