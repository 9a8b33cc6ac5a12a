/**
 * End-to-end tests of the OTLP/HTTP server through real sockets:
 *
 * - the real OpenTelemetry JS SDK exporters (protobuf and JSON, with and without gzip) send logs, traces and
 *   metrics from several services; after the server stops, DuckDB and chDB read back exactly what was
 *   sent, in the object layout, batched into one file per partition;
 * - the same against a real S3 server (s3rver) on loopback;
 * - every error path of the receiver contract (status, content type, `google.rpc.Status` body in the
 *   request's encoding), overload (429, 503), slow bodies (408), and the server still serving afterwards;
 * - SIGTERM on the server as a subprocess: data flushed, exit 0; a second one after the repeat window forces the exit.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import zlib from "node:zlib";
import { ExportResultCode } from "@opentelemetry/core";
import lz4js from "lz4js";
import protobuf from "protobufjs";
import { compress as snappyCompress } from "snappyjs";
import { encodeProtobuf, generateTraces } from "../bench/data.ts";
import { createOpendalStore } from "../src/storage/opendal_store.ts";
import { type ClickHouse, openClickHouse, sqlString } from "./support/clickhouse.ts";
import { type DuckDb, openDuckDb } from "./support/duckdb.ts";
import { type ExporterSetup, type MetricTable, sendWithSdk, type Sent } from "./support/otel_sdk.ts";
import { startS3Server } from "./support/s3_server.ts";
import { listParquet, startTestServer } from "./support/server.ts";
import { REPEAT_WINDOW_MS } from "../src/platforms/server/stop_signals.ts";

const DATA = new URL("../../shared/testdata/otlp2parquet-rust/", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

// One chDB session per process (chDB allows no more), one DuckDB, closed when the test process ends.
let chSession: ClickHouse | undefined;
let duckDb: DuckDb | undefined;
const ch = (): ClickHouse => chSession ??= openClickHouse();
const duck = async (): Promise<DuckDb> => duckDb ??= await openDuckDb();
globalThis.addEventListener("unload", () => {
  chSession?.close();
  duckDb?.close();
});

// ---------------------------------------------------------------------------------------------------------
// Reading the files back
// ---------------------------------------------------------------------------------------------------------

type Row = Record<string, unknown>;

const mapOf = (value: unknown): Record<string, string> =>
  Object.fromEntries((value as { key: string; value: string }[]).map((e) => [e.key, e.value]));

const sortedBy = <T>(rows: T[], key: (r: T) => string): T[] =>
  [...rows].sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

const TABLE_PATHS: Record<"logs" | "traces" | MetricTable, string> = {
  logs: "logs",
  traces: "traces",
  gauge: "metrics/gauge",
  sum: "metrics/sum",
  histogram: "metrics/histogram",
  exponential_histogram: "metrics/exponential_histogram",
};

/** The service folder names the layout must use: escaped so no name can climb out of its folder. */
const SERVICE_DIRS: Record<string, string> = {
  checkout: "checkout",
  frontend: "frontend",
  "cart.v2": "cart.v2",
  "pay ment/eu": "pay%20ment%2Feu",
};

const pad = (n: number) => String(n).padStart(2, "0");

function hourPath(ns: string): string {
  const d = new Date(Number(BigInt(ns) / 1_000_000n));
  return `year=${d.getUTCFullYear()}/month=${pad(d.getUTCMonth() + 1)}/day=${pad(d.getUTCDate())}/hour=${
    pad(d.getUTCHours())
  }`;
}

const LAYOUT =
  /^(logs|traces|metrics\/(?:gauge|sum|histogram|exponential_histogram|summary))\/([^/]+)\/(year=\d{4}\/month=\d\d\/day=\d\d\/hour=\d\d)\/\d{8}T\d{6}\.\d{9}Z-e2e-[0-9a-f]{16}\.parquet$/;

/** The partitions (`table/service/year=…/hour=…`) the sent records belong in. */
function expectedPartitions(sent: Sent): Set<string> {
  const out = new Set<string>();
  const add = (table: keyof typeof TABLE_PATHS, service: string, ns: string) =>
    out.add(`${TABLE_PATHS[table]}/${SERVICE_DIRS[service] ?? service}/${hourPath(ns)}`);
  for (const l of sent.logs) add("logs", l.service, l.timeNs);
  for (const s of sent.spans) add("traces", s.service, s.startNs);
  for (const p of sent.points) add(p.table, p.service, p.timeNs);
  return out;
}

function merge(all: Sent[]): Sent {
  return {
    logs: all.flatMap((s) => s.logs),
    spans: all.flatMap((s) => s.spans),
    points: all.flatMap((s) => s.points),
    calls: all.flatMap((s) => s.calls),
  };
}

const nsToUs = (ns: string): string => (BigInt(ns) / 1000n).toString();

/**
 * Checks the files under `root` hold exactly `sent`: the layout (one file per partition, each file's rows
 * in its partition), then every record's values in DuckDB and, to the nanosecond, in chDB.
 */
async function assertStoredExactly(root: string, sent: Sent): Promise<void> {
  const db = await duck();
  const files = await listParquet(root);
  const partitions = new Map<string, string[]>();
  for (const f of files) {
    const m = LAYOUT.exec(f);
    assert.ok(m, `object key in the layout: ${f}`);
    const dir = dirname(f);
    partitions.set(dir, [...partitions.get(dir) ?? [], f]);
  }
  const expected = expectedPartitions(sent);
  assert.deepEqual([...partitions.keys()].sort(), [...expected].sort(), "partitions written");
  for (const [dir, inDir] of partitions) assert.equal(inDir.length, 1, `one file (one batch) in ${dir}`);

  // Each file's rows belong to its folder: its service and its hour.
  for (const f of files) {
    const [, table, service, hour] = LAYOUT.exec(f)!;
    const time = table === "logs" || table === "traces" ? "Timestamp" : "TimeUnix";
    const [r] = await db.rows(
      `SELECT count(DISTINCT ServiceName) AS services, any_value(ServiceName) AS service, ` +
        `min(epoch_us(${time}))::VARCHAR AS lo, max(epoch_us(${time}))::VARCHAR AS hi ` +
        `FROM read_parquet(${sqlString(join(root, f))})`,
    );
    assert.equal(r.services, "1", `${f}: one service`);
    assert.equal(SERVICE_DIRS[r.service as string] ?? r.service, service, `${f}: service folder`);
    assert.equal(hourPath(`${r.lo}000`), hour, `${f}: first row's hour`);
    assert.equal(hourPath(`${r.hi}000`), hour, `${f}: last row's hour`);
  }

  const glob = (table: keyof typeof TABLE_PATHS) =>
    sqlString(join(root, TABLE_PATHS[table], "**", "*.parquet"));
  const chGlob = (table: keyof typeof TABLE_PATHS) => `file(${glob(table)}, Parquet)`;

  // ---- logs ----
  const logs = await db.rows(
    `SELECT ServiceName, epoch_us(Timestamp)::VARCHAR AS us, SeverityNumber, SeverityText, Body, TraceId, SpanId, ` +
      `EventName, ScopeName, ScopeVersion, LogAttributes, ResourceAttributes FROM read_parquet(${
        glob("logs")
      })`,
  );
  assert.equal(logs.length, sent.logs.length, "log rows (DuckDB)");
  const gotLogs = sortedBy(
    logs.map((r) => ({
      ...r,
      LogAttributes: mapOf(r.LogAttributes),
      ResourceAttributes: mapOf(r.ResourceAttributes),
    })),
    (r) => r.LogAttributes.seq,
  );
  const wantLogs = sortedBy(sent.logs, (l) => l.attributes.seq);
  for (let i = 0; i < wantLogs.length; i++) {
    const want = wantLogs[i];
    const got = gotLogs[i] as Row & {
      LogAttributes: Record<string, string>;
      ResourceAttributes: Record<string, string>;
    };
    const what = `log ${want.attributes.seq}`;
    assert.deepEqual(got.LogAttributes, want.attributes, `${what}: attributes`);
    const body = typeof got.Body === "string" && got.Body.startsWith("{") ? JSON.parse(got.Body) : got.Body;
    const wantBody = want.body.startsWith("{") ? JSON.parse(want.body) : want.body;
    assert.deepEqual(body, wantBody, `${what}: body`);
    assert.deepEqual({
      service: got.ServiceName,
      us: got.us,
      severityNumber: got.SeverityNumber,
      severityText: got.SeverityText,
      traceId: got.TraceId,
      spanId: got.SpanId,
      eventName: got.EventName,
      scope: [got.ScopeName, got.ScopeVersion],
      serviceVersion: got.ResourceAttributes["service.version"],
    }, {
      service: want.service,
      us: nsToUs(want.timeNs),
      severityNumber: want.severityNumber,
      severityText: want.severityText,
      traceId: want.traceId,
      spanId: want.spanId,
      eventName: want.eventName,
      scope: [want.scopeName, want.scopeVersion],
      serviceVersion: "1.2.3",
    }, what);
  }
  const chLogs = ch().rows<{ seq: string; ts: string; service: string }>(
    `SELECT LogAttributes['seq'] AS seq, toString(toUnixTimestamp64Nano(Timestamp)) AS ts, ServiceName AS service ` +
      `FROM ${chGlob("logs")}`,
  );
  assert.deepEqual(
    sortedBy(chLogs, (r) => r.seq),
    wantLogs.map((l) => ({ seq: l.attributes.seq, ts: l.timeNs, service: l.service })),
    "logs in chDB: every record once, timestamps to the nanosecond",
  );

  // ---- traces ----
  const spans = await db.rows(
    `SELECT SpanId, ServiceName, TraceId, ParentSpanId, SpanName, SpanKind, Duration::VARCHAR AS duration, ` +
      `StatusCode, StatusMessage, SpanAttributes, ScopeName, "Events.Name" AS en, "Events.Attributes" AS ea, ` +
      `"Links.TraceId" AS lt, "Links.SpanId" AS ls, "Links.Attributes" AS la FROM read_parquet(${
        glob("traces")
      })`,
  );
  assert.equal(spans.length, sent.spans.length, "span rows (DuckDB)");
  const wantSpans = sortedBy(sent.spans, (s) => s.spanId);
  assert.deepEqual(
    sortedBy(spans, (r) => r.SpanId as string).map((r) => ({
      spanId: r.SpanId,
      service: r.ServiceName,
      traceId: r.TraceId,
      parentSpanId: r.ParentSpanId,
      name: r.SpanName,
      kind: r.SpanKind,
      durationNs: r.duration,
      statusCode: r.StatusCode,
      statusMessage: r.StatusMessage,
      attributes: mapOf(r.SpanAttributes),
      scopeName: r.ScopeName,
      events: (r.en as string[]).map((name, i) => ({ name, attributes: mapOf((r.ea as unknown[])[i]) })),
      links: (r.lt as string[]).map((traceId, i) => ({
        traceId,
        spanId: (r.ls as string[])[i],
        attributes: mapOf((r.la as unknown[])[i]),
      })),
    })),
    wantSpans.map((s) => ({
      spanId: s.spanId,
      service: s.service,
      traceId: s.traceId,
      parentSpanId: s.parentSpanId,
      name: s.name,
      kind: s.kind,
      durationNs: s.durationNs,
      statusCode: s.statusCode,
      statusMessage: s.statusMessage,
      attributes: s.attributes,
      scopeName: s.scopeName,
      events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
      links: s.links,
    })),
    "spans in DuckDB",
  );
  const chSpans = ch().rows<{ id: string; ts: string; ev: string[] }>(
    "SELECT SpanId AS id, toString(toUnixTimestamp64Nano(Timestamp)) AS ts, " +
      `arrayMap(x -> toString(toUnixTimestamp64Nano(x)), \`Events.Timestamp\`) AS ev FROM ${
        chGlob("traces")
      }`,
  );
  assert.deepEqual(
    sortedBy(chSpans, (r) => r.id),
    wantSpans.map((s) => ({ id: s.spanId, ts: s.startNs, ev: s.events.map((e) => e.timeNs) })),
    "spans in chDB: every span once, start and event times to the nanosecond",
  );

  // ---- metrics ----
  const head =
    "ServiceName AS service, MetricName AS name, MetricDescription AS description, MetricUnit AS unit, " +
    "toString(toUnixTimestamp64Nano(StartTimeUnix)) AS startNs, toString(toUnixTimestamp64Nano(TimeUnix)) AS timeNs, " +
    "Attributes AS attributes";
  const columns: Record<MetricTable, string> = {
    gauge: "Value AS value",
    sum: "Value AS value, IsMonotonic AS isMonotonic, AggregationTemporality AS temporality",
    histogram: "AggregationTemporality AS temporality, toFloat64(Count) AS count, Sum AS sum, Min AS min, " +
      "Max AS max, arrayMap(x -> toFloat64(x), BucketCounts) AS bucketCounts, ExplicitBounds AS bounds",
    exponential_histogram: "AggregationTemporality AS temporality, toFloat64(Count) AS count, Sum AS sum, " +
      "Min AS min, Max AS max, Scale AS scale, toFloat64(ZeroCount) AS zeroCount, PositiveOffset AS positiveOffset, " +
      "arrayMap(x -> toFloat64(x), PositiveBucketCounts) AS positiveCounts, NegativeOffset AS negativeOffset, " +
      "arrayMap(x -> toFloat64(x), NegativeBucketCounts) AS negativeCounts",
  };
  const pointKey = (p: Row) => `${p.service}|${p.name}|${p.timeNs}|${JSON.stringify(p.attributes)}`;
  for (const table of Object.keys(columns) as MetricTable[]) {
    const want = sent.points.filter((p) => p.table === table).map(({ table: _, ...p }) => p);
    assert.ok(want.length > 0, `the SDK sent ${table} points`);
    const got = ch().rows(`SELECT ${head}, ${columns[table]} FROM ${chGlob(table)}`);
    assert.deepEqual(sortedBy(got, pointKey), sortedBy(want as Row[], pointKey), `${table} points in chDB`);
    const [d] = await db.rows(
      `SELECT count(*)::INTEGER AS n, count(DISTINCT (ServiceName, MetricName, TimeUnix, Attributes))::INTEGER AS distinct_points ` +
        `FROM read_parquet(${glob(table)})`,
    );
    assert.deepEqual(
      d,
      { n: want.length, distinct_points: want.length },
      `${table} points in DuckDB, none twice`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// 1. The SDK exporters against the server with the fs store
// ---------------------------------------------------------------------------------------------------------

const SETUPS: [string, ExporterSetup][] = [
  ["checkout", { encoding: "protobuf", gzip: false }],
  ["frontend", { encoding: "protobuf", gzip: true }],
  ["cart.v2", { encoding: "json", gzip: false }],
  ["pay ment/eu", { encoding: "json", gzip: true }],
];

function assertAllExported(sent: Sent): void {
  const failed = sent.calls.filter((c) => c.code !== ExportResultCode.SUCCESS);
  assert.deepEqual(failed, [], "every export call succeeded");
  for (const signal of ["logs", "traces", "metrics"] as const) {
    assert.ok(sent.calls.some((c) => c.signal === signal), `${signal} were exported`);
  }
}

Deno.test("SDK exporters (protobuf/JSON, gzip or not) → server → fs: DuckDB and chDB read back exactly what was sent", async () => {
  const server = await startTestServer();
  try {
    const all = await Promise.all(
      SETUPS.map(([service, setup]) => sendWithSdk(server.url, { service, setup, rounds: 4 })),
    );
    for (const s of all) assertAllExported(s);
    const sent = merge(all);
    // Nothing is written before the batches are due (max age 1 h).
    assert.deepEqual(await listParquet(server.dir), [], "no file before the batches are flushed");
    await server.stop();
    assert.ok(
      server.logs.every((l) => !l.includes(" ERROR ")),
      server.logs.filter((l) => l.includes("ERROR")).join("\n"),
    );
    const files = await listParquet(server.dir);
    // Batching: 4 services × 4 rounds × 3 signals (+ the metrics flushed at shutdown) = 52 requests; one
    // file per partition (asserted below), here 4 logs + 4 traces + 4 × 4 metrics unless an hour turned.
    assert.equal(sent.calls.length, 52, "requests made");
    assert.ok(
      files.length * 2 < sent.calls.length,
      `${files.length} files for ${sent.calls.length} requests`,
    );
    await assertStoredExactly(server.dir, sent);
    const stats = server.server.ingest.stats();
    assert.equal(stats.requests, sent.calls.length, "every request reached the ingest once");
    assert.equal(stats.objectRows, sent.logs.length + sent.spans.length + sent.points.length);
  } finally {
    await server.dispose();
  }
});

// ---------------------------------------------------------------------------------------------------------
// 2. The same against a real S3-compatible server on loopback
// ---------------------------------------------------------------------------------------------------------

/** Sets process environment variables for the duration of `fn` (OpenDAL reads AWS credentials from there). */
async function withProcessEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

type S3Server = Awaited<ReturnType<typeof startS3Server>>;

/** The AWS credential variables OpenDAL reads from the process environment for s3rver. */
const s3Credentials = (s3: S3Server): Record<string, string> => ({
  AWS_ACCESS_KEY_ID: s3.accessKeyId,
  AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  AWS_EC2_METADATA_DISABLED: "true",
});

/** Server settings for the s3 backend on s3rver. */
const s3StorageEnv = (s3: S3Server): Record<string, string> => ({
  OTLP2PARQUET_STORAGE_BACKEND: "s3",
  OTLP2PARQUET_S3_BUCKET: s3.bucket,
  OTLP2PARQUET_S3_ENDPOINT: s3.endpoint,
  OTLP2PARQUET_S3_REGION: "us-east-1",
});

Deno.test("SDK exporters → server → S3 (s3rver on loopback): the objects hold exactly what was sent", async () => {
  const s3 = await startS3Server({ bucket: "otel-e2e" });
  const local = mkdtempSync(join(tmpdir(), "otlp2parquet-e2e-s3-"));
  try {
    await withProcessEnv(s3Credentials(s3), async () => {
      const server = await startTestServer({
        env: { ...s3StorageEnv(s3), OTLP2PARQUET_S3_PREFIX: "otel" },
      });
      try {
        assert.equal(await (await fetch(`${server.url}/ready`)).text(), "ready\n");
        const all = await Promise.all(
          [SETUPS[1], SETUPS[2]].map(([service, setup]) =>
            sendWithSdk(server.url, { service, setup, rounds: 2 })
          ),
        );
        for (const s of all) assertAllExported(s);
        await server.stop();
        assert.ok(!server.logs.some((l) => / (WARN|ERROR) /.test(l)), server.logs.join("\n"));
        // Read the bucket back with a client of its own, into a local folder for DuckDB and chDB.
        const store = createOpendalStore({
          backend: "s3",
          bucket: s3.bucket,
          endpoint: s3.endpoint,
          region: "us-east-1",
          accessKeyId: s3.accessKeyId,
          secretAccessKey: s3.secretAccessKey,
        });
        const keys = await store.list("");
        assert.ok(keys.length > 0 && keys.every((k) => k.startsWith("otel/")), `keys: ${keys.join(", ")}`);
        for (const key of keys) {
          const path = join(local, key.slice("otel/".length));
          mkdirSync(dirname(path), { recursive: true });
          writeFileSync(path, (await store.get(key))!);
        }
        const sent = merge(all);
        await assertStoredExactly(local, sent);
        // ClickHouse reads the bucket itself too.
        const [{ n }] = ch().rows<{ n: string }>(
          `SELECT count() AS n FROM s3(${sqlString(`${s3.endpoint}/${s3.bucket}/otel/logs/**/*.parquet`)}, ` +
            `${sqlString(s3.accessKeyId)}, ${sqlString(s3.secretAccessKey)}, 'Parquet')`,
        );
        assert.equal(Number(n), sent.logs.length, "log rows read by chDB straight from S3");
      } finally {
        await server.dispose();
      }
    });
  } finally {
    await s3.stop();
    rmSync(local, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------------------
// 3. Error paths of the receiver contract
// ---------------------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/** A request body; byte arrays of any buffer kind. */
type Body = Uint8Array | string | Blob | ReadableStream<Uint8Array> | null | undefined;

async function send(
  url: string,
  init: { method?: string; body?: Body; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const response = await fetch(url, {
    method: init.method ?? "POST",
    body: init.body as BodyInit | null | undefined,
    headers: init.headers,
    ...(init.body instanceof ReadableStream ? { duplex: "half" } : {}),
  } as RequestInit);
  return {
    status: response.status,
    headers: response.headers,
    body: new Uint8Array(await response.arrayBuffer()),
  };
}

const PROTOBUF = { "content-type": "application/x-protobuf" };
const JSON_CT = { "content-type": "application/json" };

/** gRPC codes a `google.rpc.Status` carries per HTTP status. */
const GRPC_CODES: Record<number, number> = {
  400: 3,
  404: 5,
  405: 12,
  408: 4,
  413: 3,
  415: 3,
  429: 8,
  503: 14,
};

/** Decodes `google.rpc.Status { int32 code = 1; string message = 2; }` by hand. */
function decodeStatusProto(bytes: Uint8Array): { code: number; message: string } {
  const r = protobuf.Reader.create(bytes);
  let code = 0, message = "";
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === 0) code = r.int32();
    else if (tag >>> 3 === 2 && (tag & 7) === 2) message = r.string();
    else r.skipType(tag & 7);
  }
  return { code, message };
}

/** Asserts a failure answer: status, content type, and a `google.rpc.Status` body in `encoding`. Returns the message. */
function assertFailure(a: Answer, status: number, encoding: "protobuf" | "json", what: string): string {
  assert.equal(a.status, status, `${what}: status (body ${new TextDecoder().decode(a.body)})`);
  const contentType = a.headers.get("content-type");
  let decoded: { code: number; message: string };
  if (encoding === "protobuf") {
    assert.equal(contentType, "application/x-protobuf", `${what}: content-type`);
    decoded = decodeStatusProto(a.body);
  } else {
    assert.equal(contentType, "application/json", `${what}: content-type`);
    decoded = JSON.parse(new TextDecoder().decode(a.body));
  }
  assert.equal(decoded.code, GRPC_CODES[status], `${what}: google.rpc.Status code`);
  assert.ok(typeof decoded.message === "string" && decoded.message.length > 0, `${what}: message`);
  if (status === 429 || status === 503) {
    assert.match(a.headers.get("retry-after") ?? "", /^[1-9]\d*$/, `${what}: Retry-After in seconds`);
  }
  return decoded.message;
}

/** Asserts a 200 with an `Export*ServiceResponse` in `encoding`; returns its partial_success, if any. */
function assertSuccess(
  a: Answer,
  encoding: "protobuf" | "json",
  what: string,
): { rejected: number; message: string } | undefined {
  assert.equal(a.status, 200, `${what}: status (body ${new TextDecoder().decode(a.body)})`);
  if (encoding === "json") {
    assert.equal(a.headers.get("content-type"), "application/json", `${what}: content-type`);
    const body = JSON.parse(new TextDecoder().decode(a.body));
    const p = body.partialSuccess;
    if (!p) return undefined;
    const rejected = p.rejectedLogRecords ?? p.rejectedSpans ?? p.rejectedDataPoints;
    return { rejected: Number(rejected), message: p.errorMessage };
  }
  assert.equal(a.headers.get("content-type"), "application/x-protobuf", `${what}: content-type`);
  // Export*ServiceResponse { Export*PartialSuccess partial_success = 1 { int64 rejected_* = 1; string error_message = 2; } }
  const r = protobuf.Reader.create(a.body);
  let partial: { rejected: number; message: string } | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | 2)) {
      const inner = protobuf.Reader.create(r.bytes());
      partial = { rejected: 0, message: "" };
      while (inner.pos < inner.len) {
        const t = inner.uint32();
        if (t === (1 << 3)) partial.rejected = Number(inner.int64());
        else if (t === ((2 << 3) | 2)) partial.message = inner.string();
        else inner.skipType(t & 7);
      }
    } else r.skipType(tag & 7);
  }
  return partial;
}

const readData = (name: string): Uint8Array => new Uint8Array(readFileSync(join(DATA, name)));

const METRIC_KINDS: Record<string, string> = {
  gauge: "gauge",
  sum: "sum",
  histogram: "histogram",
  exponentialHistogram: "exponential_histogram",
  summary: "summary",
};

/** Records per table folder in an OTLP/JSON (or JSON Lines) test file, counted from the JSON itself. */
function recordsIn(name: string): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (table: string, n: number) => out[table] = (out[table] ?? 0) + n;
  const text = new TextDecoder().decode(readData(name));
  const requests = name.endsWith(".jsonl")
    ? text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
    : [JSON.parse(text)];
  // deno-lint-ignore no-explicit-any
  for (const r of requests as any[]) {
    for (const rl of r.resourceLogs ?? []) {
      for (const sl of rl.scopeLogs ?? []) add("logs", sl.logRecords?.length ?? 0);
    }
    for (const rs of r.resourceSpans ?? []) {
      for (const ss of rs.scopeSpans ?? []) add("traces", ss.spans?.length ?? 0);
    }
    for (const rm of r.resourceMetrics ?? []) {
      for (const sm of rm.scopeMetrics ?? []) {
        for (const m of sm.metrics ?? []) {
          for (const [kind, table] of Object.entries(METRIC_KINDS)) {
            if (m[kind]) add(`metrics/${table}`, m[kind].dataPoints?.length ?? 0);
          }
        }
      }
    }
  }
  return out;
}
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * A metrics request (protobuf, hand-encoded) of one gauge whose data points carry `values`; an undefined
 * value is a data point with neither as_double nor as_int, which the receiver must refuse alone.
 */
function gaugeRequest(service: string, values: (number | undefined)[]): Uint8Array {
  const ld = (w: protobuf.Writer, field: number) => w.uint32((field << 3) | 2).fork();
  const w = protobuf.Writer.create();
  ld(w, 1); // ExportMetricsServiceRequest.resource_metrics
  ld(w, 1); // ResourceMetrics.resource
  ld(w, 1).uint32((1 << 3) | 2).string("service.name"); // Resource.attributes: KeyValue
  ld(w, 2).uint32((1 << 3) | 2).string(service).ldelim().ldelim(); // KeyValue.value: AnyValue.string_value
  w.ldelim();
  ld(w, 2); // ResourceMetrics.scope_metrics
  ld(w, 2).uint32((1 << 3) | 2).string("queue.depth"); // ScopeMetrics.metrics: Metric.name
  ld(w, 5); // Metric.gauge
  values.forEach((value, i) => {
    ld(w, 1); // Gauge.data_points: NumberDataPoint
    const ns = BigInt(Date.UTC(2025, 2, 14, 15, 30)) * 1_000_000n + BigInt(i);
    w.uint32((3 << 3) | 1).fixed32(Number(ns & 0xffffffffn)).fixed32(Number(ns >> 32n)); // time_unix_nano
    if (value !== undefined) w.uint32((4 << 3) | 1).double(value); // as_double
    ld(w, 7).uint32((1 << 3) | 2).string("point"); // attributes
    ld(w, 2).uint32((3 << 3) | 0).int64(i).ldelim().ldelim(); // AnyValue.int_value
    w.ldelim();
  });
  w.ldelim().ldelim().ldelim().ldelim();
  return w.finish();
}

function gaugeRequestJson(service: string, values: (number | undefined)[]): Uint8Array {
  return utf8(JSON.stringify({
    resourceMetrics: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
      scopeMetrics: [{
        metrics: [{
          name: "queue.depth",
          gauge: {
            dataPoints: values.map((v, i) => ({
              timeUnixNano: String(BigInt(Date.UTC(2025, 2, 14, 15, 30)) * 1_000_000n + BigInt(i)),
              ...(v === undefined ? {} : { asDouble: v }),
              attributes: [{ key: "point", value: { intValue: String(i) } }],
            })),
          },
        }],
      }],
    }],
  }));
}

const zstdCompressSync =
  (zlib as unknown as { zstdCompressSync(b: Uint8Array): Uint8Array }).zstdCompressSync;

/** logs.pb under every content coding the receiver speaks. */
const CODINGS: [string, (b: Uint8Array) => Uint8Array][] = [
  ["gzip", (b) => zlib.gzipSync(b)],
  ["x-gzip", (b) => zlib.gzipSync(b)],
  ["deflate", (b) => zlib.deflateSync(b)],
  ["deflate", (b) => zlib.deflateRawSync(b)],
  ["zstd", (b) => zstdCompressSync(b)],
  ["snappy", (b) => new Uint8Array(snappyCompress(b) as Uint8Array)],
  ["lz4", (b) => new Uint8Array(lz4js.compress(b))],
  ["identity", (b) => b],
  ["GZip", (b) => zlib.gzipSync(b)],
];

/** Rows per table (counted from the files) under `root`. */
async function rowCounts(root: string): Promise<Record<string, number>> {
  const db = await duck();
  const out: Record<string, number> = {};
  const files = await listParquet(root);
  for (const path of new Set(files.map((f) => LAYOUT.exec(f)![1]))) {
    const [r] = await db.rows(
      `SELECT count(*)::INTEGER AS n FROM read_parquet(${sqlString(join(root, path, "**", "*.parquet"))})`,
    );
    out[path] = r.n as number;
  }
  return out;
}

Deno.test("every error path answers its status with a google.rpc.Status in the request's encoding; the rest is stored", async (t) => {
  const server = await startTestServer({ env: { OTLP2PARQUET_MAX_PAYLOAD_BYTES: "131072" } });
  const u = (path: string) => `${server.url}${path}`;
  const logsPb = readData("logs.pb");
  const answers: Answer[] = [];
  const post = async (path: string, body: Body, headers: Record<string, string>) => {
    const a = await send(u(path), { body, headers });
    answers.push(a);
    return a;
  };
  // What a 200 promised to store, per table. `request` names the request's identity (signal, format,
  // decompressed body): the same request sent again (in another compression, say) is a retry, stored once.
  const stored: Record<string, number> = {};
  const sent = new Set<string>();
  const expect = (table: string, n: number, request: string) => {
    if (sent.has(`${request}\u0000${table}`)) return;
    sent.add(`${request}\u0000${table}`);
    stored[table] = (stored[table] ?? 0) + n;
  };
  const expectFile = (name: string) => {
    for (const [table, n] of Object.entries(recordsIn(name))) expect(table, n, name);
  };
  try {
    await t.step("404 for an unknown path, in the request's encoding", async () => {
      for (const path of ["/", "/v1", "/v1/log", "/v1/logs/x", "/v2/traces", "/metrics"]) {
        assertFailure(await post(path, logsPb, PROTOBUF), 404, "protobuf", `POST ${path} (protobuf)`);
        assertFailure(await post(path, "{}", JSON_CT), 404, "json", `POST ${path} (JSON)`);
      }
      assertFailure(await send(u("/nope"), { method: "GET" }), 404, "json", "GET /nope");
    });

    await t.step("405 with Allow: POST for other methods on the signal paths", async () => {
      for (const path of ["/v1/logs", "/v1/traces", "/v1/metrics"]) {
        for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
          const body = method === "GET" ? undefined : logsPb;
          const a = await send(u(path), { method, body, headers: PROTOBUF });
          assertFailure(a, 405, "protobuf", `${method} ${path}`);
          assert.equal(a.headers.get("allow"), "POST", `${method} ${path}: Allow`);
          const j = await send(u(path), {
            method,
            body: method === "GET" ? undefined : "{}",
            headers: JSON_CT,
          });
          assertFailure(j, 405, "json", `${method} ${path} (JSON)`);
          assert.equal(j.headers.get("allow"), "POST");
        }
      }
    });

    await t.step("415 for content types other than protobuf, JSON and JSON Lines", async () => {
      for (
        const ct of ["text/plain", "application/xml", "application/grpc", "multipart/form-data; boundary=x"]
      ) {
        assertFailure(await post("/v1/logs", logsPb, { "content-type": ct }), 415, "json", ct);
      }
      assertFailure(await post("/v1/traces", logsPb, {}), 415, "json", "no content type");
    });

    await t.step("400 for an undecodable protobuf body", async () => {
      for (
        const [what, body] of [
          ["truncated length", new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])],
          ["reserved wire type", new Uint8Array([0x0f, 0x01, 0x02])],
          ["cut-off request", logsPb.subarray(0, logsPb.length - 7)],
          ["JSON sent as protobuf", utf8('{"resourceLogs":[]}')],
        ] as const
      ) {
        for (const path of ["/v1/logs", "/v1/traces", "/v1/metrics"]) {
          const message = assertFailure(await post(path, body, PROTOBUF), 400, "protobuf", `${path} ${what}`);
          assert.match(message, /cannot decode (logs|traces|metrics) request/, `${path} ${what}: ${message}`);
        }
      }
    });

    await t.step("400 for invalid JSON", async () => {
      for (const body of ["{", "not json", '{"resourceLogs": [', "[1, 2", "\u00ff"]) {
        const message = assertFailure(
          await post("/v1/logs", body, JSON_CT),
          400,
          "json",
          JSON.stringify(body),
        );
        assert.match(message, /cannot decode logs request/);
      }
      const lines = assertFailure(
        await post("/v1/logs", '{"resourceLogs":[]}\n{oops}\n', { "content-type": "application/x-ndjson" }),
        400,
        "json",
        "JSON Lines with a bad line",
      );
      assert.match(lines, /line 2/);
    });

    await t.step("400 for each file of the Rust project's invalid/ inputs, naming the field", async () => {
      const cases: [string, string, RegExp][] = [
        ["log_invalid_severity.json", "/v1/logs", /severityNumber/],
        ["malformed.json", "/v1/logs", /JSON/],
        ["metrics_invalid_temporality.json", "/v1/metrics", /aggregationTemporality/],
        ["trace_invalid_base64.json", "/v1/traces", /traceId/],
        ["trace_invalid_kind.json", "/v1/traces", /\bkind\b/],
        ["trace_mixed_encoding.json", "/v1/traces", /traceId/],
      ];
      for (const [file, path, field] of cases) {
        const message = assertFailure(
          await post(path, readData(`invalid/${file}`), JSON_CT),
          400,
          "json",
          file,
        );
        assert.match(message, field, `${file}: ${message}`);
        assert.match(message, /resource(Logs|Spans|Metrics)\[0\]|JSON/, `${file}: where: ${message}`);
      }
    });

    await t.step("400 for an unknown or broken Content-Encoding", async () => {
      for (const encoding of ["br", "compress", "gzip, br", "gzip, gzip", "x-unknown"]) {
        const message = assertFailure(
          await post("/v1/logs", zlib.gzipSync(logsPb), { ...PROTOBUF, "content-encoding": encoding }),
          400,
          "protobuf",
          `Content-Encoding ${encoding}`,
        );
        assert.match(message, /Content-Encoding/i);
      }
      for (const encoding of ["gzip", "deflate", "zstd", "snappy", "lz4"]) {
        assertFailure(
          await post("/v1/logs", logsPb, { ...PROTOBUF, "content-encoding": encoding }),
          400,
          "protobuf",
          `plain bytes labelled ${encoding}`,
        );
      }
    });

    await t.step(
      "413 over the limit: a gzip bomb, a plain oversize body, an oversize chunked body",
      async () => {
        const bomb = zlib.gzipSync(new Uint8Array(64 * 1024 * 1024));
        assert.ok(bomb.length < 131072, `the bomb itself is small (${bomb.length} bytes)`);
        assertFailure(
          await post("/v1/logs", bomb, { ...PROTOBUF, "content-encoding": "gzip" }),
          413,
          "protobuf",
          "gzip bomb",
        );
        const zbomb = zstdCompressSync(new Uint8Array(64 * 1024 * 1024));
        assertFailure(
          await post("/v1/logs", zbomb, { ...PROTOBUF, "content-encoding": "zstd" }),
          413,
          "protobuf",
          "zstd bomb",
        );
        const big = new Uint8Array(131073);
        assertFailure(await post("/v1/traces", big, PROTOBUF), 413, "protobuf", "plain oversize body");
        assertFailure(await post("/v1/traces", big, JSON_CT), 413, "json", "plain oversize JSON body");
        const chunks = [new Uint8Array(65536), new Uint8Array(65536), new Uint8Array(65536)];
        const stream = new ReadableStream<Uint8Array>({
          pull(c) {
            const next = chunks.shift();
            if (next) c.enqueue(next);
            else c.close();
          },
        });
        assertFailure(await post("/v1/metrics", stream, PROTOBUF), 413, "protobuf", "chunked oversize body");
      },
    );

    await t.step(
      "partial_success for metric data points without a value; the other points are stored",
      async () => {
        const pb = assertSuccess(
          await post("/v1/metrics", gaugeRequest("partial", [1.5, undefined, 7, undefined]), PROTOBUF),
          "protobuf",
          "protobuf",
        );
        assert.equal(pb?.rejected, 2, "rejected_data_points (protobuf)");
        assert.ok(pb!.message.length > 0, "error_message (protobuf)");
        expect("metrics/gauge", 2, "gauge partial");
        const js = assertSuccess(
          await post("/v1/metrics", gaugeRequestJson("partial-json", [undefined, 2.5, 3.5]), JSON_CT),
          "json",
          "JSON",
        );
        assert.equal(js?.rejected, 1, "rejectedDataPoints (JSON)");
        assert.ok(js!.message.length > 0, "errorMessage (JSON)");
        expect("metrics/gauge", 2, "gauge partial-json");
      },
    );

    await t.step(
      "partial_success for records with a time at or after 2^63 ns (past DateTime64(9)); the others are stored",
      async () => {
        const at = (i: number) => String(BigInt(Date.UTC(2025, 2, 14, 15, 40)) * 1_000_000n + BigInt(i));
        const logs = utf8(JSON.stringify({
          resourceLogs: [{
            resource: { attributes: [{ key: "service.name", value: { stringValue: "late-times" } }] },
            scopeLogs: [{
              logRecords: [at(1), "18446744073709551615", at(2), "9223372036854775808"].map((t) => ({
                timeUnixNano: t,
                body: { stringValue: "x" },
              })),
            }],
          }],
        }));
        const js = assertSuccess(await post("/v1/logs", logs, JSON_CT), "json", "JSON");
        assert.equal(js?.rejected, 2, "rejectedLogRecords (JSON)");
        assert.match(js!.message, /2 log records with a time at or after 2\^63 ns/);
        expect("logs", 2, "late logs");
        const spans = generateTraces(50, { seed: 9, startNs: BigInt(at(0)) });
        spans.resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano = "18446744073709551615";
        const pb = assertSuccess(
          await post("/v1/traces", encodeProtobuf("traces", spans), PROTOBUF),
          "protobuf",
          "protobuf",
        );
        assert.equal(pb?.rejected, 1, "rejected_spans (protobuf)");
        expect("traces", 49, "late spans");
      },
    );

    await t.step("an empty request is a success", async () => {
      for (const path of ["/v1/logs", "/v1/traces", "/v1/metrics"]) {
        const a = await post(path, new Uint8Array(0), PROTOBUF);
        assert.equal(assertSuccess(a, "protobuf", `${path} empty protobuf`), undefined);
        assert.equal(a.body.length, 0, "an empty Export*ServiceResponse");
        assert.equal(assertSuccess(await post(path, "{}", JSON_CT), "json", `${path} {}`), undefined);
        const field = {
          "/v1/logs": "resourceLogs",
          "/v1/traces": "resourceSpans",
          "/v1/metrics": "resourceMetrics",
        }[path]!;
        assertSuccess(
          await post(path, JSON.stringify({ [field]: [] }), JSON_CT),
          "json",
          `${path} no resources`,
        );
      }
    });

    await t.step(
      "every content coding decodes: gzip, deflate (zlib and raw), zstd, snappy, lz4, identity",
      async () => {
        for (const [coding, compress] of CODINGS) {
          const a = await post("/v1/logs", compress(logsPb), { ...PROTOBUF, "content-encoding": coding });
          assert.equal(assertSuccess(a, "protobuf", coding), undefined);
          expect("logs", 81, "logs.pb");
        }
        const gz = await post("/v1/traces", zlib.gzipSync(readData("trace.json")), {
          ...JSON_CT,
          "content-encoding": "gzip",
        });
        assertSuccess(gz, "json", "gzip JSON");
        expectFile("trace.json");
      },
    );

    await t.step("JSON Lines: one request per line, every record stored", async () => {
      for (const ct of ["application/x-ndjson", "application/jsonl; charset=utf-8"]) {
        assertSuccess(await post("/v1/logs", readData("logs.jsonl"), { "content-type": ct }), "json", ct);
        expectFile("logs.jsonl");
      }
      assertSuccess(
        await post("/v1/traces", readData("traces.jsonl"), { "content-type": "application/x-ndjson" }),
        "json",
        "traces",
      );
      expectFile("traces.jsonl");
      assertSuccess(
        await post("/v1/metrics", readData("metrics_histogram.jsonl"), {
          "content-type": "application/x-ndjson",
        }),
        "json",
        "metrics",
      );
      expectFile("metrics_histogram.jsonl");
    });

    await t.step("/health and /ready answer 200", async () => {
      for (const path of ["/health", "/ready"]) {
        const a = await send(u(path), { method: "GET" });
        assert.equal(a.status, 200, path);
        assert.equal((await send(u(path), { method: "HEAD" })).status, 200, `HEAD ${path}`);
      }
    });

    await t.step(
      "after all of it the server still takes a valid request, and never answered 500",
      async () => {
        assertSuccess(
          await post("/v1/logs", logsPb, {
            ...PROTOBUF,
            "content-type": "application/x-protobuf; charset=binary",
          }),
          "protobuf",
          "final",
        );
        expect("logs", 81, "logs.pb");
        for (
          const name of ["metrics_mixed.json", "metrics_exponential_histogram.json", "metrics_summary.json"]
        ) {
          assertSuccess(await post("/v1/metrics", readData(name), JSON_CT), "json", name);
          expectFile(name);
        }
        assert.deepEqual(answers.filter((a) => a.status >= 500), [], "no 5xx");
        assert.ok(!server.logs.some((l) => l.includes("unexpected error")), server.logs.join("\n"));
      },
    );

    await server.stop();
    await t.step("exactly what was accepted is stored, nothing of what was refused", async () => {
      assert.deepEqual(await rowCounts(server.dir), stored);
      const [partial] = await (await duck()).rows(
        `SELECT list(Value ORDER BY Value) AS v FROM read_parquet(${
          sqlString(join(server.dir, "metrics/gauge/**/*.parquet"))
        }) WHERE ServiceName LIKE 'partial%'`,
      );
      assert.deepEqual(partial.v, [1.5, 2.5, 3.5, 7]);
    });
  } finally {
    await server.dispose();
  }
});

// ---------------------------------------------------------------------------------------------------------
// 3b. Overload and slow clients: 429, 503, 408 (raw sockets where a client must misbehave)
// ---------------------------------------------------------------------------------------------------------

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

interface RawAnswer extends Answer {
  elapsedMs: number;
}

/**
 * One HTTP/1.1 exchange over a raw TCP socket: sends `head` and the first body piece, then the other pieces
 * one every `intervalMs` (stopping once the server has answered), and reads the answer.
 */
async function rawExchange(
  address: string,
  head: string,
  pieces: Uint8Array[],
  options: { intervalMs?: number; onSent?: () => void } = {},
): Promise<RawAnswer> {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const started = performance.now();
  let answered = false;
  try {
    await conn.write(utf8(head));
    if (pieces.length) await conn.write(pieces[0]);
    options.onSent?.();
    const trickle = (async () => {
      for (const piece of pieces.slice(1)) {
        await delay(options.intervalMs ?? 100);
        if (answered) return;
        try {
          await conn.write(piece);
        } catch {
          return; // the server closed the connection after answering
        }
      }
    })();
    const chunks: Uint8Array[] = [];
    let total = 0;
    const buf = new Uint8Array(65536);
    let headEnd = -1;
    let length = Infinity;
    const killer = setTimeout(() => conn.close(), 20_000);
    try {
      while (total < length) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) break;
        chunks.push(buf.slice(0, n));
        total += n;
        if (headEnd < 0) {
          const text = new TextDecoder("latin1").decode(concat(chunks));
          headEnd = text.indexOf("\r\n\r\n");
          if (headEnd >= 0) {
            const m = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, headEnd));
            length = m ? headEnd + 4 + Number(m[1]) : Infinity;
          }
        }
      }
    } finally {
      clearTimeout(killer);
    }
    answered = true;
    await trickle;
    const all = concat(chunks);
    const text = new TextDecoder("latin1").decode(all);
    const end = text.indexOf("\r\n\r\n");
    assert.ok(end > 0, `an HTTP answer: ${JSON.stringify(text)}`);
    const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
    const headers = new Headers(
      lines.map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]),
    );
    return {
      status: Number(statusLine.split(" ")[1]),
      headers,
      body: all.subarray(end + 4),
      elapsedMs: performance.now() - started,
    };
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) out.set(c, at), at += c.length;
  return out;
}

const postHead = (path: string, length: number, contentType = "application/x-protobuf") =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\nContent-Length: ${length}\r\n\r\n`;

Deno.test("429 when the in-flight budget is taken, 408 for stalled and trickling bodies, then 200 again", async (t) => {
  const server = await startTestServer({
    env: {
      OTLP2PARQUET_MAX_PAYLOAD_BYTES: "65536",
      OTLP2PARQUET_MAX_INFLIGHT_BYTES: "65536",
      OTLP2PARQUET_REQUEST_TIMEOUT_SECS: "1.5",
    },
  });
  const ingest = server.server.ingest;
  const logsPb = readData("logs.pb");
  let accepted = 0;
  try {
    await t.step(
      "bodies of unknown length (chunked, as the SDK's gzip exporter sends them) are accepted",
      async () => {
        for (const encoding of ["gzip", "identity"]) {
          const bytes = encoding === "gzip" ? zlib.gzipSync(logsPb) : logsPb;
          const stream = new ReadableStream<Uint8Array>({
            start(c) {
              c.enqueue(bytes.subarray(0, 1000));
              c.enqueue(bytes.subarray(1000));
              c.close();
            },
          });
          const a = await send(`${server.url}/v1/logs`, {
            body: stream,
            headers: { ...PROTOBUF, "content-encoding": encoding },
          });
          assertSuccess(a, "protobuf", `chunked ${encoding}`);
          // The same request in both codings (the same decompressed bytes): the second is a retry, stored once.
          accepted = 81;
        }
        assert.equal(ingest.stats().inflightBytes, 0, "the in-flight budget is whole again");
      },
    );

    await t.step(
      "429 with Retry-After while a stalled upload holds the budget; 408 for the stalled upload",
      async () => {
        let sent = false;
        const stalled = rawExchange(server.server.address, postHead("/v1/logs", 60_000), [
          new Uint8Array(100),
        ], {
          onSent: () => sent = true,
        });
        await waitFor(
          "the stalled upload to be admitted",
          () => sent && ingest.stats().inflightBytes >= 60_000,
        );
        for (const [headers, encoding] of [[PROTOBUF, "protobuf"], [JSON_CT, "json"]] as const) {
          const a = await send(`${server.url}/v1/traces`, { body: new Uint8Array(10_000), headers });
          assertFailure(a, 429, encoding, `second upload (${encoding})`);
        }
        const answer = await stalled;
        assertFailure(answer, 408, "protobuf", "stalled upload");
        assert.ok(
          answer.elapsedMs >= 1400 && answer.elapsedMs < 5000,
          `408 after the timeout: ${answer.elapsedMs} ms`,
        );
        await waitFor("the budget to be released", () => ingest.stats().inflightBytes === 0);
      },
    );

    await t.step("408 for a body that trickles in past the deadline", async () => {
      const pieces = Array.from({ length: 40 }, () => utf8(" ".repeat(10)));
      const answer = await rawExchange(
        server.server.address,
        postHead("/v1/logs", 400, "application/json"),
        pieces,
        { intervalMs: 100 },
      );
      assertFailure(answer, 408, "json", "trickling upload");
      assert.ok(
        answer.elapsedMs >= 1400 && answer.elapsedMs < 3500,
        `408 at the deadline: ${answer.elapsedMs} ms`,
      );
      await waitFor("the budget to be released", () => ingest.stats().inflightBytes === 0);
    });

    await t.step(
      "a client that goes away mid-upload is no server error, and its budget comes back",
      async () => {
        const [hostname, port] = server.server.address.split(":");
        for (
          const head of [
            postHead("/v1/logs", 1000),
            postHead("/v1/logs", 1000).replace(/Content-Length: \d+/, "Transfer-Encoding: chunked"),
          ]
        ) {
          const conn = await Deno.connect({ hostname, port: Number(port) });
          await conn.write(utf8(head));
          await conn.write(utf8(head.includes("chunked") ? "a\r\n0123456789\r\n" : "0123456789"));
          await waitFor("the upload to be admitted", () => ingest.stats().inflightBytes > 0);
          conn.close();
          await waitFor("the budget to be released", () => ingest.stats().inflightBytes === 0);
        }
        const bugs = server.logs.filter((l) => l.includes("unexpected error"));
        assert.deepEqual(bugs, [], "a disconnect is not logged as an unexpected (500) error");
      },
    );

    await t.step("afterwards a valid request is accepted and stored", async () => {
      assertSuccess(
        await send(`${server.url}/v1/logs`, { body: paddedLogRequest(1, 0), headers: JSON_CT }),
        "json",
        "after",
      );
      accepted += 1;
      await server.stop();
      assert.deepEqual(await rowCounts(server.dir), { logs: accepted });
      assert.ok(!server.logs.some((l) => l.includes("unexpected error")), server.logs.join("\n"));
    });
  } finally {
    await server.dispose();
  }
});

/** A one-record OTLP/JSON logs request padded with whitespace to `size` bytes: big in the log, small in rows. */
function paddedLogRequest(seq: number, size: number): Uint8Array {
  const json = JSON.stringify({
    resourceLogs: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "wal-fill" } }] },
      scopeLogs: [{
        logRecords: [{
          timeUnixNano: String(BigInt(Date.UTC(2025, 2, 14, 15)) * 1_000_000n + BigInt(seq)),
          body: { stringValue: `record ${seq}` },
        }],
      }],
    }],
  });
  return utf8(json + " ".repeat(Math.max(0, size - json.length)));
}

Deno.test("a full write-ahead log writes its batches at once and keeps answering 200 while the store works", async () => {
  const server = await startTestServer({
    env: {
      OTLP2PARQUET_WAL_MAX_BYTES: "262144",
      OTLP2PARQUET_BATCH_MAX_BYTES: "262144",
      OTLP2PARQUET_MAX_PAYLOAD_BYTES: "65536",
      // Never due by age: only the log's bound cuts the batch.
      OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600",
    },
  });
  let seq = 0;
  let accepted = 0;
  try {
    // Requests big in the log and small in rows: over three times the log in bodies, into one batch.
    let bodies = 0;
    for (const size of [16_384, 4096, 1024, 16_384]) {
      for (let sent = 0; sent < 262_144; sent += size + 400) {
        const body = paddedLogRequest(seq++, size);
        const a = await send(`${server.url}/v1/logs`, { body, headers: JSON_CT });
        assert.equal(a.status, 200, `request of ${size} bytes: ${new TextDecoder().decode(a.body)}`);
        accepted++;
        bodies += body.length;
      }
    }
    assert.ok(bodies > 3 * 262_144, `only ${bodies} bytes sent`);
    const ready = await fetch(`${server.url}/ready`);
    assert.deepEqual([ready.status, await ready.text()], [200, "ready\n"]);
    await server.stop();
    assert.deepEqual(await rowCounts(server.dir), { logs: accepted });
  } finally {
    await server.dispose();
  }
});

// ---------------------------------------------------------------------------------------------------------
// 4. Signals on the server as a subprocess
// ---------------------------------------------------------------------------------------------------------

interface ServerProcess {
  url: string;
  child: Deno.ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves when `pattern` appears in its output. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

/** Starts `src/platforms/server/main.ts` in its own Deno with `env`; resolves once it listens. */
async function spawnServer(env: Record<string, string>): Promise<ServerProcess> {
  const child = new Deno.Command(join(ROOT, "node_modules/.bin/deno"), {
    args: ["run", "-A", "src/platforms/server/main.ts"],
    cwd: ROOT,
    env: { OTLP2PARQUET_LISTEN_ADDR: "127.0.0.1:0", OTLP2PARQUET_INSTANCE_ID: "e2e", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  void collect(child.stdout);
  void collect(child.stderr);
  const proc: ServerProcess = {
    url: "",
    child,
    output: () => text,
    waitForOutput: (pattern, timeoutMs = 20_000) =>
      waitFor(`${pattern} in the server's output`, () => pattern.test(text), timeoutMs).catch((e) => {
        throw new Error(`${e.message}:\n${text}`);
      }),
  };
  await proc.waitForOutput(/listening on http:\/\/\S+/);
  proc.url = /listening on (http:\/\/\S+)/.exec(text)![1];
  return proc;
}

/** An address where nothing listens: connections are refused at once. */
function deadAddress(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return `http://127.0.0.1:${port}`;
}

Deno.test("SIGTERM: the subprocess server flushes what it acknowledged and exits 0", async () => {
  const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-e2e-sigterm-"));
  try {
    const proc = await spawnServer({
      OTLP2PARQUET_STORAGE_PATH: dir,
      OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600",
    });
    for (
      const [path, file] of [["/v1/logs", "logs.pb"], ["/v1/traces", "traces.pb"], [
        "/v1/metrics",
        "metrics_sum.pb",
      ]]
    ) {
      assertSuccess(
        await send(`${proc.url}${path}`, { body: readData(file), headers: PROTOBUF }),
        "protobuf",
        file,
      );
    }
    assertSuccess(
      await send(`${proc.url}/v1/metrics`, { body: readData("metrics_gauge.json"), headers: JSON_CT }),
      "json",
      "gauge",
    );
    assert.deepEqual(await listParquet(dir), [], "nothing written before the signal");
    proc.child.kill("SIGTERM");
    const status = await proc.child.status;
    assert.equal(status.code, 0, proc.output());
    assert.match(proc.output(), /SIGTERM received/);
    assert.match(proc.output(), /stopped: every batch written/);
    assert.deepEqual(await rowCounts(dir), {
      logs: 81,
      traces: 19,
      "metrics/sum": 4,
      ...recordsIn("metrics_gauge.json"),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a second SIGTERM after the repeat window forces the exit while a flush hangs; the data waits in the log", async () => {
  const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-e2e-sigterm2-"));
  const wal = join(dir, "wal");
  try {
    const proc = await spawnServer({
      OTLP2PARQUET_STORAGE_BACKEND: "s3",
      OTLP2PARQUET_S3_BUCKET: "nowhere",
      OTLP2PARQUET_S3_ENDPOINT: deadAddress(),
      OTLP2PARQUET_WAL_DIR: wal,
      OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600",
      AWS_ACCESS_KEY_ID: "x",
      AWS_SECRET_ACCESS_KEY: "y",
      AWS_EC2_METADATA_DISABLED: "true",
    });
    assertSuccess(
      await send(`${proc.url}/v1/logs`, { body: readData("logs.pb"), headers: PROTOBUF }),
      "protobuf",
      "logs",
    );
    proc.child.kill("SIGTERM");
    const first = Date.now();
    // The flush cannot reach the store and keeps retrying: the first signal alone would wait its deadline.
    await proc.waitForOutput(/write failed; retrying/);
    // Within the repeat window the same signal would be the same stop (tests/stop_test.ts); after it, it forces.
    await new Promise((r) => setTimeout(r, Math.max(0, first + REPEAT_WINDOW_MS + 500 - Date.now())));
    proc.child.kill("SIGTERM");
    const status = await proc.child.status;
    assert.equal(status.code, 1, proc.output());
    assert.match(proc.output(), /SIGTERM again [\d.]+ s after the first: exiting now/);
    // Not the stop timeout's exit (30 s): the forced one.
    assert.doesNotMatch(proc.output(), /stopped after|still stopping/);

    // The acknowledged request survived in the write-ahead log: the next start writes it.
    const next = await startTestServer({ env: { OTLP2PARQUET_WAL_DIR: wal } });
    try {
      await next.stop();
      assert.deepEqual(await rowCounts(next.dir), { logs: 81 });
    } finally {
      await next.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("/ready is 503 while the object store was unreachable at start-up, and 200 once it answers", async () => {
  const s3 = await startS3Server({ bucket: "otel-ready" });
  await s3.stop();
  try {
    await withProcessEnv(s3Credentials(s3), async () => {
      const server = await startTestServer({
        env: s3StorageEnv(s3),
      });
      try {
        const before = await fetch(`${server.url}/ready`);
        assert.equal(before.status, 503);
        assert.ok(before.headers.get("retry-after"));
        assert.match(await before.text(), /^not ready: store: (unreachable at start-up|probe): .+/);
        await s3.restart();
        let status = 0;
        for (let i = 0; i < 100 && status !== 200; i++) {
          const r = await fetch(`${server.url}/ready`);
          status = r.status;
          await r.body?.cancel();
          if (status !== 200) await new Promise((r) => setTimeout(r, 200));
        }
        assert.equal(status, 200, "ready again within 20 s of the store coming back");
      } finally {
        await server.dispose();
      }
    });
  } finally {
    await s3.stop();
  }
});

Deno.test("without batching (--no-batch) every request's files are written before its 200", async () => {
  const server = await startTestServer({ env: { OTLP2PARQUET_BATCH_ENABLED: "false" } });
  try {
    const body = readFileSync(join(DATA, "logs.pb"));
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${server.url}/v1/logs`, {
        method: "POST",
        headers: { "content-type": "application/x-protobuf" },
        body,
      });
      assert.equal(r.status, 200);
      await r.body?.cancel();
      // Before any flush or stop: the files are already there, one per service and hour.
      const files = await listParquet(server.dir);
      assert.equal(files.length, 6, files.join("\n"));
    }
    const duck = await openDuckDb();
    try {
      const rows = await duck.rows(
        `SELECT count(*)::INT AS n FROM read_parquet('${join(server.dir, "logs/**/*.parquet")}')`,
      );
      // The same request twice writes the same objects (same rows, same names): an overwrite, not a duplicate.
      assert.deepEqual(rows, [{ n: 81 }]);
    } finally {
      duck.close();
    }
  } finally {
    await server.dispose();
  }
});

Deno.test("a compressed body is charged to the in-flight budget as it inflates (429)", async () => {
  const MiB = 1024 * 1024;
  const server = await startTestServer({
    env: {
      OTLP2PARQUET_MAX_PAYLOAD_BYTES: String(4 * MiB),
      OTLP2PARQUET_MAX_INFLIGHT_BYTES: String(4 * MiB),
      OTLP2PARQUET_REQUEST_TIMEOUT_SECS: "1.5",
    },
  });
  const ingest = server.server.ingest;
  // 3 MiB of JSON that gzips to a few KB: charged by its few KB as they arrive, then by 3 MiB as it inflates.
  const json = JSON.stringify({
    resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: "a".repeat(3 * MiB) } }] }] }],
  });
  const gz = zlib.gzipSync(new TextEncoder().encode(json));
  const post = () =>
    send(`${server.url}/v1/logs`, { body: gz, headers: { ...JSON_CT, "content-encoding": "gzip" } });
  try {
    let sent = false;
    // The budget is charged by bytes that arrived, not by the declared length: send 2 MiB of 3, then stall.
    const stalled = rawExchange(server.server.address, postHead("/v1/logs", 3 * MiB), [
      new Uint8Array(2 * MiB),
    ], {
      onSent: () => sent = true,
    });
    await waitFor("the stalled upload to be admitted", () => sent && ingest.stats().inflightBytes >= 2 * MiB);
    assertFailure(await post(), 429, "json", "inflated body while 2 MiB are held");
    assertFailure(await stalled, 408, "protobuf", "stalled upload");
    await waitFor("the budget to be released", () => ingest.stats().inflightBytes === 0);
    assertSuccess(await post(), "json", "the same body once the budget is free");
  } finally {
    await server.dispose();
  }
});
