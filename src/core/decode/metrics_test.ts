import assert from "node:assert/strict";
import { ValueType } from "@opentelemetry/api";
import { JsonMetricsSerializer, ProtobufMetricsSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  AggregationType,
  DataPointType,
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { tableFromIPC } from "apache-arrow";
import fc from "fast-check";
import { readParquet } from "parquet-wasm/esm";
import type {
  Column,
  F64Column,
  ListColumn,
  MapColumn,
  StrColumn,
  U32Column,
  U64Column,
  U8Column,
} from "../table/columns.ts";
import { type Decoded, decodeRequest, type Format, toParquetFiles } from "../convert.ts";
import { DecodeError } from "../errors.ts";
import type { Rows } from "../table/rows.ts";
import type { ColumnDef, TableName } from "../table/schema.ts";
import { loadParquetWasm } from "../../platforms/wasm.ts";

const DATA = "/work/shared/testdata/otlp2parquet-rust/";
const KINDS = ["gauge", "sum", "histogram", "exponential_histogram", "summary", "mixed"] as const;
const FORMATS: [string, Format][] = [["pb", "protobuf"], ["json", "json"], ["jsonl", "jsonl"]];

type Row = Record<string, unknown>;

/** One cell as a plain value: 64-bit columns as bigint, Int32 signed, Bool as boolean, lists as arrays. */
function cell(def: ColumnDef, col: Column, i: number): unknown {
  if (def.list) {
    const list = col as ListColumn;
    const scalar: ColumnDef = { name: def.name, type: def.type };
    const out: unknown[] = [];
    for (let j = list.offsets[i]; j < list.offsets[i + 1]; j++) out.push(cell(scalar, list.child, j));
    return out;
  }
  switch (def.type) {
    case "DateTime64(9)":
    case "UInt64":
      return (col as U64Column).bigint(i);
    case "String":
    case "LowCardinality(String)":
      return (col as StrColumn).get(i);
    case "UInt8":
      return (col as U8Column).values[i];
    case "Bool": {
      const v = (col as U8Column).values[i];
      assert.ok(v === 0 || v === 1, `Bool ${def.name} holds ${v}`);
      return v === 1;
    }
    case "UInt32":
      return (col as U32Column).values[i];
    case "Int32":
      return (col as U32Column).values[i] | 0;
    case "Float64":
      return (col as F64Column).values[i];
    case "Map":
      return (col as MapColumn).get(i);
  }
}

/** All rows of a table as objects, after checking every column holds exactly one value per row. */
function rowsOf(rows: Rows): Row[] {
  rows.def.columns.forEach((def, c) => {
    assert.equal(rows.columns[c].length, rows.length, `${rows.def.name}.${def.name} is misaligned`);
  });
  const out: Row[] = [];
  for (let i = 0; i < rows.length; i++) {
    const row: Row = {};
    rows.def.columns.forEach((def, c) => row[def.name] = cell(def, rows.columns[c], i));
    out.push(row);
  }
  return out;
}

function tablesOf(d: Decoded): Partial<Record<TableName, Row[]>> {
  return Object.fromEntries(d.tables.map((t) => [t.def.name, rowsOf(t)]));
}

const enc = new TextEncoder();
const decodeJson = (o: unknown, format: Format = "json") =>
  decodeRequest("metrics", enc.encode(JSON.stringify(o)), { format });
const decodePb = (b: Uint8Array) => decodeRequest("metrics", b, { format: "protobuf" });
const read = (name: string) => Deno.readFileSync(DATA + name);

function assertDecodeError(fn: () => unknown, messageStart: string): DecodeError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DecodeError, `expected a DecodeError, got ${e}`);
    assert.ok(e.message.startsWith(messageStart), `message: ${e.message}\nexpected start: ${messageStart}`);
    return e;
  }
  assert.fail("no error was thrown");
}

// ---------------------------------------------------------------------------------------------------------
// The Rust otlp2parquet test data

Deno.test("decodeRequest(metrics) reads the otlp2parquet files with the expected row counts", () => {
  const expected: Record<string, Partial<Record<TableName, number>>> = {
    gauge: { otel_metrics_gauge: 3 },
    sum: { otel_metrics_sum: 4 },
    histogram: { otel_metrics_histogram: 3 },
    exponential_histogram: { otel_metrics_exp_histogram: 2 },
    summary: { otel_metrics_summary: 2 },
    mixed: { otel_metrics_gauge: 1, otel_metrics_sum: 1, otel_metrics_histogram: 1 },
  };
  for (const kind of KINDS) {
    for (const [ext, format] of FORMATS) {
      const d = decodeRequest("metrics", read(`metrics_${kind}.${ext}`), { format });
      const counts = Object.fromEntries(d.tables.map((t) => [t.def.name, t.length]));
      assert.deepEqual(counts, expected[kind], `${kind}.${ext}`);
      assert.equal(d.records, Object.values(expected[kind]).reduce((a, b) => a + b, 0));
      assert.equal(d.signal, "metrics");
      assert.equal(d.rejected, 0);
      assert.equal(d.rejectMessage, "");
    }
  }
});

Deno.test("protobuf, JSON and JSON Lines forms of each otlp2parquet file decode to identical rows", () => {
  for (const kind of KINDS) {
    const pb = tablesOf(decodeRequest("metrics", read(`metrics_${kind}.pb`), { format: "protobuf" }));
    for (const [ext, format] of FORMATS.slice(1)) {
      const other = tablesOf(decodeRequest("metrics", read(`metrics_${kind}.${ext}`), { format }));
      assert.deepStrictEqual(other, pb, `${kind}.${ext} differs from ${kind}.pb`);
    }
  }
});

Deno.test("gauge rows carry the resource, scope, metric and point values", () => {
  const d = decodePb(read("metrics_gauge.pb"));
  const rows = tablesOf(d).otel_metrics_gauge!;
  assert.deepStrictEqual(rows[0], {
    ResourceAttributes: {
      "deployment.environment": "production",
      "service.name": "demo-service",
      "service.version": "1.0.0",
    },
    ResourceSchemaUrl: "",
    ScopeName: "demo-instrumentation",
    ScopeVersion: "1.0.0",
    ScopeAttributes: {},
    ScopeDroppedAttrCount: 0,
    ScopeSchemaUrl: "",
    ServiceName: "demo-service",
    MetricName: "cpu.usage",
    MetricDescription: "Current CPU usage percentage",
    MetricUnit: "percent",
    Attributes: { cpu: "0", host: "web-01" },
    StartTimeUnix: 0n,
    TimeUnix: 1705327800000000000n,
    Value: 67.95700988434129,
    Flags: 0,
    "Exemplars.FilteredAttributes": [],
    "Exemplars.TimeUnix": [],
    "Exemplars.Value": [],
    "Exemplars.SpanId": [],
    "Exemplars.TraceId": [],
  });
  assert.equal(rows[1].TimeUnix, 1705327801000000000n);
  assert.equal(rows[1].Value, 21.87580664170002);
  assert.equal(rows[2].MetricName, "memory.available");
  assert.equal(rows[2].Value, 8589934592); // as_int, written as Float64
  assert.deepStrictEqual(rows[2].Attributes, { host: "web-01" });
  // Partitioned by TimeUnix: 2024-01-15T14:10Z.
  assert.deepStrictEqual(d.tables[0].parts, [{
    service: "demo-service",
    hour: Math.floor(1705327800 / 3600),
  }]);
});

Deno.test("sum rows carry value, temporality and monotonicity", () => {
  const rows = tablesOf(decodePb(read("metrics_sum.pb"))).otel_metrics_sum!;
  assert.deepStrictEqual(
    rows.map((r) => [r.MetricName, r.Value, r.AggregationTemporality, r.IsMonotonic, r.Attributes]),
    [
      ["http.requests.total", 15234, 2, true, {
        "http.method": "GET",
        "http.route": "/api/users",
        "http.status_code": "200",
      }],
      ["http.requests.total", 3421, 2, true, {
        "http.method": "POST",
        "http.route": "/api/users",
        "http.status_code": "201",
      }],
      ["http.requests.total", 152, 2, true, {
        "http.method": "GET",
        "http.route": "/api/users",
        "http.status_code": "404",
      }],
      ["http.request.bytes", 45892134, 2, true, { "http.route": "/api/users" }],
    ],
  );
  assert.equal(rows[0].ServiceName, "api-gateway");
  assert.equal(rows[3].MetricUnit, "bytes");
});

Deno.test("histogram rows carry count, sum, buckets, bounds, min, max and temporality", () => {
  const rows = tablesOf(decodePb(read("metrics_histogram.pb"))).otel_metrics_histogram!;
  const r = rows[0];
  assert.equal(r.MetricName, "http.server.duration");
  assert.equal(r.Count, 1543n);
  assert.equal(r.Sum, 45120.5);
  assert.deepStrictEqual(r.BucketCounts, [23n, 342n, 687n, 398n, 78n, 15n]);
  assert.deepStrictEqual(r.ExplicitBounds, [10, 25, 50, 100, 250]);
  assert.equal(r.Min, 2.3);
  assert.equal(r.Max, 421.8);
  assert.equal(r.AggregationTemporality, 2);
  assert.equal(r.Flags, 0);
  assert.deepStrictEqual(rows[2].BucketCounts, [1234n, 2891n, 876n, 198n, 35n]);
  assert.deepStrictEqual(rows[2].ExplicitBounds, [1, 5, 10, 50]);
  assert.equal(rows[2].Max, 89.5);
});

Deno.test("exponential histogram rows carry scale, zero count and both bucket ranges", () => {
  const rows = tablesOf(decodePb(read("metrics_exponential_histogram.pb"))).otel_metrics_exp_histogram!;
  const r = rows[0];
  assert.equal(r.MetricName, "payment.processing.duration");
  assert.equal(r.ServiceName, "payment-service");
  assert.equal(r.Count, 2543n);
  assert.equal(r.Sum, 125634.5);
  assert.equal(r.Scale, 3);
  assert.equal(r.ZeroCount, 5n);
  assert.equal(r.PositiveOffset, 2);
  assert.deepStrictEqual(r.PositiveBucketCounts, [234n, 567n, 892n, 645n, 178n, 22n]);
  assert.equal(r.NegativeOffset, 0);
  assert.deepStrictEqual(r.NegativeBucketCounts, []);
  assert.equal(r.Min, 12.3);
  assert.equal(r.Max, 1234.5);
  assert.equal(r.AggregationTemporality, 2);
  assert.equal(rows[1].PositiveOffset, 1);
  assert.deepStrictEqual(rows[1].Attributes, { "payment.method": "paypal", "payment.provider": "paypal" });
});

Deno.test("summary rows carry count, sum and the quantile values (a missing quantile is 0)", () => {
  const rows = tablesOf(decodePb(read("metrics_summary.pb"))).otel_metrics_summary!;
  const r = rows[0];
  assert.equal(r.MetricName, "request.size");
  assert.equal(r.Count, 8534n);
  assert.equal(r.Sum, 45892134);
  assert.deepStrictEqual(r["ValueAtQuantiles.Quantile"], [0, 0.5, 0.9, 0.95, 0.99, 1]);
  assert.deepStrictEqual(r["ValueAtQuantiles.Value"], [128, 4512, 12834, 18923, 45123, 98234]);
  assert.deepStrictEqual(rows[1]["ValueAtQuantiles.Value"], [64, 892, 2341, 3456, 8234, 15234]);
  assert.equal(r.Flags, 0);
});

Deno.test("the mixed file becomes three tables that encode to Parquet files under their paths", async () => {
  await loadParquetWasm();
  const d = decodePb(read("metrics_mixed.pb"));
  const t = tablesOf(d);
  assert.equal(t.otel_metrics_gauge![0].Value, 0.42);
  assert.equal(t.otel_metrics_sum![0].Value, 123456789);
  assert.deepStrictEqual(t.otel_metrics_histogram![0].BucketCounts, [10n, 30n, 40n, 15n, 5n]);
  const files = toParquetFiles(d);
  assert.deepStrictEqual(
    files.map((f) => [f.table, f.rows, f.key.split("/").slice(0, 7).join("/")]),
    [
      ["otel_metrics_gauge", 1, "metrics/gauge/multi-service/year=2024/month=01/day=15/hour=14"],
      ["otel_metrics_sum", 1, "metrics/sum/multi-service/year=2024/month=01/day=15/hour=14"],
      ["otel_metrics_histogram", 1, "metrics/histogram/multi-service/year=2024/month=01/day=15/hour=14"],
    ],
  );
  const histogram = tableFromIPC(readParquet(files[2].bytes).intoIPCStream());
  assert.equal(histogram.numRows, 1);
  assert.deepStrictEqual([...histogram.getChild("BucketCounts")!.get(0)], [10n, 30n, 40n, 15n, 5n]);
  assert.deepStrictEqual([...histogram.getChild("ExplicitBounds")!.get(0)], [10, 50, 100, 500]);
  assert.equal(histogram.getChild("MetricName")!.get(0), "http.server.request.duration");
  assert.equal(histogram.getChild("AggregationTemporality")!.get(0), 2);
});

Deno.test("an unknown temporality name in the otlp2parquet invalid file is a DecodeError naming the field", () => {
  const e = assertDecodeError(
    () => decodeRequest("metrics", read("invalid/metrics_invalid_temporality.json"), { format: "json" }),
    "cannot decode metrics request: field resourceMetrics[0].scopeMetrics[0].metrics[0].sum.aggregationTemporality: ",
  );
  assert.match(e.message, /INVALID_TEMPORALITY_VALUE/);
});

// ---------------------------------------------------------------------------------------------------------
// Requests made by the OpenTelemetry JS SDK

class CollectingReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

async function sdkMetrics(): Promise<ResourceMetrics[]> {
  const cumulative = new CollectingReader();
  const delta = new CollectingReader({ aggregationTemporalitySelector: () => AggregationTemporality.DELTA });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ "service.name": "checkout", "service.version": "4.2.0", replicas: 3 }),
    readers: [cumulative, delta],
    views: [{ instrumentName: "payload.size", aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
  });
  const meter = provider.getMeter("shop", "1.2.3", { schemaUrl: "https://opentelemetry.io/schemas/1.30.0" });
  const other = provider.getMeter("db");

  const requests = meter.createCounter("http.requests", { unit: "1", valueType: ValueType.INT });
  requests.add(3, { route: "/cart", ok: true });
  requests.add(4, { route: "/pay", code: 404 });
  requests.add(2, { route: "/cart", ok: true });
  const queue = meter.createUpDownCounter("queue.depth", { description: "items waiting" });
  queue.add(5.5, { queue: "orders" });
  queue.add(-7.25, { queue: "orders" });
  const latency = meter.createHistogram("http.latency", {
    unit: "ms",
    advice: { explicitBucketBoundaries: [10, 100] },
  });
  for (const v of [5, 50, 500, 7.5]) latency.record(v, { route: "/cart" });
  const payload = meter.createHistogram("payload.size", { unit: "By" });
  for (const v of [0, 3, 100, 2.5, 1e6]) payload.record(v, { direction: "in" });
  const temperature = other.createObservableGauge("room.temperature", { unit: "Cel" });
  temperature.addCallback((r) => {
    r.observe(21.5, { room: "a", floors: 2.5 });
    r.observe(-3, { room: "b" });
  });

  const out: ResourceMetrics[] = [];
  for (const reader of [cumulative, delta]) {
    const { resourceMetrics, errors } = await reader.collect();
    assert.deepEqual(errors, []);
    out.push(resourceMetrics);
  }
  await provider.shutdown();
  return out;
}

const hrNanos = (t: [number, number]): bigint => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
const render = (attrs: Record<string, unknown>): Record<string, string> =>
  Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, String(v)]));

/** Checks that decoded rows hold exactly the SDK's data points, value for value. */
function assertMatchesSdk(d: Decoded, rm: ResourceMetrics): void {
  const tables = tablesOf(d);
  let points = 0;
  const seen = new Set<Row>();
  for (const sm of rm.scopeMetrics) {
    for (const metric of sm.metrics) {
      const table: TableName = {
        [DataPointType.GAUGE]: "otel_metrics_gauge",
        [DataPointType.SUM]: "otel_metrics_sum",
        [DataPointType.HISTOGRAM]: "otel_metrics_histogram",
        [DataPointType.EXPONENTIAL_HISTOGRAM]: "otel_metrics_exp_histogram",
      }[metric.dataPointType] as TableName;
      for (let i = 0; i < metric.dataPoints.length; i++) {
        const dp = metric.dataPoints[i];
        points++;
        const attrs = render(dp.attributes);
        const candidates = (tables[table] ?? []).filter((r) =>
          r.MetricName === metric.descriptor.name && JSON.stringify(r.Attributes) ===
            JSON.stringify(Object.fromEntries(Object.entries(attrs).sort(([a], [b]) => a < b ? -1 : 1)))
        );
        assert.equal(candidates.length, 1, `one row for ${metric.descriptor.name} ${JSON.stringify(attrs)}`);
        const row = candidates[0];
        seen.add(row);
        const where = `${metric.descriptor.name} ${JSON.stringify(attrs)}`;
        assert.equal(row.ServiceName, "checkout");
        assert.deepStrictEqual(
          row.ResourceAttributes,
          render(rm.resource.attributes as Record<string, unknown>),
        );
        assert.equal(row.ScopeName, sm.scope.name);
        assert.equal(row.ScopeVersion, sm.scope.version ?? "");
        assert.equal(row.ScopeSchemaUrl, sm.scope.schemaUrl ?? "");
        assert.equal(row.MetricDescription, metric.descriptor.description);
        assert.equal(row.MetricUnit, metric.descriptor.unit);
        assert.equal(row.StartTimeUnix, hrNanos(dp.startTime), where);
        assert.equal(row.TimeUnix, hrNanos(dp.endTime), where);
        assert.equal(row.Flags, 0);
        const temporality = metric.aggregationTemporality === AggregationTemporality.DELTA ? 1 : 2;
        switch (metric.dataPointType) {
          case DataPointType.GAUGE:
            assert.equal(row.Value, metric.dataPoints[i].value, where);
            break;
          case DataPointType.SUM:
            assert.equal(row.Value, metric.dataPoints[i].value, where);
            assert.equal(row.IsMonotonic, metric.isMonotonic, where);
            assert.equal(row.AggregationTemporality, temporality, where);
            break;
          case DataPointType.HISTOGRAM: {
            const h = metric.dataPoints[i].value;
            assert.equal(row.Count, BigInt(h.count), where);
            assert.equal(row.Sum, h.sum, where);
            assert.equal(row.Min, h.min, where);
            assert.equal(row.Max, h.max, where);
            assert.deepStrictEqual(row.BucketCounts, h.buckets.counts.map(BigInt), where);
            assert.deepStrictEqual(row.ExplicitBounds, h.buckets.boundaries, where);
            assert.equal(row.AggregationTemporality, temporality, where);
            break;
          }
          case DataPointType.EXPONENTIAL_HISTOGRAM: {
            const h = metric.dataPoints[i].value;
            assert.equal(row.Count, BigInt(h.count), where);
            assert.equal(row.Sum, h.sum, where);
            assert.equal(row.Min, h.min, where);
            assert.equal(row.Max, h.max, where);
            assert.equal(row.Scale, h.scale, where);
            assert.equal(row.ZeroCount, BigInt(h.zeroCount), where);
            assert.equal(row.PositiveOffset, h.positive.offset, where);
            assert.deepStrictEqual(row.PositiveBucketCounts, h.positive.bucketCounts.map(BigInt), where);
            assert.equal(row.NegativeOffset, h.negative.offset, where);
            assert.deepStrictEqual(row.NegativeBucketCounts, h.negative.bucketCounts.map(BigInt), where);
            assert.equal(row.AggregationTemporality, temporality, where);
            break;
          }
        }
      }
    }
  }
  assert.equal(d.records, points);
  assert.equal(seen.size, points);
  assert.equal(d.rejected, 0);
}

Deno.test("requests from the OpenTelemetry JS SDK serializers decode to the SDK's values", async () => {
  const collected = await sdkMetrics();
  for (const rm of collected) {
    const kinds = new Set(rm.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.dataPointType)));
    assert.equal(kinds.size, 4, "gauge, sum, histogram and exponential histogram were collected");
    const pb = decodePb(ProtobufMetricsSerializer.serializeRequest(rm)!);
    const json = decodeRequest("metrics", JsonMetricsSerializer.serializeRequest(rm)!, { format: "json" });
    assertMatchesSdk(pb, rm);
    assertMatchesSdk(json, rm);
    assert.deepStrictEqual(tablesOf(json), tablesOf(pb));
  }
  // Spot checks that do not lean on the SDK's own numbers.
  const rows = tablesOf(decodePb(ProtobufMetricsSerializer.serializeRequest(collected[0])!));
  const sum = rows.otel_metrics_sum!;
  const cart = sum.find((r) => r.MetricName === "http.requests" && (r.Attributes as Row).route === "/cart");
  assert.equal(cart!.Value, 5);
  assert.equal(sum.find((r) => r.MetricName === "queue.depth")!.Value, -1.75);
  assert.equal(sum.find((r) => r.MetricName === "queue.depth")!.IsMonotonic, false);
  assert.deepStrictEqual(sum.find((r) => (r.Attributes as Row).code)!.Attributes, {
    code: "404",
    route: "/pay",
  });
  const hist = rows.otel_metrics_histogram![0];
  assert.deepStrictEqual([hist.Count, hist.Sum, hist.Min, hist.Max], [4n, 562.5, 5, 500]);
  assert.deepStrictEqual(hist.BucketCounts, [2n, 1n, 1n]);
  const exp = rows.otel_metrics_exp_histogram![0];
  assert.deepStrictEqual([exp.Count, exp.ZeroCount, exp.Min, exp.Max], [5n, 1n, 0, 1e6]);
  const gauge = rows.otel_metrics_gauge!;
  assert.deepStrictEqual(gauge.map((r) => [r.ScopeName, r.ScopeVersion, r.Value, r.Attributes]), [
    ["db", "", 21.5, { floors: "2.5", room: "a" }],
    ["db", "", -3, { room: "b" }],
  ]);
  assert.equal(sum[0].ScopeSchemaUrl, "https://opentelemetry.io/schemas/1.30.0");
  assert.deepStrictEqual(sum[0].ResourceAttributes, {
    replicas: "3",
    "service.name": "checkout",
    "service.version": "4.2.0",
  });
});

// ---------------------------------------------------------------------------------------------------------
// Hand-made protobuf: a minimal writer for the fields the tests need

type Bytes = Uint8Array | number[];

function concat(parts: Bytes[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}
function varint(v: number | bigint): number[] {
  let x = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  while (x >= 0x80n) out.push(Number(x & 0x7fn) | 0x80), x >>= 7n;
  out.push(Number(x));
  return out;
}
const tag = (field: number, wt: number) => varint((field << 3) | wt);
const pb = {
  varint: (f: number, v: number | bigint) => concat([tag(f, 0), varint(v)]),
  sint: (f: number, v: number) => concat([tag(f, 0), varint(((v << 1) ^ (v >> 31)) >>> 0)]),
  fixed64: (f: number, v: number | bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true);
    return concat([tag(f, 1), b]);
  },
  double: (f: number, v: number) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    return concat([tag(f, 1), b]);
  },
  len: (f: number, ...parts: Bytes[]) => {
    const body = concat(parts);
    return concat([tag(f, 2), varint(body.length), body]);
  },
  str: (f: number, s: string) => pb.len(f, enc.encode(s)),
};
/** KeyValue with a string value. */
const kv = (f: number, key: string, value: string) => pb.len(f, pb.str(1, key), pb.len(2, pb.str(1, value)));
const packedFixed64 = (f: number, vs: number[]) => pb.len(f, ...vs.map((v) => pb.fixed64(1, v).subarray(1)));
const packedDoubles = (f: number, vs: number[]) => pb.len(f, ...vs.map((v) => pb.double(1, v).subarray(1)));
const T0 = 1_700_000_000_000_000_000n;

/** An ExportMetricsServiceRequest with one resource (service "svc") and one scope holding `metrics`. */
function request(...metrics: Uint8Array[]): Uint8Array {
  return pb.len(
    1,
    pb.len(1, kv(1, "service.name", "svc")),
    pb.len(
      2,
      pb.len(1, pb.str(1, "scope"), pb.str(2, "0.1"), kv(3, "s", "x"), pb.varint(4, 3)),
      ...metrics,
      pb.str(3, "https://scope.schema"),
    ),
    pb.str(3, "https://resource.schema"),
  );
}
/** A Metric (ScopeMetrics field 2) named `name` with data field `kind` holding `body`. */
const metric = (name: string, kind: number, ...body: Uint8Array[]) =>
  pb.len(2, pb.str(1, name), pb.str(3, "1"), pb.len(kind, ...body));
const numberPoint = (...fields: Uint8Array[]) => pb.len(1, pb.fixed64(3, T0), ...fields);

/** The same as `request`, in OTLP/JSON. */
function jsonRequest(...metrics: unknown[]): unknown {
  return {
    resourceMetrics: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "svc" } }] },
      scopeMetrics: [{
        scope: {
          name: "scope",
          version: "0.1",
          attributes: [{ key: "s", value: { stringValue: "x" } }],
          droppedAttributesCount: 3,
        },
        metrics,
        schemaUrl: "https://scope.schema",
      }],
      schemaUrl: "https://resource.schema",
    }],
  };
}

Deno.test("exemplars, flags, schema URLs and dropped counts decode alike from protobuf and JSON", async () => {
  const traceId = "5b8efff798038103d269b633813fc60c", spanId = "eee19b7ec3c1b174";
  const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));
  const exemplarPb = pb.len(
    5,
    kv(7, "user", "u1"),
    pb.fixed64(2, T0 - 5n),
    pb.fixed64(6, -12),
    pb.len(4, hex(spanId)),
    pb.len(5, hex(traceId)),
  );
  const bin = request(
    metric(
      "g",
      5,
      numberPoint(
        pb.double(4, 1.5),
        pb.varint(8, 1),
        kv(7, "k", "v"),
        exemplarPb,
        pb.len(5, pb.double(3, 0.25)),
      ),
      numberPoint(pb.fixed64(6, -7)),
    ),
  );
  const json = jsonRequest({
    name: "g",
    unit: "1",
    gauge: {
      dataPoints: [
        {
          timeUnixNano: String(T0),
          asDouble: 1.5,
          flags: 1,
          attributes: [{ key: "k", value: { stringValue: "v" } }],
          exemplars: [
            {
              filteredAttributes: [{ key: "user", value: { stringValue: "u1" } }],
              timeUnixNano: String(T0 - 5n),
              asInt: "-12",
              spanId,
              traceId: btoa(String.fromCharCode(...hex(traceId))), // base64 ids are accepted too
            },
            { asDouble: 0.25 },
          ],
        },
        { timeUnixNano: Number(T0), asInt: -7 },
      ],
    },
  });
  const a = tablesOf(decodePb(bin)), b = tablesOf(decodeJson(json));
  assert.deepStrictEqual(b, a);
  const [r0, r1] = a.otel_metrics_gauge!;
  assert.deepStrictEqual(
    [r0.Value, r0.Flags, r0.Attributes, r0.ResourceSchemaUrl, r0.ScopeSchemaUrl, r0.ScopeDroppedAttrCount],
    [1.5, 1, { k: "v" }, "https://resource.schema", "https://scope.schema", 3],
  );
  assert.deepStrictEqual(r0.ScopeAttributes, { s: "x" });
  assert.deepStrictEqual(r0["Exemplars.FilteredAttributes"], [{ user: "u1" }, {}]);
  assert.deepStrictEqual(r0["Exemplars.TimeUnix"], [T0 - 5n, 0n]);
  assert.deepStrictEqual(r0["Exemplars.Value"], [-12, 0.25]);
  assert.deepStrictEqual(r0["Exemplars.SpanId"], [spanId, ""]);
  assert.deepStrictEqual(r0["Exemplars.TraceId"], [traceId, ""]);
  assert.deepStrictEqual([r1.Value, r1["Exemplars.Value"]], [-7, []]);

  // The nested exemplar lists survive the trip through Arrow and Parquet.
  await loadParquetWasm();
  const file = tableFromIPC(readParquet(toParquetFiles(decodePb(bin))[0].bytes).intoIPCStream());
  const list = (name: string) =>
    [0, 1].map((i) => [...file.getChild(name)!.get(i)].map((v) => v?.toJSON ? v.toJSON() : v));
  assert.deepStrictEqual(list("Exemplars.FilteredAttributes"), [[{ user: "u1" }, {}], []]);
  assert.deepStrictEqual(list("Exemplars.Value"), [[-12, 0.25], []]);
  assert.deepStrictEqual(list("Exemplars.SpanId"), [[spanId, ""], []]);
  assert.deepStrictEqual(list("Exemplars.TraceId"), [[traceId, ""], []]);
});

Deno.test("data points without a value are refused and counted; the rest of the request is stored", () => {
  const bin = request(
    metric(
      "http.requests",
      7,
      numberPoint(pb.fixed64(6, 1), pb.len(5, pb.double(3, 9))),
      numberPoint(kv(7, "a", "b"), pb.len(5, pb.double(3, 8))), // no value, but an exemplar
      numberPoint(pb.double(4, 3), pb.len(5, pb.double(3, 7))),
      numberPoint(pb.varint(8, 1)),
      pb.varint(2, 1),
    ),
  );
  const json = jsonRequest({
    name: "http.requests",
    unit: "1",
    sum: {
      aggregationTemporality: 1,
      dataPoints: [
        { timeUnixNano: String(T0), asInt: "1", exemplars: [{ asDouble: 9 }] },
        {
          timeUnixNano: String(T0),
          attributes: [{ key: "a", value: { stringValue: "b" } }],
          exemplars: [{ asDouble: 8 }],
        },
        { timeUnixNano: String(T0), asDouble: 3, exemplars: [{ asDouble: 7 }] },
        { timeUnixNano: String(T0), flags: 1 },
      ],
    },
  });
  for (const d of [decodePb(bin), decodeJson(json)]) {
    assert.equal(d.records, 2);
    assert.equal(d.rejected, 2);
    assert.equal(d.rejectMessage, "2 data points without a value (metric http.requests)");
    const rows = tablesOf(d).otel_metrics_sum!;
    assert.deepStrictEqual(
      rows.map((r) => [r.Value, r.Attributes, r["Exemplars.Value"], r.AggregationTemporality]),
      [
        [1, {}, [9], 1],
        [3, {}, [7], 1],
      ],
    );
  }
  assert.deepStrictEqual(tablesOf(decodePb(bin)), tablesOf(decodeJson(json)));

  // Refusals in several metrics name them; a request of only refused points stores nothing.
  const several = decodePb(
    request(metric("a", 5, numberPoint()), metric("b", 7, numberPoint(), numberPoint())),
  );
  assert.deepStrictEqual([several.records, several.rejected, several.tables.length], [0, 3, 0]);
  assert.equal(several.rejectMessage, "3 data points without a value (metrics a, b)");
  const one = decodeJson(jsonRequest({ name: "x", gauge: { dataPoints: [{}] } }));
  assert.equal(one.rejectMessage, "1 data point without a value (metric x)");
});

Deno.test("a metric without data is skipped; a later data field of another kind replaces an earlier one", () => {
  const bin = request(
    pb.len(2, pb.str(1, "empty"), pb.str(2, "no data")),
    pb.len(
      2,
      pb.str(1, "switched"),
      pb.len(5, numberPoint(pb.double(4, 1))),
      pb.len(7, numberPoint(pb.double(4, 2))),
    ),
    // A repeated data field merges: its data points add up.
    pb.len(
      2,
      pb.str(1, "merged"),
      pb.len(5, numberPoint(pb.double(4, 3))),
      pb.len(5, numberPoint(pb.double(4, 4))),
    ),
  );
  const t = tablesOf(decodePb(bin));
  assert.deepStrictEqual(Object.keys(t), ["otel_metrics_gauge", "otel_metrics_sum"]);
  assert.deepStrictEqual(t.otel_metrics_sum!.map((r) => [r.MetricName, r.Value]), [["switched", 2]]);
  assert.deepStrictEqual(t.otel_metrics_gauge!.map((r) => [r.MetricName, r.Value]), [["merged", 3], [
    "merged",
    4,
  ]]);
  const j = decodeJson(jsonRequest({ name: "empty", description: "no data" }));
  assert.deepStrictEqual([j.records, j.rejected, j.tables.length], [0, 0, 0]);
});

Deno.test("packed and unpacked repeated fields, negative scales and offsets, and 64-bit values decode", () => {
  const histogram = (...fields: Uint8Array[]) =>
    request(
      metric("h", 9, pb.len(1, pb.fixed64(3, T0), pb.fixed64(4, 2n ** 63n + 5n), ...fields), pb.varint(2, 2)),
    );
  const packed = tablesOf(decodePb(histogram(packedFixed64(6, [1, 2, 3]), packedDoubles(7, [0.5, 1.5]))));
  const unpacked = tablesOf(
    decodePb(
      histogram(pb.fixed64(6, 1), pb.double(7, 0.5), pb.fixed64(6, 2), pb.double(7, 1.5), pb.fixed64(6, 3)),
    ),
  );
  assert.deepStrictEqual(unpacked, packed);
  const h = packed.otel_metrics_histogram![0];
  assert.deepStrictEqual([h.Count, h.BucketCounts, h.ExplicitBounds, h.Sum, h.Min, h.Max], [
    2n ** 63n + 5n,
    [1n, 2n, 3n],
    [0.5, 1.5],
    0,
    0,
    0,
  ]);
  // No buckets at all is allowed (count and sum only).
  assert.deepStrictEqual(
    tablesOf(decodePb(histogram(pb.double(5, 9)))).otel_metrics_histogram![0].BucketCounts,
    [],
  );

  const big = 2n ** 40n + 1n;
  const expPoint = (pos: Uint8Array) =>
    request(
      metric(
        "e",
        10,
        pb.len(
          1,
          pb.fixed64(3, T0),
          pb.sint(6, -2),
          pb.fixed64(7, 7),
          pos,
          pb.len(9, pb.sint(1, 4), pb.len(2, varint(9))),
          pb.double(14, 0.001),
        ),
      ),
    );
  const e1 = tablesOf(decodePb(expPoint(pb.len(8, pb.sint(1, -3), pb.len(2, varint(1), varint(big))))));
  const e2 = tablesOf(decodePb(expPoint(pb.len(8, pb.sint(1, -3), pb.varint(2, 1), pb.varint(2, big)))));
  assert.deepStrictEqual(e2, e1);
  const e = e1.otel_metrics_exp_histogram![0];
  assert.deepStrictEqual(
    [
      e.Scale,
      e.ZeroCount,
      e.PositiveOffset,
      e.PositiveBucketCounts,
      e.NegativeOffset,
      e.NegativeBucketCounts,
    ],
    [-2, 7n, -3, [1n, big], 4, [9n]],
  );
  assert.equal(e.AggregationTemporality, 0);

  // as_int beyond 2^53 and negative.
  const g = tablesOf(decodePb(request(
    metric("i", 5, numberPoint(pb.fixed64(6, -(2n ** 60n))), numberPoint(pb.fixed64(6, 2n ** 62n + 1n))),
  ))).otel_metrics_gauge!;
  assert.deepStrictEqual(g.map((r) => r.Value), [-(2 ** 60), 2 ** 62]);
});

Deno.test("JSON times that repeat, nearly repeat or change between data points are each read as written", () => {
  // Start and end times are remembered from one point to the next (their text, quotes included).
  const times = [
    "1700000000000000000",
    "1700000000000000000",
    "1700000000000000001",
    "170000000000000000",
    "17000000000000000",
    "1700000000000000000",
    "0",
    "1800000000000000000",
    "1",
    "11",
  ];
  const dataPoints = times.map((t, i) => ({
    startTimeUnixNano: times[times.length - 1 - i],
    timeUnixNano: t,
    asInt: i,
  }));
  // One more point with its times as JSON numbers (read as JSON.parse reads them).
  dataPoints.push({
    startTimeUnixNano: 5 as unknown as string,
    timeUnixNano: 11 as unknown as string,
    asInt: 10,
  });
  const rows = tablesOf(decodeJson(jsonRequest({ name: "g", gauge: { dataPoints } }))).otel_metrics_gauge!;
  assert.deepStrictEqual(
    rows.map((r) => [r.StartTimeUnix, r.TimeUnix]),
    [...times.map((t, i) => [BigInt(times[times.length - 1 - i]), BigInt(t)]), [5n, 11n]],
  );
});

Deno.test("JSON accepts enums as numbers or names, proto field names and 64-bit integers as numbers", () => {
  const base = {
    name: "s",
    sum: {
      aggregation_temporality: "AGGREGATION_TEMPORALITY_DELTA",
      is_monotonic: true,
      data_points: [{ time_unix_nano: String(T0), as_int: 12, start_time_unix_nano: 5 }],
    },
  };
  const a = tablesOf(decodeJson(jsonRequest(base))).otel_metrics_sum![0];
  assert.deepStrictEqual([a.Value, a.AggregationTemporality, a.IsMonotonic, a.StartTimeUnix], [
    12,
    1,
    true,
    5n,
  ]);
  const b = tablesOf(decodeJson(jsonRequest({
    name: "s",
    sum: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: String(T0), asInt: "12" }] },
  }))).otel_metrics_sum![0];
  assert.deepStrictEqual([b.Value, b.AggregationTemporality, b.IsMonotonic], [12, 2, false]);
  const e = tablesOf(decodeJson(jsonRequest({
    name: "e",
    exponential_histogram: {
      data_points: [{
        scale: -1,
        zero_count: "3",
        positive: { offset: -2, bucket_counts: [1, "2"] },
        quantile_values: "ignored",
      }],
    },
  }))).otel_metrics_exp_histogram![0];
  assert.deepStrictEqual([
    e.Scale,
    e.ZeroCount,
    e.PositiveOffset,
    e.PositiveBucketCounts,
    e.NegativeBucketCounts,
  ], [
    -1,
    3n,
    -2,
    [1n, 2n],
    [],
  ]);
});

Deno.test("invalid requests are DecodeErrors that name the field", () => {
  const P = "cannot decode metrics request: field resourceMetrics[0].scopeMetrics[0].metrics[0].";
  const cases: [string, Uint8Array, string][] = [
    ["temporality 3", request(metric("s", 7, pb.varint(2, 3))), `${P}sum.aggregationTemporality: unknown`],
    [
      "negative temporality",
      request(metric("h", 9, pb.varint(2, -1))),
      `${P}histogram.aggregationTemporality: `,
    ],
    [
      "time as varint",
      request(metric("g", 5, pb.len(1, pb.varint(3, 5)))),
      `${P}gauge.dataPoints[0].timeUnixNano: wrong wire type varint`,
    ],
    [
      "as_int as varint",
      request(metric("g", 5, pb.len(1, pb.varint(6, 5)))),
      `${P}gauge.dataPoints[0].asInt: wrong wire type`,
    ],
    [
      "flags as fixed64",
      request(metric("g", 5, numberPoint(pb.fixed64(8, 1)))),
      `${P}gauge.dataPoints[0].flags: wrong wire type`,
    ],
    ["data as varint", request(pb.len(2, pb.varint(9, 1))), `${P}histogram: wrong wire type`],
    [
      "data points as fixed64",
      request(metric("g", 5, pb.fixed64(1, 1))),
      `${P}gauge.dataPoints: wrong wire type`,
    ],
    [
      "span id of 5 bytes",
      request(metric("g", 5, numberPoint(pb.double(4, 1), pb.len(5, pb.len(4, [1, 2, 3, 4, 5]))))),
      `${P}gauge.dataPoints[0].exemplars[0].spanId: must be 8 bytes, got 5`,
    ],
    [
      "trace id of 8 bytes",
      request(
        metric(
          "g",
          5,
          numberPoint(pb.double(4, 1)),
          numberPoint(pb.double(4, 1), pb.len(5, pb.len(5, [1, 2, 3, 4, 5, 6, 7, 8]))),
        ),
      ),
      `${P}gauge.dataPoints[1].exemplars[0].traceId: must be 16 bytes, got 8`,
    ],
    [
      "more bucket counts than bounds + 1",
      request(metric("h", 9, pb.len(1, packedFixed64(6, [1, 2, 3]), packedDoubles(7, [1])))),
      `${P}histogram.dataPoints[0].bucketCounts: 3 bucket counts for 1 explicit bounds`,
    ],
    [
      "bounds without counts",
      request(metric("h", 9, pb.len(1, packedDoubles(7, [1])))),
      `${P}histogram.dataPoints[0].bucketCounts: 0 bucket counts for 1 explicit bounds`,
    ],
    [
      "packed counts of 7 bytes",
      request(metric("h", 9, pb.len(1, pb.len(6, [1, 2, 3, 4, 5, 6, 7])))),
      `${P}histogram.dataPoints[0].bucketCounts: packed length 7`,
    ],
    [
      "exp bucket offset as fixed64",
      request(metric("e", 10, pb.len(1, pb.len(8, pb.fixed64(1, 1))))),
      `${P}exponentialHistogram.dataPoints[0].positive.offset: wrong wire type`,
    ],
    [
      "quantile as varint",
      request(metric("q", 11, pb.len(1, pb.len(6, pb.varint(1, 1))))),
      `${P}summary.dataPoints[0].quantileValues[0].quantile: wrong wire type`,
    ],
    [
      "invalid UTF-8 in a name",
      request(pb.len(2, pb.len(1, [0xff]), pb.len(5))),
      `${P}name: invalid UTF-8`,
    ],
    [
      "invalid UTF-8 in an attribute",
      request(
        metric("g", 5, numberPoint(pb.double(4, 1), pb.len(7, pb.str(1, "k"), pb.len(2, pb.len(1, [0xc3]))))),
      ),
      `${P}gauge.dataPoints[0].attributes[0]["k"].value.stringValue: invalid UTF-8`,
    ],
  ];
  for (const [what, bin, start] of cases) {
    try {
      assertDecodeError(() => decodePb(bin), start);
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}`);
    }
  }
  const jsonCases: [string, unknown, string][] = [
    [
      "temporality 3",
      { name: "s", sum: { aggregationTemporality: 3 } },
      `${P}sum.aggregationTemporality: unknown value 3`,
    ],
    ["two kinds", { name: "s", sum: {}, gauge: {} }, `${P.slice(0, -1)}: gauge and sum are both set`],
    [
      "both values",
      { name: "g", gauge: { dataPoints: [{ asInt: 1, asDouble: 1 }] } },
      `${P}gauge.dataPoints[0]: asDouble and asInt`,
    ],
    [
      "value not a number",
      { name: "g", gauge: { dataPoints: [{ asDouble: "x" }] } },
      `${P}gauge.dataPoints[0].asDouble: expected a number`,
    ],
    [
      "count negative",
      { name: "h", histogram: { dataPoints: [{ count: -1 }] } },
      `${P}histogram.dataPoints[0].count: `,
    ],
    [
      "bucket mismatch",
      { name: "h", histogram: { dataPoints: [{ bucketCounts: [1], explicitBounds: [1, 2] }] } },
      `${P}histogram.dataPoints[0].bucketCounts: 1 bucket counts for 2 explicit bounds`,
    ],
    [
      "null bucket count",
      { name: "h", histogram: { dataPoints: [{ bucketCounts: [1, null], explicitBounds: [1] }] } },
      `${P}histogram.dataPoints[0].bucketCounts[1]: expected a number`,
    ],
    [
      "bad span id",
      { name: "g", gauge: { dataPoints: [{ asInt: 1, exemplars: [{ spanId: "xyz" }] }] } },
      `${P}gauge.dataPoints[0].exemplars[0].spanId: `,
    ],
    [
      "data point not an object",
      { name: "g", gauge: { dataPoints: [5] } },
      `${P}gauge.dataPoints[0]: expected an object`,
    ],
    [
      "scale out of range",
      { name: "e", exponentialHistogram: { dataPoints: [{ scale: 2 ** 31 }] } },
      `${P}exponentialHistogram.dataPoints[0].scale: `,
    ],
    [
      "quantile not a number",
      { name: "q", summary: { dataPoints: [{ quantileValues: [{ quantile: true }] }] } },
      `${P}summary.dataPoints[0].quantileValues[0].quantile: expected a number`,
    ],
    [
      "bound not a number",
      { name: "h", histogram: { dataPoints: [{ bucketCounts: [1, 2, 3], explicitBounds: [1, "x"] }] } },
      `${P}histogram.dataPoints[0].explicitBounds[1]: `,
    ],
    [
      "bucket count an object",
      { name: "h", histogram: { dataPoints: [{ bucketCounts: ["1", {}], explicitBounds: [1] }] } },
      `${P}histogram.dataPoints[0].bucketCounts[1]: `,
    ],
    [
      "bucket count past 64 bits",
      { name: "h", histogram: { dataPoints: [{ bucketCounts: ["18446744073709551616"] }] } },
      `${P}histogram.dataPoints[0].bucketCounts[0]: `,
    ],
    [
      "positive buckets not a list",
      { name: "e", exponentialHistogram: { dataPoints: [{ positive: { bucketCounts: 5 } }] } },
      `${P}exponentialHistogram.dataPoints[0].positive.bucketCounts: `,
    ],
    [
      "negative bucket count null",
      { name: "e", exponentialHistogram: { dataPoints: [{ negative: { bucketCounts: [1, null] } }] } },
      `${P}exponentialHistogram.dataPoints[0].negative.bucketCounts[1]: expected a number`,
    ],
  ];
  for (const [what, m, start] of jsonCases) {
    try {
      assertDecodeError(() => decodeJson(jsonRequest(m)), start);
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------------------
// Robustness: broken input fails with a DecodeError, never another exception

function decodesOrRefuses(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
  }
}

Deno.test("every truncation of the protobuf files decodes or is a DecodeError", async () => {
  const inputs: Uint8Array[] = KINDS.map((k) => read(`metrics_${k}.pb`));
  for (const rm of await sdkMetrics()) inputs.push(ProtobufMetricsSerializer.serializeRequest(rm)!);
  let refused = 0;
  for (const bin of inputs) {
    for (let n = 0; n < bin.length; n++) {
      try {
        decodePb(bin.subarray(0, n));
      } catch (e) {
        if (!(e instanceof DecodeError)) throw new Error(`prefix of ${n} bytes: ${e}`);
        refused++;
      }
    }
  }
  assert.ok(refused > 1000, `most truncations are refused (${refused})`);
});

Deno.test("mutated and random protobuf bytes decode or are DecodeErrors", () => {
  const seeds = KINDS.map((k) => read(`metrics_${k}.pb`));
  fc.assert(
    fc.property(
      fc.nat(seeds.length - 1),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      (which, edits) => {
        const bin = seeds[which].slice();
        for (const [at, v] of edits) bin[at % bin.length] = v;
        decodesOrRefuses(() => decodePb(bin));
      },
    ),
    { numRuns: 3000, seed: 42 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bin) => decodesOrRefuses(() => decodePb(bin))),
    { numRuns: 1000, seed: 7 },
  );
});

Deno.test("JSON with any value in any place decodes or is a DecodeError", () => {
  const seeds = KINDS.map((k) => JSON.parse(new TextDecoder().decode(read(`metrics_${k}.json`))));
  /** All [parent, key] places of a JSON tree. */
  const places = (v: unknown, out: [Record<string, unknown>, string][] = []) => {
    if (v && typeof v === "object") {
      for (const k of Object.keys(v)) {
        out.push([v as Record<string, unknown>, k]);
        places((v as Record<string, unknown>)[k], out);
      }
    }
    return out;
  };
  fc.assert(
    fc.property(fc.nat(seeds.length - 1), fc.nat(), fc.jsonValue(), (which, at, value) => {
      const doc = structuredClone(seeds[which]);
      const all = places(doc);
      const [parent, key] = all[at % all.length];
      parent[key] = value;
      decodesOrRefuses(() => decodeJson(doc));
    }),
    { numRuns: 3000, seed: 3 },
  );
});
