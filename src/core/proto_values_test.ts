import assert from "node:assert/strict";
import { KeyedMapColumn, StrColumn } from "./columns.ts";
import { addKeyValue, pushDouble } from "./proto_values.ts";
import { ProtoAttrScratch } from "./proto_attrs.ts";

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
});
