/**
 * OTLP/JSON `ExportMetricsServiceRequest` → rows of the five metrics tables, the JSON twin of
 * `metrics_proto.ts` (same tables, same refusals, same error paths).
 *
 * @module
 */

import type { F64Column, U64Column } from "../table/columns.ts";
import type { MetricsDecoded } from "./metrics_proto.ts";
import { DecodeError } from "../errors.ts";
import { DecodeMeter } from "./decode_limits.ts";
import { decodeAllJson, type JsonDecoder, JsonRequestWalker } from "./json_request.ts";
import {
  addJsonAttributes,
  arrayField,
  bool,
  double,
  enumValue,
  field,
  i64Number,
  id,
  int32,
  type JsonObject,
  objectField,
  stringField,
  u64,
  u64Out,
} from "./json_values.ts";
import {
  AGGREGATION_TEMPORALITIES,
  checkBuckets,
  type ExemplarColumns,
  type GaugeTable,
  type MetricMeta,
  MetricsColumns,
  SumTable,
} from "./metrics_proto.ts";
import type { ScopeContext } from "./proto_request.ts";
import { type AttrScratch, pushHexId } from "../table/values.ts";

const NAMES = { resources: "resourceMetrics", scopes: "scopeMetrics", items: "metrics" };
const encoder = new TextEncoder();

/** The members of Metric's `data` oneof: JSON name and proto name. */
const KINDS: readonly (readonly [string, string])[] = [
  ["gauge", "gauge"],
  ["sum", "sum"],
  ["histogram", "histogram"],
  ["exponentialHistogram", "exponential_histogram"],
  ["summary", "summary"],
];

/** Decodes parsed OTLP/JSON metrics requests into the five metrics tables. Throws DecodeError. */
export function decodeMetricsJson(requests: readonly unknown[]): MetricsDecoded {
  return decodeAllJson(metricsJsonDecoder(new DecodeMeter()), requests);
}

/** A decoder of OTLP/JSON metrics requests, one at a time, into one set of the five tables. */
export function metricsJsonDecoder(meter: DecodeMeter): JsonDecoder<MetricsDecoded> {
  const c = new MetricsColumns(meter);
  meter.measure = () => c.byteLength();
  const walker = new JsonRequestWalker(NAMES, (o, ctx) => decodeMetric(c, o, ctx), meter, false);
  return { walk: (request, pos) => walker.walk(request, pos), result: () => c.result() };
}

function rethrow(e: unknown, segment: string): never {
  if (e instanceof DecodeError) throw e.within(segment);
  throw e;
}

/** Data-field settings shared by all of a metric's data points. */
interface Settings {
  temporality: number;
  monotonic: boolean;
}

function decodeMetric(c: MetricsColumns, o: JsonObject, ctx: ScopeContext): void {
  let kind = "", data: JsonObject | undefined;
  for (const [camel, snake] of KINDS) {
    const v = objectField(o, camel, snake);
    if (!v) continue;
    if (data) throw new DecodeError(`${kind} and ${camel} are both set; a metric has one kind of data`);
    kind = camel, data = v;
  }
  const m: MetricMeta = {
    name: encoder.encode(stringField(o, "name")),
    description: encoder.encode(stringField(o, "description")),
    unit: encoder.encode(stringField(o, "unit")),
  };
  if (!data) return; // no data: nothing to store, and not an error
  try {
    const settings: Settings = {
      temporality: kind === "gauge" || kind === "summary" ? 0 : enumValue(
        field(data, "aggregationTemporality", "aggregation_temporality"),
        AGGREGATION_TEMPORALITIES,
        "aggregationTemporality",
        2,
      ),
      monotonic: kind === "sum" ? bool(field(data, "isMonotonic", "is_monotonic"), "isMonotonic") : false,
    };
    const points = arrayField(data, "dataPoints", "data_points");
    for (let i = 0; i < points.length; i++) {
      const p = points[i];
      try {
        if (typeof p !== "object" || p === null || Array.isArray(p)) {
          throw new DecodeError("expected an object");
        }
        switch (kind) {
          case "gauge":
            numberPoint(c, c.gauge, p, ctx, m, settings);
            break;
          case "sum":
            numberPoint(c, c.sum, p, ctx, m, settings);
            break;
          case "histogram":
            histogramPoint(c, p, ctx, m, settings);
            break;
          case "exponentialHistogram":
            expHistogramPoint(c, p, ctx, m, settings);
            break;
          default:
            summaryPoint(c, p, ctx, m);
        }
      } catch (e) {
        rethrow(e, `dataPoints[${i}]`);
      }
      c.meter.record();
    }
  } catch (e) {
    rethrow(e, kind);
  }
}

/** A NumberDataPoint's or Exemplar's value: undefined when neither asDouble nor asInt is set. */
function numberValue(o: JsonObject): number | undefined {
  const d = field(o, "asDouble", "as_double"), n = field(o, "asInt", "as_int");
  const hasD = d !== undefined && d !== null, hasN = n !== undefined && n !== null;
  if (hasD && hasN) throw new DecodeError("asDouble and asInt are both set; a value has one of them");
  if (hasD) return double(d, "asDouble");
  if (hasN) return i64Number(n, "asInt");
  return undefined;
}

/** Start and end time words of a data point, read in one place so both formats agree. */
const times = { sLo: 0, sHi: 0, tLo: 0, tHi: 0 };

function readTimes(p: JsonObject): void {
  u64(field(p, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano");
  times.sLo = u64Out.lo, times.sHi = u64Out.hi;
  u64(field(p, "timeUnixNano", "time_unix_nano"), "timeUnixNano");
  times.tLo = u64Out.lo, times.tHi = u64Out.hi;
}

function pushTimes(t: { startTime: U64Column; time: U64Column }): void {
  t.startTime.push(times.sLo, times.sHi);
  t.time.push(times.tLo, times.tHi);
}

function numberPoint(
  c: MetricsColumns,
  t: GaugeTable,
  p: JsonObject,
  ctx: ScopeContext,
  m: MetricMeta,
  settings: Settings,
): void {
  readTimes(p);
  const value = numberValue(p);
  const flags = int32(field(p, "flags"), "flags");
  c.scratch.reset();
  addJsonAttributes(c.scratch, p.attributes, "attributes");
  if (value === undefined) {
    c.scratch.reset();
    c.rejectValueless(m);
    return;
  }
  // A failure below leaves a partial row; callers discard the whole request's rows on any error.
  t.pushHead(ctx, m);
  c.scratch.flushToKeyed(t.attributes);
  pushTimes(t);
  t.value.push(value);
  t.flags.push(flags);
  pushExemplars(t.exemplars, c.scratch, p);
  if (t instanceof SumTable) {
    t.temporality.push(settings.temporality);
    t.isMonotonic.push(settings.monotonic ? 1 : 0);
  }
  t.rows.endRow(ctx.service, times.tLo, times.tHi);
}

function histogramPoint(
  c: MetricsColumns,
  p: JsonObject,
  ctx: ScopeContext,
  m: MetricMeta,
  settings: Settings,
): void {
  const t = c.histogram;
  readTimes(p);
  const counts = scalarList(p, "bucketCounts", "bucket_counts");
  const bounds = scalarList(p, "explicitBounds", "explicit_bounds");
  checkBuckets(counts.length, bounds.length);
  c.scratch.reset();
  addJsonAttributes(c.scratch, p.attributes, "attributes");
  t.pushHead(ctx, m);
  c.scratch.flushToKeyed(t.attributes);
  pushTimes(t);
  u64(field(p, "count"), "count");
  t.count.push(u64Out.lo, u64Out.hi);
  t.sum.push(double(field(p, "sum"), "sum"));
  pushU64s(t.bucketCounts.child, counts, "bucketCounts");
  t.bucketCounts.closeRow();
  pushDoubles(t.explicitBounds.child, bounds, "explicitBounds");
  t.explicitBounds.closeRow();
  pushExemplars(t.exemplars, c.scratch, p);
  t.flags.push(int32(field(p, "flags"), "flags"));
  t.min.push(double(field(p, "min"), "min"));
  t.max.push(double(field(p, "max"), "max"));
  t.temporality.push(settings.temporality);
  t.rows.endRow(ctx.service, times.tLo, times.tHi);
}

function expHistogramPoint(
  c: MetricsColumns,
  p: JsonObject,
  ctx: ScopeContext,
  m: MetricMeta,
  settings: Settings,
): void {
  const t = c.expHistogram;
  readTimes(p);
  c.scratch.reset();
  addJsonAttributes(c.scratch, p.attributes, "attributes");
  t.pushHead(ctx, m);
  c.scratch.flushToKeyed(t.attributes);
  pushTimes(t);
  u64(field(p, "count"), "count");
  t.count.push(u64Out.lo, u64Out.hi);
  t.sum.push(double(field(p, "sum"), "sum"));
  t.scale.push(int32(field(p, "scale"), "scale", true));
  u64(field(p, "zeroCount", "zero_count"), "zeroCount");
  t.zeroCount.push(u64Out.lo, u64Out.hi);
  const pos = objectField(p, "positive");
  t.positiveOffset.push(pos ? int32(field(pos, "offset"), "positive.offset", true) : 0);
  if (pos) {
    pushU64s(
      t.positiveBucketCounts.child,
      scalarList(pos, "bucketCounts", "bucket_counts"),
      "positive.bucketCounts",
    );
  }
  t.positiveBucketCounts.closeRow();
  const neg = objectField(p, "negative");
  t.negativeOffset.push(neg ? int32(field(neg, "offset"), "negative.offset", true) : 0);
  if (neg) {
    pushU64s(
      t.negativeBucketCounts.child,
      scalarList(neg, "bucketCounts", "bucket_counts"),
      "negative.bucketCounts",
    );
  }
  t.negativeBucketCounts.closeRow();
  pushExemplars(t.exemplars, c.scratch, p);
  t.flags.push(int32(field(p, "flags"), "flags"));
  t.min.push(double(field(p, "min"), "min"));
  t.max.push(double(field(p, "max"), "max"));
  t.temporality.push(settings.temporality);
  t.rows.endRow(ctx.service, times.tLo, times.tHi);
}

function summaryPoint(c: MetricsColumns, p: JsonObject, ctx: ScopeContext, m: MetricMeta): void {
  const t = c.summary;
  readTimes(p);
  c.scratch.reset();
  addJsonAttributes(c.scratch, p.attributes, "attributes");
  t.pushHead(ctx, m);
  c.scratch.flushToKeyed(t.attributes);
  pushTimes(t);
  u64(field(p, "count"), "count");
  t.count.push(u64Out.lo, u64Out.hi);
  t.sum.push(double(field(p, "sum"), "sum"));
  const quantiles = arrayField(p, "quantileValues", "quantile_values");
  for (let i = 0; i < quantiles.length; i++) {
    const q = quantiles[i];
    const name = `quantileValues[${i}]`;
    if (typeof q !== "object" || q === null || Array.isArray(q)) {
      throw new DecodeError("expected an object", name);
    }
    t.quantile.child.push(double(field(q, "quantile"), `${name}.quantile`));
    t.quantileValue.child.push(double(field(q, "value"), `${name}.value`));
  }
  t.quantile.closeRow();
  t.quantileValue.closeRow();
  t.flags.push(int32(field(p, "flags"), "flags"));
  t.rows.endRow(ctx.service, times.tLo, times.tHi);
}

/** Appends a data point's exemplars and closes its exemplar list row. */
function pushExemplars(x: ExemplarColumns, scratch: AttrScratch, p: JsonObject): void {
  const list = arrayField(p, "exemplars");
  for (let i = 0; i < list.length; i++) {
    const e = list[i];
    try {
      if (typeof e !== "object" || e === null || Array.isArray(e)) {
        throw new DecodeError("expected an object");
      }
      scratch.reset();
      addJsonAttributes(scratch, field(e, "filteredAttributes", "filtered_attributes"), "filteredAttributes");
      u64(field(e, "timeUnixNano", "time_unix_nano"), "timeUnixNano");
      const lo = u64Out.lo, hi = u64Out.hi;
      const value = numberValue(e) ?? 0;
      const spanId = id(field(e, "spanId", "span_id"), 8, "spanId");
      const traceId = id(field(e, "traceId", "trace_id"), 16, "traceId");
      scratch.flushTo(x.filteredAttributes.child);
      x.time.child.push(lo, hi);
      x.value.child.push(value);
      pushHexId(x.spanId.child, spanId, 0, spanId.length);
      pushHexId(x.traceId.child, traceId, 0, traceId.length);
    } catch (err) {
      rethrow(err, `exemplars[${i}]`);
    }
  }
  x.closeRow();
}

/** An array field of scalars (or empty). */
function scalarList(o: JsonObject, camel: string, snake: string): readonly unknown[] {
  const v = field(o, camel, snake);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new DecodeError("expected an array", camel);
  return v;
}

function pushU64s(col: U64Column, values: readonly unknown[], name: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) throw new DecodeError("expected a number", `${name}[${i}]`);
    u64(v, `${name}[${i}]`);
    col.push(u64Out.lo, u64Out.hi);
  }
}

function pushDoubles(col: F64Column, values: readonly unknown[], name: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) throw new DecodeError("expected a number", `${name}[${i}]`);
    col.push(double(v, `${name}[${i}]`));
  }
}
