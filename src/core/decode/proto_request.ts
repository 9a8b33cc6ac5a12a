/**
 * Walks the envelope that every OTLP export request shares (request → Resource* → Scope* → items) in
 * protobuf form, and hands each item's byte range to a signal-specific decoder together with its
 * resource and scope. Schema URLs follow the items on the wire, so each level is scanned first.
 *
 * @module
 */

import { type DecodeMeter, PRESIZE_MAX_ROWS } from "./decode_limits.ts";
import { DecodeError } from "../errors.ts";
import { decodeEnvelope, type Envelope } from "./proto_values.ts";
import { ProtoAttrScratch } from "./proto_attrs.ts";
import type { Rows } from "../table/rows.ts";
import { isUtf8, WireReader } from "./wire.ts";

/** What every row under one scope repeats. */
export interface ScopeContext {
  resource: Envelope;
  resourceSchemaUrl: Uint8Array;
  service: string;
  serviceBytes: Uint8Array;
  scope: Envelope;
  scopeSchemaUrl: Uint8Array;
}

/** Field names of one signal's envelope (for error paths). */
export interface EnvelopeNames {
  readonly resources: string; // e.g. resourceLogs
  readonly scopes: string; // e.g. scopeLogs
  readonly items: string; // e.g. logRecords
}

const encoder = new TextEncoder();

/** The schema URL in `buf[s, e)` (`s` < 0: absent), checked. */
function schemaUrl(buf: Uint8Array, s: number, e: number): Uint8Array {
  if (s < 0 || s === e) return EMPTY;
  if (!isUtf8(buf, s, e)) throw new DecodeError("invalid UTF-8", "schemaUrl");
  return buf.subarray(s, e);
}

/**
 * Counts the items of a request (field 2 of field 2 of field 1, the shape every OTLP export request
 * shares) to size the column buffers up front. It never throws: on malformed input it returns -1 and
 * the walk reports the error.
 */
export function countProtoItems(buf: Uint8Array): number {
  const top = new WireReader(buf, 0, buf.length);
  const rs = new WireReader(buf, 0, 0), ss = new WireReader(buf, 0, 0);
  let count = 0;
  try {
    while (top.pos < top.end) {
      const tag = top.tag();
      top.skip(tag & 7);
      if (tag !== 0x0a) continue;
      rs.reset(buf, top.start, top.stop);
      while (rs.pos < rs.end) {
        const t = rs.tag();
        rs.skip(t & 7);
        if (t !== 0x12) continue;
        ss.reset(buf, rs.start, rs.stop);
        const end = ss.end;
        let p = ss.pos;
        while (p < end) {
          // Items with a one- or two-byte length, read here; the reader takes anything else.
          if (buf[p] === 0x12 && p + 2 < end) {
            const b1 = buf[p + 1], b2 = buf[p + 2];
            const next = b1 < 0x80 ? p + 2 + b1 : b2 < 0x80 ? p + 3 + ((b1 & 0x7f) | (b2 << 7)) : -1;
            if (next >= 0 && next <= end) {
              count++;
              p = next;
              continue;
            }
          }
          ss.pos = p;
          const u = ss.tag();
          ss.skip(u & 7);
          if (u === 0x12) count++;
          p = ss.pos;
        }
      }
    }
  } catch (e) {
    if (e instanceof DecodeError) return -1;
    throw e;
  }
  return count;
}

/**
 * Sizes freshly created (small) `rows` for the `count` rows a request holds (from countProtoItems):
 * fixed-width and offset buffers exactly, string bytes and map entries by extrapolating as they fill,
 * each jump bounded by the request's size `maxJump` (so a few huge first rows cannot reserve memory
 * the request could not fill). At most PRESIZE_MAX_ROWS rows are sized up front, and what that holds
 * is charged to `meter` before it is allocated.
 */
export function expectRows(rows: Rows, count: number, maxJump: number, meter: DecodeMeter): void {
  meter.expectRecords(count);
  const n = Math.min(count, PRESIZE_MAX_ROWS);
  // Fixed-width buffers take at most 8 bytes a row and column (a U64), offsets and ids 4.
  meter.reserve(n * (rows.columns.length + 1) * 8);
  rows.partOf.expectRows(n);
  for (const c of rows.columns) c.expectRows?.(n, maxJump);
}

const EMPTY = new Uint8Array(0);

/** Ranges of the last fields 1 and 3 of an envelope message (`s1`/`s3` -1 when absent). */
interface Found {
  s1: number;
  e1: number;
  s3: number;
  e3: number;
}

/**
 * The resource or scope envelopes of one request, decoded once each: an empty (or absent) one is shared
 * by every envelope of its kind, and one that repeats the bytes of the previous one reuses it. So
 * millions of empty or identical envelopes cost a comparison each, not a decode and its buffers.
 */
class EnvelopeReuse {
  private empty: Envelope | undefined;
  private lastBuf: Uint8Array = EMPTY;
  private lastS = 0;
  private lastE = 0;
  private last: Envelope | undefined;

  constructor(
    private readonly isScope: boolean,
    private readonly scratch: ProtoAttrScratch,
    private readonly meter: DecodeMeter,
  ) {}

  /** The envelope in `buf[s, e)` (`s` < 0: absent). Errors get the field name prefixed. */
  get(buf: Uint8Array, s: number, e: number): Envelope {
    if (s < 0 || s === e) {
      this.empty ??= this.decode(buf, 0, 0);
      this.last = this.empty, this.lastS = this.lastE = 0;
    } else if (
      !(this.last !== this.empty && this.lastBuf === buf && sameBytes(buf, this.lastS, this.lastE, s, e))
    ) {
      this.last = this.decode(buf, s, e);
      this.lastBuf = buf, this.lastS = s, this.lastE = e;
    }
    return this.last!;
  }

  private decode(buf: Uint8Array, s: number, e: number): Envelope {
    this.meter.stats.envelopesDecoded++;
    try {
      return decodeEnvelope(buf, s, e, this.isScope, this.scratch, this.meter);
    } catch (err) {
      if (err instanceof DecodeError) throw err.within(this.isScope ? "scope" : "resource");
      throw err;
    }
  }
}

/** Whether `buf[as, ae)` and `buf[bs, be)` hold the same bytes. */
function sameBytes(buf: Uint8Array, as: number, ae: number, bs: number, be: number): boolean {
  if (ae - as !== be - bs) return false;
  for (let i = 0; i < ae - as; i++) if (buf[as + i] !== buf[bs + i]) return false;
  return true;
}

/** A context for the scopes of one request, reused for all of them (set by enterResource and the walk). */
export function newScopeContext(): ScopeContext {
  return {
    resource: undefined as unknown as Envelope,
    resourceSchemaUrl: EMPTY,
    service: "",
    serviceBytes: EMPTY,
    scope: undefined as unknown as Envelope,
    scopeSchemaUrl: EMPTY,
  };
}

/** Points `ctx` at `resource`; its service name is read again only for another resource than before. */
export function enterResource(ctx: ScopeContext, resource: Envelope): void {
  if (resource === ctx.resource) return;
  ctx.resource = resource;
  ctx.service = resource.attributes.lookup("service.name") ?? "";
  ctx.serviceBytes = encoder.encode(ctx.service);
}

/** Options of walkProtoRequest. */
export interface WalkOptions {
  /**
   * Called after the `count` items of a scope were handed to `item` (not for scopes without items), so
   * that the columns every row of the scope repeats can be filled in bulk. Default: none.
   */
  scopeEnd?: (ctx: ScopeContext, count: number) => void;
  /** Whether each item is a record (a row: logs, traces) rather than a container of them (metrics). */
  itemsAreRecords?: boolean;
}

/**
 * Calls `item(buf, start, end, ctx)` for every item of the request in `buf`, in wire order, counting
 * envelopes and items with `meter`; yields whenever the meter says a pause is due. Errors raised by
 * `item` (or by the envelope) get the field path prefixed.
 *
 * Nothing is collected up front: each ResourceX and ScopeX message is read twice, once for its envelope
 * and schema URL (which may follow the items on the wire; the last occurrence wins) and once for its
 * children, so the memory a walk holds does not grow with the number of envelopes or items.
 */
export function* walkProtoRequest(
  buf: Uint8Array,
  names: EnvelopeNames,
  item: (buf: Uint8Array, start: number, end: number, ctx: ScopeContext) => void,
  meter: DecodeMeter,
  options: WalkOptions = {},
): Generator<void, void> {
  const scopeEnd = options.scopeEnd, records = options.itemsAreRecords === true;
  const scratch = new ProtoAttrScratch();
  const resources = new EnvelopeReuse(false, scratch, meter),
    scopes = new EnvelopeReuse(true, scratch, meter);
  const top = new WireReader(buf, 0, buf.length);
  const rl = new WireReader(buf, 0, 0), sl = new WireReader(buf, 0, 0);
  const found: Found = { s1: -1, e1: 0, s3: -1, e3: 0 };
  const ctx = newScopeContext();
  let ri = 0;
  while (top.pos < top.end) {
    const tag = top.tag();
    if (tag >>> 3 !== 1) {
      top.skip(tag & 7);
      continue;
    }
    top.bytesOf(tag & 7, names.resources);
    const rs = top.start, re = top.stop;
    try {
      meter.envelope();
      scanEnvelope(rl.reset(buf, rs, re), ["resource", names.scopes, "schemaUrl"], found);
      enterResource(ctx, resources.get(buf, found.s1, found.e1));
      ctx.resourceSchemaUrl = schemaUrl(buf, found.s3, found.e3);
      rl.reset(buf, rs, re);
      let si = 0;
      while (rl.pos < rl.end) {
        const t = rl.tag();
        if (t !== 0x12) {
          rl.skip(t & 7);
          continue;
        }
        rl.bytes();
        const ss = rl.start, se = rl.stop;
        try {
          meter.envelope();
          scanEnvelope(sl.reset(buf, ss, se), ["scope", names.items, "schemaUrl"], found);
          ctx.scope = scopes.get(buf, found.s1, found.e1);
          ctx.scopeSchemaUrl = schemaUrl(buf, found.s3, found.e3);
          const at: ItemsAt = { p: ss, n: 0 };
          while (at.p < se) {
            walkItems(buf, se, at, item, ctx, sl, meter, records, names.items);
            if (at.p < se) {
              meter.paused(at.p);
              yield;
            }
          }
          const ii = at.n;
          if (ii > 0 && scopeEnd) scopeEnd(ctx, ii);
        } catch (e) {
          if (e instanceof DecodeError) throw e.within(`${names.scopes}[${si}]`);
          throw e;
        }
        si++;
        if (meter.pauseDue(se)) {
          meter.paused(se);
          yield;
        }
      }
    } catch (e) {
      if (e instanceof DecodeError) throw e.within(`${names.resources}[${ri}]`);
      throw e;
    }
    ri++;
  }
}

/** Where walkItems is in a scope: the position, and the items handed over so far. */
interface ItemsAt {
  p: number;
  n: number;
}

/**
 * Hands the items of a scope from `at.p` on to `item` until the scope ends at `end` or the meter says a
 * pause is due, and updates `at`. A plain function rather than part of the walker, which is a generator:
 * the hot loop is then optimised like any other (and on-stack replaced while it runs).
 */
function walkItems(
  buf: Uint8Array,
  end: number,
  at: ItemsAt,
  item: (buf: Uint8Array, start: number, end: number, ctx: ScopeContext) => void,
  ctx: ScopeContext,
  r: WireReader,
  meter: DecodeMeter,
  records: boolean,
  name: string,
): void {
  let p = at.p, n = at.n, done = 0, left = meter.budget();
  const pauseAt = meter.pauseAt;
  while (p < end) {
    // Items with a one- or two-byte length, framed here; the reader takes anything else.
    let s = -1, e = 0;
    if (buf[p] === 0x12 && p + 2 < end) {
      const b1 = buf[p + 1], b2 = buf[p + 2];
      if (b1 < 0x80) s = p + 2, e = s + b1;
      else if (b2 < 0x80) s = p + 3, e = s + ((b1 & 0x7f) | (b2 << 7));
      if (e > end) s = -1;
    }
    if (s < 0) {
      r.pos = p;
      const u = r.tag();
      if (u !== 0x12) {
        r.skip(u & 7);
        p = r.pos;
        continue;
      }
      r.bytes();
      s = r.start, e = r.stop;
    }
    p = e;
    try {
      item(buf, s, e, ctx);
    } catch (err) {
      if (err instanceof DecodeError) throw err.within(`${name}[${n}]`);
      throw err;
    }
    n++, done++;
    // The meter is told every `budget` items (or when the slice's bytes are done), not every item.
    if (--left === 0 || p >= pauseAt) {
      meter.add(records, done);
      done = 0;
      if (meter.pauseDue(p)) break;
      left = meter.budget();
    }
  }
  if (done > 0) meter.add(records, done);
  at.p = p, at.n = n;
}

/**
 * Reads all fields of a ResourceX or ScopeX message (fields 1-3 are length-delimited and named by
 * `fieldNames`), checking their framing, and puts the ranges of the last fields 1 and 3 into `found`
 * (`s1`/`s3` -1 when absent).
 */
function scanEnvelope(r: WireReader, fieldNames: readonly string[], found: Found): void {
  found.s1 = found.s3 = -1;
  while (r.pos < r.end) {
    const tag = r.tag();
    const field = tag >>> 3, wt = tag & 7;
    if (field < 1 || field > 3) {
      r.skip(wt);
      continue;
    }
    r.bytesOf(wt, fieldNames[field - 1]);
    if (field === 1) found.s1 = r.start, found.e1 = r.stop;
    else if (field === 3) found.s3 = r.start, found.e3 = r.stop;
  }
}
