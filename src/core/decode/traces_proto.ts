/**
 * `ExportTraceServiceRequest` protobuf → `otel_traces` rows, straight from the wire into the columns.
 * Events and links become the parallel lists of the `Events.*` and `Links.*` Nested columns.
 *
 * @module
 */

import type {
  KeyedMapColumn,
  ListColumn,
  MapColumn,
  SharedMapColumn,
  SharedStrColumn,
  StrColumn,
  U64Column,
} from "../table/columns.ts";
import {
  countNested,
  type DecodeLimits,
  DecodeMeter,
  runSteps,
  SCRATCH_ENTRY_BYTES,
} from "./decode_limits.ts";
import { DecodeError } from "../errors.ts";
import { addAttributeField, addKeyValue, pushUtf8 } from "./proto_values.ts";
import { countProtoItems, expectRows, type ScopeContext, walkProtoRequest } from "./proto_request.ts";
import { Rows } from "../table/rows.ts";
import { TRACES } from "../table/schema.ts";
import { ProtoAttrScratch } from "./proto_attrs.ts";
import { AttrScratch, pushHexId } from "../table/values.ts";
import { I32, VARINT, WireReader, wrongWireType } from "./wire.ts";

/** SpanKind names as the exporter writes them, indexed by the enum number. */
export const SPAN_KINDS: readonly string[] = [
  "SPAN_KIND_UNSPECIFIED",
  "SPAN_KIND_INTERNAL",
  "SPAN_KIND_SERVER",
  "SPAN_KIND_CLIENT",
  "SPAN_KIND_PRODUCER",
  "SPAN_KIND_CONSUMER",
];

/** Status.StatusCode names as the exporter writes them, indexed by the enum number. */
export const STATUS_CODES: readonly string[] = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];
// The same names as bytes, copied per span without reading strings.
const SPAN_KIND_BYTES = SPAN_KINDS.map((k) => new TextEncoder().encode(k));
const STATUS_CODE_BYTES = STATUS_CODES.map((k) => new TextEncoder().encode(k));

/** Column handles of `otel_traces`, resolved once per request. */
export class TracesColumns {
  readonly rows: Rows;
  readonly timestamp: U64Column;
  readonly traceId: StrColumn;
  readonly spanId: StrColumn;
  readonly parentSpanId: StrColumn;
  readonly traceState: StrColumn;
  readonly spanName: StrColumn;
  readonly spanKind: SharedStrColumn;
  readonly serviceName: SharedStrColumn;
  readonly resourceAttributes: SharedMapColumn;
  readonly scopeName: SharedStrColumn;
  readonly scopeVersion: SharedStrColumn;
  readonly spanAttributes: KeyedMapColumn;
  readonly duration: U64Column;
  readonly statusCode: SharedStrColumn;
  readonly statusMessage: StrColumn;
  readonly eventsTimestamp: ListColumn<U64Column>;
  readonly eventsName: ListColumn<StrColumn>;
  readonly eventsAttributes: ListColumn<MapColumn>;
  readonly linksTraceId: ListColumn<StrColumn>;
  readonly linksSpanId: ListColumn<StrColumn>;
  readonly linksTraceState: ListColumn<StrColumn>;
  readonly linksAttributes: ListColumn<MapColumn>;
  readonly scratch = new AttrScratch();
  /** The protobuf decoder's attribute scratches (ranges of the request). */
  readonly protoScratch = new ProtoAttrScratch();
  readonly protoNestedScratch = new ProtoAttrScratch();
  /** For event and link attributes, which can arrive between the span's own attributes on the wire. */
  readonly nestedScratch = new AttrScratch();
  /** Counts the work of the decode (set by the decoder). */
  meter: DecodeMeter = new DecodeMeter();

  /** `expectedRows` pre-sizes the buffers (e.g. body bytes / 280 for protobuf). */
  constructor(expectedRows = 64) {
    this.rows = new Rows(TRACES, expectedRows);
    this.timestamp = this.rows.col<U64Column>("Timestamp");
    this.traceId = this.rows.col<StrColumn>("TraceId");
    this.spanId = this.rows.col<StrColumn>("SpanId");
    this.parentSpanId = this.rows.col<StrColumn>("ParentSpanId");
    this.traceState = this.rows.col<StrColumn>("TraceState");
    this.spanName = this.rows.col<StrColumn>("SpanName");
    this.spanKind = this.rows.col<SharedStrColumn>("SpanKind");
    this.serviceName = this.rows.col<SharedStrColumn>("ServiceName");
    this.resourceAttributes = this.rows.col<SharedMapColumn>("ResourceAttributes");
    this.scopeName = this.rows.col<SharedStrColumn>("ScopeName");
    this.scopeVersion = this.rows.col<SharedStrColumn>("ScopeVersion");
    this.spanAttributes = this.rows.col<KeyedMapColumn>("SpanAttributes");
    this.duration = this.rows.col<U64Column>("Duration");
    this.statusCode = this.rows.col<SharedStrColumn>("StatusCode");
    this.statusMessage = this.rows.col<StrColumn>("StatusMessage");
    this.eventsTimestamp = this.rows.col<ListColumn<U64Column>>("Events.Timestamp");
    this.eventsName = this.rows.col<ListColumn<StrColumn>>("Events.Name");
    this.eventsAttributes = this.rows.col<ListColumn<MapColumn>>("Events.Attributes");
    this.linksTraceId = this.rows.col<ListColumn<StrColumn>>("Links.TraceId");
    this.linksSpanId = this.rows.col<ListColumn<StrColumn>>("Links.SpanId");
    this.linksTraceState = this.rows.col<ListColumn<StrColumn>>("Links.TraceState");
    this.linksAttributes = this.rows.col<ListColumn<MapColumn>>("Links.Attributes");
  }

  /** Appends the resource- and scope-level columns of `count` rows (all of one scope). */
  pushEnvelope(ctx: ScopeContext, count = 1): void {
    this.serviceName.pushRepeated(ctx.serviceBytes, count);
    ctx.resource.attributes.pushRepeated(this.resourceAttributes, count);
    this.scopeName.pushRepeated(ctx.scope.name, count);
    this.scopeVersion.pushRepeated(ctx.scope.version, count);
  }

  /** Closes the Events.* and Links.* list rows: the entries pushed since the last span belong to it. */
  /** Appends the name of SpanKind `kind` (0-5). */
  pushSpanKind(kind: number): void {
    this.spanKind.pushEnum(kind, SPAN_KIND_BYTES[kind]);
  }
  /** Appends the name of Status.StatusCode `code` (0-2). */
  pushStatusCode(code: number): void {
    this.statusCode.pushEnum(code, STATUS_CODE_BYTES[code]);
  }

  closeLists(): void {
    this.eventsTimestamp.closeRow();
    this.eventsName.closeRow();
    this.eventsAttributes.closeRow();
    this.linksTraceId.closeRow();
    this.linksSpanId.closeRow();
    this.linksTraceState.closeRow();
    this.linksAttributes.closeRow();
  }

  /** Appends Duration = end − start (0 when end < start), exactly on the 32-bit words. */
  pushDuration(sLo: number, sHi: number, eLo: number, eHi: number): void {
    if (eHi < sHi || (eHi === sHi && eLo < sLo)) return this.duration.push(0, 0);
    const lo = eLo - sLo;
    this.duration.push(lo >>> 0, (eHi - sHi - (lo < 0 ? 1 : 0)) >>> 0);
  }
}

const NAMES = { resources: "resourceSpans", scopes: "scopeSpans", items: "spans" };
// One reader per nesting level (span → event / link / status), reused across spans.
const SPAN_READER = new WireReader(new Uint8Array(0));
/**
 * Bit f set: field() leaves the value of Span field f unread: the fields of other wire types (6, 7, 8,
 * 10, 12, 14, 16), and events and links (11, 13), which their cases read.
 */
const SPAN_UNREAD = (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) |
  (1 << 14) | (1 << 16);
const STATUS_READER = new WireReader(new Uint8Array(0));
const EVENT_READER = new WireReader(new Uint8Array(0));
const LINK_READER = new WireReader(new Uint8Array(0));

/** Decodes a protobuf `ExportTraceServiceRequest` into `otel_traces` rows. Throws DecodeError. */
export function decodeTracesProto(buf: Uint8Array, limits?: DecodeLimits): Rows {
  return runSteps(decodeTracesProtoSteps(buf, new DecodeMeter(limits)));
}

/** decodeTracesProto in steps: yields whenever `meter` says a pause is due. */
export function* decodeTracesProtoSteps(buf: Uint8Array, meter: DecodeMeter): Generator<void, Rows> {
  const n = countProtoItems(buf);
  const cols = new TracesColumns(n >= 0 ? 16 : Math.ceil(buf.length / 300));
  const a = cols.protoScratch, b = cols.protoNestedScratch;
  meter.measure = () => cols.rows.byteLength() + (a.length + b.length) * SCRATCH_ENTRY_BYTES;
  cols.meter = meter;
  if (n >= 0) expectRows(cols.rows, n, buf.length, meter);
  // The envelope columns are filled per scope after its spans; a failure discards all rows anyway.
  yield* walkProtoRequest(buf, NAMES, (b, s, e, ctx) => decodeSpan(cols, b, s, e, ctx), meter, {
    scopeEnd: (ctx, count) => cols.pushEnvelope(ctx, count),
    itemsAreRecords: true,
  });
  meter.check();
  return cols.rows;
}

function checkId(start: number, end: number, size: number, field: string): void {
  if (end - start !== size && end !== start) {
    throw new DecodeError(`must be ${size} bytes, got ${end - start}`, field);
  }
}

function rethrow(e: unknown, segment: string): never {
  if (e instanceof DecodeError) throw e.within(segment);
  throw e;
}

function decodeSpan(c: TracesColumns, buf: Uint8Array, start: number, end: number, ctx: ScopeContext): void {
  const r = SPAN_READER.reset(buf, start, end);
  let sLo = 0, sHi = 0, eLo = 0, eHi = 0, kind = 0;
  let traceS = 0, traceE = 0, spanS = 0, spanE = 0, parentS = 0, parentE = 0;
  let stateS = 0, stateE = 0, nameS = 0, nameE = 0, statusS = -1, statusE = 0;
  let nAttr = 0, nEvent = 0, nLink = 0;
  const scratch = c.protoScratch;
  scratch.reset();
  // Events and links are decoded where they stand on the wire: their list entries go to the child columns
  // now, and the span's list rows close with the row. A failure leaves a partial row; callers discard the
  // whole request's Rows on any error.
  while (r.pos < r.end) {
    const tag = r.field(SPAN_UNREAD);
    const wt = tag & 7, field = tag >>> 3;
    const s = r.start, e = r.stop;
    switch (field) {
      case 1:
        r.rangeOf(wt, "traceId");
        traceS = s, traceE = e;
        checkId(traceS, traceE, 16, "traceId");
        break;
      case 2:
        r.rangeOf(wt, "spanId");
        spanS = s, spanE = e;
        checkId(spanS, spanE, 8, "spanId");
        break;
      case 3:
        r.rangeOf(wt, "traceState");
        stateS = s, stateE = e;
        break;
      case 4:
        r.rangeOf(wt, "parentSpanId");
        parentS = s, parentE = e;
        checkId(parentS, parentE, 8, "parentSpanId");
        break;
      case 5:
        r.rangeOf(wt, "name");
        nameS = s, nameE = e;
        break;
      case 6:
        kind = r.uint32Of(wt, "kind");
        if (kind > 5) throw new DecodeError(`unknown value ${kind | 0}`, "kind");
        break;
      case 7:
        r.fixed64Of(wt, "startTimeUnixNano");
        sLo = r.lo, sHi = r.hi;
        break;
      case 8:
        r.fixed64Of(wt, "endTimeUnixNano");
        eLo = r.lo, eHi = r.hi;
        break;
      case 9:
        r.rangeOf(wt, "attributes");
        try {
          addKeyValue(scratch, buf, s, e);
        } catch (err) {
          rethrow(err, `attributes[${nAttr}]`);
        }
        // Every 1024th attribute, event and link is counted, so a span with millions is measured as it grows.
        if ((++nAttr & 1023) === 0) countNested(c, nAttr, "attributes");
        break;
      case 11:
        r.bytesOf(wt, "events");
        try {
          decodeEvent(c, buf, r.start, r.stop);
        } catch (e) {
          rethrow(e, `events[${nEvent}]`);
        }
        if ((++nEvent & 1023) === 0) countNested(c, nEvent, "events");
        break;
      case 13:
        r.bytesOf(wt, "links");
        try {
          decodeLink(c, buf, r.start, r.stop);
        } catch (e) {
          rethrow(e, `links[${nLink}]`);
        }
        if ((++nLink & 1023) === 0) countNested(c, nLink, "links");
        break;
      case 15:
        r.rangeOf(wt, "status");
        statusS = s, statusE = e;
        break;
      case 10:
      case 12:
      case 14:
        if (wt !== VARINT) {
          const names = ["droppedAttributesCount", "droppedEventsCount", "droppedLinksCount"];
          throw wrongWireType(names[(field - 10) / 2], wt, VARINT);
        }
        r.uint32();
        break;
      case 16:
        if (wt !== I32) throw wrongWireType("flags", wt, I32);
        r.fixed32();
        break;
      default:
        r.skipRest(wt);
    }
  }
  c.timestamp.push(sLo, sHi);
  pushHexId(c.traceId, buf, traceS, traceE);
  pushHexId(c.spanId, buf, spanS, spanE);
  pushHexId(c.parentSpanId, buf, parentS, parentE);
  r.start = stateS, r.stop = stateE;
  pushUtf8(c.traceState, r, "traceState");
  r.start = nameS, r.stop = nameE;
  pushUtf8(c.spanName, r, "name");
  c.pushSpanKind(kind);
  scratch.flushToKeyed(c.spanAttributes);
  c.pushDuration(sLo, sHi, eLo, eHi);
  if (statusS < 0) {
    c.pushStatusCode(0);
    c.statusMessage.pushEmpty();
  } else {
    try {
      decodeStatus(c, buf, statusS, statusE);
    } catch (e) {
      rethrow(e, "status");
    }
  }
  c.closeLists();
  c.rows.endRow(ctx.service, sLo, sHi);
}

function decodeStatus(c: TracesColumns, buf: Uint8Array, start: number, end: number): void {
  const r = STATUS_READER.reset(buf, start, end);
  let code = 0, msgS = 0, msgE = 0;
  while (r.pos < r.end) {
    const tag = r.tag();
    const wt = tag & 7;
    switch (tag >>> 3) {
      case 2:
        r.bytesOf(wt, "message");
        msgS = r.start, msgE = r.stop;
        break;
      case 3:
        code = r.uint32Of(wt, "code");
        if (code > 2) throw new DecodeError(`unknown value ${code | 0}`, "code");
        break;
      default:
        r.skip(wt);
    }
  }
  r.start = msgS, r.stop = msgE;
  pushUtf8(c.statusMessage, r, "message");
  c.pushStatusCode(code);
}

function decodeEvent(c: TracesColumns, buf: Uint8Array, start: number, end: number): void {
  const r = EVENT_READER.reset(buf, start, end);
  let tLo = 0, tHi = 0, nameS = 0, nameE = 0, nAttr = 0;
  const scratch = c.protoNestedScratch;
  scratch.reset();
  while (r.pos < r.end) {
    const tag = r.tag();
    const wt = tag & 7;
    switch (tag >>> 3) {
      case 1:
        r.fixed64Of(wt, "timeUnixNano");
        tLo = r.lo, tHi = r.hi;
        break;
      case 2:
        r.bytesOf(wt, "name");
        nameS = r.start, nameE = r.stop;
        break;
      case 3:
        addAttributeField(scratch, r, wt, "attributes", nAttr++);
        if ((nAttr & 1023) === 0) countNested(c, nAttr, "attributes");
        break;
      case 4:
        if (wt !== VARINT) throw wrongWireType("droppedAttributesCount", wt, VARINT);
        r.uint32();
        break;
      default:
        r.skip(wt);
    }
  }
  r.start = nameS, r.stop = nameE;
  pushUtf8(c.eventsName.child, r, "name");
  c.eventsTimestamp.child.push(tLo, tHi);
  scratch.flushTo(c.eventsAttributes.child);
}

function decodeLink(c: TracesColumns, buf: Uint8Array, start: number, end: number): void {
  const r = LINK_READER.reset(buf, start, end);
  let traceS = 0, traceE = 0, spanS = 0, spanE = 0, stateS = 0, stateE = 0, nAttr = 0;
  const scratch = c.protoNestedScratch;
  scratch.reset();
  while (r.pos < r.end) {
    const tag = r.tag();
    const wt = tag & 7;
    switch (tag >>> 3) {
      case 1:
        r.bytesOf(wt, "traceId");
        traceS = r.start, traceE = r.stop;
        checkId(traceS, traceE, 16, "traceId");
        break;
      case 2:
        r.bytesOf(wt, "spanId");
        spanS = r.start, spanE = r.stop;
        checkId(spanS, spanE, 8, "spanId");
        break;
      case 3:
        r.bytesOf(wt, "traceState");
        stateS = r.start, stateE = r.stop;
        break;
      case 4:
        addAttributeField(scratch, r, wt, "attributes", nAttr++);
        if ((nAttr & 1023) === 0) countNested(c, nAttr, "attributes");
        break;
      case 5:
        if (wt !== VARINT) throw wrongWireType("droppedAttributesCount", wt, VARINT);
        r.uint32();
        break;
      case 6:
        if (wt !== I32) throw wrongWireType("flags", wt, I32);
        r.fixed32();
        break;
      default:
        r.skip(wt);
    }
  }
  r.start = stateS, r.stop = stateE;
  pushUtf8(c.linksTraceState.child, r, "traceState");
  pushHexId(c.linksTraceId.child, buf, traceS, traceE);
  pushHexId(c.linksSpanId.child, buf, spanS, spanE);
  scratch.flushTo(c.linksAttributes.child);
}
