/**
 * OTLP/JSON `ExportTraceServiceRequest` → `otel_traces` rows.
 *
 * @module
 */

import { within } from "../errors.ts";
import { DecodeMeter } from "./decode_limits.ts";
import { decodeAllJson, type JsonDecoder, rowsJsonDecoder } from "./json_request.ts";
import { FieldNames, pick, scanEnd, scanFields } from "./json_scan.ts";
import {
  addAttributesAt,
  arrayAt,
  checkStringAt,
  eachObjectAt,
  enumAt,
  idAt,
  int32At,
  objectAt,
  pushIdAt,
  pushStringAt,
  scanWithAttributes,
  u64At,
  u64Out,
} from "./json_values.ts";
import type { ScopeContext } from "./proto_request.ts";
import type { Rows } from "../table/rows.ts";
import { SPAN_KINDS, STATUS_CODES, TracesColumns } from "./traces_proto.ts";

const byName = (names: readonly string[]): Readonly<Record<string, number>> =>
  Object.fromEntries(names.map((n, i) => [n, i]));

/** SpanKind names of the OTLP spec (0-5). */
export const SPAN_KIND_NUMBERS: Readonly<Record<string, number>> = byName(SPAN_KINDS);

/** Status.StatusCode names of the OTLP spec (0-2). */
export const STATUS_CODE_NUMBERS: Readonly<Record<string, number>> = byName(STATUS_CODES);

const NAMES = { resources: "resourceSpans", scopes: "scopeSpans", items: "spans" };

/** Decodes OTLP/JSON traces requests (as JS values) into `otel_traces` rows. Throws DecodeError. */
export function decodeTracesJson(requests: readonly unknown[]): Rows {
  const meter = new DecodeMeter();
  return decodeAllJson(tracesJsonDecoder(meter), requests, meter);
}

/**
 * A decoder of OTLP/JSON traces requests, one at a time, into one set of `otel_traces` rows;
 * `expectedRows` sizes the buffers up front (e.g. jsonRowsEstimate of the body).
 */
export function tracesJsonDecoder(meter: DecodeMeter, expectedRows?: number): JsonDecoder<Rows> {
  const c = new TracesColumns(expectedRows);
  return rowsJsonDecoder(c, NAMES, (buf, p, ctx) => decodeSpan(c, buf, p, ctx), meter);
}

/** Span fields. */
const SPAN = new FieldNames([
  "traceId",
  "spanId",
  "parentSpanId",
  "traceState",
  "droppedAttributesCount",
  "droppedEventsCount",
  "droppedLinksCount",
  "startTimeUnixNano",
  "endTimeUnixNano",
  "name",
  "kind",
  "flags",
  "status",
  "events",
  "links",
  "attributes",
]);
const spanAt = new Int32Array(SPAN.size);
const STATUS = new FieldNames(["code", "message"]);
const statusAt = new Int32Array(STATUS.size);
const EVENT = new FieldNames(["timeUnixNano", "droppedAttributesCount", "name", "attributes"]);
const eventAt = new Int32Array(EVENT.size);
const LINK = new FieldNames([
  "traceId",
  "spanId",
  "traceState",
  "droppedAttributesCount",
  "flags",
  "attributes",
]);
const linkAt = new Int32Array(LINK.size);

function decodeSpan(c: TracesColumns, buf: Uint8Array, p: number, ctx: ScopeContext): number {
  const at = spanAt, scratch = c.scratch;
  const read = scanWithAttributes(buf, p, SPAN, at, 15, scratch, c.meter);
  const end = scanEnd.p;
  const traceAt = pick(at, 0), spanIdAt = pick(at, 1), parentAt = pick(at, 2), stateAt = pick(at, 3);
  const nameAt = pick(at, 9), statusP = pick(at, 12), eventsAt = pick(at, 13), linksAt = pick(at, 14);
  const attributesAt = pick(at, 15);
  const traceId = idAt(buf, traceAt, 16, "traceId");
  const spanId = idAt(buf, spanIdAt, 8, "spanId");
  const parentSpanId = idAt(buf, parentAt, 8, "parentSpanId");
  checkStringAt(buf, stateAt, "traceState");
  checkStringAt(buf, nameAt, "name");
  const kind = enumAt(buf, pick(at, 10), SPAN_KIND_NUMBERS, "kind", 5);
  int32At(buf, pick(at, 11), "flags");
  int32At(buf, pick(at, 4), "droppedAttributesCount");
  int32At(buf, pick(at, 5), "droppedEventsCount");
  int32At(buf, pick(at, 6), "droppedLinksCount");
  u64At(buf, pick(at, 7), "startTimeUnixNano");
  const sLo = u64Out.lo, sHi = u64Out.hi;
  u64At(buf, pick(at, 8), "endTimeUnixNano");
  const eLo = u64Out.lo, eHi = u64Out.hi;
  let code = 0, codeAt = -1, messageAt = -1;
  if (objectAt(buf, statusP, "status")) {
    scanFields(buf, statusP, STATUS, statusAt);
    codeAt = pick(statusAt, 0), messageAt = pick(statusAt, 1);
    within("status", () => {
      code = enumAt(buf, codeAt, STATUS_CODE_NUMBERS, "code", 2);
      checkStringAt(buf, messageAt, "message");
    });
  }
  const hasEvents = arrayAt(buf, eventsAt, "events");
  const hasLinks = arrayAt(buf, linksAt, "links");
  if (!read) addAttributesAt(scratch, buf, attributesAt, "attributes", c.meter);

  c.timestamp.push(sLo, sHi);
  pushIdAt(c.traceId, buf, traceAt, 16, traceId);
  pushIdAt(c.spanId, buf, spanIdAt, 8, spanId);
  pushIdAt(c.parentSpanId, buf, parentAt, 8, parentSpanId);
  pushStringAt(c.traceState, buf, stateAt, "traceState");
  pushStringAt(c.spanName, buf, nameAt, "name");
  c.pushSpanKind(kind);
  c.pushEnvelope(ctx);
  scratch.flushToKeyed(c.spanAttributes);
  c.pushDuration(sLo, sHi, eLo, eHi);
  c.pushStatusCode(code);
  pushStringAt(c.statusMessage, buf, messageAt, "message");
  // A failure below leaves a partial row; callers discard the whole request's Rows on any error.
  if (hasEvents) eachObjectAt(buf, eventsAt, "events", c.meter, (q) => pushEvent(c, buf, q));
  if (hasLinks) eachObjectAt(buf, linksAt, "links", c.meter, (q) => pushLink(c, buf, q));
  c.closeLists();
  c.rows.endRow(ctx.service, sLo, sHi);
  return end;
}

function pushEvent(c: TracesColumns, buf: Uint8Array, p: number): number {
  scanFields(buf, p, EVENT, eventAt);
  const end = scanEnd.p, nameAt = pick(eventAt, 2), attributesAt = pick(eventAt, 3);
  u64At(buf, pick(eventAt, 0), "timeUnixNano");
  const lo = u64Out.lo, hi = u64Out.hi;
  checkStringAt(buf, nameAt, "name");
  int32At(buf, pick(eventAt, 1), "droppedAttributesCount");
  const scratch = c.nestedScratch;
  scratch.reset();
  addAttributesAt(scratch, buf, attributesAt, "attributes", c.meter);
  c.eventsTimestamp.child.push(lo, hi);
  pushStringAt(c.eventsName.child, buf, nameAt, "name");
  scratch.flushTo(c.eventsAttributes.child);
  return end;
}

function pushLink(c: TracesColumns, buf: Uint8Array, p: number): number {
  scanFields(buf, p, LINK, linkAt);
  const end = scanEnd.p, traceAt = pick(linkAt, 0), spanAt = pick(linkAt, 1), stateAt = pick(linkAt, 2);
  const flagsAt = pick(linkAt, 4), droppedAt = pick(linkAt, 3), attributesAt = pick(linkAt, 5);
  const traceId = idAt(buf, traceAt, 16, "traceId");
  const spanId = idAt(buf, spanAt, 8, "spanId");
  checkStringAt(buf, stateAt, "traceState");
  int32At(buf, flagsAt, "flags");
  int32At(buf, droppedAt, "droppedAttributesCount");
  const scratch = c.nestedScratch;
  scratch.reset();
  addAttributesAt(scratch, buf, attributesAt, "attributes", c.meter);
  pushIdAt(c.linksTraceId.child, buf, traceAt, 16, traceId);
  pushIdAt(c.linksSpanId.child, buf, spanAt, 8, spanId);
  pushStringAt(c.linksTraceState.child, buf, stateAt, "traceState");
  scratch.flushTo(c.linksAttributes.child);
  return end;
}
