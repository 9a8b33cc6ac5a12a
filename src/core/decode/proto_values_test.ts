import assert from "node:assert/strict";
import { encodeJson, encodeProtobuf, type LogsRequest } from "../../../bench/data.ts";
import { KeyedMapColumn, MapColumn, StrColumn } from "../table/columns.ts";
import { decodeRequest } from "../convert.ts";
import type { Rows } from "../table/rows.ts";
import { addKeyValue, pushDouble, pushStringValue } from "./proto_values.ts";
import { ProtoAttrScratch } from "./proto_attrs.ts";
import { MAX_ANY_VALUE_CHARS, MAX_ANY_VALUE_ELEMENTS, UINT_TEXT_MAX, writeUint } from "../table/values.ts";
import { DecodeError } from "../errors.ts";
import {
  anyValue as protoAny,
  keyValue as protoKeyValue,
  logRecord as protoRecord,
  logsRequest as protoLogs,
} from "../../../tests/reliability/otlp_proto.ts";

/** Doubles whose text the fast path writes itself, and the ones it must leave to String(). */
function* doubles(): Generator<number> {
  const specials = [
    0,
    -0,
    NaN,
    Infinity,
    -Infinity,
    1e21,
    1e9,
    999999999.999,
    999999999.9995,
    5e-324,
    2.2250738585072014e-308,
    Number.MAX_VALUE,
    Number.MAX_SAFE_INTEGER,
    2 ** 32,
    2 ** 53,
    1e-7,
    1e-6,
    0.001,
    0.0005,
    0.1,
    0.2,
    0.3,
    0.1 + 0.2,
    1.005,
    1 / 3,
    123.456,
    1e20,
    4294967295,
    0.999,
    0.9995,
    9.999,
    99.9999,
  ];
  for (const d of specials) yield d, yield -d;
  const f64 = new Float64Array(1), u32 = new Uint32Array(f64.buffer);
  let seed = 7;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
  for (let i = 0; i < 200_000; i++) {
    const r = rnd();
    if (r < 0.3) yield Math.round(rnd() * 10 ** Math.floor(rnd() * 13)) / 10 ** Math.floor(rnd() * 5);
    else if (r < 0.5) yield Math.round((rnd() - 0.5) * 500_000) / 1000;
    else if (r < 0.7) yield (rnd() - 0.5) * 10 ** (Math.floor(rnd() * 40) - 20);
    else {
      // Random bit patterns, and neighbours (one ulp off) of k / 1000.
      u32[0] = (rnd() * 2 ** 32) >>> 0, u32[1] = (rnd() * 2 ** 32) >>> 0;
      yield f64[0];
      f64[0] = Math.round((rnd() - 0.5) * 2e12) / 1000;
      u32[0] += 1;
      yield f64[0];
    }
  }
  for (let k = -100_000; k <= 100_000; k++) yield k / 1000;
  for (let k = 999_999_990_000; k <= 1_000_000_010_000; k += 97) yield k / 1000, yield -k / 1000;
}

Deno.test("pushDouble() writes exactly what String() writes, for every kind of double", () => {
  const col = new StrColumn();
  let n = 0;
  for (const d of doubles()) {
    col.length = 0;
    pushDouble(col, d);
    if (col.get(0) !== String(d)) assert.fail(`pushDouble(${String(d)}) wrote ${col.get(0)}`);
    n++;
  }
  assert.ok(n > 400_000, `${n} values`);
});

/** A KeyValue message: key (field 1) and an AnyValue (field 2) holding `value` (already a field of it). */
function keyValue(key: string, value: number[]): Uint8Array {
  const k = [...new TextEncoder().encode(key)];
  return new Uint8Array([0x0a, k.length, ...k, 0x12, value.length, ...value]);
}
const doubleField = (d: number): number[] => [0x21, ...new Uint8Array(new Float64Array([d]).buffer)];
function varintField(field: number, v: number): number[] {
  const out = [field << 3];
  for (; v >= 0x80; v = Math.floor(v / 128)) out.push((v & 0x7f) | 0x80);
  return [...out, v];
}

Deno.test("attribute values written when the list is flushed are the text String() gives", () => {
  // Ints, bools and doubles take the fast path's deferred writes (or, for unusual doubles, the rendered
  // buffer); a list mixes them with strings, and their keys arrive out of order.
  const values: [number[], string][] = [];
  for (const d of [0, -0, 1.5, -250.125, 999999999.999, 0.1 + 0.2, 1e21, NaN, 5e-324, 123456.7]) {
    values.push([doubleField(d), String(d)]);
  }
  for (const v of [0, 7, 200, 65535, 2 ** 28 - 1, 2 ** 28, 2 ** 32 - 1]) {
    values.push([varintField(3, v), String(v)]);
  }
  values.push([varintField(2, 1), "true"], [varintField(2, 0), "false"], [varintField(2, 5), "true"]);
  values.push([[0x0a, 3, 0x61, 0x62, 0x63], "abc"]);
  const scratch = new ProtoAttrScratch();
  const map = new KeyedMapColumn();
  for (let round = 0; round < 2; round++) {
    // One request buffer holds every KeyValue, as the scratch's ranges require.
    const expected: Record<string, string> = {};
    const kvs = values.map(([field, text], i) => {
      const key = `k${String(values.length - i).padStart(2, "0")}`;
      expected[key] = text;
      return keyValue(key, field);
    });
    const buf = new Uint8Array(kvs.reduce((n, kv) => n + kv.length, 0));
    let at = 0;
    for (const kv of kvs) buf.set(kv, at), addKeyValue(scratch, buf, at, at += kv.length);
    scratch.flushToKeyed(map);
    assert.deepEqual(map.get(round), expected);
  }
  // Ints up to 2^32 - 1 are kept in an Int32Array slot: the top bit must not turn them negative.
  const key = new TextEncoder().encode("big");
  scratch.addUint(key, 0, key.length, 2 ** 32 - 1, false);
  scratch.flushToKeyed(map);
  assert.deepEqual(map.get(2), { big: "4294967295" });
});

Deno.test("protobuf attribute lists that repeat, reorder, repeat a key or change shape decode as JSON does", () => {
  // Each record's list is compared with the one before it (the decoder reuses a repeated list's order and
  // key list): repeats, reorderings, prefixes, duplicates, empty lists and values off the fast path.
  const s = (key: string, v: string) => ({ key, value: { stringValue: v } });
  const i = (key: string, v: number) => ({ key, value: { intValue: String(v) } });
  const b = (key: string, v: boolean) => ({ key, value: { boolValue: v } });
  const d = (key: string, v: number) => ({ key, value: { doubleValue: v } });
  const lists = [
    [s("http.route", "/a"), i("status", 200), b("ok", true), d("ms", 1.5)],
    [s("http.route", "/b"), i("status", 404), b("ok", false), d("ms", 2.25)],
    [s("http.route", "/c"), i("status", 500), b("ok", false), d("ms", 0)],
    [d("ms", 3), s("http.route", "/d"), i("status", 201), b("ok", true)],
    [s("http.route", "/e"), i("status", 200), b("ok", true), d("ms", 4)],
    [s("http.route", "/f"), i("status", 200)],
    [s("http.route", "/g"), i("status", 200), b("ok", true), s("z", "last")],
    [s("dup", "first"), s("dup", "second"), i("status", 1)],
    [s("dup", "third"), s("dup", "fourth"), i("status", 2)],
    [],
    [],
    [s("http.route", "/h"), i("status", 200), b("ok", true), d("ms", 1 / 3)],
    [s("http.route", "/é"), i("status", -7), b("ok", true), d("ms", 1 / 3)],
    [s("http.route", "/i"), i("status", 2 ** 40), b("ok", true), d("ms", 5)],
    [s("http.route", "/j"), i("status", 200), b("ok", true), d("ms", 6)],
  ];
  const time = (n: number) => String(1_700_000_000_000_000_000n + BigInt(n));
  const request: LogsRequest = {
    resourceLogs: [{
      resource: { attributes: [s("service.name", "svc")] },
      scopeLogs: [{
        scope: { name: "scope", version: "1" },
        logRecords: lists.map((attributes, n) => ({
          timeUnixNano: time(n),
          observedTimeUnixNano: time(n),
          severityNumber: 9,
          severityText: "INFO",
          body: { stringValue: `record ${n}` },
          attributes,
          flags: 0,
        })),
      }],
      schemaUrl: "",
    }],
  };
  const fromProto = decodeRequest("logs", encodeProtobuf("logs", request), { format: "protobuf" }).tables[0];
  const fromJson = decodeRequest("logs", encodeJson(request), { format: "json" }).tables[0];
  const attrs = (rows: Rows) => {
    const col = rows.col<KeyedMapColumn>("LogAttributes");
    return Array.from({ length: rows.length }, (_, r) => col.get(r));
  };
  assert.equal(fromProto.length, lists.length);
  assert.deepEqual(attrs(fromProto), attrs(fromJson));
  assert.deepEqual(attrs(fromProto)[8], { dup: "fourth", status: "2" });
  assert.deepEqual(attrs(fromProto)[3], { "http.route": "/d", ms: "3", ok: "true", status: "201" });
  // Distinct key lists: route/status/ok/ms, route/status, route/status/ok/z, dup/status, none.
  assert.equal(fromProto.col<KeyedMapColumn>("LogAttributes").lists.length, 5);
});

Deno.test("a list flushed to a plain map in between does not disturb the repeated keyed list", () => {
  const scratch = new ProtoAttrScratch(), keyed = new KeyedMapColumn(), plain = new MapColumn();
  const kvs = [
    keyValue("b", [0x18, 1]),
    keyValue("a", [0x18, 2]),
    keyValue("d", [0x18, 3]),
    keyValue("c", [0x18, 4]),
  ];
  const buf = new Uint8Array(kvs.reduce((n, kv) => n + kv.length, 0));
  const at = [0];
  for (const kv of kvs) buf.set(kv, at[at.length - 1]), at.push(at[at.length - 1] + kv.length);
  const add = (...entries: number[]) => entries.forEach((i) => addKeyValue(scratch, buf, at[i], at[i + 1]));
  add(0, 1), scratch.flushToKeyed(keyed);
  add(2, 3, 1), scratch.flushTo(plain);
  add(0, 1), scratch.flushToKeyed(keyed);
  assert.deepEqual([keyed.get(0), plain.get(0), keyed.get(1)], [{ a: "2", b: "1" }, {
    a: "2",
    c: "4",
    d: "3",
  }, {
    a: "2",
    b: "1",
  }]);
});

Deno.test("writeUint() writes the decimal digits String() writes, from 0 to 2^32 - 1", () => {
  const b = new Uint8Array(UINT_TEXT_MAX + 2), dec = new TextDecoder();
  const values = [
    ...Array.from({ length: 100_001 }, (_, v) => v),
    999_999,
    1_000_000,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32 - 1,
  ];
  for (const v of values) {
    const end = writeUint(b, 1, v);
    if (dec.decode(b.subarray(1, end)) !== String(v)) {
      assert.fail(`writeUint(${v}) wrote ${dec.decode(b.subarray(1, end))}`);
    }
  }
});

Deno.test("pushStringValue() appends valid UTF-8 strings and leaves anything else to pushAnyValue", () => {
  const col = new StrColumn();
  const anyString = (bytes: number[]) =>
    new Uint8Array([0x0a, ...varintField(0, bytes.length).slice(1), ...bytes]);
  const text = (s: string) => [...new TextEncoder().encode(s)];
  const ok = [
    "",
    "plain ascii body of a log line",
    "héllo wörld ✓",
    "x".repeat(127),
    "y".repeat(128),
    "z".repeat(5000),
  ];
  for (const s of ok) {
    const v = anyString(text(s));
    assert.equal(pushStringValue(col, v, 0, v.length), true, s);
    assert.equal(col.get(col.length - 1), s);
  }
  const before = { length: col.length, end: col.offsets[col.length] };
  for (const bad of [[0x61, 0xff, 0x62], [0xc3], [...text("a".repeat(200)), 0x80], [0xed, 0xa0, 0x80]]) {
    const v = anyString(bad);
    assert.equal(pushStringValue(col, v, 0, v.length), false);
  }
  const intValue = new Uint8Array([0x18, 5]);
  assert.equal(pushStringValue(col, intValue, 0, intValue.length), false);
  assert.deepEqual({ length: col.length, end: col.offsets[col.length] }, before);
});

Deno.test("protobuf arrays and kvlists past the AnyValue caps are DecodeErrors naming the field", () => {
  const request = (body: Uint8Array) =>
    protoLogs([{ service: "s", records: [protoRecord({ timeMs: 1_700_000_000_000, body })] }]);
  const refused = (body: Uint8Array): DecodeError => {
    try {
      decodeRequest("logs", request(body), { format: "protobuf" });
    } catch (e) {
      if (e instanceof DecodeError) return e;
      throw e;
    }
    assert.fail("expected a DecodeError");
  };
  const ints = (n: number) => Array.from({ length: n }, () => protoAny.int(1));
  // At the element cap it decodes; one more, over two levels, does not.
  const atCap = decodeRequest("logs", request(protoAny.array(ints(MAX_ANY_VALUE_ELEMENTS))), {
    format: "protobuf",
  });
  assert.equal(atCap.records, 1);
  const half = MAX_ANY_VALUE_ELEMENTS / 2;
  let e = refused(protoAny.array([protoAny.array(ints(half)), protoAny.array(ints(half))]));
  assert.match(e.message, /logRecords\[0\]\.body: AnyValue holds more than 65536 elements/);
  e = refused(protoAny.kvlist(ints(MAX_ANY_VALUE_ELEMENTS + 1).map((v, i) => protoKeyValue(`k${i}`, v))));
  assert.match(e.message, /more than 65536 elements/);
  // Control characters render six characters each: two strings of 3 M pass 16 Mi characters.
  const s = "\u0001".repeat(3_000_000);
  e = refused(protoAny.array([protoAny.string(s), protoAny.string(s)]));
  assert.match(
    e.message,
    new RegExp(`body: AnyValue renders to more than ${MAX_ANY_VALUE_CHARS} characters`),
  );
  // As an attribute value too.
  const attr = protoRecord({
    timeMs: 1_700_000_000_000,
    attributes: [protoKeyValue("a", protoAny.array(ints(MAX_ANY_VALUE_ELEMENTS + 1)))],
  });
  try {
    decodeRequest("logs", protoLogs([{ service: "s", records: [attr] }]), { format: "protobuf" });
    assert.fail("expected a DecodeError");
  } catch (err) {
    assert.ok(err instanceof DecodeError);
    assert.match(err.message, /attributes\[0\]\["a"\]\.value: AnyValue holds more than/);
  }
});
