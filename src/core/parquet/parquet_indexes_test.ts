/**
 * The indexes the TypeScript writer puts in a file, checked from both ends: decoded from the bytes with
 * an independent Thrift reader (`ColumnChunk.file_offset` 0; every chunk's OffsetIndex points at its data
 * pages; every ColumnIndex bound holds for the rows of its page), and used by two real readers, DuckDB
 * and ClickHouse (chDB), whose filters on ids, time windows and long strings (bloom filters, page index,
 * truncated statistics) must still return every matching row: no false negatives.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as zlib from "node:zlib";
import { encodeProtobuf, generateTraces } from "../../../bench/data.ts";
import { openClickHouse, sqlString } from "../../../tests/support/clickhouse.ts";
import { openDuckDb } from "../../../tests/support/duckdb.ts";
import {
  field,
  parquetFooter,
  ThriftReader,
  type ThriftStruct,
} from "../../../tests/support/thrift_reader.ts";
import { decodeRequest } from "../convert.ts";
import { initParquet, rowsToParquet } from "./parquet.ts";
import { writeParquetFile, type WriterOptions } from "./parquet_writer.ts";
import { gatherRange, type Rows, sortBatch } from "../table/rows.ts";

const options: WriterOptions = {
  codec: 6,
  compress: (page) => zlib.zstdCompressSync(page),
  rowGroupRows: 4000,
  pageRows: 500,
};
const dir = mkdtempSync(join(tmpdir(), "pq-indexes-"));
const db = await openDuckDb();
const ch = openClickHouse();
const enc = new TextEncoder();

function sorted(rows: Rows): Rows {
  return gatherRange(sortBatch([{ rows, indices: Uint32Array.from({ length: rows.length }, (_, i) => i) }]));
}

// 12,000 spans: three row groups of 4,000 rows, pages of 500 rows.
const traceRows = sorted(
  decodeRequest("traces", encodeProtobuf("traces", generateTraces(12_000, { seed: 11 })), {
    format: "protobuf",
  })
    .tables[0],
);
const tracesBytes = writeParquetFile(traceRows, options);
const tracesPath = join(dir, "traces.parquet");
writeFileSync(tracesPath, tracesBytes);

/**
 * 3,000 log records whose bodies pass 64 bytes and share long prefixes, so their bounds are truncated:
 * bodies differ only after byte 64, some with multi-byte characters across the cut, some at U+FFFF.
 */
function longBody(i: number): string {
  const prefix = "GET /api/v1/orders/checkout/confirm?session=abcdefghijklmnopqrstuv-";
  const tails = ["é", "😀", "\uffff", "z", "\u007f"];
  return `${prefix}${tails[i % tails.length]}${String(i % 997).padStart(4, "0")}${"·".repeat(i % 40)}`;
}
const logsRows = sorted(
  decodeRequest(
    "logs",
    enc.encode(JSON.stringify({
      resourceLogs: [{
        resource: { attributes: [{ key: "service.name", value: { stringValue: "svc" } }] },
        scopeLogs: [{
          logRecords: Array.from({ length: 3000 }, (_, i) => ({
            timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n),
            body: { stringValue: longBody(i) },
            traceId: (i % 500 + 1).toString(16).padStart(32, "0"),
            spanId: (i + 1).toString(16).padStart(16, "0"),
          })),
        }],
      }],
    })),
    { format: "json" },
  ).tables[0],
);
const logsBytes = writeParquetFile(logsRows, { ...options, rowGroupRows: 1000, pageRows: 100 });
const logsPath = join(dir, "logs.parquet");
writeFileSync(logsPath, logsBytes);

interface Chunk {
  group: number;
  path: string;
  chunk: ThriftStruct;
  meta: ThriftStruct;
  groupRows: number;
  groupFirstRow: number;
}

function chunksOf(file: Uint8Array): Chunk[] {
  const footer = parquetFooter(file);
  const out: Chunk[] = [];
  let first = 0;
  field<ThriftStruct[]>(footer, 4).forEach((rg, group) => {
    const groupRows = Number(field<bigint>(rg, 3));
    for (const chunk of field<ThriftStruct[]>(rg, 1)) {
      const meta = field<ThriftStruct>(chunk, 3);
      const path = field<Uint8Array[]>(meta, 3).map((p) => new TextDecoder().decode(p)).join(".");
      out.push({ group, path, chunk, meta, groupRows, groupFirstRow: first });
    }
    first += groupRows;
  });
  return out;
}

interface Page {
  offset: number;
  size: number;
  firstRow: number;
}

function offsetIndex(file: Uint8Array, c: Chunk): Page[] {
  const at = Number(field<bigint>(c.chunk, 4));
  const index = new ThriftReader(file, at).struct();
  return field<ThriftStruct[]>(index, 1).map((p) => ({
    offset: Number(field<bigint>(p, 1)),
    size: field<number>(p, 2),
    firstRow: Number(field<bigint>(p, 3)),
  }));
}

function columnIndex(file: Uint8Array, c: Chunk): ThriftStruct {
  return new ThriftReader(file, Number(field<bigint>(c.chunk, 6))).struct();
}

for (const [name, file] of [["traces", tracesBytes], ["logs", logsBytes]] as const) {
  Deno.test(`${name}: every chunk has file_offset 0 and an OffsetIndex pointing at exactly its data pages`, () => {
    const chunks = chunksOf(file);
    assert.ok(chunks.length > 20);
    for (const c of chunks) {
      assert.equal(field<bigint>(c.chunk, 2), 0n, `${c.path}: file_offset`);
      assert.ok(c.chunk.has(4) && c.chunk.has(5), `${c.path}: offset index`);
      const pages = offsetIndex(file, c);
      assert.equal(pages[0].offset, Number(field<bigint>(c.meta, 9)), "first page at data_page_offset");
      assert.equal(pages[0].firstRow, 0);
      let values = 0;
      pages.forEach((p, k) => {
        const header = new ThriftReader(file, p.offset);
        const h = header.struct();
        assert.equal(field<number>(h, 1), 0, `${c.path} page ${k} is a DATA_PAGE`);
        assert.equal(header.pos - p.offset + field<number>(h, 3), p.size, "header + compressed body");
        if (k > 0) {
          assert.equal(p.offset, pages[k - 1].offset + pages[k - 1].size, "pages follow one another");
          assert.ok(p.firstRow > pages[k - 1].firstRow && p.firstRow < c.groupRows);
        }
        values += field<number>(field<ThriftStruct>(h, 5), 1);
      });
      assert.equal(values, Number(field<bigint>(c.meta, 5)), `${c.path}: the pages hold all values`);
    }
    // Pages of 500 rows (logs: 100) in every chunk of a full row group.
    const ts = chunks.filter((c) => c.path === "Timestamp");
    for (const c of ts) {
      assert.equal(offsetIndex(file, c).length, Math.ceil(c.groupRows / (name === "logs" ? 100 : 500)));
    }
  });
}

/** Decodes a bound as DuckDB shows the column: strings as text, times as microseconds, integers as decimal. */
function decodeBound(kind: "string" | "time" | "uint", b: Uint8Array): string {
  if (kind === "string") return new TextDecoder().decode(b);
  const v = new DataView(b.buffer, b.byteOffset, 8);
  return kind === "time" ? String(v.getBigInt64(0, true) / 1000n) : String(v.getBigUint64(0, true));
}

/** Checks every page bound of `column` against the rows of that page as DuckDB reads them. */
async function assertColumnIndex(
  path: string,
  file: Uint8Array,
  column: string,
  kind: "string" | "time" | "uint",
) {
  const expr = kind === "time" ? `epoch_us("${column}")::VARCHAR` : `"${column}"::VARCHAR`;
  const values = (await db.rows(
    `SELECT ${expr} AS v FROM read_parquet('${path}', file_row_number = true) ORDER BY file_row_number`,
  )).map((r) => r.v as string);
  const cmp = kind === "string"
    ? (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))
    : (a: string, b: string) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);
  let checked = 0;
  for (const c of chunksOf(file).filter((c) => c.path === column)) {
    const pages = offsetIndex(file, c), ci = columnIndex(file, c);
    const nullPages = field<boolean[]>(ci, 1),
      mins = field<Uint8Array[]>(ci, 2),
      maxes = field<Uint8Array[]>(ci, 3);
    assert.equal(mins.length, pages.length);
    pages.forEach((p, k) => {
      const end = k + 1 < pages.length ? pages[k + 1].firstRow : c.groupRows;
      const rows = values.slice(c.groupFirstRow + p.firstRow, c.groupFirstRow + end).sort(cmp);
      assert.equal(nullPages[k], false);
      const lo = decodeBound(kind, mins[k]), hi = decodeBound(kind, maxes[k]);
      const first = rows[0], last = rows[rows.length - 1];
      assert.ok(cmp(lo, first) <= 0, `${column} page ${k}: min ${lo} > ${first}`);
      assert.ok(cmp(hi, last) >= 0, `${column} page ${k}: max ${hi} < ${last}`);
      if (kind !== "string" || Buffer.byteLength(first) <= 64) assert.equal(lo, first, "exact min");
      if (kind !== "string" || Buffer.byteLength(last) <= 64) assert.equal(hi, last, "exact max");
      if (kind === "string") assert.ok(mins[k].length <= 64 && maxes[k].length <= 64);
      checked++;
    });
    // Sorted by time: the time pages ascend, and the index says so.
    if (column === "Timestamp") assert.equal(field<number>(ci, 4), 1, "ASCENDING");
  }
  assert.ok(checked >= 8, `${column}: ${checked} pages`);
}

Deno.test("every ColumnIndex bound holds for the rows of its page (exact unless a long string was cut)", async () => {
  for (const column of ["TraceId", "SpanId", "ServiceName", "SpanName"]) {
    await assertColumnIndex(tracesPath, tracesBytes, column, "string");
  }
  await assertColumnIndex(tracesPath, tracesBytes, "Timestamp", "time");
  await assertColumnIndex(tracesPath, tracesBytes, "Duration", "uint");
  await assertColumnIndex(logsPath, logsBytes, "Body", "string");
  await assertColumnIndex(logsPath, logsBytes, "Timestamp", "time");
});

Deno.test("long strings get truncated chunk statistics marked inexact; short ones stay exact", () => {
  for (const c of chunksOf(logsBytes)) {
    const st = field<ThriftStruct>(c.meta, 12);
    if (c.path === "Body") {
      assert.ok(field<Uint8Array>(st, 5).length <= 64 && field<Uint8Array>(st, 6).length <= 64);
      assert.equal(field<boolean>(st, 7), false, "is_max_value_exact");
      assert.equal(field<boolean>(st, 8), false, "is_min_value_exact");
    }
    if (c.path === "ServiceName") assert.deepEqual([field(st, 7), field(st, 8)], [true, true]);
  }
});

/** Counts by a full scan (no filter to push down) and by filters that readers answer from the indexes. */
async function duckCount(path: string, where: string): Promise<number> {
  const [r] = await db.rows(`SELECT count(*)::INT AS n FROM read_parquet('${path}') WHERE ${where}`);
  return r.n as number;
}

function chCount(path: string, where: string): number {
  return Number(ch.exec(`SELECT count() FROM file(${sqlString(path)}, Parquet) WHERE ${where}`).trim());
}

Deno.test("DuckDB and ClickHouse find every span of a trace and every log of a span: no false negatives", async () => {
  const all = await db.rows(
    `SELECT TraceId AS id, count(*)::INT AS n FROM read_parquet('${tracesPath}') GROUP BY TraceId ORDER BY hash(TraceId) LIMIT 60`,
  );
  assert.equal(all.length, 60);
  for (const { id, n } of all) {
    assert.equal(await duckCount(tracesPath, `TraceId = '${id}'`), n, `DuckDB trace ${id}`);
    assert.equal(chCount(tracesPath, `TraceId = '${id}'`), n, `ClickHouse trace ${id}`);
  }
  const spans = await db.rows(`SELECT SpanId AS id FROM read_parquet('${tracesPath}') USING SAMPLE 40 ROWS`);
  for (const { id } of spans) {
    assert.equal(await duckCount(tracesPath, `SpanId = '${id}'`), 1);
    assert.equal(chCount(tracesPath, `SpanId = '${id}'`), 1);
  }
  for (const i of [1, 8, 500]) {
    const id = i.toString(16).padStart(32, "0");
    assert.equal(await duckCount(logsPath, `TraceId = '${id}'`), 6, `DuckDB logs of trace ${id}`);
    assert.equal(chCount(logsPath, `TraceId = '${id}'`), 6, `ClickHouse logs of trace ${id}`);
    const span = (i * 5 + 1).toString(16).padStart(16, "0");
    assert.equal(await duckCount(logsPath, `SpanId = '${span}'`), 1);
    assert.equal(chCount(logsPath, `SpanId = '${span}'`), 1);
  }
  // Ids that are not there are found nowhere (and let the bloom filters skip: see the probe test).
  assert.equal(await duckCount(tracesPath, `TraceId = '${"f".repeat(32)}'`), 0);
  assert.equal(chCount(tracesPath, `TraceId = '${"f".repeat(32)}'`), 0);
});

Deno.test("DuckDB and ClickHouse return every row of a time window and of filters on long bodies", async () => {
  const [t] = await db.rows(
    `SELECT quantile_disc(Timestamp, 0.4)::VARCHAR AS a, quantile_disc(Timestamp, 0.55)::VARCHAR AS b FROM read_parquet('${tracesPath}')`,
  );
  // The expected count from a scan no reader can prune: the times cast to text first.
  const [scan] = await db.rows(
    `SELECT count(*)::INT AS n FROM (SELECT Timestamp::VARCHAR AS s FROM read_parquet('${tracesPath}')) WHERE s >= '${t.a}' AND s < '${t.b}'`,
  );
  assert.ok((scan.n as number) > 1000);
  assert.equal(await duckCount(tracesPath, `Timestamp >= '${t.a}' AND Timestamp < '${t.b}'`), scan.n);
  const chTime = (s: string) => `toDateTime64('${s.slice(0, 26)}', 6, 'UTC')`;
  assert.equal(
    chCount(tracesPath, `Timestamp >= ${chTime(t.a as string)} AND Timestamp < ${chTime(t.b as string)}`),
    scan.n,
  );

  for (const i of [0, 1, 2, 3, 4, 998, 1500, 2999]) {
    const body = longBody(i);
    const [e] = await db.rows(
      `SELECT count(*)::INT AS n FROM (SELECT Body || '' AS b FROM read_parquet('${logsPath}')) WHERE b = ${
        sqlString(body)
      }`,
    );
    assert.ok((e.n as number) >= 1);
    assert.equal(await duckCount(logsPath, `Body = ${sqlString(body)}`), e.n, `DuckDB body ${i}`);
    assert.equal(chCount(logsPath, `Body = ${sqlString(body)}`), e.n, `ClickHouse body ${i}`);
    const [ge] = await db.rows(
      `SELECT count(*)::INT AS n FROM (SELECT Body || '' AS b FROM read_parquet('${logsPath}')) WHERE b >= ${
        sqlString(body)
      }`,
    );
    assert.equal(await duckCount(logsPath, `Body >= ${sqlString(body)}`), ge.n, `DuckDB Body >= body ${i}`);
    assert.equal(chCount(logsPath, `Body >= ${sqlString(body)}`), ge.n, `ClickHouse Body >= body ${i}`);
    assert.equal(chCount(logsPath, `Body <= ${sqlString(body)}`), 3000 - (ge.n as number) + (e.n as number));
  }
});

Deno.test("DuckDB's bloom probe never excludes a row group holding an id, and excludes most for absent ids", async () => {
  const probe = (column: string, value: string) =>
    db.rows(
      `SELECT row_group_id::INT AS g, bloom_filter_excludes AS ex FROM parquet_bloom_probe('${tracesPath}', '${column}', '${value}')`,
    );
  const present = await db.rows(
    `SELECT TraceId AS t, SpanId AS s, (file_row_number // 4000)::INT AS g FROM read_parquet('${tracesPath}', file_row_number = true) USING SAMPLE 200 ROWS`,
  );
  for (const { t, s, g } of present) {
    for (const [column, value] of [["TraceId", t], ["SpanId", s]] as const) {
      const rows = await probe(column, value as string);
      assert.equal(rows.length, 3, "a filter in each row group");
      assert.equal(rows.find((r) => r.g === g)!.ex, false, `${column} ${value} in row group ${g}`);
    }
  }
  let excluded = 0, probes = 0;
  for (let i = 0; i < 300; i++) {
    for (const r of await probe("TraceId", i.toString(16).padStart(32, "a"))) {
      probes++, excluded += r.ex ? 1 : 0;
    }
  }
  // Sized for 1 % false positives.
  assert.ok(excluded / probes > 0.97, `${excluded} of ${probes} absent probes excluded`);
  // Columns without a filter are never excluded.
  assert.ok((await probe("ServiceName", "nope")).every((r) => r.ex === false));
});

Deno.test("parquet-wasm (arrow-rs) writes a page index and truncated bounds too, but no bloom filters", () => {
  initParquet(readFileSync(fileURLToPath(import.meta.resolve("parquet-wasm/esm/parquet_wasm_bg.wasm"))));
  // snappy has no registered compressor: this file comes from parquet-wasm.
  const file = rowsToParquet(logsRows, { compression: "snappy", rowGroupRows: 1000 });
  const chunks = chunksOf(file);
  assert.equal(chunks.length, 3 * 19);
  for (const c of chunks) {
    assert.equal(field<bigint>(c.chunk, 2), 0n, "file_offset");
    assert.ok(c.chunk.has(4) && c.chunk.has(6), `${c.path}: offset and column index`);
    assert.ok(!c.meta.has(14), `${c.path}: no bloom filter`);
    if (c.path === "Body") {
      const st = field<ThriftStruct>(c.meta, 12);
      assert.ok(field<Uint8Array>(st, 5).length <= 64);
      assert.equal(field<boolean>(st, 7), false);
    }
  }
});

/** ClickHouse's ProfileEvents counters that changed while `run` ran. */
function chEvents(run: () => void): Map<string, number> {
  const read = () =>
    new Map(
      ch.rows<{ event: string; value: string }>("SELECT event, value FROM system.events").map((
        r,
      ) => [r.event, Number(r.value)]),
    );
  const before = read();
  run();
  return new Map([...read()].map(([k, v]) => [k, v - (before.get(k) ?? 0)]));
}

Deno.test("ClickHouse skips by the indexes: rows it reads for an absent id, a present id, a window inside a row group", () => {
  // SelectedRows counts each row read once per reading step (the filter's column, then the others: about
  // twice the rows read), plus the rows of the system.events query that reads the counters (under 200).
  const selected = (run: () => void) => chEvents(run).get("SelectedRows") ?? 0;
  // An absent trace id: every row group is ruled out by its bloom filter.
  const absent = selected(() => assert.equal(chCount(tracesPath, `TraceId = '${"e".repeat(32)}'`), 0));
  assert.ok(absent < 200, `rows read for an absent trace: ${absent}`);
  // A present one: one row group of 4,000 rows (8,000 counted), not three.
  const id = ch.exec(`SELECT TraceId FROM file(${sqlString(tracesPath)}, Parquet) LIMIT 1 OFFSET 6000`)
    .trim();
  const present = selected(() => assert.ok(chCount(tracesPath, `TraceId = '${id}'`) >= 1));
  assert.ok(present < 8200, `rows read for one trace: ${present} of 12,000`);
  // A window of 1,000 rows (three 500-row pages) inside a row group of 4,000: the page index keeps the rows
  // read to its pages (3,000 counted); without it the whole row group would be read (8,000 counted).
  const [w] = ch.rows<{ a: string; b: string }>(
    `SELECT toString(min(Timestamp)) AS a, toString(max(Timestamp)) AS b FROM (SELECT Timestamp FROM file(${
      sqlString(tracesPath)
    }, Parquet) ORDER BY Timestamp LIMIT 1000 OFFSET 5200)`,
  );
  const where =
    `Timestamp >= toDateTime64('${w.a}', 9, 'UTC') AND Timestamp <= toDateTime64('${w.b}', 9, 'UTC')`;
  const window = selected(() => assert.ok(chCount(tracesPath, where) >= 1000));
  assert.ok(window >= 2000 && window < 3200, `rows read for a window of 1,000 rows: ${window}`);
});

Deno.test("cleanup", () => {
  db.close();
  ch.close();
  rmSync(dir, { recursive: true, force: true });
});
