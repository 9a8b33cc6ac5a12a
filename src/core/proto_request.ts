/**
 * Walks the envelope that every OTLP export request shares (request → Resource* → Scope* → items) in
 * protobuf form, and hands each item's byte range to a signal-specific decoder together with its
 * resource and scope. Schema URLs follow the items on the wire, so each level is scanned first.
 *
 * @module
 */

import { DecodeError } from "./errors.ts";
import { decodeEnvelope, type Envelope, scanContainer } from "./proto_values.ts";
import { ProtoAttrScratch } from "./proto_attrs.ts";
import type { Rows } from "./rows.ts";
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

function schemaUrl(buf: Uint8Array, ranges: Int32Array, field: string): Uint8Array {
  if (ranges.length === 0) return new Uint8Array(0);
  const s = ranges[ranges.length - 2], e = ranges[ranges.length - 1]; // the last occurrence wins
  if (!isUtf8(buf, s, e)) throw new DecodeError("invalid UTF-8", field);
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
 * the request could not fill).
 */
export function expectRows(rows: Rows, count: number, maxJump: number): void {
  rows.partOf.expectRows(count);
  for (const c of rows.columns) c.expectRows?.(count, maxJump);
}

/**
 * The resource or scope message whose (start, end) pairs are `ranges`: the last occurrence wins, as in
 * protobuf merging; none decodes as the empty message. Errors get the field name prefixed.
 */
function lastEnvelope(
  buf: Uint8Array,
  ranges: Int32Array,
  field: "resource" | "scope",
  scratch: ProtoAttrScratch,
): Envelope {
  const n = ranges.length;
  try {
    return n
      ? decodeEnvelope(buf, ranges[n - 2], ranges[n - 1], field === "scope", scratch)
      : decodeEnvelope(buf, 0, 0, field === "scope", scratch);
  } catch (e) {
    if (e instanceof DecodeError) throw e.within(field);
    throw e;
  }
}

/** Options of walkProtoRequest. */
export interface WalkOptions {
  /**
   * Called after the `count` items of a scope were handed to `item` (also for count 0), so that the
   * columns every row of the scope repeats can be filled in bulk. Default: none.
   */
  scopeEnd?: (ctx: ScopeContext, count: number) => void;
}

/**
 * Calls `item(buf, start, end, ctx)` for every item of the request in `buf`, in wire order. Errors
 * raised by `item` (or by the envelope) get the field path prefixed.
 */
export function walkProtoRequest(
  buf: Uint8Array,
  names: EnvelopeNames,
  item: (buf: Uint8Array, start: number, end: number, ctx: ScopeContext) => void,
  options: WalkOptions = {},
): void {
  const scopeEnd = options.scopeEnd;
  const scratch = new ProtoAttrScratch();
  const top = scanContainer(buf, 0, buf.length, [names.resources]);
  const resources = top.ranges[0];
  for (let ri = 0; ri < top.count[0]; ri++) {
    try {
      const rs = scanContainer(buf, resources[ri * 2], resources[ri * 2 + 1], [
        "resource",
        names.scopes,
        "schemaUrl",
      ]);
      const [resRanges, scopeRanges, urlRanges] = rs.ranges;
      const resource = lastEnvelope(buf, resRanges, "resource", scratch);
      const service = resource.attributes.lookup("service.name") ?? "";
      const ctx: ScopeContext = {
        resource,
        resourceSchemaUrl: schemaUrl(buf, urlRanges, "schemaUrl"),
        service,
        serviceBytes: encoder.encode(service),
        scope: resource,
        scopeSchemaUrl: new Uint8Array(0),
      };
      for (let si = 0; si < rs.count[1]; si++) {
        try {
          const ss = scanContainer(buf, scopeRanges[si * 2], scopeRanges[si * 2 + 1], [
            "scope",
            names.items,
            "schemaUrl",
          ]);
          const [scRanges, itemRanges, sUrl] = ss.ranges;
          ctx.scope = lastEnvelope(buf, scRanges, "scope", scratch);
          ctx.scopeSchemaUrl = schemaUrl(buf, sUrl, "schemaUrl");
          for (let ii = 0; ii < ss.count[1]; ii++) {
            try {
              item(buf, itemRanges[ii * 2], itemRanges[ii * 2 + 1], ctx);
            } catch (e) {
              if (e instanceof DecodeError) throw e.within(`${names.items}[${ii}]`);
              throw e;
            }
          }
          if (scopeEnd) scopeEnd(ctx, ss.count[1]);
        } catch (e) {
          if (e instanceof DecodeError) throw e.within(`${names.scopes}[${si}]`);
          throw e;
        }
      }
    } catch (e) {
      if (e instanceof DecodeError) throw e.within(`${names.resources}[${ri}]`);
      throw e;
    }
  }
}
