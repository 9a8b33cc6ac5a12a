/**
 * Telemetry made and sent by the real OpenTelemetry JS SDK (logs, traces, metrics) through the real
 * OTLP/HTTP exporters (protobuf or JSON, with or without gzip), with a record of every export call: its
 * result and, flattened into plain rows the way the receiver's tables hold them, what it carried. The
 * exporters are wrapped only to watch their calls; every byte on the wire comes from the SDK itself.
 */
import { type HrTime, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { SeverityNumber } from "@opentelemetry/api-logs";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { OTLPLogExporter as JsonLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { OTLPLogExporter as ProtoLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { OTLPMetricExporter as JsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as ProtoMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { OTLPTraceExporter as JsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { CompressionAlgorithm } from "@opentelemetry/otlp-exporter-base";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchLogRecordProcessor,
  LoggerProvider,
  type LogRecordExporter,
  type ReadableLogRecord,
} from "@opentelemetry/sdk-logs";
import {
  AggregationType,
  DataPointType,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";

/** How the exporters talk: OTLP/HTTP protobuf or OTLP/HTTP JSON, gzip or not. */
export interface ExporterSetup {
  encoding: "protobuf" | "json";
  gzip: boolean;
}

/** A log record as the `otel_logs` row should hold it. */
export interface SentLog {
  service: string;
  /** Nanoseconds since the epoch, decimal. */
  timeNs: string;
  severityNumber: number;
  severityText: string;
  /** The body as rendered text (strings as is). */
  body: string;
  /** Attribute values rendered as text. */
  attributes: Record<string, string>;
  traceId: string;
  spanId: string;
  eventName: string;
  scopeName: string;
  scopeVersion: string;
}

/** A span as the `otel_traces` row should hold it. */
export interface SentSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  startNs: string;
  durationNs: string;
  statusCode: string;
  statusMessage: string;
  attributes: Record<string, string>;
  events: { timeNs: string; name: string; attributes: Record<string, string> }[];
  links: { traceId: string; spanId: string; attributes: Record<string, string> }[];
  scopeName: string;
}

/** The metric tables, by the last segment of their object path. */
export type MetricTable = "gauge" | "sum" | "histogram" | "exponential_histogram";

/** A metric data point as its table's row should hold it. */
export interface SentPoint {
  table: MetricTable;
  service: string;
  name: string;
  description: string;
  unit: string;
  startNs: string;
  timeNs: string;
  attributes: Record<string, string>;
  /** gauge, sum */
  value?: number;
  isMonotonic?: boolean;
  /** OTLP AggregationTemporality: 1 delta, 2 cumulative (sum and histograms). */
  temporality?: number;
  /** histograms */
  count?: number;
  sum?: number;
  min?: number;
  max?: number;
  bucketCounts?: number[];
  bounds?: number[];
  scale?: number;
  zeroCount?: number;
  positiveOffset?: number;
  positiveCounts?: number[];
  negativeOffset?: number;
  negativeCounts?: number[];
}

/** One export call: which signal, and how it ended. */
export interface ExportCall {
  signal: "logs" | "traces" | "metrics";
  code: ExportResultCode;
  error?: string;
}

/** What one {@link sendWithSdk} run exported. */
export interface Sent {
  logs: SentLog[];
  spans: SentSpan[];
  points: SentPoint[];
  calls: ExportCall[];
}

/** Options of {@link sendWithSdk}. */
export interface SendOptions {
  /** `service.name` of the resource. */
  service: string;
  setup: ExporterSetup;
  /** Rounds of (emit, force flush of all three signals): each round is one request per signal. Default 3. */
  rounds?: number;
  /** Whole seconds since the epoch of the first log and span. Default 2025-03-14T15:00:00Z. */
  baseSecs?: number;
}

const DEFAULT_BASE_SECS = Date.UTC(2025, 2, 14, 15, 0, 0) / 1000;

/** Nanoseconds of an HrTime as a decimal string (exact, via BigInt). */
export function hrNs(t: HrTime): string {
  return (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();
}

/** An attribute or body value rendered as the schema says: strings as is, the rest as compact JSON text. */
export function render(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

function renderAll(attributes: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) out[k] = render(v);
  return out;
}

const SPAN_KINDS = ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];
const STATUS_CODES = ["UNSET", "OK", "ERROR"];
const ZERO_SPAN_ID = "0000000000000000";

function serviceOf(resource: { attributes: Record<string, unknown> }): string {
  return String(resource.attributes["service.name"] ?? "");
}

function flattenLog(r: ReadableLogRecord): SentLog {
  return {
    service: serviceOf(r.resource),
    timeNs: hrNs(r.hrTime),
    severityNumber: r.severityNumber ?? 0,
    severityText: r.severityText ?? "",
    body: r.body === undefined ? "" : render(r.body),
    attributes: renderAll(r.attributes),
    traceId: r.spanContext?.traceId ?? "",
    spanId: r.spanContext?.spanId ?? "",
    eventName: r.eventName ?? "",
    scopeName: r.instrumentationScope.name,
    scopeVersion: r.instrumentationScope.version ?? "",
  };
}

function flattenSpan(s: ReadableSpan): SentSpan {
  const parent = s.parentSpanContext?.spanId;
  return {
    service: serviceOf(s.resource),
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    parentSpanId: parent && parent !== ZERO_SPAN_ID ? parent : "",
    name: s.name,
    kind: `SPAN_KIND_${SPAN_KINDS[s.kind]}`,
    startNs: hrNs(s.startTime),
    durationNs: hrNs(s.duration),
    statusCode: `STATUS_CODE_${STATUS_CODES[s.status.code]}`,
    statusMessage: s.status.message ?? "",
    attributes: renderAll(s.attributes),
    events: s.events.map((e) => ({
      timeNs: hrNs(e.time),
      name: e.name,
      attributes: renderAll(e.attributes ?? {}),
    })),
    links: s.links.map((l) => ({
      traceId: l.context.traceId,
      spanId: l.context.spanId,
      attributes: renderAll(l.attributes ?? {}),
    })),
    scopeName: s.instrumentationScope.name,
  };
}

// The SDK's AggregationTemporality is 0 delta / 1 cumulative; OTLP's is 1 / 2.
const otlpTemporality = (t: number): number => t + 1;

function flattenMetrics(rm: ResourceMetrics): SentPoint[] {
  const out: SentPoint[] = [];
  const service = serviceOf(rm.resource);
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics as MetricData[]) {
      const head = (dp: { startTime: HrTime; endTime: HrTime; attributes: Record<string, unknown> }) => ({
        service,
        name: m.descriptor.name,
        description: m.descriptor.description,
        unit: m.descriptor.unit,
        startNs: hrNs(dp.startTime),
        timeNs: hrNs(dp.endTime),
        attributes: renderAll(dp.attributes),
      });
      const temporality = otlpTemporality(m.aggregationTemporality);
      switch (m.dataPointType) {
        case DataPointType.GAUGE:
          for (const dp of m.dataPoints) out.push({ table: "gauge", ...head(dp), value: dp.value });
          break;
        case DataPointType.SUM:
          for (const dp of m.dataPoints) {
            out.push({ table: "sum", ...head(dp), value: dp.value, isMonotonic: m.isMonotonic, temporality });
          }
          break;
        case DataPointType.HISTOGRAM:
          for (const dp of m.dataPoints) {
            const h = dp.value;
            out.push({
              table: "histogram",
              ...head(dp),
              temporality,
              count: h.count,
              sum: h.sum,
              min: h.min,
              max: h.max,
              bucketCounts: [...h.buckets.counts],
              bounds: [...h.buckets.boundaries],
            });
          }
          break;
        case DataPointType.EXPONENTIAL_HISTOGRAM:
          for (const dp of m.dataPoints) {
            const h = dp.value;
            out.push({
              table: "exponential_histogram",
              ...head(dp),
              temporality,
              count: h.count,
              sum: h.sum,
              min: h.min,
              max: h.max,
              scale: h.scale,
              zeroCount: h.zeroCount,
              positiveOffset: h.positive.offset,
              positiveCounts: [...h.positive.bucketCounts],
              negativeOffset: h.negative.offset,
              negativeCounts: [...h.negative.bucketCounts],
            });
          }
          break;
      }
    }
  }
  return out;
}

function describeError(result: ExportResult): string | undefined {
  return result.error === undefined ? undefined : String(result.error?.message ?? result.error);
}

/** Watches a log exporter's calls; the items are flattened at export time (the SDK may reuse objects later). */
class WatchedLogExporter implements LogRecordExporter {
  constructor(private readonly inner: LogRecordExporter, private readonly sent: Sent) {}
  export(logs: ReadableLogRecord[], done: (result: ExportResult) => void): void {
    const rows = logs.map(flattenLog);
    this.inner.export(logs, (result) => {
      this.sent.calls.push({ signal: "logs", code: result.code, error: describeError(result) });
      if (result.code === ExportResultCode.SUCCESS) this.sent.logs.push(...rows);
      done(result);
    });
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

class WatchedSpanExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter, private readonly sent: Sent) {}
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const rows = spans.map(flattenSpan);
    this.inner.export(spans, (result) => {
      this.sent.calls.push({ signal: "traces", code: result.code, error: describeError(result) });
      if (result.code === ExportResultCode.SUCCESS) this.sent.spans.push(...rows);
      done(result);
    });
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

class WatchedMetricExporter implements PushMetricExporter {
  constructor(private readonly inner: PushMetricExporter, private readonly sent: Sent) {}
  export(metrics: ResourceMetrics, done: (result: ExportResult) => void): void {
    const rows = flattenMetrics(metrics);
    this.inner.export(metrics, (result) => {
      this.sent.calls.push({ signal: "metrics", code: result.code, error: describeError(result) });
      if (result.code === ExportResultCode.SUCCESS) this.sent.points.push(...rows);
      done(result);
    });
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  selectAggregationTemporality: PushMetricExporter["selectAggregationTemporality"] = (type) =>
    this.inner.selectAggregationTemporality!(type);
  selectAggregation: PushMetricExporter["selectAggregation"] = (type) => this.inner.selectAggregation!(type);
}

function exporters(url: string, setup: ExporterSetup) {
  const options = (path: string) => ({
    url: `${url}${path}`,
    compression: setup.gzip ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE,
    timeoutMillis: 15_000,
  });
  if (setup.encoding === "protobuf") {
    return {
      logs: new ProtoLogExporter(options("/v1/logs")),
      traces: new ProtoTraceExporter(options("/v1/traces")),
      metrics: new ProtoMetricExporter(options("/v1/metrics")),
    };
  }
  return {
    logs: new JsonLogExporter(options("/v1/logs")),
    traces: new JsonTraceExporter(options("/v1/traces")),
    metrics: new JsonMetricExporter(options("/v1/metrics")),
  };
}

const SEVERITIES: [SeverityNumber, string][] = [
  [SeverityNumber.INFO, "INFO"],
  [SeverityNumber.WARN, "WARN"],
  [SeverityNumber.ERROR, "ERROR"],
];

/**
 * One service's telemetry through the SDK to `url` (`http://host:port`): per round 3 log records, 2 spans
 * (a server span with a client child that carries an event and a link) and 5 instruments (counter,
 * up-down counter, gauge, explicit-bucket and exponential histograms), then a force flush of each signal.
 * Log and span times are fixed, nanosecond-exact and inside one hour; metric times are the SDK's clock.
 */
export async function sendWithSdk(url: string, options: SendOptions): Promise<Sent> {
  const { service, setup } = options;
  const rounds = options.rounds ?? 3;
  const base = options.baseSecs ?? DEFAULT_BASE_SECS;
  const sent: Sent = { logs: [], spans: [], points: [], calls: [] };
  const resource = resourceFromAttributes({
    "service.name": service,
    "service.version": "1.2.3",
    "deployment.environment": "e2e",
  });
  const ex = exporters(url, setup);
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [
      new BatchLogRecordProcessor({
        exporter: new WatchedLogExporter(ex.logs, sent),
        scheduledDelayMillis: 3_600_000,
      }),
    ],
  });
  const tracerProvider = new BasicTracerProvider({
    resource,
    spanProcessors: [
      new BatchSpanProcessor(new WatchedSpanExporter(ex.traces, sent), { scheduledDelayMillis: 3_600_000 }),
    ],
  });
  const meterProvider = new MeterProvider({
    resource,
    views: [{ instrumentName: "app.payload", aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new WatchedMetricExporter(ex.metrics, sent),
        exportIntervalMillis: 3_600_000,
      }),
    ],
  });
  const logger = loggerProvider.getLogger("e2e-logger", "0.1.0");
  const tracer = tracerProvider.getTracer("e2e-tracer", "0.2.0");
  const meter = meterProvider.getMeter("e2e-meter", "0.3.0");
  const requests = meter.createCounter("app.requests", { description: "requests served", unit: "{request}" });
  const inflight = meter.createUpDownCounter("app.inflight", { unit: "{request}" });
  const queue = meter.createGauge("app.queue", { unit: "{item}" });
  const latency = meter.createHistogram("app.latency", {
    unit: "ms",
    advice: { explicitBucketBoundaries: [10, 100, 1000] },
  });
  const payload = meter.createHistogram("app.payload", { unit: "By" });

  let previousRoot: ReturnType<typeof tracer.startSpan> | undefined;
  for (let r = 0; r < rounds; r++) {
    const t = (secs: number, nanos: number): HrTime => [base + r * 60 + secs, nanos];
    const root = tracer.startSpan("GET /cart", {
      kind: SpanKind.SERVER,
      startTime: t(30, 123_456_789),
      attributes: { "http.route": "/cart", "http.response.status_code": 200 + r, round: r },
    }, ROOT_CONTEXT);
    const inRoot = trace.setSpan(ROOT_CONTEXT, root);
    const child = tracer.startSpan("SELECT cart", {
      kind: SpanKind.CLIENT,
      startTime: t(30, 223_456_001),
      attributes: { "db.system": "postgresql", "db.rows": r * 10 },
      links: previousRoot
        ? [{ context: previousRoot.spanContext(), attributes: { "link.kind": "previous" } }]
        : [],
    }, inRoot);
    child.addEvent("cache.miss", { "cache.key": `cart-${r}`, attempt: r + 1 }, t(30, 300_000_007));
    child.end(t(30, 523_456_003));
    if (r % 2 === 1) root.setStatus({ code: SpanStatusCode.ERROR, message: `failed round ${r}` });
    else root.setStatus({ code: SpanStatusCode.OK });
    root.end(t(31, 5));
    previousRoot = root;

    for (let i = 0; i < 3; i++) {
      const [severityNumber, severityText] = SEVERITIES[i];
      logger.emit({
        timestamp: t(i, 100_000_001 + r * 1_000 + i * 111_111),
        severityNumber,
        severityText,
        body: i === 2 ? { event: "checkout", items: r + 1 } : `${service} round ${r} record ${i}`,
        attributes: {
          seq: `${service}-${r}-${i}`,
          "http.status_code": 200 + i,
          ratio: 0.25 * (i + 1),
          cached: i % 2 === 0,
          tags: ["a", `r${r}`],
        },
        eventName: i === 1 ? "app.checkout" : undefined,
        context: i === 0 ? inRoot : undefined,
      });
    }

    requests.add(1 + r, { route: "/cart" });
    requests.add(2, { route: "/pay" });
    inflight.add(r - 1);
    queue.record(10.5 + r, { queue: "q1" });
    for (const v of [5, 50, 500 + r, 5000]) latency.record(v, { route: "/cart" });
    for (const v of [3, 17, 1024 * (r + 1)]) payload.record(v);

    await loggerProvider.forceFlush();
    await tracerProvider.forceFlush();
    await meterProvider.forceFlush();
  }
  await loggerProvider.shutdown();
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
  return sent;
}
