/**
 * Request bodies for load runs, every one different at almost no cost per request: each body is one of
 * a pool of pre-encoded requests plus a one-record "tail" request unique to its sequence number.
 *
 * Why unique: servers name files by content (ours hashes the bytes), so a batch identical to an earlier
 * one would overwrite it and "records sent == records written" could not be checked; real traffic never
 * repeats either. How, per format:
 * - protobuf: concatenated messages merge, and `resource_*` is a repeated field, so `base ++ tail` is one
 *   request holding both;
 * - JSON: `{"resourceLogs":[` + base items + `,` + tail items + `]}`;
 * - gzip: the base is deflated once ending in a sync flush (byte-aligned, not final), the tail is
 *   deflated alone as the final block, and the gzip trailer's CRC-32 continues from the base's.
 *
 * @module
 */

import { constants, deflateRawSync } from "node:zlib";
import {
  DEFAULT_START_NS,
  encodeProtobuf,
  generateRequest,
  type OtlpRequest,
  RESOURCE_FIELD,
  type Signal,
} from "./data.ts";

/** Body encodings of a load run. */
export type Variant = "protobuf" | "json" | "protobuf+gzip" | "json+gzip";

/** All variants. */
export const VARIANTS: readonly Variant[] = ["protobuf", "json", "protobuf+gzip", "json+gzip"];

/** One request to send. */
export interface LoadBody {
  readonly body: Uint8Array<ArrayBuffer>;
  readonly contentType: string;
  /** `gzip` or undefined. */
  readonly contentEncoding?: string;
  /** Records in the body. */
  readonly records: number;
  /** Bytes before compression. */
  readonly rawBytes: number;
}

/** Options of a body source. */
export interface BodySourceOptions {
  /** Records per request, including the one-record tail; default 5000 (at least 2). */
  records?: number;
  /** Distinct base requests cycled through; default 40 (one 200k-row batch of 5000-record requests). */
  pool?: number;
  /** Seed of the first base request; default 1. */
  seed?: number;
  /** Time of the first record, ns since the epoch; default `DEFAULT_START_NS` (2025-01-15T10:00Z). */
  startNs?: bigint;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (gzip's) of `bytes`, continuing from the CRC of the bytes before them (`prev`, default 0). */
export function crc32(bytes: Uint8Array, prev = 0): number {
  let c = ~prev >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const GZIP_HEADER = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);

function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

interface Base {
  /** The constant leading bytes of every body built on this base. */
  head: Uint8Array;
  /** `head` deflated, ending in a sync flush (gzip variants only). */
  deflated?: Uint8Array;
  crc: number;
}

const utf8 = new TextEncoder();
const SECOND = 1_000_000_000n;

/** Produces unique request bodies of one signal and variant. */
export class BodySource {
  readonly records: number;
  private readonly bases: Base[] = [];
  private readonly json: boolean;
  private readonly gzip: boolean;
  private readonly startNs: bigint;

  constructor(readonly signal: Signal, readonly variant: Variant, options: BodySourceOptions = {}) {
    this.records = Math.max(2, options.records ?? 5000);
    const pool = Math.max(1, options.pool ?? 40);
    const seed = options.seed ?? 1;
    this.startNs = options.startNs ?? DEFAULT_START_NS;
    this.json = variant.startsWith("json");
    this.gzip = variant.endsWith("+gzip");
    for (let b = 0; b < pool; b++) {
      // Bases a minute apart: all in one event hour, so the partitions are the services only.
      const request = generateRequest(signal, this.records - 1, {
        seed: seed * 100_003 + b,
        startNs: this.startNs + BigInt(b % 55) * 60n * SECOND,
      });
      const head = this.json ? this.jsonHead(request) : encodeProtobuf(signal, request);
      const base: Base = { head, crc: crc32(head) };
      if (this.gzip) base.deflated = deflateRawSync(head, { finishFlush: constants.Z_SYNC_FLUSH });
      this.bases.push(base);
    }
  }

  /** The `seq`-th body (any non-negative integer); different `seq`s give different bodies. */
  body(seq: number): LoadBody {
    const base = this.bases[seq % this.bases.length];
    const request = generateRequest(this.signal, 1, {
      seed: 0x7a11 + seq,
      // Within the base's minute, 1 µs apart per sequence number: unique, and the same hour.
      startNs: this.startNs + BigInt((seq % this.bases.length) % 55) * 60n * SECOND + BigInt(seq) * 1000n,
      serviceOffset: seq,
    });
    const tail = this.json ? this.jsonTail(request) : encodeProtobuf(this.signal, request);
    const rawBytes = base.head.length + tail.length;
    let body: Uint8Array<ArrayBuffer>;
    if (this.gzip) {
      const trailer = new Uint8Array(8);
      const view = new DataView(trailer.buffer);
      view.setUint32(0, crc32(tail, base.crc), true);
      view.setUint32(4, rawBytes >>> 0, true);
      body = concat([GZIP_HEADER, base.deflated!, deflateRawSync(tail), trailer]);
    } else {
      body = concat([base.head, tail]);
    }
    return {
      body,
      contentType: this.json ? "application/json" : "application/x-protobuf",
      contentEncoding: this.gzip ? "gzip" : undefined,
      records: this.records,
      rawBytes,
    };
  }

  /** `{"resourceLogs":[<items>,` — the request without its closing, ready for the tail's items. */
  private jsonHead(request: OtlpRequest): Uint8Array {
    const field = RESOURCE_FIELD[this.signal];
    const items = JSON.stringify((request as unknown as Record<string, unknown[]>)[field]);
    return utf8.encode(`{"${field}":${items.slice(0, -1)},`);
  }

  /** `<items>]}` — the tail request's resources closing the body. */
  private jsonTail(request: OtlpRequest): Uint8Array {
    const field = RESOURCE_FIELD[this.signal];
    const items = JSON.stringify((request as unknown as Record<string, unknown[]>)[field]);
    return utf8.encode(`${items.slice(1)}}`);
  }
}
