import assert from "node:assert/strict";
import { createTraceState, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import {
  type Column,
  KeyedMapColumn,
  ListColumn,
  MapColumn,
  SharedMapColumn,
  SharedStrColumn,
  StrColumn,
  U64Column,
} from "../table/columns.ts";
import { decodeRequest, type Format } from "../convert.ts";
import { DecodeError } from "../errors.ts";
import type { Rows } from "../table/rows.ts";
import { decodeTracesJson } from "./traces_json.ts";
import { decodeTracesProto } from "./traces_proto.ts";

const DATA = new URL("../../../../shared/testdata/otlp2parquet-rust/", import.meta.url);
const read = (name: string): Uint8Array => Deno.readFileSync(new URL(name, DATA));
const enc = new TextEncoder();

// ---- reading rows back as plain values ----

type Value = string | number | [string, string][] | Value[];

function value(col: Column, i: number): Value {
  if (col instanceof U64Column) return col.bigint(i).toString();
  if (col instanceof StrColumn) return col.get(i);
  if (col instanceof SharedMapColumn) return value(col.distinct, col.ids[i]);
  if (col instanceof KeyedMapColumn) {
    const o = col.values.offsets, shift = col.keyShift(i);
    const out: [string, string][] = [];
    for (let e = o[i]; e < o[i + 1]; e++) out.push([col.lists.child.get(e + shift), col.values.child.get(e)]);
    return out;
  }
  if (col instanceof SharedStrColumn) return col.get(i);
  if (col instanceof MapColumn) {
    const out: [string, string][] = [];
    for (let e = col.offsets[i]; e < col.offsets[i + 1]; e++) out.push([col.keys.get(e), col.values.get(e)]);
    return out;
  }
  if (col instanceof ListColumn) {
    const out: Value[] = [];
    for (let e = col.offsets[i]; e < col.offsets[i + 1]; e++) out.push(value(col.child, e));
    return out;
  }
  return (col as unknown as { values: ArrayLike<number> }).values[i];
}

type Row = Record<string, Value>;

/** Every row as a column name → value record; also checks that all columns have one value per row. */
function table(rows: Rows): Row[] {
  rows.columns.forEach((c, k) => assert.equal(c.length, rows.length, rows.def.columns[k].name));
  return Array.from(
    { length: rows.length },
    (_, i) => Object.fromEntries(rows.def.columns.map((d, k) => [d.name, value(rows.columns[k], i)])),
  );
}

function decode(bytes: Uint8Array, format: Format): Rows {
  const d = decodeRequest("traces", bytes, { format });
  assert.equal(d.signal, "traces");
  assert.ok(d.tables.length <= 1);
  assert.equal(d.records, d.tables[0]?.length ?? 0);
  return d.tables[0];
}

function decodeError(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw new assert.AssertionError({ message: `expected a DecodeError, got ${e}` });
  }
  throw new assert.AssertionError({ message: "expected a DecodeError, nothing was thrown" });
}

const EXPECTED_COLUMNS = [
  "Timestamp",
  "TraceId",
  "SpanId",
  "ParentSpanId",
  "TraceState",
  "SpanName",
  "SpanKind",
  "ServiceName",
  "ResourceAttributes",
  "ScopeName",
  "ScopeVersion",
  "SpanAttributes",
  "Duration",
  "StatusCode",
  "StatusMessage",
  "Events.Timestamp",
  "Events.Name",
  "Events.Attributes",
  "Links.TraceId",
  "Links.SpanId",
  "Links.TraceState",
  "Links.Attributes",
];

// ---- the Rust project's test data ----

Deno.test("decodeTracesProto() reads traces.pb: 19 spans of 8 services, values as the reference wrote them", () => {
  const rows = decode(read("traces.pb"), "protobuf");
  assert.deepEqual(rows.def.columns.map((c) => c.name), EXPECTED_COLUMNS);
  const t = table(rows);
  assert.equal(t.length, 19);
  assert.equal(new Set(t.map((r) => r.ServiceName)).size, 8);
  assert.deepEqual(
    new Set(rows.parts.map((p) => p.service)),
    new Set([
      "product-catalog",
      "analytics-service",
      "payment-service",
      "cart",
      "kafka",
      "api-gateway",
      "recommendation",
      "frontend-proxy",
    ]),
  );
  // The partition hour comes from the span's start time (2025-10-17T21:54Z).
  assert.deepEqual(
    new Set(rows.parts.map((p) => p.hour)),
    new Set([Math.floor(1760738064624180000 / 3.6e12)]),
  );
  // Values as the Rust otlp2parquet wrote them to parquet/traces.parquet (row 0 and row 1).
  assert.deepEqual(t[0], {
    "Timestamp": "1760738064624180000",
    "TraceId": "69842a979911036cf3e822086ecaa007",
    "SpanId": "5a69fc178ba8f837",
    "ParentSpanId": "44e61d9ab30fcb06",
    "TraceState": "",
    "SpanName": "product-catalog.execute",
    "SpanKind": "SPAN_KIND_INTERNAL",
    "ServiceName": "product-catalog",
    "ResourceAttributes": [
      ["host.name", "docker-desktop"],
      ["os.type", "linux"],
      ["service.name", "product-catalog"],
      ["service.namespace", "opentelemetry-demo"],
      ["service.version", "2.1.3"],
      ["telemetry.sdk.language", "python"],
      ["telemetry.sdk.name", "opentelemetry"],
      ["telemetry.sdk.version", "1.37.0"],
    ],
    "ScopeName": "product-catalog",
    "ScopeVersion": "",
    "SpanAttributes": [
      ["rpc.grpc.status_code", "0"],
      ["rpc.method", "Get"],
      ["rpc.service", "oteldemo.Product-CatalogService"],
      ["rpc.system", "grpc"],
    ],
    "Duration": "367000000",
    "StatusCode": "STATUS_CODE_UNSET",
    "StatusMessage": "",
    "Events.Timestamp": [],
    "Events.Name": [],
    "Events.Attributes": [],
    "Links.TraceId": [],
    "Links.SpanId": [],
    "Links.TraceState": [],
    "Links.Attributes": [],
  });
  assert.equal(t[1].TraceId, "e0cb6e382a5dff72ac1dda9690813747");
  assert.equal(t[1].SpanName, "analytics-service.process");
  assert.equal(t[1].Duration, "175000000");
  assert.deepEqual(t[1]["Events.Timestamp"], ["1760738065711680000"]);
  assert.deepEqual(t[1]["Events.Name"], ["processing"]);
  assert.deepEqual(t[1]["Events.Attributes"], [[]]);
  // Six spans carry one event each; root spans have no parent id.
  assert.equal(t.filter((r) => (r["Events.Name"] as Value[]).length === 1).length, 6);
  assert.equal(t.filter((r) => r.ParentSpanId === "").length, 6);
  assert.deepEqual(
    new Set(t.map((r) => r.SpanKind)),
    new Set(["SPAN_KIND_INTERNAL", "SPAN_KIND_CLIENT", "SPAN_KIND_SERVER"]),
  );
  for (const r of t) {
    assert.match(r.TraceId as string, /^[0-9a-f]{32}$/);
    assert.match(r.SpanId as string, /^[0-9a-f]{16}$/);
  }
});

function assertSameData(pb: Row[], json: Row[]): void {
  // First that the files hold the same spans, then that every column value agrees.
  assert.equal(pb.length, json.length);
  assert.deepEqual(pb.map((r) => `${r.TraceId}/${r.SpanId}`), json.map((r) => `${r.TraceId}/${r.SpanId}`));
  assert.deepEqual(pb, json);
}

Deno.test("traces.pb and traces.jsonl decode to identical columns", () => {
  const pb = table(decode(read("traces.pb"), "protobuf"));
  const jsonl = table(decode(read("traces.jsonl"), "jsonl"));
  assertSameData(pb, jsonl);
});

Deno.test("trace.pb and trace.json decode to identical columns (base64 ids in JSON become hex)", () => {
  const pb = table(decode(read("trace.pb"), "protobuf"));
  const json = table(decode(read("trace.json"), "json"));
  assert.equal(pb.length, 2);
  assertSameData(pb, json);
  // trace.json writes "nXmxo38xgBzRGmcG+0DWvQ==" / "3lYkOenBuCM=" / "V1JoRpA7sT4=".
  assert.equal(json[0].TraceId, "9d79b1a37f31801cd11a6706fb40d6bd");
  assert.equal(json[0].SpanId, "de562439e9c1b823");
  assert.equal(json[0].ParentSpanId, "57526846903bb13e");
  assert.equal(json[0].SpanKind, "SPAN_KIND_CLIENT");
  assert.equal(json[1].SpanKind, "SPAN_KIND_SERVER");
  assert.equal(json[0].Duration, String(1760738064628483000n - 1760738064624462000n));
  assert.equal(json[0].ScopeName, "envoy");
  assert.equal(
    json[0].ScopeVersion,
    "e98143bdac2bd4983e889b89d57330ca59cd71b0/1.34.7/Clean/RELEASE/BoringSSL",
  );
  assert.deepEqual((json[1].SpanAttributes as [string, string][]).find(([k]) => k === "user_agent"), [
    "user_agent",
    "python-requests/2.32.5",
  ]);
});

Deno.test("the invalid trace files are refused with the field named", () => {
  const cases: [string, RegExp][] = [
    [
      "trace_invalid_base64.json",
      /^cannot decode traces request: field resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.traceId: /,
    ],
    [
      "trace_invalid_kind.json",
      /^cannot decode traces request: field resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.kind: unknown value "SPAN_KIND_INVALID_TYPE"$/,
    ],
    [
      "trace_mixed_encoding.json",
      /^cannot decode traces request: field resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.traceId: "zzz"/,
    ],
  ];
  for (const [name, want] of cases) {
    const e = decodeError(() => decodeRequest("traces", read(`invalid/${name}`), { format: "json" }));
    assert.match(e.message, want, name);
  }
});

// ---- the real OpenTelemetry JS SDK ----

const KINDS = [
  "SPAN_KIND_UNSPECIFIED",
  "SPAN_KIND_INTERNAL",
  "SPAN_KIND_SERVER",
  "SPAN_KIND_CLIENT",
  "SPAN_KIND_PRODUCER",
  "SPAN_KIND_CONSUMER",
];
const STATUSES = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

/** Independent rendering of an attribute value as schema.md describes it. */
function render(v: unknown): string {
  if (typeof v === "string") return v;
  // OTLP sends integral numbers as int64, which render exactly (2 ** 60 → "1152921504606846976").
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v).toString();
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v instanceof Uint8Array) return base64(v);
  return JSON.stringify(jsonOf(v));
}

const base64 = (b: Uint8Array): string => btoa(String.fromCharCode(...b));

function jsonOf(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (v instanceof Uint8Array) return base64(v);
  if (Array.isArray(v)) return v.map(jsonOf);
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, jsonOf(o[k])]));
  }
  return v;
}

function expectedMap(attrs: Record<string, unknown> | undefined): [string, string][] {
  return Object.keys(attrs ?? {}).sort().map((k) => [k, render(attrs![k])]);
}

const ns = (t: [number, number]): bigint => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);

function makeSpans(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      "service.name": "checkout",
      "deployment.environment": "test",
      "host.cores": 8,
    }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("test-lib", "1.2.3");
  const remote = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
    traceFlags: 1,
    traceState: createTraceState("vendor=a1,other=b2"),
    isRemote: true,
  });
  const server = tracer.startSpan("GET /cart ☃", {
    kind: SpanKind.SERVER,
    startTime: [1760738064, 624462123],
    attributes: {
      "str": "héllo",
      "empty": "",
      "int": 42,
      "negative": -7,
      "big": 2 ** 60,
      "double": 3.25,
      "tiny": 1e-7,
      "yes": true,
      "no": false,
      "strs": ["a", 'b"c'],
      "ints": [1, -2, 3],
      "doubles": [0.5, 1.5],
      "bools": [true, false],
    },
    links: [
      {
        context: {
          traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
          spanId: "00f067aa0ba902b7",
          traceFlags: 1,
          traceState: createTraceState("lk=1"),
        },
        attributes: { "link.kind": "follows", "weight": 0.5 },
      },
      { context: { traceId: "11111111111111111111111111111111", spanId: "2222222222222222", traceFlags: 0 } },
    ],
  }, remote);
  server.addEvent("cache miss", { "key": "k1", "n": 3, "z.first": "no" }, [1760738064, 700000001]);
  server.addEvent("no attrs", [1760738064, 800000000]);
  server.setStatus({ code: SpanStatusCode.ERROR, message: "boom: ünïcode" });
  const serverCtx = trace.setSpan(ROOT_CONTEXT, server);
  const kinds = [SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL];
  kinds.forEach((kind, i) => {
    const child = tracer.startSpan(`child ${i}`, { kind, startTime: [1760738064, 650000000 + i] }, serverCtx);
    if (i === 0) child.setStatus({ code: SpanStatusCode.OK });
    child.end([1760738064, 660000000 + i * 1000]);
  });
  // A root span (no parent), from another tracer: another scope.
  const root = provider.getTracer("other-lib").startSpan("root", { startTime: [1760741999, 999999999] });
  root.end([1760742000, 1]);
  server.end([1760738065, 1]);
  return exporter.getFinishedSpans();
}

/** A span that also carries bytes and kvlist attributes, which the SDK's span API does not let through. */
function withAnyValues(span: ReadableSpan): ReadableSpan {
  return Object.create(span, {
    attributes: {
      value: {
        ...span.attributes,
        "blob": new Uint8Array([0, 1, 2, 250, 255]),
        "obj": { b: 1, a: "x", nested: { z: [1, "two", true, 2.5] }, raw: new Uint8Array([104, 105]) },
        "mixed": ["s", 1, null],
      },
    },
  });
}

function assertSpanRow(s: ReadableSpan, r: Row): void {
  const ctx = s.spanContext();
  assert.equal(r.TraceId, ctx.traceId);
  assert.equal(r.SpanId, ctx.spanId);
  assert.equal(r.ParentSpanId, s.parentSpanContext?.spanId ?? "");
  assert.equal(r.TraceState, ctx.traceState?.serialize() ?? "");
  assert.equal(r.SpanName, s.name);
  assert.equal(r.SpanKind, KINDS[s.kind + 1]);
  assert.equal(r.ServiceName, s.resource.attributes["service.name"]);
  assert.deepEqual(r.ResourceAttributes, expectedMap(s.resource.attributes));
  assert.equal(r.ScopeName, s.instrumentationScope.name);
  assert.equal(r.ScopeVersion, s.instrumentationScope.version ?? "");
  assert.deepEqual(r.SpanAttributes, expectedMap(s.attributes));
  assert.equal(r.Timestamp, ns(s.startTime).toString());
  assert.equal(r.Duration, (ns(s.endTime) - ns(s.startTime)).toString());
  assert.equal(r.StatusCode, STATUSES[s.status.code]);
  assert.equal(r.StatusMessage, s.status.message ?? "");
  assert.deepEqual(r["Events.Timestamp"], s.events.map((e) => ns(e.time).toString()));
  assert.deepEqual(r["Events.Name"], s.events.map((e) => e.name));
  assert.deepEqual(r["Events.Attributes"], s.events.map((e) => expectedMap(e.attributes)));
  assert.deepEqual(r["Links.TraceId"], s.links.map((l) => l.context.traceId));
  assert.deepEqual(r["Links.SpanId"], s.links.map((l) => l.context.spanId));
  assert.deepEqual(r["Links.TraceState"], s.links.map((l) => l.context.traceState?.serialize() ?? ""));
  assert.deepEqual(r["Links.Attributes"], s.links.map((l) => expectedMap(l.attributes)));
}

Deno.test("spans serialized by the OpenTelemetry JS SDK decode to what the spans held (protobuf and JSON)", () => {
  const spans = makeSpans();
  assert.equal(spans.length, 6);
  const all = spans.map((s) => s.name === "root" ? withAnyValues(s) : s);
  const pb = decodeTracesProto(ProtobufTraceSerializer.serializeRequest(all)!);
  const json = decode(JsonTraceSerializer.serializeRequest(all)!, "json");
  const pbRows = table(pb), jsonRows = table(json);
  assert.equal(pbRows.length, 6);
  assert.deepEqual(pbRows, jsonRows);
  for (const s of all) {
    const r = pbRows.find((x) => x.SpanId === s.spanContext().spanId);
    assert.ok(r, s.name);
    assertSpanRow(s, r);
  }
  // Concrete values, so a shared mistake of the test's expectations and the decoder cannot hide.
  const server = pbRows.find((r) => r.SpanName === "GET /cart ☃")!;
  assert.equal(server.TraceId, "0af7651916cd43dd8448eb211c80319c");
  assert.equal(server.ParentSpanId, "b7ad6b7169203331");
  assert.equal(server.TraceState, "vendor=a1,other=b2");
  assert.equal(server.SpanKind, "SPAN_KIND_SERVER");
  assert.equal(server.Timestamp, "1760738064624462123");
  assert.equal(server.Duration, "375537878");
  assert.equal(server.StatusCode, "STATUS_CODE_ERROR");
  assert.equal(server.StatusMessage, "boom: ünïcode");
  assert.deepEqual(server.SpanAttributes, [
    ["big", "1152921504606846976"],
    ["bools", "[true,false]"],
    ["double", "3.25"],
    ["doubles", "[0.5,1.5]"],
    ["empty", ""],
    ["int", "42"],
    ["ints", "[1,-2,3]"],
    ["negative", "-7"],
    ["no", "false"],
    ["str", "héllo"],
    ["strs", '["a","b\\"c"]'],
    ["tiny", "1e-7"],
    ["yes", "true"],
  ]);
  assert.deepEqual(server["Events.Timestamp"], ["1760738064700000001", "1760738064800000000"]);
  assert.deepEqual(server["Events.Name"], ["cache miss", "no attrs"]);
  assert.deepEqual(server["Events.Attributes"], [[["key", "k1"], ["n", "3"], ["z.first", "no"]], []]);
  assert.deepEqual(server["Links.TraceId"], [
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "11111111111111111111111111111111",
  ]);
  assert.deepEqual(server["Links.SpanId"], ["00f067aa0ba902b7", "2222222222222222"]);
  assert.deepEqual(server["Links.TraceState"], ["lk=1", ""]);
  assert.deepEqual(server["Links.Attributes"], [[["link.kind", "follows"], ["weight", "0.5"]], []]);
  assert.deepEqual(server.ResourceAttributes, [
    ["deployment.environment", "test"],
    ["host.cores", "8"],
    ["service.name", "checkout"],
  ]);
  assert.deepEqual(pbRows.filter((r) => r.SpanName !== "GET /cart ☃").map((r) => r.SpanKind).sort(), [
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_CONSUMER",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_PRODUCER",
  ]);
  const root = pbRows.find((r) => r.SpanName === "root")!;
  assert.equal(root.ParentSpanId, "");
  assert.equal(root.ScopeName, "other-lib");
  assert.equal(root.Duration, "2");
  const rootAttrs = Object.fromEntries(root.SpanAttributes as [string, string][]);
  assert.equal(rootAttrs.blob, "AAEC+v8=");
  assert.equal(rootAttrs.obj, '{"a":"x","b":1,"nested":{"z":[1,"two",true,2.5]},"raw":"aGk="}');
  assert.equal(rootAttrs.mixed, '["s",1,null]');
  // The root span starts in the next hour: rows are partitioned by their own start time.
  const hours = new Set(pb.parts.map((p) => p.hour));
  assert.deepEqual(hours, new Set([Math.floor(1760738064 / 3600), Math.floor(1760741999 / 3600)]));
});

// ---- hand-built protobuf ----

function varint(n: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const tag = (field: number, wt: number): number[] => varint((field << 3) | wt);
const bytesField = (
  field: number,
  b: ArrayLike<number>,
): number[] => [...tag(field, 2), ...varint(b.length), ...Array.from(b)];
const strField = (field: number, s: string): number[] => bytesField(field, enc.encode(s));
const u64Field = (field: number, v: bigint): number[] => {
  const out = tag(field, 1);
  for (let i = 0n; i < 8n; i++) out.push(Number((v >> (i * 8n)) & 0xffn));
  return out;
};
const varintField = (field: number, v: number | bigint): number[] => [...tag(field, 0), ...varint(v)];
const fixed32Field = (
  field: number,
  v: number,
): number[] => [...tag(field, 5), v & 255, (v >> 8) & 255, (v >> 16) & 255, v >>> 24];
const kv = (key: string, s: string): number[] => [...strField(1, key), ...bytesField(2, strField(1, s))];
const attr = (field: number, key: string, s: string): number[] => bytesField(field, kv(key, s));

const TRACE_ID = Array.from({ length: 16 }, (_, i) => i + 1);
const SPAN_ID = [0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8];

/** An ExportTraceServiceRequest with one resource (service "svc"), one scope and the given spans. */
function request(...spans: number[][]): Uint8Array {
  const resource = attr(1, "service.name", "svc");
  const scope = [...strField(1, "lib"), ...strField(2, "9.9")];
  const scopeSpans = [
    ...bytesField(1, scope),
    ...spans.flatMap((s) => bytesField(2, s)),
    ...strField(3, "s-url"),
  ];
  const rs = [...bytesField(1, resource), ...bytesField(2, scopeSpans), ...strField(3, "r-url")];
  return Uint8Array.from(bytesField(1, rs));
}

function span(...fields: number[][]): number[] {
  return [...bytesField(1, TRACE_ID), ...bytesField(2, SPAN_ID), ...strField(5, "op"), ...fields.flat()];
}

Deno.test("decodeTracesProto() computes Duration exactly over 64 bits, and 0 when end < start", () => {
  const cases: [bigint, bigint, string][] = [
    [1n, 0xffffffffffffffffn, "18446744073709551614"],
    [0xffffffffn, 0x100000000n, "1"], // borrow across the word boundary
    [0x1_0000_0001n, 0x2_0000_0000n, "4294967295"],
    [1760738064624462123n, 1760738064624462123n, "0"],
    [1760738064624462124n, 1760738064624462123n, "0"],
    [0x2_0000_0000n, 0x1_ffff_ffffn, "0"],
    [9007199254740993n, 9007199254740995n, "2"], // beyond 2^53: a double would lose these
  ];
  const t = table(decodeTracesProto(request(...cases.map(([s, e]) => span(u64Field(7, s), u64Field(8, e))))));
  assert.deepEqual(t.map((r) => r.Duration), cases.map((c) => c[2]));
  assert.deepEqual(t.map((r) => r.Timestamp), cases.map((c) => c[0].toString()));
});

Deno.test("decodeTracesProto() keeps span, event and link attributes apart however they interleave on the wire", () => {
  const event = [
    ...u64Field(1, 5n),
    ...strField(2, "ev"),
    ...attr(3, "b", "1"),
    ...attr(3, "a", "2"),
    ...attr(3, "b", "3"),
  ];
  const link = [
    ...bytesField(1, TRACE_ID),
    ...bytesField(2, SPAN_ID),
    ...strField(3, "x=y"),
    ...attr(4, "l", "v"),
  ];
  const s = span(
    attr(9, "span.z", "z"),
    bytesField(11, event),
    attr(9, "span.a", "a"),
    bytesField(13, link),
    bytesField(11, [...strField(2, "ev2")]),
    attr(9, "span.m", "m"),
    bytesField(13, []),
    varintField(6, 4),
    bytesField(15, [...strField(2, "bad"), ...varintField(3, 2)]),
    fixed32Field(16, 0x301),
    varintField(10, 1),
    varintField(12, 2),
    varintField(14, 3),
  );
  const [r] = table(decodeTracesProto(request(s)));
  assert.deepEqual(r.SpanAttributes, [["span.a", "a"], ["span.m", "m"], ["span.z", "z"]]);
  assert.deepEqual(r["Events.Name"], ["ev", "ev2"]);
  assert.deepEqual(r["Events.Timestamp"], ["5", "0"]);
  assert.deepEqual(r["Events.Attributes"], [[["a", "2"], ["b", "3"]], []]); // sorted; the last "b" wins
  assert.deepEqual(r["Links.TraceId"], ["0102030405060708090a0b0c0d0e0f10", ""]);
  assert.deepEqual(r["Links.SpanId"], ["a1a2a3a4a5a6a7a8", ""]);
  assert.deepEqual(r["Links.TraceState"], ["x=y", ""]);
  assert.deepEqual(r["Links.Attributes"], [[["l", "v"]], []]);
  assert.equal(r.SpanKind, "SPAN_KIND_PRODUCER");
  assert.equal(r.StatusCode, "STATUS_CODE_ERROR");
  assert.equal(r.StatusMessage, "bad");
  assert.equal(r.ServiceName, "svc");
  assert.equal(r.ScopeName, "lib");
  assert.equal(r.ScopeVersion, "9.9");
});

Deno.test("decodeTracesProto() writes defaults for absent fields and all-zero ids as empty", () => {
  const zeros = [
    ...bytesField(1, new Array(16).fill(0)),
    ...bytesField(2, new Array(8).fill(0)),
    ...bytesField(4, new Array(8).fill(0)),
  ];
  const [r, empty] = table(decodeTracesProto(request(zeros, [])));
  for (const x of [r, empty]) {
    assert.equal(x.TraceId, "");
    assert.equal(x.SpanId, "");
    assert.equal(x.ParentSpanId, "");
    assert.equal(x.SpanKind, "SPAN_KIND_UNSPECIFIED");
    assert.equal(x.StatusCode, "STATUS_CODE_UNSET");
    assert.equal(x.StatusMessage, "");
    assert.equal(x.Duration, "0");
    assert.equal(x.Timestamp, "0");
    assert.deepEqual(x["Events.Name"], []);
    assert.deepEqual(x["Links.Attributes"], []);
  }
  assert.equal(decodeTracesProto(new Uint8Array(0)).length, 0);
  assert.equal(decodeRequest("traces", new Uint8Array(0), { format: "protobuf" }).records, 0);
});

Deno.test("decodeTracesProto() refuses bad spans with a DecodeError naming the field", () => {
  const prefix = "cannot decode traces request: field resourceSpans[0].scopeSpans[0].spans[0].";
  const cases: [number[], string][] = [
    [span(varintField(6, 6)), "kind: unknown value 6"],
    [span(varintField(6, -1)), "kind: unknown value -1"],
    [span(bytesField(15, varintField(3, 3))), "status.code: unknown value 3"],
    [[...bytesField(1, TRACE_ID.slice(1))], "traceId: must be 16 bytes, got 15"],
    [[...bytesField(2, [1, 2, 3])], "spanId: must be 8 bytes, got 3"],
    [span(bytesField(4, new Array(9).fill(1))), "parentSpanId: must be 8 bytes, got 9"],
    [span(bytesField(13, bytesField(1, [1]))), "links[0].traceId: must be 16 bytes, got 1"],
    [span(bytesField(13, []), bytesField(13, bytesField(2, [1]))), "links[1].spanId: must be 8 bytes, got 1"],
    [span(varintField(1, 3)), "traceId: wrong wire type varint (expected length-delimited)"],
    [span(varintField(7, 3)), "startTimeUnixNano: wrong wire type varint (expected fixed64)"],
    [span(u64Field(6, 1n)), "kind: wrong wire type fixed64 (expected varint)"],
    [span(varintField(16, 1)), "flags: wrong wire type varint (expected fixed32)"],
    [span(strField(12, "x")), "droppedEventsCount: wrong wire type length-delimited (expected varint)"],
    [span(varintField(11, 1)), "events: wrong wire type varint (expected length-delimited)"],
    [
      span(bytesField(11, varintField(1, 1))),
      "events[0].timeUnixNano: wrong wire type varint (expected fixed64)",
    ],
    [span(bytesField(11, bytesField(2, [0xff]))), "events[0].name: invalid UTF-8"],
    [
      span(
        bytesField(11, [
          ...attr(3, "k", "v"),
          ...bytesField(3, [...strField(1, "q"), ...bytesField(2, varintField(4, 1))]),
        ]),
      ),
      'events[0].attributes[1]["q"].value.doubleValue: wrong wire type varint (expected fixed64)',
    ],
    [
      span(bytesField(13, [...attr(4, "k", "v"), ...bytesField(4, bytesField(1, [0xc0, 0x80]))])),
      "links[0].attributes[1].key: invalid UTF-8",
    ],
    [span(bytesField(15, bytesField(2, [0xed, 0xa0, 0x80]))), "status.message: invalid UTF-8"],
    [[...bytesField(5, [0xe2, 0x82])], "name: invalid UTF-8"],
    [span(bytesField(3, [0x80])), "traceState: invalid UTF-8"],
    [
      span(bytesField(9, bytesField(2, bytesField(1, [0xff])))),
      'attributes[0][""].value.stringValue: invalid UTF-8',
    ],
  ];
  for (const [s, want] of cases) {
    const e = decodeError(() => decodeRequest("traces", request(s), { format: "protobuf" }));
    assert.equal(e.message, prefix + want);
  }
});

Deno.test("truncated or garbled protobuf input only ever raises DecodeError", () => {
  const good = read("traces.pb");
  let failures = 0;
  for (let n = 0; n < good.length; n += n < 400 ? 1 : 7) {
    try {
      decodeRequest("traces", good.subarray(0, n), { format: "protobuf" });
    } catch (e) {
      assert.ok(e instanceof DecodeError, `prefix ${n}: ${e}`);
      assert.match(e.message, /^cannot decode traces request: /);
      failures++;
    }
  }
  assert.ok(failures > 100);
  let seed = 12345;
  const rand = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
  for (let i = 0; i < 1500; i++) {
    const bad = good.slice();
    const flips = 1 + Math.floor(rand() * 4);
    for (let f = 0; f < flips; f++) bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
    try {
      const rows = decodeTracesProto(bad);
      table(rows); // a garbled but decodable body still yields well-formed columns
    } catch (e) {
      assert.ok(e instanceof DecodeError, `garbled #${i}: ${e}`);
    }
  }
  for (let i = 0; i < 300; i++) {
    const junk = Uint8Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256));
    try {
      decodeTracesProto(junk);
    } catch (e) {
      assert.ok(e instanceof DecodeError, `junk #${i}: ${e}`);
    }
  }
});

// ---- hand-built JSON ----

function jsonRequest(spans: unknown[]): Uint8Array {
  return enc.encode(JSON.stringify({
    resourceSpans: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "svc" } }] },
      scopeSpans: [{ scope: { name: "lib", version: "1" }, spans }],
    }],
  }));
}

Deno.test("decodeTracesJson() takes enums as numbers or names, ids as hex (any case) or base64, and snake_case keys", () => {
  const spans = [
    {
      traceId: "0102030405060708090A0B0C0D0E0F10",
      spanId: "oaKjpKWmp6g=",
      kind: 3,
      startTimeUnixNano: 1000,
      endTimeUnixNano: "2500",
      status: { code: 1 },
      events: [{ timeUnixNano: "7", name: "e", attributes: [{ key: "n", value: { intValue: 5 } }] }],
      links: [{ traceId: "AQIDBAUGBwgJCgsMDQ4PEA==", spanId: "a1a2a3a4a5a6a7a8", traceState: "k=v" }],
    },
    {
      trace_id: "0102030405060708090a0b0c0d0e0f10",
      span_id: "a1a2a3a4a5a6a7a8",
      parent_span_id: "0000000000000000",
      trace_state: "a=b",
      name: "snake",
      kind: "SPAN_KIND_CONSUMER",
      start_time_unix_nano: "18446744073709551615",
      end_time_unix_nano: "1",
      status: { code: "STATUS_CODE_ERROR", message: "m" },
      events: [{ time_unix_nano: "9", name: "x" }],
      links: [{
        trace_id: "0102030405060708090a0b0c0d0e0f10",
        span_id: "a1a2a3a4a5a6a7a8",
        trace_state: "q=r",
      }],
      someUnknownField: { anything: [1, 2] },
    },
  ];
  const [a, b] = table(decodeTracesJson([JSON.parse(new TextDecoder().decode(jsonRequest(spans)))]));
  assert.equal(a.TraceId, "0102030405060708090a0b0c0d0e0f10");
  assert.equal(a.SpanId, "a1a2a3a4a5a6a7a8");
  assert.equal(a.SpanKind, "SPAN_KIND_CLIENT");
  assert.equal(a.Duration, "1500");
  assert.equal(a.StatusCode, "STATUS_CODE_OK");
  assert.deepEqual(a["Events.Attributes"], [[["n", "5"]]]);
  assert.deepEqual(a["Links.TraceId"], ["0102030405060708090a0b0c0d0e0f10"]);
  assert.deepEqual(a["Links.TraceState"], ["k=v"]);
  assert.equal(b.TraceId, "0102030405060708090a0b0c0d0e0f10");
  assert.equal(b.ParentSpanId, "");
  assert.equal(b.TraceState, "a=b");
  assert.equal(b.SpanKind, "SPAN_KIND_CONSUMER");
  assert.equal(b.Timestamp, "18446744073709551615");
  assert.equal(b.Duration, "0");
  assert.equal(b.StatusCode, "STATUS_CODE_ERROR");
  assert.equal(b.StatusMessage, "m");
  assert.deepEqual(b["Events.Timestamp"], ["9"]);
  assert.deepEqual(b["Links.SpanId"], ["a1a2a3a4a5a6a7a8"]);
  assert.deepEqual(b["Links.TraceState"], ["q=r"]);
  assert.equal(decodeTracesJson([{}]).length, 0);
  assert.equal(decodeTracesJson([{ resourceSpans: [] }]).length, 0);
});

Deno.test("the same spans as protobuf and as JSON give identical columns", () => {
  const pb = request(
    span(
      bytesField(4, SPAN_ID),
      strField(3, "t=s"),
      varintField(6, 2),
      u64Field(7, 1760738064624462123n),
      u64Field(8, 1760738064624462999n),
      attr(9, "k", "v"),
      bytesField(11, [...u64Field(1, 1760738064624462500n), ...strField(2, "ev"), ...attr(3, "ek", "ev")]),
      bytesField(13, [...bytesField(1, TRACE_ID), ...bytesField(2, SPAN_ID), ...attr(4, "lk", "lv")]),
      bytesField(15, [...strField(2, "ok"), ...varintField(3, 1)]),
    ),
  );
  const hexTrace = "0102030405060708090a0b0c0d0e0f10", hexSpan = "a1a2a3a4a5a6a7a8";
  const json = enc.encode(JSON.stringify({
    resourceSpans: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "svc" } }] },
      scopeSpans: [{
        scope: { name: "lib", version: "9.9" },
        spans: [{
          traceId: hexTrace,
          spanId: hexSpan,
          parentSpanId: hexSpan,
          traceState: "t=s",
          name: "op",
          kind: "SPAN_KIND_SERVER",
          startTimeUnixNano: "1760738064624462123",
          endTimeUnixNano: "1760738064624462999",
          attributes: [{ key: "k", value: { stringValue: "v" } }],
          events: [{
            timeUnixNano: "1760738064624462500",
            name: "ev",
            attributes: [{ key: "ek", value: { stringValue: "ev" } }],
          }],
          links: [{
            traceId: hexTrace,
            spanId: hexSpan,
            attributes: [{ key: "lk", value: { stringValue: "lv" } }],
          }],
          status: { message: "ok", code: "STATUS_CODE_OK" },
        }],
        schemaUrl: "s-url",
      }],
      schemaUrl: "r-url",
    }],
  }));
  const a = table(decode(pb, "protobuf")), b = table(decode(json, "json"));
  assert.deepEqual(a, b);
  assert.equal(a[0].Duration, "876");
});

Deno.test("decodeTracesJson() refuses bad spans with a DecodeError naming the field", () => {
  const prefix = "cannot decode traces request: field resourceSpans[0].scopeSpans[0].spans[0].";
  const cases: [unknown, string][] = [
    [{ kind: 6 }, "kind: unknown value 6"],
    [{ kind: "SPAN_KIND_SOMETHING" }, 'kind: unknown value "SPAN_KIND_SOMETHING"'],
    [{ kind: "STATUS_CODE_OK" }, 'kind: unknown value "STATUS_CODE_OK"'],
    [{ status: { code: 3 } }, "status.code: unknown value 3"],
    [{ status: { code: "STATUS_CODE_BAD" } }, 'status.code: unknown value "STATUS_CODE_BAD"'],
    [{ status: { message: 5 } }, "status.message: expected a string"],
    [{ status: "ok" }, "status: expected an object"],
    [{ spanId: "a1a2a3a4a5a6a7" }, 'spanId: "a1a2a3a4a5a6a7" is neither 16 hex digits nor base64 of 8 bytes'],
    [{ parentSpanId: 12 }, "parentSpanId: expected a hex or base64 string"],
    [{ startTimeUnixNano: "-1" }, 'startTimeUnixNano: expected an unsigned 64-bit integer, got "-1"'],
    [
      { endTimeUnixNano: "18446744073709551616" },
      "endTimeUnixNano: 18446744073709551616 does not fit in 64 bits",
    ],
    [{ endTimeUnixNano: 1.5 }, "endTimeUnixNano: expected a non-negative integer, got 1.5"],
    [{ name: 7 }, "name: expected a string"],
    [{ flags: -1 }, "flags: -1 is out of range"],
    [{ events: {} }, "events: expected an array"],
    [{ events: [null] }, "events[0]: expected an object"],
    [
      { events: [{}, { timeUnixNano: "x" }] },
      'events[1].timeUnixNano: expected an unsigned 64-bit integer, got "x"',
    ],
    [
      { events: [{ attributes: [{ key: "k", value: { intValue: "1.5" } }] }] },
      'events[0].attributes[0].value.intValue: expected a 64-bit integer, got "1.5"',
    ],
    [
      { links: [{ traceId: "zz" }] },
      'links[0].traceId: "zz" is neither 32 hex digits nor base64 of 16 bytes',
    ],
    [{ links: [{}, {}, { attributes: [{ value: {} }] }] }, "links[2].attributes[0].key: expected a string"],
    [{ links: [7] }, "links[0]: expected an object"],
    [{ attributes: "x" }, "attributes: expected an array"],
  ];
  for (const [s, want] of cases) {
    const e = decodeError(() => decodeRequest("traces", jsonRequest([s]), { format: "json" }));
    assert.equal(e.message, prefix + want);
  }
});

Deno.test("malformed or oddly shaped JSON only ever raises DecodeError", () => {
  const bodies: unknown[] = [
    [],
    "x",
    null,
    { resourceSpans: {} },
    { resourceSpans: [null] },
    { resourceSpans: [{ scopeSpans: [7] }] },
    { resourceSpans: [{ scopeSpans: [{ spans: "x" }] }] },
    { resourceSpans: [{ scopeSpans: [{ spans: [[]] }] }] },
    { resourceSpans: [{ resource: [] }] },
    { resourceSpans: [{ resource: { attributes: [null] } }] },
    {
      resourceSpans: [{
        scopeSpans: [{ spans: [{ attributes: [{ key: "k", value: { kvlistValue: { values: [null] } } }] }] }],
      }],
    },
    {
      resourceSpans: [{
        scopeSpans: [{ spans: [{ attributes: [{ key: "k", value: { arrayValue: { values: [5] } } }] }] }],
      }],
    },
    { resourceSpans: [{ scopeSpans: [{ spans: [{ startTimeUnixNano: 1e20 }] }] }] },
  ];
  for (const body of bodies) {
    const e = decodeError(() =>
      decodeRequest("traces", enc.encode(JSON.stringify(body)), { format: "json" })
    );
    assert.match(e.message, /^cannot decode traces request: /, JSON.stringify(body));
  }
  const text = new TextDecoder().decode(read("trace.json"));
  for (let n = 0; n < text.length; n += 37) {
    decodeError(() => decodeRequest("traces", enc.encode(text.slice(0, n)), { format: "json" }));
  }
});
