/**
 * Growable column buffers that decoders write into directly, and that become Arrow `Data` without a
 * per-value Builder. Every column can append a range of rows from another column of the same kind,
 * which is all that batching (gathering rows of many requests) and sorting need.
 *
 * @module
 */

const encoder = new TextEncoder();
/**
 * Below this many bytes copying by 32-bit words through DataViews is faster than `set(subarray())`
 * (which allocates a view and calls into the runtime): about 2x a byte loop at 20 bytes, even with
 * `set` at 100 (measured).
 */
export const COPY_LOOP_MAX = 128;

/**
 * Copies `src[start, end)` to `dst` at `at` and returns the position after it; `dv` and `sv` are views
 * of exactly `dst` and `src` (see `viewOf`).
 */
export function copyBytes(
  dst: Uint8Array,
  dv: DataView,
  at: number,
  src: Uint8Array,
  sv: DataView,
  start: number,
  end: number,
): number {
  if (end - start >= COPY_LOOP_MAX) {
    dst.set(src.subarray(start, end), at);
    return at + end - start;
  }
  let i = start;
  for (; i + 8 <= end; i += 8, at += 8) {
    dv.setUint32(at, sv.getUint32(i, true), true);
    dv.setUint32(at + 4, sv.getUint32(i + 4, true), true);
  }
  if (i + 4 <= end) {
    dv.setUint32(at, sv.getUint32(i, true), true);
    i += 4, at += 4;
  }
  for (; i < end; i++) dst[at++] = src[i];
  return at;
}

/**
 * Whether `a[as, as + len)` and `b[bs, bs + len)` hold the same bytes; `av` and `bv` are views of exactly
 * `a` and `b`. Four bytes at a time (keys are 10-30 bytes), then the rest.
 */
export function rangeEquals(
  a: Uint8Array,
  av: DataView,
  as: number,
  b: Uint8Array,
  bv: DataView,
  bs: number,
  len: number,
): boolean {
  let i = 0;
  for (; i + 4 <= len; i += 4) if (av.getInt32(as + i, true) !== bv.getInt32(bs + i, true)) return false;
  for (; i < len; i++) if (a[as + i] !== b[bs + i]) return false;
  return true;
}

/**
 * copyBytes for ranges shorter than COPY_LOOP_MAX that also says whether every byte copied is ASCII:
 * one pass for text that must be checked (log bodies) instead of a check and then a copy.
 */
export function copyAscii(
  dst: Uint8Array,
  dv: DataView,
  at: number,
  src: Uint8Array,
  sv: DataView,
  start: number,
  end: number,
): boolean {
  let bits = 0, i = start;
  for (; i + 8 <= end; i += 8, at += 8) {
    const lo = sv.getUint32(i, true), hi = sv.getUint32(i + 4, true);
    dv.setUint32(at, lo, true), dv.setUint32(at + 4, hi, true);
    bits |= lo | hi;
  }
  for (; i < end; i++) bits |= dst[at++] = src[i];
  return (bits & 0x80808080) === 0;
}

const NO_VIEW = new DataView(new ArrayBuffer(0));

// The view of the last source array asked for: copies come by the thousand from one request.
let viewed: Uint8Array | undefined, lastView: DataView = NO_VIEW;

/** A DataView of exactly `buf`, reused while the same array is asked for again. */
export function viewOf(buf: Uint8Array): DataView {
  if (buf !== viewed) viewed = buf, lastView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return lastView;
}

/** A column as plain data: what crosses a thread boundary (see `Column.snapshot`). */
export type ColumnSnapshot =
  | { readonly kind: "f64"; readonly length: number; readonly values: Float64Array }
  | { readonly kind: "u32"; readonly length: number; readonly values: Uint32Array }
  | { readonly kind: "u8"; readonly length: number; readonly values: Uint8Array }
  | { readonly kind: "u64"; readonly length: number; readonly words: Uint32Array }
  | StrSnapshot
  | MapSnapshot
  | ListSnapshot
  | {
    readonly kind: "sharedStr";
    readonly length: number;
    readonly ids: Uint32Array;
    readonly distinct: StrSnapshot;
    readonly enumIds: Int32Array;
  }
  | {
    readonly kind: "sharedMap";
    readonly length: number;
    readonly ids: Uint32Array;
    readonly distinct: MapSnapshot;
  }
  | KeyListsSnapshot
  | { readonly kind: "keyedMap"; readonly values: ListSnapshot; readonly keyLists: KeyListsSnapshot };

/** A StrColumn as plain data. */
export interface StrSnapshot {
  readonly kind: "str";
  readonly length: number;
  readonly bytes: Uint8Array;
  readonly offsets: Int32Array;
}

/** A MapColumn as plain data. */
export interface MapSnapshot {
  readonly kind: "map";
  readonly length: number;
  readonly offsets: Int32Array;
  readonly keys: StrSnapshot;
  readonly values: StrSnapshot;
}

/** A ListColumn as plain data. */
export interface ListSnapshot {
  readonly kind: "list";
  readonly length: number;
  readonly offsets: Int32Array;
  readonly child: ColumnSnapshot;
}

/** The key lists of a KeyedMapColumn as plain data. */
export interface KeyListsSnapshot {
  readonly kind: "keyLists";
  readonly length: number;
  readonly ids: Uint32Array;
  readonly distinct: ListSnapshot;
  readonly recent: Int32Array;
  readonly recentAt: number;
}

/**
 * How `Column.snapshot` hands out the column's arrays: `true` fresh copies cut to the rows held, `false`
 * the column's own whole buffers (to transfer), `"view"` views of the column's arrays cut to the rows held
 * (no copy: to pack into shared memory, see `shareSnapshot`, or to pass on arrays that already are shared).
 */
export type SnapshotMode = boolean | "view";

/**
 * `arr` for a snapshot: with `copy`, a copy of its first `used` elements; without, `arr` itself when it
 * is the whole of its buffer (so the buffer can be transferred), else such a copy; `"view"`, a view of its
 * first `used` elements.
 */
function owned<T extends Uint8Array | Int32Array | Uint32Array | Float64Array>(
  arr: T,
  used: number,
  copy: SnapshotMode,
): T {
  if (copy === "view") return arr.subarray(0, Math.max(1, used)) as T;
  if (!copy && arr.byteOffset === 0 && arr.byteLength === arr.buffer.byteLength) return arr;
  return arr.slice(0, Math.max(1, used)) as T;
}

type Numbers = Uint8Array | Int32Array | Uint32Array | Float64Array;

/** Calls `each` on every typed array of a snapshot (any plain tree of objects, arrays and typed arrays). */
export function eachArray(tree: unknown, each: (a: Numbers) => void): void {
  if (ArrayBuffer.isView(tree)) each(tree as Numbers);
  else if (tree && typeof tree === "object") { for (const v of Object.values(tree)) eachArray(v, each); }
}

/**
 * `tree` (snapshots: plain objects, arrays and typed arrays) with every typed array copied into one new
 * SharedArrayBuffer, in the same type and length, 8-byte aligned. Posted to another thread, such arrays
 * are shared, not copied or moved: both threads read the same memory, which must no longer change.
 */
export function shareSnapshot<T>(tree: T): T {
  let total = 0;
  eachArray(tree, (a) => total += align8(a.byteLength));
  if (Shared === undefined) throw new TypeError("this runtime has no SharedArrayBuffer");
  const memory = new Shared(Math.max(8, total));
  let at = 0;
  const copy = (v: unknown): unknown => {
    if (ArrayBuffer.isView(v)) {
      const a = v as Numbers;
      const out = new (a.constructor as { new (b: ArrayBufferLike, at: number, n: number): Numbers })(
        memory,
        at,
        a.length,
      );
      out.set(a);
      at += align8(a.byteLength);
      return out;
    }
    if (Array.isArray(v)) return v.map(copy);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = copy(x);
      return out;
    }
    return v;
  };
  return copy(tree) as T;
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/**
 * Whether posting `tree` (see `shareSnapshot`) copies next to nothing: each of its typed arrays lives in
 * shared memory or is the whole of a small buffer of its own (a column's few-entry caches, copied by
 * `snapshot` in every mode: at most SMALL_ARRAY_BYTES).
 */
export function inSharedMemory(tree: unknown): boolean {
  let shared = true;
  eachArray(tree, (a) => {
    shared &&= isShared(a.buffer) ||
      (a.byteLength <= SMALL_ARRAY_BYTES && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength);
  });
  return shared;
}

const SMALL_ARRAY_BYTES = 256;

/** SharedArrayBuffer where the runtime has it (a runtime may leave it out). */
const Shared = (globalThis as { SharedArrayBuffer?: typeof SharedArrayBuffer }).SharedArrayBuffer;

/** Whether this runtime has shared memory (`shareSnapshot` works): Deno and Bun do. */
export const canShare = Shared !== undefined;

/** Whether `b` is shared memory. */
export function isShared(b: ArrayBufferLike): boolean {
  return Shared !== undefined && b instanceof Shared;
}

/** The snapshot `s` as kind `kind`, or a TypeError: a snapshot is restored into a column of its own kind. */
function expectKind<K extends ColumnSnapshot["kind"]>(
  s: ColumnSnapshot,
  kind: K,
): Extract<ColumnSnapshot, { kind: K }> {
  if (s.kind !== kind) {
    throw new TypeError(`cannot restore a ${s.kind} column snapshot into a ${kind} column`);
  }
  return s as Extract<ColumnSnapshot, { kind: K }>;
}

/**
 * Every buffer of a snapshot, once each: the transfer list of a `postMessage` that moves it. Shared memory
 * is left out: it is shared, never moved.
 */
export function snapshotBuffers(s: ColumnSnapshot, out: Set<ArrayBuffer> = new Set()): Set<ArrayBuffer> {
  eachArray(s, (a) => {
    if (!isShared(a.buffer)) out.add(a.buffer as ArrayBuffer);
  });
  return out;
}

/** Common behaviour of every column. */
export interface Column {
  /** Number of rows. */
  readonly length: number;
  /** Appends rows [start, end) of `src`, which must be a column of the same class. */
  appendRange(src: Column, start: number, end: number): void;
  /**
   * Bytes of the rows in Arrow's plain layout (not the spare capacity; columns that keep shared values or
   * key lists once count every row's own copy): the "decoded data" that batch limits count.
   */
  byteLength(): number;
  /**
   * The rows as plain data (typed arrays and numbers) that `structuredClone` and `postMessage` carry, and
   * `restore` reads back into an empty column of the same kind. With `copy`, every array is a fresh copy
   * cut to the rows held (the column stays usable: other batches may hold it); without, the arrays are the
   * column's own, whole buffers (to transfer: the column must not be used afterwards); `"view"`, views of
   * them cut to the rows held (see `shareSnapshot`).
   */
  snapshot(copy: SnapshotMode): ColumnSnapshot;
  /** Makes this empty column (made by `emptyLike` or `createColumn`) hold the rows of `snapshot`. */
  restore(snapshot: ColumnSnapshot): void;
  /** An empty column of the same kind and shape. */
  emptyLike(): Column;
  /** Shrinks the buffers to the rows held (they grow again if more rows are appended). */
  compact(): void;
  /**
   * Appends row `rows[k]` of `sources[from[k]]` for every k, in that order (batches gathered in time
   * order). Sources are columns of the same class.
   */
  gather(sources: readonly Column[], from: Uint32Array, rows: Uint32Array): void;
  /**
   * Sizes the column for `rows` rows in all (a decoder that counted them first). Variable-size buffers
   * then grow by extrapolating from the rows so far, by at most `maxJump` bytes or entries beyond
   * doubling at a time.
   */
  expectRows?(rows: number, maxJump: number): void;
}

/** How a variable-size buffer grows: towards `rows` rows in all, counted by `of.length`. */
interface SizeHint {
  readonly rows: number;
  readonly of: { readonly length: number };
  readonly maxJump: number;
}

/**
 * The capacity to grow to for `need` units, `used` of which the rows done so far and `adding` rows
 * being written hold: extrapolated to all rows when hinted.
 */
function planned(hint: SizeHint | undefined, need: number, used: number, adding = 0): number {
  if (hint === undefined) return need;
  const done = hint.of.length + adding;
  if (done < 8 || done >= hint.rows) return need;
  // Five percent over the extrapolation absorbs the usual row-to-row variation.
  const est = Math.ceil((used / done) * hint.rows * 1.05);
  return Math.max(need, Math.min(est, need + hint.maxJump));
}

/**
 * `arr` cut to its first `used` elements. A buffer with at most an eighth spare is kept as it is:
 * decoders size buffers closely, and copying a whole buffer to save a few per cent costs more (time and
 * garbage) than it saves.
 */
function trimmed<T extends Uint8Array | Int32Array | Uint32Array | Float64Array>(arr: T, used: number): T {
  if (arr.length <= Math.max(1, used) || (used > 0 && arr.length - used <= arr.length >> 3)) return arr;
  return arr.slice(0, Math.max(1, used)) as T;
}

/** Grows `arr` to `target` when that beats doubling, else like `grow`. */
function growTo<T extends Uint8Array | Int32Array>(arr: T, need: number, target: number): T {
  if (target <= Math.max(need, arr.length * 2)) return grow(arr, need);
  const next = new (arr.constructor as { new (n: number): T })(target);
  next.set(arr);
  return next;
}

/** Grows a fixed-width buffer to exactly `n` values when it holds fewer. */
function atLeast<T extends Uint8Array | Int32Array | Uint32Array | Float64Array>(arr: T, n: number): T {
  if (arr.length >= n) return arr;
  const next = new (arr.constructor as { new (n: number): T })(n);
  next.set(arr);
  return next;
}

/** Expands a row selection of list-like sources to the selection of their child entries. */
function expand(
  offsetsOf: (i: number) => Int32Array,
  from: Uint32Array,
  rows: Uint32Array,
): { from: Uint32Array; rows: Uint32Array } {
  let n = 0;
  for (let k = 0; k < rows.length; k++) {
    const o = offsetsOf(from[k]);
    n += o[rows[k] + 1] - o[rows[k]];
  }
  const cf = new Uint32Array(n), cr = new Uint32Array(n);
  let j = 0;
  for (let k = 0; k < rows.length; k++) {
    const s = from[k];
    const o = offsetsOf(s);
    for (let e = o[rows[k]], end = o[rows[k] + 1]; e < end; e++) cf[j] = s, cr[j++] = e;
  }
  return { from: cf, rows: cr };
}

function gatherFixed<T extends Uint8Array | Uint32Array | Float64Array>(
  dst: T,
  at: number,
  sources: readonly { values: T }[],
  from: Uint32Array,
  rows: Uint32Array,
): void {
  for (let k = 0; k < rows.length; k++) dst[at + k] = sources[from[k]].values[rows[k]];
}

function grow<T extends Uint8Array | Int32Array | Uint32Array | Float64Array>(arr: T, need: number): T {
  let cap = Math.max(16, arr.length * 2);
  while (cap < need) cap *= 2;
  const next = new (arr.constructor as { new (n: number): T })(cap);
  next.set(arr);
  return next;
}

/** Float64 values. */
export class F64Column implements Column {
  values: Float64Array;
  constructor(capacity = 64) {
    this.values = new Float64Array(Math.max(16, capacity));
  }
  length = 0;
  push(v: number): void {
    if (this.length === this.values.length) this.values = grow(this.values, this.length + 1);
    this.values[this.length++] = v;
  }
  appendRange(src: F64Column, start: number, end: number): void {
    const n = end - start;
    if (this.length + n > this.values.length) this.values = grow(this.values, this.length + n);
    this.values.set(src.values.subarray(start, end), this.length);
    this.length += n;
  }
  byteLength(): number {
    return this.length * 8;
  }
  snapshot(copy: SnapshotMode): ColumnSnapshot {
    return { kind: "f64", length: this.length, values: owned(this.values, this.length, copy) };
  }
  restore(s: ColumnSnapshot): void {
    const r = expectKind(s, "f64");
    this.values = r.values, this.length = r.length;
  }
  emptyLike(): F64Column {
    return new F64Column();
  }
  compact(): void {
    this.values = trimmed(this.values, this.length);
  }
  gather(sources: readonly F64Column[], from: Uint32Array, rows: Uint32Array): void {
    if (this.length + rows.length > this.values.length) {
      this.values = grow(this.values, this.length + rows.length);
    }
    gatherFixed(this.values, this.length, sources, from, rows);
    this.length += rows.length;
  }
  view(): Float64Array {
    return this.values.subarray(0, this.length);
  }
  expectRows(rows: number): void {
    this.values = atLeast(this.values, rows);
  }
}

/** 32-bit integers, stored as Int32 or Uint32 words (the Arrow type decides how they are read). */
export class U32Column implements Column {
  values: Uint32Array;
  constructor(capacity = 64) {
    this.values = new Uint32Array(Math.max(16, capacity));
  }
  length = 0;
  push(v: number): void {
    if (this.length === this.values.length) this.values = grow(this.values, this.length + 1);
    this.values[this.length++] = v;
  }
  appendRange(src: U32Column, start: number, end: number): void {
    const n = end - start;
    if (this.length + n > this.values.length) this.values = grow(this.values, this.length + n);
    this.values.set(src.values.subarray(start, end), this.length);
    this.length += n;
  }
  byteLength(): number {
    return this.length * 4;
  }
  snapshot(copy: SnapshotMode): ColumnSnapshot {
    return { kind: "u32", length: this.length, values: owned(this.values, this.length, copy) };
  }
  restore(s: ColumnSnapshot): void {
    const r = expectKind(s, "u32");
    this.values = r.values, this.length = r.length;
  }
  emptyLike(): U32Column {
    return new U32Column();
  }
  compact(): void {
    this.values = trimmed(this.values, this.length);
  }
  gather(sources: readonly U32Column[], from: Uint32Array, rows: Uint32Array): void {
    if (this.length + rows.length > this.values.length) {
      this.values = grow(this.values, this.length + rows.length);
    }
    gatherFixed(this.values, this.length, sources, from, rows);
    this.length += rows.length;
  }
  view(): Uint32Array {
    return this.values.subarray(0, this.length);
  }
  expectRows(rows: number): void {
    this.values = atLeast(this.values, rows);
  }
}

/** 8-bit values (UInt8 and Bool). */
export class U8Column implements Column {
  values: Uint8Array;
  constructor(capacity = 64) {
    this.values = new Uint8Array(Math.max(16, capacity));
  }
  length = 0;
  push(v: number): void {
    if (this.length === this.values.length) this.values = grow(this.values, this.length + 1);
    this.values[this.length++] = v;
  }
  appendRange(src: U8Column, start: number, end: number): void {
    const n = end - start;
    if (this.length + n > this.values.length) this.values = grow(this.values, this.length + n);
    this.values.set(src.values.subarray(start, end), this.length);
    this.length += n;
  }
  byteLength(): number {
    return this.length;
  }
  snapshot(copy: SnapshotMode): ColumnSnapshot {
    return { kind: "u8", length: this.length, values: owned(this.values, this.length, copy) };
  }
  restore(s: ColumnSnapshot): void {
    const r = expectKind(s, "u8");
    this.values = r.values, this.length = r.length;
  }
  emptyLike(): U8Column {
    return new U8Column();
  }
  compact(): void {
    this.values = trimmed(this.values, this.length);
  }
  gather(sources: readonly U8Column[], from: Uint32Array, rows: Uint32Array): void {
    if (this.length + rows.length > this.values.length) {
      this.values = grow(this.values, this.length + rows.length);
    }
    gatherFixed(this.values, this.length, sources, from, rows);
    this.length += rows.length;
  }
  view(): Uint8Array {
    return this.values.subarray(0, this.length);
  }
  expectRows(rows: number): void {
    this.values = atLeast(this.values, rows);
  }
}

/**
 * 64-bit values (timestamps in nanoseconds, UInt64 counts) kept as (low, high) 32-bit word pairs, so
 * decoding never allocates a BigInt; the buffer is reinterpreted as BigInt64Array/BigUint64Array at the end.
 */
export class U64Column implements Column {
  words: Uint32Array;
  constructor(capacity = 64) {
    this.words = new Uint32Array(Math.max(16, capacity) * 2);
  }
  length = 0;
  push(lo: number, hi: number): void {
    const i = this.length * 2;
    if (i + 2 > this.words.length) this.words = grow(this.words, i + 2);
    this.words[i] = lo;
    this.words[i + 1] = hi;
    this.length++;
  }
  /** Pushes a non-negative safe integer. */
  pushNumber(v: number): void {
    this.push(v % 4294967296 >>> 0, Math.floor(v / 4294967296) >>> 0);
  }
  pushBigInt(v: bigint): void {
    this.push(Number(v & 0xffffffffn), Number((v >> 32n) & 0xffffffffn));
  }
  appendRange(src: U64Column, start: number, end: number): void {
    const n = (end - start) * 2;
    const at = this.length * 2;
    if (at + n > this.words.length) this.words = grow(this.words, at + n);
    this.words.set(src.words.subarray(start * 2, end * 2), at);
    this.length += end - start;
  }
  byteLength(): number {
    return this.length * 8;
  }
  snapshot(copy: SnapshotMode): ColumnSnapshot {
    return { kind: "u64", length: this.length, words: owned(this.words, this.length * 2, copy) };
  }
  restore(s: ColumnSnapshot): void {
    const r = expectKind(s, "u64");
    this.words = r.words, this.length = r.length;
  }
  emptyLike(): U64Column {
    return new U64Column();
  }
  compact(): void {
    this.words = trimmed(this.words, this.length * 2);
  }
  gather(sources: readonly U64Column[], from: Uint32Array, rows: Uint32Array): void {
    const at = this.length * 2;
    if (at + rows.length * 2 > this.words.length) this.words = grow(this.words, at + rows.length * 2);
    const w = this.words;
    for (let k = 0; k < rows.length; k++) {
      const src = sources[from[k]].words, i = rows[k] * 2;
      w[at + k * 2] = src[i];
      w[at + k * 2 + 1] = src[i + 1];
    }
    this.length += rows.length;
  }
  /** The value of row i as a (possibly imprecise above 2^53) number: for ordering and partitioning. */
  approx(i: number): number {
    return this.words[i * 2 + 1] * 4294967296 + this.words[i * 2];
  }
  bigint(i: number): bigint {
    return (BigInt(this.words[i * 2 + 1]) << 32n) | BigInt(this.words[i * 2]);
  }
  signedView(): BigInt64Array {
    return new BigInt64Array(this.words.buffer, 0, this.length);
  }
  unsignedView(): BigUint64Array {
    return new BigUint64Array(this.words.buffer, 0, this.length);
  }
  expectRows(rows: number): void {
    this.words = atLeast(this.words, rows * 2);
  }
}

/** UTF-8 strings: one byte buffer and Int32 offsets, exactly Arrow's Utf8 layout. */
export class StrColumn implements Column {
  bytes: Uint8Array;
  offsets: Int32Array;
  /** `capacity` rows of about `bytesPerRow` bytes are stored without growing. */
  constructor(capacity = 64, bytesPerRow = 16) {
    this.offsets = new Int32Array(Math.max(16, capacity) + 1);
    this.bytes = new Uint8Array(Math.max(256, capacity * bytesPerRow));
  }
  length = 0;
  private bytesHint: SizeHint | undefined;
  /** A view of `bytes` (rebuilt when `bytes` is replaced). */
  private view: DataView = NO_VIEW;
  private viewBytes: Uint8Array | undefined;
  private offsetsHint: SizeHint | undefined;

  expectRows(rows: number, maxJump: number): void {
    this.offsets = atLeast(this.offsets, rows + 1);
    this.bytesHint = { rows, of: this, maxJump };
  }
  /** Like expectRows, for the entries of a map column `of` that expects `rows` rows. */
  expectRowsOf(of: { readonly length: number }, rows: number, maxJump: number): void {
    this.bytesHint = this.offsetsHint = { rows, of, maxJump };
  }
  /** `adding`: rows (of the hinted column or map) that the bytes up to `need` complete, if known. */
  private growBytes(need: number, adding = 0): Uint8Array {
    const used = adding > 0 ? need : this.offsets[this.length];
    return growTo(this.bytes, need, planned(this.bytesHint, need, used, adding));
  }
  private growOffsets(need: number, adding = 0): Int32Array {
    return growTo(
      this.offsets,
      need,
      planned(this.offsetsHint, need, adding > 0 ? need : this.length, adding),
    );
  }

  /**
   * Makes room for `n` more bytes and returns the write position. `rows`, when known, is how many
   * rows (of this column, or of the map holding it) the bytes complete: repeated rows then size the
   * buffer for all the rows expected.
   */
  reserve(n: number, rows = 0): number {
    const at = this.offsets[this.length];
    if (at + n > this.bytes.length) this.bytes = this.growBytes(at + n, rows);
    return at;
  }
  /** A DataView of `bytes` as it is now, for copyBytes. */
  dataView(): DataView {
    const b = this.bytes;
    if (b !== this.viewBytes) {
      this.viewBytes = b, this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    }
    return this.view;
  }
  /** Makes room for `n` more rows in the offsets (for callers that write `bytes`/`offsets` directly). */
  reserveRows(n: number): void {
    if (this.length + n + 1 > this.offsets.length) this.offsets = this.growOffsets(this.length + n + 1);
  }
  /** Closes the current row after `end` bytes were written at reserve()'s position. */
  commit(end: number): void {
    if (this.length + 2 > this.offsets.length) this.offsets = this.growOffsets(this.length + 2);
    this.offsets[++this.length] = end;
  }
  /** Closes `times` rows of `size` bytes each, written at reserve()'s position. */
  commitRepeated(size: number, times: number): void {
    if (this.length + times + 1 > this.offsets.length) {
      this.offsets = this.growOffsets(this.length + times + 1, times);
    }
    const o = this.offsets, len = this.length;
    let at = o[len];
    for (let t = 1; t <= times; t++) o[len + t] = at += size;
    this.length = len + times;
  }
  pushEmpty(): void {
    this.commit(this.offsets[this.length]);
  }
  pushBytes(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    let o = this.offsets;
    const len = this.length;
    const at = o[len];
    let b = this.bytes;
    if (at + n > b.length) b = this.bytes = this.growBytes(at + n);
    // Short strings from an array other than the last one viewed (constants) are not worth a new view.
    if (n < 8 || (n < 64 && src !== viewed)) {
      for (let i = start, j = at; i < end; i++, j++) b[j] = src[i];
    } else copyBytes(b, this.dataView(), at, src, viewOf(src), start, end);
    if (len + 2 > o.length) o = this.offsets = this.growOffsets(len + 2);
    o[len + 1] = at + n;
    this.length = len + 1;
  }
  /** Appends rows [start, end) of `src` `times` times over (resource and scope columns repeat per row). */
  appendRangeRepeated(src: StrColumn, start: number, end: number, times: number): void {
    if (times <= 0) return;
    const from = src.offsets[start], to = src.offsets[end];
    const n = end - start, size = to - from;
    const at = this.reserve(size * times, times);
    const b = this.bytes;
    if (size > 0) {
      copyBytes(b, this.dataView(), at, src.bytes, src.dataView(), from, to);
      // Doubling copies within the buffer: log2(times) memmoves instead of one copy per row.
      let done = 1;
      while (done < times) {
        const k = Math.min(done, times - done);
        b.copyWithin(at + done * size, at, at + k * size);
        done += k;
      }
    }
    const total = n * times;
    if (this.length + total + 1 > this.offsets.length) {
      this.offsets = this.growOffsets(this.length + total + 1, times);
    }
    const o = this.offsets, so = src.offsets;
    let j = this.length + 1;
    for (let t = 0; t < times; t++) {
      const delta = at + t * size - from;
      for (let i = 1; i <= n; i++) o[j++] = so[start + i] + delta;
    }
    this.length += total;
  }
  /** Pushes a string known to be ASCII (digits, hex, enum names). */
  pushAscii(s: string): void {
    const at = this.reserve(s.length);
    const b = this.bytes;
    for (let i = 0; i < s.length; i++) b[at + i] = s.charCodeAt(i);
    this.commit(at + s.length);
  }
  pushString(s: string): void {
    const at = this.reserve(s.length * 3);
    const { written } = encoder.encodeInto(s, this.bytes.subarray(at));
    this.commit(at + written);
  }
  appendRange(src: StrColumn, start: number, end: number): void {
    const from = src.offsets[start];
    const to = src.offsets[end];
    if (end - start === 1) return this.pushBytes(src.bytes, from, to);
    const at = this.reserve(to - from);
    copyBytes(this.bytes, this.dataView(), at, src.bytes, src.dataView(), from, to);
    const n = end - start;
    if (this.length + n + 1 > this.offsets.length) this.offsets = this.growOffsets(this.length + n + 1);
    const delta = at - from;
    const o = this.offsets;
    const so = src.offsets;
    for (let i = 1; i <= n; i++) o[this.length + i] = so[start + i] + delta;
    this.length += n;
  }
  byteLength(): number {
    return this.offsets[this.length] + this.length * 4;
  }
  snapshot(copy: SnapshotMode): StrSnapshot {
    return {
      kind: "str",
      length: this.length,
      bytes: owned(this.bytes, this.offsets[this.length], copy),
      offsets: owned(this.offsets, this.length + 1, copy),
    };
  }
  restore(s: ColumnSnapshot): void {
    const r = expectKind(s, "str");
    this.bytes = r.bytes, this.offsets = r.offsets, this.length = r.length;
  }
  emptyLike(): StrColumn {
    return new StrColumn();
  }
  compact(): void {
    this.bytes = trimmed(this.bytes, this.offsets[this.length]);
    this.offsets = trimmed(this.offsets, this.length + 1);
  }
  gather(sources: readonly StrColumn[], from: Uint32Array, rows: Uint32Array): void {
    let total = 0;
    for (let k = 0; k < rows.length; k++) {
      const o = sources[from[k]].offsets;
      total += o[rows[k] + 1] - o[rows[k]];
    }
    let at = this.reserve(total);
    if (this.length + rows.length + 1 > this.offsets.length) {
      this.offsets = this.growOffsets(this.length + rows.length + 1);
    }
    const b = this.bytes, off = this.offsets;
    for (let k = 0; k < rows.length; k++) {
      const src = sources[from[k]];
      const s = src.offsets[rows[k]], e = src.offsets[rows[k] + 1];
      if (e - s < 32) { for (let i = s; i < e; i++) b[at++] = src.bytes[i]; }
      else {
        b.set(src.bytes.subarray(s, e), at);
        at += e - s;
      }
      off[this.length + k + 1] = at;
    }
    this.length += rows.length;
  }
  /** Row i as a JS string (tests, keys, partitioning). */
  get(i: number): string {
    return decoder.decode(this.bytes.subarray(this.offsets[i], this.offsets[i + 1]));
  }
}

const decoder = new TextDecoder();

/** Map(String, String): per-row entry offsets over a key column and a value column. */
export class MapColumn implements Column {
  offsets: Int32Array;
  length = 0;
  readonly keys: StrColumn;
  readonly values: StrColumn;
  /** `capacity` rows of about `entriesPerRow` entries are stored without growing. */
  constructor(capacity = 64, entriesPerRow = 4) {
    this.offsets = new Int32Array(Math.max(16, capacity) + 1);
    this.keys = new StrColumn(capacity * entriesPerRow, 16);
    this.values = new StrColumn(capacity * entriesPerRow, 16);
  }

  expectRows(rows: number, maxJump: number): void {
    this.offsets = atLeast(this.offsets, rows + 1);
    this.keys.expectRowsOf(this, rows, maxJump);
    this.values.expectRowsOf(this, rows, maxJump);
  }

  /** Closes the current row: the entries pushed to keys/values since the last row belong to it. */
  closeRow(): void {
    if (this.length + 2 > this.offsets.length) this.offsets = grow(this.offsets, this.length + 2);
    this.offsets[++this.length] = this.keys.length;
  }
  /** Appends row `row` of `src` `times` times over. */
  appendRowRepeated(src: MapColumn, row: number, times: number): void {
    if (times <= 0) return;
    const from = src.offsets[row], to = src.offsets[row + 1];
    const k = to - from;
    const base = this.keys.length;
    this.keys.appendRangeRepeated(src.keys, from, to, times);
    this.values.appendRangeRepeated(src.values, from, to, times);
    if (this.length + times + 1 > this.offsets.length) {
      this.offsets = grow(this.offsets, this.length + times + 1);
    }
    const o = this.offsets;
    for (let t = 1; t <= times; t++) o[this.length + t] = base + t * k;
    this.length += times;
  }
  appendRange(src: MapColumn, start: number, end: number): void {
    const from = src.offsets[start];
    const to = src.offsets[end];
    const delta = this.keys.length - from;
    this.keys.appendRange(src.keys, from, to);
    this.values.appendRange(src.values, from, to);
    const n = end - start;
    if (this.length + n + 1 > this.offsets.length) this.offsets = grow(this.offsets, this.length + n + 1);
    for (let i = 1; i <= n; i++) this.offsets[this.length + i] = src.offsets[start + i] + delta;
    this.length += n;
  }
  byteLength(): number {
    return this.keys.byteLength() + this.values.byteLength() + this.length * 4;
  }
  snapshot(copy: SnapshotMode): MapSnapshot {
    return {
      kind: "map",
      length: this.length,
      offsets: owned(this.offsets, this.length + 1, copy),
      keys: this.keys.snapshot(copy),
      values: this.values.snapshot(copy),
    };
  }
  restore(s: ColumnSnapshot): void {
    const r = expectKind(s, "map");
    this.offsets = r.offsets, this.length = r.length;
    this.keys.restore(r.keys);
    this.values.restore(r.values);
  }
  emptyLike(): MapColumn {
    return new MapColumn();
  }
  compact(): void {
    this.offsets = trimmed(this.offsets, this.length + 1);
    this.keys.compact();
    this.values.compact();
  }
  gather(sources: readonly MapColumn[], from: Uint32Array, rows: Uint32Array): void {
    const child = expand((i) => sources[i].offsets, from, rows);
    if (this.length + rows.length + 1 > this.offsets.length) {
      this.offsets = grow(this.offsets, this.length + rows.length + 1);
    }
    let at = this.keys.length;
    for (let k = 0; k < rows.length; k++) {
      const o = sources[from[k]].offsets;
      at += o[rows[k] + 1] - o[rows[k]];
      this.offsets[this.length + k + 1] = at;
    }
    this.keys.gather(sources.map((m) => m.keys), child.from, child.rows);
    this.values.gather(sources.map((m) => m.values), child.from, child.rows);
    this.length += rows.length;
  }
  /** Row i as a plain object (tests). */
  get(i: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (let e = this.offsets[i]; e < this.offsets[i + 1]; e++) out[this.keys.get(e)] = this.values.get(e);
    return out;
  }
}

/** List<T>: per-row offsets over a child column. */
export class ListColumn<C extends Column = Column> implements Column {
  offsets: Int32Array;
  length = 0;
  constructor(readonly child: C, capacity = 64) {
    this.offsets = new Int32Array(Math.max(16, capacity) + 1);
  }

  expectRows(rows: number): void {
    this.offsets = atLeast(this.offsets, rows + 1);
  }

  /** Closes the current row: the child values pushed since the last row belong to it. */
  closeRow(): void {
    if (this.length + 2 > this.offsets.length) this.offsets = grow(this.offsets, this.length + 2);
    this.offsets[++this.length] = this.child.length;
  }
  appendRange(src: ListColumn<C>, start: number, end: number): void {
    const from = src.offsets[start];
    const to = src.offsets[end];
    const delta = this.child.length - from;
    this.child.appendRange(src.child, from, to);
    const n = end - start;
    if (this.length + n + 1 > this.offsets.length) this.offsets = grow(this.offsets, this.length + n + 1);
    for (let i = 1; i <= n; i++) this.offsets[this.length + i] = src.offsets[start + i] + delta;
    this.length += n;
  }
  byteLength(): number {
    return this.child.byteLength() + this.length * 4;
  }
  snapshot(copy: SnapshotMode): ListSnapshot {
    return {
      kind: "list",
      length: this.length,
      offsets: owned(this.offsets, this.length + 1, copy),
      child: this.child.snapshot(copy),
    };
  }
  restore(s: ColumnSnapshot): void {
    const r = expectKind(s, "list");
    this.offsets = r.offsets, this.length = r.length;
    this.child.restore(r.child);
  }
  emptyLike(): ListColumn<C> {
    return new ListColumn(this.child.emptyLike() as C);
  }
  compact(): void {
    this.offsets = trimmed(this.offsets, this.length + 1);
    this.child.compact();
  }
  gather(sources: readonly ListColumn<C>[], from: Uint32Array, rows: Uint32Array): void {
    const child = expand((i) => sources[i].offsets, from, rows);
    if (this.length + rows.length + 1 > this.offsets.length) {
      this.offsets = grow(this.offsets, this.length + rows.length + 1);
    }
    let at = this.child.length;
    for (let k = 0; k < rows.length; k++) {
      const o = sources[from[k]].offsets;
      at += o[rows[k] + 1] - o[rows[k]];
      this.offsets[this.length + k + 1] = at;
    }
    this.child.gather(sources.map((l) => l.child), child.from, child.rows);
    this.length += rows.length;
  }
}

/**
 * Rows that repeat a few distinct values (one per resource, scope or metric; attribute key lists): each
 * distinct value is stored once (`distinct`, one row each) and each row holds the index of its value (`ids`). A decoder
 * appends a resource's attributes to thousands of rows by writing one number a row, and the Parquet
 * writer encodes each distinct value once. Values no row refers to may remain (after gathers); they are
 * never read.
 */
abstract class SharedColumn<C extends MapColumn | StrColumn | ListColumn<StrColumn>> implements Column {
  ids: Uint32Array;
  length = 0;
  readonly distinct: C;
  /** Sources appended from, with where their values start in `distinct` (and how many there were). */
  private bases = new WeakMap<SharedColumn<C>, { base: number; count: number }>();

  constructor(capacity: number, distinct: C) {
    this.ids = new Uint32Array(Math.max(16, capacity));
    this.distinct = distinct;
  }

  /** The shared part of a snapshot: ids and distinct values. */
  protected sharedSnapshot<D extends ColumnSnapshot>(
    copy: SnapshotMode,
  ): { length: number; ids: Uint32Array; distinct: D } {
    return {
      length: this.length,
      ids: owned(this.ids, this.length, copy),
      distinct: this.distinct.snapshot(copy) as D,
    };
  }
  protected sharedRestore(s: { length: number; ids: Uint32Array; distinct: ColumnSnapshot }): void {
    this.ids = s.ids, this.length = s.length;
    this.distinct.restore(s.distinct);
    this.bases = new WeakMap();
    this.counted = this.countedBytes = 0;
  }
  abstract snapshot(copy: SnapshotMode): ColumnSnapshot;
  abstract restore(s: ColumnSnapshot): void;
  abstract emptyLike(): SharedColumn<C>;

  expectRows(rows: number): void {
    this.ids = atLeast(this.ids, rows);
  }
  /** Appends `times` rows that hold distinct value `id`. */
  pushId(id: number, times: number): void {
    if (times <= 0) return;
    const len = this.length;
    if (len + times > this.ids.length) this.ids = grow(this.ids, len + times);
    if (times === 1) this.ids[len] = id; // a row at a time (attribute key lists, metric points): no fill()
    else this.ids.fill(id, len, len + times);
    this.length = len + times;
  }
  /** Where the values of `src` start in `distinct`, adding them on first use. */
  private baseOf(src: SharedColumn<C>): number {
    const known = this.bases.get(src), count = src.distinct.length;
    if (known && known.count === count) return known.base;
    const base = this.distinct.length;
    (this.distinct as Column).appendRange(src.distinct, 0, count);
    this.bases.set(src, { base, count });
    return base;
  }
  appendRange(src: SharedColumn<C>, start: number, end: number): void {
    const base = this.baseOf(src), n = end - start, len = this.length;
    if (len + n > this.ids.length) this.ids = grow(this.ids, len + n);
    const ids = this.ids, sids = src.ids;
    for (let i = 0; i < n; i++) ids[len + i] = sids[start + i] + base;
    this.length = len + n;
  }
  gather(sources: readonly SharedColumn<C>[], from: Uint32Array, rows: Uint32Array): void {
    const bases = sources.map((s) => this.baseOf(s));
    const len = this.length;
    if (len + rows.length > this.ids.length) this.ids = grow(this.ids, len + rows.length);
    const ids = this.ids;
    for (let k = 0; k < rows.length; k++) ids[len + k] = sources[from[k]].ids[rows[k]] + bases[from[k]];
    this.length = len + rows.length;
  }
  /**
   * The bytes the rows would hold as a plain column, each with its own copy of its value: batch limits
   * count rows by what they amount to (and what writing them expands them to), not by how compactly
   * they are kept.
   */
  byteLength(): number {
    // Rows are only ever appended and a distinct value never changes, so the rows counted before are
    // not counted again: decoders measure their rows every few thousand records.
    const len = this.length, ids = this.ids;
    if (this.counted > len) this.counted = this.countedBytes = 0;
    let n = this.countedBytes, i = this.counted;
    // By runs of one value (rows of a scope, records of one shape): a compare a row.
    while (i < len) {
      const id = ids[i];
      let j = i + 1;
      while (j < len && ids[j] === id) j++;
      n += this.rowBytes(id) * (j - i);
      i = j;
    }
    this.counted = len, this.countedBytes = n;
    return n;
  }
  /** Rows whose bytes byteLength() has summed, and their sum. */
  private counted = 0;
  private countedBytes = 0;
  /** Bytes of one row holding distinct value `id`, as a plain column stores it. */
  protected abstract rowBytes(id: number): number;
  compact(): void {
    this.ids = trimmed(this.ids, this.length);
    this.distinct.compact();
    this.bases = new WeakMap();
  }
  /** Calls `run(id, count)` for every run of rows holding the same value, in order. */
  protected runs(run: (id: number, count: number) => void): void {
    const ids = this.ids;
    for (let i = 0; i < this.length;) {
      let j = i + 1;
      while (j < this.length && ids[j] === ids[i]) j++;
      run(ids[i], j - i);
      i = j;
    }
  }
}

/** Map(String, String) rows that share a few distinct maps: the resource and scope attributes. */
export class SharedMapColumn extends SharedColumn<MapColumn> {
  constructor(capacity = 64) {
    super(capacity, new MapColumn(4, 8));
  }
  snapshot(copy: SnapshotMode): ColumnSnapshot {
    return { kind: "sharedMap", ...this.sharedSnapshot<MapSnapshot>(copy) };
  }
  restore(s: ColumnSnapshot): void {
    this.sharedRestore(expectKind(s, "sharedMap"));
  }
  emptyLike(): SharedMapColumn {
    return new SharedMapColumn();
  }
  protected rowBytes(id: number): number {
    const d = this.distinct, o = d.offsets, k = d.keys.offsets, v = d.values.offsets;
    // Offsets: one for the row, one for each entry's key and value.
    return 4 + (o[id + 1] - o[id]) * 8 + (k[o[id + 1]] - k[o[id]]) + (v[o[id + 1]] - v[o[id]]);
  }
  /** Adds row `row` of `src` as a distinct map and returns its index. */
  addMap(src: MapColumn, row: number): number {
    this.distinct.appendRange(src, row, row + 1);
    return this.distinct.length - 1;
  }
  /** The rows as a plain MapColumn (the Arrow conversion). */
  toMapColumn(): MapColumn {
    const d = this.distinct;
    const out = new MapColumn(this.length, d.length > 0 ? Math.ceil(d.keys.length / d.length) : 1);
    this.runs((id, count) => out.appendRowRepeated(d, id, count));
    return out;
  }
  /** Row i as a plain object (tests). */
  get(i: number): Record<string, string> {
    return this.distinct.get(this.ids[i]);
  }
}

/** Strings that share a few distinct values: service name, scope name and version, schema URLs, metric names. */
export class SharedStrColumn extends SharedColumn<StrColumn> {
  constructor(capacity = 64) {
    super(capacity, new StrColumn(4, 24));
  }
  snapshot(copy: SnapshotMode): ColumnSnapshot {
    const enumIds = owned(this.enumIds, this.enumIds.length, true);
    return { kind: "sharedStr", ...this.sharedSnapshot<StrSnapshot>(copy), enumIds };
  }
  restore(s: ColumnSnapshot): void {
    const r = expectKind(s, "sharedStr");
    this.sharedRestore(r);
    this.lastValue = undefined, this.lastCount = -1;
    this.enumIds = new Int32Array(r.enumIds);
  }
  emptyLike(): SharedStrColumn {
    return new SharedStrColumn();
  }
  protected rowBytes(id: number): number {
    return 4 + this.distinct.offsets[id + 1] - this.distinct.offsets[id];
  }
  /** The array last given to `pushRepeated`, and `distinct.length` after it: see there. */
  private lastValue: Uint8Array | undefined;
  private lastCount = -1;
  /**
   * Appends `value` as `times` more rows. A value equal to the last distinct one (consecutive scopes and
   * metrics mostly repeat it) is not stored again. The same array object as the last call's, with no
   * value stored since, is taken as the same bytes without comparing them (a metric's name, description
   * and unit are pushed for each of its data points): the bytes of a value must not change once pushed.
   */
  pushRepeated(value: Uint8Array, times: number): void {
    if (times <= 0) return;
    const s = this.distinct, n = s.length;
    if (value === this.lastValue && n === this.lastCount) return this.pushId(n - 1, times);
    const o = n > 0 ? s.offsets[n - 1] : 0, size = n > 0 ? s.offsets[n] - o : -1;
    // A byte loop, not rangeEquals: `value` is a subarray of its own, and a DataView of it would push the
    // request's view out of viewOf's one-entry cache (metrics decode 1.6x slower, measured).
    let same = size === value.length;
    for (let i = 0; same && i < size; i++) same = s.bytes[o + i] === value[i];
    if (!same) s.pushBytes(value, 0, value.length);
    this.lastValue = value, this.lastCount = s.length;
    this.pushId(s.length - 1, times);
  }
  /** Per value of a small fixed set (pushEnum), its index in `distinct`; -1 before its first use. */
  private enumIds = new Int32Array(16).fill(-1);
  /**
   * Appends one row holding value number `k` (below 16) of a small fixed set, such as span kinds, whose
   * text is `value`: each is stored once, at first use, and referred to by its index from then on.
   */
  pushEnum(k: number, value: Uint8Array): void {
    let id = this.enumIds[k];
    if (id < 0) {
      this.distinct.pushBytes(value, 0, value.length);
      id = this.enumIds[k] = this.distinct.length - 1;
    }
    this.pushId(id, 1);
  }
  /** The rows as a plain StrColumn (the Arrow conversion). */
  toStrColumn(): StrColumn {
    const out = new StrColumn(this.length, 1);
    this.runs((id, count) => out.appendRangeRepeated(this.distinct, id, id + 1, count));
    return out;
  }
  /** Row i as a JS string. */
  get(i: number): string {
    return this.distinct.get(this.ids[i]);
  }
}

/** The key lists of a KeyedMapColumn's rows: each distinct (sorted) list once, and one index a row. */
class KeyLists extends SharedColumn<ListColumn<StrColumn>> {
  /** Lists added lately (a ring), tried after the last row's: records of a few shapes interleave. */
  private recent = new Int32Array(8).fill(-1);
  private recentAt = 0;

  constructor(capacity = 64) {
    super(capacity, new ListColumn(new StrColumn(16, 16), 4));
  }
  snapshot(copy: SnapshotMode): KeyListsSnapshot {
    const recent = owned(this.recent, this.recent.length, true);
    return { kind: "keyLists", ...this.sharedSnapshot<ListSnapshot>(copy), recent, recentAt: this.recentAt };
  }
  restore(s: ColumnSnapshot): void {
    const r = expectKind(s, "keyLists");
    this.sharedRestore(r);
    this.recent = new Int32Array(r.recent), this.recentAt = r.recentAt;
  }
  emptyLike(): KeyLists {
    return new KeyLists();
  }
  /** A row's keys as a plain map holds them: their bytes and an offset each (the row's offset is the map's). */
  protected rowBytes(id: number): number {
    const lo = this.distinct.offsets, ko = this.distinct.child.offsets;
    return ko[lo[id + 1]] - ko[lo[id]] + (lo[id + 1] - lo[id]) * 4;
  }

  /**
   * Appends a row whose keys are the byte ranges `starts[k]` to `ends[k]` of `buf` (k < n, sorted): it
   * refers to the last row's list or to one of the lists added lately when they match, else to a new one.
   */
  pushKeys(n: number, buf: Uint8Array, starts: Int32Array, ends: Int32Array): number {
    const last = this.length > 0 ? this.ids[this.length - 1] : -1;
    let id = last;
    if (!this.listEquals(last, n, buf, starts, ends)) id = this.recentOrNew(last, n, buf, starts, ends);
    this.pushId(id, 1);
    return id;
  }

  /** The id of one of the lists added lately (but `last`) with exactly these keys, else of a new list. */
  private recentOrNew(
    last: number,
    n: number,
    buf: Uint8Array,
    starts: Int32Array,
    ends: Int32Array,
  ): number {
    const recent = this.recent;
    for (let i = 0; i < recent.length; i++) {
      const id = recent[i];
      if (id >= 0 && id !== last && this.listEquals(id, n, buf, starts, ends)) return id;
    }
    const lists = this.distinct, keys = lists.child;
    for (let i = 0; i < n; i++) keys.pushBytes(buf, starts[i], ends[i]);
    lists.closeRow();
    recent[this.recentAt] = lists.length - 1;
    this.recentAt = (this.recentAt + 1) % recent.length;
    return lists.length - 1;
  }

  /** Whether list `id` holds exactly the keys given as byte ranges of `buf`. */
  private listEquals(id: number, n: number, buf: Uint8Array, starts: Int32Array, ends: Int32Array): boolean {
    const lo = this.distinct.offsets;
    if (id < 0 || lo[id + 1] - lo[id] !== n) return false;
    const keys = this.distinct.child, ko = keys.offsets, kb = keys.bytes;
    const kv = keys.dataView(), bv = viewOf(buf);
    for (let i = 0, e = lo[id]; i < n; i++, e++) {
      const s = starts[i], len = ends[i] - s, at = ko[e];
      if (ko[e + 1] - at !== len || !rangeEquals(kb, kv, at, buf, bv, s, len)) return false;
    }
    return true;
  }
}

/**
 * Map(String, String) rows whose key lists repeat: attributes, where instrumentation emits the same keys
 * for record after record. Each distinct (sorted) key list is stored once (`keyLists`, an index a row);
 * the values are a list a row (`values`), in the order of the row's keys. Decoders compare a row's keys
 * with recent lists instead of copying them, and the Parquet writer dictionary-encodes each distinct key
 * once.
 */
export class KeyedMapColumn implements Column {
  readonly values: ListColumn<StrColumn>;
  readonly keyLists: KeyLists;

  constructor(capacity = 64, entriesPerRow = 4) {
    this.values = new ListColumn(new StrColumn(capacity * entriesPerRow, 16), capacity);
    this.keyLists = new KeyLists(capacity);
  }

  get length(): number {
    return this.values.length;
  }
  /** The distinct key lists, one row each. Lists no row refers to may remain (after gathers). */
  get lists(): ListColumn<StrColumn> {
    return this.keyLists.distinct;
  }

  expectRows(rows: number, maxJump: number): void {
    this.values.expectRows(rows);
    this.values.child.expectRowsOf(this.values, rows, maxJump);
    this.keyLists.expectRows(rows);
  }

  /**
   * Closes the current row: the values appended to `values.child` since the last row, under the keys given
   * as byte ranges of `buf` (`starts[k]` to `ends[k]`, k < n, sorted and one a value).
   */
  closeRow(n: number, buf: Uint8Array, starts: Int32Array, ends: Int32Array): number {
    const id = this.keyLists.pushKeys(n, buf, starts, ends);
    this.values.closeRow();
    return id;
  }
  /** Closes the current row under key list `id`, which closeRow returned for an earlier row of this column. */
  closeRowWithList(id: number): void {
    this.keyLists.pushId(id, 1);
    this.values.closeRow();
  }

  appendRange(src: KeyedMapColumn, start: number, end: number): void {
    this.keyLists.appendRange(src.keyLists, start, end);
    this.values.appendRange(src.values, start, end);
  }
  gather(sources: readonly KeyedMapColumn[], from: Uint32Array, rows: Uint32Array): void {
    this.keyLists.gather(sources.map((s) => s.keyLists), from, rows);
    this.values.gather(sources.map((s) => s.values), from, rows);
  }
  /** As for SharedColumn: the bytes of the rows as a plain map column, each with its own copy of its keys. */
  byteLength(): number {
    return this.values.byteLength() + this.keyLists.byteLength();
  }
  snapshot(copy: SnapshotMode): ColumnSnapshot {
    return { kind: "keyedMap", values: this.values.snapshot(copy), keyLists: this.keyLists.snapshot(copy) };
  }
  restore(s: ColumnSnapshot): void {
    const r = expectKind(s, "keyedMap");
    this.values.restore(r.values);
    this.keyLists.restore(r.keyLists);
  }
  emptyLike(): KeyedMapColumn {
    return new KeyedMapColumn();
  }
  compact(): void {
    this.values.compact();
    this.keyLists.compact();
  }
  /** How far row r's keys (in `lists.child`) lie from its values (in `values.child`). */
  keyShift(r: number): number {
    return this.lists.offsets[this.keyLists.ids[r]] - this.values.offsets[r];
  }
  /** The rows as a plain MapColumn (the Arrow conversion). */
  toMapColumn(): MapColumn {
    const out = new MapColumn(this.length, 1), o = this.values.offsets;
    for (let r = 0; r < this.length; r++) {
      const shift = this.keyShift(r);
      out.keys.appendRange(this.lists.child, o[r] + shift, o[r + 1] + shift);
      out.values.appendRange(this.values.child, o[r], o[r + 1]);
      out.closeRow();
    }
    return out;
  }
  /** Row i as a plain object (tests). */
  get(i: number): Record<string, string> {
    const out: Record<string, string> = {};
    const o = this.values.offsets, shift = this.keyShift(i);
    for (let e = o[i]; e < o[i + 1]; e++) out[this.lists.child.get(e + shift)] = this.values.child.get(e);
    return out;
  }
}
