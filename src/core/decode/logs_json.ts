/**
 * OTLP/JSON `ExportLogsServiceRequest` → `otel_logs` rows.
 *
 * @module
 */

import { DecodeMeter } from "./decode_limits.ts";
import { decodeAllJson, type JsonDecoder, rowsJsonDecoder } from "./json_request.ts";
import { FieldNames, pick, scanEnd } from "./json_scan.ts";
import {
  addAttributesAt,
  enumAt,
  idAt,
  int32At,
  pushAnyValueAt,
  pushIdAt,
  pushStringAt,
  scanWithAttributes,
  u64At,
  u64Out,
} from "./json_values.ts";
import { LogsColumns } from "./logs_proto.ts";
import type { ScopeContext } from "./proto_request.ts";
import type { Rows } from "../table/rows.ts";

/** SeverityNumber names of the OTLP spec (0-24). */
export const SEVERITY_NUMBERS: Readonly<Record<string, number>> = Object.fromEntries(
  [
    "UNSPECIFIED",
    "TRACE",
    "TRACE2",
    "TRACE3",
    "TRACE4",
    "DEBUG",
    "DEBUG2",
    "DEBUG3",
    "DEBUG4",
    "INFO",
    "INFO2",
    "INFO3",
    "INFO4",
    "WARN",
    "WARN2",
    "WARN3",
    "WARN4",
    "ERROR",
    "ERROR2",
    "ERROR3",
    "ERROR4",
    "FATAL",
    "FATAL2",
    "FATAL3",
    "FATAL4",
  ].map((n, i) => [`SEVERITY_NUMBER_${n}`, i]),
);

const NAMES = { resources: "resourceLogs", scopes: "scopeLogs", items: "logRecords" };

/** Decodes OTLP/JSON logs requests (as JS values) into `otel_logs` rows. Throws DecodeError. */
export function decodeLogsJson(requests: readonly unknown[]): Rows {
  const meter = new DecodeMeter();
  return decodeAllJson(logsJsonDecoder(meter), requests, meter);
}

/**
 * A decoder of OTLP/JSON logs requests, one at a time, into one set of `otel_logs` rows; `expectedRows`
 * sizes the buffers up front (e.g. jsonRowsEstimate of the body).
 */
export function logsJsonDecoder(meter: DecodeMeter, expectedRows?: number): JsonDecoder<Rows> {
  const c = new LogsColumns(expectedRows);
  return rowsJsonDecoder(c, NAMES, (buf, p, ctx) => decodeLogRecord(c, buf, p, ctx), meter);
}

/** LogRecord fields. */
const FIELDS = new FieldNames([
  "severityNumber",
  "traceId",
  "spanId",
  "timeUnixNano",
  "observedTimeUnixNano",
  "severityText",
  "eventName",
  "flags",
  "body",
  "attributes",
]);
const at = new Int32Array(FIELDS.size);

function decodeLogRecord(c: LogsColumns, buf: Uint8Array, p: number, ctx: ScopeContext): number {
  const read = scanWithAttributes(buf, p, FIELDS, at, 9, c.scratch, c.meter);
  const end = scanEnd.p;
  const traceAt = pick(at, 1), spanAt = pick(at, 2), observedAt = pick(at, 4), textAt = pick(at, 5);
  const eventAt = pick(at, 6), bodyAt = pick(at, 8), attributesAt = pick(at, 9);
  const severity = enumAt(buf, pick(at, 0), SEVERITY_NUMBERS, "severityNumber", 24);
  const traceId = idAt(buf, traceAt, 16, "traceId");
  const spanId = idAt(buf, spanAt, 8, "spanId");
  const flags = int32At(buf, pick(at, 7), "flags");
  u64At(buf, pick(at, 3), "timeUnixNano");
  let lo = u64Out.lo, hi = u64Out.hi;
  if (lo === 0 && hi === 0) {
    u64At(buf, observedAt, "observedTimeUnixNano");
    lo = u64Out.lo, hi = u64Out.hi;
  }
  c.timestamp.push(lo, hi);
  pushIdAt(c.traceId, buf, traceAt, 16, traceId);
  pushIdAt(c.spanId, buf, spanAt, 8, spanId);
  c.traceFlags.push(flags & 0xff);
  pushStringAt(c.severityText, buf, textAt, "severityText");
  c.severityNumber.push(severity);
  pushAnyValueAt(c.body, buf, bodyAt, "body");
  if (!read) addAttributesAt(c.scratch, buf, attributesAt, "attributes", c.meter);
  c.scratch.flushToKeyed(c.logAttributes);
  pushStringAt(c.eventName, buf, eventAt, "eventName");
  c.pushEnvelope(ctx);
  c.rows.endRow(ctx.service, lo, hi);
  return end;
}
