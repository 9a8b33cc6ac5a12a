/**
 * `ExportLogsServiceRequest` protobuf → `otel_logs` rows, straight from the wire into the columns.
 *
 * @module
 */

import type {
  KeyedMapColumn,
  SharedMapColumn,
  SharedStrColumn,
  StrColumn,
  U64Column,
  U8Column,
} from "../table/columns.ts";
import {
  countNested,
  type DecodeLimits,
  DecodeMeter,
  runSteps,
  SCRATCH_ENTRY_BYTES,
} from "./decode_limits.ts";
import { DecodeError } from "../errors.ts";
import { addKeyValue, pushAnyValue, pushStringValue, pushUtf8 } from "./proto_values.ts";
import { countProtoItems, expectRows, type ScopeContext, walkProtoRequest } from "./proto_request.ts";
import { Rows } from "../table/rows.ts";
import { LOGS } from "../table/schema.ts";
import { ProtoAttrScratch } from "./proto_attrs.ts";
import { AttrScratch, pushHexId } from "../table/values.ts";
import { LEN, WireReader, wrongWireType } from "./wire.ts";

/** Column handles of `otel_logs`, resolved once per request. */
export class LogsColumns {
  readonly rows: Rows;
  readonly timestamp: U64Column;
  readonly traceId: StrColumn;
  readonly spanId: StrColumn;
  readonly traceFlags: U8Column;
  readonly severityText: StrColumn;
  readonly severityNumber: U8Column;
  readonly serviceName: SharedStrColumn;
  readonly body: StrColumn;
  readonly resourceSchemaUrl: SharedStrColumn;
  readonly resourceAttributes: SharedMapColumn;
  readonly scopeSchemaUrl: SharedStrColumn;
  readonly scopeName: SharedStrColumn;
  readonly scopeVersion: SharedStrColumn;
  readonly scopeAttributes: SharedMapColumn;
  readonly logAttributes: KeyedMapColumn;
  readonly eventName: StrColumn;
  readonly scratch = new AttrScratch();
  /** The protobuf decoder's attribute scratch (ranges of the request). */
  readonly protoScratch = new ProtoAttrScratch();
  /** Counts the work of the decode (set by the decoder). */
  meter: DecodeMeter = new DecodeMeter();

  /** `expectedRows` pre-sizes the buffers (e.g. body bytes / 300 for protobuf). */
  constructor(expectedRows = 64) {
    this.rows = new Rows(LOGS, expectedRows);
    this.timestamp = this.rows.col<U64Column>("Timestamp");
    this.traceId = this.rows.col<StrColumn>("TraceId");
    this.spanId = this.rows.col<StrColumn>("SpanId");
    this.traceFlags = this.rows.col<U8Column>("TraceFlags");
    this.severityText = this.rows.col<StrColumn>("SeverityText");
    this.severityNumber = this.rows.col<U8Column>("SeverityNumber");
    this.serviceName = this.rows.col<SharedStrColumn>("ServiceName");
    this.body = this.rows.col<StrColumn>("Body");
    this.resourceSchemaUrl = this.rows.col<SharedStrColumn>("ResourceSchemaUrl");
    this.resourceAttributes = this.rows.col<SharedMapColumn>("ResourceAttributes");
    this.scopeSchemaUrl = this.rows.col<SharedStrColumn>("ScopeSchemaUrl");
    this.scopeName = this.rows.col<SharedStrColumn>("ScopeName");
    this.scopeVersion = this.rows.col<SharedStrColumn>("ScopeVersion");
    this.scopeAttributes = this.rows.col<SharedMapColumn>("ScopeAttributes");
    this.logAttributes = this.rows.col<KeyedMapColumn>("LogAttributes");
    this.eventName = this.rows.col<StrColumn>("EventName");
  }

  /** Appends the resource- and scope-level columns of `count` rows (all of one scope). */
  pushEnvelope(ctx: ScopeContext, count = 1): void {
    this.serviceName.pushRepeated(ctx.serviceBytes, count);
    this.resourceSchemaUrl.pushRepeated(ctx.resourceSchemaUrl, count);
    ctx.resource.attributes.pushRepeated(this.resourceAttributes, count);
    this.scopeSchemaUrl.pushRepeated(ctx.scopeSchemaUrl, count);
    this.scopeName.pushRepeated(ctx.scope.name, count);
    this.scopeVersion.pushRepeated(ctx.scope.version, count);
    ctx.scope.attributes.pushRepeated(this.scopeAttributes, count);
  }
}

const RECORD_READER = new WireReader(new Uint8Array(0));
/** Bit f set: LogRecord field f is not length-delimited (1, 2, 8, 11). */
const NOT_LEN = (1 << 1) | (1 << 2) | (1 << 8) | (1 << 11);
const NAMES = { resources: "resourceLogs", scopes: "scopeLogs", items: "logRecords" };

/** Decodes a protobuf `ExportLogsServiceRequest` into `otel_logs` rows. Throws DecodeError. */
export function decodeLogsProto(buf: Uint8Array, limits?: DecodeLimits): Rows {
  return runSteps(decodeLogsProtoSteps(buf, new DecodeMeter(limits)));
}

/** decodeLogsProto in steps: yields whenever `meter` says a pause is due. */
export function* decodeLogsProtoSteps(buf: Uint8Array, meter: DecodeMeter): Generator<void, Rows> {
  const n = countProtoItems(buf);
  const cols = new LogsColumns(n >= 0 ? 16 : Math.ceil(buf.length / 300));
  const scratch = cols.protoScratch;
  meter.measure = () => cols.rows.byteLength() + scratch.length * SCRATCH_ENTRY_BYTES;
  cols.meter = meter;
  if (n >= 0) expectRows(cols.rows, n, buf.length, meter);
  // The envelope columns are filled per scope after its records; a failure discards all rows anyway.
  yield* walkProtoRequest(buf, NAMES, (b, s, e, ctx) => decodeLogRecord(cols, b, s, e, ctx), meter, {
    scopeEnd: (ctx, count) => cols.pushEnvelope(ctx, count),
    itemsAreRecords: true,
  });
  meter.check();
  return cols.rows;
}

function decodeLogRecord(
  c: LogsColumns,
  buf: Uint8Array,
  start: number,
  end: number,
  ctx: ScopeContext,
): void {
  const r = RECORD_READER.reset(buf, start, end);
  let tLo = 0, tHi = 0, oLo = 0, oHi = 0, severity = 0, flags = 0;
  let sevS = 0,
    sevE = 0,
    bodyS = -1,
    bodyE = 0,
    traceS = 0,
    traceE = 0,
    spanS = 0,
    spanE = 0,
    evS = 0,
    evE = 0;
  let nAttr = 0;
  const scratch = c.protoScratch;
  scratch.reset();
  // The reader's tag()/bytes() inlined for the one-byte tags and lengths that make up nearly every
  // record; anything else goes through the reader, which raises the errors.
  let p = start;
  while (p < end) {
    let tag = buf[p];
    if (tag >= 8 && tag < 0x80) p++;
    else {
      r.pos = p;
      tag = r.tag();
      p = r.pos;
    }
    const wt = tag & 7, field = tag >>> 3;
    let s = -1, e = 0;
    // Length-delimited values are read here, except for the fields that must not be (wrong wire type).
    if (wt === LEN && !(field < 12 && ((NOT_LEN >>> field) & 1) !== 0)) {
      const n = buf[p];
      if (p < end && n < 0x80 && n < end - p) s = p + 1, p = e = s + n;
      else {
        r.pos = p;
        r.bytes();
        s = r.start, p = e = r.stop;
      }
    }
    switch (field) {
      case 1:
        r.pos = p;
        r.fixed64Of(wt, "timeUnixNano");
        p = r.pos, tLo = r.lo, tHi = r.hi;
        break;
      case 11:
        r.pos = p;
        r.fixed64Of(wt, "observedTimeUnixNano");
        p = r.pos, oLo = r.lo, oHi = r.hi;
        break;
      case 2:
        r.pos = p;
        severity = r.uint32Of(wt, "severityNumber");
        p = r.pos;
        if (severity > 24) throw new DecodeError(`unknown severity number ${severity | 0}`, "severityNumber");
        break;
      case 3:
        if (wt !== LEN) throw wrongWireType("severityText", wt, LEN);
        sevS = s, sevE = e;
        break;
      case 5:
        if (wt !== LEN) throw wrongWireType("body", wt, LEN);
        bodyS = s, bodyE = e;
        break;
      case 6:
        if (wt !== LEN) throw wrongWireType("attributes", wt, LEN);
        try {
          addKeyValue(scratch, buf, s, e);
        } catch (err) {
          if (err instanceof DecodeError) throw err.within(`attributes[${nAttr}]`);
          throw err;
        }
        // Every 1024th attribute is counted, so a record with millions is measured as it grows.
        if ((++nAttr & 1023) === 0) countNested(c, nAttr, "attributes");
        break;
      case 8:
        r.pos = p;
        flags = r.fixed32Of(wt, "flags");
        p = r.pos;
        break;
      case 9:
        if (wt !== LEN) throw wrongWireType("traceId", wt, LEN);
        traceS = s, traceE = e;
        if (traceE - traceS !== 16 && traceE !== traceS) {
          throw new DecodeError(`must be 16 bytes, got ${traceE - traceS}`, "traceId");
        }
        break;
      case 10:
        if (wt !== LEN) throw wrongWireType("spanId", wt, LEN);
        spanS = s, spanE = e;
        if (spanE - spanS !== 8 && spanE !== spanS) {
          throw new DecodeError(`must be 8 bytes, got ${spanE - spanS}`, "spanId");
        }
        break;
      case 12:
        if (wt !== LEN) throw wrongWireType("eventName", wt, LEN);
        evS = s, evE = e;
        break;
      default:
        if (s < 0) {
          r.pos = p;
          r.skip(wt);
          p = r.pos;
        }
    }
  }
  // A failure below leaves a partial row; callers discard the whole request's Rows on any error.
  if (tLo === 0 && tHi === 0) tLo = oLo, tHi = oHi;
  c.timestamp.push(tLo, tHi);
  pushHexId(c.traceId, buf, traceS, traceE);
  pushHexId(c.spanId, buf, spanS, spanE);
  c.traceFlags.push(flags & 0xff);
  r.start = sevS, r.stop = sevE;
  pushUtf8(c.severityText, r, "severityText");
  c.severityNumber.push(severity);
  if (bodyS < 0) c.body.pushEmpty();
  else if (!pushStringValue(c.body, buf, bodyS, bodyE)) {
    try {
      pushAnyValue(c.body, buf, bodyS, bodyE);
    } catch (e) {
      if (e instanceof DecodeError) throw e.within("body");
      throw e;
    }
  }
  scratch.flushToKeyed(c.logAttributes);
  r.start = evS, r.stop = evE;
  pushUtf8(c.eventName, r, "eventName");
  c.rows.endRow(ctx.service, tLo, tHi);
}
