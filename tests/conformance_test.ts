/**
 * Conformance: our Parquet files against ClickHouse itself (chDB) and DuckDB.
 *
 * - For every table, ClickHouse's own export of the exporter's table (`SELECT * … FORMAT Parquet`) and
 *   our files DESCRIBE identically (names, order, types), and their low-level Parquet schemas agree
 *   except for the differences listed in KNOWN_PARQUET_DIFFERENCES.
 * - Our files made from the shared test data and from requests serialized by the OpenTelemetry JS SDK
 *   load into the exporter's tables (`INSERT … SELECT * FROM file(…)`, and by column name) with the
 *   expected row counts, and read back (ClickHouse, DuckDB) with the values that were sent.
 * - DuckDB reads the hive partitions (year/month/day/hour).
 */
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  context,
  createTraceState,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  ValueType,
} from "@opentelemetry/api";
import { SeverityNumber } from "@opentelemetry/api-logs";
import {
  JsonLogsSerializer,
  JsonMetricsSerializer,
  JsonTraceSerializer,
  ProtobufLogsSerializer,
  ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
} from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from "@opentelemetry/sdk-logs";
import { AggregationType, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { convertFiles, type ConvertReport } from "../src/cli/convert.ts";
import { rowsToParquet } from "../src/core/parquet/parquet.ts";
import { Rows } from "../src/core/table/rows.ts";
import {
  clickhouseDdl,
  type Signal,
  type TableDef,
  tableDef,
  type TableName,
  TABLES,
} from "../src/core/table/schema.ts";
import { loadParquetWasm } from "../src/platforms/wasm.ts";
import { type Described, openClickHouse, sqlString } from "./support/clickhouse.ts";
import { openDuckDb } from "./support/duckdb.ts";

const DATA = new URL("../../shared/testdata/otlp2parquet-rust/", import.meta.url).pathname;

// ---- shared setup: one chDB session, one DuckDB, ClickHouse's own export of every table ----

await loadParquetWasm();
const TMP = Deno.makeTempDirSync({ prefix: "otlp2parquet-conformance-" });
const ch = openClickHouse();
const duck = await openDuckDb();
globalThis.addEventListener("unload", () => {
  ch.close();
  duck.close();
  rmSync(TMP, { recursive: true, force: true });
});

ch.exec(clickhouseDdl());
/** ClickHouse's Parquet export of each table, holding two random rows (non-empty maps and lists). */
const THEIRS = new Map<TableName, string>();
mkdirSync(join(TMP, "theirs"));
for (const t of TABLES) {
  const structure = ch.describe(t.name).map((c) => `\`${c.name}\` ${c.type}`).join(", ");
  ch.exec(`INSERT INTO ${t.name} SELECT * FROM generateRandom(${sqlString(structure)}, 42, 12, 3) LIMIT 2`);
  const path = join(TMP, "theirs", `${t.name}.parquet`);
  ch.exec(`SELECT * FROM ${t.name} INTO OUTFILE ${sqlString(path)} TRUNCATE FORMAT Parquet`);
  ch.exec(`TRUNCATE TABLE ${t.name}`);
  THEIRS.set(t.name, path);
}

/** DESCRIBE of a Parquet file (or glob) as ClickHouse infers it, without hive partition columns. */
function describeFile(path: string): Described[] {
  return ch.describe(`file(${sqlString(path)}, Parquet) SETTINGS use_hive_partitioning = 0`);
}

const quote = (name: string): string => `\`${name}\``;
const glob = (dir: string, table: TableDef): string => join(dir, table.path, "**", "*.parquet");

/**
 * Loads our files of a table into the exporter's table twice, by `SELECT *` and by column names, and
 * returns the row count (asserted equal both ways). The table keeps the rows.
 */
function loadIntoClickHouse(dir: string, table: TableDef): number {
  const src = `file(${sqlString(glob(dir, table))}, Parquet)`;
  const count = (): number => Number(ch.rows<{ n: string }>(`SELECT count() AS n FROM ${table.name}`)[0].n);
  ch.exec(`TRUNCATE TABLE ${table.name}`);
  ch.exec(`INSERT INTO ${table.name} SELECT * FROM ${src}`);
  const byStar = count();
  ch.exec(`TRUNCATE TABLE ${table.name}`);
  const cols = table.columns.map((c) => quote(c.name)).join(", ");
  ch.exec(`INSERT INTO ${table.name} (${cols}) SELECT ${cols} FROM ${src}`);
  assert.equal(count(), byStar, `${table.name}: INSERT by name and by * load the same rows`);
  return byStar;
}

/** Converts inputs with the CLI's converter into a fresh folder. */
async function convert(
  name: string,
  inputs: string[],
  signal?: Signal,
): Promise<{ dir: string; report: ConvertReport }> {
  const dir = join(TMP, name);
  const report = await convertFiles(inputs, { out: dir, signal, instanceId: "conformance" });
  for (const r of report.inputs) assert.ok(r.ok, `${r.input}: ${r.ok ? "" : r.error}`);
  return { dir, report };
}

/** Every file written has exactly the columns, order and types of ClickHouse's export of its table. */
function assertDescribesLikeClickHouse(report: ConvertReport): void {
  for (const r of report.inputs) {
    if (!r.ok) continue;
    for (const f of r.files) {
      assert.deepEqual(describeFile(f.path), describeFile(THEIRS.get(f.table)!), `${f.key} vs ClickHouse`);
    }
  }
}

const rowsOf = (report: ConvertReport, table: TableName): number =>
  report.inputs.reduce(
    (n, r) => n + (r.ok ? r.files.filter((f) => f.table === table) : []).reduce((m, f) => m + f.rows, 0),
    0,
  );

const mapOf = (entries: { key: string; value: string }[]): Record<string, string> =>
  Object.fromEntries(entries.map((e) => [e.key, e.value]));

// ---- schema, independent of any decoder ----

Deno.test("an empty file of every table DESCRIBEs exactly like ClickHouse's own Parquet export", () => {
  for (const t of TABLES) {
    const path = join(TMP, `empty_${t.name}.parquet`);
    writeFileSync(path, rowsToParquet(new Rows(t)));
    const theirs = describeFile(THEIRS.get(t.name)!);
    assert.deepEqual(theirs.map((c) => c.name), t.columns.map((c) => c.name), `${t.name}: column names`);
    assert.deepEqual(describeFile(path), theirs, `${t.name}: DESCRIBE`);
    // Required columns: ClickHouse infers no Nullable for any of them.
    assert.ok(theirs.every((c) => !c.type.includes("Nullable")), `${t.name}: no Nullable`);
  }
});

/**
 * What remains different in the low-level Parquet schema (DuckDB's `parquet_schema()`), none of it
 * visible to readers: the root element's name (arrow-rs always writes `arrow_schema`) and the map
 * group's legacy `MAP_KEY_VALUE` converted type, which ClickHouse still writes and the Parquet spec
 * says writers should no longer set.
 */
const KNOWN_PARQUET_DIFFERENCES = [
  { field: "name", ours: "arrow_schema", theirs: "schema" },
  { field: "converted_type", ours: null, theirs: "MAP_KEY_VALUE" },
];

Deno.test("the Parquet schema of every table matches ClickHouse's up to the known differences", async () => {
  const cols = "name, type, type_length, repetition_type, num_children, converted_type, scale, precision, " +
    "field_id, logical_type";
  const schema = (path: string) => duck.rows(`SELECT ${cols} FROM parquet_schema(${sqlString(path)})`);
  const found = new Set<string>();
  for (const t of TABLES) {
    const path = join(TMP, `schema_${t.name}.parquet`);
    writeFileSync(path, rowsToParquet(new Rows(t)));
    const ours = await schema(path);
    const theirs = await schema(THEIRS.get(t.name)!);
    assert.equal(ours.length, theirs.length, `${t.name}: number of schema elements`);
    for (let i = 0; i < ours.length; i++) {
      for (const field of Object.keys(theirs[i])) {
        const a = ours[i][field], b = theirs[i][field];
        if (a === b) continue;
        const known = KNOWN_PARQUET_DIFFERENCES.find((d) =>
          d.field === field && d.ours === a && d.theirs === b
        );
        assert.ok(known, `${t.name} element ${i} (${theirs[i].name}): ${field} is ${a}, ClickHouse has ${b}`);
        found.add(`${field}: ${a} vs ${b}`);
      }
    }
  }
  // Every listed difference still exists (delete it from the list when it goes away).
  assert.deepEqual(
    [...found].sort(),
    KNOWN_PARQUET_DIFFERENCES.map((d) => `${d.field}: ${d.ours} vs ${d.theirs}`).sort(),
  );
});

// ---- the shared test data (the Rust otlp2parquet's) ----

const PB_COUNTS: Record<string, [TableName, number]> = {
  "logs.pb": ["otel_logs", 81],
  "traces.pb": ["otel_traces", 19],
  "metrics_gauge.pb": ["otel_metrics_gauge", 3],
  "metrics_sum.pb": ["otel_metrics_sum", 4],
  "metrics_histogram.pb": ["otel_metrics_histogram", 3],
  "metrics_exponential_histogram.pb": ["otel_metrics_exp_histogram", 2],
  "metrics_summary.pb": ["otel_metrics_summary", 2],
};

const SHARED: { file: string; signal: Signal; twinOf?: string }[] = [
  { file: "logs.pb", signal: "logs" },
  { file: "logs.jsonl", signal: "logs", twinOf: "logs.pb" },
  { file: "log.json", signal: "logs" },
  { file: "traces.pb", signal: "traces" },
  { file: "traces.jsonl", signal: "traces", twinOf: "traces.pb" },
  { file: "trace.pb", signal: "traces" },
  { file: "trace.json", signal: "traces", twinOf: "trace.pb" },
  ...["gauge", "sum", "histogram", "exponential_histogram", "summary", "mixed"].flatMap((k) => [
    { file: `metrics_${k}.pb`, signal: "metrics" as const },
    { file: `metrics_${k}.json`, signal: "metrics" as const, twinOf: `metrics_${k}.pb` },
    { file: `metrics_${k}.jsonl`, signal: "metrics" as const, twinOf: `metrics_${k}.pb` },
  ]),
];

for (const { file, signal, twinOf } of SHARED) {
  Deno.test(`${file}: converts to files ClickHouse loads into the exporter's tables`, async () => {
    const { dir, report } = await convert(`shared_${file}`, [join(DATA, file)]);
    const r = report.inputs[0];
    assert.ok(r.ok);
    assert.equal(r.signal, signal, "detected signal");
    assert.ok(r.files.length > 0 && r.records > 0, "records were converted");
    assertDescribesLikeClickHouse(report);
    for (const t of new Set(r.files.map((f) => f.table))) {
      assert.equal(loadIntoClickHouse(dir, tableDef(t)), rowsOf(report, t), `${t}: rows loaded`);
    }
    const expected = PB_COUNTS[file];
    if (expected) assert.equal(rowsOf(report, expected[0]), expected[1], `${expected[0]} rows`);
    if (twinOf) {
      // The JSON twin of a protobuf file holds the same data: every table has the same rows.
      await convert(`twin_${file}`, [join(DATA, twinOf)]);
      for (const t of new Set(r.files.map((f) => tableDef(f.table)))) {
        const a = `read_parquet(${sqlString(glob(dir, t))})`;
        const b = `read_parquet(${sqlString(glob(join(TMP, `twin_${file}`), t))})`;
        const [d] = await duck.rows(
          `SELECT (SELECT count(*) FROM (FROM ${a} EXCEPT ALL FROM ${b})) AS x, ` +
            `(SELECT count(*) FROM (FROM ${b} EXCEPT ALL FROM ${a})) AS y`,
        );
        assert.deepEqual(d, { x: "0", y: "0" }, `${t.name}: ${file} and ${twinOf} hold the same rows`);
      }
    }
  });
}

/**
 * Values against what the Rust otlp2parquet wrote for the same `.pb` inputs (its schema differs:
 * microsecond timestamps, JSON-text attributes, binary ids in logs), through DuckDB.
 */
const VS_RUST: Record<string, { table: TableDef; ours: string[]; rust: string[] }> = {
  "logs.pb": {
    table: tableDef("otel_logs"),
    ours: [
      "epoch_us(Timestamp)",
      "TraceId",
      "SpanId",
      "TraceFlags::INT",
      "SeverityText",
      "SeverityNumber::INT",
      "ServiceName",
      "ResourceSchemaUrl",
      "ScopeName",
      "ScopeVersion",
      "list_sort(map_keys(ResourceAttributes))",
      "list_sort(map_keys(LogAttributes))",
      "Body",
    ],
    rust: [
      "epoch_us(Timestamp)",
      // Rust wrote absent ids as zeros.
      "regexp_replace(lower(hex(TraceId)), '^0+$', '')",
      "regexp_replace(lower(hex(SpanId)), '^0+$', '')",
      "TraceFlags::INT",
      "coalesce(SeverityText, '')",
      "SeverityNumber::INT",
      "ServiceName",
      "coalesce(ResourceSchemaUrl, '')",
      "coalesce(ScopeName, '')",
      "coalesce(ScopeVersion, '')",
      // Rust kept service.* attributes in their own columns.
      "list_sort(list_concat(json_keys(ResourceAttributes), ['service.name'], " +
      "CASE WHEN ServiceNamespace IS NULL THEN [] ELSE ['service.namespace'] END, " +
      "CASE WHEN ServiceInstanceId IS NULL THEN [] ELSE ['service.instance.id'] END))",
      "list_sort(json_keys(LogAttributes))",
      "CASE WHEN json_type(Body) = 'VARCHAR' THEN Body->>'$' ELSE Body END",
    ],
  },
  "traces.pb": {
    table: tableDef("otel_traces"),
    ours: [
      "epoch_us(Timestamp)",
      "TraceId",
      "SpanId",
      "ParentSpanId",
      "TraceState",
      "SpanName",
      "SpanKind",
      "ServiceName",
      "ScopeName",
      "Duration::BIGINT",
      "StatusCode",
      "StatusMessage",
      "list_sort(map_keys(SpanAttributes))",
      'list_transform("Events.Timestamp", x -> epoch_us(x))',
      '"Events.Name"',
      '"Links.TraceId"',
    ],
    rust: [
      "epoch_us(Timestamp)",
      "TraceId",
      "SpanId",
      "coalesce(ParentSpanId, '')",
      "coalesce(TraceState, '')",
      "SpanName",
      "SpanKind",
      "ServiceName",
      "coalesce(ScopeName, '')",
      "Duration",
      "StatusCode",
      "coalesce(StatusMessage, '')",
      "list_sort(json_keys(SpanAttributes))",
      "list_transform(EventsTimestamp, x -> epoch_us(x))",
      "EventsName",
      "LinksTraceId",
    ],
  },
};
const METRIC_HEAD_OURS = [
  "epoch_us(TimeUnix)",
  "ServiceName",
  "MetricName",
  "MetricDescription",
  "MetricUnit",
  "ScopeName",
  "ScopeVersion",
  "list_sort(list_transform(map_keys(Attributes), k -> k || '=' || Attributes[k]))",
];
const METRIC_HEAD_RUST = [
  "epoch_us(Timestamp)",
  "ServiceName",
  "MetricName",
  "coalesce(MetricDescription, '')",
  "coalesce(MetricUnit, '')",
  "coalesce(ScopeName, '')",
  "coalesce(ScopeVersion, '')",
  "list_sort(list_transform(json_keys(Attributes), k -> k || '=' || (Attributes->>k)))",
];
const metricVsRust = (name: TableName, ours: string[], rust = ours) => ({
  table: tableDef(name),
  ours: [...METRIC_HEAD_OURS, ...ours],
  rust: [...METRIC_HEAD_RUST, ...rust],
});
VS_RUST["metrics_gauge.pb"] = metricVsRust("otel_metrics_gauge", ["Value"]);
VS_RUST["metrics_sum.pb"] = metricVsRust("otel_metrics_sum", [
  "Value",
  "AggregationTemporality",
  "IsMonotonic",
]);
VS_RUST["metrics_histogram.pb"] = metricVsRust("otel_metrics_histogram", [
  "Count::BIGINT",
  "Sum",
  "BucketCounts::BIGINT[]",
  "ExplicitBounds",
  "Min",
  "Max",
]);
VS_RUST["metrics_exponential_histogram.pb"] = metricVsRust("otel_metrics_exp_histogram", [
  "Count::BIGINT",
  "Sum",
  "Scale",
  "ZeroCount::BIGINT",
  "PositiveOffset",
  "PositiveBucketCounts::BIGINT[]",
  "NegativeOffset",
  "NegativeBucketCounts::BIGINT[]",
  "Min",
  "Max",
]);
VS_RUST["metrics_summary.pb"] = metricVsRust("otel_metrics_summary", [
  "Count::BIGINT",
  "Sum",
  '"ValueAtQuantiles.Quantile"',
  '"ValueAtQuantiles.Value"',
], ["Count", "Sum", "QuantileQuantiles", "QuantileValues"]);

for (const [file, spec] of Object.entries(VS_RUST)) {
  Deno.test(`${file}: DuckDB reads the values the Rust otlp2parquet wrote for the same input`, async () => {
    const { dir } = await convert(`rust_${file}`, [join(DATA, file)]);
    const rust = join(DATA, "parquet", file.replace(/\.pb$/, ".parquet"));
    const cols = (exprs: string[]) => exprs.map((e, i) => `${e} AS c${i}`).join(", ");
    const ours = await duck.rows(
      `SELECT ${cols(spec.ours)} FROM read_parquet(${sqlString(glob(dir, spec.table))}) ORDER BY ALL`,
    );
    const theirs = await duck.rows(
      `SELECT ${cols(spec.rust)} FROM read_parquet(${sqlString(rust)}) ORDER BY ALL`,
    );
    assert.equal(ours.length, theirs.length);
    assert.deepEqual(ours, theirs);
  });
}

Deno.test("DuckDB reads the hive partitions: year/month/day/hour columns match the event time", async () => {
  for (const [file, [name, count]] of Object.entries(PB_COUNTS)) {
    const { dir } = await convert(`hive_${file}`, [join(DATA, file)]);
    const t = tableDef(name);
    const src = `read_parquet(${sqlString(glob(dir, t))}, hive_partitioning = true)`;
    const names = (await duck.rows(`DESCRIBE SELECT * FROM ${src}`)).map((r) => r.column_name);
    assert.deepEqual(names.filter((n) => !t.columns.some((c) => c.name === n)).sort(), [
      "day",
      "hour",
      "month",
      "year",
    ]);
    // make_timestamp(µs) is a UTC TIMESTAMP, so no session time zone is involved.
    const ts = `make_timestamp(epoch_us(${t.timeColumn}))`;
    const [r] = await duck.rows(
      `SELECT count(*) AS n, count(*) FILTER (WHERE year = year(${ts}) AND month = month(${ts}) ` +
        `AND day = day(${ts}) AND hour = hour(${ts})) AS matching FROM ${src}`,
    );
    assert.deepEqual(r, { n: String(count), matching: String(count) }, file);
  }
});

// ---- requests made by the OpenTelemetry JS SDK's own serializers ----

const RESOURCE = resourceFromAttributes({ "service.name": "checkout/v2", "host.name": "h1", "pod.n": 42 });
const PARENT = {
  traceId: "0af7651916cd43dd8448eb211c80319c",
  spanId: "b7ad6b7169203331",
  traceFlags: TraceFlags.SAMPLED,
  traceState: createTraceState("vendor=abc"),
};
const dec = new TextDecoder();

/** Writes a request as `{name}.pb` and `{name}.json` (both SDK serializers) and converts both. */
async function convertSdk(name: string, pb: Uint8Array, json: Uint8Array) {
  const pbPath = join(TMP, `${name}.pb`), jsonPath = join(TMP, `${name}.json`);
  writeFileSync(pbPath, pb);
  writeFileSync(jsonPath, json);
  const proto = await convert(`${name}_pb`, [pbPath]);
  const viaJson = await convert(`${name}_json`, [jsonPath]);
  return { proto, viaJson, sent: JSON.parse(dec.decode(json)) };
}

Deno.test("SDK logs: ClickHouse and DuckDB read back what was sent", async () => {
  const exporter = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: RESOURCE,
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  const logger = provider.getLogger("my.scope", "1.2.3");
  logger.emit({
    timestamp: [1700000000, 123456789],
    severityNumber: SeverityNumber.WARN,
    severityText: "WARN",
    body: { msg: "hello", n: 3, nested: [1, "x", true] },
    attributes: { s: "str", b: true, i: 7, d: 0.1, arr: ["a", "b"], bytes: new Uint8Array([1, 2, 255]) },
    context: trace.setSpanContext(context.active(), PARENT),
    eventName: "my.event",
  });
  logger.emit({ timestamp: [1700003600, 5], body: "plain text" }); // next hour, no trace context
  await provider.forceFlush();
  const records = exporter.getFinishedLogRecords();
  const { proto, viaJson } = await convertSdk(
    "sdk_logs",
    ProtobufLogsSerializer.serializeRequest(records)!,
    JsonLogsSerializer.serializeRequest(records)!,
  );
  const expected = [
    {
      ts: "1700000000123456789",
      TraceId: "0af7651916cd43dd8448eb211c80319c",
      SpanId: "b7ad6b7169203331",
      TraceFlags: 1,
      SeverityText: "WARN",
      SeverityNumber: 13,
      ServiceName: "checkout/v2",
      Body: '{"msg":"hello","n":3,"nested":[1,"x",true]}',
      ResourceAttributes: { "host.name": "h1", "pod.n": "42", "service.name": "checkout/v2" },
      ScopeName: "my.scope",
      ScopeVersion: "1.2.3",
      LogAttributes: { arr: '["a","b"]', b: "true", bytes: "AQL/", d: "0.1", i: "7", s: "str" },
      EventName: "my.event",
    },
    {
      ts: "1700003600000000005",
      TraceId: "",
      SpanId: "",
      TraceFlags: 0,
      SeverityText: "",
      SeverityNumber: 0,
      ServiceName: "checkout/v2",
      Body: "plain text",
      ResourceAttributes: { "host.name": "h1", "pod.n": "42", "service.name": "checkout/v2" },
      ScopeName: "my.scope",
      ScopeVersion: "1.2.3",
      LogAttributes: {},
      EventName: "",
    },
  ];
  for (const { dir, report } of [proto, viaJson]) {
    assertDescribesLikeClickHouse(report);
    const keys = report.inputs.flatMap((r) => r.ok ? r.files.map((f) => f.key) : []).sort();
    assert.equal(keys.length, 2, "two hours, two files");
    assert.match(
      keys[0],
      /^logs\/checkout%2Fv2\/year=2023\/month=11\/day=14\/hour=22\/20231114T221320\.123456789Z-/,
    );
    assert.match(keys[1], /^logs\/checkout%2Fv2\/year=2023\/month=11\/day=14\/hour=23\//);
    assert.equal(loadIntoClickHouse(dir, tableDef("otel_logs")), 2);
    const cols = Object.keys(expected[0]).filter((k) => k !== "ts").join(", ");
    const fromClickHouse = ch.rows(
      `SELECT toString(toUnixTimestamp64Nano(Timestamp)) AS ts, ${cols} FROM otel_logs ORDER BY Timestamp`,
    );
    assert.deepEqual(fromClickHouse, expected);
    const fromDuck = await duck.rows(
      `SELECT ${cols} FROM read_parquet(${
        sqlString(join(dir, "logs", "**", "*.parquet"))
      }) ORDER BY Timestamp`,
    );
    const [us] = await duck.rows(
      `SELECT list(epoch_us(Timestamp) ORDER BY Timestamp) AS us FROM read_parquet(${
        sqlString(join(dir, "logs", "**", "*.parquet"))
      })`,
    );
    // DuckDB reads UTC-adjusted nanosecond timestamps (ours and ClickHouse's alike) as microseconds.
    assert.deepEqual(us, { us: ["1700000000123456", "1700003600000000"] });
    assert.deepEqual(
      fromDuck.map((r) => ({
        ...r,
        ResourceAttributes: mapOf(r.ResourceAttributes as { key: string; value: string }[]),
        LogAttributes: mapOf(r.LogAttributes as { key: string; value: string }[]),
      })),
      expected.map(({ ts: _, ...rest }) => rest),
    );
  }
});

Deno.test("SDK traces: ClickHouse and DuckDB read back what was sent", async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: RESOURCE,
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("trace.scope", "0.1");
  const span = tracer.startSpan("GET /x", {
    kind: SpanKind.SERVER,
    startTime: [1700000000, 1],
    attributes: { a: 1, ok: false, tags: ["p", "q"] },
    links: [{
      context: { traceId: "11111111111111111111111111111111", spanId: "2222222222222222", traceFlags: 1 },
      attributes: { l: "x" },
    }],
  }, trace.setSpanContext(context.active(), PARENT));
  span.addEvent("ev1", { e: 2.5 }, [1700000000, 500]);
  span.addEvent("ev2", {}, [1700000001, 0]);
  span.setStatus({ code: SpanStatusCode.ERROR, message: "boom" });
  span.end([1700000001, 999999999]);
  const root = tracer.startSpan("work", { startTime: [1700000002, 0] });
  root.end([1700000001, 0]); // ends before it starts: Duration 0
  const spans = exporter.getFinishedSpans();
  const { proto, viaJson, sent } = await convertSdk(
    "sdk_traces",
    ProtobufTraceSerializer.serializeRequest(spans)!,
    JsonTraceSerializer.serializeRequest(spans)!,
  );
  const sentSpans = sent.resourceSpans[0].scopeSpans[0].spans;
  const common = {
    ServiceName: "checkout/v2",
    ResourceAttributes: { "host.name": "h1", "pod.n": "42", "service.name": "checkout/v2" },
    ScopeName: "trace.scope",
    ScopeVersion: "0.1",
  };
  const expected = [
    {
      ts: "1700000000000000001",
      TraceId: PARENT.traceId,
      SpanId: sentSpans[0].spanId,
      ParentSpanId: PARENT.spanId,
      TraceState: "vendor=abc",
      SpanName: "GET /x",
      SpanKind: "SPAN_KIND_SERVER",
      ...common,
      SpanAttributes: { a: "1", ok: "false", tags: '["p","q"]' },
      Duration: 1999999998,
      StatusCode: "STATUS_CODE_ERROR",
      StatusMessage: "boom",
      events_ts: ["1700000000000000500", "1700000001000000000"],
      "Events.Name": ["ev1", "ev2"],
      "Events.Attributes": [{ e: "2.5" }, {}],
      "Links.TraceId": ["11111111111111111111111111111111"],
      "Links.SpanId": ["2222222222222222"],
      "Links.TraceState": [""],
      "Links.Attributes": [{ l: "x" }],
    },
    {
      ts: "1700000002000000000",
      TraceId: sentSpans[1].traceId,
      SpanId: sentSpans[1].spanId,
      ParentSpanId: "",
      TraceState: "",
      SpanName: "work",
      SpanKind: "SPAN_KIND_INTERNAL",
      ...common,
      SpanAttributes: {},
      Duration: 0,
      StatusCode: "STATUS_CODE_UNSET",
      StatusMessage: "",
      events_ts: [],
      "Events.Name": [],
      "Events.Attributes": [],
      "Links.TraceId": [],
      "Links.SpanId": [],
      "Links.TraceState": [],
      "Links.Attributes": [],
    },
  ];
  assert.match(expected[1].TraceId, /^[0-9a-f]{32}$/);
  for (const { dir, report } of [proto, viaJson]) {
    assertDescribesLikeClickHouse(report);
    assert.equal(loadIntoClickHouse(dir, tableDef("otel_traces")), 2);
    const cols = Object.keys(expected[0]).filter((k) => k !== "ts" && k !== "events_ts").map(quote).join(
      ", ",
    );
    const fromClickHouse = ch.rows(
      `SELECT toString(toUnixTimestamp64Nano(Timestamp)) AS ts, ${cols}, ` +
        "arrayMap(x -> toString(toUnixTimestamp64Nano(x)), `Events.Timestamp`) AS events_ts " +
        "FROM otel_traces ORDER BY Timestamp",
    );
    assert.deepEqual(fromClickHouse, expected);
    const src = `read_parquet(${sqlString(join(dir, "traces", "**", "*.parquet"))})`;
    const fromDuck = await duck.rows(
      `SELECT TraceId, SpanKind, StatusCode, Duration, "Events.Name", "Links.SpanId", ` +
        `list_transform("Events.Timestamp", x -> epoch_us(x)) AS ev, SpanAttributes FROM ${src} ORDER BY Timestamp`,
    );
    assert.deepEqual(fromDuck.map((r) => ({ ...r, SpanAttributes: mapOf(r.SpanAttributes as never) })), [
      {
        TraceId: PARENT.traceId,
        SpanKind: "SPAN_KIND_SERVER",
        StatusCode: "STATUS_CODE_ERROR",
        Duration: "1999999998",
        "Events.Name": ["ev1", "ev2"],
        "Links.SpanId": ["2222222222222222"],
        ev: ["1700000000000000", "1700000001000000"],
        SpanAttributes: { a: "1", ok: "false", tags: '["p","q"]' },
      },
      {
        TraceId: expected[1].TraceId,
        SpanKind: "SPAN_KIND_INTERNAL",
        StatusCode: "STATUS_CODE_UNSET",
        Duration: "0",
        "Events.Name": [],
        "Links.SpanId": [],
        ev: [],
        SpanAttributes: {},
      },
    ]);
  }
});

class CollectingReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

Deno.test("SDK metrics: every kind the SDK makes loads into its table with the values sent", async () => {
  const reader = new CollectingReader();
  const provider = new MeterProvider({
    resource: RESOURCE,
    readers: [reader],
    views: [{ instrumentName: "exp.hist", aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
  });
  const meter = provider.getMeter("metric.scope", "3.0");
  meter.createCounter("c.double", { unit: "1", description: "a counter" }).add(5.5, { k: "v" });
  meter.createCounter("c.int", { valueType: ValueType.INT }).add(3);
  meter.createUpDownCounter("updown").add(-2);
  const h = meter.createHistogram("hist", { unit: "ms", advice: { explicitBucketBoundaries: [1, 10, 100] } });
  for (const v of [0.5, 5, 50, 500]) h.record(v, { route: "/a" });
  const eh = meter.createHistogram("exp.hist");
  for (const v of [0, 3, 3, 1000]) eh.record(v); // the SDK drops negative histogram values
  meter.createGauge("g").record(7, { on: true });
  const { resourceMetrics } = await reader.collect();
  const { proto, viaJson, sent } = await convertSdk(
    "sdk_metrics",
    ProtobufMetricsSerializer.serializeRequest(resourceMetrics)!,
    JsonMetricsSerializer.serializeRequest(resourceMetrics)!,
  );
  const sentMetrics = sent.resourceMetrics[0].scopeMetrics[0].metrics as {
    name: string;
    [kind: string]: unknown;
  }[];
  const point = (name: string) => {
    const m = sentMetrics.find((x) => x.name === name)!;
    const data = (m.sum ?? m.gauge ?? m.histogram ?? m.exponentialHistogram) as {
      dataPoints: Record<string, string>[];
    };
    return data.dataPoints[0];
  };
  const times = (name: string) => ({ start: point(name).startTimeUnixNano, time: point(name).timeUnixNano });
  const exp = point("exp.hist") as unknown as {
    count: number;
    sum: number;
    min: number;
    max: number;
    scale: number;
    zeroCount: number;
    positive: { offset: number; bucketCounts: number[] };
    negative: { offset: number; bucketCounts: number[] };
  };
  const head =
    "ServiceName, MetricName, MetricDescription, MetricUnit, ScopeName, ScopeVersion, Attributes, " +
    "toString(toUnixTimestamp64Nano(StartTimeUnix)) AS start, toString(toUnixTimestamp64Nano(TimeUnix)) AS time";
  const base = (name: string, description = "", unit = "", attributes: Record<string, string> = {}) => ({
    ServiceName: "checkout/v2",
    MetricName: name,
    MetricDescription: description,
    MetricUnit: unit,
    ScopeName: "metric.scope",
    ScopeVersion: "3.0",
    Attributes: attributes,
    ...times(name),
  });
  const expected: Partial<Record<TableName, { cols: string; rows: unknown[] }>> = {
    otel_metrics_sum: {
      cols: "Value, Flags, AggregationTemporality, IsMonotonic",
      rows: [
        {
          ...base("c.double", "a counter", "1", { k: "v" }),
          Value: 5.5,
          Flags: 0,
          AggregationTemporality: 2,
          IsMonotonic: true,
        },
        { ...base("c.int"), Value: 3, Flags: 0, AggregationTemporality: 2, IsMonotonic: true },
        { ...base("updown"), Value: -2, Flags: 0, AggregationTemporality: 2, IsMonotonic: false },
      ],
    },
    otel_metrics_gauge: {
      cols: "Value, Flags, `Exemplars.Value`",
      rows: [{ ...base("g", "", "", { on: "true" }), Value: 7, Flags: 0, "Exemplars.Value": [] }],
    },
    otel_metrics_histogram: {
      cols: "Count, Sum, BucketCounts, ExplicitBounds, Min, Max, AggregationTemporality",
      rows: [{
        ...base("hist", "", "ms", { route: "/a" }),
        Count: 4,
        Sum: 555.5,
        BucketCounts: [1, 1, 1, 1],
        ExplicitBounds: [1, 10, 100],
        Min: 0.5,
        Max: 500,
        AggregationTemporality: 2,
      }],
    },
    otel_metrics_exp_histogram: {
      cols: "Count, Sum, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts, NegativeOffset, " +
        "NegativeBucketCounts, Min, Max",
      rows: [{
        ...base("exp.hist"),
        Count: 4,
        Sum: 1006,
        Scale: exp.scale,
        ZeroCount: exp.zeroCount,
        PositiveOffset: exp.positive.offset,
        PositiveBucketCounts: exp.positive.bucketCounts,
        NegativeOffset: exp.negative.offset,
        NegativeBucketCounts: exp.negative.bucketCounts,
        Min: 0,
        Max: 1000,
      }],
    },
  };
  // The hand-written expectations agree with the request the SDK serialized.
  assert.equal(exp.zeroCount, 1);
  assert.deepEqual([exp.count, exp.sum, exp.min, exp.max], [4, 1006, 0, 1000]);
  const hp = point("hist") as unknown as { count: number; sum: number; bucketCounts: number[] };
  assert.deepEqual([hp.count, hp.sum, hp.bucketCounts], [4, 555.5, [1, 1, 1, 1]]);
  for (const { dir, report } of [proto, viaJson]) {
    assertDescribesLikeClickHouse(report);
    for (const [name, { cols, rows }] of Object.entries(expected)) {
      const t = tableDef(name as TableName);
      assert.equal(loadIntoClickHouse(dir, t), rows.length, `${name} rows`);
      assert.deepEqual(ch.rows(`SELECT ${head}, ${cols} FROM ${name} ORDER BY MetricName`), rows, name);
      const [d] = await duck.rows(
        `SELECT list(MetricName ORDER BY MetricName) AS names, list(epoch_us(TimeUnix)) AS us ` +
          `FROM read_parquet(${sqlString(glob(dir, t))})`,
      );
      assert.deepEqual(
        d.names,
        (rows as { MetricName: string }[]).map((r) => r.MetricName),
        `${name} in DuckDB`,
      );
      assert.deepEqual(
        d.us,
        (rows as { time: string }[]).map((r) => String(BigInt(r.time) / 1000n)),
        `${name} times in DuckDB`,
      );
    }
    const [sum] = await duck.rows(
      `SELECT Value, IsMonotonic, AggregationTemporality, Attributes FROM read_parquet(${
        sqlString(glob(dir, tableDef("otel_metrics_sum")))
      }) WHERE MetricName = 'c.double'`,
    );
    assert.deepEqual(sum, {
      Value: 5.5,
      IsMonotonic: true,
      AggregationTemporality: 2,
      Attributes: [{ key: "k", value: "v" }],
    });
  }
});

Deno.test("exemplars (which the JS SDK does not make) read back from ClickHouse as sent", async () => {
  const request = {
    resourceMetrics: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "ex" } }] },
      scopeMetrics: [{
        scope: { name: "s", droppedAttributesCount: 2 },
        metrics: [{
          name: "temp",
          gauge: {
            dataPoints: [{
              timeUnixNano: "1700000000000000007",
              asInt: "21",
              flags: 1,
              exemplars: [
                {
                  timeUnixNano: "1699999999999999999",
                  asDouble: 20.5,
                  spanId: "b7ad6b7169203331",
                  traceId: "0af7651916cd43dd8448eb211c80319c",
                  filteredAttributes: [{ key: "user", value: { stringValue: "u1" } }],
                },
                { timeUnixNano: "1700000000000000001", asInt: "22" },
              ],
            }],
          },
        }],
      }],
    }],
  };
  const path = join(TMP, "exemplars.json");
  writeFileSync(path, JSON.stringify(request));
  const { dir, report } = await convert("exemplars", [path]);
  assertDescribesLikeClickHouse(report);
  assert.equal(loadIntoClickHouse(dir, tableDef("otel_metrics_gauge")), 1);
  const rows = ch.rows(
    "SELECT Value, Flags, ScopeDroppedAttrCount, toString(toUnixTimestamp64Nano(TimeUnix)) AS time, " +
      "`Exemplars.FilteredAttributes`, arrayMap(x -> toString(toUnixTimestamp64Nano(x)), `Exemplars.TimeUnix`) AS ex_time, " +
      "`Exemplars.Value`, `Exemplars.SpanId`, `Exemplars.TraceId` FROM otel_metrics_gauge",
  );
  assert.deepEqual(rows, [{
    Value: 21,
    Flags: 1,
    ScopeDroppedAttrCount: 2,
    time: "1700000000000000007",
    "Exemplars.FilteredAttributes": [{ user: "u1" }, {}],
    ex_time: ["1699999999999999999", "1700000000000000001"],
    "Exemplars.Value": [20.5, 22],
    "Exemplars.SpanId": ["b7ad6b7169203331", ""],
    "Exemplars.TraceId": ["0af7651916cd43dd8448eb211c80319c", ""],
  }]);
});
