/**
 * Deterministic, realistic OTLP requests for benchmarks: logs, spans and metrics (gauge, sum, histogram)
 * from a few services, as OTLP/JSON-shaped objects that encode to protobuf (public OTLP field numbers,
 * protobufjs `Writer`) or JSON. A seeded PRNG drives everything, so a seed and options always give
 * byte-identical requests.
 *
 * @module
 */

import protobuf from "protobufjs/minimal.js";

/** OTLP signals. */
export type Signal = "logs" | "traces" | "metrics";

/** An OTLP/JSON `AnyValue` (the scalar kinds generated here). */
export interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  /** int64 as a decimal string, as OTLP/JSON writes it. */
  intValue?: string;
  doubleValue?: number;
}

/** An OTLP/JSON `KeyValue`. */
export interface JsonKeyValue {
  key: string;
  value: JsonAnyValue;
}

/** Resource and scope of one group of records. */
export interface JsonEnvelope {
  resource: { attributes: JsonKeyValue[] };
  scope: { name: string; version: string };
  schemaUrl: string;
}

/** An OTLP/JSON `LogRecord`. */
export interface JsonLogRecord {
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber: number;
  severityText: string;
  body: JsonAnyValue;
  attributes: JsonKeyValue[];
  flags: number;
  traceId?: string;
  spanId?: string;
}

/** An OTLP/JSON `Span.Event`. */
export interface JsonSpanEvent {
  timeUnixNano: string;
  name: string;
  attributes: JsonKeyValue[];
}

/** An OTLP/JSON `Span`. */
export interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: JsonKeyValue[];
  events?: JsonSpanEvent[];
  status: { code: number; message?: string };
}

/** An OTLP/JSON `NumberDataPoint`. */
export interface JsonNumberPoint {
  attributes: JsonKeyValue[];
  startTimeUnixNano: string;
  timeUnixNano: string;
  asDouble?: number;
  asInt?: string;
}

/** An OTLP/JSON `HistogramDataPoint`. */
export interface JsonHistogramPoint {
  attributes: JsonKeyValue[];
  startTimeUnixNano: string;
  timeUnixNano: string;
  count: string;
  sum: number;
  bucketCounts: string[];
  explicitBounds: number[];
  min: number;
  max: number;
}

/** An OTLP/JSON `Metric` of one of the generated types. */
export interface JsonMetric {
  name: string;
  description: string;
  unit: string;
  gauge?: { dataPoints: JsonNumberPoint[] };
  sum?: { dataPoints: JsonNumberPoint[]; aggregationTemporality: number; isMonotonic: boolean };
  histogram?: { dataPoints: JsonHistogramPoint[]; aggregationTemporality: number };
}

/** `ExportLogsServiceRequest` in OTLP/JSON form. */
export interface LogsRequest {
  resourceLogs: {
    resource: JsonEnvelope["resource"];
    scopeLogs: { scope: JsonEnvelope["scope"]; logRecords: JsonLogRecord[] }[];
    schemaUrl: string;
  }[];
}

/** `ExportTraceServiceRequest` in OTLP/JSON form. */
export interface TracesRequest {
  resourceSpans: {
    resource: JsonEnvelope["resource"];
    scopeSpans: { scope: JsonEnvelope["scope"]; spans: JsonSpan[] }[];
    schemaUrl: string;
  }[];
}

/** `ExportMetricsServiceRequest` in OTLP/JSON form. */
export interface MetricsRequest {
  resourceMetrics: {
    resource: JsonEnvelope["resource"];
    scopeMetrics: { scope: JsonEnvelope["scope"]; metrics: JsonMetric[] }[];
    schemaUrl: string;
  }[];
}

/** A request of any signal, in OTLP/JSON form. */
export type OtlpRequest = LogsRequest | TracesRequest | MetricsRequest;

/** The top-level field of each signal's OTLP/JSON request. */
export const RESOURCE_FIELD: Readonly<Record<Signal, string>> = {
  logs: "resourceLogs",
  traces: "resourceSpans",
  metrics: "resourceMetrics",
};

/** 2025-01-15T10:00:00Z in nanoseconds: the default time of the first record. */
export const DEFAULT_START_NS = 1_736_935_200_000_000_000n;

/** A small seeded PRNG (splitmix32-style mixing of a Weyl sequence): fast, deterministic, not crypto. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = (seed ^ 0x5bd1e995) >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `bytes` random bytes as lowercase hex. */
  hex(bytes: number): string {
    let out = "";
    for (let i = 0; i < bytes; i += 4) out += this.u32().toString(16).padStart(8, "0");
    return out.slice(0, bytes * 2);
  }
}

/** Options of the generators. */
export interface GenerateOptions {
  /** PRNG seed; default 1. */
  seed?: number;
  /** Distinct `service.name`s; default 4 (at most 8). */
  services?: number;
  /** Resources (service instances) the records are spread over; default 2 per service. */
  resources?: number;
  /** Time of the first record, ns since the epoch; default `DEFAULT_START_NS` (2025-01-15T10:00Z). */
  startNs?: bigint;
  /** Index of the first service used, so that small requests can rotate services; default 0. */
  serviceOffset?: number;
}

const SERVICES = ["checkout", "cart", "payment", "frontend", "shipping", "inventory", "auth", "search"];
const LANGUAGES = ["go", "java", "nodejs", "python", "dotnet", "rust", "go", "java"];
const METHODS = ["GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"];
const ROUTES = [
  "/api/v1/orders/{id}",
  "/api/v1/cart",
  "/api/v1/products",
  "/api/v1/products/{sku}",
  "/api/v1/checkout",
  "/api/v1/users/{id}/sessions",
  "/healthz",
];
const STATUSES = [200, 200, 200, 200, 200, 201, 204, 304, 400, 404, 500, 503];
const SEVERITIES: readonly (readonly [number, string])[] = [
  [9, "INFO"],
  [9, "INFO"],
  [9, "INFO"],
  [9, "INFO"],
  [9, "INFO"],
  [5, "DEBUG"],
  [5, "DEBUG"],
  [13, "WARN"],
  [17, "ERROR"],
];
const BODIES: readonly ((r: Prng) => string)[] = [
  (r) => `Handled ${r.pick(METHODS)} ${r.pick(ROUTES)} in ${r.int(900) + 1} ms`,
  (r) => `User u-${100000 + r.int(900000)} added SKU-${10000 + r.int(90000)} to cart (qty ${r.int(5) + 1})`,
  (r) => `Payment authorized for order ord-${r.hex(4)} amount ${(r.int(50000) / 100).toFixed(2)} USD`,
  (r) => `Cache miss for key product:${10000 + r.int(90000)}, loading from database`,
  (r) => `Retrying call to inventory (attempt ${r.int(4) + 2}/5): connection reset by peer`,
  (r) => `Slow query: SELECT * FROM orders WHERE customer_id = $1 took ${200 + r.int(2000)} ms`,
  (r) => `Session s-${r.hex(6)} refreshed for tenant acme-${r.int(40)}`,
  (r) => `Published event order.created to topic orders (partition ${r.int(12)}, offset ${r.int(1e7)})`,
];

const str = (key: string, v: string): JsonKeyValue => ({ key, value: { stringValue: v } });
const int = (key: string, v: number): JsonKeyValue => ({ key, value: { intValue: String(v) } });
const dbl = (key: string, v: number): JsonKeyValue => ({ key, value: { doubleValue: v } });
const bool = (key: string, v: boolean): JsonKeyValue => ({ key, value: { boolValue: v } });

interface Group extends JsonEnvelope {
  count: number;
  service: string;
}

/** Splits `records` over the resources: contiguous groups, each with its own envelope. */
function groups(records: number, o: GenerateOptions, r: Prng): Group[] {
  const services = Math.min(Math.max(o.services ?? 4, 1), SERVICES.length);
  const n = Math.max(1, Math.min(records, o.resources ?? services * 2));
  const out: Group[] = [];
  for (let g = 0; g < n; g++) {
    const si = ((o.serviceOffset ?? 0) + g) % services;
    const service = SERVICES[si];
    const lang = LANGUAGES[si];
    const count = Math.floor((records * (g + 1)) / n) - Math.floor((records * g) / n);
    out.push({
      count,
      service,
      resource: {
        attributes: [
          str("service.name", service),
          str("service.version", `1.${si + 3}.${g % 3}`),
          str("service.namespace", "shop"),
          str("deployment.environment.name", "production"),
          str("host.name", `node-${r.hex(3)}`),
          str("k8s.pod.name", `${service}-7d9f8b6c5-${r.hex(3)}`),
          str("telemetry.sdk.language", lang),
        ],
      },
      scope: { name: `github.com/acme/shop/${service}`, version: `1.${si + 3}.0` },
      schemaUrl: "https://opentelemetry.io/schemas/1.26.0",
    });
  }
  return out;
}

/** Generates a logs request of `records` log records (about 250 protobuf bytes each). */
export function generateLogs(records: number, options: GenerateOptions = {}): LogsRequest {
  const r = new Prng(options.seed ?? 1);
  const start = options.startNs ?? DEFAULT_START_NS;
  return {
    resourceLogs: groups(records, options, r).map((g) => {
      const logRecords: JsonLogRecord[] = [];
      let t = start + BigInt(r.int(1_000_000));
      let traceId = "", spanId = "", left = 0;
      for (let i = 0; i < g.count; i++) {
        // Logs of one request share its trace context; some logs have none (background work).
        if (left === 0) {
          left = 1 + r.int(8);
          const traced = r.float() < 0.8;
          traceId = traced ? r.hex(16) : "";
          spanId = traced ? r.hex(8) : "";
        }
        left--;
        t += BigInt(r.int(400_000));
        const [severityNumber, severityText] = r.pick(SEVERITIES);
        const status = r.pick(STATUSES);
        const rec: JsonLogRecord = {
          timeUnixNano: String(t),
          observedTimeUnixNano: String(t + BigInt(r.int(5_000_000))),
          severityNumber,
          severityText,
          body: { stringValue: r.pick(BODIES)(r) },
          attributes: [
            str("http.request.method", r.pick(METHODS)),
            str("http.route", r.pick(ROUTES)),
            int("http.response.status_code", status),
            str("enduser.id", `u-${100000 + r.int(900000)}`),
            dbl("duration_ms", Math.round(r.float() * 250_000) / 1000),
            bool("cache.hit", r.float() < 0.7),
          ],
          flags: traceId ? 1 : 0,
        };
        if (traceId) rec.traceId = traceId, rec.spanId = spanId;
        logRecords.push(rec);
      }
      return { resource: g.resource, scopeLogs: [{ scope: g.scope, logRecords }], schemaUrl: g.schemaUrl };
    }),
  };
}

const SPAN_NAMES = ["SELECT orders", "GET", "redis GET", "publish orders", "render", "POST"];

/** Generates a traces request of `records` spans (traces of 1-8 spans, a root server span each). */
export function generateTraces(records: number, options: GenerateOptions = {}): TracesRequest {
  const r = new Prng(options.seed ?? 1);
  const start = options.startNs ?? DEFAULT_START_NS;
  return {
    resourceSpans: groups(records, options, r).map((g) => {
      const spans: JsonSpan[] = [];
      let t = start + BigInt(r.int(1_000_000));
      let traceId = "", rootId = "", left = 0, rootStart = t;
      for (let i = 0; i < g.count; i++) {
        const root = left === 0;
        if (root) {
          left = 1 + r.int(8);
          traceId = r.hex(16);
          rootId = r.hex(8);
          t += BigInt(r.int(2_000_000));
          rootStart = t;
        }
        left--;
        const spanId = root ? rootId : r.hex(8);
        const begin = root ? rootStart : rootStart + BigInt(r.int(50_000_000));
        const status = r.pick(STATUSES);
        const failed = status >= 500;
        const route = r.pick(ROUTES);
        const method = r.pick(METHODS);
        const span: JsonSpan = {
          traceId,
          spanId,
          name: root ? `${method} ${route}` : r.pick(SPAN_NAMES),
          kind: root ? 2 : r.pick([1, 3, 3]),
          startTimeUnixNano: String(begin),
          endTimeUnixNano: String(begin + BigInt(10_000 + r.int(200_000_000))),
          attributes: [
            str("http.request.method", method),
            str("http.route", route),
            int("http.response.status_code", status),
            str("server.address", `${r.pick(SERVICES)}.shop.svc`),
            int("server.port", 8080),
            bool("sampled.debug", r.float() < 0.05),
          ],
          status: failed ? { code: 2, message: `upstream returned ${status}` } : { code: r.pick([0, 1]) },
        };
        if (!root) span.parentSpanId = rootId;
        if (failed) {
          span.events = [{
            timeUnixNano: String(begin + 5_000n),
            name: "exception",
            attributes: [
              str("exception.type", "UpstreamError"),
              str("exception.message", "503 from upstream"),
            ],
          }];
        }
        spans.push(span);
      }
      return { resource: g.resource, scopeSpans: [{ scope: g.scope, spans }], schemaUrl: g.schemaUrl };
    }),
  };
}

interface MetricDef {
  name: string;
  unit: string;
  description: string;
  type: "gauge" | "sum" | "histogram";
  int: boolean;
}

const METRICS: readonly MetricDef[] = [
  { name: "process.cpu.utilization", unit: "1", description: "CPU utilization", type: "gauge", int: false },
  { name: "http.server.requests", unit: "{request}", description: "Requests", type: "sum", int: true },
  {
    name: "http.server.request.duration",
    unit: "s",
    description: "Duration of HTTP server requests",
    type: "histogram",
    int: false,
  },
  { name: "system.memory.usage", unit: "By", description: "Memory in use", type: "gauge", int: true },
  { name: "db.client.operations", unit: "{operation}", description: "DB operations", type: "sum", int: true },
  { name: "rpc.client.duration", unit: "ms", description: "RPC duration", type: "histogram", int: false },
  { name: "queue.depth", unit: "{message}", description: "Messages waiting", type: "gauge", int: false },
  { name: "network.io", unit: "By", description: "Bytes transmitted", type: "sum", int: false },
  { name: "cache.lookup.duration", unit: "s", description: "Cache lookups", type: "histogram", int: false },
];
const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const POINTS_PER_METRIC = 20;
const INTERVAL_NS = 10_000_000_000n;

/**
 * Generates a metrics request of `records` data points: gauges, sums and histograms in turn, up to 20
 * points (attribute sets) per metric, later rounds 10 s apart.
 */
export function generateMetrics(records: number, options: GenerateOptions = {}): MetricsRequest {
  const r = new Prng(options.seed ?? 1);
  const start = options.startNs ?? DEFAULT_START_NS;
  return {
    resourceMetrics: groups(records, options, r).map((g) => {
      const metrics: JsonMetric[] = [];
      let left = g.count;
      for (let m = 0; left > 0; m++) {
        const def = METRICS[m % METRICS.length];
        const time = start + BigInt(Math.floor(m / METRICS.length)) * INTERVAL_NS + BigInt(r.int(1000));
        const n = Math.min(left, POINTS_PER_METRIC);
        left -= n;
        const attrs = (k: number): JsonKeyValue[] => [
          str("http.request.method", METHODS[k % METHODS.length]),
          str("http.route", ROUTES[k % ROUTES.length]),
          int("http.response.status_code", STATUSES[(k * 7) % STATUSES.length]),
        ];
        const metric: JsonMetric = { name: def.name, description: def.description, unit: def.unit };
        if (def.type === "histogram") {
          const dataPoints: JsonHistogramPoint[] = [];
          for (let k = 0; k < n; k++) {
            const counts = BOUNDS.map(() => r.int(50)).concat([r.int(3)]);
            const count = counts.reduce((a, b) => a + b, 0);
            dataPoints.push({
              attributes: attrs(k),
              startTimeUnixNano: String(start),
              timeUnixNano: String(time),
              count: String(count),
              sum: Math.round(count * r.float() * 1e6) / 1e6,
              bucketCounts: counts.map(String),
              explicitBounds: BOUNDS,
              min: 0.001,
              max: 9.5,
            });
          }
          metric.histogram = { dataPoints, aggregationTemporality: 2 };
        } else {
          const dataPoints: JsonNumberPoint[] = [];
          for (let k = 0; k < n; k++) {
            const p: JsonNumberPoint = {
              attributes: attrs(k),
              startTimeUnixNano: String(start),
              timeUnixNano: String(time),
            };
            if (def.int) p.asInt = String(r.int(1_000_000_000));
            else p.asDouble = Math.round(r.float() * 1e9) / 1e6;
            dataPoints.push(p);
          }
          if (def.type === "gauge") metric.gauge = { dataPoints };
          else metric.sum = { dataPoints, aggregationTemporality: 2, isMonotonic: true };
        }
        metrics.push(metric);
      }
      return { resource: g.resource, scopeMetrics: [{ scope: g.scope, metrics }], schemaUrl: g.schemaUrl };
    }),
  };
}

/** Generates a request of a signal with `records` records (log records, spans or data points). */
export function generateRequest(signal: Signal, records: number, options: GenerateOptions = {}): OtlpRequest {
  if (signal === "logs") return generateLogs(records, options);
  if (signal === "traces") return generateTraces(records, options);
  return generateMetrics(records, options);
}

// ---- protobuf encoding (public OTLP field numbers) ----

type Writer = protobuf.Writer;
const VARINT = 0, I64 = 1, LEN = 2, I32 = 5;
const tag = (w: Writer, field: number, wire: number): Writer => w.uint32((field << 3) | wire);

function long(decimal: string): { low: number; high: number; unsigned: boolean } {
  const v = BigInt.asUintN(64, BigInt(decimal));
  return { low: Number(v & 0xffffffffn), high: Number(v >> 32n), unsigned: true };
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function anyValue(w: Writer, v: JsonAnyValue): void {
  if (v.stringValue !== undefined) tag(w, 1, LEN).string(v.stringValue);
  else if (v.boolValue !== undefined) tag(w, 2, VARINT).bool(v.boolValue);
  else if (v.intValue !== undefined) tag(w, 3, VARINT).int64(long(v.intValue));
  else if (v.doubleValue !== undefined) tag(w, 4, I64).double(v.doubleValue);
}

function keyValues(w: Writer, field: number, kvs: readonly JsonKeyValue[]): void {
  for (const kv of kvs) {
    tag(w, field, LEN).fork();
    tag(w, 1, LEN).string(kv.key);
    tag(w, 2, LEN).fork();
    anyValue(w, kv.value);
    w.ldelim();
    w.ldelim();
  }
}

function resource(w: Writer, res: JsonEnvelope["resource"]): void {
  tag(w, 1, LEN).fork();
  keyValues(w, 1, res.attributes);
  w.ldelim();
}

/** Opens a Scope{Logs,Spans,Metrics} (field 2) and writes its scope; the caller closes it after the items. */
function openScope(w: Writer, scope: JsonEnvelope["scope"]): void {
  tag(w, 2, LEN).fork();
  tag(w, 1, LEN).fork();
  tag(w, 1, LEN).string(scope.name);
  tag(w, 2, LEN).string(scope.version);
  w.ldelim();
}

function logRecord(w: Writer, rec: JsonLogRecord): void {
  tag(w, 1, I64).fixed64(long(rec.timeUnixNano));
  tag(w, 2, VARINT).uint32(rec.severityNumber);
  tag(w, 3, LEN).string(rec.severityText);
  tag(w, 5, LEN).fork();
  anyValue(w, rec.body);
  w.ldelim();
  keyValues(w, 6, rec.attributes);
  tag(w, 8, I32).fixed32(rec.flags);
  if (rec.traceId) tag(w, 9, LEN).bytes(hexBytes(rec.traceId));
  if (rec.spanId) tag(w, 10, LEN).bytes(hexBytes(rec.spanId));
  tag(w, 11, I64).fixed64(long(rec.observedTimeUnixNano));
}

function span(w: Writer, s: JsonSpan): void {
  tag(w, 1, LEN).bytes(hexBytes(s.traceId));
  tag(w, 2, LEN).bytes(hexBytes(s.spanId));
  if (s.parentSpanId) tag(w, 4, LEN).bytes(hexBytes(s.parentSpanId));
  tag(w, 5, LEN).string(s.name);
  tag(w, 6, VARINT).uint32(s.kind);
  tag(w, 7, I64).fixed64(long(s.startTimeUnixNano));
  tag(w, 8, I64).fixed64(long(s.endTimeUnixNano));
  keyValues(w, 9, s.attributes);
  for (const e of s.events ?? []) {
    tag(w, 11, LEN).fork();
    tag(w, 1, I64).fixed64(long(e.timeUnixNano));
    tag(w, 2, LEN).string(e.name);
    keyValues(w, 3, e.attributes);
    w.ldelim();
  }
  tag(w, 15, LEN).fork();
  if (s.status.message) tag(w, 2, LEN).string(s.status.message);
  if (s.status.code) tag(w, 3, VARINT).uint32(s.status.code);
  w.ldelim();
}

function numberPoint(w: Writer, p: JsonNumberPoint): void {
  tag(w, 1, LEN).fork();
  tag(w, 2, I64).fixed64(long(p.startTimeUnixNano));
  tag(w, 3, I64).fixed64(long(p.timeUnixNano));
  if (p.asDouble !== undefined) tag(w, 4, I64).double(p.asDouble);
  if (p.asInt !== undefined) tag(w, 6, I64).sfixed64(long(p.asInt));
  keyValues(w, 7, p.attributes);
  w.ldelim();
}

function histogramPoint(w: Writer, p: JsonHistogramPoint): void {
  tag(w, 1, LEN).fork();
  tag(w, 2, I64).fixed64(long(p.startTimeUnixNano));
  tag(w, 3, I64).fixed64(long(p.timeUnixNano));
  tag(w, 4, I64).fixed64(long(p.count));
  tag(w, 5, I64).double(p.sum);
  tag(w, 6, LEN).fork();
  for (const c of p.bucketCounts) w.fixed64(long(c));
  w.ldelim();
  tag(w, 7, LEN).fork();
  for (const b of p.explicitBounds) w.double(b);
  w.ldelim();
  keyValues(w, 9, p.attributes);
  tag(w, 11, I64).double(p.min);
  tag(w, 12, I64).double(p.max);
  w.ldelim();
}

function metric(w: Writer, m: JsonMetric): void {
  tag(w, 1, LEN).string(m.name);
  tag(w, 2, LEN).string(m.description);
  tag(w, 3, LEN).string(m.unit);
  if (m.gauge) {
    tag(w, 5, LEN).fork();
    for (const p of m.gauge.dataPoints) numberPoint(w, p);
    w.ldelim();
  } else if (m.sum) {
    tag(w, 7, LEN).fork();
    for (const p of m.sum.dataPoints) numberPoint(w, p);
    tag(w, 2, VARINT).uint32(m.sum.aggregationTemporality);
    tag(w, 3, VARINT).bool(m.sum.isMonotonic);
    w.ldelim();
  } else if (m.histogram) {
    tag(w, 9, LEN).fork();
    for (const p of m.histogram.dataPoints) histogramPoint(w, p);
    tag(w, 2, VARINT).uint32(m.histogram.aggregationTemporality);
    w.ldelim();
  }
}

function finish(w: Writer): Uint8Array<ArrayBuffer> {
  // protobufjs may hand back a Node Buffer (a view into a shared pool): copy into a plain array.
  return new Uint8Array(w.finish());
}

/** Encodes a request as protobuf `Export{Logs,Trace,Metrics}ServiceRequest` bytes. */
export function encodeProtobuf(signal: Signal, request: OtlpRequest): Uint8Array<ArrayBuffer> {
  const w = protobuf.Writer.create();
  if (signal === "logs") {
    for (const rl of (request as LogsRequest).resourceLogs) {
      tag(w, 1, LEN).fork();
      resource(w, rl.resource);
      for (const sl of rl.scopeLogs) {
        openScope(w, sl.scope);
        for (const rec of sl.logRecords) {
          tag(w, 2, LEN).fork();
          logRecord(w, rec);
          w.ldelim();
        }
        w.ldelim();
      }
      tag(w, 3, LEN).string(rl.schemaUrl);
      w.ldelim();
    }
  } else if (signal === "traces") {
    for (const rs of (request as TracesRequest).resourceSpans) {
      tag(w, 1, LEN).fork();
      resource(w, rs.resource);
      for (const ss of rs.scopeSpans) {
        openScope(w, ss.scope);
        for (const s of ss.spans) {
          tag(w, 2, LEN).fork();
          span(w, s);
          w.ldelim();
        }
        w.ldelim();
      }
      tag(w, 3, LEN).string(rs.schemaUrl);
      w.ldelim();
    }
  } else {
    for (const rm of (request as MetricsRequest).resourceMetrics) {
      tag(w, 1, LEN).fork();
      resource(w, rm.resource);
      for (const sm of rm.scopeMetrics) {
        openScope(w, sm.scope);
        for (const m of sm.metrics) {
          tag(w, 2, LEN).fork();
          metric(w, m);
          w.ldelim();
        }
        w.ldelim();
      }
      tag(w, 3, LEN).string(rm.schemaUrl);
      w.ldelim();
    }
  }
  return finish(w);
}

const utf8 = new TextEncoder();

/** Encodes a request as OTLP/JSON bytes. */
export function encodeJson(request: OtlpRequest): Uint8Array<ArrayBuffer> {
  return utf8.encode(JSON.stringify(request));
}

/** Records in a generated request (log records, spans or data points). */
export function countRecords(signal: Signal, request: OtlpRequest): number {
  let n = 0;
  if (signal === "logs") {
    for (const rl of (request as LogsRequest).resourceLogs) {
      for (const sl of rl.scopeLogs) n += sl.logRecords.length;
    }
  } else if (signal === "traces") {
    for (const rs of (request as TracesRequest).resourceSpans) {
      for (const ss of rs.scopeSpans) n += ss.spans.length;
    }
  } else {
    for (const rm of (request as MetricsRequest).resourceMetrics) {
      for (const sm of rm.scopeMetrics) {
        for (const m of sm.metrics) {
          n += (m.gauge ?? m.sum ?? m.histogram)?.dataPoints.length ?? 0;
        }
      }
    }
  }
  return n;
}
