/**
 * Times beyond `DateTime64(9)` (2^63 ns and later, after 2262-04-11): a record that would store one is
 * refused, counted in `rejected` with a message, in protobuf (fixed64) and JSON (string and number)
 * alike; the rest of the request is stored, and every file stays sorted by its own time column.
 */
import assert from "node:assert/strict";
import {
  encodeJson,
  encodeProtobuf,
  generateLogs,
  generateMetrics,
  generateTraces,
  type JsonNumberPoint,
  type MetricsRequest,
} from "../../bench/data.ts";
import { type Decoded, decodeRequest, type Format, toParquetFiles } from "./convert.ts";
import type { StrColumn, U64Column } from "./table/columns.ts";
import { openDuckDb } from "../../tests/support/duckdb.ts";
import type { Rows } from "./table/rows.ts";

const LAST = "9223372036854775807"; // 2^63 - 1: the last time DateTime64(9) holds
const FIRST_OUT = "9223372036854775808"; // 2^63
const MAX = "18446744073709551615"; // 2^64 - 1

function both(signal: "logs" | "traces" | "metrics", request: object): [Format, Decoded][] {
  return [
    ["protobuf", decodeRequest(signal, encodeProtobuf(signal, request as never), { format: "protobuf" })],
    ["json", decodeRequest(signal, encodeJson(request as never), { format: "json" })],
  ];
}

/** The table's time column as bigints, signed as a reader sees them. */
function times(rows: Rows): bigint[] {
  const t = rows.time as U64Column;
  return Array.from({ length: rows.length }, (_, i) => BigInt.asIntN(64, t.bigint(i)));
}

function assertSortedFiles(decoded: Decoded): void {
  for (const file of toParquetFiles(decoded, { compression: "none" })) assert.ok(file.rows > 0);
  for (const rows of decoded.tables) for (const t of times(rows)) assert.ok(t >= 0n, `negative time ${t}`);
}

Deno.test("log records with a Timestamp at or after 2^63 ns are refused, in protobuf and JSON", () => {
  const request = generateLogs(20, { seed: 1 });
  const records = request.resourceLogs.flatMap((r) => r.scopeLogs.flatMap((s) => s.logRecords));
  records[3].timeUnixNano = FIRST_OUT;
  records[5].timeUnixNano = MAX;
  // No own time: the observed time is the Timestamp, so it is checked instead.
  records[7].timeUnixNano = "0", records[7].observedTimeUnixNano = MAX;
  // The last time that fits is kept; a late observed time is not stored when the record has its own time.
  records[9].timeUnixNano = LAST;
  records[11].observedTimeUnixNano = MAX;
  for (const [format, decoded] of both("logs", request)) {
    assert.equal(decoded.rejected, 3, format);
    assert.equal(decoded.records, 17, format);
    assert.match(decoded.rejectMessage, /^3 log records with a time at or after 2\^63 ns/, format);
    const t = times(decoded.tables[0]);
    assert.ok(t.includes(BigInt(LAST)), `${format}: 2^63 - 1 is kept`);
    assertSortedFiles(decoded);
  }
});

Deno.test("a JSON time given as a number past 2^63 is refused like the string", () => {
  const request = generateLogs(4, { seed: 2 });
  const records = request.resourceLogs.flatMap((r) => r.scopeLogs.flatMap((s) => s.logRecords));
  records[1].timeUnixNano = "LATE";
  const text = JSON.stringify(request).replace(
    `"timeUnixNano":"LATE"`,
    `"timeUnixNano":10000000000000000000`,
  );
  const decoded = decodeRequest("logs", new TextEncoder().encode(text), { format: "json" });
  assert.equal(decoded.rejected, 1);
  assert.equal(decoded.records, 3);
});

Deno.test("spans with a start or an event time at or after 2^63 ns are refused; a late end is stored", () => {
  const request = generateTraces(30, { seed: 3 });
  const spans = request.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
  const withEvents = spans.filter((s) => s.events?.length);
  assert.ok(withEvents.length >= 1, "the generator makes spans with events");
  const plain = spans.filter((s) => !s.events?.length);
  plain[0].startTimeUnixNano = MAX;
  withEvents[0].events![0].timeUnixNano = FIRST_OUT;
  // Duration is UInt64: end - start is exact even for an end past 2^63, so the span is stored.
  plain[1].endTimeUnixNano = MAX;
  for (const [format, decoded] of both("traces", request)) {
    assert.equal(decoded.rejected, 2, format);
    assert.equal(decoded.records, 28, format);
    assert.match(decoded.rejectMessage, /^2 spans with a time/, format);
    const ids = new Set<string>();
    const rows = decoded.tables[0];
    const col = rows.col<StrColumn>("SpanId");
    for (let i = 0; i < rows.length; i++) {
      ids.add(new TextDecoder().decode(col.bytes.subarray(col.offsets[i], col.offsets[i + 1])));
    }
    assert.ok(!ids.has(plain[0].spanId) && !ids.has(withEvents[0].spanId), format);
    assert.ok(ids.has(plain[1].spanId), `${format}: the span with a late end is kept`);
    assertSortedFiles(decoded);
  }
});

Deno.test("data points with a TimeUnix or StartTimeUnix at or after 2^63 ns are refused", () => {
  const request: MetricsRequest = generateMetrics(40, { seed: 4 });
  const points = request.resourceMetrics.flatMap((r) =>
    r.scopeMetrics.flatMap((s) =>
      s.metrics.flatMap((m) => (m.gauge ?? m.sum)?.dataPoints ?? []) as JsonNumberPoint[]
    )
  );
  points[0].timeUnixNano = MAX;
  points[1].startTimeUnixNano = FIRST_OUT;
  for (const [format, decoded] of both("metrics", request)) {
    assert.equal(decoded.rejected, 2, format);
    assert.equal(decoded.records, 38, format);
    assert.match(decoded.rejectMessage, /^2 data points with a time/, format);
    assertSortedFiles(decoded);
  }
});

Deno.test("DuckDB reads a file of the kept rows sorted by Timestamp, none before 1970", async () => {
  const request = generateLogs(200, { seed: 5 });
  const records = request.resourceLogs.flatMap((r) => r.scopeLogs.flatMap((s) => s.logRecords));
  for (let i = 0; i < records.length; i += 10) records[i].timeUnixNano = MAX;
  const decoded = decodeRequest("logs", encodeProtobuf("logs", request), { format: "protobuf" });
  assert.equal(decoded.rejected, 20);
  const dir = Deno.makeTempDirSync();
  const db = await openDuckDb();
  try {
    for (const [k, file] of toParquetFiles(decoded, { compression: "none" }).entries()) {
      const path = `${dir}/${k}.parquet`;
      Deno.writeFileSync(path, file.bytes);
      const [r] = await db.rows(
        `SELECT count(*)::INT AS n, count(*) FILTER (WHERE Timestamp < '1970-01-02')::INT AS early,
                bool_and(Timestamp >= prev OR prev IS NULL) AS sorted
         FROM (SELECT Timestamp, lag(Timestamp) OVER (ORDER BY file_row_number) AS prev
               FROM read_parquet('${path}', file_row_number = true))`,
      );
      assert.equal(r.early, 0);
      assert.equal(r.sorted, true);
      assert.equal(r.n, file.rows);
    }
  } finally {
    db.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
