/**
 * OTLP/JSON `ExportTraceServiceRequest` → `otel_traces` rows.
 *
 * @module
 */

import { DecodeError, within } from "../errors.ts";
import { DecodeMeter } from "./decode_limits.ts";
import { decodeAllJson, type JsonDecoder, JsonRequestWalker } from "./json_request.ts";
import {
  addJsonAttributes,
  arrayField,
  enumValue,
  field,
  id,
  int32,
  type JsonObject,
  objectField,
  stringField,
  u64,
  u64Out,
} from "./json_values.ts";
import type { Rows } from "../table/rows.ts";
import { SPAN_KINDS, STATUS_CODES, TracesColumns } from "./traces_proto.ts";
import { pushHexId } from "../table/values.ts";

const byName = (names: readonly string[]): Readonly<Record<string, number>> =>
  Object.fromEntries(names.map((n, i) => [n, i]));

/** SpanKind names of the OTLP spec (0-5). */
export const SPAN_KIND_NUMBERS: Readonly<Record<string, number>> = byName(SPAN_KINDS);

/** Status.StatusCode names of the OTLP spec (0-2). */
export const STATUS_CODE_NUMBERS: Readonly<Record<string, number>> = byName(STATUS_CODES);

const NAMES = { resources: "resourceSpans", scopes: "scopeSpans", items: "spans" };

function asObject(v: unknown): JsonObject {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new DecodeError("expected an object");
  return v as JsonObject;
}

/** Decodes parsed OTLP/JSON traces requests into `otel_traces` rows. Throws DecodeError. */
export function decodeTracesJson(requests: readonly unknown[]): Rows {
  return decodeAllJson(tracesJsonDecoder(new DecodeMeter()), requests);
}

/** A decoder of OTLP/JSON traces requests, one at a time, into one set of `otel_traces` rows. */
export function tracesJsonDecoder(meter: DecodeMeter): JsonDecoder<Rows> {
  const c = new TracesColumns();
  c.meter = meter;
  meter.measure = () => c.rows.byteLength();
  const walker = new JsonRequestWalker(
    NAMES,
    (o: JsonObject, ctx) => {
      const traceId = id(field(o, "traceId", "trace_id"), 16, "traceId");
      const spanId = id(field(o, "spanId", "span_id"), 8, "spanId");
      const parentSpanId = id(field(o, "parentSpanId", "parent_span_id"), 8, "parentSpanId");
      const traceState = stringField(o, "traceState", "trace_state");
      const name = stringField(o, "name");
      const kind = enumValue(field(o, "kind"), SPAN_KIND_NUMBERS, "kind", 5);
      int32(field(o, "flags"), "flags");
      int32(field(o, "droppedAttributesCount", "dropped_attributes_count"), "droppedAttributesCount");
      int32(field(o, "droppedEventsCount", "dropped_events_count"), "droppedEventsCount");
      int32(field(o, "droppedLinksCount", "dropped_links_count"), "droppedLinksCount");
      u64(field(o, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano");
      const sLo = u64Out.lo, sHi = u64Out.hi;
      u64(field(o, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano");
      const eLo = u64Out.lo, eHi = u64Out.hi;
      const status = objectField(o, "status");
      let code = 0, message = "";
      if (status) {
        within("status", () => {
          code = enumValue(field(status, "code"), STATUS_CODE_NUMBERS, "code", 2);
          message = stringField(status, "message");
        });
      }
      const events = arrayField(o, "events");
      const links = arrayField(o, "links");
      const scratch = c.scratch;
      scratch.reset();
      addJsonAttributes(scratch, o.attributes, "attributes");

      c.timestamp.push(sLo, sHi);
      pushHexId(c.traceId, traceId, 0, traceId.length);
      pushHexId(c.spanId, spanId, 0, spanId.length);
      pushHexId(c.parentSpanId, parentSpanId, 0, parentSpanId.length);
      c.traceState.pushString(traceState);
      c.spanName.pushString(name);
      c.pushSpanKind(kind);
      c.pushEnvelope(ctx);
      scratch.flushToKeyed(c.spanAttributes);
      c.pushDuration(sLo, sHi, eLo, eHi);
      c.pushStatusCode(code);
      c.statusMessage.pushString(message);
      // A failure below leaves a partial row; callers discard the whole request's Rows on any error.
      for (let i = 0; i < events.length; i++) within(`events[${i}]`, () => pushEvent(c, asObject(events[i])));
      for (let i = 0; i < links.length; i++) within(`links[${i}]`, () => pushLink(c, asObject(links[i])));
      c.closeLists();
      c.rows.endRow(ctx.service, sLo, sHi);
      c.meter.items(events.length + links.length);
    },
    meter,
    true,
  );
  return { walk: (request, pos) => walker.walk(request, pos), result: () => c.rows };
}

function pushEvent(c: TracesColumns, e: JsonObject): void {
  u64(field(e, "timeUnixNano", "time_unix_nano"), "timeUnixNano");
  const lo = u64Out.lo, hi = u64Out.hi;
  const name = stringField(e, "name");
  int32(field(e, "droppedAttributesCount", "dropped_attributes_count"), "droppedAttributesCount");
  const scratch = c.nestedScratch;
  scratch.reset();
  addJsonAttributes(scratch, e.attributes, "attributes");
  c.eventsTimestamp.child.push(lo, hi);
  c.eventsName.child.pushString(name);
  scratch.flushTo(c.eventsAttributes.child);
}

function pushLink(c: TracesColumns, l: JsonObject): void {
  const traceId = id(field(l, "traceId", "trace_id"), 16, "traceId");
  const spanId = id(field(l, "spanId", "span_id"), 8, "spanId");
  const traceState = stringField(l, "traceState", "trace_state");
  int32(field(l, "flags"), "flags");
  int32(field(l, "droppedAttributesCount", "dropped_attributes_count"), "droppedAttributesCount");
  const scratch = c.nestedScratch;
  scratch.reset();
  addJsonAttributes(scratch, l.attributes, "attributes");
  pushHexId(c.linksTraceId.child, traceId, 0, traceId.length);
  pushHexId(c.linksSpanId.child, spanId, 0, spanId.length);
  c.linksTraceState.child.pushString(traceState);
  scratch.flushTo(c.linksAttributes.child);
}
