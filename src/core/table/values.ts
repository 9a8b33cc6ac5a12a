/**
 * Renders OTLP values as the text the ClickHouse exporter stores: ids as lowercase hex, AnyValue as
 * text (strings as is, ints in decimal, doubles in the shortest round-trip form, bytes in base64,
 * arrays and kvlists as compact JSON), and attribute lists as maps with sorted, unique keys.
 *
 * @module
 */

import { type KeyedMapColumn, type MapColumn, type SharedMapColumn, StrColumn } from "./columns.ts";
import { DecodeError } from "../errors.ts";

/** AnyValue nesting deeper than this is refused, so hostile input cannot exhaust the stack. */
export const MAX_ANY_VALUE_DEPTH = 64;

/**
 * An array or kvlist AnyValue whose JSON text would pass this many characters (16 Mi) is refused with
 * a DecodeError (400). Its text is built as JS strings: the cap keeps each far from V8's string limit
 * (2^29 characters, a RangeError past it) and bounds the memory one value takes whatever it renders to.
 */
export const MAX_ANY_VALUE_CHARS = 16 * 1024 * 1024;

/**
 * An array or kvlist AnyValue holding more than this many elements and entries, all levels together,
 * is refused with a DecodeError (400): each element costs JS strings and objects while it is rendered,
 * many times its 2 bytes on the wire.
 */
export const MAX_ANY_VALUE_ELEMENTS = 65536;

/**
 * What the array or kvlist AnyValue being rendered has used of MAX_ANY_VALUE_CHARS and
 * MAX_ANY_VALUE_ELEMENTS. Rendering is synchronous and one value at a time, so one instance is shared;
 * `start` it at the top of each value. The characters counted are at least those of the text.
 */
export class RenderBudget {
  private chars = 0;
  private elements = 0;
  start(): void {
    this.chars = 0, this.elements = 0;
  }
  /** Counts `n` characters of text; `path` names the value in an error (decoders that build paths). */
  text(n: number, path = ""): void {
    if ((this.chars += n) > MAX_ANY_VALUE_CHARS) {
      throw new DecodeError(`AnyValue renders to more than ${MAX_ANY_VALUE_CHARS} characters`, path);
    }
  }
  /** Counts one element or entry, and its separator. */
  element(path = ""): void {
    if (++this.elements > MAX_ANY_VALUE_ELEMENTS) {
      throw new DecodeError(`AnyValue holds more than ${MAX_ANY_VALUE_ELEMENTS} elements`, path);
    }
    this.text(2, path);
  }
}

/** The budget of the AnyValue being rendered (JSON and protobuf decoders alike). */
export const renderBudget = new RenderBudget();

const HEX = new Array<string>(256);
/** Per byte value, its two hex digits: the first in the low byte. */
const HEX_PAIRS = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  HEX[i] = i.toString(16).padStart(2, "0");
  HEX_PAIRS[i] = HEX[i].charCodeAt(0) | (HEX[i].charCodeAt(1) << 8);
}

/** Appends an id as lowercase hex, or "" when it is empty or all zero. */
export function pushHexId(col: StrColumn, src: Uint8Array, start: number, end: number): void {
  if (start === end) return col.pushEmpty();
  // Written first, committed only when some byte is not zero: one pass over the id.
  const at = col.reserve((end - start) * 2);
  const view = col.dataView();
  let any = 0;
  for (let i = start, j = at; i < end; i++, j += 2) {
    const v = src[i];
    any |= v;
    view.setUint16(j, HEX_PAIRS[v], true);
  }
  if (any === 0) col.pushEmpty();
  else col.commit(at + (end - start) * 2);
}

/** Longest text `writeUint` writes (2^32 - 1 has ten digits). */
export const UINT_TEXT_MAX = 10;

/** Writes a non-negative integer below 2^32 as decimal digits at `b[at]`; returns the end. */
export function writeUint(b: Uint8Array, at: number, v: number): number {
  if (v < 1000) {
    // Status codes, counts, ports: written without counting digits first.
    if (v < 10) return b[at] = 48 + v, at + 1;
    const h = (v / 100) | 0, r = v - h * 100, t = (r / 10) | 0;
    if (h !== 0) b[at++] = 48 + h;
    b[at] = 48 + t, b[at + 1] = 48 + r - t * 10;
    return at + 2;
  }
  let digits = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
  let j = at + digits - 1;
  // Beyond 2^31 `| 0` would wrap: those digits go through floating-point division first.
  for (; v > 0x7fffffff; j--) {
    b[j] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
  for (; j >= at; j--) {
    const q = (v / 10) | 0;
    b[j] = 48 + v - q * 10;
    v = q;
  }
  return at + digits;
}

/**
 * Whether `writeShortDouble` can write `d`: the usual values, at most three decimals and below 1e9 in
 * magnitude (durations, ratios, prices). Below 1e9 neighbouring doubles lie closer than 1e-3, so when
 * round(d·1000) / 1000 is d, that decimal of at most three places is the only one that rounds to d: the
 * shortest one, which String(d) writes out without an exponent at these magnitudes. (NaN fails the test.)
 */
export function isShortDouble(d: number): boolean {
  return d > -1e9 && d < 1e9 && Math.round(d * 1000) / 1000 === d;
}

/** Longest text `writeShortDouble` writes ("-999999999.999"). */
export const SHORT_DOUBLE_TEXT_MAX = 14;

/** Writes `String(d)` of a double that `isShortDouble` accepts at `b[at]`, digit by digit; returns the end. */
export function writeShortDouble(b: Uint8Array, at: number, d: number): number {
  const m = Math.round(d * 1000);
  const a = m < 0 ? -m : m; // -0 and 0 both give "0"
  const whole = Math.floor(a / 1000);
  let frac = a - whole * 1000, fd = 3;
  if (frac === 0) fd = 0;
  else if (frac % 100 === 0) frac /= 100, fd = 1;
  else if (frac % 10 === 0) frac /= 10, fd = 2;
  if (m < 0) b[at++] = 45; // "-"
  at = writeUint(b, at, whole);
  if (fd === 0) return at;
  b[at] = 46; // "."
  for (let j = at + fd; j > at; j--) {
    b[j] = 48 + (frac % 10);
    frac = Math.floor(frac / 10);
  }
  return at + fd + 1;
}

/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]];
  return s;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_CODES = new Uint8Array(64).map((_, i) => B64.charCodeAt(i));
const B64_VALUES = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) B64_VALUES[B64.charCodeAt(i)] = i;
B64_VALUES["-".charCodeAt(0)] = 62; // base64url, which some protobuf JSON encoders emit
B64_VALUES["_".charCodeAt(0)] = 63;

/** Appends standard, padded base64 of `src[start, end)`. */
export function pushBase64(col: StrColumn, src: Uint8Array, start: number, end: number): void {
  const n = end - start;
  const at = col.reserve(Math.ceil(n / 3) * 4);
  const b = col.bytes;
  let j = at;
  let i = start;
  for (; i + 2 < end; i += 3) {
    const v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];
    b[j++] = B64_CODES[v >>> 18];
    b[j++] = B64_CODES[(v >>> 12) & 63];
    b[j++] = B64_CODES[(v >>> 6) & 63];
    b[j++] = B64_CODES[v & 63];
  }
  if (i < end) {
    const v = (src[i] << 16) | (i + 1 < end ? src[i + 1] << 8 : 0);
    b[j++] = B64_CODES[v >>> 18];
    b[j++] = B64_CODES[(v >>> 12) & 63];
    b[j++] = i + 1 < end ? B64_CODES[(v >>> 6) & 63] : 61;
    b[j++] = 61;
  }
  col.commit(j);
}

/** Standard base64 of bytes as a string. */
export function toBase64(bytes: Uint8Array): string {
  const col = new StrColumn();
  pushBase64(col, bytes, 0, bytes.length);
  return col.get(0);
}

/** Decodes standard or URL-safe base64 (padding optional); undefined when it is not base64. */
export function fromBase64(s: string): Uint8Array | undefined {
  let len = s.length;
  while (len > 0 && s.charCodeAt(len - 1) === 61) len--;
  if (s.length - len > 2 || len % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((len * 3) / 4));
  let bits = 0, acc = 0, j = 0;
  for (let i = 0; i < len; i++) {
    const code = s.charCodeAt(i);
    const v = code < 256 ? B64_VALUES[code] : -1;
    if (v < 0) return undefined;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >>> bits) & 0xff;
    }
  }
  return out;
}

/** Decodes hex (either case); undefined when it is not hex. */
export function fromHex(s: string): Uint8Array | undefined {
  if (s.length % 2 !== 0) return undefined;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(s.charCodeAt(i * 2)), lo = hexValue(s.charCodeAt(i * 2 + 1));
    if (hi < 0 || lo < 0) return undefined;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** A double as the exporter renders it: the shortest round-trip form (ECMAScript Number::toString). */
export function formatDouble(v: number): string {
  return String(v);
}

/** A double inside JSON text: non-finite values, which JSON cannot hold, become strings. */
export function jsonDouble(v: number): string {
  return Number.isFinite(v) ? String(v) : `"${String(v)}"`;
}

/**
 * Scratch space for one attribute list: keys and rendered values in arrival order. `flushTo` sorts
 * the keys (by UTF-8 bytes), keeps the last value of a repeated key and closes one map row.
 */
export class AttrScratch {
  readonly keys = new StrColumn();
  readonly values = new StrColumn();
  private order = new Int32Array(64);

  reset(): void {
    this.keys.length = 0;
    this.values.length = 0;
  }

  /** Sorts, de-duplicates and appends the entries as one row of `map`, then resets. */
  flushTo(map: MapColumn): void {
    const n = this.keys.length, m = this.sortedCount();
    if (m < 0) {
      // Already sorted and unique (the usual case): one bulk copy.
      if (n > 0) {
        map.keys.appendRange(this.keys, 0, n);
        map.values.appendRange(this.values, 0, n);
      }
    } else {
      for (let i = 0; i < m; i++) {
        const k = this.order[i];
        map.keys.appendRange(this.keys, k, k + 1);
        map.values.appendRange(this.values, k, k + 1);
      }
    }
    map.closeRow();
    this.reset();
  }

  /**
   * Like flushTo, for a map that stores each distinct key list once. The keys as they came, their output
   * order and their list in `map` are kept for the next row: records in a row mostly repeat their keys,
   * in the same order, and then need neither sorting nor a look for their list.
   */
  flushToKeyed(map: KeyedMapColumn): void {
    const n = this.keys.length, child = map.values.child;
    if (map === this.lastMap && this.sameKeysAsLast()) {
      const order = this.lastOrder;
      for (let i = 0; i < this.lastCount; i++) child.appendRange(this.values, order[i], order[i] + 1);
      map.closeRowWithList(this.lastId);
      this.reset();
      return;
    }
    let m = this.sortedCount();
    if (m < 0) {
      if (this.order.length < n) this.order = new Int32Array(n * 2);
      for (let i = 0; i < n; i++) this.order[i] = i;
      m = n;
    }
    const order = this.order, o = this.keys.offsets;
    if (this.starts.length < m) this.starts = new Int32Array(m * 2), this.ends = new Int32Array(m * 2);
    for (let i = 0; i < m; i++) this.starts[i] = o[order[i]], this.ends[i] = o[order[i] + 1];
    for (let i = 0; i < m; i++) child.appendRange(this.values, order[i], order[i] + 1);
    this.lastId = map.closeRow(m, this.keys.bytes, this.starts, this.ends);
    this.lastMap = map, this.lastCount = m;
    if (this.lastOrder.length < m) this.lastOrder = new Int32Array(m * 2);
    this.lastOrder.set(order.subarray(0, m));
    this.last.length = 0;
    this.last.appendRange(this.keys, 0, n);
    this.reset();
  }

  /** The map, list id and entry count of the last flushToKeyed, and its keys as they came. */
  private lastMap: KeyedMapColumn | undefined;
  private lastId = -1;
  private lastCount = 0;
  private lastOrder = new Int32Array(16);
  private readonly last = new StrColumn(8, 16);

  /** Whether the keys are those of the last flushToKeyed, in the same order. */
  private sameKeysAsLast(): boolean {
    const a = this.keys, b = this.last, n = a.length;
    if (b.length !== n) return false;
    const ao = a.offsets, bo = b.offsets;
    for (let i = 1; i <= n; i++) if (ao[i] !== bo[i]) return false;
    const ab = a.bytes, bb = b.bytes;
    for (let i = 0, e = ao[n]; i < e; i++) if (ab[i] !== bb[i]) return false;
    return true;
  }

  /**
   * -1 when the keys already strictly increase (`order` is then not filled); else sorts and de-duplicates
   * the entries into `order` and returns how many remain.
   */
  private sortedCount(): number {
    const n = this.keys.length;
    let ordered = true;
    for (let i = 1; i < n && ordered; i++) ordered = this.compareKeys(i - 1, i) < 0;
    if (ordered) return -1;
    if (this.order.length < n) this.order = new Int32Array(n * 2);
    return sortUniqueKeys(this.order, n, (a, b) => this.compareKeys(a, b));
  }

  /** Key ranges in output order (flushToKeyed). */
  private starts = new Int32Array(16);
  private ends = new Int32Array(16);

  private compareKeys(a: number, b: number): number {
    const o = this.keys.offsets, bytes = this.keys.bytes;
    const as = o[a], ae = o[a + 1], bs = o[b], be = o[b + 1];
    const n = Math.min(ae - as, be - bs);
    for (let i = 0; i < n; i++) {
      const d = bytes[as + i] - bytes[bs + i];
      if (d !== 0) return d;
    }
    return (ae - as) - (be - bs);
  }
}

/**
 * Orders entries 0..n-1 by key into `order` (stable) and keeps only the last of each run of equal keys (a
 * later value of a repeated key wins); returns how many entries remain at the front of `order`.
 */
export function sortUniqueKeys(
  order: Int32Array,
  n: number,
  compare: (a: number, b: number) => number,
): number {
  for (let i = 0; i < n; i++) order[i] = i;
  if (n <= 32) {
    // Insertion sort: attribute lists are short and often nearly sorted; stable, so among equal keys
    // the last in arrival order ends last.
    for (let i = 1; i < n; i++) {
      const x = order[i];
      let j = i - 1;
      while (j >= 0 && compare(order[j], x) > 0) {
        order[j + 1] = order[j];
        j--;
      }
      order[j + 1] = x;
    }
  } else {
    // Long lists (hostile or not) sort in n log n; ties broken by arrival keep it stable.
    order.subarray(0, n).sort((a, b) => compare(a, b) || a - b);
  }
  let m = 0;
  for (let i = 0; i < n; i++) {
    if (i + 1 < n && compare(order[i], order[i + 1]) === 0) continue;
    order[m++] = order[i];
  }
  return m;
}

/** How many tables a PreparedMap remembers being added to: the five metrics tables. */
const MAX_TABLES = 8;

/** A prepared map row (resource or scope attributes), appended to many rows cheaply. */
export class PreparedMap {
  private readonly col: MapColumn;
  /**
   * The columns this map was added to as a distinct map (the last few), and its index in each: a
   * resource's metrics go to several tables in turn, and each keeps one copy of the map.
   */
  private readonly addedTo: (SharedMapColumn | undefined)[] = [];
  private readonly ids: number[] = [];
  private next = 0;
  constructor(col: MapColumn) {
    this.col = col;
  }
  /** Appends this map as one more row of `map`. */
  pushTo(map: SharedMapColumn): void {
    this.pushRepeated(map, 1);
  }
  /** Appends this map as `times` more rows of `map` (stored once in it, however many rows hold it). */
  pushRepeated(map: SharedMapColumn, times: number): void {
    const added = this.addedTo;
    let k = 0;
    while (k < added.length && added[k] !== map) k++;
    if (k === added.length) {
      // Up to MAX_TABLES columns are remembered; past them, the oldest is forgotten (and added again).
      k = added.length < MAX_TABLES ? added.length : this.next;
      this.next = (k + 1) % MAX_TABLES;
      added[k] = map, this.ids[k] = map.addMap(this.col, 0);
    }
    map.pushId(this.ids[k], times);
  }
  /** Value of a key, if present. */
  lookup(key: string): string | undefined {
    const c = this.col;
    for (let e = c.offsets[0]; e < c.offsets[1]; e++) if (c.keys.get(e) === key) return c.values.get(e);
    return undefined;
  }
}

/** Throws the error for input nested too deeply. */
export function tooDeep(): never {
  throw new DecodeError(`AnyValue nested deeper than ${MAX_ANY_VALUE_DEPTH} levels`);
}
