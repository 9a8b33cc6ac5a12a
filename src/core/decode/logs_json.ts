/**
 * OTLP/JSON `ExportLogsServiceRequest` → `otel_logs` rows.
 *
 * @module
 */

import { DecodeMeter } from "./decode_limits.ts";
import { decodeAllJson, type JsonDecoder, JsonRequestWalker } from "./json_request.ts";
import {
  addJsonAttributes,
  enumValue,
  field,
  id,
  int32,
  type JsonObject,
  pushJsonAnyValue,
  stringField,
  u64,
  u64Out,
} from "./json_values.ts";
import { LogsColumns } from "./logs_proto.ts";
import type { Rows } from "../table/rows.ts";
import { pushHexId } from "../table/values.ts";

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

/** Decodes parsed OTLP/JSON logs requests into `otel_logs` rows. Throws DecodeError. */
export function decodeLogsJson(requests: readonly unknown[]): Rows {
  return decodeAllJson(logsJsonDecoder(new DecodeMeter()), requests);
}

/** A decoder of OTLP/JSON logs requests, one at a time, into one set of `otel_logs` rows. */
export function logsJsonDecoder(meter: DecodeMeter): JsonDecoder<Rows> {
  const c = new LogsColumns();
  c.meter = meter;
  meter.measure = () => c.rows.byteLength();
  const walker = new JsonRequestWalker(
    NAMES,
    (o: JsonObject, ctx) => {
      const severity = enumValue(
        field(o, "severityNumber", "severity_number"),
        SEVERITY_NUMBERS,
        "severityNumber",
        24,
      );
      const traceId = id(field(o, "traceId", "trace_id"), 16, "traceId");
      const spanId = id(field(o, "spanId", "span_id"), 8, "spanId");
      const flags = int32(field(o, "flags"), "flags");
      u64(field(o, "timeUnixNano", "time_unix_nano"), "timeUnixNano");
      let lo = u64Out.lo, hi = u64Out.hi;
      if (lo === 0 && hi === 0) {
        u64(field(o, "observedTimeUnixNano", "observed_time_unix_nano"), "observedTimeUnixNano");
        lo = u64Out.lo, hi = u64Out.hi;
      }
      c.timestamp.push(lo, hi);
      pushHexId(c.traceId, traceId, 0, traceId.length);
      pushHexId(c.spanId, spanId, 0, spanId.length);
      c.traceFlags.push(flags & 0xff);
      c.severityText.pushString(stringField(o, "severityText", "severity_text"));
      c.severityNumber.push(severity);
      pushJsonAnyValue(c.body, o.body, "body");
      addJsonAttributes(c.scratch, o.attributes, "attributes");
      c.scratch.flushToKeyed(c.logAttributes);
      c.eventName.pushString(stringField(o, "eventName", "event_name"));
      c.pushEnvelope(ctx);
      c.rows.endRow(ctx.service, lo, hi);
    },
    meter,
    true,
  );
  return { walk: (request, pos) => walker.walk(request, pos), result: () => c.rows };
}
