/**
 * OTLP/JSON readers for the shared messages and scalar encodings: ids in hex or base64, enums as
 * integers or names, 64-bit integers as strings or numbers, keys in lowerCamelCase (the proto field
 * names are accepted too), unknown fields ignored.
 *
 * @module
 */

import { MapColumn, type StrColumn } from "./columns.ts";
import { DecodeError } from "./errors.ts";
import type { Envelope } from "./proto_values.ts";
import {
  type AttrScratch,
  fromBase64,
  fromHex,
  jsonDouble,
  MAX_ANY_VALUE_DEPTH,
  PreparedMap,
  pushBase64,
  toBase64,
  tooDeep,
} from "./values.ts";

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** A JSON object as parsed. */
export type JsonObject = Record<string, unknown>;

/** The value of a field under its JSON name or its proto name. */
export function field(o: JsonObject, camel: string, snake?: string): unknown {
  const v = o[camel];
  return v !== undefined || snake === undefined ? v : o[snake];
}

/** An object field (or undefined); anything else is an error. */
export function objectField(o: JsonObject, camel: string, snake?: string): JsonObject | undefined {
  const v = field(o, camel, snake);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw new DecodeError("expected an object", camel);
  return v as JsonObject;
}

/** An array field of objects (or empty); anything else is an error. */
export function arrayField(o: JsonObject, camel: string, snake?: string): JsonObject[] {
  const v = field(o, camel, snake);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new DecodeError("expected an array", camel);
  return v as JsonObject[];
}

/** A string field ("" when absent). */
export function stringField(o: JsonObject, camel: string, snake?: string): string {
  const v = field(o, camel, snake);
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new DecodeError("expected a string", camel);
  return v;
}

/** Low/high words of the last `u64()` / `i64()` result. */
export const u64Out = { lo: 0, hi: 0 };

const DECIMAL = /^-?[0-9]+$/;

/** A 64-bit unsigned integer given as a number or a decimal string, into `u64Out`. */
export function u64(v: unknown, name: string): void {
  if (v === undefined || v === null) {
    u64Out.lo = 0, u64Out.hi = 0;
    return;
  }
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 0) {
      throw new DecodeError(`expected a non-negative integer, got ${v}`, name);
    }
    if (v >= 18446744073709551616) throw new DecodeError(`${v} does not fit in 64 bits`, name);
    u64Out.lo = v % 4294967296 >>> 0, u64Out.hi = Math.floor(v / 4294967296) >>> 0;
    return;
  }
  if (typeof v === "string" && DECIMAL.test(v) && v[0] !== "-") {
    if (v.length <= 15) {
      const n = Number(v);
      u64Out.lo = n % 4294967296 >>> 0, u64Out.hi = Math.floor(n / 4294967296) >>> 0;
      return;
    }
    const b = BigInt(v);
    if (b >= 1n << 64n) throw new DecodeError(`${v} does not fit in 64 bits`, name);
    u64Out.lo = Number(b & 0xffffffffn), u64Out.hi = Number(b >> 32n);
    return;
  }
  throw new DecodeError(`expected an unsigned 64-bit integer, got ${JSON.stringify(v)}`, name);
}

/** A signed 64-bit integer as exact decimal text (number or decimal string). */
export function i64Text(v: unknown, name: string): string {
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new DecodeError(`expected an integer, got ${v}`, name);
    return Number.isSafeInteger(v) ? String(v) : BigInt(v).toString();
  }
  if (typeof v === "string" && DECIMAL.test(v)) {
    const b = BigInt(v);
    if (b >= 1n << 63n || b < -(1n << 63n)) throw new DecodeError(`${v} does not fit in 64 bits`, name);
    return b.toString();
  }
  throw new DecodeError(`expected a 64-bit integer, got ${JSON.stringify(v)}`, name);
}

/** A signed 64-bit integer as a float64. */
export function i64Number(v: unknown, name: string): number {
  return Number(i64Text(v, name));
}

/** A uint32 / int32 (number or decimal string); 0 when absent. */
export function int32(v: unknown, name: string, signed = false): number {
  if (v === undefined || v === null) return 0;
  const n = typeof v === "string" && DECIMAL.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n)) {
    throw new DecodeError(`expected an integer, got ${JSON.stringify(v)}`, name);
  }
  if (signed ? n < -2147483648 || n > 2147483647 : n < 0 || n > 4294967295) {
    throw new DecodeError(`${n} is out of range`, name);
  }
  return n;
}

/** A double: a number, or "NaN" / "Infinity" / "-Infinity" / a numeric string; 0 when absent. */
export function double(v: unknown, name: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") return v;
  if (typeof v === "string") {
    if (v === "NaN") return NaN;
    if (v === "Infinity") return Infinity;
    if (v === "-Infinity") return -Infinity;
    const n = Number(v);
    if (v.trim() !== "" && !Number.isNaN(n)) return n;
  }
  throw new DecodeError(`expected a number, got ${JSON.stringify(v)}`, name);
}

/** A boolean (true/false); false when absent. */
export function bool(v: unknown, name: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw new DecodeError(`expected true or false, got ${JSON.stringify(v)}`, name);
  return v;
}

/** An enum given as an integer or by name; names not in the table are refused. */
export function enumValue(
  v: unknown,
  names: Readonly<Record<string, number>>,
  name: string,
  max: number,
): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new DecodeError(`unknown value ${v}`, name);
    return v;
  }
  if (typeof v === "string") {
    const n = names[v];
    if (n !== undefined) return n;
    if (DECIMAL.test(v) && Number(v) <= max && Number(v) >= 0) return Number(v);
    throw new DecodeError(`unknown value ${JSON.stringify(v)}`, name);
  }
  throw new DecodeError(`expected an enum name or number, got ${JSON.stringify(v)}`, name);
}

/** A trace or span id: hex (either case) or base64 of exactly `size` bytes; empty → an empty array. */
export function id(v: unknown, size: number, name: string): Uint8Array {
  if (v === undefined || v === null || v === "") return EMPTY;
  if (typeof v !== "string") throw new DecodeError("expected a hex or base64 string", name);
  const bytes = v.length === size * 2 ? fromHex(v) : undefined;
  if (bytes) return bytes;
  const b64 = fromBase64(v);
  if (b64 && b64.length === size) return b64;
  throw new DecodeError(
    `${JSON.stringify(v)} is neither ${size * 2} hex digits nor base64 of ${size} bytes`,
    name,
  );
}

/** Appends a JSON AnyValue rendered as text. */
export function pushJsonAnyValue(out: StrColumn, v: unknown, name: string): void {
  if (v === undefined || v === null) return out.pushEmpty();
  if (typeof v !== "object" || Array.isArray(v)) throw new DecodeError("expected an AnyValue object", name);
  const o = v as JsonObject;
  let x: unknown;
  if ((x = field(o, "stringValue", "string_value")) !== undefined) {
    if (typeof x !== "string") throw new DecodeError("expected a string", `${name}.stringValue`);
    return out.pushString(x);
  }
  if ((x = field(o, "boolValue", "bool_value")) !== undefined) {
    return out.pushAscii(bool(x, `${name}.boolValue`) ? "true" : "false");
  }
  if ((x = field(o, "intValue", "int_value")) !== undefined) {
    return out.pushAscii(i64Text(x, `${name}.intValue`));
  }
  if ((x = field(o, "doubleValue", "double_value")) !== undefined) {
    return out.pushAscii(String(double(x, `${name}.doubleValue`)));
  }
  if ((x = field(o, "bytesValue", "bytes_value")) !== undefined) {
    const bytes = typeof x === "string" ? fromBase64(x) : undefined;
    if (!bytes) throw new DecodeError("expected base64", `${name}.bytesValue`);
    return pushBase64(out, bytes, 0, bytes.length);
  }
  return out.pushString(anyJsonText(o, name, 0) ?? "");
}

/** An AnyValue as JSON text (arrays and kvlists); undefined for an empty AnyValue at the top. */
function anyJsonText(o: JsonObject, name: string, depth: number): string | undefined {
  if (depth > MAX_ANY_VALUE_DEPTH) tooDeep();
  let x: unknown;
  if ((x = field(o, "stringValue", "string_value")) !== undefined) {
    if (typeof x !== "string") throw new DecodeError("expected a string", `${name}.stringValue`);
    return JSON.stringify(x);
  }
  if ((x = field(o, "boolValue", "bool_value")) !== undefined) return bool(x, name) ? "true" : "false";
  if ((x = field(o, "intValue", "int_value")) !== undefined) return i64Text(x, name);
  if ((x = field(o, "doubleValue", "double_value")) !== undefined) return jsonDouble(double(x, name));
  if ((x = field(o, "bytesValue", "bytes_value")) !== undefined) {
    const bytes = typeof x === "string" ? fromBase64(x) : undefined;
    if (!bytes) throw new DecodeError("expected base64", `${name}.bytesValue`);
    return `"${toBase64(bytes)}"`;
  }
  const arr = objectField(o, "arrayValue", "array_value");
  if (arr) {
    const values = arrayField(arr, "values");
    return `[${values.map((v, i) => element(v, `${name}.arrayValue.values[${i}]`, depth + 1)).join(",")}]`;
  }
  const kv = objectField(o, "kvlistValue", "kvlist_value");
  if (kv) {
    const entries = new Map<string, string>();
    arrayField(kv, "values").forEach((e, i) => {
      if (typeof e !== "object" || e === null || Array.isArray(e)) {
        throw new DecodeError("expected a KeyValue object", `${name}.kvlistValue.values[${i}]`);
      }
      const key = stringField(e, "key");
      entries.delete(key);
      entries.set(key, element(e.value, `${name}.kvlistValue.values[${i}].value`, depth + 1));
    });
    const keys = [...entries.keys()].sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${entries.get(k)}`).join(",")}}`;
  }
  return depth === 0 ? undefined : "null";
}

function element(v: unknown, name: string, depth: number): string {
  if (v === undefined || v === null) return "null";
  if (typeof v !== "object" || Array.isArray(v)) throw new DecodeError("expected an AnyValue object", name);
  return anyJsonText(v as JsonObject, name, depth) ?? "null";
}

/** Adds a JSON attribute list to the scratch. */
export function addJsonAttributes(scratch: AttrScratch, list: unknown, name: string): void {
  if (list === undefined || list === null) return;
  if (!Array.isArray(list)) throw new DecodeError("expected an array", name);
  for (let i = 0; i < list.length; i++) {
    const kv = list[i];
    if (typeof kv !== "object" || kv === null) {
      throw new DecodeError("expected a KeyValue object", `${name}[${i}]`);
    }
    const key = (kv as JsonObject).key;
    if (typeof key !== "string") throw new DecodeError("expected a string", `${name}[${i}].key`);
    scratch.keys.pushString(key);
    pushJsonAnyValue(scratch.values, (kv as JsonObject).value, `${name}[${i}].value`);
  }
}

/** A JSON Resource or InstrumentationScope as a prepared envelope. */
export function jsonEnvelope(
  o: JsonObject | undefined,
  isScope: boolean,
  scratch: AttrScratch,
  name: string,
): Envelope {
  const map = new MapColumn(1, 16);
  scratch.reset();
  if (o) addJsonAttributes(scratch, o.attributes, `${name}.attributes`);
  scratch.flushTo(map);
  return {
    attributes: new PreparedMap(map),
    name: isScope && o ? encoder.encode(stringField(o, "name")) : EMPTY,
    version: isScope && o ? encoder.encode(stringField(o, "version")) : EMPTY,
    droppedAttributesCount: o
      ? int32(
        field(o, "droppedAttributesCount", "dropped_attributes_count"),
        `${name}.droppedAttributesCount`,
      )
      : 0,
  };
}
