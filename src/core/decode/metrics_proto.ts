/**
 * `ExportMetricsServiceRequest` protobuf → rows of the five metrics tables, straight from the wire into
 * the columns. A NumberDataPoint without a value is refused (counted for `partial_success`, not stored);
 * any other breach of the OTLP rules fails the whole request with a DecodeError naming the field. A
 * Metric without data is skipped. Repeated message fields merge as protobuf says (a repeated `gauge`
 * adds its points), and a later member of the `data` oneof replaces an earlier one.
 *
 * @module
 */

import type {
  F64Column,
  KeyedMapColumn,
  ListColumn,
  MapColumn,
  SharedMapColumn,
  SharedStrColumn,
  StrColumn,
  U32Column,
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
import { addAttributeField } from "./proto_values.ts";
import { type ScopeContext, walkProtoRequest } from "./proto_request.ts";
import { Rows } from "../table/rows.ts";
import { EXP_HISTOGRAM, GAUGE, HISTOGRAM, SUM, SUMMARY, type TableDef } from "../table/schema.ts";
import { ProtoAttrScratch } from "./proto_attrs.ts";
import { AttrScratch, pushHexId } from "../table/values.ts";
import { I64, int64ToNumber, isUtf8, LEN, VARINT, WireReader, wrongWireType, zigzag32 } from "./wire.ts";

/** What the metrics decoders return: rows of the five metric tables plus refused data points. */
export interface MetricsDecoded {
  /** gauge, sum, histogram, exponential histogram, summary: in this order. */
  readonly tables: Rows[];
  readonly rejected: number;
  readonly rejectMessage: string;
}

/** AggregationTemporality names of the OTLP spec (0-2). */
export const AGGREGATION_TEMPORALITIES: Readonly<Record<string, number>> = {
  AGGREGATION_TEMPORALITY_UNSPECIFIED: 0,
  AGGREGATION_TEMPORALITY_DELTA: 1,
  AGGREGATION_TEMPORALITY_CUMULATIVE: 2,
};

/** Name, description and unit (UTF-8) of the metric a data point belongs to. */
export interface MetricMeta {
  readonly name: Uint8Array;
  readonly description: Uint8Array;
  readonly unit: Uint8Array;
}

/** The columns every metrics table starts with. */
export class MetricTable {
  readonly rows: Rows;
  readonly resourceAttributes: SharedMapColumn;
  readonly resourceSchemaUrl: SharedStrColumn;
  readonly scopeName: SharedStrColumn;
  readonly scopeVersion: SharedStrColumn;
  readonly scopeAttributes: SharedMapColumn;
  readonly scopeDroppedAttrCount: U32Column;
  readonly scopeSchemaUrl: SharedStrColumn;
  readonly serviceName: SharedStrColumn;
  readonly metricName: SharedStrColumn;
  readonly metricDescription: SharedStrColumn;
  readonly metricUnit: SharedStrColumn;
  readonly attributes: KeyedMapColumn;
  readonly startTime: U64Column;
  readonly time: U64Column;

  constructor(def: TableDef) {
    const rows = this.rows = new Rows(def);
    this.resourceAttributes = rows.col("ResourceAttributes");
    this.resourceSchemaUrl = rows.col("ResourceSchemaUrl");
    this.scopeName = rows.col("ScopeName");
    this.scopeVersion = rows.col("ScopeVersion");
    this.scopeAttributes = rows.col("ScopeAttributes");
    this.scopeDroppedAttrCount = rows.col("ScopeDroppedAttrCount");
    this.scopeSchemaUrl = rows.col("ScopeSchemaUrl");
    this.serviceName = rows.col("ServiceName");
    this.metricName = rows.col("MetricName");
    this.metricDescription = rows.col("MetricDescription");
    this.metricUnit = rows.col("MetricUnit");
    this.attributes = rows.col("Attributes");
    this.startTime = rows.col("StartTimeUnix");
    this.time = rows.col("TimeUnix");
  }

  /** Appends the resource, scope and metric columns of `times` rows (not Attributes and the times). */
  pushHead(ctx: ScopeContext, m: MetricMeta, times = 1): void {
    ctx.resource.attributes.pushRepeated(this.resourceAttributes, times);
    this.resourceSchemaUrl.pushRepeated(ctx.resourceSchemaUrl, times);
    this.scopeName.pushRepeated(ctx.scope.name, times);
    this.scopeVersion.pushRepeated(ctx.scope.version, times);
    ctx.scope.attributes.pushRepeated(this.scopeAttributes, times);
    for (let i = 0; i < times; i++) this.scopeDroppedAttrCount.push(ctx.scope.droppedAttributesCount);
    this.scopeSchemaUrl.pushRepeated(ctx.scopeSchemaUrl, times);
    this.serviceName.pushRepeated(ctx.serviceBytes, times);
    this.metricName.pushRepeated(m.name, times);
    this.metricDescription.pushRepeated(m.description, times);
    this.metricUnit.pushRepeated(m.unit, times);
  }
}

/** The `Exemplars.*` list columns of a table: one list row per data point, one element per exemplar. */
export class ExemplarColumns {
  readonly filteredAttributes: ListColumn<MapColumn>;
  readonly time: ListColumn<U64Column>;
  readonly value: ListColumn<F64Column>;
  readonly spanId: ListColumn<StrColumn>;
  readonly traceId: ListColumn<StrColumn>;

  constructor(rows: Rows) {
    this.filteredAttributes = rows.col("Exemplars.FilteredAttributes");
    this.time = rows.col("Exemplars.TimeUnix");
    this.value = rows.col("Exemplars.Value");
    this.spanId = rows.col("Exemplars.SpanId");
    this.traceId = rows.col("Exemplars.TraceId");
  }

  /** Closes the data point's list row: the exemplars pushed since the last one belong to it. */
  closeRow(): void {
    this.filteredAttributes.closeRow();
    this.time.closeRow();
    this.value.closeRow();
    this.spanId.closeRow();
    this.traceId.closeRow();
  }
}

/** `otel_metrics_gauge` (and the head of `otel_metrics_sum`). */
export class GaugeTable extends MetricTable {
  readonly value = this.rows.col<F64Column>("Value");
  readonly flags = this.rows.col<U32Column>("Flags");
  readonly exemplars = new ExemplarColumns(this.rows);
}

/** `otel_metrics_sum`. */
export class SumTable extends GaugeTable {
  readonly temporality = this.rows.col<U32Column>("AggregationTemporality");
  readonly isMonotonic = this.rows.col<U8Column>("IsMonotonic");
}

/** `otel_metrics_histogram`. */
export class HistogramTable extends MetricTable {
  readonly count = this.rows.col<U64Column>("Count");
  readonly sum = this.rows.col<F64Column>("Sum");
  readonly bucketCounts = this.rows.col<ListColumn<U64Column>>("BucketCounts");
  readonly explicitBounds = this.rows.col<ListColumn<F64Column>>("ExplicitBounds");
  readonly exemplars = new ExemplarColumns(this.rows);
  readonly flags = this.rows.col<U32Column>("Flags");
  readonly min = this.rows.col<F64Column>("Min");
  readonly max = this.rows.col<F64Column>("Max");
  readonly temporality = this.rows.col<U32Column>("AggregationTemporality");
}

/** `otel_metrics_exp_histogram`. */
export class ExpHistogramTable extends MetricTable {
  readonly count = this.rows.col<U64Column>("Count");
  readonly sum = this.rows.col<F64Column>("Sum");
  readonly scale = this.rows.col<U32Column>("Scale");
  readonly zeroCount = this.rows.col<U64Column>("ZeroCount");
  readonly positiveOffset = this.rows.col<U32Column>("PositiveOffset");
  readonly positiveBucketCounts = this.rows.col<ListColumn<U64Column>>("PositiveBucketCounts");
  readonly negativeOffset = this.rows.col<U32Column>("NegativeOffset");
  readonly negativeBucketCounts = this.rows.col<ListColumn<U64Column>>("NegativeBucketCounts");
  readonly exemplars = new ExemplarColumns(this.rows);
  readonly flags = this.rows.col<U32Column>("Flags");
  readonly min = this.rows.col<F64Column>("Min");
  readonly max = this.rows.col<F64Column>("Max");
  readonly temporality = this.rows.col<U32Column>("AggregationTemporality");
}

/** `otel_metrics_summary`. */
export class SummaryTable extends MetricTable {
  readonly count = this.rows.col<U64Column>("Count");
  readonly sum = this.rows.col<F64Column>("Sum");
  readonly quantile = this.rows.col<ListColumn<F64Column>>("ValueAtQuantiles.Quantile");
  readonly quantileValue = this.rows.col<ListColumn<F64Column>>("ValueAtQuantiles.Value");
  readonly flags = this.rows.col<U32Column>("Flags");
}

/** Metric names quoted in the reject message at most; more are summed up as "and others". */
const MAX_NAMED_METRICS = 5;
const MAX_NAME_CHARS = 128;
const textDecoder = new TextDecoder();
const EMPTY = new Uint8Array(0);

/** The five tables of one request plus the data points refused, shared by the protobuf and JSON decoders. */
export class MetricsColumns {
  readonly gauge = new GaugeTable(GAUGE);
  readonly sum = new SumTable(SUM);
  readonly histogram = new HistogramTable(HISTOGRAM);
  readonly expHistogram = new ExpHistogramTable(EXP_HISTOGRAM);
  readonly summary = new SummaryTable(SUMMARY);
  readonly scratch = new AttrScratch();
  /** The protobuf decoder's attribute scratch (ranges of the request). */
  readonly protoScratch = new ProtoAttrScratch();
  private rejected = 0;

  /** `meter` counts the work of the decode (default: one without limits). */
  constructor(readonly meter: DecodeMeter = new DecodeMeter()) {}

  /** Decoded bytes held: the five tables (as batches count them) and the attribute scratch. */
  byteLength(): number {
    return this.gauge.rows.byteLength() + this.sum.rows.byteLength() + this.histogram.rows.byteLength() +
      this.expHistogram.rows.byteLength() + this.summary.rows.byteLength() +
      this.protoScratch.length * SCRATCH_ENTRY_BYTES;
  }
  private readonly rejectedNames: string[] = [];
  private moreRejectedNames = false;
  private lastRejected: MetricMeta | undefined;

  /** Counts a data point of metric `m` that has no value. */
  rejectValueless(m: MetricMeta): void {
    this.rejected++;
    if (m === this.lastRejected) return;
    this.lastRejected = m;
    const name = textDecoder.decode(m.name).slice(0, MAX_NAME_CHARS);
    if (this.rejectedNames.includes(name)) return;
    if (this.rejectedNames.length < MAX_NAMED_METRICS) this.rejectedNames.push(name);
    else this.moreRejectedNames = true;
  }

  /** The tables in the order of `MetricsDecoded`, and what was refused. */
  result(): MetricsDecoded {
    const n = this.rejected;
    let rejectMessage = "";
    if (n > 0) {
      const names = this.rejectedNames.join(", ") + (this.moreRejectedNames ? " and others" : "");
      const metrics = this.rejectedNames.length > 1 || this.moreRejectedNames ? "metrics" : "metric";
      rejectMessage = `${n} data point${n === 1 ? "" : "s"} without a value (${metrics} ${names})`;
    }
    const { gauge, sum, histogram, expHistogram, summary } = this;
    return {
      tables: [gauge.rows, sum.rows, histogram.rows, expHistogram.rows, summary.rows],
      rejected: n,
      rejectMessage,
    };
  }
}

/**
 * Refuses a histogram whose bucket counts do not fit its bounds. OTLP says there "must" be one more count
 * than bounds, or neither; a point that breaks it cannot be read (which count belongs to which bucket?),
 * so like a malformed id it fails the request rather than being stored or silently dropped.
 */
export function checkBuckets(counts: number, bounds: number): void {
  if (counts === bounds + 1 || (counts === 0 && bounds === 0)) return;
  throw new DecodeError(
    `${counts} bucket counts for ${bounds} explicit bounds (there must be one more count than bounds, or neither)`,
    "bucketCounts",
  );
}

const NAMES = { resources: "resourceMetrics", scopes: "scopeMetrics", items: "metrics" };

// Metric field numbers of the `data` oneof.
const GAUGE_FIELD = 5, SUM_FIELD = 7, HISTOGRAM_FIELD = 9, EXP_HISTOGRAM_FIELD = 10, SUMMARY_FIELD = 11;
const KIND_NAMES: Record<number, string> = {
  [GAUGE_FIELD]: "gauge",
  [SUM_FIELD]: "sum",
  [HISTOGRAM_FIELD]: "histogram",
  [EXP_HISTOGRAM_FIELD]: "exponentialHistogram",
  [SUMMARY_FIELD]: "summary",
};
const META_NAMES = ["", "name", "description", "unit"];

/** Decodes a protobuf `ExportMetricsServiceRequest` into the five metrics tables. Throws DecodeError. */
export function decodeMetricsProto(buf: Uint8Array, limits?: DecodeLimits): MetricsDecoded {
  return runSteps(decodeMetricsProtoSteps(buf, new DecodeMeter(limits)));
}

/** decodeMetricsProto in steps: yields whenever `meter` says a pause is due. */
export function* decodeMetricsProtoSteps(
  buf: Uint8Array,
  meter: DecodeMeter,
): Generator<void, MetricsDecoded> {
  const d = new ProtoMetricsDecoder(new MetricsColumns(meter));
  // The range lists of the metric being decoded are held too: 8 bytes an entry.
  meter.measure = () => d.c.byteLength() + d.rangeEntries() * 8;
  yield* walkProtoRequest(buf, NAMES, (b, s, e, ctx) => d.metric(b, s, e, ctx), meter);
  meter.check();
  return d.c.result();
}

function rethrow(e: unknown, segment: string): never {
  if (e instanceof DecodeError) throw e.within(segment);
  throw e;
}

/** Per-request state of the protobuf path: reusable range lists and the metric-level settings. */
class ProtoMetricsDecoder {
  /** [start, end) pairs of the data field occurrences of the current metric (repeats merge). */
  private readonly dataRanges: number[] = [];
  /** [start, end) pairs of the current data point's exemplars, decoded once the point is kept. */
  private readonly exemplarRanges: number[] = [];
  private temporality = 0;
  private monotonic = false;
  /** Readers reused for every data point, exemplar and nested message (a point's children use `sub`). */
  private readonly point = new WireReader(EMPTY);
  private readonly sub = new WireReader(EMPTY);

  constructor(readonly c: MetricsColumns) {}

  /** Entries of the range lists held for the metric and data point being decoded. */
  rangeEntries(): number {
    return this.dataRanges.length + this.exemplarRanges.length;
  }

  metric(buf: Uint8Array, start: number, end: number, ctx: ScopeContext): void {
    const r = new WireReader(buf, start, end);
    const ranges = this.dataRanges;
    ranges.length = 0;
    let nameS = 0, nameE = 0, descS = 0, descE = 0, unitS = 0, unitE = 0, kind = 0;
    while (r.pos < r.end) {
      const tag = r.tag();
      const field = tag >>> 3, wt = tag & 7;
      switch (field) {
        case 1:
        case 2:
        case 3:
          if (wt !== LEN) throw wrongWireType(META_NAMES[field], wt, LEN);
          r.bytes();
          if (!isUtf8(buf, r.start, r.stop)) throw new DecodeError("invalid UTF-8", META_NAMES[field]);
          if (field === 1) nameS = r.start, nameE = r.stop;
          else if (field === 2) descS = r.start, descE = r.stop;
          else unitS = r.start, unitE = r.stop;
          break;
        case GAUGE_FIELD:
        case SUM_FIELD:
        case HISTOGRAM_FIELD:
        case EXP_HISTOGRAM_FIELD:
        case SUMMARY_FIELD:
          if (wt !== LEN) throw wrongWireType(KIND_NAMES[field], wt, LEN);
          r.bytes();
          // A oneof member replaces another; a repeated one merges (its data points add up).
          if (field !== kind) kind = field, ranges.length = 0;
          ranges.push(r.start, r.stop);
          if ((ranges.length & 2047) === 0) this.c.meter.items(1024);
          break;
        case 12:
          r.bytesOf(wt, "metadata");
          break;
        default:
          r.skip(wt);
      }
    }
    if (kind === 0) return; // no data: nothing to store, and not an error
    const m: MetricMeta = {
      name: buf.subarray(nameS, nameE),
      description: buf.subarray(descS, descE),
      unit: buf.subarray(unitS, unitE),
    };
    try {
      this.settings(buf, kind);
      let n = 0;
      for (let i = 0; i < ranges.length; i += 2) {
        const rr = new WireReader(buf, ranges[i], ranges[i + 1]);
        while (rr.pos < rr.end) {
          const tag = rr.tag();
          if (tag >>> 3 !== 1) {
            rr.skip(tag & 7);
            continue;
          }
          rr.bytes(); // wire type checked by settings()
          try {
            this.dataPoint(kind, buf, rr.start, rr.stop, ctx, m);
          } catch (e) {
            rethrow(e, `dataPoints[${n}]`);
          }
          n++;
          this.c.meter.record();
        }
      }
    } catch (e) {
      rethrow(e, KIND_NAMES[kind]);
    }
  }

  /** Reads the data field's temporality and monotonicity (which follow the data points on the wire). */
  private settings(buf: Uint8Array, kind: number): void {
    const ranges = this.dataRanges;
    const hasTemporality = kind === SUM_FIELD || kind === HISTOGRAM_FIELD || kind === EXP_HISTOGRAM_FIELD;
    this.temporality = 0;
    this.monotonic = false;
    for (let i = 0; i < ranges.length; i += 2) {
      const r = new WireReader(buf, ranges[i], ranges[i + 1]);
      while (r.pos < r.end) {
        const tag = r.tag();
        const field = tag >>> 3, wt = tag & 7;
        if (field === 1) {
          r.bytesOf(wt, "dataPoints");
        } else if (field === 2 && hasTemporality) {
          if (wt !== VARINT) throw wrongWireType("aggregationTemporality", wt, VARINT);
          const t = r.uint32();
          if (t > 2) {
            throw new DecodeError(`unknown aggregation temporality ${t | 0}`, "aggregationTemporality");
          }
          this.temporality = t;
        } else if (field === 3 && kind === SUM_FIELD) {
          if (wt !== VARINT) throw wrongWireType("isMonotonic", wt, VARINT);
          r.varint64();
          this.monotonic = (r.lo | r.hi) !== 0;
        } else r.skip(wt);
      }
    }
  }

  private dataPoint(
    kind: number,
    buf: Uint8Array,
    s: number,
    e: number,
    ctx: ScopeContext,
    m: MetricMeta,
  ): void {
    switch (kind) {
      case GAUGE_FIELD:
        return this.numberPoint(this.c.gauge, buf, s, e, ctx, m);
      case SUM_FIELD:
        return this.numberPoint(this.c.sum, buf, s, e, ctx, m);
      case HISTOGRAM_FIELD:
        return this.histogramPoint(buf, s, e, ctx, m);
      case EXP_HISTOGRAM_FIELD:
        return this.expHistogramPoint(buf, s, e, ctx, m);
      default:
        return this.summaryPoint(buf, s, e, ctx, m);
    }
  }

  private numberPoint(
    t: GaugeTable,
    buf: Uint8Array,
    start: number,
    end: number,
    ctx: ScopeContext,
    m: MetricMeta,
  ): void {
    const r = this.point.reset(buf, start, end);
    const scratch = this.c.protoScratch;
    scratch.reset();
    const ex = this.exemplarRanges;
    ex.length = 0;
    let sLo = 0, sHi = 0, tLo = 0, tHi = 0, value = 0, hasValue = false, flags = 0, nAttr = 0;
    while (r.pos < r.end) {
      const tag = r.tag();
      const wt = tag & 7;
      switch (tag >>> 3) {
        case 2:
          r.fixed64Of(wt, "startTimeUnixNano");
          sLo = r.lo, sHi = r.hi;
          break;
        case 3:
          r.fixed64Of(wt, "timeUnixNano");
          tLo = r.lo, tHi = r.hi;
          break;
        case 4:
          if (wt !== I64) throw wrongWireType("asDouble", wt, I64);
          value = r.double(), hasValue = true;
          break;
        case 6:
          r.fixed64Of(wt, "asInt");
          value = int64ToNumber(r.lo, r.hi), hasValue = true;
          break;
        case 7:
          addAttributeField(this.c.protoScratch, r, wt, "attributes", nAttr++);
          if ((nAttr & 1023) === 0) countNested(this.c, nAttr, "attributes");
          break;
        case 5:
          r.bytesOf(wt, "exemplars");
          ex.push(r.start, r.stop);
          if ((ex.length & 2047) === 0) countNested(this.c, ex.length / 2, "exemplars");
          break;
        case 8:
          flags = r.uint32Of(wt, "flags");
          break;
        default:
          r.skip(wt);
      }
    }
    if (!hasValue) {
      scratch.reset();
      this.c.rejectValueless(m);
      return;
    }
    // A failure below leaves a partial row; callers discard the whole request's rows on any error.
    t.pushHead(ctx, m);
    scratch.flushToKeyed(t.attributes);
    t.startTime.push(sLo, sHi);
    t.time.push(tLo, tHi);
    t.value.push(value);
    t.flags.push(flags);
    this.exemplars(t.exemplars, buf);
    if (t instanceof SumTable) {
      t.temporality.push(this.temporality);
      t.isMonotonic.push(this.monotonic ? 1 : 0);
    }
    t.rows.endRow(ctx.service, tLo, tHi);
  }

  private histogramPoint(
    buf: Uint8Array,
    start: number,
    end: number,
    ctx: ScopeContext,
    m: MetricMeta,
  ): void {
    const t = this.c.histogram;
    const r = this.point.reset(buf, start, end);
    const scratch = this.c.protoScratch;
    scratch.reset();
    const ex = this.exemplarRanges;
    ex.length = 0;
    const counts = t.bucketCounts.child, bounds = t.explicitBounds.child;
    const counts0 = counts.length, bounds0 = bounds.length;
    let sLo = 0, sHi = 0, tLo = 0, tHi = 0, cLo = 0, cHi = 0, sum = 0, min = 0, max = 0, flags = 0, nAttr = 0;
    while (r.pos < r.end) {
      const tag = r.tag();
      const wt = tag & 7;
      switch (tag >>> 3) {
        case 2:
          r.fixed64Of(wt, "startTimeUnixNano");
          sLo = r.lo, sHi = r.hi;
          break;
        case 3:
          r.fixed64Of(wt, "timeUnixNano");
          tLo = r.lo, tHi = r.hi;
          break;
        case 4:
          r.fixed64Of(wt, "count");
          cLo = r.lo, cHi = r.hi;
          break;
        case 5:
          sum = r.doubleOf(wt, "sum");
          break;
        case 6:
          if (wt === LEN) {
            r.bytes();
            pushPackedFixed64(counts, r, "bucketCounts");
            this.c.meter.items((r.stop - r.start) >>> 3);
          } else if (wt === I64) {
            r.fixed64();
            counts.push(r.lo, r.hi);
          } else throw wrongWireType("bucketCounts", wt, LEN);
          break;
        case 7:
          if (wt === LEN) {
            r.bytes();
            pushPackedDoubles(bounds, r, "explicitBounds");
            this.c.meter.items((r.stop - r.start) >>> 3);
          } else if (wt === I64) {
            bounds.push(r.double());
          } else throw wrongWireType("explicitBounds", wt, LEN);
          break;
        case 8:
          r.bytesOf(wt, "exemplars");
          ex.push(r.start, r.stop);
          if ((ex.length & 2047) === 0) countNested(this.c, ex.length / 2, "exemplars");
          break;
        case 9:
          addAttributeField(this.c.protoScratch, r, wt, "attributes", nAttr++);
          if ((nAttr & 1023) === 0) countNested(this.c, nAttr, "attributes");
          break;
        case 10:
          flags = r.uint32Of(wt, "flags");
          break;
        case 11:
          min = r.doubleOf(wt, "min");
          break;
        case 12:
          max = r.doubleOf(wt, "max");
          break;
        default:
          r.skip(wt);
      }
    }
    checkBuckets(counts.length - counts0, bounds.length - bounds0);
    t.pushHead(ctx, m);
    scratch.flushToKeyed(t.attributes);
    t.startTime.push(sLo, sHi);
    t.time.push(tLo, tHi);
    t.count.push(cLo, cHi);
    t.sum.push(sum);
    t.bucketCounts.closeRow();
    t.explicitBounds.closeRow();
    this.exemplars(t.exemplars, buf);
    t.flags.push(flags);
    t.min.push(min);
    t.max.push(max);
    t.temporality.push(this.temporality);
    t.rows.endRow(ctx.service, tLo, tHi);
  }

  private expHistogramPoint(
    buf: Uint8Array,
    start: number,
    end: number,
    ctx: ScopeContext,
    m: MetricMeta,
  ): void {
    const t = this.c.expHistogram;
    const r = this.point.reset(buf, start, end);
    const scratch = this.c.protoScratch;
    scratch.reset();
    const ex = this.exemplarRanges;
    ex.length = 0;
    let sLo = 0, sHi = 0, tLo = 0, tHi = 0, cLo = 0, cHi = 0, zLo = 0, zHi = 0;
    let sum = 0, min = 0, max = 0, flags = 0, scale = 0, posOffset = 0, negOffset = 0, nAttr = 0;
    while (r.pos < r.end) {
      const tag = r.tag();
      const wt = tag & 7;
      switch (tag >>> 3) {
        case 1:
          addAttributeField(this.c.protoScratch, r, wt, "attributes", nAttr++);
          if ((nAttr & 1023) === 0) countNested(this.c, nAttr, "attributes");
          break;
        case 2:
          r.fixed64Of(wt, "startTimeUnixNano");
          sLo = r.lo, sHi = r.hi;
          break;
        case 3:
          r.fixed64Of(wt, "timeUnixNano");
          tLo = r.lo, tHi = r.hi;
          break;
        case 4:
          r.fixed64Of(wt, "count");
          cLo = r.lo, cHi = r.hi;
          break;
        case 5:
          sum = r.doubleOf(wt, "sum");
          break;
        case 6:
          if (wt !== VARINT) throw wrongWireType("scale", wt, VARINT);
          scale = zigzag32(r.uint32());
          break;
        case 7:
          r.fixed64Of(wt, "zeroCount");
          zLo = r.lo, zHi = r.hi;
          break;
        case 8:
          r.bytesOf(wt, "positive");
          try {
            posOffset = decodeBuckets(
              this.sub.reset(buf, r.start, r.stop),
              t.positiveBucketCounts.child,
              posOffset,
              this.c.meter,
            );
          } catch (e) {
            rethrow(e, "positive");
          }
          break;
        case 9:
          r.bytesOf(wt, "negative");
          try {
            negOffset = decodeBuckets(
              this.sub.reset(buf, r.start, r.stop),
              t.negativeBucketCounts.child,
              negOffset,
              this.c.meter,
            );
          } catch (e) {
            rethrow(e, "negative");
          }
          break;
        case 10:
          flags = r.uint32Of(wt, "flags");
          break;
        case 11:
          r.bytesOf(wt, "exemplars");
          ex.push(r.start, r.stop);
          if ((ex.length & 2047) === 0) countNested(this.c, ex.length / 2, "exemplars");
          break;
        case 12:
          min = r.doubleOf(wt, "min");
          break;
        case 13:
          max = r.doubleOf(wt, "max");
          break;
        case 14: // zero_threshold: no column
          if (wt !== I64) throw wrongWireType("zeroThreshold", wt, I64);
          r.skip(wt);
          break;
        default:
          r.skip(wt);
      }
    }
    t.pushHead(ctx, m);
    scratch.flushToKeyed(t.attributes);
    t.startTime.push(sLo, sHi);
    t.time.push(tLo, tHi);
    t.count.push(cLo, cHi);
    t.sum.push(sum);
    t.scale.push(scale);
    t.zeroCount.push(zLo, zHi);
    t.positiveOffset.push(posOffset);
    t.positiveBucketCounts.closeRow();
    t.negativeOffset.push(negOffset);
    t.negativeBucketCounts.closeRow();
    this.exemplars(t.exemplars, buf);
    t.flags.push(flags);
    t.min.push(min);
    t.max.push(max);
    t.temporality.push(this.temporality);
    t.rows.endRow(ctx.service, tLo, tHi);
  }

  private summaryPoint(buf: Uint8Array, start: number, end: number, ctx: ScopeContext, m: MetricMeta): void {
    const t = this.c.summary;
    const r = this.point.reset(buf, start, end);
    const scratch = this.c.protoScratch;
    scratch.reset();
    let sLo = 0, sHi = 0, tLo = 0, tHi = 0, cLo = 0, cHi = 0, sum = 0, flags = 0, nAttr = 0, nq = 0;
    while (r.pos < r.end) {
      const tag = r.tag();
      const wt = tag & 7;
      switch (tag >>> 3) {
        case 2:
          r.fixed64Of(wt, "startTimeUnixNano");
          sLo = r.lo, sHi = r.hi;
          break;
        case 3:
          r.fixed64Of(wt, "timeUnixNano");
          tLo = r.lo, tHi = r.hi;
          break;
        case 4:
          r.fixed64Of(wt, "count");
          cLo = r.lo, cHi = r.hi;
          break;
        case 5:
          sum = r.doubleOf(wt, "sum");
          break;
        case 6:
          r.bytesOf(wt, "quantileValues");
          try {
            decodeQuantile(this.sub.reset(buf, r.start, r.stop), t);
          } catch (e) {
            rethrow(e, `quantileValues[${nq}]`);
          }
          if ((++nq & 1023) === 0) countNested(this.c, nq, "quantileValues");
          break;
        case 7:
          addAttributeField(this.c.protoScratch, r, wt, "attributes", nAttr++);
          if ((nAttr & 1023) === 0) countNested(this.c, nAttr, "attributes");
          break;
        case 8:
          flags = r.uint32Of(wt, "flags");
          break;
        default:
          r.skip(wt);
      }
    }
    t.pushHead(ctx, m);
    scratch.flushToKeyed(t.attributes);
    t.startTime.push(sLo, sHi);
    t.time.push(tLo, tHi);
    t.count.push(cLo, cHi);
    t.sum.push(sum);
    t.quantile.closeRow();
    t.quantileValue.closeRow();
    t.flags.push(flags);
    t.rows.endRow(ctx.service, tLo, tHi);
  }

  /** Decodes the current data point's exemplars and closes its exemplar list row. */
  private exemplars(x: ExemplarColumns, buf: Uint8Array): void {
    const ex = this.exemplarRanges;
    for (let i = 0; i < ex.length; i += 2) {
      try {
        decodeExemplar(x, this.c.protoScratch, this.sub.reset(buf, ex[i], ex[i + 1]), this.c);
      } catch (e) {
        rethrow(e, `exemplars[${i / 2}]`);
      }
    }
    x.closeRow();
  }
}

/** Decodes the Exemplar `r` reads and appends it to the current list row of `x`. */
function decodeExemplar(
  x: ExemplarColumns,
  scratch: ProtoAttrScratch,
  r: WireReader,
  c: MetricsColumns,
): void {
  const buf = r.buf;
  scratch.reset();
  let tLo = 0, tHi = 0, value = 0, spanS = 0, spanE = 0, traceS = 0, traceE = 0, nAttr = 0;
  while (r.pos < r.end) {
    const tag = r.tag();
    const wt = tag & 7;
    switch (tag >>> 3) {
      case 7:
        addAttributeField(scratch, r, wt, "filteredAttributes", nAttr++);
        if ((nAttr & 1023) === 0) countNested(c, nAttr, "filteredAttributes");
        break;
      case 2:
        r.fixed64Of(wt, "timeUnixNano");
        tLo = r.lo, tHi = r.hi;
        break;
      case 3:
        value = r.doubleOf(wt, "asDouble");
        break;
      case 6:
        r.fixed64Of(wt, "asInt");
        value = int64ToNumber(r.lo, r.hi);
        break;
      case 4:
        r.bytesOf(wt, "spanId");
        spanS = r.start, spanE = r.stop;
        if (spanE - spanS !== 8 && spanE !== spanS) {
          throw new DecodeError(`must be 8 bytes, got ${spanE - spanS}`, "spanId");
        }
        break;
      case 5:
        r.bytesOf(wt, "traceId");
        traceS = r.start, traceE = r.stop;
        if (traceE - traceS !== 16 && traceE !== traceS) {
          throw new DecodeError(`must be 16 bytes, got ${traceE - traceS}`, "traceId");
        }
        break;
      default:
        r.skip(wt);
    }
  }
  scratch.flushTo(x.filteredAttributes.child);
  x.time.child.push(tLo, tHi);
  x.value.child.push(value);
  pushHexId(x.spanId.child, buf, spanS, spanE);
  pushHexId(x.traceId.child, buf, traceS, traceE);
}

/**
 * Decodes the Buckets `r` reads: counts go to `counts`; returns its offset (`offset` when absent). Every
 * 1024th count is counted by `meter` (a packed count of one byte decodes to eight).
 */
function decodeBuckets(r: WireReader, counts: U64Column, offset: number, meter: DecodeMeter): number {
  while (r.pos < r.end) {
    const tag = r.tag();
    const wt = tag & 7;
    switch (tag >>> 3) {
      case 1:
        if (wt !== VARINT) throw wrongWireType("offset", wt, VARINT);
        offset = zigzag32(r.uint32());
        break;
      case 2:
        if (wt === LEN) {
          r.bytes();
          const end = r.end;
          r.pos = r.start, r.end = r.stop; // read the packed values in place, then carry on after them
          while (r.pos < r.end) {
            r.varint64();
            counts.push(r.lo, r.hi);
            if ((counts.length & 1023) === 0) meter.items(1024);
          }
          r.end = end;
        } else if (wt === VARINT) {
          r.varint64();
          counts.push(r.lo, r.hi);
        } else throw wrongWireType("bucketCounts", wt, LEN);
        break;
      default:
        r.skip(wt);
    }
  }
  return offset;
}

function decodeQuantile(r: WireReader, t: SummaryTable): void {
  let quantile = 0, value = 0;
  while (r.pos < r.end) {
    const tag = r.tag();
    const wt = tag & 7;
    switch (tag >>> 3) {
      case 1:
        quantile = r.doubleOf(wt, "quantile");
        break;
      case 2:
        value = r.doubleOf(wt, "value");
        break;
      default:
        r.skip(wt);
    }
  }
  t.quantile.child.push(quantile);
  t.quantileValue.child.push(value);
}

/** Appends a packed repeated fixed64: the length-delimited value `r` has just passed. */
function pushPackedFixed64(col: U64Column, r: WireReader, name: string): void {
  const n = r.stop - r.start;
  if (n % 8 !== 0) throw new DecodeError(`packed length ${n} is not a multiple of 8`, name);
  const end = r.end;
  r.pos = r.start, r.end = r.stop;
  while (r.pos < r.end) {
    r.fixed64();
    col.push(r.lo, r.hi);
  }
  r.end = end;
}

/** Appends a packed repeated double: the length-delimited value `r` has just passed. */
function pushPackedDoubles(col: F64Column, r: WireReader, name: string): void {
  const n = r.stop - r.start;
  if (n % 8 !== 0) throw new DecodeError(`packed length ${n} is not a multiple of 8`, name);
  const end = r.end;
  r.pos = r.start, r.end = r.stop;
  while (r.pos < r.end) col.push(r.double());
  r.end = end;
}
