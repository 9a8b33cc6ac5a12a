/**
 * `convert`: OTLP request files (protobuf, JSON, JSON Lines; optionally gzipped) to Parquet files laid
 * out under a folder exactly as they would be in object storage. A bad input is reported and skipped;
 * nothing of it is written.
 *
 * @module
 */

import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { decodeRequest, detectFormat, detectSignal, type Format, toParquetFiles } from "../core/convert.ts";
import { checkJsonBody } from "../core/decode/json_request.ts";
import { concatBytes } from "../core/parquet/byte_sink.ts";
import { UNCAPPED } from "../core/decode/decode_limits.ts";
import { DecodeError } from "../core/errors.ts";
import type { ParquetCompression } from "../core/parquet/parquet.ts";
import type { Signal, TableName } from "../core/table/schema.ts";

/** Options of `convert`. */
export interface ConvertOptions {
  /** Folder the object keys are written under (created if missing). Required. */
  out: string;
  /** Signal of every input; default: detected per file (its name settles ties). */
  signal?: Signal;
  /** Encoding of every input; default: from the file extension, else detected from the bytes. */
  format?: Format;
  /** Parquet codec; default `zstd`. */
  compression?: ParquetCompression;
  /** Instance id in file names; default `local`. */
  instanceId?: string;
  /** Largest input accepted, after gunzip, in bytes; default 1 GiB. */
  maxInputBytes?: number;
}

/** One Parquet file written. */
export interface WrittenFile {
  readonly table: TableName;
  /** Object key, relative to `out`. */
  readonly key: string;
  /** Path on disk. */
  readonly path: string;
  readonly rows: number;
  readonly bytes: number;
}

/** Files and rows per table of one input. */
export interface TableSummary {
  readonly table: TableName;
  readonly files: number;
  readonly rows: number;
}

/** What happened to one input file. */
export type InputResult =
  | {
    readonly input: string;
    readonly ok: true;
    readonly signal: Signal;
    readonly format: Format;
    readonly gzip: boolean;
    readonly records: number;
    readonly rejected: number;
    readonly rejectMessage: string;
    readonly tables: TableSummary[];
    readonly files: WrittenFile[];
  }
  | { readonly input: string; readonly ok: false; readonly error: string };

/** The outcome of a whole `convert` run. */
export interface ConvertReport {
  readonly inputs: InputResult[];
  readonly total: { inputs: number; failed: number; files: number; rows: number };
}

/** Where a command writes its normal output and its diagnostics. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const DEFAULT_MAX_INPUT = 1 << 30;

/** Whether bytes start with the gzip magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Gunzips with a cap on the output size (a small file can expand to anything). */
export async function gunzip(bytes: Uint8Array, options: { maxBytes?: number } = {}): Promise<Uint8Array> {
  const max = options.maxBytes ?? DEFAULT_MAX_INPUT;
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > max) throw new RangeError(`gunzipped input exceeds ${max} bytes`);
      chunks.push(value);
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    if (e instanceof RangeError) throw e;
    throw new SyntaxError(`invalid gzip data: ${(e as Error).message}`);
  }
  return concatBytes(chunks, size);
}

/** The format a file name implies (`.json`, `.jsonl`/`.ndjson`, `.pb`/`.binpb`/`.protobuf`), if any. */
export function formatFromName(name: string): Format | undefined {
  const n = name.toLowerCase().replace(/\.gz$/, "");
  if (n.endsWith(".jsonl") || n.endsWith(".ndjson")) return "jsonl";
  if (n.endsWith(".json")) return "json";
  if (n.endsWith(".pb") || n.endsWith(".binpb") || n.endsWith(".protobuf")) return "protobuf";
  return undefined;
}

/** The one signal a file name names (`log`, `trace`, `metric`), if exactly one. */
export function signalFromName(name: string): Signal | undefined {
  const n = name.toLowerCase();
  const named = (["logs", "traces", "metrics"] as const).filter((s) => n.includes(s.slice(0, -1)));
  return named.length === 1 ? named[0] : undefined;
}

/**
 * Detects the signal. When none fits, the precise error is more useful than "cannot tell": the signal
 * the file name names is decoded (and fails with its error), or broken JSON is reported as such.
 */
function guessSignal(bytes: Uint8Array, format: Format, name: string): Signal {
  try {
    return detectSignal(bytes, format, name);
  } catch (e) {
    const named = signalFromName(name);
    if (named) return named;
    if (format !== "protobuf") checkJsonBody(bytes, format === "jsonl");
    throw e;
  }
}

/** Writes through a temporary sibling and a rename, so a half-written file is never visible. */
async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${crypto.randomUUID()}.tmp`);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Converts one input file. Decodes and encodes everything in memory first, so an invalid input writes
 * nothing; errors are returned, not thrown.
 */
export async function convertFile(input: string, options: ConvertOptions): Promise<InputResult> {
  const max = options.maxInputBytes ?? DEFAULT_MAX_INPUT;
  try {
    let bytes: Uint8Array = await readFile(input);
    const gzip = isGzip(bytes) || input.toLowerCase().endsWith(".gz");
    if (gzip) bytes = await gunzip(bytes, { maxBytes: max });
    else if (bytes.length > max) throw new RangeError(`input exceeds ${max} bytes`);
    const name = basename(input);
    const format = options.format ?? formatFromName(name) ?? detectFormat(bytes);
    const signal = options.signal ?? guessSignal(bytes, format, name);
    // A file is trusted local input, often far larger than one request: the server's caps do not apply.
    const decoded = decodeRequest(signal, bytes, { format, ...UNCAPPED });
    if (decoded.records === 0 && options.signal) {
      // An empty request is valid OTLP, but a file of another signal forced to this one is a mistake.
      let other: Signal | undefined;
      try {
        other = detectSignal(bytes, format, name);
      } catch {
        other = undefined;
      }
      if (other && other !== signal) {
        throw new DecodeError(`the file holds a ${other} request, not ${signal}`).forSignal(signal);
      }
    }
    const parquet = toParquetFiles(decoded, {
      compression: options.compression,
      instanceId: options.instanceId,
    });
    const files: WrittenFile[] = [];
    for (const f of parquet) {
      const path = join(options.out, ...f.key.split("/"));
      await writeAtomic(path, f.bytes);
      files.push({ table: f.table, key: f.key, path, rows: f.rows, bytes: f.bytes.length });
    }
    const byTable = new Map<TableName, { files: number; rows: number }>();
    for (const f of files) {
      const t = byTable.get(f.table) ?? { files: 0, rows: 0 };
      t.files++;
      t.rows += f.rows;
      byTable.set(f.table, t);
    }
    return {
      input,
      ok: true,
      signal,
      format,
      gzip,
      records: decoded.records,
      rejected: decoded.rejected,
      rejectMessage: decoded.rejectMessage,
      tables: [...byTable].map(([table, t]) => ({ table, ...t })),
      files,
    };
  } catch (e) {
    return { input, ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

/** Converts every input in turn; a failed input does not stop the others. */
export async function convertFiles(
  inputs: readonly string[],
  options: ConvertOptions,
): Promise<ConvertReport> {
  const results: InputResult[] = [];
  for (const input of inputs) results.push(await convertFile(input, options));
  let files = 0, rows = 0, failed = 0;
  for (const r of results) {
    if (!r.ok) failed++;
    else {
      files += r.files.length;
      rows += r.files.reduce((n, f) => n + f.rows, 0);
    }
  }
  return { inputs: results, total: { inputs: results.length, failed, files, rows } };
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/** The human-readable report: per input its tables' files and rows, then the total. */
export function formatReport(report: ConvertReport): string {
  const lines: string[] = [];
  for (const r of report.inputs) {
    if (!r.ok) {
      lines.push(`${r.input}: FAILED`);
      continue;
    }
    const how = `${r.signal}, ${r.format}${r.gzip ? ", gzip" : ""}`;
    lines.push(`${r.input} (${how}): ${plural(r.records, "record")}, ${plural(r.files.length, "file")}`);
    for (const t of r.tables) {
      lines.push(`  ${t.table}: ${plural(t.files, "file")}, ${plural(t.rows, "row")}`);
    }
    if (r.rejected) lines.push(`  rejected ${plural(r.rejected, "record")}: ${r.rejectMessage}`);
  }
  const t = report.total;
  lines.push(
    `total: ${plural(t.inputs, "input")}, ${plural(t.files, "file")}, ${plural(t.rows, "row")}` +
      (t.failed ? `, ${t.failed} failed` : ""),
  );
  return lines.join("\n") + "\n";
}

/**
 * Runs `convert` and writes its report: errors to stderr (naming the file), the report to stdout
 * (human text, or JSON with `json: true`). Returns the exit code: 0, or 1 when any input failed.
 */
export async function runConvert(
  inputs: readonly string[],
  io: CliIo,
  options: ConvertOptions & {
    /** Machine-readable report; default false. */
    json?: boolean;
  },
): Promise<number> {
  const report = await convertFiles(inputs, options);
  for (const r of report.inputs) if (!r.ok) io.stderr(`error: ${r.input}: ${r.error}\n`);
  io.stdout(options.json ? JSON.stringify(report, null, 2) + "\n" : formatReport(report));
  return report.total.failed ? 1 : 0;
}
