/**
 * What decoding may cost, by construction: requests built to amplify (millions of empty envelopes or
 * records, huge repeated fields, deep but legal nesting, JSON Lines of `{}`) at a size CI runs, with the
 * bound asserted by counting (envelopes decoded, decoded bytes held, pauses, order of answers), never by
 * a timer. Run: `node_modules/.bin/deno test -A tests/reliability/decode_cost_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Decoded,
  type DecodeOptions,
  decodeRequest,
  decodeRequestAsync,
  type Format,
} from "../../src/core/convert.ts";
import {
  CHECK_EVERY,
  DecodeLimitError,
  type DecodeStats,
  MAX_ENVELOPES,
  MAX_ITEMS_PER_RECORD,
  MAX_RECORDS,
} from "../../src/core/decode/decode_limits.ts";
import type { Signal } from "../../src/core/table/schema.ts";
import type { SharedMapColumn } from "../../src/core/table/columns.ts";
import { createHandler } from "../../src/http/handler.ts";
import type { Sink } from "../../src/ingest/sink.ts";
import { OverloadedError } from "../../src/ingest/errors.ts";
import { concatAll, fixed64, ld, resource, str, tag, varint } from "./otlp_proto.ts";

const utf8 = new TextEncoder();

/** `unit` `n` times over, in one buffer. */
function repeat(unit: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(unit.length * n);
  for (let i = 0; i < n; i++) out.set(unit, i * unit.length);
  return out;
}

const EMPTY_ENVELOPES = (n: number) => repeat(ld(1, ld(2, new Uint8Array(0))), n);
/** One ResourceX{ScopeX{ `items` }} of any signal (the envelope is the same shape for all three). */
const oneScope = (items: Uint8Array) => ld(1, ld(2, items));
const emptyItems = (n: number) => repeat(ld(2, new Uint8Array(0)), n);
/** A span (Span fields: trace id 1, span id 2, name 5, start 7, end 8) with `extra` fields appended. */
const span = (extra: Uint8Array) =>
  concatAll([ld(1, new Uint8Array(16).fill(1)), ld(2, new Uint8Array(8).fill(2)), str(5, "s"), extra]);

function decode(signal: Signal, body: Uint8Array, options: Partial<DecodeOptions> = {}) {
  const stats = {} as DecodeStats;
  const decoded = decodeRequest(signal, body, { format: "protobuf", ...options, stats });
  return { decoded, stats };
}

/** The error decodeRequest throws, with the stats of the decode that threw it. */
function refusal(signal: Signal, body: Uint8Array, options: Partial<DecodeOptions> = {}) {
  const stats = {} as DecodeStats;
  try {
    decodeRequest(signal, body, { format: "protobuf", ...options, stats });
  } catch (e) {
    return { error: e as Error, stats };
  }
  throw new Error("expected the decode to be refused");
}

Deno.test("decodeRequest() walks 500 000 empty envelopes decoding two, and holds nothing per envelope", () => {
  for (const signal of ["logs", "traces", "metrics"] as const) {
    const { decoded, stats } = decode(signal, EMPTY_ENVELOPES(250_000));
    assert.equal(decoded.records, 0);
    assert.equal(stats.envelopes, 500_000, signal);
    // One empty resource and one empty scope, decoded once and shared by all.
    assert.equal(stats.envelopesDecoded, 2, signal);
  }
  // With a record at the end: the envelope columns hold one resource map, however many empty ones came first.
  const record = ld(2, fixed64(1, 1_700_000_000_000_000_000n));
  const body = concatAll([
    EMPTY_ENVELOPES(100_000),
    ld(1, concatAll([ld(1, resource("svc")), ld(2, record)])),
  ]);
  const { decoded, stats } = decode("logs", body);
  assert.equal(decoded.records, 1);
  assert.equal(stats.envelopesDecoded, 3); // the empty resource and scope, and "svc"
  assert.equal(decoded.tables[0].col<SharedMapColumn>("ResourceAttributes").distinct.length, 1);
  assert.equal(decoded.tables[0].parts[0].service, "svc");
});

Deno.test("decodeRequest() decodes a resource repeated by 100 000 envelopes once", () => {
  const record = ld(2, fixed64(1, 1_700_000_000_000_000_000n));
  const rl = ld(
    1,
    concatAll([ld(1, resource("svc", [str(1, "x")])), ld(2, concatAll([ld(1, str(1, "scope")), record]))]),
  );
  const { decoded, stats } = decode("logs", repeat(rl, 100_000));
  assert.equal(decoded.records, 100_000);
  assert.equal(stats.envelopesDecoded, 2);
  const rows = decoded.tables[0];
  assert.equal(rows.col<SharedMapColumn>("ResourceAttributes").distinct.length, 1);
  assert.equal(rows.parts.length, 1);
});

Deno.test("decodeRequest() refuses more envelopes or records than the caps with a DecodeLimitError", () => {
  assert.ok(
    MAX_ENVELOPES >= 1 << 20 && MAX_RECORDS >= 1 << 22,
    "the defaults stay far above legitimate requests",
  );
  const env = refusal("logs", EMPTY_ENVELOPES(10_000), { maxEnvelopes: 1000 });
  assert.ok(env.error instanceof DecodeLimitError && env.error.limit === "envelopes", env.error.message);
  assert.match(env.error.message, /^cannot decode logs request: more than 1000 resource and scope envelopes/);
  assert.equal(env.stats.envelopes, 1001, "stops at the first envelope beyond the cap");
  // Records: protobuf logs and traces count them before decoding any; metrics and JSON as they go.
  const recs = refusal("logs", oneScope(emptyItems(5000)), { maxRecords: 1000 });
  assert.ok(recs.error instanceof DecodeLimitError && recs.error.limit === "records", recs.error.message);
  assert.equal(recs.stats.records, 0, "refused before any record was decoded");
  const gauge = ld(2, ld(5, repeat(ld(1, new Uint8Array([0x21, 0, 0, 0, 0, 0, 0, 0, 0])), 5000)));
  const m = refusal("metrics", ld(1, ld(2, gauge)), { maxRecords: 1000 });
  assert.ok(m.error instanceof DecodeLimitError && m.error.limit === "records", m.error.message);
  assert.equal(m.stats.records, 1001);
  const lines = utf8.encode(
    `${JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{}] }] }] })}\n`.repeat(3000),
  );
  const j = refusal("logs", lines, { format: "jsonl", maxRecords: 1000 });
  assert.ok(j.error instanceof DecodeLimitError && j.error.limit === "records", j.error.message);
  assert.equal(j.stats.records, 1001);
});

Deno.test("decodeRequest() stops an amplifying request with the decoded bytes held within the bound", () => {
  const bound = 1 << 20;
  // 300 000 empty log records (600 KB, ~20 MB decoded): sized up front, so refused before anything is allocated.
  const empty = refusal("logs", oneScope(emptyItems(300_000)), { maxDecodedBytes: bound });
  assert.ok(
    empty.error instanceof DecodeLimitError && empty.error.limit === "decodedBytes",
    empty.error.message,
  );
  assert.equal(empty.stats.records, 0);
  // The same records behind a malformed tail (the count is unknown): measured as they are decoded.
  const cases: [Signal, Uint8Array, number][] = [
    ["logs", concatAll([oneScope(emptyItems(300_000)), new Uint8Array([0x0a, 0x05])]), 100],
    // One span with 200 000 empty events, one with 200 000 empty links, one with 200 000 attributes.
    ["traces", oneScope(ld(2, span(emptyItems(200_000).map((b, i) => i % 2 === 0 ? 0x5a : b)))), 64],
    ["traces", oneScope(ld(2, span(emptyItems(200_000).map((b, i) => i % 2 === 0 ? 0x6a : b)))), 64],
    ["traces", oneScope(ld(2, span(emptyItems(200_000).map((b, i) => i % 2 === 0 ? 0x4a : b)))), 64],
    // A gauge of 200 000 points with only a value.
    [
      "metrics",
      oneScope(ld(2, ld(5, repeat(ld(1, new Uint8Array([0x21, 0, 0, 0, 0, 0, 0, 0, 0])), 200_000)))),
      400,
    ],
  ];
  for (const [signal, body, rowBytes] of cases) {
    const r = refusal(signal, body, { maxDecodedBytes: bound, maxItemsPerRecord: Infinity });
    if (!(r.error instanceof DecodeLimitError && r.error.limit === "decodedBytes")) {
      // A body that is refused as malformed before it amplifies is fine too, but not these.
      assert.fail(`${signal}: expected a DecodeLimitError, got ${r.error.message}`);
    }
    // Measured every CHECK_EVERY units: the overshoot is what that many units add, plus the scratch.
    const slack = CHECK_EVERY * Math.max(rowBytes, 64);
    assert.ok(
      r.stats.decodedBytes > bound && r.stats.decodedBytes <= bound + slack,
      `${signal}: ${r.stats.decodedBytes} bytes held when refused (bound ${bound} + ${slack})`,
    );
  }
});

Deno.test("decodeRequest() refuses a record with more nested items than MAX_ITEMS_PER_RECORD", () => {
  assert.equal(MAX_ITEMS_PER_RECORD, 65_536);
  for (const [field, what] of [[0x5a, "events"], [0x6a, "links"], [0x4a, "attributes"]] as const) {
    const body = oneScope(ld(2, span(emptyItems(100_000).map((b, i) => i % 2 === 0 ? field : b))));
    const r = refusal("traces", body);
    assert.ok(r.error instanceof DecodeLimitError && r.error.limit === "items", r.error.message);
    assert.match(r.error.message, new RegExp(`more than 65536 ${what} in one record`));
    assert.ok(r.stats.items <= 65_536 + 1024, `${r.stats.items} items decoded before the refusal`);
  }
  // At the cap, a record is decoded.
  const body = oneScope(ld(2, span(emptyItems(65_536).map((b, i) => i % 2 === 0 ? 0x5a : b))));
  assert.equal(decode("traces", body).decoded.records, 1);
});

Deno.test("decodeRequest() decodes histograms with 1 000 000 packed bucket counts only within the bound", () => {
  const counts = new Uint8Array(1_000_000); // a million varint zeros: 8 decoded bytes each
  const point = concatAll([tag(2, 2), varint(counts.length), counts]); // Buckets.bucket_counts, packed
  const body = oneScope(ld(2, ld(10, ld(1, ld(8, point))))); // exponentialHistogram.dataPoints[0].positive
  const r = refusal("metrics", body, { maxDecodedBytes: 1 << 20 });
  assert.ok(r.error instanceof DecodeLimitError, r.error.message);
  assert.ok(r.stats.decodedBytes <= (1 << 20) + CHECK_EVERY * 8 + 4096, `${r.stats.decodedBytes}`);
});

/** `[item,item,…]`: `n` copies of a JSON value. */
const jsonList = (item: string, n: number) => `[${`${item},`.repeat(n - 1)}${item}]`;
/** A JSON request of one record of `signal` whose fields are `record` (JSON text of its members). */
function jsonRecord(signal: Signal, record: string): Uint8Array {
  const item = signal === "logs"
    ? `"scopeLogs":[{"logRecords":[{${record}}]}]`
    : signal === "traces"
    ? `"scopeSpans":[{"spans":[{${record}}]}]`
    : `"scopeMetrics":[{"metrics":[{"name":"m",${record}}]}]`;
  const resources = signal === "logs"
    ? "resourceLogs"
    : signal === "traces"
    ? "resourceSpans"
    : "resourceMetrics";
  return utf8.encode(`{"${resources}":[{${item}}]}`);
}

Deno.test("JSON: a record's lists are counted while they are read, as protobuf's: decoded bytes stay bounded", () => {
  // Two or three bytes of JSON decode to 8-50 bytes of columns here: without counting inside the list,
  // one record of a 64 MiB body would hold gigabytes before the bound was looked at.
  const n = 200_000;
  const cases: [string, Uint8Array, number][] = [
    [
      "exemplars",
      jsonRecord("metrics", `"gauge":{"dataPoints":[{"asInt":1,"exemplars":${jsonList("{}", n)}}]}`),
      64 << 10,
    ],
    [
      "quantiles",
      jsonRecord("metrics", `"summary":{"dataPoints":[{"quantileValues":${jsonList("{}", 60_000)}}]}`),
      64 << 10,
    ],
    [
      "exponential buckets",
      jsonRecord(
        "metrics",
        `"exponentialHistogram":{"dataPoints":[{"positive":{"bucketCounts":${jsonList("0", n)}}}]}`,
      ),
      CHECK_EVERY * 8 + 4096,
    ],
    [
      "histogram buckets",
      jsonRecord(
        "metrics",
        `"histogram":{"dataPoints":[{"bucketCounts":${jsonList("0", n + 1)},"explicitBounds":${
          jsonList("0", n)
        }}]}`,
      ),
      CHECK_EVERY * 8 + 4096,
    ],
    ["events", jsonRecord("traces", `"events":${jsonList("{}", 60_000)}`), 64 << 10],
    ["links", jsonRecord("traces", `"links":${jsonList("{}", 60_000)}`), 64 << 10],
  ];
  const bound = 1 << 19;
  for (const [what, body, slack] of cases) {
    const signal = what === "events" || what === "links" ? "traces" : "metrics";
    const r = refusal(signal, body, { format: "json", maxDecodedBytes: bound });
    assert.ok(
      r.error instanceof DecodeLimitError && r.error.limit === "decodedBytes",
      `${what}: ${r.error.message}`,
    );
    assert.ok(
      r.stats.decodedBytes <= bound + slack,
      `${what}: ${r.stats.decodedBytes} bytes held when refused`,
    );
  }
});

Deno.test("JSON: a record with more nested items than MAX_ITEMS_PER_RECORD is refused, as in protobuf", () => {
  const over = MAX_ITEMS_PER_RECORD + 1024, attr = '{"key":"a"}';
  const cases: [Signal, string, string][] = [
    ["logs", "attributes", `"attributes":${jsonList(attr, over)}`],
    ["traces", "attributes", `"attributes":${jsonList(attr, over)}`],
    ["traces", "events", `"events":${jsonList("{}", over)}`],
    ["traces", "links", `"links":${jsonList("{}", over)}`],
    ["traces", "attributes", `"events":[{"attributes":${jsonList(attr, over)}}]`],
    ["metrics", "attributes", `"gauge":{"dataPoints":[{"asInt":1,"attributes":${jsonList(attr, over)}}]}`],
    ["metrics", "exemplars", `"gauge":{"dataPoints":[{"asInt":1,"exemplars":${jsonList("{}", over)}}]}`],
    [
      "metrics",
      "filteredAttributes",
      `"gauge":{"dataPoints":[{"asInt":1,"exemplars":[{"filteredAttributes":${jsonList(attr, over)}}]}]}`,
    ],
    ["metrics", "quantileValues", `"summary":{"dataPoints":[{"quantileValues":${jsonList("{}", over)}}]}`],
  ];
  for (const [signal, what, record] of cases) {
    const r = refusal(signal, jsonRecord(signal, record), { format: "json" });
    assert.ok(
      r.error instanceof DecodeLimitError && r.error.limit === "items",
      `${what}: ${r.error.message}`,
    );
    assert.match(r.error.message, new RegExp(`more than 65536 ${what} in one record`));
    assert.ok(
      r.stats.items <= MAX_ITEMS_PER_RECORD + 1024,
      `${what}: ${r.stats.items} items before the refusal`,
    );
  }
  // At the cap, a record is decoded (and its attributes, all under one key, are one).
  const atCap = jsonRecord("logs", `"attributes":${jsonList(attr, MAX_ITEMS_PER_RECORD)}`);
  assert.equal(decode("logs", atCap, { format: "json" }).decoded.records, 1);
});

Deno.test("a resource or scope with more than MAX_ITEMS_PER_RECORD attributes is refused, protobuf and JSON", () => {
  // An empty KeyValue is two bytes of protobuf and a 32-byte scratch entry: a 64 MiB body of them held
  // over a gigabyte before the cap. The cap is checked every 1024 attributes, as a record's.
  const over = MAX_ITEMS_PER_RECORD + 1024;
  const emptyKeyValues = (n: number, field: number) => repeat(ld(field, new Uint8Array(0)), n);
  const pbBody = (n: number, isScope: boolean) =>
    isScope
      ? ld(1, ld(2, concatAll([ld(1, emptyKeyValues(n, 3)), ld(2, new Uint8Array(0))])))
      : ld(1, concatAll([ld(1, emptyKeyValues(n, 1)), ld(2, ld(2, new Uint8Array(0)))]));
  const jsonBody = (n: number, isScope: boolean) => {
    const attributes = `"attributes":${jsonList('{"key":"a"}', n)}`;
    return utf8.encode(
      isScope
        ? `{"resourceLogs":[{"scopeLogs":[{"scope":{${attributes}},"logRecords":[{}]}]}]}`
        : `{"resourceLogs":[{"resource":{${attributes}},"scopeLogs":[{"logRecords":[{}]}]}]}`,
    );
  };
  for (const isScope of [false, true]) {
    const where = isScope ? "scope" : "resource";
    for (const [format, body] of [["protobuf", pbBody], ["json", jsonBody]] as const) {
      const r = refusal("logs", body(over, isScope), { format });
      assert.ok(
        r.error instanceof DecodeLimitError && r.error.limit === "items",
        `${format}: ${r.error.message}`,
      );
      assert.match(r.error.message, new RegExp(`more than 65536 attributes in one ${where}`));
      assert.ok(r.stats.items <= MAX_ITEMS_PER_RECORD + 1024, `${format} ${where}: ${r.stats.items} items`);
      // At the cap, it decodes.
      assert.equal(decode("logs", body(MAX_ITEMS_PER_RECORD, isScope), { format }).decoded.records, 1);
    }
  }
});

Deno.test("decodeRequest() reads JSON Lines a line at a time: work grows linearly with the lines", () => {
  const counts: DecodeStats[] = [];
  for (const n of [100_000, 200_000]) {
    const stats = {} as DecodeStats;
    const decoded = decodeRequest("logs", utf8.encode("{}\n".repeat(n)), { format: "jsonl", stats });
    assert.equal(decoded.records, 0);
    counts.push(stats);
  }
  assert.equal(counts[0].envelopes, 100_000);
  assert.equal(counts[1].envelopes, 200_000);
  assert.equal(counts[1].envelopesDecoded, 0, "a line without resources decodes no envelope");
  // Blank lines and whitespace between them cost a character each, and are not lines.
  const stats = {} as DecodeStats;
  const body = utf8.encode(
    `\n \r\n\t${JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{}] }] }] })}\n\n`,
  );
  assert.equal(decodeRequest("logs", body, { format: "jsonl", stats }).records, 1);
  assert.equal(stats.envelopes, 3); // the line, its resource and its scope
  // Errors still name the line.
  assert.throws(
    () => decodeRequest("logs", utf8.encode("{}\n\n{x}\n"), { format: "jsonl" }),
    /cannot decode logs request: invalid JSON on line 3/,
  );
  const lines = refusal("logs", utf8.encode("{}\n".repeat(5000)), { format: "jsonl", maxEnvelopes: 1000 });
  assert.ok(lines.error instanceof DecodeLimitError && lines.error.limit === "envelopes");
});

Deno.test("decodeRequest() builds no parse tree for a JSON body: what it holds is the rows decoded", () => {
  // 200 000 empty records in one JSON array (600 KB of text, ~8 MB of objects for JSON.parse): read from
  // the bytes, so the decoded bytes are the rows', measured as they grow, and the bound stops them.
  const records = (n: number) =>
    `{"resourceLogs":[{"scopeLogs":[{"logRecords":[${"{},".repeat(n - 1)}{}]}]}]}`;
  const rowBytes = decode("logs", utf8.encode(records(10_000)), { format: "json" }).stats.decodedBytes /
    10_000;
  const r = refusal("logs", utf8.encode(records(200_000)), { format: "json", maxDecodedBytes: 1 << 20 });
  assert.ok(r.error instanceof DecodeLimitError && r.error.limit === "decodedBytes", r.error.message);
  assert.match(r.error.message, /holds more than 1048576 bytes/);
  const slack = CHECK_EVERY * Math.ceil(rowBytes) * 2;
  assert.ok(
    r.stats.decodedBytes <= (1 << 20) + slack,
    `${r.stats.decodedBytes} bytes held (bound + ${slack})`,
  );
  assert.ok(r.stats.records < 200_000, `${r.stats.records} records decoded before the refusal`);
  // JSON Lines: a line at a time, nothing held per line.
  const line = `${JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{}, {}, {}] }] }] })}\n`;
  const stats = {} as DecodeStats;
  decodeRequest("logs", utf8.encode(line.repeat(10_000)), {
    format: "jsonl",
    stats,
    maxDecodedBytes: 4 << 20,
  });
  assert.equal(stats.records, 30_000);
});

Deno.test("decodeRequest() decodes a JSON body wherever it sits in its buffer", () => {
  // Multi-byte UTF-8 (2, 3 and 4 bytes) around structural characters, and every alignment of the body.
  const text = `{"resourceLogs":[{"scopeLogs":[{"logRecords":[${
    `{"body":{"stringValue":"é€😀,{"}},`.repeat(37)
  }{}]}]}]}`;
  const encoded = utf8.encode(text);
  const bodies = (d: Decoded) => {
    const col = d.tables[0].col("Body") as unknown as { get(i: number): string };
    return Array.from({ length: d.records }, (_, i) => col.get(i));
  };
  const want = bodies(decodeRequest("logs", encoded, { format: "json" }));
  assert.equal(want.length, 38);
  assert.equal(want[0], "é€😀,{");
  for (let offset = 0; offset < 8; offset++) {
    for (const cut of [0, 1, 2, 3]) {
      const buf = new Uint8Array(offset + encoded.length + cut).fill(0x7b);
      buf.set(encoded, offset);
      const got = decodeRequest("logs", buf.subarray(offset, offset + encoded.length), { format: "json" });
      assert.deepEqual(bodies(got), want, `offset ${offset}, ${cut} bytes after`);
    }
  }
});

Deno.test("decodeRequestAsync() pauses between slices and decodes exactly what decodeRequest does", async () => {
  const samples: [Signal, Format, Uint8Array][] = [
    [
      "logs",
      "protobuf",
      concatAll([EMPTY_ENVELOPES(50_000), oneScope(repeat(ld(2, fixed64(1, 1n)), 50_000))]),
    ],
    ["traces", "protobuf", oneScope(repeat(ld(2, span(new Uint8Array(0))), 50_000))],
    [
      "logs",
      "jsonl",
      utf8.encode(
        `${JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{}] }] }] })}\n`.repeat(40_000),
      ),
    ],
  ];
  for (const [signal, format, body] of samples) {
    const sync = decodeRequest(signal, body, { format });
    let pauses = 0;
    const stats = {} as DecodeStats;
    const async = await decodeRequestAsync(signal, body, {
      format,
      stats,
      sliceUnits: 4096,
      pause: () => (pauses++, Promise.resolve()),
    });
    assert.ok(pauses >= 10, `${signal} ${format}: ${pauses} pauses`);
    assert.equal(pauses, stats.slices);
    assert.equal(async.records, sync.records);
    assert.deepEqual(tableBytes(async), tableBytes(sync));
  }
});

function tableBytes(d: Decoded): number[] {
  return d.tables.map((t) => t.byteLength());
}

// ---------------------------------------------------------------------------------------------------
// Through the handler

/** A sink with an in-flight budget like the ingest's (one request alone is always admitted). */
class BudgetSink implements Sink {
  inflight = 0;
  peak = 0;
  admits = 0;
  accepted = 0;
  constructor(readonly max: number) {}
  admit(bytes: number): () => void {
    this.admits++;
    const n = Math.min(bytes, this.max);
    if (this.inflight > 0 && this.inflight + n > this.max) throw new OverloadedError("too much in flight", 1);
    this.inflight += n;
    this.peak = Math.max(this.peak, this.inflight);
    let done = false;
    return () => {
      if (!done) this.inflight -= n, done = true;
    };
  }
  accept(): Promise<void> {
    this.accepted++;
    return Promise.resolve();
  }
  ready(): boolean {
    return true;
  }
}

const post = (path: string, body: Uint8Array, type = "application/x-protobuf") =>
  new Request(`http://localhost${path}`, {
    method: "POST",
    body: body as Uint8Array<ArrayBuffer>,
    headers: { "content-type": type },
  });

Deno.test("the handler answers 413 for a request that decodes past maxDecodedBytes, 429 past the budget", async () => {
  const body = concatAll([oneScope(emptyItems(200_000)), new Uint8Array([0x0a, 0x05])]); // 400 KB, ~13 MB decoded
  const good = oneScope(repeat(ld(2, fixed64(1, 1_700_000_000_000_000_000n)), 10));
  {
    const sink = new BudgetSink(64 << 20);
    const handler = createHandler({ sink, maxDecodedBytes: 2 << 20 });
    const res = await handler(post("/v1/logs", body));
    assert.equal(res.status, 413);
    assert.match(await res.text(), /decoded request holds more than 2097152 bytes/);
    assert.equal(sink.inflight, 0, "all of the budget released");
    assert.ok(sink.peak <= body.length + (2 << 20) + (1 << 20) + (CHECK_EVERY << 7), `peak ${sink.peak}`);
    assert.equal((await handler(post("/v1/logs", good))).status, 200);
  }
  {
    // Another request holds most of an 8 MiB budget: this one's decoded bytes do not fit in the rest.
    const sink = new BudgetSink(8 << 20);
    const other = sink.admit(6 << 20);
    const handler = createHandler({ sink });
    const res = await handler(post("/v1/logs", body));
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.equal(sink.inflight, 6 << 20, "only the other request's share is left");
    assert.ok(sink.peak <= 8 << 20, `the budget held: peak ${sink.peak}`);
    other();
    // Alone, the same request is admitted whatever it decodes to (the ingest's rule), and charged for it.
    assert.equal((await handler(post("/v1/logs", body.subarray(0, body.length - 2)))).status, 200);
    assert.ok(sink.peak >= 8 << 20 && sink.admits < 40, `charged in a few steps: ${sink.admits} admits`);
    assert.equal(sink.inflight, 0);
  }
});

Deno.test("the handler answers /health while a large request is being decoded (by order, not time)", async () => {
  const sink = new BudgetSink(1 << 30);
  const handler = createHandler({ sink });
  const events: string[] = [];
  let decoding = false;
  const admit = sink.admit.bind(sink);
  // The decode charges its bytes as it goes: the first charge means it has started, so ask for /health
  // from a timer now. Without pauses the timer could only run after the whole decode.
  sink.admit = (bytes: number) => {
    if (sink.admits === 1 && !decoding) {
      decoding = true;
      setTimeout(() => {
        events.push("health sent");
        void handler(new Request("http://localhost/health")).then((r) => events.push(`health ${r.status}`));
      }, 0);
    }
    return admit(bytes);
  };
  const big = concatAll([EMPTY_ENVELOPES(600_000), oneScope(repeat(ld(2, fixed64(1, 1n)), 300_000))]);
  const res = await handler(post("/v1/logs", big));
  events.push(`big ${res.status}`);
  assert.deepEqual(events, ["health sent", "health 200", "big 200"]);
});
