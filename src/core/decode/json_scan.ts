/**
 * A pull scanner for OTLP/JSON over the UTF-8 bytes of a body: no TextDecoder of the body, no
 * JSON.parse, no tree of JS objects. A body is first checked once (`checkJson`: UTF-8, then JSON's
 * grammar, iteratively, so no nesting can overflow the stack), and then read by position: `skip` finds
 * where a value ends, `scanFields` records where an object's known fields start (the last of a
 * repeated key wins, as with JSON.parse), and the readers turn a value into what a column takes.
 *
 * Work is linear in the bytes: the check visits each byte once, with a stack of one bit per open
 * bracket; the readers visit each value a bounded number of times (once per message level holding it,
 * at most MAX_ANY_VALUE_DEPTH deep). `jsonWork` counts the bytes each pass visits, for tests.
 *
 * @module
 */

import { DecodeError } from "../errors.ts";
import { isUtf8 } from "./wire.ts";

/** Bytes visited by the check and by skips since the last reset (a work measure for tests). */
export const jsonWork = { checked: 0, skipped: 0 };

/** 1 for JSON's four whitespace bytes. */
const WS = new Uint8Array(256);
WS[0x20] =
  WS[0x09] =
  WS[0x0a] =
  WS[0x0d] =
    1;

/** Bytes that end a number or literal when skipping: whitespace, `,`, `}` and `]`. */
const SCALAR_END = WS.slice();
SCALAR_END[0x2c] = SCALAR_END[0x7d] = SCALAR_END[0x5d] = 1;

/**
 * Containers less than this deep (the request is depth 0; a scope's item array depth 5, a metric's data
 * points depth 8) whose text is at least INDEX_MIN_BYTES long have their end recorded by `checkJson`,
 * so that skipping them (scanning an envelope's or a metric's fields while its items follow) costs a
 * lookup, not a pass over their bytes. At most INDEX_DEPTH * size / INDEX_MIN_BYTES entries of 8 bytes
 * (under 1 % of the body), whatever the input.
 */
const INDEX_DEPTH = 9, INDEX_MIN_BYTES = 1024;

/** The large containers of a checked body: starts (increasing) and the positions after them. */
class EndIndex {
  starts = new Int32Array(16);
  ends = new Int32Array(16);
  length = 0;

  /** Opens an entry at `p`; returns its number. */
  open(p: number): number {
    if (this.length === this.starts.length) {
      const starts = new Int32Array(this.length * 2), ends = new Int32Array(this.length * 2);
      starts.set(this.starts), ends.set(this.ends);
      this.starts = starts, this.ends = ends;
    }
    this.starts[this.length] = p;
    return this.length++;
  }

  /** Closes entry `k` at `p` (the position after the container): kept if large, else dropped. */
  close(k: number, p: number): void {
    // A small container holds only small ones, whose entries were dropped already: `k` is the last.
    if (p - this.starts[k] >= INDEX_MIN_BYTES) this.ends[k] = p;
    else this.length = k;
  }

  /** The recorded end of the container starting at `p`, or -1. */
  find(p: number): number {
    let lo = 0, hi = this.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1, s = this.starts[mid];
      if (s === p) return this.ends[mid];
      if (s < p) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}

/** Per checked buffer, its index of large containers. */
const endIndexes = new WeakMap<Uint8Array, EndIndex>();
let indexedBuf: Uint8Array | undefined, indexed: EndIndex | undefined;

/** The recorded end of the container starting at `buf[p]`, or -1. */
function indexedEnd(buf: Uint8Array, p: number): number {
  if (buf !== indexedBuf) indexedBuf = buf, indexed = endIndexes.get(buf);
  return indexed === undefined ? -1 : indexed.find(p);
}

/** Hex digit values (-1: not a hex digit). */
const HEX_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[65 + i] = HEX_VALUE[97 + i] = 10 + i;

function syntax(problem: string, at: number): never {
  throw new DecodeError(`invalid JSON: ${problem} at byte ${at}`);
}

function unexpected(buf: Uint8Array, p: number): never {
  if (p >= buf.length) syntax("unexpected end of input", p);
  const c = buf[p];
  syntax(
    `unexpected ${c >= 0x21 && c < 0x7f ? `"${String.fromCharCode(c)}"` : `byte 0x${c.toString(16)}`}`,
    p,
  );
}

/** The position after whitespace from `p`. */
export function ws(buf: Uint8Array, p: number): number {
  let c = buf[p];
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++p];
  return p;
}

/** 1 for the bytes that stand for themselves in a JSON string: not `"`, `\\` or a control character. */
const STRING_PLAIN = new Uint8Array(256).fill(1, 0x20);
STRING_PLAIN[0x22] = STRING_PLAIN[0x5c] = 0;

/** Checks the string starting at `buf[p]` (`"`) by JSON's grammar; returns the position after it. */
function checkString(buf: Uint8Array, p: number): number {
  const n = buf.length;
  let c = buf[++p];
  for (;;) {
    // Past the end `c` is undefined, which ends the run too.
    while (STRING_PLAIN[c] === 1) c = buf[++p];
    if (p >= n) syntax("unterminated string", p);
    if (c === 0x22) return p + 1;
    if (c !== 0x5c) syntax(`control character 0x${c.toString(16)} in a string`, p);
    const x = buf[p + 1];
    if (x === 0x75) {
      for (let k = 2; k < 6; k++) if (HEX_VALUE[buf[p + k]] < 0) syntax("bad \\u escape", p);
      p += 6;
    } else if (
      x === 0x22 || x === 0x5c || x === 0x2f || x === 0x62 || x === 0x66 || x === 0x6e || x === 0x72 ||
      x === 0x74
    ) p += 2;
    else syntax("bad escape", p);
    c = buf[p];
  }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Checks the key and colon starting at `buf[p]`; returns where the value starts. */
function checkKey(buf: Uint8Array, p: number): number {
  if (buf[p] !== 0x22) unexpected(buf, p);
  p = checkString(buf, p);
  if (buf[p] <= 0x20) p = ws(buf, p);
  if (buf[p] !== 0x3a) unexpected(buf, p);
  p++;
  return buf[p] <= 0x20 ? ws(buf, p) : p;
}

/** Checks the number starting at `buf[p]` by JSON's grammar; returns the position after it. */
function checkNumber(buf: Uint8Array, p: number): number {
  if (buf[p] === 0x2d) p++;
  if (buf[p] === 0x30) p++;
  else if (isDigit(buf[p])) { while (isDigit(buf[p])) p++; }
  else unexpected(buf, p);
  if (buf[p] === 0x2e) {
    p++;
    if (!isDigit(buf[p])) unexpected(buf, p);
    while (isDigit(buf[p])) p++;
  }
  if (buf[p] === 0x65 || buf[p] === 0x45) {
    p++;
    if (buf[p] === 0x2b || buf[p] === 0x2d) p++;
    if (!isDigit(buf[p])) unexpected(buf, p);
    while (isDigit(buf[p])) p++;
  }
  return p;
}

const TRUE = [0x74, 0x72, 0x75, 0x65],
  FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65],
  NULL = [0x6e, 0x75, 0x6c, 0x6c];

function checkLiteral(buf: Uint8Array, p: number, word: readonly number[]): number {
  for (let k = 0; k < word.length; k++) if (buf[p + k] !== word[k]) unexpected(buf, p + k);
  return p + word.length;
}

/**
 * Checks that `buf` holds one JSON value (whitespace around it allowed) and is UTF-8: a DecodeError
 * "body is not valid UTF-8" or "invalid JSON: …" otherwise, in that order of precedence (what decoding
 * the text first and parsing it then reported; `utf8` false: the caller checked it). Iterative: the open brackets are a stack of bits.
 */
export function checkJson(buf: Uint8Array, utf8 = true): void {
  if (utf8 && !isUtf8(buf, 0, buf.length)) throw new DecodeError("body is not valid UTF-8");
  const n = buf.length;
  jsonWork.checked += n;
  // Bit d of `stack`: the container at depth d + 1 is an object (1) or an array (0).
  let stack = new Int32Array(8), depth = 0;
  // Per open depth below INDEX_DEPTH, its entry in the index.
  const index = new EndIndex(), entries = new Int32Array(INDEX_DEPTH);
  endIndexes.set(buf, index);
  if (indexedBuf === buf) indexed = index;
  let p = 0;
  if (buf[p] <= 0x20) p = ws(buf, p);
  value: for (;;) {
    // A value starts at p.
    const c = buf[p];
    if (c === 0x7b || c === 0x5b) {
      if (depth >>> 5 >= stack.length) {
        const grown = new Int32Array(stack.length * 2);
        grown.set(stack);
        stack = grown;
      }
      const isObject = c === 0x7b;
      if (isObject) stack[depth >>> 5] |= 1 << (depth & 31);
      else stack[depth >>> 5] &= ~(1 << (depth & 31));
      if (depth < INDEX_DEPTH) entries[depth] = index.open(p);
      depth++;
      p++;
      if (buf[p] <= 0x20) p = ws(buf, p);
      if (buf[p] === (isObject ? 0x7d : 0x5d)) {
        depth--;
        p++;
        if (depth < INDEX_DEPTH) index.close(entries[depth], p);
      } else {
        if (isObject) p = checkKey(buf, p);
        continue value;
      }
    } else if (c === 0x22) p = checkString(buf, p);
    else if (c === 0x2d || isDigit(c)) p = checkNumber(buf, p);
    else if (c === 0x74) p = checkLiteral(buf, p, TRUE);
    else if (c === 0x66) p = checkLiteral(buf, p, FALSE);
    else if (c === 0x6e) p = checkLiteral(buf, p, NULL);
    else unexpected(buf, p);
    // After a value: close containers or go on with the next element.
    for (;;) {
      if (buf[p] <= 0x20) p = ws(buf, p);
      if (depth === 0) {
        if (p < n) unexpected(buf, p);
        return;
      }
      const isObject = (stack[(depth - 1) >>> 5] >>> ((depth - 1) & 31) & 1) === 1;
      const d = buf[p];
      if (d === 0x2c) {
        p++;
        if (buf[p] <= 0x20) p = ws(buf, p);
        if (isObject) p = checkKey(buf, p);
        continue value;
      }
      if (d !== (isObject ? 0x7d : 0x5d)) unexpected(buf, p);
      depth--;
      p++;
      if (depth < INDEX_DEPTH) index.close(entries[depth], p);
    }
  }
}

/**
 * The position after the string starting at `buf[p]` (checked JSON). Sets `str` to its contents' range
 * and whether it holds escapes.
 */
export function skipString(buf: Uint8Array, p: number): number {
  let q = p + 1, esc = false;
  for (;;) {
    let c = buf[q];
    while (c !== 0x22 && c !== 0x5c) c = buf[++q];
    if (c === 0x22) break;
    esc = true;
    q += 2;
  }
  str.s = p + 1, str.e = q, str.esc = esc;
  return q + 1;
}

/** The contents of the last string skipped or read: `[s, e)` of the buffer, and whether it has escapes. */
export const str = { s: 0, e: 0, esc: false };

/**
 * The position after the value starting at `buf[p]` (checked JSON, no whitespace before it). A large
 * container whose end `checkJson` recorded is skipped by a lookup when `indexed`.
 */
export function skip(buf: Uint8Array, p: number, indexed = false): number {
  const c = buf[p];
  let q: number;
  if (c === 0x22) q = skipString(buf, p);
  else if (c === 0x7b || c === 0x5b) {
    const known = indexed ? indexedEnd(buf, p) : -1;
    if (known >= 0) return known;
    let depth = 1;
    q = p + 1;
    while (depth > 0) {
      const d = buf[q];
      if (d === 0x22) q = skipString(buf, q);
      else {
        if (d === 0x7b || d === 0x5b) depth++;
        else if (d === 0x7d || d === 0x5d) depth--;
        q++;
      }
    }
  } else {
    q = p + 1;
    while (q < buf.length && SCALAR_END[buf[q]] === 0) q++;
  }
  jsonWork.skipped += q - p;
  return q;
}

/** snake_case spelling of a lowerCamelCase field name (proto3 JSON parsers accept both). */
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

/**
 * The known fields of an object, matched against key bytes: field i's lowerCamelCase name has slot
 * 2i, its snake_case name (when it differs) slot 2i + 1 (see `pick`).
 */
export class FieldNames {
  /** Per hash of a name (its length, first and last byte), the slots of the names with that hash. */
  private readonly byHash: number[][] = [];
  private readonly bytes: Uint8Array[] = [];
  private readonly byName = new Map<string, number>();
  /** The slot of the k-th key of the last object scanned (-1: none known): objects repeat their order. */
  private readonly order = new Int16Array(32).fill(-1);
  /** Slots: two per field. */
  readonly size: number;

  constructor(fields: readonly string[]) {
    this.size = fields.length * 2;
    const encoder = new TextEncoder();
    for (let i = 0; i < 256; i++) this.byHash.push([]);
    fields.forEach((camel, i) => {
      for (const [name, slot] of [[camel, 2 * i], [snake(camel), 2 * i + 1]] as const) {
        if (this.byName.has(name)) continue;
        const b = this.bytes[slot] = encoder.encode(name);
        this.byHash[hash(b, 0, b.length)].push(slot);
        this.byName.set(name, slot);
      }
    });
  }

  /** The slot of the `k`-th key of an object, whose contents are `buf[s, e)` (`esc`: with escapes), or -1. */
  lookupNth(buf: Uint8Array, s: number, e: number, esc: boolean, k: number): number {
    if (k >= 32) return this.lookup(buf, s, e, esc);
    const guess = this.order[k];
    if (guess >= 0 && !esc && this.matches(guess, buf, s, e)) return guess;
    return this.order[k] = this.lookup(buf, s, e, esc);
  }

  /**
   * When the key starting at `buf[p]` (its opening quote) is the known name the `k`-th key of the last
   * object scanned was, byte for byte, the position after it (its slot in `guessed`); else -1. No name has
   * a backslash, so the quote after matching bytes closes the key.
   */
  guessNth(buf: Uint8Array, p: number, k: number): number {
    const slot = k < 32 ? this.order[k] : -1;
    if (slot < 0) return -1;
    const name = this.bytes[slot], n = name.length, s = p + 1;
    if (buf[s + n] !== 0x22) return -1;
    for (let i = 0; i < n; i++) if (buf[s + i] !== name[i]) return -1;
    this.guessed = slot;
    return s + n + 1;
  }
  /** The slot of the key guessNth last matched. */
  guessed = -1;

  /** The slot of the key whose contents are `buf[s, e)` (`esc`: with escapes), or -1. */
  lookup(buf: Uint8Array, s: number, e: number, esc: boolean): number {
    if (esc) return this.byName.get(decodeString(buf, s, e, true)) ?? -1;
    if (s === e) return -1;
    const slots = this.byHash[hash(buf, s, e)];
    for (let k = 0; k < slots.length; k++) if (this.matches(slots[k], buf, s, e)) return slots[k];
    return -1;
  }

  /** Whether the name of `slot` is `buf[s, e)`. */
  private matches(slot: number, buf: Uint8Array, s: number, e: number): boolean {
    const name = this.bytes[slot];
    if (name.length !== e - s) return false;
    let i = 0;
    while (i < name.length && buf[s + i] === name[i]) i++;
    return i === name.length;
  }
}

/** A byte hash of a non-empty key `b[s, e)`: its length, first and last byte. */
function hash(b: Uint8Array, s: number, e: number): number {
  return ((e - s) * 7 + b[s] * 3 + b[e - 1]) & 255;
}

/**
 * Where field `i`'s value starts after scanFields(…, `at`): under its camelCase name if given (even as
 * null, as JSON.parse's tree then had it), else under its snake_case name; -1 when absent.
 */
export function pick(at: Int32Array, i: number): number {
  const p = at[2 * i];
  return p >= 0 ? p : at[2 * i + 1];
}

/**
 * Records in `at` where the values of the object starting at `buf[p]` (`{`) start, by slot of `names`
 * (-1: absent; the last of a repeated key wins); returns the number of keys the object has, and leaves
 * the position after the object in `scanEnd.p`. `indexed`: large values are skipped by `checkJson`'s
 * index (for envelopes, whose item arrays are most of the body). The value of slot `eager`, if any, is
 * not skipped but read by `read(p)`, which returns the position after it (called again, on the later
 * value, when the key repeats).
 */
export function scanFields(
  buf: Uint8Array,
  p: number,
  names: FieldNames,
  at: Int32Array,
  indexed = false,
  eager = -1,
  read?: (p: number, again: boolean) => number,
): number {
  for (let i = 0; i < names.size; i++) at[i] = -1;
  let keys = 0;
  p++;
  if (buf[p] <= 0x20) p = ws(buf, p);
  if (buf[p] === 0x7d) {
    scanEnd.p = p + 1;
    return 0;
  }
  for (;;) {
    const guessEnd = names.guessNth(buf, p, keys);
    let slot: number;
    if (guessEnd >= 0) p = guessEnd, slot = names.guessed;
    else {
      p = skipString(buf, p);
      slot = names.lookupNth(buf, str.s, str.e, str.esc, keys);
    }
    if (buf[p] !== 0x3a) p = ws(buf, p);
    p++;
    if (WS[buf[p]] === 1) p = ws(buf, p);
    keys++;
    if (slot === eager && slot >= 0) {
      const again = at[slot] >= 0;
      at[slot] = p;
      p = read!(p, again);
    } else {
      if (slot >= 0) at[slot] = p;
      p = skip(buf, p, indexed);
    }
    let c = buf[p];
    if (WS[c] === 1) c = buf[p = ws(buf, p)];
    if (c === 0x7d) break;
    p++;
    if (WS[buf[p]] === 1) p = ws(buf, p);
  }
  scanEnd.p = p + 1;
  return keys;
}

/** Where the last scanFields or nextElement stopped. */
export const scanEnd = { p: 0 };

/**
 * Steps through an array: given the position after `[` or after an element, returns where the next
 * element starts, or -1 (and the position after `]` in `scanEnd.p`) when there is none.
 */
export function nextElement(buf: Uint8Array, p: number): number {
  if (buf[p] <= 0x20) p = ws(buf, p);
  const c = buf[p];
  if (c === 0x5d) {
    scanEnd.p = p + 1;
    return -1;
  }
  if (c !== 0x2c) return p;
  p++;
  return buf[p] <= 0x20 ? ws(buf, p) : p;
}

const utf8 = new TextDecoder();

/** The JS string a JSON string's contents `buf[s, e)` denote (lone surrogates kept, as JSON.parse does). */
export function decodeString(buf: Uint8Array, s: number, e: number, esc: boolean): string {
  if (!esc) return utf8.decode(buf.subarray(s, e));
  let out = "", from = s;
  for (let i = s; i < e; i++) {
    if (buf[i] !== 0x5c) continue;
    if (i > from) out += utf8.decode(buf.subarray(from, i));
    const x = buf[i + 1];
    if (x === 0x75) {
      out += String.fromCharCode(
        (HEX_VALUE[buf[i + 2]] << 12) | (HEX_VALUE[buf[i + 3]] << 8) | (HEX_VALUE[buf[i + 4]] << 4) |
          HEX_VALUE[buf[i + 5]],
      );
      i += 5;
    } else {
      out += x === 0x62
        ? "\b"
        : x === 0x66
        ? "\f"
        : x === 0x6e
        ? "\n"
        : x === 0x72
        ? "\r"
        : x === 0x74
        ? "\t"
        : String.fromCharCode(x);
      i += 1;
    }
    from = i + 1;
  }
  if (from < e) out += utf8.decode(buf.subarray(from, e));
  return out;
}

/** Placeholders for containers in `jsValue`: messages name them ("an object", "an array"). */
const AN_OBJECT = Object.freeze({}), AN_ARRAY = Object.freeze([]);

/**
 * The value starting at `buf[p]` as JSON.parse would give a scalar (strings, numbers, booleans, null);
 * an object or an array as an empty placeholder of its kind. For the readers' rare paths, which hand
 * it to the scalar functions of json_values.ts, so that their checks and messages hold as they are.
 */
export function jsValue(buf: Uint8Array, p: number): unknown {
  const c = buf[p];
  if (c === 0x22) {
    skipString(buf, p);
    return decodeString(buf, str.s, str.e, str.esc);
  }
  if (c === 0x7b) return AN_OBJECT;
  if (c === 0x5b) return AN_ARRAY;
  if (c === 0x74) return true;
  if (c === 0x66) return false;
  if (c === 0x6e) return null;
  const q = skip(buf, p);
  let text = "";
  for (let i = p; i < q; i++) text += String.fromCharCode(buf[i]);
  return Number(text);
}

/**
 * The value of the plain non-negative integer starting at `buf[p]` (a JSON number of at most nine
 * digits, no sign, fraction or exponent), or -1 when it is anything else.
 */
export function smallUint(buf: Uint8Array, p: number): number {
  let v = 0, i = p;
  for (; i < p + 10; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
  }
  if (i === p || i === p + 10) return -1;
  const c = buf[i];
  return c === 0x2e || c === 0x65 || c === 0x45 ? -1 : v;
}
