/**
 * The OTLP/JSON scalar readers: numbers by the proto3 JSON grammar with a length cap, enums by own
 * names only, and AnyValue rendering within its caps.
 */
import assert from "node:assert/strict";
import { decodeRequest } from "../convert.ts";
import { DecodeError, MAX_MESSAGE_CHARS } from "../errors.ts";
import {
  double,
  enumValue,
  i64Text,
  int32,
  MAX_NUMBER_CHARS,
  pushJsonAnyValue,
  u64,
  u64Out,
} from "./json_values.ts";
import { StrColumn } from "../table/columns.ts";
import { SEVERITY_NUMBERS } from "./logs_json.ts";
import { MAX_ANY_VALUE_CHARS, MAX_ANY_VALUE_ELEMENTS } from "../table/values.ts";

/** The DecodeError `fn` throws; fails when it returns or throws anything else. */
function refusal(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
  assert.fail("expected a DecodeError");
}

Deno.test("i64Text() reads proto3 JSON integers: numbers, decimal strings and exponent forms that denote integers", () => {
  const ok: [unknown, string][] = [
    [0, "0"],
    [-0, "0"],
    [-12, "-12"],
    [2 ** 53, "9007199254740992"],
    [-(2 ** 63), "-9223372036854775808"],
    ["42", "42"],
    ["-0", "0"],
    ["007", "7"],
    ["9223372036854775807", "9223372036854775807"],
    ["-9223372036854775808", "-9223372036854775808"],
    ["1e3", "1000"],
    ["1E+3", "1000"],
    ["1.5e2", "150"],
    ["100.000", "100"],
    ["12300e-2", "123"],
    ["0e999999999", "0"],
    ["0.0", "0"],
  ];
  for (const [v, want] of ok) assert.equal(i64Text(v, "intValue"), want, `${JSON.stringify(v)}`);
  const refused: unknown[] = [
    1e300,
    2 ** 63,
    1.5,
    NaN,
    Infinity,
    "9223372036854775808",
    "-9223372036854775809",
    "1e19",
    "1e999999999",
    "1.5",
    "1e-1",
    "0x10",
    "",
    " 1",
    "1 ",
    "+1",
    "NaN",
    "Infinity",
    "1_000",
    "١",
    true,
    null,
    [],
    {},
  ];
  for (const v of refused) {
    const e = refusal(() => i64Text(v, "intValue"));
    assert.equal(e.path, "intValue", `${JSON.stringify(v)}`);
  }
});

Deno.test("i64Text() and u64() refuse long number text before reading it, whatever its digits", () => {
  for (const text of ["1".repeat(60_000), "0".repeat(MAX_NUMBER_CHARS) + "1", "1e" + "9".repeat(100)]) {
    for (
      const read of [
        (v: string) => i64Text(v, "f"),
        (v: string) => u64(v, "f"),
        (v: string) => double(v, "f"),
      ]
    ) {
      const e = refusal(() => read(text));
      assert.match(
        e.message,
        new RegExp(`number text of ${text.length} characters \\(at most ${MAX_NUMBER_CHARS}\\)`),
      );
      assert.ok(e.message.length < 200);
    }
  }
  // At the cap, text is still read.
  assert.equal(i64Text("0".repeat(MAX_NUMBER_CHARS - 1) + "7", "f"), "7");
});

Deno.test("u64() reads unsigned 64-bit integers into words and refuses negatives and overflow", () => {
  const words = (v: unknown) => (u64(v, "timeUnixNano"), [u64Out.hi, u64Out.lo]);
  assert.deepEqual(words("18446744073709551615"), [0xffffffff, 0xffffffff]);
  const t = 1700000000000000000n, tw = [Number(t >> 32n), Number(t & 0xffffffffn)];
  assert.deepEqual(words("1700000000000000000"), tw);
  assert.deepEqual(words(1700000000000000000), tw);
  assert.deepEqual(words("1.7e18"), tw);
  assert.deepEqual(words("17000000000000000000e-1"), tw);
  assert.deepEqual(words(-0), [0, 0]);
  assert.deepEqual(words(undefined), [0, 0]);
  for (const v of ["18446744073709551616", 2 ** 64, "-1", -1, "1e20", "0x10", "", 1e300, 0.5, "abc"]) {
    assert.equal(refusal(() => u64(v, "timeUnixNano")).path, "timeUnixNano", `${JSON.stringify(v)}`);
  }
});

Deno.test("u64() reads every length of plain digits exactly, as BigInt does", () => {
  const words = (v: string) => (u64(v, "timeUnixNano"), [u64Out.hi, u64Out.lo]);
  const exact = (b: bigint) => [Number(b >> 32n), Number(b & 0xffffffffn)];
  const max = (1n << 64n) - 1n;
  const samples = [0n, 9n, 10n ** 9n - 1n, 10n ** 9n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 1n, 10n ** 15n];
  samples.push(10n ** 19n - 1n, 10n ** 19n, 2n ** 63n, max - 1n, max);
  let x = 0x9e3779b97f4a7c15n;
  for (let i = 0; i < 2000; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & max;
    samples.push(x >> BigInt(i % 64)); // every length from 1 to 20 digits
  }
  for (const b of samples) assert.deepEqual(words(b.toString()), exact(b), b.toString());
  // Leading zeros are not plain digits: the general grammar reads them, to the same value.
  assert.deepEqual(words("0018446744073709551615"), exact(max));
});

Deno.test("i64Text() gives the canonical text of every length, at and past the 64-bit bounds", () => {
  let x = 0x2545f4914f6cdd1dn;
  for (let i = 0; i < 2000; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
    const v = BigInt.asIntN(64, x) >> BigInt(i % 64); // every length from 1 to 19 digits, both signs
    assert.equal(i64Text(v.toString(), "asInt"), v.toString());
  }
  assert.equal(i64Text("9223372036854775807", "asInt"), "9223372036854775807");
  assert.equal(i64Text("-9223372036854775808", "asInt"), "-9223372036854775808");
  assert.equal(i64Text("-0", "asInt"), "0");
  assert.equal(i64Text("-007", "asInt"), "-7");
  for (const v of ["9223372036854775808", "-9223372036854775809", "10000000000000000000", "-", "1-", "1 "]) {
    assert.equal(refusal(() => i64Text(v, "asInt")).path, "asInt", v);
  }
});

Deno.test("int32() reads numbers and integer strings in range, exponents included", () => {
  assert.equal(int32("1e2", "flags"), 100);
  assert.equal(int32("4294967295", "flags"), 4294967295);
  assert.equal(int32(-0, "scale", true), 0);
  assert.ok(Object.is(int32(-0, "scale", true), 0));
  assert.equal(int32("-2147483648", "scale", true), -2147483648);
  for (const v of ["4294967296", -1, "0x10", "", " 1", 1.5, "1e10", true]) {
    assert.equal(refusal(() => int32(v, "flags")).path, "flags", `${JSON.stringify(v)}`);
  }
});

Deno.test("double() reads numbers, NaN and infinities by name, and numeric strings in JSON syntax only", () => {
  assert.ok(Number.isNaN(double("NaN", "d")));
  assert.equal(double("Infinity", "d"), Infinity);
  assert.equal(double("-Infinity", "d"), -Infinity);
  assert.equal(double("1.5e3", "d"), 1500);
  assert.equal(double("-0.25", "d"), -0.25);
  assert.equal(double(1e300, "d"), 1e300);
  assert.ok(Object.is(double(-0, "d"), -0));
  for (
    const v of [
      "0x10",
      "",
      " 1",
      "1 ",
      "+1",
      ".5",
      "1.",
      "inf",
      "nan",
      "1e400",
      "Infinity ",
      Infinity,
      true,
      [],
      {},
    ]
  ) {
    assert.equal(refusal(() => double(v, "asDouble")).path, "asDouble", `${JSON.stringify(v)}`);
  }
});

Deno.test("enumValue() looks names up among the table's own properties: prototype names are unknown values", () => {
  assert.equal(enumValue("SEVERITY_NUMBER_WARN", SEVERITY_NUMBERS, "severityNumber", 24), 13);
  assert.equal(enumValue(13, SEVERITY_NUMBERS, "severityNumber", 24), 13);
  assert.equal(enumValue("13", SEVERITY_NUMBERS, "severityNumber", 24), 13);
  for (
    const v of ["toString", "__proto__", "constructor", "hasOwnProperty", "valueOf", "25", 25, -1, 1.5, "x"]
  ) {
    const e = refusal(() => enumValue(v, SEVERITY_NUMBERS, "severityNumber", 24));
    assert.equal(e.path, "severityNumber");
    assert.match(e.problem, /^unknown value /);
  }
});

Deno.test("decodeRequest() refuses prototype names as enums of every signal with a 400-class DecodeError", () => {
  const span = (kind: unknown, code: unknown) => ({
    resourceSpans: [{ scopeSpans: [{ spans: [{ name: "s", kind, status: { code } }] }] }],
  });
  const log = (severityNumber: unknown) => ({
    resourceLogs: [{ scopeLogs: [{ logRecords: [{ severityNumber }] }] }],
  });
  const sum = (aggregationTemporality: unknown) => ({
    resourceMetrics: [{
      scopeMetrics: [{
        metrics: [{ name: "m", sum: { aggregationTemporality, dataPoints: [{ asInt: "1" }] } }],
      }],
    }],
  });
  const json = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  for (const name of ["toString", "__proto__", "constructor", "hasOwnProperty"]) {
    const cases: [Parameters<typeof decodeRequest>[0], unknown, string][] = [
      ["traces", span(name, 0), "kind"],
      ["traces", span(0, name), "status.code"],
      ["logs", log(name), "severityNumber"],
      ["metrics", sum(name), "sum.aggregationTemporality"],
    ];
    for (const [signal, body, field] of cases) {
      const e = refusal(() => decodeRequest(signal, json(body), { format: "json" }));
      assert.ok(e.path.endsWith(field), `${signal} ${name}: ${e.message}`);
    }
  }
  // Prototype names as keys and values are data like any other.
  const ok = decodeRequest(
    "logs",
    json({
      resourceLogs: [{
        scopeLogs: [{
          logRecords: [{
            body: { kvlistValue: { values: [{ key: "__proto__", value: { stringValue: "constructor" } }] } },
            attributes: [{ key: "toString", value: { stringValue: "__proto__" } }],
          }],
        }],
      }],
    }),
    { format: "json" },
  );
  assert.equal(ok.records, 1);
});

Deno.test("pushJsonAnyValue() refuses arrays and kvlists past the element cap, counting every level", () => {
  const col = new StrColumn();
  const flat = (n: number) => ({
    arrayValue: { values: Array.from({ length: n }, () => ({ intValue: 1 })) },
  });
  pushJsonAnyValue(col, flat(MAX_ANY_VALUE_ELEMENTS), "body");
  assert.equal(col.get(0).length, MAX_ANY_VALUE_ELEMENTS * 2 + 1);
  let e = refusal(() => pushJsonAnyValue(col, flat(MAX_ANY_VALUE_ELEMENTS + 1), "body"));
  assert.equal(e.message, `field body: AnyValue holds more than ${MAX_ANY_VALUE_ELEMENTS} elements`);
  // Two levels of half the cap each pass it together.
  const half = MAX_ANY_VALUE_ELEMENTS / 2;
  const nested = { arrayValue: { values: [flat(half), flat(half)] } };
  e = refusal(() => pushJsonAnyValue(col, nested, "body"));
  assert.equal(e.path, "body.arrayValue.values[1]");
  // kvlists too; the count starts again with each value.
  const kv = (n: number) => ({
    kvlistValue: {
      values: Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: { boolValue: true } })),
    },
  });
  refusal(() => pushJsonAnyValue(col, kv(MAX_ANY_VALUE_ELEMENTS + 1), "body"));
  pushJsonAnyValue(col, kv(3), "body");
  assert.equal(col.get(col.length - 1), '{"k0":true,"k1":true,"k2":true}');
});

Deno.test("pushJsonAnyValue() refuses arrays and kvlists whose text passes the character cap", () => {
  const col = new StrColumn();
  // Control characters render six times their length ("\u0001"): 4 strings of a sixth of the cap pass it.
  const s = "\u0001".repeat(Math.ceil(MAX_ANY_VALUE_CHARS / 6 / 4) + 1);
  const e = refusal(() =>
    pushJsonAnyValue(col, { arrayValue: { values: [0, 1, 2, 3].map(() => ({ stringValue: s })) } }, "body")
  );
  assert.match(e.message, new RegExp(`more than ${MAX_ANY_VALUE_CHARS} characters`));
  assert.match(e.path, /^body\.arrayValue\.values\[\d\]$/);
  assert.ok(e.message.length <= MAX_MESSAGE_CHARS);
  assert.equal(col.length, 0);
  // Keys count too.
  const k = "\u0001".repeat(Math.ceil(MAX_ANY_VALUE_CHARS / 6 / 2) + 1);
  refusal(() => pushJsonAnyValue(col, { kvlistValue: { values: [{ key: k }, { key: k + "x" }] } }, "body"));
});
