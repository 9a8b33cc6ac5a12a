/**
 * OTLP/JSON readers for the shared messages and scalar encodings: ids in hex or base64, enums as
 * integers or names, 64-bit integers as strings or numbers, keys in lowerCamelCase (the proto field
 * names are accepted too), unknown fields ignored.
 *
 * The scalar functions (`u64`, `i64Text`, `int32`, `double`, `bool`, `enumValue`, `id`) take a value as
 * JSON.parse gives it and hold the grammar and the messages; the readers named `…At` take a position in
 * a checked body (json_scan.ts; -1: the field is absent), read the usual forms straight from the bytes
 * and hand anything else to the scalar functions, so both agree by construction.
 *
 * @module
 */

import { type F64Column, MapColumn, type StrColumn, type U64Column } from "../table/columns.ts";
import { DecodeError, quote } from "../errors.ts";
import type { Envelope } from "./proto_values.ts";
import type { DecodeMeter } from "./decode_limits.ts";
import {
  type AttrScratch,
  fromBase64,
  fromHex,
  jsonDouble,
  MAX_ANY_VALUE_DEPTH,
  PreparedMap,
  pushBase64,
  pushHexId,
  renderBudget,
  toBase64,
  tooDeep,
} from "../table/values.ts";
import {
  checkJson,
  decodeString,
  FieldNames,
  jsValue,
  nextElement,
  pick,
  scanEnd,
  scanFields,
  skip,
  skipString,
  smallUint,
  str,
  ws,
} from "./json_scan.ts";

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
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

/** The bytes' kinds of value, by first byte. */
const QUOTE = 0x22, LBRACE = 0x7b, LBRACKET = 0x5b, NUL = 0x6e;

/** Throws unless the value at `p` is an object or null/absent; says whether it is an object. */
export function objectAt(buf: Uint8Array, p: number, name: string): boolean {
  if (p < 0 || buf[p] === NUL) return false;
  if (buf[p] !== LBRACE) throw new DecodeError("expected an object", name);
  return true;
}

/** Throws unless the value at `p` is an array or null/absent; says whether it is an array. */
export function arrayAt(buf: Uint8Array, p: number, name: string): boolean {
  if (p < 0 || buf[p] === NUL) return false;
  if (buf[p] !== LBRACKET) throw new DecodeError("expected an array", name);
  return true;
}

/** Throws unless the value at `p` is a string or null/absent (a string field, "" when absent). */
export function checkStringAt(buf: Uint8Array, p: number, name: string): void {
  if (p >= 0 && buf[p] !== QUOTE && buf[p] !== NUL) throw new DecodeError("expected a string", name);
}

/** Appends a string field ("" when absent or null). */
export function pushStringAt(col: StrColumn, buf: Uint8Array, p: number, name: string): void {
  checkStringAt(buf, p, name);
  if (p < 0 || buf[p] === NUL) return col.pushEmpty();
  skipString(buf, p);
  if (str.esc) col.pushString(decodeString(buf, str.s, str.e, true));
  else col.pushBytes(buf, str.s, str.e);
}

/** A string field as a JS string ("" when absent or null). */
export function stringAt(buf: Uint8Array, p: number, name: string): string {
  checkStringAt(buf, p, name);
  if (p < 0 || buf[p] === NUL) return "";
  skipString(buf, p);
  return decodeString(buf, str.s, str.e, str.esc);
}

/** A string field as UTF-8 bytes (an empty array when absent, null or ""). */
export function utf8At(buf: Uint8Array, p: number, name: string): Uint8Array {
  checkStringAt(buf, p, name);
  if (p < 0 || buf[p] === NUL) return EMPTY;
  skipString(buf, p);
  if (str.s === str.e) return EMPTY;
  return str.esc ? encoder.encode(decodeString(buf, str.s, str.e, true)) : buf.slice(str.s, str.e);
}

/**
 * Reads a 64-bit unsigned integer field into `u64Out` (0 when absent): plain digits, quoted or not,
 * from the bytes; anything else through `u64`.
 */
export function u64At(buf: Uint8Array, p: number, name: string): void {
  if (p < 0) {
    u64Out.lo = 0, u64Out.hi = 0;
    return;
  }
  if (plainU64At(buf, p) < 0) u64(jsValue(buf, p), name);
}

/**
 * Reads the usual form of a 64-bit unsigned integer at `buf[p]` into `u64Out`: canonical decimal digits
 * (at most 20, no leading zero) of at most 2^64 - 1, quoted, or unquoted and at most 15 digits (no
 * fraction or exponent). Returns the position after the value, or -1, with nothing read, for anything
 * else (which `u64` reads, with its checks and messages).
 */
function plainU64At(buf: Uint8Array, p: number): number {
  const quoted = buf[p] === QUOTE, s = quoted ? p + 1 : p;
  let e = s;
  while (e - s <= 20 && buf[e] >= 0x30 && buf[e] <= 0x39) e++;
  const n = e - s, after = buf[e];
  // Unquoted numbers past 2^53 are read as JSON.parse reads them (a double): not here.
  if (n === 0 || n > (quoted ? 20 : 15) || (buf[s] === 0x30 && n > 1)) return -1;
  if (quoted ? after !== QUOTE : after === 0x2e || after === 0x65 || after === 0x45) return -1;
  if (n === 20) {
    // Compared with 2^64 - 1 digit by digit; past it the general path refuses it, with its message.
    for (let i = 0; i < 20; i++) {
      const d = buf[s + i] - U64_MAX.charCodeAt(i);
      if (d < 0) break;
      if (d > 0) return -1;
    }
  }
  const cut = n > 9 ? e - 9 : s;
  let high = 0, low = 0;
  for (let i = s; i < cut; i++) high = high * 10 + buf[i] - 48;
  for (let i = cut; i < e; i++) low = low * 10 + buf[i] - 48;
  if (high === 0) u64Out.lo = low, u64Out.hi = 0; // counts and other small values
  else setU64(high, low);
  return quoted ? e + 1 : e;
}

/** The last quoted 64-bit integer a `u64AtMemo` read: its text (quotes included) and its words. */
export class U64Memo {
  readonly text = new Uint8Array(24);
  length = 0;
  lo = 0;
  hi = 0;
}

/**
 * Like u64At, for fields whose values repeat from one object to the next (a metric's data points share
 * their start and end times): the same text as `memo`'s is not read again.
 */
export function u64AtMemo(buf: Uint8Array, p: number, name: string, memo: U64Memo): void {
  if (p >= 0 && buf[p] === QUOTE) {
    const text = memo.text, n = memo.length;
    let i = 0;
    while (i < n && buf[p + i] === text[i]) i++;
    if (i === n && n > 0) {
      u64Out.lo = memo.lo, u64Out.hi = memo.hi;
      return;
    }
    const end = plainU64At(buf, p);
    if (end >= 0) {
      // From quote to quote: text that matches it in full is this value, whatever follows.
      for (let k = p; k < end; k++) text[k - p] = buf[k];
      memo.length = end - p, memo.lo = u64Out.lo, memo.hi = u64Out.hi;
      return;
    }
  }
  u64At(buf, p, name);
}

/**
 * Appends the elements of the array field at `p` (-1 or null: none) to `col` as unsigned 64-bit
 * integers, in one pass over them; returns how many. An element's errors name it `name[i]` (a path
 * built only then); null is not a number here. Every 1024th value of `col` is counted by `meter` (as
 * protobuf's packed counts are): "0," decodes to eight bytes, so the decoded-bytes bound is checked
 * while a long list is read, not after it.
 */
export function pushU64ArrayAt(
  col: U64Column,
  buf: Uint8Array,
  p: number,
  name: string,
  meter: DecodeMeter,
): number {
  if (!arrayAt(buf, p, name)) return 0;
  let i = 0;
  for (let q = nextElement(buf, p + 1); q >= 0; i++) {
    let end = plainU64At(buf, q);
    if (end < 0) {
      if (buf[q] === NUL) throw new DecodeError("expected a number", `${name}[${i}]`);
      u64(jsValue(buf, q), `${name}[${i}]`);
      end = skip(buf, q);
    }
    col.push(u64Out.lo, u64Out.hi);
    if ((col.length & 1023) === 0) meter.items(1024);
    q = nextElement(buf, end);
  }
  return i;
}

/** Like pushU64ArrayAt, for doubles. */
export function pushDoubleArrayAt(
  col: F64Column,
  buf: Uint8Array,
  p: number,
  name: string,
  meter: DecodeMeter,
): number {
  if (!arrayAt(buf, p, name)) return 0;
  let i = 0;
  for (let q = nextElement(buf, p + 1); q >= 0; i++) {
    let v = plainDouble(buf, q), end = plainEnd;
    if (v !== v) {
      if (buf[q] === NUL) throw new DecodeError("expected a number", `${name}[${i}]`);
      v = double(jsValue(buf, q), `${name}[${i}]`);
      end = skip(buf, q);
    }
    col.push(v);
    if ((col.length & 1023) === 0) meter.items(1024);
    q = nextElement(buf, end);
  }
  return i;
}

/** Appends a signed 64-bit integer field as canonical decimal text. */
export function pushI64At(col: StrColumn, buf: Uint8Array, p: number, name: string): void {
  // Canonical digits (a "-", no leading zero, at most 15 digits: below 2^53), quoted or not, are the text.
  const q = buf[p] === QUOTE ? p + 1 : p;
  let s = q;
  if (buf[s] === 0x2d) s++;
  let e = s;
  while (e - s <= 15 && buf[e] >= 0x30 && buf[e] <= 0x39) e++;
  const n = e - s, after = buf[e];
  if (
    n > 0 && n <= 15 && (buf[s] !== 0x30 || (n === 1 && s === q)) &&
    (q > p ? after === QUOTE : after !== 0x2e && after !== 0x65 && after !== 0x45)
  ) return col.pushBytes(buf, q, e);
  col.pushAscii(i64Text(jsValue(buf, p), name));
}

/** A signed 64-bit integer field as a float64 (0 when absent). */
export function i64NumberAt(buf: Uint8Array, p: number, name: string): number {
  // At most 15 digits, quoted or not (JSON numbers have no leading zeros; "-0" is 0): exact as read.
  const q = buf[p] === QUOTE ? p + 1 : p, neg = buf[q] === 0x2d;
  let i = neg ? q + 1 : q, v = 0;
  while (i - q <= 16 && buf[i] >= 0x30 && buf[i] <= 0x39) v = v * 10 + buf[i++] - 0x30;
  const n = i - q - (neg ? 1 : 0), after = buf[i];
  if (n > 0 && n <= 15 && (q > p ? after === QUOTE : after !== 0x2e && after !== 0x65 && after !== 0x45)) {
    return neg && v !== 0 ? -v : v;
  }
  return i64Number(jsValue(buf, p), name);
}

/** A uint32 / int32 field (0 when absent or null). */
export function int32At(buf: Uint8Array, p: number, name: string, signed = false): number {
  if (p < 0) return 0;
  const v = smallUint(buf, p);
  return v >= 0 ? v : int32(jsValue(buf, p), name, signed);
}

/** A double field (0 when absent or null). */
export function doubleAt(buf: Uint8Array, p: number, name: string): number {
  if (p < 0) return 0;
  const v = plainDouble(buf, p);
  return v === v ? v : double(jsValue(buf, p), name);
}

/** The position after the number the last plainDouble read. */
let plainEnd = 0;

/** Exact powers of ten as doubles (10^22 is the last one a double holds exactly). */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * The JSON number at `buf[p]` when it has at most 15 digits and no exponent, else NaN. Then the digits
 * are an exact integer m and the result m / 10^k (k fraction digits) is one correctly rounded division
 * of exact doubles: the double Number() reads from the text.
 */
function plainDouble(buf: Uint8Array, p: number): number {
  let i = p, c = buf[i];
  const neg = c === 0x2d;
  if (neg) c = buf[++i];
  let m = 0, digits = 0, frac = 0;
  while (c >= 0x30 && c <= 0x39) m = m * 10 + c - 0x30, digits++, c = buf[++i];
  if (c === 0x2e) {
    c = buf[++i];
    while (c >= 0x30 && c <= 0x39) m = m * 10 + c - 0x30, digits++, frac++, c = buf[++i];
  }
  if (digits === 0 || digits > 15 || c === 0x65 || c === 0x45) return NaN;
  plainEnd = i;
  const v = frac === 0 ? m : m / POW10[frac];
  return neg ? -v : v;
}

/** A boolean field (false when absent or null). */
export function boolAt(buf: Uint8Array, p: number, name: string): boolean {
  if (p < 0) return false;
  const c = buf[p];
  if (c === 0x74) return true;
  if (c === 0x66) return false;
  return bool(jsValue(buf, p), name);
}

/** An enum field, by number or name (0 when absent or null). */
export function enumAt(
  buf: Uint8Array,
  p: number,
  names: Readonly<Record<string, number>>,
  name: string,
  max: number,
): number {
  if (p < 0) return 0;
  const v = smallUint(buf, p);
  return v >= 0 && v <= max ? v : enumValue(jsValue(buf, p), names, name, max);
}

/**
 * A trace or span id field, checked: `null` when it is `size * 2` hex digits (then `pushIdAt` writes them
 * from the bytes, lowercased), else its bytes (an empty array when absent, null or ""), as `id` reads it.
 */
export function idAt(buf: Uint8Array, p: number, size: number, name: string): Uint8Array | null {
  if (p < 0 || buf[p] === NUL) return EMPTY;
  if (buf[p] === QUOTE) {
    const s = p + 1, e = s + size * 2;
    let i = s;
    while (i < e && HEX_DIGIT[buf[i]] === 1) i++;
    if (i === e && buf[e] === QUOTE) return null;
  }
  return id(jsValue(buf, p), size, name);
}

/** 1 for the bytes of hex digits. */
const HEX_DIGIT = new Uint8Array(256);
for (const c of "0123456789abcdefABCDEF") HEX_DIGIT[c.charCodeAt(0)] = 1;

/** Appends an id read by `idAt(buf, p, size)` as lowercase hex ("" when empty or all zero). */
export function pushIdAt(
  col: StrColumn,
  buf: Uint8Array,
  p: number,
  size: number,
  v: Uint8Array | null,
): void {
  if (v !== null) return pushHexId(col, v, 0, v.length);
  const n = size * 2, at = col.reserve(n), b = col.bytes;
  let nonZero = 0;
  for (let i = 0, s = p + 1; i < n; i++) {
    const c = buf[s + i];
    nonZero |= c ^ 0x30;
    b[at + i] = c | 0x20; // digits keep their code; A-F become a-f
  }
  if (nonZero === 0) col.pushEmpty();
  else col.commit(at + n);
}

const ANY = new FieldNames([
  "stringValue",
  "boolValue",
  "intValue",
  "doubleValue",
  "bytesValue",
  "arrayValue",
  "kvlistValue",
]);
const anyAt = new Int32Array(ANY.size);
const VALUES = new FieldNames(["values"]);
const valuesAt = new Int32Array(VALUES.size);
const KEY_VALUE = new FieldNames(["key", "value"]);
const kvAt = new Int32Array(KEY_VALUE.size);

/** The value of a JSON `bytesValue` field at `p` (present) as base64 text's bytes, or a DecodeError. */
function bytesValueAt(buf: Uint8Array, p: number, name: string): Uint8Array {
  const v = jsValue(buf, p);
  const bytes = typeof v === "string" ? fromBase64(v) : undefined;
  if (!bytes) throw new DecodeError("expected base64", `${name}.bytesValue`);
  return bytes;
}

/** Appends the scalar AnyValue of kind `kind` (string, bool, int, double, bytes) whose value is at `x`. */
function pushLeaf(out: StrColumn, buf: Uint8Array, kind: number, x: number, name: string): void {
  switch (kind) {
    case 0:
      if (buf[x] !== QUOTE) throw new DecodeError("expected a string", `${name}.stringValue`);
      return pushStringAt(out, buf, x, name);
    case 1:
      return out.pushAscii(boolAt(buf, x, `${name}.boolValue`) ? "true" : "false");
    case 2:
      return pushI64At(out, buf, x, `${name}.intValue`);
    case 3:
      return out.pushAscii(String(doubleAt(buf, x, `${name}.doubleValue`)));
    default: {
      const bytes = bytesValueAt(buf, x, name);
      return pushBase64(out, bytes, 0, bytes.length);
    }
  }
}

/**
 * Appends the JSON AnyValue at `p` (-1: absent) rendered as text; returns the position after it (-1
 * when absent). An object of one scalar member, the usual AnyValue, is read in one pass.
 */
export function pushAnyValueAt(out: StrColumn, buf: Uint8Array, p: number, name: string): number {
  if (p < 0 || buf[p] === NUL) {
    out.pushEmpty();
    return p < 0 ? -1 : p + 4;
  }
  if (buf[p] !== LBRACE) throw new DecodeError("expected an AnyValue object", name);
  let k = p + 1;
  if (buf[k] <= 0x20) k = ws(buf, k);
  if (buf[k] === QUOTE) {
    const keyEnd = skipString(buf, k);
    const slot = str.esc ? -1 : ANY.lookup(buf, str.s, str.e, false);
    if (slot >= 0 && slot < 10) {
      let x = buf[keyEnd] === 0x3a ? keyEnd + 1 : ws(buf, keyEnd) + 1;
      if (buf[x] <= 0x20) x = ws(buf, x);
      if (slot < 2 && buf[x] === QUOTE) {
        // {"stringValue": "…"}: the string is pushed from the range found while skipping it.
        let end = skipString(buf, x);
        if (buf[end] <= 0x20) end = ws(buf, end);
        if (buf[end] === 0x7d) {
          if (str.esc) out.pushString(decodeString(buf, str.s, str.e, true));
          else out.pushBytes(buf, str.s, str.e);
          return end + 1;
        }
      } else {
        let end = skip(buf, x);
        if (buf[end] <= 0x20) end = ws(buf, end);
        if (buf[end] === 0x7d) {
          pushLeaf(out, buf, slot >> 1, x, name);
          return end + 1;
        }
      }
    }
  }
  scanFields(buf, p, ANY, anyAt);
  const end = scanEnd.p;
  for (let kind = 0; kind < 5; kind++) {
    const x = pick(anyAt, kind);
    if (x >= 0) {
      pushLeaf(out, buf, kind, x, name);
      return end;
    }
  }
  out.pushString(anyJsonText(buf, p, name, 0) ?? "");
  return end;
}

/**
 * The AnyValue object at `p` as JSON text (arrays and kvlists); undefined for an empty AnyValue at the
 * top. The text is counted against `renderBudget` as it is built: each leaf, key and bracket pair once,
 * so the count is at least the length of the text. Recursion is bounded by MAX_ANY_VALUE_DEPTH.
 */
function anyJsonText(buf: Uint8Array, p: number, name: string, depth: number): string | undefined {
  if (depth === 0) renderBudget.start();
  else if (depth > MAX_ANY_VALUE_DEPTH) tooDeep();
  scanFields(buf, p, ANY, anyAt);
  const end = scanEnd.p;
  const sv = pick(anyAt, 0), bv = pick(anyAt, 1), iv = pick(anyAt, 2), dv = pick(anyAt, 3);
  const yv = pick(anyAt, 4), av = pick(anyAt, 5), kv = pick(anyAt, 6);
  const leaf = jsonLeaf(buf, sv, bv, iv, dv, yv, name);
  anyEnd = end;
  if (leaf !== undefined) {
    renderBudget.text(leaf.length, name);
    return leaf;
  }
  if (objectAt(buf, av, "arrayValue")) {
    renderBudget.text(2, name);
    scanFields(buf, av, VALUES, valuesAt);
    const list = pick(valuesAt, 0);
    // Grown as elements pass the budget, not sized by the input up front.
    const parts: string[] = [];
    if (arrayAt(buf, list, "values")) {
      for (let i = 0, q = nextElement(buf, list + 1); q >= 0; i++) {
        renderBudget.element(name);
        parts.push(element(buf, q, `${name}.arrayValue.values[${i}]`, depth + 1));
        q = nextElement(buf, anyEnd);
      }
    }
    anyEnd = end;
    return `[${parts.join(",")}]`;
  }
  if (objectAt(buf, kv, "kvlistValue")) {
    renderBudget.text(2, name);
    const entries = new Map<string, string>();
    scanFields(buf, kv, VALUES, valuesAt);
    const list = pick(valuesAt, 0);
    if (arrayAt(buf, list, "values")) {
      for (let i = 0, q = nextElement(buf, list + 1); q >= 0; i++) {
        renderBudget.element(name);
        const path = `${name}.kvlistValue.values[${i}]`;
        if (buf[q] !== LBRACE) throw new DecodeError("expected a KeyValue object", path);
        scanFields(buf, q, KEY_VALUE, kvAt);
        const entryEnd = scanEnd.p, valueAt = pick(kvAt, 1);
        const key = stringAt(buf, pick(kvAt, 0), "key"), quoted = JSON.stringify(key);
        renderBudget.text(quoted.length, name);
        entries.delete(key); // the last value of a repeated key wins
        entries.set(key, `${quoted}:${element(buf, valueAt, `${path}.value`, depth + 1)}`);
        q = nextElement(buf, entryEnd);
      }
    }
    anyEnd = end;
    const keys = [...entries.keys()].sort();
    return `{${keys.map((k) => entries.get(k)).join(",")}}`;
  }
  return depth === 0 ? undefined : "null";
}

/** The JSON text of a scalar AnyValue, or undefined when it holds none (an array, a kvlist or nothing). */
function jsonLeaf(
  buf: Uint8Array,
  sv: number,
  bv: number,
  iv: number,
  dv: number,
  yv: number,
  name: string,
): string | undefined {
  if (sv >= 0) {
    const x = jsValue(buf, sv);
    if (typeof x !== "string") throw new DecodeError("expected a string", `${name}.stringValue`);
    return JSON.stringify(x);
  }
  if (bv >= 0) return boolAt(buf, bv, name) ? "true" : "false";
  if (iv >= 0) return i64Text(jsValue(buf, iv), name);
  if (dv >= 0) return jsonDouble(doubleAt(buf, dv, name));
  if (yv >= 0) return `"${toBase64(bytesValueAt(buf, yv, name))}"`;
  return undefined;
}

/** Where the AnyValue last rendered by anyJsonText or element ends. */
let anyEnd = 0;

/** The JSON text of an array element or kvlist value at `p`; sets `anyEnd`. */
function element(buf: Uint8Array, p: number, name: string, depth: number): string {
  if (p < 0) return "null";
  if (buf[p] === NUL) {
    anyEnd = p + 4;
    return "null";
  }
  if (buf[p] !== LBRACE) throw new DecodeError("expected an AnyValue object", name);
  return anyJsonText(buf, p, name, depth) ?? "null";
}

/**
 * Calls `each(q)` for every element of the array at `p` (an array: see arrayAt), each of which must be
 * an object (`each` returns the position after it), with errors placed under `name[i]`. The elements
 * are counted by `meter` as a record's nested items, every 1024th against `maxItemsPerRecord` ("more
 * than … `name` in one record"), as their protobuf twins are.
 */
export function eachObjectAt(
  buf: Uint8Array,
  p: number,
  name: string,
  meter: DecodeMeter,
  each: (q: number) => number,
): void {
  let i = 0;
  for (let q = nextElement(buf, p + 1); q >= 0;) {
    let end: number;
    try {
      if (buf[q] !== LBRACE) throw new DecodeError("expected an object");
      end = each(q);
    } catch (e) {
      if (e instanceof DecodeError) throw e.within(`${name}[${i}]`);
      throw e;
    }
    q = nextElement(buf, end);
    if ((++i & 1023) === 0) meter.nested(i, name);
  }
  meter.items(i & 1023);
}

/**
 * Adds the attribute list at `p` (-1: absent) to the scratch; returns the position after it (-1 when
 * absent). Each entry's key must be a string, and its value an AnyValue. With `meter`, every 1024th
 * entry is counted as its protobuf twin counts them: past `maxItemsPerRecord`, a DecodeLimitError "more
 * than … `what` in one `where`".
 */
export function addAttributesAt(
  scratch: AttrScratch,
  buf: Uint8Array,
  p: number,
  name: string,
  meter?: DecodeMeter,
  what = "attributes",
  where = "record",
): number {
  if (!arrayAt(buf, p, name)) return p < 0 ? -1 : p + 4;
  let i = 0;
  for (let q = nextElement(buf, p + 1); q >= 0;) {
    const c = buf[q];
    let end: number;
    if (c === LBRACE) {
      end = keyValue(scratch, buf, q);
      if (end < 0) end = keyValueInOrder(scratch, buf, q, name, i);
    } else if (c === LBRACKET) {
      // An array is an object without a "key" (as JSON.parse's tree had it).
      throw new DecodeError("expected a string", `${name}[${i}].key`);
    } else throw new DecodeError("expected a KeyValue object", `${name}[${i}]`);
    q = nextElement(buf, end);
    if ((++i & 1023) === 0 && meter !== undefined) meter.nested(i, what, where);
  }
  return scanEnd.p;
}

/**
 * Adds the KeyValue object at `q` when it is `{"key": "…", "value": …}` with a valid value, in one pass;
 * returns the position after it, or -1 with nothing added for anything else (other orders, repeated or
 * missing keys, errors), which `keyValueInOrder` then reads as a whole.
 */
function keyValue(scratch: AttrScratch, buf: Uint8Array, q: number): number {
  let k = q + 1;
  if (buf[k] <= 0x20) k = ws(buf, k);
  if (
    buf[k] !== QUOTE || buf[k + 1] !== 0x6b || buf[k + 2] !== 0x65 || buf[k + 3] !== 0x79 ||
    buf[k + 4] !== QUOTE
  ) {
    return -1;
  }
  k = (buf[k + 5] === 0x3a ? k + 5 : ws(buf, k + 5)) + 1;
  if (buf[k] <= 0x20) k = ws(buf, k);
  if (buf[k] !== QUOTE) return -1;
  let c = skipString(buf, k);
  if (buf[c] <= 0x20) c = ws(buf, c);
  const ks = str.s, ke = str.e, kesc = str.esc;
  if (buf[c] !== 0x2c) return -1;
  c++;
  if (buf[c] <= 0x20) c = ws(buf, c);
  if (
    buf[c] !== QUOTE || buf[c + 1] !== 0x76 || buf[c + 2] !== 0x61 || buf[c + 3] !== 0x6c ||
    buf[c + 4] !== 0x75 || buf[c + 5] !== 0x65 || buf[c + 6] !== QUOTE
  ) return -1;
  let v = (buf[c + 7] === 0x3a ? c + 7 : ws(buf, c + 7)) + 1;
  if (buf[v] <= 0x20) v = ws(buf, v);
  const values = scratch.values;
  let end: number;
  try {
    end = pushAnyValueAt(values, buf, v, "");
    if (buf[end] <= 0x20) end = ws(buf, end);
  } catch (e) {
    if (e instanceof DecodeError) return -1; // read again in order, for the error with its path
    throw e;
  }
  if (buf[end] !== 0x7d) {
    values.length--; // more keys follow: read again in order
    return -1;
  }
  if (kesc) scratch.keys.pushString(decodeString(buf, ks, ke, true));
  else scratch.keys.pushBytes(buf, ks, ke);
  return end + 1;
}

/** Adds the KeyValue object at `q` read field by field, in the order of its checks; returns its end. */
function keyValueInOrder(scratch: AttrScratch, buf: Uint8Array, q: number, name: string, i: number): number {
  scanFields(buf, q, KEY_VALUE, kvAt);
  const end = scanEnd.p;
  const k = pick(kvAt, 0), v = pick(kvAt, 1);
  if (k < 0 || buf[k] !== QUOTE) throw new DecodeError("expected a string", `${name}[${i}].key`);
  pushStringAt(scratch.keys, buf, k, "key");
  pushAnyValueAt(scratch.values, buf, v, `${name}[${i}].value`);
  return end;
}

/**
 * Scans the fields of the object at `p` into `at` (see scanFields) and reads its attribute list (field
 * `field`, a repeated key replacing the list) into `scratch` in the same pass; says whether it did. When
 * the list is not valid, nothing is left in the scratch and the fields are scanned again without it
 * (false): the caller reads the list in its place among the checks, for the error that order gives.
 * `meter` counts the entries (addAttributesAt); a DecodeLimitError is not caught here.
 */
export function scanWithAttributes(
  buf: Uint8Array,
  p: number,
  names: FieldNames,
  at: Int32Array,
  field: number,
  scratch: AttrScratch,
  meter?: DecodeMeter,
): boolean {
  attrBuf = buf, attrScratch = scratch, attrMeter = meter;
  scratch.reset();
  try {
    scanFields(buf, p, names, at, false, 2 * field, readAttributes);
    return true;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
  }
  scratch.reset();
  scanFields(buf, p, names, at);
  return false;
}

let attrBuf: Uint8Array = EMPTY, attrScratch: AttrScratch | undefined, attrMeter: DecodeMeter | undefined;

function readAttributes(q: number, again: boolean): number {
  if (again) attrScratch!.reset();
  return addAttributesAt(attrScratch!, attrBuf, q, "attributes", attrMeter);
}

const ENVELOPE = new FieldNames(["attributes", "name", "version", "droppedAttributesCount"]);
const envAt = new Int32Array(ENVELOPE.size);

/** Whether the object at `p` (-1: absent) is absent, null or has no keys. */
export function emptyObjectAt(buf: Uint8Array, p: number): boolean {
  return p < 0 || buf[p] === NUL || buf[ws(buf, p + 1)] === 0x7d;
}

/** The JSON Resource or InstrumentationScope object at `p` (-1: absent) as a prepared envelope. */
export function envelopeAt(
  buf: Uint8Array,
  p: number,
  isScope: boolean,
  scratch: AttrScratch,
  name: string,
  meter?: DecodeMeter,
): Envelope {
  const map = new MapColumn(1, 16);
  scratch.reset();
  const present = p >= 0 && buf[p] !== NUL;
  if (present) scanFields(buf, p, ENVELOPE, envAt);
  else envAt.fill(-1);
  const nameAt = pick(envAt, 1), versionAt = pick(envAt, 2), dropped = pick(envAt, 3);
  if (present) {
    addAttributesAt(
      scratch,
      buf,
      pick(envAt, 0),
      `${name}.attributes`,
      meter,
      "attributes",
      isScope ? "scope" : "resource",
    );
  }
  scratch.flushTo(map);
  return {
    attributes: new PreparedMap(map),
    name: isScope && present ? encoder.encode(stringAt(buf, nameAt, "name")) : EMPTY,
    version: isScope && present ? encoder.encode(stringAt(buf, versionAt, "version")) : EMPTY,
    droppedAttributesCount: present ? int32At(buf, dropped, `${name}.droppedAttributesCount`) : 0,
  };
}

/**
 * Checks a pushJsonAnyValue-style JS value by encoding it as JSON and reading it back: for callers that
 * hold parsed values (tests, and JSON made by code), the same rendering and errors as a request's bytes.
 */
export function pushJsonAnyValue(out: StrColumn, v: unknown, name: string): void {
  if (v === undefined) return out.pushEmpty();
  const bytes = encoder.encode(JSON.stringify(v));
  checkJson(bytes);
  pushAnyValueAt(out, bytes, ws(bytes, 0), name);
}
