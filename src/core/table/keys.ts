/**
 * Object keys: `{prefix}{table path}/{service}/year=YYYY/month=MM/day=DD/hour=HH/{name}.parquet`,
 * partitioned by event time. `{name}` sorts by the first row's time, carries the writer's instance id,
 * and ends in a hash of the file's bytes and of the batch's identity (`salt`), so a retried or replayed
 * write of the same batch overwrites instead of duplicating, while two batches that happen to hold
 * identical rows (the same records sent in two requests) get two names and are both kept.
 *
 * @module
 */

import type { Partition } from "./rows.ts";
import type { TableDef } from "./schema.ts";

const SAFE = /^[A-Za-z0-9._-]$/;
const encoder = new TextEncoder();
const MAX_SERVICE_SEGMENT = 128;

/**
 * A service name as one safe path segment: characters outside `[A-Za-z0-9._-]` are %-escaped (UTF-8),
 * `.` and `..` are escaped, empty becomes `unknown`, and very long names are cut and suffixed by a hash.
 */
export function serviceSegment(service: string): string {
  if (service === "") return "unknown";
  let out = "";
  for (const ch of service) {
    if (SAFE.test(ch)) out += ch;
    else for (const b of encoder.encode(ch)) out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  if (out === "." || out === "..") out = out.replaceAll(".", "%2E");
  if (out.length > MAX_SERVICE_SEGMENT) {
    out = `${out.slice(0, MAX_SERVICE_SEGMENT - 17)}~${hash64(encoder.encode(service))}`;
  }
  return out;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, "0");

/** The partition folder: `{table path}/{service}/year=…/month=…/day=…/hour=…`. */
export function partitionPath(table: TableDef, part: Partition): string {
  const d = new Date(part.hour * 3_600_000);
  return `${table.path}/${serviceSegment(part.service)}/year=${d.getUTCFullYear()}/month=${
    pad(d.getUTCMonth() + 1)
  }/day=${pad(d.getUTCDate())}/hour=${pad(d.getUTCHours())}`;
}

/** Nanosecond timestamp words as `YYYYMMDDTHHMMSS.nnnnnnnnnZ` (fixed width, so names sort by time). */
export function compactTime(lo: number, hi: number): string {
  const ns = (BigInt(hi) << 32n) | BigInt(lo);
  const secs = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  const d = new Date(Number(secs) * 1000);
  return `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}T${
    pad(d.getUTCHours())
  }${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}.${frac.toString().padStart(9, "0")}Z`;
}

/** Options for object keys. */
export interface KeyOptions {
  /** Identifies the writing instance; unique per instance writing into one bucket. Default "local". */
  instanceId?: string;
  /** Prefix before the table path, e.g. `otel/` (a trailing "/" is added if missing). Default "". */
  prefix?: string;
  /**
   * What makes this batch itself, mixed into the name's hash: the server's ingest passes its run id and
   * the sequence numbers of the batch's requests, the Workers batcher a random value (both log the key
   * before writing, so a redo reuses it). Without one, files with the same bytes get the same name (a
   * request retried on a serverless home overwrites its first write). Default "".
   */
  salt?: string;
}

/** The object key of one file. `firstLo/firstHi` is the first (earliest) row's event time. */
export function objectKey(
  table: TableDef,
  file: { part: Partition; firstLo: number; firstHi: number; bytes: Uint8Array },
  options: KeyOptions = {},
): string {
  let prefix = options.prefix ?? "";
  if (prefix && !prefix.endsWith("/")) prefix += "/";
  const instance = serviceSegment(options.instanceId || "local");
  let hash = hash64(file.bytes);
  if (options.salt) hash = hash64(encoder.encode(`${hash}\u0000${options.salt}`));
  const name = `${compactTime(file.firstLo, file.firstHi)}-${instance}-${hash}`;
  return `${prefix}${partitionPath(table, file.part)}/${name}.parquet`;
}

/** A 64-bit non-cryptographic hash (two multiply-xorshift lanes over 32-bit words) as 16 hex digits. */
export function hash64(bytes: Uint8Array): string {
  let h1 = 0x9e3779b1 ^ bytes.length, h2 = 0x85ebca77 ^ bytes.length;
  const words = bytes.length >>> 2;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < words; i++) {
    const w = view.getUint32(i * 4, true);
    h1 = Math.imul(h1 ^ w, 0x85ebca6b);
    h1 = (h1 << 13) | (h1 >>> 19);
    h2 = Math.imul(h2 ^ w, 0xc2b2ae35);
    h2 = (h2 << 17) | (h2 >>> 15);
    h2 = (h2 + h1) | 0;
  }
  for (let i = words * 4; i < bytes.length; i++) {
    h1 = Math.imul(h1 ^ bytes[i], 0x27d4eb2f);
    h2 = Math.imul(h2 ^ bytes[i], 0x165667b1);
  }
  h1 ^= h1 >>> 16,
    h1 = Math.imul(h1, 0x85ebca6b),
    h1 ^= h1 >>> 13,
    h1 = Math.imul(h1, 0xc2b2ae35),
    h1 ^= h1 >>> 16;
  h2 ^= h2 >>> 16,
    h2 = Math.imul(h2, 0x7feb352d),
    h2 ^= h2 >>> 15,
    h2 = Math.imul(h2, 0x846ca68b),
    h2 ^= h2 >>> 16;
  h1 = (h1 + Math.imul(h2, 0x9e3779b1)) | 0;
  return (h1 >>> 0).toString(16).padStart(8, "0") + (h2 >>> 0).toString(16).padStart(8, "0");
}
