/**
 * The seven output tables: the column names, order and types of ClickHouse's OpenTelemetry exporter
 * tables, as ClickHouse itself exports them to Parquet. One definition drives the column buffers, the
 * Arrow schema and the ClickHouse DDL printed by `schema clickhouse`.
 *
 * @module
 */

/** Value types of the tables (ClickHouse's names, with `Map` = `Map(LowCardinality(String), String)`). */
export type ValueType =
  | "DateTime64(9)"
  | "String"
  | "LowCardinality(String)"
  | "UInt8"
  | "UInt32"
  | "UInt64"
  | "Int32"
  | "Float64"
  | "Bool"
  | "Map";

/** One column: a scalar, or an `Array(T)` (`list: true`) as the flattened columns of a Nested are. */
export interface ColumnDef {
  readonly name: string;
  readonly type: ValueType;
  readonly list?: boolean;
  /**
   * Rows repeat a few distinct values (one per resource, scope or metric): decoded rows store each
   * distinct value once (`SharedMapColumn`, `SharedStrColumn`). The output is the same.
   */
  readonly shared?: boolean;
  /** A map whose rows mostly repeat one key list (attributes): decoded rows store each key list once. */
  readonly keyed?: boolean;
}

/** The signals of OTLP. */
export type Signal = "logs" | "traces" | "metrics";

/** The output tables. */
export type TableName =
  | "otel_logs"
  | "otel_traces"
  | "otel_metrics_gauge"
  | "otel_metrics_sum"
  | "otel_metrics_histogram"
  | "otel_metrics_exp_histogram"
  | "otel_metrics_summary";

/** A table: its columns and where its objects go. */
export interface TableDef {
  readonly name: TableName;
  readonly signal: Signal;
  /** Path segment(s) under the storage root, e.g. `logs` or `metrics/gauge`. */
  readonly path: string;
  /** The event-time column that partitions and sorts the rows. */
  readonly timeColumn: string;
  readonly columns: readonly ColumnDef[];
}

/** Version of this schema, written into every file's key-value metadata. */
export const SCHEMA_VERSION = "1";

const c = (name: string, type: ValueType): ColumnDef => ({ name, type });
const shared = (name: string, type: ValueType = "Map"): ColumnDef => ({ name, type, shared: true });
const keyed = (name: string): ColumnDef => ({ name, type: "Map", keyed: true });
const nested = (prefix: string, fields: [string, ValueType][]): ColumnDef[] =>
  fields.map(([n, type]) => ({ name: `${prefix}.${n}`, type, list: true }));

const EXEMPLARS = nested("Exemplars", [
  ["FilteredAttributes", "Map"],
  ["TimeUnix", "DateTime64(9)"],
  ["Value", "Float64"],
  ["SpanId", "String"],
  ["TraceId", "String"],
]);

const METRICS_HEAD: ColumnDef[] = [
  shared("ResourceAttributes"),
  shared("ResourceSchemaUrl", "String"),
  shared("ScopeName", "String"),
  shared("ScopeVersion", "String"),
  shared("ScopeAttributes"),
  c("ScopeDroppedAttrCount", "UInt32"),
  shared("ScopeSchemaUrl", "String"),
  shared("ServiceName", "LowCardinality(String)"),
  shared("MetricName", "String"),
  shared("MetricDescription", "String"),
  shared("MetricUnit", "String"),
  keyed("Attributes"),
  c("StartTimeUnix", "DateTime64(9)"),
  c("TimeUnix", "DateTime64(9)"),
];

const metrics = (name: TableName, path: string, rest: ColumnDef[]): TableDef => ({
  name,
  signal: "metrics",
  path: `metrics/${path}`,
  timeColumn: "TimeUnix",
  columns: [...METRICS_HEAD, ...rest],
});

/** `otel_logs`. */
export const LOGS: TableDef = {
  name: "otel_logs",
  signal: "logs",
  path: "logs",
  timeColumn: "Timestamp",
  columns: [
    c("Timestamp", "DateTime64(9)"),
    c("TraceId", "String"),
    c("SpanId", "String"),
    c("TraceFlags", "UInt8"),
    c("SeverityText", "LowCardinality(String)"),
    c("SeverityNumber", "UInt8"),
    shared("ServiceName", "LowCardinality(String)"),
    c("Body", "String"),
    shared("ResourceSchemaUrl", "LowCardinality(String)"),
    shared("ResourceAttributes"),
    shared("ScopeSchemaUrl", "LowCardinality(String)"),
    shared("ScopeName", "String"),
    shared("ScopeVersion", "LowCardinality(String)"),
    shared("ScopeAttributes"),
    keyed("LogAttributes"),
    c("EventName", "String"),
  ],
};

/** `otel_traces`. */
export const TRACES: TableDef = {
  name: "otel_traces",
  signal: "traces",
  path: "traces",
  timeColumn: "Timestamp",
  columns: [
    c("Timestamp", "DateTime64(9)"),
    c("TraceId", "String"),
    c("SpanId", "String"),
    c("ParentSpanId", "String"),
    c("TraceState", "String"),
    c("SpanName", "LowCardinality(String)"),
    shared("SpanKind", "LowCardinality(String)"),
    shared("ServiceName", "LowCardinality(String)"),
    shared("ResourceAttributes"),
    shared("ScopeName", "String"),
    shared("ScopeVersion", "String"),
    keyed("SpanAttributes"),
    c("Duration", "UInt64"),
    shared("StatusCode", "LowCardinality(String)"),
    c("StatusMessage", "String"),
    ...nested("Events", [["Timestamp", "DateTime64(9)"], ["Name", "LowCardinality(String)"], [
      "Attributes",
      "Map",
    ]]),
    ...nested("Links", [["TraceId", "String"], ["SpanId", "String"], ["TraceState", "String"], [
      "Attributes",
      "Map",
    ]]),
  ],
};

/** `otel_metrics_gauge`. */
export const GAUGE: TableDef = metrics("otel_metrics_gauge", "gauge", [
  c("Value", "Float64"),
  c("Flags", "UInt32"),
  ...EXEMPLARS,
]);

/** `otel_metrics_sum`. */
export const SUM: TableDef = metrics("otel_metrics_sum", "sum", [
  c("Value", "Float64"),
  c("Flags", "UInt32"),
  ...EXEMPLARS,
  c("AggregationTemporality", "Int32"),
  c("IsMonotonic", "Bool"),
]);

/** `otel_metrics_histogram`. */
export const HISTOGRAM: TableDef = metrics("otel_metrics_histogram", "histogram", [
  c("Count", "UInt64"),
  c("Sum", "Float64"),
  { name: "BucketCounts", type: "UInt64", list: true },
  { name: "ExplicitBounds", type: "Float64", list: true },
  ...EXEMPLARS,
  c("Flags", "UInt32"),
  c("Min", "Float64"),
  c("Max", "Float64"),
  c("AggregationTemporality", "Int32"),
]);

/** `otel_metrics_exp_histogram`. */
export const EXP_HISTOGRAM: TableDef = metrics("otel_metrics_exp_histogram", "exponential_histogram", [
  c("Count", "UInt64"),
  c("Sum", "Float64"),
  c("Scale", "Int32"),
  c("ZeroCount", "UInt64"),
  c("PositiveOffset", "Int32"),
  { name: "PositiveBucketCounts", type: "UInt64", list: true },
  c("NegativeOffset", "Int32"),
  { name: "NegativeBucketCounts", type: "UInt64", list: true },
  ...EXEMPLARS,
  c("Flags", "UInt32"),
  c("Min", "Float64"),
  c("Max", "Float64"),
  c("AggregationTemporality", "Int32"),
]);

/** `otel_metrics_summary`. */
export const SUMMARY: TableDef = metrics("otel_metrics_summary", "summary", [
  c("Count", "UInt64"),
  c("Sum", "Float64"),
  ...nested("ValueAtQuantiles", [["Quantile", "Float64"], ["Value", "Float64"]]),
  c("Flags", "UInt32"),
]);

/** Every table, in a fixed order. */
export const TABLES: readonly TableDef[] = [LOGS, TRACES, GAUGE, SUM, HISTOGRAM, EXP_HISTOGRAM, SUMMARY];

/** The table definition for a name. */
export function tableDef(name: TableName): TableDef {
  const def = TABLES.find((t) => t.name === name);
  if (!def) throw new RangeError(`unknown table ${name}`);
  return def;
}

const MAP_SQL = "Map(LowCardinality(String), String)";
const sqlType = (t: ValueType): string => t === "Map" ? MAP_SQL : t;

/**
 * ClickHouse `CREATE TABLE` statements for the tables (the exporter's DDL without codecs and indexes).
 *
 * @example
 * ```ts
 * import { clickhouseDdl } from "./schema.ts";
 * console.log(clickhouseDdl().includes("CREATE TABLE IF NOT EXISTS otel_logs"));
 * ```
 */
export function clickhouseDdl(options: { database?: string; engine?: string } = {}): string {
  const db = options.database ? `${options.database}.` : "";
  return TABLES.map((t) => {
    const lines: string[] = [];
    const cols = t.columns;
    for (let i = 0; i < cols.length; i++) {
      const col = cols[i];
      const dot = col.name.indexOf(".");
      if (dot < 0) {
        lines.push(`    ${col.name} ${col.list ? `Array(${sqlType(col.type)})` : sqlType(col.type)}`);
        continue;
      }
      const prefix = col.name.slice(0, dot);
      const fields: string[] = [];
      while (i < cols.length && cols[i].name.startsWith(prefix + ".")) {
        fields.push(`${cols[i].name.slice(dot + 1)} ${sqlType(cols[i].type)}`);
        i++;
      }
      i--;
      lines.push(`    ${prefix} Nested(${fields.join(", ")})`);
    }
    const order = t.signal === "metrics"
      ? "(ServiceName, MetricName, toUnixTimestamp64Nano(TimeUnix))"
      : t.signal === "traces"
      ? "(ServiceName, SpanName, toDateTime(Timestamp))"
      : "(ServiceName, toDateTime(Timestamp))";
    const engine = options.engine ?? `MergeTree ORDER BY ${order}`;
    return `CREATE TABLE IF NOT EXISTS ${db}${t.name}\n(\n${lines.join(",\n")}\n)\nENGINE = ${engine};\n`;
  }).join("\n");
}

/**
 * Whether a column holds ids (`TraceId`, `SpanId`, `ParentSpanId`, and those of links and exemplars):
 * unique per row, so both Parquet writers skip the dictionary for them.
 */
export function isIdColumn(name: string): boolean {
  return /(^|\.)(Trace|Span|ParentSpan)Id$/.test(name);
}
