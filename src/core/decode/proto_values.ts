/**
 * Protobuf decoding of the shared OTLP messages (AnyValue, KeyValue lists, Resource, InstrumentationScope)
 * straight into rendered text.
 *
 * @module
 */

import { COPY_LOOP_MAX, copyAscii, MapColumn, type StrColumn, viewOf } from "../table/columns.ts";
import { DecodeError, quoteUtf8 } from "../errors.ts";
import type { ProtoAttrScratch } from "./proto_attrs.ts";
import type { DecodeMeter } from "./decode_limits.ts";
import {
  isShortDouble,
  jsonDouble,
  MAX_ANY_VALUE_DEPTH,
  PreparedMap,
  pushBase64,
  renderBudget,
  SHORT_DOUBLE_TEXT_MAX,
  toBase64,
  tooDeep,
  UINT_TEXT_MAX,
  writeShortDouble,
  writeUint,
} from "../table/values.ts";
import { I64, int64ToDecimal, isAscii, isUtf8, LEN, VARINT, WireReader, wrongWireType } from "./wire.ts";

const textDecoder = new TextDecoder();
// Leaf readers reused on the hot path (neither function re-enters itself while its reader is in use).
const ANY_READER = new WireReader(new Uint8Array(0));
const KV_READER = new WireReader(new Uint8Array(0));

/** Appends a protobuf string field after checking it is UTF-8. */
export function pushUtf8(col: StrColumn, r: WireReader, field: string): void {
  if (!pushIfUtf8(col, r.buf, r.start, r.stop)) throw new DecodeError("invalid UTF-8", field);
}

/**
 * Appends `buf[start, end)` as a row of `out` if it is UTF-8 and returns true; else appends nothing and
 * returns false. Text of 8 bytes up to COPY_LOOP_MAX is copied and checked in one pass, and committed
 * only if it was all ASCII or passes the full check.
 */
function pushIfUtf8(out: StrColumn, buf: Uint8Array, start: number, end: number): boolean {
  const n = end - start;
  if (n < 8 || n >= COPY_LOOP_MAX) {
    if (!isUtf8(buf, start, end)) return false;
    out.pushBytes(buf, start, end);
    return true;
  }
  const at = out.reserve(n);
  if (!copyAscii(out.bytes, out.dataView(), at, buf, viewOf(buf), start, end) && !isUtf8(buf, start, end)) {
    return false;
  }
  out.commit(at + n);
  return true;
}

/** Reads the current length-delimited value as a UTF-8 string. */
export function utf8String(r: WireReader, field: string): string {
  if (!isUtf8(r.buf, r.start, r.stop)) throw new DecodeError("invalid UTF-8", field);
  return textDecoder.decode(r.buf.subarray(r.start, r.stop));
}

// What readAnyValue found (module state, so reading a value allocates nothing): the value field, the
// range of a length-delimited value, a bool or double, or the words of an int.
let anyKind = 0, anyS = 0, anyE = 0, anyNum = 0, anyLo = 0, anyHi = 0;

/** Reads the AnyValue message in `buf[start, end)` into the module's `any*` state (the last field wins). */
function readAnyValue(buf: Uint8Array, start: number, end: number): void {
  const r = ANY_READER.reset(buf, start, end);
  let kind = 0, vs = 0, ve = 0, num = 0, lo = 0, hi = 0;
  while (r.pos < r.end) {
    const tag = r.tag();
    const field = tag >>> 3, wt = tag & 7;
    switch (field) {
      case 1:
      case 5:
      case 6:
      case 7:
        if (wt !== LEN) throw wrongWireType(anyName(field), wt, LEN);
        r.bytes();
        kind = field, vs = r.start, ve = r.stop;
        break;
      case 2:
        if (wt !== VARINT) throw wrongWireType("boolValue", wt, VARINT);
        r.varint64();
        kind = 2, num = r.lo | r.hi;
        break;
      case 3:
        if (wt !== VARINT) throw wrongWireType("intValue", wt, VARINT);
        r.varint64();
        kind = 3, lo = r.lo, hi = r.hi;
        break;
      case 4:
        if (wt !== I64) throw wrongWireType("doubleValue", wt, I64);
        kind = 4, num = r.double();
        break;
      default:
        r.skip(wt);
    }
  }
  anyKind = kind, anyS = vs, anyE = ve, anyNum = num, anyLo = lo, anyHi = hi;
}

/** Appends `String(d)` as bytes: the usual values digit by digit (`writeShortDouble`), others through a string. */
export function pushDouble(out: StrColumn, d: number): void {
  if (!isShortDouble(d)) return out.pushAscii(String(d));
  out.commit(writeShortDouble(out.bytes, out.reserve(SHORT_DOUBLE_TEXT_MAX), d));
}

/** Renders the value readAnyValue found (in `buf`) as text and appends it to `out`. */
function renderAnyValue(out: StrColumn, buf: Uint8Array): void {
  switch (anyKind) {
    case 0:
      return out.pushEmpty();
    case 1:
      if (!isUtf8(buf, anyS, anyE)) throw new DecodeError("invalid UTF-8", "stringValue");
      return out.pushBytes(buf, anyS, anyE);
    case 2:
      return out.pushAscii(anyNum ? "true" : "false");
    case 3:
      return anyHi === 0 ? pushUint(out, anyLo) : out.pushAscii(int64ToDecimal(anyLo, anyHi));
    case 4:
      return pushDouble(out, anyNum);
    case 7:
      return pushBase64(out, buf, anyS, anyE);
    default:
      renderBudget.start();
      return out.pushString(
        anyKind === 5 ? arrayJson(buf, anyS, anyE, 1) : kvlistJson(buf, anyS, anyE, 1),
      );
  }
}

/**
 * Appends the AnyValue message in `buf[start, end)` when it is just a stringValue shorter than 16 KiB
 * holding valid UTF-8, which log bodies nearly always are, and returns true; else appends nothing and
 * returns false (pushAnyValue then reads it, and raises any error).
 */
export function pushStringValue(out: StrColumn, buf: Uint8Array, start: number, end: number): boolean {
  if (end - start < 2 || buf[start] !== 0x0a) return false;
  let p = start + 2, n = buf[start + 1];
  if (n >= 0x80) {
    const b = buf[p++];
    if (b >= 0x80 || p > end) return false;
    n = (n & 0x7f) | (b << 7);
  }
  return p + n === end && pushIfUtf8(out, buf, p, end);
}

/** Renders the AnyValue message in `buf[start, end)` as text and appends it to `out`. */
export function pushAnyValue(out: StrColumn, buf: Uint8Array, start: number, end: number): void {
  readAnyValue(buf, start, end);
  renderAnyValue(out, buf);
}

function anyName(field: number): string {
  return [
    "",
    "stringValue",
    "boolValue",
    "intValue",
    "doubleValue",
    "arrayValue",
    "kvlistValue",
    "bytesValue",
  ][
    field
  ];
}

/**
 * An AnyValue as a JSON value (inside arrays and kvlists). Leaves are counted against `renderBudget`
 * here, brackets, keys and separators by the containers: the count is at least the text's length.
 */
function anyJson(buf: Uint8Array, start: number, end: number, depth: number): string {
  if (depth > MAX_ANY_VALUE_DEPTH) tooDeep();
  const r = new WireReader(buf, start, end);
  let out = "null", leaf = true;
  while (r.pos < r.end) {
    const tag = r.tag();
    const field = tag >>> 3, wt = tag & 7;
    switch (field) {
      case 1:
        r.bytesOf(wt, "stringValue");
        out = JSON.stringify(utf8String(r, "stringValue"));
        break;
      case 2:
        if (wt !== VARINT) throw wrongWireType("boolValue", wt, VARINT);
        r.varint64();
        out = r.lo | r.hi ? "true" : "false";
        break;
      case 3:
        if (wt !== VARINT) throw wrongWireType("intValue", wt, VARINT);
        r.varint64();
        out = int64ToDecimal(r.lo, r.hi);
        break;
      case 4:
        if (wt !== I64) throw wrongWireType("doubleValue", wt, I64);
        out = jsonDouble(r.double());
        break;
      case 5:
        r.bytesOf(wt, "arrayValue");
        out = arrayJson(buf, r.start, r.stop, depth + 1), leaf = false;
        break;
      case 6:
        r.bytesOf(wt, "kvlistValue");
        out = kvlistJson(buf, r.start, r.stop, depth + 1), leaf = false;
        break;
      case 7:
        r.bytesOf(wt, "bytesValue");
        out = `"${toBase64(buf.subarray(r.start, r.stop))}"`;
        break;
      default:
        r.skip(wt);
        leaf = false;
    }
    // A repeated field renders once more: each rendering counts.
    if (leaf) renderBudget.text(out.length);
    leaf = true;
  }
  return out;
}

function arrayJson(buf: Uint8Array, start: number, end: number, depth: number): string {
  if (depth > MAX_ANY_VALUE_DEPTH) tooDeep();
  const r = new WireReader(buf, start, end);
  const parts: string[] = [];
  renderBudget.text(2);
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag >>> 3 === 1) {
      if ((tag & 7) !== LEN) throw wrongWireType("values", tag & 7, LEN);
      r.bytes();
      renderBudget.element();
      parts.push(anyJson(buf, r.start, r.stop, depth));
    } else r.skip(tag & 7);
  }
  return `[${parts.join(",")}]`;
}

function kvlistJson(buf: Uint8Array, start: number, end: number, depth: number): string {
  if (depth > MAX_ANY_VALUE_DEPTH) tooDeep();
  const r = new WireReader(buf, start, end);
  const entries = new Map<string, string>();
  renderBudget.text(2);
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag >>> 3 !== 1) {
      r.skip(tag & 7);
      continue;
    }
    if ((tag & 7) !== LEN) throw wrongWireType("values", tag & 7, LEN);
    r.bytes();
    renderBudget.element();
    const kv = new WireReader(buf, r.start, r.stop);
    let key = "", value = "null";
    while (kv.pos < kv.end) {
      const t = kv.tag();
      if (t >>> 3 === 1 && (t & 7) === LEN) {
        kv.bytes();
        key = utf8String(kv, "key");
      } else if (t >>> 3 === 2 && (t & 7) === LEN) {
        kv.bytes();
        value = anyJson(buf, kv.start, kv.stop, depth + 1);
      } else kv.skip(t & 7);
    }
    const quoted = JSON.stringify(key);
    renderBudget.text(quoted.length);
    entries.delete(key); // the last value of a repeated key wins
    entries.set(key, `${quoted}:${value}`);
  }
  const keys = [...entries.keys()].sort();
  return `{${keys.map((k) => entries.get(k)).join(",")}}`;
}

/** The varint filling `buf[start, end)` when it is one to four bytes long, else -1. */
function smallVarint(buf: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n < 1 || n > 4 || buf[end - 1] >= 0x80) return -1;
  let v = 0;
  for (let i = n - 1; i >= 0; i--) {
    const b = buf[start + i];
    if (i < n - 1 && b < 0x80) return -1;
    v = v * 128 + (b & 0x7f);
  }
  return v;
}

/** Appends a non-negative integer below 2^32 as decimal digits. */
function pushUint(out: StrColumn, v: number): void {
  out.commit(writeUint(out.bytes, out.reserve(UINT_TEXT_MAX), v));
}

/** Adds one KeyValue message (`buf[start, end)`) to the scratch. */
export function addKeyValue(scratch: ProtoAttrScratch, buf: Uint8Array, start: number, end: number): void {
  // Fast path for what encoders emit: key, then a value holding one string, small int, bool or double,
  // all lengths below 128 and the key ASCII (strings too). Anything else, and any input the general path
  // below would reject, takes that path.
  if (end - start >= 6 && buf[start] === 0x0a) {
    const kl = buf[start + 1], ks = start + 2, ke = ks + kl;
    if (
      kl < 0x80 && ke + 4 <= end && buf[ke] === 0x12 && buf[ke + 1] < 0x80 && buf[ke + 1] + ke + 2 === end
    ) {
      switch (buf[ke + 2]) {
        case 0x0a: { // stringValue; the bytes between key and string are below 0x80 too
          if (buf[ke + 3] + ke + 4 !== end) break;
          // A known key (the previous list's, at this index) is checked already: only the string is.
          const known = scratch.knows(buf, ks, ke);
          if (isAscii(buf, known ? ke + 4 : ks, end)) {
            return scratch.addRange(buf, ks, ke, ke + 4, end, known);
          }
          break;
        }
        case 0x18: { // intValue below 2^28 (at most four varint bytes, the last one ending the value)
          const v = smallVarint(buf, ke + 3, end);
          if (v < 0) break;
          const known = scratch.knows(buf, ks, ke);
          if (known || isAscii(buf, ks, ke)) return scratch.addUint(buf, ks, ke, v, known);
          break;
        }
        case 0x10: { // boolValue
          if (ke + 4 !== end || buf[ke + 3] >= 0x80) break;
          const known = scratch.knows(buf, ks, ke);
          if (known || isAscii(buf, ks, ke)) return scratch.addBool(buf, ks, ke, buf[ke + 3] !== 0, known);
          break;
        }
        case 0x21: { // doubleValue
          if (ke + 11 !== end) break;
          const known = scratch.knows(buf, ks, ke);
          if (!known && !isAscii(buf, ks, ke)) break;
          // Usual doubles are written when the list is flushed, straight from the request's bytes.
          const d = ANY_READER.reset(buf, ke + 3, end).double();
          if (isShortDouble(d)) return scratch.addDouble(buf, ks, ke, ke + 3, known);
          pushDouble(scratch.rendered, d);
          return scratch.addRendered(buf, ks, ke, known);
        }
      }
    }
  }
  const r = KV_READER.reset(buf, start, end);
  let ks = 0, ke = 0, vs = -1, ve = 0;
  while (r.pos < r.end) {
    const tag = r.tag();
    const field = tag >>> 3, wt = tag & 7;
    if (field === 1) {
      r.bytesOf(wt, "key");
      ks = r.start, ke = r.stop;
    } else if (field === 2) {
      r.bytesOf(wt, "value");
      vs = r.start, ve = r.stop;
    } else r.skip(wt);
  }
  if (!isUtf8(buf, ks, ke)) throw new DecodeError("invalid UTF-8", "key");
  if (vs < 0) return scratch.addRange(buf, ks, ke, 0, 0);
  try {
    readAnyValue(buf, vs, ve);
    if (anyKind === 1) {
      // Strings, nearly every value, stay ranges of the request until the list is flushed.
      if (!isUtf8(buf, anyS, anyE)) throw new DecodeError("invalid UTF-8", "stringValue");
      scratch.addRange(buf, ks, ke, anyS, anyE);
    } else if (anyKind === 0) {
      scratch.addRange(buf, ks, ke, 0, 0);
    } else {
      renderAnyValue(scratch.rendered, buf);
      scratch.addRendered(buf, ks, ke);
    }
  } catch (e) {
    // The key is quoted cut short: it may be megabytes long.
    if (e instanceof DecodeError) throw e.within(`value`).within(`[${quoteUtf8(buf, ks, ke)}]`);
    throw e;
  }
}

/**
 * Reads a length-delimited KeyValue field (an attribute) and adds it to the scratch; a decode error inside
 * it is reported at `field[index]`.
 */
export function addAttributeField(
  scratch: ProtoAttrScratch,
  r: WireReader,
  wireType: number,
  field: string,
  index: number,
): void {
  r.bytesOf(wireType, field);
  try {
    addKeyValue(scratch, r.buf, r.start, r.stop);
  } catch (e) {
    if (e instanceof DecodeError) throw e.within(`${field}[${index}]`);
    throw e;
  }
}

/** Decoded Resource or InstrumentationScope: what every row under it repeats. */
export interface Envelope {
  attributes: PreparedMap;
  name: Uint8Array;
  version: Uint8Array;
  droppedAttributesCount: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Decodes a Resource (`isScope` false: attributes = 1, dropped = 2) or an InstrumentationScope
 * (name = 1, version = 2, attributes = 3, dropped = 4) into a prepared envelope. `meter` counts its
 * attributes, every 1024th against `maxItemsPerRecord`.
 */
export function decodeEnvelope(
  buf: Uint8Array,
  start: number,
  end: number,
  isScope: boolean,
  scratch: ProtoAttrScratch,
  meter?: DecodeMeter,
): Envelope {
  const map = new MapColumn(1, 16);
  const r = new WireReader(buf, start, end);
  const attrField = isScope ? 3 : 1, droppedField = isScope ? 4 : 2;
  let name: Uint8Array = EMPTY, version: Uint8Array = EMPTY, dropped = 0, n = 0;
  scratch.reset();
  while (r.pos < r.end) {
    const tag = r.tag();
    const field = tag >>> 3, wt = tag & 7;
    if (field === attrField) {
      addAttributeField(scratch, r, wt, "attributes", n++);
      // Each costs a scratch entry (32 bytes) for two bytes of input: counted as a record's are.
      if ((n & 1023) === 0 && meter !== undefined) {
        meter.nested(n, "attributes", isScope ? "scope" : "resource");
      }
    } else if (field === droppedField) {
      dropped = r.uint32Of(wt, "droppedAttributesCount");
    } else if (isScope && (field === 1 || field === 2)) {
      const fname = field === 1 ? "name" : "version";
      if (wt !== LEN) throw wrongWireType(fname, wt, LEN);
      r.bytes();
      if (!isUtf8(buf, r.start, r.stop)) throw new DecodeError("invalid UTF-8", fname);
      if (field === 1) name = buf.subarray(r.start, r.stop);
      else version = buf.subarray(r.start, r.stop);
    } else r.skip(wt);
  }
  scratch.flushTo(map);
  return { attributes: new PreparedMap(map), name, version, droppedAttributesCount: dropped };
}
