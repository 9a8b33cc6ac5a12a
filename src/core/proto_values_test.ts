import assert from "node:assert/strict";
import { StrColumn } from "./columns.ts";
import { pushDouble } from "./proto_values.ts";

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
