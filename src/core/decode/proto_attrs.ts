/**
 * Scratch space for one protobuf attribute list. It keeps byte ranges into the request instead of
 * copies: keys and string values (nearly every value) are copied once, straight into the output map,
 * when the list is complete. Small ints, bools and the usual doubles are written as text at that point
 * too, from what the entry kept; other values are rendered to text on arrival, into a buffer of their own.
 *
 * @module
 */

import {
  copyBytes,
  type KeyedMapColumn,
  type MapColumn,
  rangeEquals,
  StrColumn,
  viewOf,
} from "../table/columns.ts";
import {
  SHORT_DOUBLE_TEXT_MAX,
  sortUniqueKeys,
  UINT_TEXT_MAX,
  writeShortDouble,
  writeUint,
} from "../table/values.ts";

const EMPTY = new Uint8Array(0);
const TRUE = new TextEncoder().encode("true"), FALSE = new TextEncoder().encode("false");

/** What an entry's value is (`kinds`), and so what its value start and end hold. */
const RANGE = 0, // a range of the request: start, end
  RENDERED = 1, // row `start` of `rendered`
  UINT = 2, // the integer `start` (unsigned)
  BOOL = 3, // `start` is 1 for true, 0 for false
  DOUBLE = 4; // the little-endian double at `start` of the request, which isShortDouble accepts

/**
 * Entries of one attribute list in arrival order. `flushTo` sorts the keys (by UTF-8 bytes), keeps the
 * last value of a repeated key and closes one map row, exactly like `AttrScratch`.
 */
export class ProtoAttrScratch {
  /** Values rendered to text on arrival (the kinds not written at flush), referenced by row from the entries. */
  readonly rendered = new StrColumn(64, 16);
  private buf: Uint8Array = EMPTY;
  /** Per entry: key start, key end, value start, value end (what they hold depends on `kinds`). */
  private ent = new Int32Array(64 * 4);
  /** Per entry, what its value is: RANGE, RENDERED, UINT, BOOL or DOUBLE. */
  private kinds = new Uint8Array(64);
  /** Per entry: the key's first 8 bytes (zero-padded) as two big-endian words, which decide most comparisons. */
  private pre = new Uint32Array(64 * 2);
  private n = 0;
  /** Bytes of all keys, and at most the bytes of all values but rendered ones (bounds on what `write` writes). */
  private keyBytes = 0;
  private valueBytes = 0;
  /** The entries to write, in output order. */
  private order = new Int32Array(64);
  /**
   * Entries in the last flushed list when `order` holds its full permutation (its keys were all
   * distinct), else -1: instrumentation emits the same keys in the same order, so that order is tried first.
   */
  private lastN = -1;

  // The last list flushed to a keyed map, which the next records of a request nearly always repeat (same
  // keys, same order): its keys in arrival order (a copy, so already checked), how many entries were
  // written (the first of `order`, which only a later list changes) and the map's id of its key list.
  private knownMap: KeyedMapColumn | undefined;
  private knownKeys = new StrColumn(16, 16);
  private knownM = 0;
  private knownId = -1;
  /** Entries from the first that were added as known: their keys equal the known keys at their index. */
  private matched = 0;

  /** Number of entries added since the last reset. */
  get length(): number {
    return this.n;
  }

  reset(): void {
    this.n = this.matched = 0;
    this.keyBytes = this.valueBytes = 0;
    this.rendered.length = 0;
  }

  /**
   * Whether the next entry's key, `buf[ks, ke)`, is the known list's key at its index, every entry before
   * it having been added as known too. Such a key is already checked to be UTF-8; add the entry with
   * `known` set to this answer.
   */
  knows(buf: Uint8Array, ks: number, ke: number): boolean {
    const n = this.n, k = this.knownKeys;
    if (this.matched !== n || n >= k.length) return false;
    const at = k.offsets[n];
    return k.offsets[n + 1] - at === ke - ks &&
      rangeEquals(k.bytes, k.dataView(), at, buf, viewOf(buf), ks, ke - ks);
  }

  /** Adds an entry whose key and value are ranges of `buf` (already checked to be UTF-8). */
  addRange(buf: Uint8Array, ks: number, ke: number, vs: number, ve: number, known = false): void {
    this.add(buf, ks, ke, RANGE, vs, ve, ve - vs, known);
  }

  /** Adds an entry whose key is a range of `buf` and whose value is the last row of `rendered`. */
  addRendered(buf: Uint8Array, ks: number, ke: number, known = false): void {
    this.add(buf, ks, ke, RENDERED, this.rendered.length - 1, 0, 0, known);
  }

  /** Adds an entry whose value is the integer `v` (0 to 2^32 - 1; kept as int32 bits), written as decimal digits. */
  addUint(buf: Uint8Array, ks: number, ke: number, v: number, known: boolean): void {
    this.add(buf, ks, ke, UINT, v, 0, UINT_TEXT_MAX, known);
  }

  /** Adds an entry whose value is a bool, written as true or false. */
  addBool(buf: Uint8Array, ks: number, ke: number, v: boolean, known: boolean): void {
    this.add(buf, ks, ke, BOOL, v ? 1 : 0, 0, 5, known);
  }

  /** Adds an entry whose value is the little-endian double at `buf[at]`, which `isShortDouble` accepts. */
  addDouble(buf: Uint8Array, ks: number, ke: number, at: number, known: boolean): void {
    this.add(buf, ks, ke, DOUBLE, at, 0, SHORT_DOUBLE_TEXT_MAX, known);
  }

  /**
   * `maxBytes`: the most bytes the value's text takes (rendered values are counted apart). `known`: what
   * `knows` answered for this key. Known entries get their key prefix only if the list turns out new.
   */
  private add(
    buf: Uint8Array,
    ks: number,
    ke: number,
    kind: number,
    vs: number,
    ve: number,
    maxBytes: number,
    known: boolean,
  ): void {
    const n = this.n;
    if (n * 4 + 4 > this.ent.length) this.growEntries();
    const e = this.ent, i = n * 4;
    e[i] = ks, e[i + 1] = ke, e[i + 2] = vs, e[i + 3] = ve;
    this.kinds[n] = kind;
    this.buf = buf;
    if (known) this.matched = n + 1;
    else this.setPrefix(n);
    this.keyBytes += ke - ks;
    this.valueBytes += maxBytes;
    this.n = n + 1;
  }

  /** Stores the first 8 bytes of entry i's key, zero-padded, as two big-endian words. */
  private setPrefix(i: number): void {
    const buf = this.buf, ks = this.ent[i * 4], len = this.ent[i * 4 + 1] - ks;
    let p0 = 0, p1 = 0;
    if (len >= 8) {
      const v = viewOf(buf);
      p0 = v.getUint32(ks), p1 = v.getUint32(ks + 4);
    } else {
      for (let k = 0; k < 4; k++) p0 = p0 * 256 + (k < len ? buf[ks + k] : 0);
      for (let k = 4; k < 8; k++) p1 = p1 * 256 + (k < len ? buf[ks + k] : 0);
    }
    this.pre[i * 2] = p0, this.pre[i * 2 + 1] = p1;
  }

  private growEntries(): void {
    const ent = new Int32Array(this.ent.length * 2), pre = new Uint32Array(this.pre.length * 2);
    const kinds = new Uint8Array(this.kinds.length * 2);
    ent.set(this.ent), pre.set(this.pre), kinds.set(this.kinds);
    this.ent = ent, this.pre = pre, this.kinds = kinds;
  }

  /** Sorts, de-duplicates and appends the entries as one row of `map`, then resets. */
  flushTo(map: MapColumn): void {
    this.knownMap = undefined; // `order` changes
    const m = this.ordered();
    if (m > 0) this.write(map, m);
    map.closeRow();
    this.reset();
  }

  /** Sorts and de-duplicates the entries into `order`; returns how many remain. */
  private ordered(): number {
    const n = this.n;
    for (let i = 0; i < this.matched; i++) this.setPrefix(i);
    if (this.order.length < n) this.order = new Int32Array(n * 2);
    const order = this.order;
    let m = n;
    // Strictly increasing keys have exactly one sorted order, whichever sort found it.
    if (n !== this.lastN || !this.increasing(order, n)) {
      for (let i = 0; i < n; i++) order[i] = i;
      if (!this.increasing(order, n)) m = this.sort(n);
      this.lastN = m === n ? n : -1;
    }
    return m;
  }

  /**
   * Like flushTo, for a map that stores each distinct key list once: keys are compared, values copied. A
   * list whose keys are all known (the last list flushed to `map`, in the same order) reuses its order
   * and key list without sorting or comparing again.
   */
  flushToKeyed(map: KeyedMapColumn): void {
    const n = this.n;
    if (map === this.knownMap && this.matched === n && n === this.knownKeys.length) {
      if (this.knownM > 0) this.writeValues(map.values.child, this.order, this.knownM);
      map.closeRowWithList(this.knownId);
      return this.reset();
    }
    const m = this.ordered();
    const e = this.ent, order = this.order, buf = this.buf;
    if (this.ks.length < m) this.ks = new Int32Array(m * 2), this.ke = new Int32Array(m * 2);
    const ks = this.ks, ke = this.ke;
    for (let i = 0; i < m; i++) ks[i] = e[order[i] * 4], ke[i] = e[order[i] * 4 + 1];
    if (m > 0) this.writeValues(map.values.child, order, m);
    this.remember(map, map.closeRow(m, buf, ks, ke), m);
    this.reset();
  }

  /** Makes the list just flushed to `map` (the first `m` entries of `order` written, key list `id`) the known one. */
  private remember(map: KeyedMapColumn, id: number, m: number): void {
    const n = this.n, e = this.ent, buf = this.buf, k = this.knownKeys;
    k.length = 0;
    for (let i = 0; i < n; i++) k.pushBytes(buf, e[i * 4], e[i * 4 + 1]);
    this.knownMap = map, this.knownId = id, this.knownM = m;
  }

  /** Key ranges of the entries in output order (flushToKeyed). */
  private ks = new Int32Array(16);
  private ke = new Int32Array(16);

  /** Appends the values of the entries `order[0, m)` to `values`. */
  private writeValues(values: StrColumn, order: Int32Array, m: number): void {
    const e = this.ent, kinds = this.kinds, buf = this.buf;
    const r = this.rendered, rb = r.bytes, ro = r.offsets;
    let va = values.reserve(this.valueBytes + ro[r.length]);
    values.reserveRows(m);
    const vb = values.bytes, vo = values.offsets;
    const vv = values.dataView(), bv = viewOf(buf), rv = r.dataView();
    let vl = values.length;
    for (let i = 0; i < m; i++) {
      const j = order[i], vs = e[j * 4 + 2];
      switch (kinds[j]) {
        case RANGE:
          va = copyBytes(vb, vv, va, buf, bv, vs, e[j * 4 + 3]);
          break;
        case UINT:
          va = writeUint(vb, va, vs >>> 0);
          break;
        case BOOL: {
          const text = vs ? TRUE : FALSE;
          for (let k = 0; k < text.length; k++) vb[va++] = text[k];
          break;
        }
        case DOUBLE:
          va = writeShortDouble(vb, va, bv.getFloat64(vs, true));
          break;
        default:
          va = copyBytes(vb, vv, va, rb, rv, ro[vs], ro[vs + 1]);
      }
      vo[++vl] = va;
    }
    values.length = vl;
  }

  /** Appends the first `m` entries of `order` to the key and value columns of `map`. */
  private write(map: MapColumn, m: number): void {
    const e = this.ent, order = this.order, buf = this.buf;
    const keys = map.keys;
    let ka = keys.reserve(this.keyBytes);
    keys.reserveRows(m);
    const kb = keys.bytes, ko = keys.offsets, kv = keys.dataView(), bv = viewOf(buf);
    let kl = keys.length;
    for (let i = 0; i < m; i++) {
      const k = order[i] * 4;
      ka = copyBytes(kb, kv, ka, buf, bv, e[k], e[k + 1]);
      ko[++kl] = ka;
    }
    keys.length = kl;
    this.writeValues(map.values, order, m);
  }

  /** Sorts and de-duplicates the entries into `order`; a method of its own, so that only this path allocates the comparator. */
  private sort(n: number): number {
    return sortUniqueKeys(this.order, n, (a, b) => this.compareKeys(a, b));
  }

  /** Whether the keys of entries `order[0, n)` strictly increase. */
  private increasing(order: Int32Array, n: number): boolean {
    for (let i = 1; i < n; i++) if (this.compareKeys(order[i - 1], order[i]) >= 0) return false;
    return true;
  }

  private compareKeys(a: number, b: number): number {
    const p = this.pre;
    const a0 = p[a * 2], b0 = p[b * 2];
    if (a0 !== b0) return a0 < b0 ? -1 : 1;
    const a1 = p[a * 2 + 1], b1 = p[b * 2 + 1];
    if (a1 !== b1) return a1 < b1 ? -1 : 1;
    const e = this.ent, bytes = this.buf;
    const as = e[a * 4], ae = e[a * 4 + 1], bs = e[b * 4], be = e[b * 4 + 1];
    const n = Math.min(ae - as, be - bs);
    for (let i = 0; i < n; i++) {
      const d = bytes[as + i] - bytes[bs + i];
      if (d !== 0) return d;
    }
    return (ae - as) - (be - bs);
  }
}
