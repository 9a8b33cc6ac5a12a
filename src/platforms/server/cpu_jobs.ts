/**
 * What crosses between the server's main thread and its CPU worker threads (`cpu_pool.ts`,
 * `cpu_worker.ts`): the messages, and the two jobs as a worker runs them. Rows travel as snapshots
 * (`Rows.snapshot`): typed arrays, shared or with their buffers transferred, never per-value objects.
 *
 * - decode: a request body in, decoded rows out (copied once into shared memory, which the main thread and
 *   the worker that encodes them then read in place; moved where the runtime has no shared memory). The
 *   main thread needs the body back for
 *   the log: a body owning its whole buffer is moved there and back with the rows; any other is copied.
 *   The worker reports its decoded bytes as it goes, so the main thread charges them to the in-flight
 *   budget exactly as an in-thread decode does, and cancels the job when the budget refuses them (429/503).
 * - encode: the rows of a batch's members in (shared rows as they are, with the batch's row numbers; others
 *   copied cut to their rows: other batches may still hold the same request's rows), the Parquet object out
 *   (moved).
 *
 * Errors come back as data and are rebuilt as the same classes with the same messages (`DecodeError` and
 * `DecodeLimitError`: 400 and 413 as in-thread).
 *
 * @module
 */

import {
  type AsyncDecodeOptions,
  type Decoded,
  decodeRequestAsync,
  encodeBatch,
  type FileOptions,
  type Format,
  type ParquetFile,
} from "../../core/convert.ts";
import { crc32c } from "../../codecs/crc32c.ts";
import { DecodeLimitError } from "../../core/decode/decode_limits.ts";
import { requestId } from "../../ingest/dedupe.ts";
import { type BodyChecks, FORMAT_CODES, SIGNAL_CODES } from "../../ingest/sink.ts";
import { DecodeError } from "../../core/errors.ts";
import {
  type Partition,
  Rows,
  rowsBuffers,
  type RowSelection,
  type RowsSnapshot,
} from "../../core/table/rows.ts";
import {
  canShare,
  type ColumnSnapshot,
  inSharedMemory,
  shareSnapshot,
  snapshotBuffers,
} from "../../core/table/columns.ts";
import type { Signal } from "../../core/table/schema.ts";

/** The decode limits a job carries: `AsyncDecodeOptions` without its callbacks. */
export type DecodeJobLimits = Omit<AsyncDecodeOptions, "pause" | "onDecodedBytes" | "stats" | "format">;

/** Main thread to worker. */
export type ToWorker =
  | { type: "init"; compression: FileOptions["compression"]; wasmPath?: string }
  | {
    type: "decode";
    id: number;
    signal: Signal;
    format: Format;
    body: Uint8Array;
    limits: DecodeJobLimits;
    /** Whether to report decoded bytes as they are produced (`progress` messages). */
    progress: boolean;
    /** Whether to move the body back with the result (it was the caller's own buffer, moved here). */
    giveBack?: boolean;
  }
  | {
    type: "encode";
    id: number;
    rows: RowsSnapshot[];
    /** Per member: which of `rows` and the member's row indices. */
    members: { rows: number; indices: Uint32Array }[];
    options: Omit<FileOptions, "pause">;
  }
  | { type: "cancel"; id: number }
  /** Tests: throw an uncaught error, as a bug would. */
  | { type: "crash" };

/** A decode's result as plain data, with the body's checks computed on the worker's time. */
export interface DecodedSnapshot extends BodyChecks {
  signal: Signal;
  tables: RowsSnapshot[];
  records: number;
  rejected: number;
  rejectMessage: string;
}

/** An error as plain data. */
export type ErrorData =
  | { kind: "decode"; problem: string; path: string; signal: string }
  | { kind: "limit"; problem: string; limit: DecodeLimitError["limit"]; signal: string }
  | { kind: "cancelled" }
  | { kind: "other"; name: string; message: string };

/** Worker to main thread. `busyMs`: the job's time on the worker's thread. */
export type FromWorker =
  | { type: "ready" }
  | { type: "progress"; id: number; bytes: number }
  | { type: "decoded"; id: number; result: DecodedSnapshot; busyMs: number }
  | { type: "encoded"; id: number; file: ParquetFile; busyMs: number }
  | { type: "failed"; id: number; error: ErrorData; busyMs: number };

/** Thrown inside a worker's decode once the main thread cancelled it. */
export class CancelledError extends Error {
  constructor() {
    super("cancelled");
    this.name = "CancelledError";
  }
}

/** An error as data for a message. */
export function errorData(e: unknown): ErrorData {
  if (e instanceof DecodeError) return { kind: "decode", problem: e.problem, path: e.path, signal: e.signal };
  if (e instanceof DecodeLimitError) {
    return { kind: "limit", problem: e.problem, limit: e.limit, signal: e.signal };
  }
  if (e instanceof CancelledError) return { kind: "cancelled" };
  return { kind: "other", name: (e as Error)?.name ?? "Error", message: (e as Error)?.message ?? String(e) };
}

/** The error an `ErrorData` describes: the same class and message as thrown in the worker. */
export function errorFrom(d: ErrorData): Error {
  switch (d.kind) {
    case "decode": {
      const e = new DecodeError(d.problem, d.path);
      return d.signal ? e.forSignal(d.signal) : e;
    }
    case "limit": {
      const e = new DecodeLimitError(d.problem, d.limit);
      return d.signal ? e.forSignal(d.signal) : e;
    }
    case "cancelled":
      return new CancelledError();
    case "other": {
      const e = new Error(`in a worker thread: ${d.message}`);
      e.name = d.name;
      return e;
    }
  }
}

/**
 * A decode's result as plain data: the rows copied into shared memory (a SharedArrayBuffer per column, cut
 * to the rows), which the main thread and then the worker that encodes them read without a copy; where the
 * runtime has no shared memory, the rows' own buffers, moved (the transfer list).
 */
export function decodedSnapshot(d: Decoded): { result: DecodedSnapshot; transfer: ArrayBuffer[] } {
  let tables: RowsSnapshot[];
  if (canShare) {
    // Column by column, each into shared memory of its own, the decoder's buffers freed as soon as they are
    // copied: the copy never doubles a request's rows, and the freed buffers need not wait for the thread's
    // next collection, which an idle thread may not have for a long time (see `release` in cpu_worker.ts).
    // Columns allocate their own buffers: nothing else reads them again.
    const share = (c: ColumnSnapshot): ColumnSnapshot => {
      const out = shareSnapshot(c);
      for (const b of snapshotBuffers(c)) b.transfer(0);
      return out;
    };
    tables = d.tables.map((rows) => {
      const v = rows.snapshot("view");
      return { ...v, columns: v.columns.map(share), partOf: share(v.partOf) };
    });
  } else {
    // Trimmed here, on the worker's time: the main thread's own `compact` then finds nothing to trim.
    for (const rows of d.tables) rows.compact();
    tables = d.tables.map((rows) => rows.snapshot(false));
  }
  return {
    result: {
      signal: d.signal,
      tables,
      records: d.records,
      rejected: d.rejected,
      rejectMessage: d.rejectMessage,
    },
    transfer: rowsBuffers(tables),
  };
}

/** The decoded request a snapshot holds, with the body's checks. */
export function decodedFrom(s: DecodedSnapshot): Decoded & BodyChecks {
  return { ...s, tables: s.tables.map((t) => Rows.restore(t)) };
}

/**
 * An encode job for a batch, with the transfer list. Rows in shared memory (a worker decoded them) go as
 * they are, with the partitions the batch's rows are in; nothing of them is copied. Other rows are copied,
 * so they stay usable on the main thread (other batches may hold the same request's rows). A member holding all of its request's
 * rows is copied whole (a copy of the buffers, cut to the rows); one holding part of them (a request
 * spread over several partitions) has just its rows gathered (`Rows.select`): the copy is the batch's own
 * size, never its requests'. `bytes`: what was copied.
 */
export function encodeJob(
  id: number,
  selections: readonly RowSelection[],
  options: FileOptions,
): EncodeJob {
  const steps = encodeJobSteps(id, selections, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * encodeJob, awaiting `pause()` between members: copying a large batch's rows takes the main thread tens of
 * milliseconds (35 ms for 50,000 log records from 40 requests, measured), which other clients should not wait.
 */
export async function encodeJobAsync(
  id: number,
  selections: readonly RowSelection[],
  options: FileOptions,
  pause: () => Promise<void>,
): Promise<EncodeJob> {
  const steps = encodeJobSteps(id, selections, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await pause();
  }
}

/** An encode job's message, its transfer list, and the bytes copied. */
export interface EncodeJob {
  message: ToWorker & { type: "encode" };
  transfer: ArrayBuffer[];
  bytes: number;
}

function* encodeJobSteps(
  id: number,
  selections: readonly RowSelection[],
  options: FileOptions,
): Generator<void, EncodeJob> {
  const whole = new Map<Rows, number>();
  // Per request's rows, where their views are in `rows`; null when they are not in shared memory.
  const shared = new Map<Rows, number | null>();
  const rows: RowsSnapshot[] = [];
  const members: { rows: number; indices: Uint32Array }[] = [];
  for (const s of selections) {
    // Rows a worker decoded are in shared memory already (`decodedSnapshot`): the worker that encodes
    // reads them in place, whichever of their rows the batch holds. Others (a replay's) are copied.
    let at = shared.get(s.rows);
    if (at === undefined) {
      const view = canShare ? s.rows.snapshot("view", []) : undefined;
      shared.set(s.rows, at = view && inSharedMemory(view) ? rows.push(view) - 1 : null);
    }
    if (at !== null) {
      // Only the partitions of the batch's rows go along (a request may span thousands; a batch is one).
      const parts = rows[at].parts as Partition[], of = s.rows.partOf.values, all = s.rows.parts;
      for (const i of s.indices) {
        const p = of[i];
        if (parts[p] === undefined) parts[p] = { service: all[p].service, hour: all[p].hour };
      }
      members.push({ rows: at, indices: s.indices.slice() });
      continue;
    }
    if (s.indices.length !== s.rows.length) {
      const n = s.indices.length;
      const i = rows.push(s.rows.select(s.indices).snapshot(false)) - 1;
      members.push({ rows: i, indices: Uint32Array.from({ length: n }, (_, k) => k) });
    } else {
      let i = whole.get(s.rows);
      if (i === undefined) whole.set(s.rows, i = rows.push(s.rows.snapshot(true)) - 1);
      members.push({ rows: i, indices: s.indices.slice() });
    }
    yield;
  }
  const { pause: _, ...plain } = options;
  const transfer = rowsBuffers(rows);
  let bytes = 0;
  for (const b of transfer) bytes += b.byteLength;
  for (const m of members) transfer.push(m.indices.buffer as ArrayBuffer), bytes += m.indices.byteLength;
  return { message: { type: "encode", id, rows, members, options: plain }, transfer, bytes };
}

/** Runs an encode job (in a worker): the Parquet file, its bytes to transfer. */
export async function runEncode(
  job: ToWorker & { type: "encode" },
): Promise<{ file: ParquetFile; transfer: ArrayBuffer[] }> {
  const rows = job.rows.map((s) => Rows.restore(s));
  const file = await encodeBatch(
    job.members.map((m) => ({ rows: rows[m.rows], indices: m.indices })),
    job.options,
  );
  let bytes = file.bytes;
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = bytes.slice();
  return { file: { ...file, bytes }, transfer: [bytes.buffer as ArrayBuffer] };
}

/**
 * Runs a decode job (in a worker). `progress` reports decoded bytes; `pause` is awaited between slices
 * (where a cancel is noticed: it throws CancelledError).
 */
export async function runDecode(
  job: ToWorker & { type: "decode" },
  progress: ((bytes: number) => void) | undefined,
  pause: () => Promise<void>,
): Promise<{ result: DecodedSnapshot; transfer: ArrayBuffer[] }> {
  const decoded = await decodeRequestAsync(job.signal, job.body, {
    ...job.limits,
    format: job.format,
    onDecodedBytes: progress,
    pause,
  });
  const snapshot = decodedSnapshot(decoded);
  // What the main thread would otherwise compute over the body for the log record and the retry window.
  snapshot.result.bodyCrc = crc32c(job.body);
  snapshot.result.id = requestId(
    SIGNAL_CODES.indexOf(job.signal),
    FORMAT_CODES.indexOf(job.format),
    job.body,
  );
  if (job.giveBack) {
    snapshot.result.body = job.body;
    snapshot.transfer.push(job.body.buffer as ArrayBuffer);
  }
  return snapshot;
}
