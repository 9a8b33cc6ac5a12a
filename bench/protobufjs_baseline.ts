/**
 * The comparison point for our decoders: protobufjs (full build, reflection with generated decoders)
 * turning an OTLP request into JS objects, the way most JS OTLP receivers decode. Types are written
 * here from the public OTLP field numbers (only the fields the generators emit, plus a few common ones).
 *
 * @module
 */

import protobuf from "protobufjs";

type Fields = Record<string, { id: number; type: string; rule?: "repeated" }>;
const f = (
  id: number,
  type: string,
  repeated = false,
) => (repeated ? { id, type, rule: "repeated" as const } : { id, type });
const msg = (fields: Fields) => ({ fields });

const COMMON = {
  AnyValue: {
    oneofs: { value: { oneof: ["stringValue", "boolValue", "intValue", "doubleValue", "bytesValue"] } },
    fields: {
      stringValue: f(1, "string"),
      boolValue: f(2, "bool"),
      intValue: f(3, "int64"),
      doubleValue: f(4, "double"),
      bytesValue: f(7, "bytes"),
    },
  },
  KeyValue: msg({ key: f(1, "string"), value: f(2, "AnyValue") }),
  Resource: msg({ attributes: f(1, "KeyValue", true), droppedAttributesCount: f(2, "uint32") }),
  InstrumentationScope: msg({
    name: f(1, "string"),
    version: f(2, "string"),
    attributes: f(3, "KeyValue", true),
  }),
};

const root = protobuf.Root.fromJSON({
  nested: {
    ...COMMON,
    ExportLogsServiceRequest: msg({ resourceLogs: f(1, "ResourceLogs", true) }),
    ResourceLogs: msg({
      resource: f(1, "Resource"),
      scopeLogs: f(2, "ScopeLogs", true),
      schemaUrl: f(3, "string"),
    }),
    ScopeLogs: msg({
      scope: f(1, "InstrumentationScope"),
      logRecords: f(2, "LogRecord", true),
      schemaUrl: f(3, "string"),
    }),
    LogRecord: msg({
      timeUnixNano: f(1, "fixed64"),
      observedTimeUnixNano: f(11, "fixed64"),
      severityNumber: f(2, "int32"),
      severityText: f(3, "string"),
      body: f(5, "AnyValue"),
      attributes: f(6, "KeyValue", true),
      flags: f(8, "fixed32"),
      traceId: f(9, "bytes"),
      spanId: f(10, "bytes"),
      eventName: f(12, "string"),
    }),
    ExportTraceServiceRequest: msg({ resourceSpans: f(1, "ResourceSpans", true) }),
    ResourceSpans: msg({
      resource: f(1, "Resource"),
      scopeSpans: f(2, "ScopeSpans", true),
      schemaUrl: f(3, "string"),
    }),
    ScopeSpans: msg({
      scope: f(1, "InstrumentationScope"),
      spans: f(2, "Span", true),
      schemaUrl: f(3, "string"),
    }),
    Span: msg({
      traceId: f(1, "bytes"),
      spanId: f(2, "bytes"),
      traceState: f(3, "string"),
      parentSpanId: f(4, "bytes"),
      name: f(5, "string"),
      kind: f(6, "int32"),
      startTimeUnixNano: f(7, "fixed64"),
      endTimeUnixNano: f(8, "fixed64"),
      attributes: f(9, "KeyValue", true),
      events: f(11, "SpanEvent", true),
      status: f(15, "Status"),
      flags: f(16, "fixed32"),
    }),
    SpanEvent: msg({
      timeUnixNano: f(1, "fixed64"),
      name: f(2, "string"),
      attributes: f(3, "KeyValue", true),
    }),
    Status: msg({ message: f(2, "string"), code: f(3, "int32") }),
    ExportMetricsServiceRequest: msg({ resourceMetrics: f(1, "ResourceMetrics", true) }),
    ResourceMetrics: msg({
      resource: f(1, "Resource"),
      scopeMetrics: f(2, "ScopeMetrics", true),
      schemaUrl: f(3, "string"),
    }),
    ScopeMetrics: msg({
      scope: f(1, "InstrumentationScope"),
      metrics: f(2, "Metric", true),
      schemaUrl: f(3, "string"),
    }),
    Metric: msg({
      name: f(1, "string"),
      description: f(2, "string"),
      unit: f(3, "string"),
      gauge: f(5, "Gauge"),
      sum: f(7, "Sum"),
      histogram: f(9, "Histogram"),
    }),
    Gauge: msg({ dataPoints: f(1, "NumberDataPoint", true) }),
    Sum: msg({
      dataPoints: f(1, "NumberDataPoint", true),
      aggregationTemporality: f(2, "int32"),
      isMonotonic: f(3, "bool"),
    }),
    Histogram: msg({ dataPoints: f(1, "HistogramDataPoint", true), aggregationTemporality: f(2, "int32") }),
    NumberDataPoint: msg({
      attributes: f(7, "KeyValue", true),
      startTimeUnixNano: f(2, "fixed64"),
      timeUnixNano: f(3, "fixed64"),
      asDouble: f(4, "double"),
      asInt: f(6, "sfixed64"),
      flags: f(8, "uint32"),
    }),
    HistogramDataPoint: msg({
      attributes: f(9, "KeyValue", true),
      startTimeUnixNano: f(2, "fixed64"),
      timeUnixNano: f(3, "fixed64"),
      count: f(4, "fixed64"),
      sum: f(5, "double"),
      bucketCounts: f(6, "fixed64", true),
      explicitBounds: f(7, "double", true),
      flags: f(10, "uint32"),
      min: f(11, "double"),
      max: f(12, "double"),
    }),
  },
});

const TYPES = {
  logs: root.lookupType("ExportLogsServiceRequest"),
  traces: root.lookupType("ExportTraceServiceRequest"),
  metrics: root.lookupType("ExportMetricsServiceRequest"),
};

/** Decodes a request into protobufjs message objects (no columns): the object-decode baseline. */
export function decodeWithProtobufjs(signal: keyof typeof TYPES, bytes: Uint8Array): protobuf.Message {
  return TYPES[signal].decode(bytes);
}
