/**
 * OTLP/JSON `ExportMetricsServiceRequest` → rows of the five metrics tables, the JSON twin of
 * `metrics_proto.ts` (same tables, same refusals, same error paths).
 *
 * @module
 */

import type { U64Column } from "../table/columns.ts";
import type { MetricsDecoded } from "./metrics_proto.ts";
import { DecodeError } from "../errors.ts";
import { DecodeMeter } from "./decode_limits.ts";
import { decodeAllJson, type JsonDecoder, JsonRequestWalker } from "./json_request.ts";
import { FieldNames, nextElement, pick, scanEnd, scanFields } from "./json_scan.ts";
import {
  addAttributesAt,
  arrayAt,
  boolAt,
  doubleAt,
  eachObjectAt,
  enumAt,
  i64NumberAt,
  idAt,
  int32At,
  objectAt,
  pushDoubleArrayAt,
  pushIdAt,
  pushU64ArrayAt,
  scanWithAttributes,
  u64At,
  u64AtMemo,
  U64Memo,
  u64Out,
  utf8At,
} from "./json_values.ts";
import {
  AGGREGATION_TEMPORALITIES,
  checkBuckets,
  type ExemplarColumns,
  type GaugeTable,
  type MetricMeta,
  MetricsColumns,
  type MetricTable,
  SumTable,
} from "./metrics_proto.ts";
import type { ScopeContext } from "./proto_request.ts";

const NAMES = { resources: "resourceMetrics", scopes: "scopeMetrics", items: "metrics" };

/** Decodes OTLP/JSON metrics requests (as JS values) into the five metrics tables. Throws DecodeError. */
export function decodeMetricsJson(requests: readonly unknown[]): MetricsDecoded {
  const meter = new DecodeMeter();
  return decodeAllJson(metricsJsonDecoder(meter), requests, meter);
}

/** A decoder of OTLP/JSON metrics requests, one at a time, into one set of the five tables. */
export function metricsJsonDecoder(meter: DecodeMeter): JsonDecoder<MetricsDecoded> {
  const c = new MetricsColumns(meter), head = new PendingHead();
  meter.measure = () => {
    head.flush();
    return c.byteLength();
  };
  const walker = new JsonRequestWalker(
    NAMES,
    (buf, p, ctx) => decodeMetric(c, head, buf, p, ctx),
    meter,
    false,
  );
  return { walk: (buf, p, base) => walker.walk(buf, p, base), result: () => c.result() };
}

/**
 * The head columns (resource, scope, metric: the same for all of a metric's data points) of the rows
 * of the metric being read, pushed for many rows at once: when its data points are read, and before the
 * meter measures the decoded bytes, so that measurements count them.
 */
class PendingHead {
  private table: MetricTable | undefined;
  private ctx: ScopeContext | undefined;
  private m: MetricMeta | undefined;
  /** The table's rows up to here have their heads. */
  private done = 0;

  /** Starts a metric whose rows go into `table`. */
  start(table: MetricTable, ctx: ScopeContext, m: MetricMeta): void {
    this.table = table, this.ctx = ctx, this.m = m, this.done = table.rows.length;
  }

  /** Pushes the heads of the rows added since the last flush. */
  flush(): void {
    const t = this.table;
    if (t === undefined) return;
    const n = t.rows.length - this.done;
    if (n > 0) t.pushHead(this.ctx!, this.m!, n);
    this.done += n;
  }

  /** Flushes, and ends the metric. */
  end(): void {
    this.flush();
    this.table = undefined;
  }
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

const METRIC = new FieldNames([
  "name",
  "description",
  "unit",
  "gauge",
  "sum",
  "histogram",
  "exponentialHistogram",
  "summary",
]);
const metricAt = new Int32Array(METRIC.size);
/** The members of Metric's `data` oneof, in the order they are looked at (fields 3-7 of METRIC). */
const KINDS = ["gauge", "sum", "histogram", "exponentialHistogram", "summary"] as const;

const DATA = new FieldNames(["aggregationTemporality", "isMonotonic", "dataPoints"]);
const dataAt = new Int32Array(DATA.size);

/** Fields of all kinds of data points. */
const POINT = new FieldNames([
  "startTimeUnixNano",
  "timeUnixNano",
  "asDouble",
  "asInt",
  "bucketCounts",
  "explicitBounds",
  "zeroCount",
  "quantileValues",
  "flags",
  "attributes",
  "exemplars",
  "count",
  "sum",
  "min",
  "max",
  "scale",
  "positive",
  "negative",
]);
const P_START = 0, P_TIME = 1, P_DOUBLE = 2, P_COUNTS = 4, P_BOUNDS = 5, P_ZERO = 6, P_QUANTILES = 7;
const P_FLAGS = 8, P_ATTRIBUTES = 9, P_EXEMPLARS = 10, P_COUNT = 11, P_SUM = 12, P_MIN = 13, P_MAX = 14;
const P_SCALE = 15, P_POSITIVE = 16, P_NEGATIVE = 17;
const pointAt = new Int32Array(POINT.size);

const BUCKETS = new FieldNames(["offset", "bucketCounts"]);
const bucketsAt = new Int32Array(BUCKETS.size);
const QUANTILE = new FieldNames(["quantile", "value"]);
const quantileAt = new Int32Array(QUANTILE.size);
const EXEMPLAR = new FieldNames([
  "filteredAttributes",
  "timeUnixNano",
  "asDouble",
  "asInt",
  "spanId",
  "traceId",
]);
const exemplarAt = new Int32Array(EXEMPLAR.size);

function decodeMetric(
  c: MetricsColumns,
  head: PendingHead,
  buf: Uint8Array,
  p: number,
  ctx: ScopeContext,
): number {
  scanFields(buf, p, METRIC, metricAt, true);
  const end = scanEnd.p;
  let kind = -1, data = -1;
  for (let k = 0; k < KINDS.length; k++) {
    const v = pick(metricAt, 3 + k);
    if (!objectAt(buf, v, KINDS[k])) continue;
    if (data >= 0) {
      throw new DecodeError(`${KINDS[kind]} and ${KINDS[k]} are both set; a metric has one kind of data`);
    }
    kind = k, data = v;
  }
  const m: MetricMeta = {
    name: utf8At(buf, pick(metricAt, 0), "name"),
    description: utf8At(buf, pick(metricAt, 1), "description"),
    unit: utf8At(buf, pick(metricAt, 2), "unit"),
  };
  if (data < 0) return end; // no data: nothing to store, and not an error
  const kindName = KINDS[kind];
  try {
    scanFields(buf, data, DATA, dataAt, true);
    const temporalityAt = pick(dataAt, 0), monotonicAt = pick(dataAt, 1), pointsAt = pick(dataAt, 2);
    const settings: Settings = {
      temporality: kind === 0 || kind === 4
        ? 0
        : enumAt(buf, temporalityAt, AGGREGATION_TEMPORALITIES, "aggregationTemporality", 2),
      monotonic: kind === 1 ? boolAt(buf, monotonicAt, "isMonotonic") : false,
    };
    if (arrayAt(buf, pointsAt, "dataPoints")) {
      head.start(
        kind === 0
          ? c.gauge
          : kind === 1
          ? c.sum
          : kind === 2
          ? c.histogram
          : kind === 3
          ? c.expHistogram
          : c.summary,
        ctx,
        m,
      );
      let i = 0;
      for (let q = nextElement(buf, pointsAt + 1); q >= 0; i++) {
        let pend: number;
        try {
          if (buf[q] !== 0x7b) throw new DecodeError("expected an object");
          attributesRead = scanWithAttributes(buf, q, POINT, pointAt, P_ATTRIBUTES, c.scratch, c.meter);
          pend = scanEnd.p;
          switch (kind) {
            case 0:
              numberPoint(c, c.gauge, buf, ctx, m, settings);
              break;
            case 1:
              numberPoint(c, c.sum, buf, ctx, m, settings);
              break;
            case 2:
              histogramPoint(c, buf, ctx, settings);
              break;
            case 3:
              expHistogramPoint(c, buf, ctx, settings);
              break;
            default:
              summaryPoint(c, buf, ctx);
          }
        } catch (e) {
          rethrow(e, `dataPoints[${i}]`);
        }
        c.meter.record();
        q = nextElement(buf, pend);
      }
    }
  } catch (e) {
    rethrow(e, kindName);
  } finally {
    head.end(); // also after an error: every column then has the same rows
  }
  return end;
}

/** The value of the NumberDataPoint or Exemplar whose slots are `at`: undefined when neither is set. */
function numberValue(buf: Uint8Array, at: Int32Array, doubleField: number): number | undefined {
  const d = pick(at, doubleField), n = pick(at, doubleField + 1);
  const hasD = d >= 0 && buf[d] !== 0x6e, hasN = n >= 0 && buf[n] !== 0x6e;
  if (hasD && hasN) throw new DecodeError("asDouble and asInt are both set; a value has one of them");
  if (hasD) return doubleAt(buf, d, "asDouble");
  if (hasN) return i64NumberAt(buf, n, "asInt");
  return undefined;
}

/** Whether the data point's attributes are in the scratch already (scanWithAttributes). */
let attributesRead = false;

/** Reads the data point's attributes into the scratch (in the order of the checks) unless they are. */
function readAttributes(c: MetricsColumns, buf: Uint8Array): void {
  if (attributesRead) return;
  c.scratch.reset();
  addAttributesAt(c.scratch, buf, pick(pointAt, P_ATTRIBUTES), "attributes", c.meter);
}

/** Start and end time words of a data point, read in one place so both formats agree. */
const times = { sLo: 0, sHi: 0, tLo: 0, tHi: 0 };

const startMemo = new U64Memo(), timeMemo = new U64Memo();

function readTimes(buf: Uint8Array): void {
  u64AtMemo(buf, pick(pointAt, P_START), "startTimeUnixNano", startMemo);
  times.sLo = u64Out.lo, times.sHi = u64Out.hi;
  u64AtMemo(buf, pick(pointAt, P_TIME), "timeUnixNano", timeMemo);
  times.tLo = u64Out.lo, times.tHi = u64Out.hi;
}

function pushTimes(t: { startTime: U64Column; time: U64Column }): void {
  t.startTime.push(times.sLo, times.sHi);
  t.time.push(times.tLo, times.tHi);
}

function numberPoint(
  c: MetricsColumns,
  t: GaugeTable,
  buf: Uint8Array,
  ctx: ScopeContext,
  m: MetricMeta,
  settings: Settings,
): void {
  const exemplarsAt = pick(pointAt, P_EXEMPLARS);
  readTimes(buf);
  const value = numberValue(buf, pointAt, P_DOUBLE);
  const flags = int32At(buf, pick(pointAt, P_FLAGS), "flags");
  readAttributes(c, buf);
  if (value === undefined) {
    c.scratch.reset();
    c.rejectValueless(m);
    return;
  }
  // A failure below leaves a partial row; callers discard the whole request's rows on any error. The
  // head columns are pushed by PendingHead.
  c.scratch.flushToKeyed(t.attributes);
  pushTimes(t);
  t.value.push(value);
  t.flags.push(flags);
  pushExemplars(t.exemplars, c, buf, exemplarsAt);
  if (t instanceof SumTable) {
    t.temporality.push(settings.temporality);
    t.isMonotonic.push(settings.monotonic ? 1 : 0);
  }
  t.rows.endRow(ctx.service, times.tLo, times.tHi);
}

function histogramPoint(
  c: MetricsColumns,
  buf: Uint8Array,
  ctx: ScopeContext,
  settings: Settings,
): void {
  const t = c.histogram, at = pointAt;
  const countsAt = pick(at, P_COUNTS), boundsAt = pick(at, P_BOUNDS), exemplarsAt = pick(at, P_EXEMPLARS);
  const countAt = pick(at, P_COUNT),
    sumAt = pick(at, P_SUM),
    flagsAt = pick(at, P_FLAGS),
    minAt = pick(at, P_MIN),
    maxAt = pick(at, P_MAX);
  readTimes(buf);
  // The lists go into their columns first (as in protobuf, where they come in the point's bytes), and
  // are checked against each other then.
  const counts = pushU64ArrayAt(t.bucketCounts.child, buf, countsAt, "bucketCounts", c.meter);
  const bounds = pushDoubleArrayAt(t.explicitBounds.child, buf, boundsAt, "explicitBounds", c.meter);
  checkBuckets(counts, bounds);
  readAttributes(c, buf);
  c.scratch.flushToKeyed(t.attributes);
  pushTimes(t);
  u64At(buf, countAt, "count");
  t.count.push(u64Out.lo, u64Out.hi);
  t.sum.push(doubleAt(buf, sumAt, "sum"));
  t.bucketCounts.closeRow();
  t.explicitBounds.closeRow();
  pushExemplars(t.exemplars, c, buf, exemplarsAt);
  t.flags.push(int32At(buf, flagsAt, "flags"));
  t.min.push(doubleAt(buf, minAt, "min"));
  t.max.push(doubleAt(buf, maxAt, "max"));
  t.temporality.push(settings.temporality);
  t.rows.endRow(ctx.service, times.tLo, times.tHi);
}

function expHistogramPoint(
  c: MetricsColumns,
  buf: Uint8Array,
  ctx: ScopeContext,
  settings: Settings,
): void {
  const t = c.expHistogram, at = pointAt;
  const exemplarsAt = pick(at, P_EXEMPLARS),
    countAt = pick(at, P_COUNT),
    sumAt = pick(at, P_SUM),
    scaleAt = pick(at, P_SCALE);
  const zeroAt = pick(at, P_ZERO), posAt = pick(at, P_POSITIVE), negAt = pick(at, P_NEGATIVE);
  const flagsAt = pick(at, P_FLAGS), minAt = pick(at, P_MIN), maxAt = pick(at, P_MAX);
  readTimes(buf);
  readAttributes(c, buf);
  c.scratch.flushToKeyed(t.attributes);
  pushTimes(t);
  u64At(buf, countAt, "count");
  t.count.push(u64Out.lo, u64Out.hi);
  t.sum.push(doubleAt(buf, sumAt, "sum"));
  t.scale.push(int32At(buf, scaleAt, "scale", true));
  u64At(buf, zeroAt, "zeroCount");
  t.zeroCount.push(u64Out.lo, u64Out.hi);
  pushBuckets(c, t.positiveOffset, t.positiveBucketCounts, buf, posAt, "positive", "positive.bucketCounts");
  pushBuckets(c, t.negativeOffset, t.negativeBucketCounts, buf, negAt, "negative", "negative.bucketCounts");
  pushExemplars(t.exemplars, c, buf, exemplarsAt);
  t.flags.push(int32At(buf, flagsAt, "flags"));
  t.min.push(doubleAt(buf, minAt, "min"));
  t.max.push(doubleAt(buf, maxAt, "max"));
  t.temporality.push(settings.temporality);
  t.rows.endRow(ctx.service, times.tLo, times.tHi);
}

/** Appends an exponential histogram's `positive` or `negative` buckets (offset and counts). */
function pushBuckets(
  c: MetricsColumns,
  offsets: { push(v: number): void },
  counts: { child: U64Column; closeRow(): void },
  buf: Uint8Array,
  p: number,
  name: string,
  listName: string,
): void {
  if (objectAt(buf, p, name)) {
    scanFields(buf, p, BUCKETS, bucketsAt);
    offsets.push(int32At(buf, pick(bucketsAt, 0), `${name}.offset`, true));
    pushU64ArrayAt(counts.child, buf, pick(bucketsAt, 1), listName, c.meter);
  } else offsets.push(0);
  counts.closeRow();
}

function summaryPoint(c: MetricsColumns, buf: Uint8Array, ctx: ScopeContext): void {
  const t = c.summary, at = pointAt;
  const countAt = pick(at, P_COUNT),
    sumAt = pick(at, P_SUM),
    quantilesAt = pick(at, P_QUANTILES),
    flagsAt = pick(at, P_FLAGS);
  readTimes(buf);
  readAttributes(c, buf);
  c.scratch.flushToKeyed(t.attributes);
  pushTimes(t);
  u64At(buf, countAt, "count");
  t.count.push(u64Out.lo, u64Out.hi);
  t.sum.push(doubleAt(buf, sumAt, "sum"));
  if (arrayAt(buf, quantilesAt, "quantileValues")) {
    eachObjectAt(buf, quantilesAt, "quantileValues", c.meter, (q) => {
      scanFields(buf, q, QUANTILE, quantileAt);
      t.quantile.child.push(doubleAt(buf, pick(quantileAt, 0), "quantile"));
      t.quantileValue.child.push(doubleAt(buf, pick(quantileAt, 1), "value"));
      return scanEnd.p;
    });
  }
  t.quantile.closeRow();
  t.quantileValue.closeRow();
  t.flags.push(int32At(buf, flagsAt, "flags"));
  t.rows.endRow(ctx.service, times.tLo, times.tHi);
}

/** Appends a data point's exemplars (the array at `p`, -1: absent) and closes its exemplar list row. */
function pushExemplars(x: ExemplarColumns, c: MetricsColumns, buf: Uint8Array, p: number): void {
  if (arrayAt(buf, p, "exemplars")) {
    eachObjectAt(buf, p, "exemplars", c.meter, (q) => pushExemplar(x, c, buf, q));
  }
  x.closeRow();
}

/** Appends the exemplar at `q` (an object) to the exemplar lists; returns the position after it. */
function pushExemplar(x: ExemplarColumns, c: MetricsColumns, buf: Uint8Array, q: number): number {
  const scratch = c.scratch;
  scanFields(buf, q, EXEMPLAR, exemplarAt);
  const end = scanEnd.p;
  const at = exemplarAt, spanAt = pick(at, 4), traceAt = pick(at, 5);
  scratch.reset();
  addAttributesAt(scratch, buf, pick(at, 0), "filteredAttributes", c.meter, "filteredAttributes");
  u64At(buf, pick(at, 1), "timeUnixNano");
  const lo = u64Out.lo, hi = u64Out.hi;
  const value = numberValue(buf, at, 2) ?? 0;
  const spanId = idAt(buf, spanAt, 8, "spanId");
  const traceId = idAt(buf, traceAt, 16, "traceId");
  scratch.flushTo(x.filteredAttributes.child);
  x.time.child.push(lo, hi);
  x.value.child.push(value);
  pushIdAt(x.spanId.child, buf, spanAt, 8, spanId);
  pushIdAt(x.traceId.child, buf, traceAt, 16, traceId);
  return end;
}
