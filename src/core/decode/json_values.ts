/**
 * OTLP/JSON readers for the shared messages and scalar encodings: ids in hex or base64, enums as
 * integers or names, 64-bit integers as strings or numbers, keys in lowerCamelCase (the proto field
 * names are accepted too), unknown fields ignored.
 *
 * @module
 */

import { MapColumn, type StrColumn } from "../table/columns.ts";
import { DecodeError, quote } from "../errors.ts";
import type { Envelope } from "./proto_values.ts";
import {
  type AttrScratch,
  fromBase64,
  fromHex,
  jsonDouble,
  MAX_ANY_VALUE_DEPTH,
  PreparedMap,
  pushBase64,
  renderBudget,
  toBase64,
  tooDeep,
} from "../table/values.ts";

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

/**
 * Numbers given as JSON strings longer than this are refused before they are read: the longest
 * 64-bit integer has 20 digits and a double's shortest round-trip text 24 characters, so this leaves
 * room for exponents and redundant zeros while no text can buy much parsing.
 */
export const MAX_NUMBER_CHARS = 64;

/**
 * The number grammar of proto3 JSON for values given as strings: JSON's number syntax (an optional
 * minus, digits, an optional fraction, an optional exponent), leading zeros allowed. No hex, no
 * leading "+", no spaces, no "" (Number() would take all of those).
 */
const NUMBER_TEXT = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/;

/** Decimal digits of 2^63 - 1, 2^63 and 2^64 - 1 (range checks compare text, with no BigInt). */
const I64_MAX = "9223372036854775807", I64_MIN_ABS = "9223372036854775808", U64_MAX = "18446744073709551615";

/** Whether the digits (no sign, no leading zeros) denote at most `max`. */
function atMost(digits: string, max: string): boolean {
  return digits.length < max.length || (digits.length === max.length && digits <= max);
}

function tooLong(s: string, name: string): never {
  throw new DecodeError(`number text of ${s.length} characters (at most ${MAX_NUMBER_CHARS})`, name);
}

/**
 * The integer a JSON string denotes, as canonical decimal text ("-12", "0"): proto3 JSON accepts any
 * number syntax that denotes an integer in quoted form too ("1e3", "1.50e2", "100.0"); fractions
 * ("1.5") are refused. Only text of at most MAX_NUMBER_CHARS characters is read, and only results of
 * at most 20 digits are built, so the work is bounded whatever the input.
 */
function integerText(s: string, name: string, what = "an integer"): string {
  if (s.length > MAX_NUMBER_CHARS) tooLong(s, name);
  const m = NUMBER_TEXT.exec(s);
  if (!m) throw new DecodeError(`expected ${what}, got ${quote(s)}`, name);
  const frac = m[3] ?? "";
  let digits = (m[2] + frac).replace(/^0+/, "");
  if (digits === "") return "0";
  const shift = (m[4] ? Number(m[4]) : 0) - frac.length;
  if (shift < 0) {
    const keep = digits.length + shift;
    if (keep <= 0 || !/^0*$/.test(digits.slice(keep))) {
      throw new DecodeError(`expected ${what}, got ${quote(s)}`, name);
    }
    digits = digits.slice(0, keep);
  } else if (shift > 0) {
    if (digits.length + shift > U64_MAX.length) throw new DecodeError(`${s} does not fit in 64 bits`, name);
    digits += "0".repeat(shift);
  }
  return m[1] === "-" ? "-" + digits : digits;
}

/** A 64-bit unsigned integer given as a number or a string (proto3 JSON), into `u64Out`. */
export function u64(v: unknown, name: string): void {
  if (v === undefined || v === null) {
    u64Out.lo = 0, u64Out.hi = 0;
    return;
  }
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 0) {
      throw new DecodeError(`expected a non-negative integer, got ${quote(v)}`, name);
    }
    if (v >= 18446744073709551616) throw new DecodeError(`${quote(v)} does not fit in 64 bits`, name);
    u64Out.lo = v % 4294967296 >>> 0, u64Out.hi = Math.floor(v / 4294967296) >>> 0;
    return;
  }
  if (typeof v === "string") {
    // The usual case (plain digits, as encoders write timestamps) skips the general grammar.
    if (plainU64(v)) return;
    const t = integerText(v, name, "an unsigned 64-bit integer");
    if (t[0] === "-") throw new DecodeError(`expected an unsigned 64-bit integer, got ${quote(v)}`, name);
    // v has at most MAX_NUMBER_CHARS characters here: shown whole.
    if (!atMost(t, U64_MAX)) throw new DecodeError(`${v} does not fit in 64 bits`, name);
    const cut = Math.max(0, t.length - 9);
    setU64(Number(t.slice(0, cut)), Number(t.slice(cut)));
    return;
  }
  throw new DecodeError(`expected an unsigned 64-bit integer, got ${quote(v)}`, name);
}

/**
 * Reads `v` into `u64Out` when it is canonical decimal text of at most 2^64 - 1 (digits, no leading
 * zero, as encoders write them) and says whether it was; anything else is left to the general grammar.
 * One pass over the characters, no regular expression and no BigInt: timestamps are such strings, two a
 * record, and those cost more than the rest of u64().
 */
function plainU64(v: string): boolean {
  const n = v.length;
  if (n === 0 || n > 20 || (v.charCodeAt(0) === 48 && n > 1)) return false;
  const cut = n > 9 ? n - 9 : 0;
  let high = 0, low = 0;
  for (let i = 0; i < cut; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    high = high * 10 + d;
  }
  for (let i = cut; i < n; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    low = low * 10 + d;
  }
  if (n === 20 && v > U64_MAX) return false; // the general path refuses it, with its message
  setU64(high, low);
  return true;
}

/**
 * Puts high * 10^9 + low (at most 2^64 - 1; high < 10^11, low < 10^9) into `u64Out` exactly, in doubles:
 * high * 10^9 = (h1 * 2^16 + h0) * 10^9 with a = h1 * 10^9 < 2^51, and a * 2^16 = (a - a0) / 2^16 * 2^32
 * + a0 * 2^16 (a0 = a mod 2^16); every product and sum stays under 2^53.
 */
function setU64(high: number, low: number): void {
  const h0 = high % 65536, a = (high - h0) / 65536 * 1e9, a0 = a % 65536;
  const rest = a0 * 65536 + h0 * 1e9 + low; // < 2^32 + 2^46 + 2^30
  const carry = Math.floor(rest / 4294967296);
  u64Out.lo = rest - carry * 4294967296;
  u64Out.hi = (a - a0) / 65536 + carry;
}

/** A signed 64-bit integer (number or string, proto3 JSON) as exact decimal text. */
export function i64Text(v: unknown, name: string): string {
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new DecodeError(`expected an integer, got ${quote(v)}`, name);
    if (v < -9223372036854775808 || v >= 9223372036854775808) {
      throw new DecodeError(`${quote(v)} does not fit in 64 bits`, name);
    }
    // A JSON number past 2^53 already lost its low digits in JSON.parse: the double's exact value is kept.
    return Number.isSafeInteger(v) ? String(v) : BigInt(v).toString();
  }
  if (typeof v === "string") {
    // The usual case (canonical digits, as encoders write int64 values) skips the general grammar.
    if (plainI64(v)) return v;
    const t = integerText(v, name, "a 64-bit integer");
    if (!(t[0] === "-" ? atMost(t.slice(1), I64_MIN_ABS) : atMost(t, I64_MAX))) {
      throw new DecodeError(`${v} does not fit in 64 bits`, name);
    }
    return t;
  }
  throw new DecodeError(`expected a 64-bit integer, got ${quote(v)}`, name);
}

/**
 * Whether `v` is canonical decimal text of a signed 64-bit integer (an optional "-", digits without a
 * leading zero, "0" but not "-0"): what integerText would return it as. One pass, no regular expression.
 */
function plainI64(v: string): boolean {
  const neg = v.charCodeAt(0) === 45 ? 1 : 0, n = v.length - neg;
  if (n === 0 || n > 19) return false;
  if (v.charCodeAt(neg) === 48) return n === 1 && neg === 0;
  for (let i = neg; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
  }
  return n < 19 || (neg ? v.slice(1) <= I64_MIN_ABS : v <= I64_MAX); // else the general path refuses it
}

/** A signed 64-bit integer as a float64. */
export function i64Number(v: unknown, name: string): number {
  if (Number.isSafeInteger(v)) return (v as number) === 0 ? 0 : v as number; // the usual case, no text; no -0
  return Number(i64Text(v, name));
}

/** A uint32 / int32 (number or string, proto3 JSON); 0 when absent. */
export function int32(v: unknown, name: string, signed = false): number {
  if (v === undefined || v === null) return 0;
  const n = typeof v === "string" ? Number(integerText(v, name)) : v;
  if (typeof n !== "number" || !Number.isInteger(n)) {
    throw new DecodeError(`expected an integer, got ${quote(v)}`, name);
  }
  if (signed ? n < -2147483648 || n > 2147483647 : n < 0 || n > 4294967295) {
    throw new DecodeError(`${quote(v)} is out of range`, name);
  }
  return n === 0 ? 0 : n; // no -0
}

/**
 * A double: a JSON number, or a string holding "NaN", "Infinity", "-Infinity" or a number in JSON's
 * syntax (exponents allowed; not hex, not "", not padded with spaces); 0 when absent. Values beyond
 * the range of a double are refused, not rounded to infinity.
 */
export function double(v: unknown, name: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") {
    // JSON.parse turns only overflowing literals into infinities.
    if (!Number.isFinite(v)) throw new DecodeError(`${quote(v)} is out of range for a double`, name);
    return v;
  }
  if (typeof v === "string") {
    if (v === "NaN") return NaN;
    if (v === "Infinity") return Infinity;
    if (v === "-Infinity") return -Infinity;
    if (v.length > MAX_NUMBER_CHARS) tooLong(v, name);
    if (NUMBER_TEXT.test(v)) {
      const n = Number(v);
      if (Number.isFinite(n)) return n;
      throw new DecodeError(`${quote(v)} is out of range for a double`, name);
    }
  }
  throw new DecodeError(`expected a number, got ${quote(v)}`, name);
}

/** A boolean (true/false); false when absent. */
export function bool(v: unknown, name: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw new DecodeError(`expected true or false, got ${quote(v)}`, name);
  return v;
}

/**
 * An enum given as an integer or by name. Names are looked up among the table's own properties only:
 * "toString" or "__proto__" are not enum names, whatever Object.prototype holds.
 */
export function enumValue(
  v: unknown,
  names: Readonly<Record<string, number>>,
  name: string,
  max: number,
): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new DecodeError(`unknown value ${quote(v)}`, name);
    return v;
  }
  if (typeof v === "string") {
    if (Object.hasOwn(names, v)) return names[v];
    if (/^[0-9]{1,10}$/.test(v) && Number(v) <= max) return Number(v);
    throw new DecodeError(`unknown value ${quote(v)}`, name);
  }
  throw new DecodeError(`expected an enum name or number, got ${quote(v)}`, name);
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
    `${quote(v)} is neither ${size * 2} hex digits nor base64 of ${size} bytes`,
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

/**
 * An AnyValue as JSON text (arrays and kvlists); undefined for an empty AnyValue at the top. The text
 * is counted against `renderBudget` as it is built: each leaf, key and bracket pair once, so the count
 * is at least the length of the text.
 */
function anyJsonText(o: JsonObject, name: string, depth: number): string | undefined {
  if (depth === 0) renderBudget.start();
  else if (depth > MAX_ANY_VALUE_DEPTH) tooDeep();
  const leaf = jsonLeaf(o, name);
  if (leaf !== undefined) {
    renderBudget.text(leaf.length, name);
    return leaf;
  }
  const arr = objectField(o, "arrayValue", "array_value");
  if (arr) {
    renderBudget.text(2, name);
    const values = arrayField(arr, "values");
    // Grown as elements pass the budget, not sized by the input up front.
    const parts: string[] = [];
    for (let i = 0; i < values.length; i++) {
      renderBudget.element(name);
      parts.push(element(values[i], `${name}.arrayValue.values[${i}]`, depth + 1));
    }
    return `[${parts.join(",")}]`;
  }
  const kv = objectField(o, "kvlistValue", "kvlist_value");
  if (kv) {
    renderBudget.text(2, name);
    const entries = new Map<string, string>();
    const list = arrayField(kv, "values");
    for (let i = 0; i < list.length; i++) {
      const e = list[i];
      renderBudget.element(name);
      if (typeof e !== "object" || e === null || Array.isArray(e)) {
        throw new DecodeError("expected a KeyValue object", `${name}.kvlistValue.values[${i}]`);
      }
      const key = stringField(e, "key"), quoted = JSON.stringify(key);
      renderBudget.text(quoted.length, name);
      entries.delete(key); // the last value of a repeated key wins
      entries.set(key, `${quoted}:${element(e.value, `${name}.kvlistValue.values[${i}].value`, depth + 1)}`);
    }
    const keys = [...entries.keys()].sort();
    return `{${keys.map((k) => entries.get(k)).join(",")}}`;
  }
  return depth === 0 ? undefined : "null";
}

/** The JSON text of a scalar AnyValue, or undefined when it holds none (an array, a kvlist or nothing). */
function jsonLeaf(o: JsonObject, name: string): string | undefined {
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
  return undefined;
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
