/**
 * The TypeScript Parquet writer against two real readers and the other writer: every file it writes
 * must read back (DuckDB, and parquet-wasm's arrow-rs reader) exactly like the file parquet-wasm writes
 * from the same rows, with the same Parquet schema, and its statistics must agree with the data.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as zlib from "node:zlib";
import { tableFromIPC } from "apache-arrow";
import { readParquet } from "parquet-wasm/esm";
import { encodeProtobuf, generateLogs, generateMetrics, generateTraces } from "../../../bench/data.ts";
import { openDuckDb } from "../../../tests/support/duckdb.ts";
import { decodeRequest } from "../convert.ts";
import type { Column, KeyedMapColumn, SharedMapColumn, SharedStrColumn } from "../table/columns.ts";
import { InternalError } from "../errors.ts";
import { initParquet, rowsToParquet, rowsToParquetWasm } from "./parquet.ts";
import { ParquetFileWriter, writeParquetFile, type WriterOptions } from "./parquet_writer.ts";
import { gatherRange, type Rows, sortBatch } from "../table/rows.ts";

initParquet(readFileSync(fileURLToPath(import.meta.resolve("parquet-wasm/esm/parquet_wasm_bg.wasm"))));
const zstd: WriterOptions = {
  codec: 6,
  compress: (page) => zlib.zstdCompressSync(page),
  metadata: [["otlp2parquet", "{}"]],
};
const dir = mkdtempSync(join(tmpdir(), "pq-writer-"));
const db = await openDuckDb();
let fileNo = 0;

function save(bytes: Uint8Array): string {
  const path = join(dir, `${fileNo++}.parquet`);
  writeFileSync(path, bytes);
  return path;
}

/** Rows as arrow-rs reads them, as JSON (64-bit integers as strings). */
function arrowRows(bytes: Uint8Array): string {
  const table = tableFromIPC(readParquet(bytes).intoIPCStream());
  return JSON.stringify(
    table.toArray().map((r) => r.toJSON()),
    (_, v) => typeof v === "bigint" ? String(v) : v,
  );
}

async function duckRows(path: string): Promise<string> {
  return JSON.stringify(await db.rows(`SELECT * FROM read_parquet('${path}')`));
}

async function parquetSchema(path: string): Promise<string> {
  return JSON.stringify(
    await db.rows(
      `SELECT name, type, repetition_type, num_children, converted_type, logical_type FROM parquet_schema('${path}')`,
    ),
  );
}

/** Asserts that the TypeScript file reads back like parquet-wasm's file of the same rows. */
async function assertSameAsWasm(rows: Rows, ours: Uint8Array): Promise<void> {
  // snappy has no registered compressor, so this goes through parquet-wasm.
  const theirs = rowsToParquet(rows, { compression: "snappy" });
  const a = save(ours), b = save(theirs);
  assert.equal(await parquetSchema(a), await parquetSchema(b), `${rows.def.name}: Parquet schema`);
  assert.equal(await duckRows(a), await duckRows(b), `${rows.def.name}: rows as DuckDB reads them`);
  assert.equal(arrowRows(ours), arrowRows(theirs), `${rows.def.name}: rows as arrow-rs reads them`);
}

function decode(
  signal: "logs" | "traces" | "metrics",
  body: Uint8Array,
  format: "protobuf" | "json",
): Rows[] {
  return decodeRequest(signal, body, { format }).tables.filter((t) => t.length > 0);
}

function all(rows: Rows): Uint32Array {
  return Uint32Array.from({ length: rows.length }, (_, i) => i);
}

Deno.test("ParquetFileWriter writes realistic logs, spans and metrics as parquet-wasm does", async () => {
  const cases = [
    ...decode("logs", encodeProtobuf("logs", generateLogs(3000, { seed: 7 })), "protobuf"),
    ...decode("traces", encodeProtobuf("traces", generateTraces(3000, { seed: 8 })), "protobuf"),
    ...decode("metrics", encodeProtobuf("metrics", generateMetrics(3000, { seed: 9 })), "protobuf"),
  ];
  assert.equal(cases.length, 5, "logs, traces, gauge, sum, histogram");
  for (const rows of cases) {
    const sorted = gatherRange(sortBatch([{ rows, indices: all(rows) }]));
    await assertSameAsWasm(sorted, writeParquetFile(sorted, zstd));
  }
});

Deno.test("ParquetFileWriter writes the shared test data of every table as parquet-wasm does", async () => {
  const data = fileURLToPath(new URL("../../../../shared/testdata/otlp2parquet-rust/", import.meta.url));
  const tables = new Set<string>();
  for (
    const [file, signal] of [
      ["logs.pb", "logs"],
      ["traces.pb", "traces"],
      ["metrics_mixed.pb", "metrics"],
      ["metrics_exponential_histogram.pb", "metrics"],
      ["metrics_summary.pb", "metrics"],
    ] as const
  ) {
    for (const rows of decode(signal, readFileSync(join(data, file)), "protobuf")) {
      tables.add(rows.def.name);
      await assertSameAsWasm(rows, writeParquetFile(rows, zstd));
    }
  }
  assert.equal(tables.size, 7);
});

const enc = new TextEncoder();

/** Edge values: empty maps and lists, maps inside lists, odd doubles, extreme integers, Unicode. */
function edgeMetrics(): Uint8Array {
  const point = (i: number) => ({
    timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i)),
    startTimeUnixNano: "0",
    asDouble: [0, -0, NaN, Infinity, -Infinity, 1e308, -5e-324][i % 7],
    attributes: i % 3 ? [{ key: `k${i % 5}`, value: { stringValue: "ü😀".repeat(i % 4) } }] : [],
    flags: i % 2,
    exemplars: i % 4 === 0 ? [] : Array.from({ length: i % 4 }, (_, e) => ({
      timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(e)),
      asDouble: e - 1,
      spanId: "0102030405060708",
      traceId: "0102030405060708090a0b0c0d0e0f10",
      filteredAttributes: Array.from({ length: (i + e) % 3 }, (_, a) => ({
        key: `f${a}`,
        value: { intValue: String(-(2n ** 63n) + BigInt(a)) },
      })),
    })),
  });
  const histogram = (i: number) => ({
    timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i)),
    count: "18446744073709551615",
    sum: -1.5,
    bucketCounts: i % 3 ? ["18446744073709551615", "0", "1"] : [],
    explicitBounds: i % 3 ? [-0, 1] : [],
    min: -0,
    max: 0,
  });
  return enc.encode(JSON.stringify({
    resourceMetrics: [{
      resource: { attributes: [] },
      scopeMetrics: [{
        scope: { name: "" },
        metrics: [
          { name: "g", gauge: { dataPoints: Array.from({ length: 40 }, (_, i) => point(i)) } },
          {
            name: "h",
            histogram: {
              aggregationTemporality: 1,
              dataPoints: Array.from({ length: 9 }, (_, i) => histogram(i)),
            },
          },
          {
            name: "e",
            exponentialHistogram: {
              aggregationTemporality: 2,
              dataPoints: [{
                timeUnixNano: "1",
                count: "3",
                scale: -3,
                zeroCount: "1",
                positive: { offset: -2, bucketCounts: ["1", "2"] },
                negative: {},
              }],
            },
          },
        ],
      }],
    }],
  }));
}

Deno.test("ParquetFileWriter writes empty maps and lists, maps in lists, and extreme values as parquet-wasm does", async () => {
  const tables = decode("metrics", edgeMetrics(), "json");
  assert.equal(tables.length, 3);
  for (const rows of tables) await assertSameAsWasm(rows, writeParquetFile(rows, zstd));
});

Deno.test("ParquetFileWriter cuts pages, row groups and dictionaries at their limits and reads back whole", async () => {
  // 50,000 rows in row groups of 12,000: pages of 20,000 rows cannot form; a body of 1.5 MiB needs its own
  // page; unique bodies overflow the dictionary (plain fallback) while service names keep theirs.
  const records = Array.from({ length: 50_000 }, (_, i) => ({
    timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i)),
    body: {
      stringValue: i === 777 ? "x".repeat(1.5 * 1024 * 1024) : `unique body ${i} ${"y".repeat(i % 50)}`,
    },
    attributes: i % 2 ? [] : [{ key: "i", value: { intValue: String(i % 7) } }],
  }));
  const body = enc.encode(JSON.stringify({
    resourceLogs: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "svc" } }] },
      scopeLogs: [{ logRecords: records }],
    }],
  }));
  const [rows] = decode("logs", body, "json");
  const bytes = writeParquetFile(rows, { ...zstd, rowGroupRows: 12_000 });
  const path = save(bytes);
  const groups = await db.rows(
    `SELECT row_group_id, row_group_num_rows, path_in_schema, encodings FROM parquet_metadata('${path}')`,
  );
  assert.deepEqual([...new Set(groups.map((g) => Number(g.row_group_num_rows)))], [12_000, 2_000]);
  const encodingsOf = (column: string) =>
    new Set(groups.filter((g) => g.path_in_schema === column).map((g) => g.encodings));
  assert.deepEqual(encodingsOf("Body"), new Set(["PLAIN, RLE"]), "bodies fell back to plain values");
  assert.deepEqual(encodingsOf("ServiceName"), new Set(["PLAIN, RLE, RLE_DICTIONARY"]));
  await assertSameAsWasm(rows, bytes);
  const [long] = await db.rows(
    `SELECT length(Body) AS n FROM read_parquet('${path}') WHERE length(Body) > 1000`,
  );
  assert.equal(Number(long.n), 1.5 * 1024 * 1024);
});

Deno.test("ParquetFileWriter reads a batch through its time order exactly like a gathered copy", () => {
  // Two requests whose times interleave: the batch order alternates between them row by row.
  const a = decode("logs", encodeProtobuf("logs", generateLogs(2500, { seed: 1 })), "protobuf")[0];
  const b = decode("logs", encodeProtobuf("logs", generateLogs(2500, { seed: 2 })), "protobuf")[0];
  const order = sortBatch([{ rows: a, indices: all(a) }, { rows: b, indices: all(b) }]);
  const writer = new ParquetFileWriter(a.def, { ...zstd, rowGroupRows: 1500 });
  writer.writeOrdered({ sources: [a, b], from: order.from, rows: order.rows });
  const direct = writer.finish();
  const gathered = writeParquetFile(gatherRange(order), { ...zstd, rowGroupRows: 1500 });
  assert.deepEqual(direct, gathered, "identical bytes");
  assert.ok(new Set(order.from.subarray(0, 50)).size === 2, "the order interleaves the sources");
});

Deno.test("ParquetFileWriter statistics bound the data, so readers that skip row groups by them stay right", async () => {
  const [rows] = decode("traces", encodeProtobuf("traces", generateTraces(4000, { seed: 3 })), "protobuf");
  const sorted = gatherRange(sortBatch([{ rows, indices: all(rows) }]));
  const path = save(writeParquetFile(sorted, { ...zstd, rowGroupRows: 1000 }));
  const stats = await db.rows(
    `SELECT row_group_id AS g, path_in_schema AS c, stats_min_value AS lo, stats_max_value AS hi, stats_null_count AS nulls
     FROM parquet_metadata('${path}') WHERE path_in_schema IN ('Timestamp', 'Duration', 'ServiceName', 'SpanName')`,
  );
  const actual = await db.rows(
    `SELECT (file_row_number // 1000)::INT AS g, min(Timestamp)::VARCHAR AS t0, max(Timestamp)::VARCHAR AS t1,
            min(Duration)::VARCHAR AS d0, max(Duration)::VARCHAR AS d1, min(ServiceName) AS s0, max(ServiceName) AS s1,
            min(SpanName) AS n0, max(SpanName) AS n1
     FROM read_parquet('${path}', file_row_number = true) GROUP BY ALL ORDER BY g`,
  );
  assert.equal(actual.length, 4);
  for (const row of actual) {
    const of = (c: string) => stats.find((s) => Number(s.g) === row.g && s.c === c)!;
    assert.deepEqual([of("Duration").lo, of("Duration").hi], [row.d0, row.d1]);
    assert.deepEqual([of("ServiceName").lo, of("ServiceName").hi], [row.s0, row.s1]);
    assert.deepEqual([of("SpanName").lo, of("SpanName").hi], [row.n0, row.n1]);
    assert.equal(Number(of("Timestamp").nulls), 0);
  }
  // A filter on time returns the same rows whether or not the reader trusts the statistics.
  const cut = actual[2].t0;
  const [filtered] = await db.rows(
    `SELECT count(*)::INT AS n FROM read_parquet('${path}') WHERE Timestamp >= '${cut}'`,
  );
  const [scanned] = await db.rows(
    `SELECT count(*)::INT AS n FROM (SELECT Timestamp::VARCHAR AS t FROM read_parquet('${path}')) WHERE t >= '${cut}'`,
  );
  assert.equal(filtered.n, scanned.n);
});

Deno.test("ParquetFileWriter writes identical bytes for identical rows, with or without compression", () => {
  const [rows] = decode("logs", encodeProtobuf("logs", generateLogs(500, { seed: 5 })), "protobuf");
  assert.deepEqual(writeParquetFile(rows, zstd), writeParquetFile(rows, zstd));
  const plain = writeParquetFile(rows);
  assert.equal(arrowRows(plain), arrowRows(writeParquetFile(rows, zstd)));
  assert.throws(() => new ParquetFileWriter(rows.def, { codec: 6 }), TypeError);
});

Deno.test("both Parquet writers refuse rows whose dictionary index is out of range: an InternalError, no bytes", () => {
  const span = (kind: number) => ({
    traceId: "5b8efff798038103d269b633813fc60c",
    spanId: "eee19b7ec3c1b174",
    name: "s",
    kind,
    startTimeUnixNano: "1700000000000000000",
    endTimeUnixNano: "1700000000000000001",
    attributes: [{ key: "k", value: { stringValue: "v" } }],
  });
  const body = new TextEncoder().encode(JSON.stringify({
    resourceSpans: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "svc" } }] },
      scopeSpans: [{ spans: [span(1), span(2)] }],
    }],
  }));
  // Each case corrupts one shared or keyed column of freshly decoded rows, as a bug upstream could.
  const cases: [string, (rows: Rows) => void][] = [
    ["SpanKind", (rows) => (column(rows, "SpanKind") as SharedStrColumn).ids[1] = 2],
    ["ResourceAttributes", (rows) => (column(rows, "ResourceAttributes") as SharedMapColumn).ids[0] = 7],
    ["SpanAttributes", (rows) => (column(rows, "SpanAttributes") as KeyedMapColumn).keyLists.ids[1] = 5],
  ];
  for (const [name, corrupt] of cases) {
    const rows = decodeRequest("traces", body, { format: "json" }).tables[0];
    // Sound rows write with both writers.
    assert.ok(writeParquetFile(rows, zstd).length > 0);
    corrupt(rows);
    let out: Uint8Array | undefined;
    assert.throws(() => out = writeParquetFile(rows, zstd), InternalError, name);
    assert.throws(() => out = rowsToParquetWasm(rows), InternalError, name);
    assert.equal(out, undefined);
  }
});

function column(rows: Rows, name: string): Column {
  return rows.columns[rows.def.columns.findIndex((c) => c.name === name)];
}

Deno.test("cleanup", () => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});
