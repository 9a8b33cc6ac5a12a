/**
 * Semantic fuzzing of OTLP/JSON for all three signals, through the HTTP handler: valid requests with
 * values swapped for hostile ones, chosen by meaning rather than by byte: type confusion (strings for
 * numbers, arrays for objects, null), prototype names (`toString`, `__proto__`, `constructor`,
 * `hasOwnProperty`) as enum names, keys and values, and extreme numbers (1e300, -0, 2^63, 2^64,
 * 60 000-digit numbers, "0x10", "NaN"). Every case gets 200, with files that DuckDB and ClickHouse
 * read back whole, or 400 with a message of at most 1 KiB; never anything else.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { type Decoded, encodeFile } from "../../src/core/convert.ts";
import { MAX_MESSAGE_CHARS } from "../../src/core/errors.ts";
import type { Signal } from "../../src/core/table/schema.ts";
import { createHandler } from "../../src/http/handler.ts";
import type { Sink } from "../../src/ingest/sink.ts";
import { loadParquetWasm } from "../../src/platforms/wasm.ts";
import { FuzzFiles } from "./fuzz_readback.ts";
import { seedFor } from "./load.ts";

const CASES = Number(Deno.env.get("RELIABILITY_JSON_FUZZ_CASES") ?? 300);
const T = "1700000000000000000";
const TRACE = "5b8efff798038103d269b633813fc60c", SPAN = "eee19b7ec3c1b174";

const attrs = () => [
  { key: "str", value: { stringValue: "v" } },
  { key: "int", value: { intValue: "42" } },
  { key: "dbl", value: { doubleValue: 1.5 } },
  { key: "bool", value: { boolValue: true } },
  { key: "bytes", value: { bytesValue: "AQID" } },
  { key: "arr", value: { arrayValue: { values: [{ intValue: 1 }, { stringValue: "x" }] } } },
  { key: "kv", value: { kvlistValue: { values: [{ key: "a", value: { doubleValue: "NaN" } }] } } },
];

const resource = () => ({
  attributes: [{ key: "service.name", value: { stringValue: "fuzz" } }, ...attrs()],
  droppedAttributesCount: 0,
});
const scope = () => ({ name: "sc", version: "1", attributes: attrs() });

/**
 * Valid requests, touching every field the decoders read: one record each (a value a file holds once
 * is where a bad dictionary index shows), and then the same with a second, plainer record.
 */
const SEEDS: { signal: Signal; body: () => unknown }[] = [
  {
    signal: "logs",
    body: () => ({
      resourceLogs: [{
        resource: resource(),
        schemaUrl: "https://s",
        scopeLogs: [{
          scope: scope(),
          logRecords: [{
            timeUnixNano: T,
            observedTimeUnixNano: T,
            severityNumber: "SEVERITY_NUMBER_WARN",
            severityText: "WARN",
            body: { kvlistValue: { values: [{ key: "msg", value: { stringValue: "hi" } }] } },
            attributes: attrs(),
            droppedAttributesCount: 1,
            flags: 1,
            traceId: TRACE,
            spanId: SPAN,
            eventName: "e",
          }],
        }],
      }],
    }),
  },
  {
    signal: "traces",
    body: () => ({
      resourceSpans: [{
        resource: resource(),
        scopeSpans: [{
          scope: scope(),
          spans: [{
            traceId: TRACE,
            spanId: SPAN,
            parentSpanId: SPAN,
            traceState: "a=b",
            name: "op",
            kind: "SPAN_KIND_SERVER",
            startTimeUnixNano: T,
            endTimeUnixNano: "1700000000000001000",
            attributes: attrs(),
            flags: 256,
            events: [{ timeUnixNano: T, name: "ev", attributes: attrs() }],
            links: [{ traceId: TRACE, spanId: SPAN, traceState: "c=d", attributes: attrs(), flags: 1 }],
            status: { code: "STATUS_CODE_ERROR", message: "bad" },
          }],
        }],
      }],
    }),
  },
  {
    signal: "metrics",
    body: () => {
      const point = () => ({
        attributes: attrs(),
        startTimeUnixNano: T,
        timeUnixNano: T,
        flags: 0,
        exemplars: [{
          timeUnixNano: T,
          asDouble: 2.5,
          spanId: SPAN,
          traceId: TRACE,
          filteredAttributes: attrs(),
        }],
      });
      return {
        resourceMetrics: [{
          resource: resource(),
          scopeMetrics: [{
            scope: scope(),
            metrics: [
              {
                name: "g",
                unit: "1",
                description: "d",
                gauge: { dataPoints: [{ ...point(), asDouble: 1.25 }] },
              },
              {
                name: "s",
                sum: {
                  aggregationTemporality: "AGGREGATION_TEMPORALITY_DELTA",
                  isMonotonic: true,
                  dataPoints: [{ ...point(), asInt: "7" }],
                },
              },
              {
                name: "h",
                histogram: {
                  aggregationTemporality: 2,
                  dataPoints: [{
                    ...point(),
                    count: "3",
                    sum: 6,
                    bucketCounts: ["1", "2"],
                    explicitBounds: [1],
                    min: 0,
                    max: 5,
                  }],
                },
              },
              {
                name: "e",
                exponentialHistogram: {
                  aggregationTemporality: 1,
                  dataPoints: [{
                    ...point(),
                    count: "2",
                    sum: 1,
                    scale: -2,
                    zeroCount: "0",
                    positive: { offset: -1, bucketCounts: ["1"] },
                    negative: { offset: 2, bucketCounts: ["1"] },
                    zeroThreshold: 0,
                  }],
                },
              },
              {
                name: "q",
                summary: {
                  dataPoints: [{
                    ...point(),
                    count: "1",
                    sum: 2,
                    quantileValues: [{ quantile: 0.5, value: 2 }],
                  }],
                },
              },
            ],
          }],
        }],
      };
    },
  },
];

for (
  const [signal, items, extra] of [
    ["logs", "logRecords", { timeUnixNano: T, severityNumber: 9, body: { stringValue: "plain" } }],
    ["traces", "spans", { traceId: TRACE, spanId: SPAN, name: "op2", kind: 3, startTimeUnixNano: T }],
  ] as const
) {
  const one = SEEDS.find((s) => s.signal === signal)!;
  SEEDS.push({
    signal,
    body: () => {
      const body = one.body();
      (places(body).find((p) => p.key === items)!.get() as unknown[]).push(structuredClone(extra));
      return body;
    },
  });
}

/** JSON.stringify cannot write these: placeholders replaced in the text. */
const RAW: Record<string, string> = {
  "\u0000neg0": "-0",
  "\u0000digits": "9".repeat(60_000),
  "\u0000negdigits": "-" + "1".repeat(60_000),
  "\u0000huge": "1e999",
  "\u0000tiny": "1e-999",
  "\u0000int64over": "9223372036854775808",
  "\u0000u64over": "18446744073709551616",
};

const own = (text: string) => JSON.parse(text);

/** Values put in place of others. */
const HOSTILE: unknown[] = [
  // type confusion
  null,
  true,
  false,
  "",
  "x",
  [],
  [{}],
  {},
  [null],
  { stringValue: 1 },
  { intValue: {} },
  { arrayValue: [] },
  { kvlistValue: { values: {} } },
  { arrayValue: { values: [[]] } },
  // prototype names
  "toString",
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "valueOf",
  own('{"__proto__":{"stringValue":"x"}}'),
  own('{"__proto__":[1],"constructor":"y","toString":1}'),
  { kvlistValue: own('{"values":[{"key":"__proto__","value":{"stringValue":"constructor"}}]}') },
  { key: "hasOwnProperty", value: { stringValue: "toString" } },
  // extreme numbers
  0,
  1,
  -1,
  1.5,
  1e300,
  -1e300,
  5e-324,
  2 ** 53 + 2,
  2 ** 63,
  -(2 ** 63),
  2 ** 64,
  4294967296,
  "\u0000neg0",
  "\u0000digits",
  "\u0000negdigits",
  "\u0000huge",
  "\u0000tiny",
  "\u0000int64over",
  "\u0000u64over",
  "9".repeat(60_000),
  "-0",
  "0x10",
  "NaN",
  "Infinity",
  "-Infinity",
  " 1",
  "1 ",
  "+1",
  "1e3",
  "1.5e2",
  "1e300",
  "1.5",
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775809",
  "18446744073709551615",
  "18446744073709551616",
  { intValue: 1e300 },
  { intValue: "1e3" },
  { doubleValue: "0x10" },
  { doubleValue: "-0" },
  // valid values of other fields (enum names, ids)
  "SPAN_KIND_CLIENT",
  "STATUS_CODE_OK",
  "SEVERITY_NUMBER_FATAL4",
  "AGGREGATION_TEMPORALITY_CUMULATIVE",
  TRACE,
  SPAN,
  "AAAAAAAAAAAAAAAAAAAAAA==",
];

/** Fields whose values the decoders interpret (enums, numbers, ids, keys): mutations aim at them half the time. */
const FIELDS = [
  // enums twice: they are where names are looked up
  ...["kind", "code", "severityNumber", "aggregationTemporality"].flatMap((f) => [f, f]),
  "flags",
  "intValue",
  "doubleValue",
  "asInt",
  "asDouble",
  "timeUnixNano",
  "startTimeUnixNano",
  "key",
  "value",
  "count",
  "sum",
  "bucketCounts",
  "explicitBounds",
  "scale",
  "offset",
  "droppedAttributesCount",
  "traceId",
];

/** Indices of the prototype names in HOSTILE. */
const PROTOTYPE_NAMES = ["toString", "__proto__", "constructor", "hasOwnProperty", "valueOf"].map((n) =>
  HOSTILE.indexOf(n)
);

interface Place {
  key: string | number;
  get: () => unknown;
  set: (v: unknown) => void;
  /** Removes the place: an array element is cut out, an object key deleted. */
  remove: () => void;
}

/** Every place in a JSON value (containers and leaves), with its key and a setter. */
function places(root: unknown): Place[] {
  const out: Place[] = [];
  const walk = (holder: Record<string | number, unknown>, key: string | number) => {
    const v = holder[key];
    out.push({
      key,
      get: () => holder[key],
      set: (x) => holder[key] = x,
      remove: () => Array.isArray(holder) ? holder.splice(key as number, 1) : delete holder[key],
    });
    if (Array.isArray(v)) v.forEach((_, i) => walk(v as unknown as Record<number, unknown>, i));
    else if (typeof v === "object" && v !== null) {
      for (const k of Object.keys(v)) walk(v as Record<string, unknown>, k);
    }
  };
  walk({ root }, "root");
  return out;
}

/**
 * A mutation: at place `at` (modulo; among the places named FIELDS[`field`] when given), set the value
 * or add key `key` to an object (HOSTILE[`value`] either way), or remove the place.
 */
const mutationArb = fc.record({
  at: fc.nat(),
  field: fc.option(fc.nat(), { freq: 2 }), // null (any place) half the time
  // Prototype names a third of the time: they matter most where the decoders look names up.
  value: fc.oneof({ arbitrary: fc.constantFrom(...PROTOTYPE_NAMES), weight: 1 }, {
    arbitrary: fc.nat(HOSTILE.length - 1),
    weight: 2,
  }),
  key: fc.constantFrom(
    "toString",
    "__proto__",
    "constructor",
    "hasOwnProperty",
    "kind",
    "values",
    "intValue",
  ),
  // What to do there: set the value, add the key to an object, or remove the place (lone array elements
  // matter: a value a batch holds once is where a bad dictionary index shows).
  op: fc.constantFrom("set", "add", "remove"),
});

type Mutation = {
  at: number;
  field: number | null;
  value: number;
  key: string;
  op: "set" | "add" | "remove";
};

function build(seed: number, mutations: Mutation[]): string {
  const root = SEEDS[seed].body();
  for (const m of mutations) {
    const all = places(root);
    // Among the FIELDS this request has (each listed one or more times).
    const present = FIELDS.filter((f) => all.some((p) => p.key === f));
    const field = m.field === null ? undefined : present[m.field % present.length];
    const pick = field === undefined ? all : all.filter((p) => p.key === field);
    const p = pick[m.at % pick.length];
    const value = structuredClone(HOSTILE[m.value]);
    const cur = p.get();
    if (m.op === "remove" && all.indexOf(p) > 0) p.remove();
    else if (m.op === "add" && typeof cur === "object" && cur !== null && !Array.isArray(cur)) {
      // defineProperty: an own key even for "__proto__" (plain assignment would set the prototype).
      Object.defineProperty(cur, m.key, { value, enumerable: true, writable: true, configurable: true });
    } else p.set(value);
  }
  let text = JSON.stringify(root);
  for (const [mark, raw] of Object.entries(RAW)) text = text.replaceAll(JSON.stringify(mark), raw);
  return text;
}

Deno.test({
  name:
    "semantic JSON fuzz of logs, traces and metrics: 200 with files DuckDB and chDB read back, or a small 400",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await loadParquetWasm();
    const files = new FuzzFiles();
    const sink: Sink = {
      admit: () => () => {},
      accept: (request: { decoded: Decoded }) => {
        // Whatever is accepted is written: a file that cannot be encoded would be a 500 here.
        for (const t of request.decoded.tables) files.add(encodeFile(t), current);
        return Promise.resolve();
      },
      ready: () => true,
    };
    const handler = createHandler({ sink, onError: (e) => console.error("500:", e) });
    let current = "";
    const stats = { ok: 0, refused: 0 };
    const property = fc.asyncProperty(
      fc.nat(SEEDS.length - 1),
      fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
      async (seed, mutations) => {
        const text = build(seed, mutations);
        current = `seed ${seed} (${SEEDS[seed].signal}), mutations ${JSON.stringify(mutations)}`;
        const response = await handler(
          new Request(`http://localhost/v1/${SEEDS[seed].signal}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: text,
          }),
        );
        const body = await response.text();
        const where = `${SEEDS[seed].signal} ${JSON.stringify(mutations)}`;
        if (response.status === 200) return void stats.ok++;
        assert.equal(response.status, 400, `${where}: ${response.status} ${body.slice(0, 300)}`);
        const { message } = JSON.parse(body);
        assert.ok(message.length <= MAX_MESSAGE_CHARS, `${where}: message of ${message.length} characters`);
        stats.refused++;
      },
    );
    try {
      await fc.assert(property, { seed: seedFor("semantic JSON fuzz"), numRuns: CASES });
      console.log(`${stats.ok} accepted (${files.count} files), ${stats.refused} refused`);
      // Every kind of outcome happened: the fuzz is neither all refusals nor all passes.
      assert.ok(stats.ok > CASES / 10 && stats.refused > CASES / 10, JSON.stringify(stats));
      await files.readBack();
    } finally {
      files.remove();
    }
  },
});

Deno.test("the semantic fuzz's own cases: prototype enum names refused, extreme numbers sorted by the grammar", async () => {
  await loadParquetWasm();
  const files = new FuzzFiles();
  const sink: Sink = {
    admit: () => () => {},
    accept: (request: { decoded: Decoded }) => {
      for (const t of request.decoded.tables) files.add(encodeFile(t));
      return Promise.resolve();
    },
    ready: () => true,
  };
  const handler = createHandler({ sink });
  const post = async (signal: Signal, body: unknown) => {
    let text = JSON.stringify(body);
    for (const [mark, raw] of Object.entries(RAW)) text = text.replaceAll(JSON.stringify(mark), raw);
    const r = await handler(
      new Request(`http://localhost/v1/${signal}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: text,
      }),
    );
    return { status: r.status, text: await r.text() };
  };
  const span = (fields: Record<string, unknown>) => ({
    resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: TRACE, spanId: SPAN, name: "s", ...fields }] }] }],
  });
  const intAttr = (v: unknown) => span({ attributes: [{ key: "a", value: { intValue: v } }] });
  try {
    for (const name of ["toString", "__proto__", "constructor", "hasOwnProperty"]) {
      assert.equal((await post("traces", span({ kind: name }))).status, 400, name);
    }
    const accepted: unknown[] = [-0, "1e3", "-0", 2 ** 53, "9223372036854775807"];
    for (const v of accepted) assert.equal((await post("traces", intAttr(v))).status, 200, String(v));
    const refused = [1e300, 2 ** 63, "\u0000digits", "\u0000int64over", "0x10", "NaN", "", " 1", 1.5, "1e-1"];
    for (const v of refused) {
      const r = await post("traces", intAttr(v));
      assert.equal(r.status, 400, String(v).slice(0, 20));
      assert.ok(r.text.length <= MAX_MESSAGE_CHARS + 64);
    }
    await files.readBack();
    assert.equal(files.count, accepted.length);
  } finally {
    files.remove();
  }
});
