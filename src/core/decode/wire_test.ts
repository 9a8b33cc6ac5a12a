import { equal, throws } from "node:assert/strict";
import { decodeRequest } from "../convert.ts";
import { DecodeError } from "../errors.ts";
import { int64ToDecimal, isUtf8, WireReader } from "./wire.ts";

const varint = (v: bigint): number[] => {
  const out: number[] = [];
  while (v > 0x7fn) out.push(Number(v & 0x7fn) | 0x80), v >>= 7n;
  return [...out, Number(v)];
};

Deno.test("WireReader.bytes() refuses lengths past the buffer, also beyond 32 bits", () => {
  for (const n of [5n, 1n << 32n, (1n << 32n) + 1n, 1n << 53n, 1n << 63n]) {
    const r = new WireReader(new Uint8Array([...varint(n), 1, 2, 3]));
    throws(() => r.bytes(), DecodeError, `length ${n}`);
  }
});

Deno.test("WireReader.tag() refuses field number 0", () => {
  throws(() => new WireReader(new Uint8Array([0x02, 0x00])).tag(), /invalid field number 0/);
  throws(
    () => new WireReader(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x00])).tag(),
    /invalid field number 0/,
  );
  equal(new WireReader(new Uint8Array([0x0a])).tag(), 0x0a);
});

Deno.test("decodeRequest() reports field number 0 as a decode error of the request", () => {
  throws(() => decodeRequest("logs", new Uint8Array([0x00, 0x00]), { format: "protobuf" }), (e: unknown) => {
    return e instanceof DecodeError && e.message === "cannot decode logs request: invalid field number 0";
  });
});

Deno.test("int64ToDecimal() is exact over the whole signed range", () => {
  for (
    const v of [0n, 1n, -1n, 4294967295n, -4294967296n, 9007199254740993n, -(1n << 63n), (1n << 63n) - 1n]
  ) {
    const u = BigInt.asUintN(64, v);
    equal(int64ToDecimal(Number(u & 0xffffffffn), Number(u >> 32n)), v.toString());
  }
});

Deno.test("isUtf8() refuses overlongs, surrogates and truncated sequences", () => {
  const ok = (b: number[]) => isUtf8(new Uint8Array(b), 0, b.length);
  equal(ok([0x68, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]), true);
  for (const bad of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xff]]) {
    equal(ok(bad), false, JSON.stringify(bad));
  }
});
