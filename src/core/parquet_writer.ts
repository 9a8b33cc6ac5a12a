/**
 * A Parquet writer for the seven tables, in TypeScript, reading the column buffers directly: no Arrow
 * IPC, no copy into wasm. It writes what parquet-wasm (arrow-rs) writes for the same Arrow schema: the
 * same Parquet schema (required fields, `MAP` over a repeated `key_value` group, `LIST` over a repeated
 * `list` group of `element`, `TIMESTAMP(NANOS, UTC)`, unsigned integer annotations), the Arrow schema in
 * the `ARROW:schema` key, data pages v1, dictionary encoding with a fallback to plain encoding, and
 * statistics per column chunk. Page compression is a function the platform supplies (zstd from
 * `node:zlib` on Deno and Bun), so the core stays pure.
 *
 * @module
 */

import { Table, tableToIPC } from "apache-arrow";
import { arrowSchema } from "./arrow.ts";
import { bitWidth, ByteSink, concatBytes, writeHybrid } from "./byte_sink.ts";
import type {
  Column,
  F64Column,
  KeyedMapColumn,
  ListColumn,
  MapColumn,
  SharedMapColumn,
  SharedStrColumn,
  StrColumn,
  U32Column,
  U64Column,
  U8Column,
} from "./columns.ts";
import type { Rows } from "./rows.ts";
import { type ColumnDef, isIdColumn, type TableDef, type ValueType } from "./schema.ts";
import { CompactWriter } from "./thrift.ts";
import { InternalError } from "./errors.ts";

/** Compresses one page; returns the compressed bytes (a new buffer). */
export type PageCompressor = (page: Uint8Array) => Uint8Array;

/** Writer settings. */
export interface WriterOptions {
  /** Parquet codec id of `compress` (thrift `CompressionCodec`: 0 none, 2 gzip, 6 zstd); default 0. */
  codec?: number;
  /** Compresses each page; required unless `codec` is 0. */
  compress?: PageCompressor;
  /** Rows per row group; default 131072. */
  rowGroupRows?: number;
  /** Key-value metadata written before `ARROW:schema`. */
  metadata?: readonly [string, string][];
  /** The footer's `created_by`. */
  createdBy?: string;
}

// Parquet thrift enums (parquet.thrift).
const BOOLEAN = 0, INT32 = 1, INT64 = 2, DOUBLE = 5, BYTE_ARRAY = 6;
const REQUIRED = 0, REPEATED = 2;
const PLAIN = 0, RLE = 3, RLE_DICTIONARY = 8;
const DATA_PAGE = 0, DICTIONARY_PAGE = 2;
const UTF8 = 0, MAP = 1, LIST = 3, UINT_8 = 11, UINT_32 = 13, UINT_64 = 14;

/** A data page ends after this many rows or value bytes, whichever first (arrow-rs' defaults). */
const PAGE_ROWS = 20_000;
const PAGE_BYTES = 1 << 20;
/** A dictionary past this size (plain-encoded) is dropped for plain values: see parquet.ts. */
const DICT_BYTES = 32 * 1024;
/** Places within a row whose value in the previous row is compared first (see dictionaryEncode). */
const GUESSES = 32;
/** Longer string statistics are left out rather than truncated. */
const STAT_BYTES = 64;

type Shape = "scalar" | "map" | "list" | "listmap";
type Part = "value" | "key";

/** One leaf column of the Parquet schema. */
interface Leaf {
  readonly path: string[];
  readonly column: number;
  /** A map's key and value leaves are strings. */
  readonly type: LeafType;
  readonly shape: Shape;
  /** For maps: the key or the value column. */
  readonly part: Part;
  readonly maxLevel: number;
  readonly dictionary: boolean;
}

interface SchemaNode {
  name: string;
  repetition?: number;
  type?: number;
  children?: number;
  converted?: number;
  logical?: (w: CompactWriter) => void;
}

type LeafType = Exclude<ValueType, "Map">;

const physicalOf: Record<LeafType, number> = {
  "DateTime64(9)": INT64,
  "UInt64": INT64,
  "String": BYTE_ARRAY,
  "LowCardinality(String)": BYTE_ARRAY,
  "UInt8": INT32,
  "UInt32": INT32,
  "Int32": INT32,
  "Float64": DOUBLE,
  "Bool": BOOLEAN,
};

function scalarNode(name: string, type: Exclude<ValueType, "Map">): SchemaNode {
  const node: SchemaNode = { name, repetition: REQUIRED, type: physicalOf[type] };
  const int = (bits: number) => (w: CompactWriter) => w.struct(10, (i) => i.i8(1, bits).bool(2, false));
  switch (type) {
    case "String":
    case "LowCardinality(String)":
      node.converted = UTF8;
      node.logical = (w) => w.struct(1, () => {});
      break;
    case "DateTime64(9)":
      // TIMESTAMP(isAdjustedToUTC = true, unit = NANOS); no converted type exists for nanoseconds.
      node.logical = (w) => w.struct(8, (t) => t.bool(1, true).struct(2, (u) => u.struct(3, () => {})));
      break;
    case "UInt8":
      node.converted = UINT_8, node.logical = int(8);
      break;
    case "UInt32":
      node.converted = UINT_32, node.logical = int(32);
      break;
    case "UInt64":
      node.converted = UINT_64, node.logical = int(64);
      break;
  }
  return node;
}

function mapNodes(name: string): SchemaNode[] {
  return [
    { name, repetition: REQUIRED, children: 1, converted: MAP, logical: (w) => w.struct(2, () => {}) },
    { name: "key_value", repetition: REPEATED, children: 2 },
    scalarNode("key", "String"),
    scalarNode("value", "String"),
  ];
}

function columnNodes(def: ColumnDef): SchemaNode[] {
  const inner = def.type === "Map" ? mapNodes("element") : [scalarNode("element", def.type)];
  const own = def.type === "Map" ? mapNodes(def.name) : [scalarNode(def.name, def.type)];
  if (!def.list) return own;
  return [
    {
      name: def.name,
      repetition: REQUIRED,
      children: 1,
      converted: LIST,
      logical: (w) => w.struct(3, () => {}),
    },
    { name: "list", repetition: REPEATED, children: 1 },
    ...inner,
  ];
}

function leavesOf(def: ColumnDef, column: number): Leaf[] {
  const idColumn = isIdColumn(def.name);
  const dictionaryFor = (t: ValueType) =>
    !idColumn && (t === "String" || t === "LowCardinality(String)" || t === "UInt8" || t === "UInt32" ||
      t === "Int32");
  if (def.type === "Map") {
    const shape: Shape = def.list ? "listmap" : "map";
    const base = def.list ? [def.name, "list", "element", "key_value"] : [def.name, "key_value"];
    const maxLevel = def.list ? 2 : 1;
    return (["key", "value"] as const).map((part) => ({
      path: [...base, part],
      column,
      type: "String" as LeafType,
      shape,
      part,
      maxLevel,
      dictionary: true,
    }));
  }
  return [{
    path: def.list ? [def.name, "list", "element"] : [def.name],
    column,
    type: def.type,
    shape: def.list ? "list" : "scalar",
    part: "value",
    maxLevel: def.list ? 1 : 0,
    dictionary: dictionaryFor(def.type),
  }];
}

/** The Parquet layout of a table, computed once per table. */
interface Layout {
  readonly nodes: SchemaNode[];
  readonly leaves: Leaf[];
  readonly arrowSchema: string;
}

const layouts = new Map<TableDef, Layout>();

function layoutOf(def: TableDef): Layout {
  let layout = layouts.get(def);
  if (layout) return layout;
  const nodes: SchemaNode[] = [{ name: "arrow_schema", children: def.columns.length }];
  const leaves: Leaf[] = [];
  def.columns.forEach((c, i) => {
    nodes.push(...columnNodes(c));
    leaves.push(...leavesOf(c, i));
  });
  // arrow-rs stores the Arrow schema as the IPC schema message (continuation marker, length, flatbuffer).
  const ipc = tableToIPC(new Table(arrowSchema(def)), "stream");
  const length = new DataView(ipc.buffer, ipc.byteOffset).getInt32(4, true);
  layout = { nodes, leaves, arrowSchema: base64(ipc.subarray(0, 8 + length)) };
  layouts.set(def, layout);
  return layout;
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/**
 * The rows of one row group: row k is row `rows[k]` of `sources[from[k]]`. The writer reads the column
 * buffers through this order, so a batch of many requests is never copied into one sorted buffer.
 */
export interface GroupRows {
  readonly sources: readonly Rows[];
  readonly from: Uint32Array;
  readonly rows: Uint32Array;
}

/**
 * The values of one leaf in a row group, in order: value j is `cols[src[j]]` at `idx[j]`. A class with
 * every field always set, so that the hot loops see one object shape (measured: mixed shapes made
 * dictionary lookups several times slower).
 */
class LeafValues {
  constructor(
    readonly cols: Column[],
    readonly src: Uint32Array,
    readonly idx: Uint32Array,
    /** Map and list leaves: the first value of each row (length rows + 1). */
    readonly rowStart: Int32Array | null = null,
    /** Lists of maps: the first element of each row, and the first value of each element. */
    readonly elemStart: Int32Array | null = null,
    readonly entryStart: Int32Array | null = null,
    /**
     * Values are entries of distinct maps that many rows share (`SharedMapColumn`): the same (src, idx)
     * recurs, so per-value results can be kept by it.
     */
    readonly shared = false,
  ) {}
}

/**
 * Buffers reused from column to column and row group to row group: allocating them per column chunk
 * made a good part of the writer's garbage. Views into them live only while one column is written.
 */
class Scratch {
  #u32 = [new Uint32Array(0), new Uint32Array(0), new Uint32Array(0), new Uint32Array(0), new Uint32Array(0)];
  #i32 = [new Int32Array(0), new Int32Array(0)];
  /**
   * Uint32 buffer `slot`: 0-1 the first expansion (or a shared string column's ids), 2-3 the second
   * expansion (or a shared map's row ids, a keyed map's key indices), 4 dictionary indices.
   */
  u32(slot: number, n: number): Uint32Array {
    if (this.#u32[slot].length < n) {
      this.#u32[slot] = new Uint32Array(Math.max(n, this.#u32[slot].length * 2));
    }
    return this.#u32[slot].subarray(0, n);
  }
  i32(slot: number, n: number): Int32Array {
    if (this.#i32[slot].length < n) this.#i32[slot] = new Int32Array(Math.max(n, this.#i32[slot].length * 2));
    return this.#i32[slot].subarray(0, n);
  }
  rep = new Uint8Array(0);
  def = new Uint8Array(0);
}

/** Expands rows to the child entries given by per-source offsets: starts per row, and (src, idx) per entry. */
function expandRows(
  offsets: Int32Array[],
  from: Uint32Array,
  rows: Uint32Array,
  scratch: Scratch,
  level: 0 | 1,
): { start: Int32Array; src: Uint32Array; idx: Uint32Array } {
  const n = rows.length;
  const start = scratch.i32(level, n + 1);
  let total = 0;
  for (let k = 0; k < n; k++) {
    const o = offsets[from[k]], r = rows[k];
    start[k] = total;
    total += o[r + 1] - o[r];
  }
  start[n] = total;
  const src = scratch.u32(level * 2, total), idx = scratch.u32(level * 2 + 1, total);
  let j = 0;
  for (let k = 0; k < n; k++) {
    const s = from[k], o = offsets[s];
    for (let e = o[rows[k]], end = o[rows[k] + 1]; e < end; e++) src[j] = s, idx[j++] = e;
  }
  return { start, src, idx };
}

/**
 * Per row of the group, the index of its value among its source's distinct values (shared columns).
 * An index past those values (a bug upstream) would write a file no reader opens, so it throws an
 * InternalError instead: one comparison a row.
 */
function distinctIds(
  cols: readonly { ids: Uint32Array; distinct: { length: number } }[],
  from: Uint32Array,
  rows: Uint32Array,
  scratch: Scratch,
  slot: number,
): Uint32Array {
  const ids = scratch.u32(slot, rows.length);
  const sizes = cols.map((c) => c.distinct.length);
  for (let k = 0; k < rows.length; k++) {
    const s = from[k], id = cols[s].ids[rows[k]];
    if (!(id < sizes[s])) throw badIndex(id, sizes[s]);
    ids[k] = id;
  }
  return ids;
}

function badIndex(id: number, size: number): InternalError {
  return new InternalError(`dictionary index ${id} out of range (${size} values): nothing written`);
}

/** Builds the value order of every leaf of one column (a map's key and value leaves share it). */
function columnValues(
  def: ColumnDef,
  column: number,
  group: GroupRows,
  scratch: Scratch,
): { key: LeafValues; value: LeafValues } {
  const { sources, from, rows } = group;
  const cols = sources.map((s) => s.columns[column]);
  if (def.type !== "Map" && !def.list && def.shared) {
    const strs = cols as SharedStrColumn[];
    const idx = distinctIds(strs, from, rows, scratch, 1);
    const v = new LeafValues(strs.map((c) => c.distinct), from, idx, null, null, null, true);
    return { key: v, value: v };
  }
  if (def.type !== "Map" && !def.list) {
    const v = new LeafValues(cols, from, rows);
    return { key: v, value: v };
  }
  if (!def.list && def.shared) {
    // Rows expand to the entries of their distinct maps (slot 2: expandRows uses slots 0 and 1).
    const maps = (cols as SharedMapColumn[]).map((m) => m.distinct);
    const ids = distinctIds(cols as SharedMapColumn[], from, rows, scratch, 2);
    const x = expandRows(maps.map((m) => m.offsets), from, ids, scratch, 0);
    return {
      key: new LeafValues(maps.map((m) => m.keys), x.src, x.idx, x.start, null, null, true),
      value: new LeafValues(maps.map((m) => m.values), x.src, x.idx, x.start, null, null, true),
    };
  }
  if (!def.list && def.keyed) {
    const maps = cols as KeyedMapColumn[];
    const x = expandRows(maps.map((m) => m.values.offsets), from, rows, scratch, 0);
    // Entry e of row r has the key at the same place in the row's list.
    const keyIdx = scratch.u32(2, x.idx.length);
    for (let k = 0, j = 0; k < rows.length; k++) {
      const map = maps[from[k]], r = rows[k], list = map.keyLists.ids[r];
      // The row's values and its key list must match one to one, or keys would be read past their list.
      const lists = map.lists.offsets;
      if (
        !(list < map.lists.length) ||
        lists[list + 1] - lists[list] !== map.values.offsets[r + 1] - map.values.offsets[r]
      ) throw badIndex(list, map.lists.length);
      const shift = map.keyShift(r);
      for (const end = x.start[k + 1]; j < end; j++) keyIdx[j] = x.idx[j] + shift;
    }
    return {
      key: new LeafValues(maps.map((m) => m.lists.child), x.src, keyIdx, x.start, null, null, true),
      value: new LeafValues(maps.map((m) => m.values.child), x.src, x.idx, x.start),
    };
  }
  if (!def.list) {
    const maps = cols as MapColumn[];
    const x = expandRows(maps.map((m) => m.offsets), from, rows, scratch, 0);
    return {
      key: new LeafValues(maps.map((m) => m.keys), x.src, x.idx, x.start),
      value: new LeafValues(maps.map((m) => m.values), x.src, x.idx, x.start),
    };
  }
  const lists = cols as ListColumn[];
  const x = expandRows(lists.map((l) => l.offsets), from, rows, scratch, 0);
  if (def.type !== "Map") {
    const v = new LeafValues(lists.map((l) => l.child), x.src, x.idx, x.start);
    return { key: v, value: v };
  }
  const maps = lists.map((l) => l.child as MapColumn);
  const y = expandRows(maps.map((m) => m.offsets), x.src, x.idx, scratch, 1);
  return {
    key: new LeafValues(maps.map((m) => m.keys), y.src, y.idx, null, x.start, y.start),
    value: new LeafValues(maps.map((m) => m.values), y.src, y.idx, null, x.start, y.start),
  };
}

/** Index of the first value of row r (r in [0, rows]). */
function valueStart(v: LeafValues, r: number): number {
  if (v.entryStart) return v.entryStart[v.elemStart![r]];
  return v.rowStart ? v.rowStart[r] : r;
}

/** Repetition and definition levels of rows [r0, r1) of a repeated leaf; returns their count. */
function levelsOf(v: LeafValues, r0: number, r1: number, rep: Uint8Array, def: Uint8Array): number {
  let n = 0;
  if (v.entryStart) {
    const lo = v.elemStart!, mo = v.entryStart;
    for (let r = r0; r < r1; r++) {
      if (lo[r] === lo[r + 1]) {
        rep[n] = 0, def[n++] = 0;
        continue;
      }
      for (let e = lo[r]; e < lo[r + 1]; e++) {
        const first = e === lo[r] ? 0 : 1;
        const count = mo[e + 1] - mo[e];
        if (count === 0) {
          rep[n] = first, def[n++] = 1;
          continue;
        }
        rep[n] = first, def[n++] = 2;
        for (let k = 1; k < count; k++) rep[n] = 2, def[n++] = 2;
      }
    }
    return n;
  }
  const o = v.rowStart!;
  for (let r = r0; r < r1; r++) {
    const count = o[r + 1] - o[r];
    if (count === 0) {
      rep[n] = 0, def[n++] = 0;
      continue;
    }
    rep[n] = 0, def[n++] = 1;
    for (let k = 1; k < count; k++) rep[n] = 1, def[n++] = 1;
  }
  return n;
}

/** A dictionary of byte strings; each entry is stored as the position of its first occurrence. */
class StrDictionary {
  #slots: Int32Array;
  #mask: number;
  #hashes: Int32Array;
  /** Value position (into the leaf's values) of each entry. */
  entries: Int32Array;
  size = 0;
  /** Plain-encoded size of the entries. */
  bytes = 0;
  readonly #cols: StrColumn[];
  readonly #src: Uint32Array;
  readonly #idx: Uint32Array;
  constructor(v: LeafValues) {
    this.#cols = v.cols as StrColumn[], this.#src = v.src, this.#idx = v.idx;
    this.#slots = new Int32Array(1024).fill(-1);
    this.#mask = 1023;
    this.#hashes = new Int32Array(256);
    this.entries = new Int32Array(256);
  }

  /** The entry index of value `j`, adding it if new; -1 once the dictionary passes `DICT_BYTES`. */
  index(j: number): number {
    const cols = this.#cols, src = this.#src, idx = this.#idx;
    const col = cols[src[j]], i = idx[j];
    const b = col.bytes, s = col.offsets[i], e = col.offsets[i + 1];
    // Four bytes a step; every byte counts (templated values often differ only in the middle).
    let h = 0x811c9dc5 ^ (e - s), k = s;
    for (; k + 4 <= e; k += 4) {
      h = Math.imul(h ^ (b[k] | (b[k + 1] << 8) | (b[k + 2] << 16) | (b[k + 3] << 24)), 0x01000193);
    }
    for (; k < e; k++) h = Math.imul(h ^ b[k], 0x01000193);
    h ^= h >>> 15;
    let slot = h & this.#mask;
    for (;;) {
      const at = this.#slots[slot];
      if (at < 0) break;
      if (this.#hashes[at] === h) {
        const q = this.entries[at], qc = cols[src[q]] as StrColumn, qi = idx[q];
        const qb = qc.bytes, qs = qc.offsets[qi];
        if (qc.offsets[qi + 1] - qs === e - s) {
          let m = 0;
          while (m < e - s && b[s + m] === qb[qs + m]) m++;
          if (m === e - s) return at;
        }
      }
      slot = (slot + 1) & this.#mask;
    }
    this.bytes += 4 + e - s;
    if (this.bytes > DICT_BYTES) return -1;
    const at = this.size++;
    if (at === this.entries.length) {
      const grow = (a: Int32Array) => {
        const next = new Int32Array(a.length * 2);
        next.set(a);
        return next;
      };
      this.entries = grow(this.entries), this.#hashes = grow(this.#hashes);
    }
    this.entries[at] = j, this.#hashes[at] = h, this.#slots[slot] = at;
    if (this.size * 2 > this.#mask) this.#rehash();
    return at;
  }

  #rehash(): void {
    const slots = new Int32Array((this.#mask + 1) * 2).fill(-1);
    const mask = slots.length - 1;
    for (let at = 0; at < this.size; at++) {
      let slot = this.#hashes[at] & mask;
      while (slots[slot] >= 0) slot = (slot + 1) & mask;
      slots[slot] = at;
    }
    this.#slots = slots, this.#mask = mask;
  }
}

/** dictionaryEncode for the entries of shared maps: each distinct entry is looked up once. */
function sharedDictionaryEncode(
  v: LeafValues,
  dict: StrDictionary,
  indices: Uint32Array,
  count: number,
): { indices: Uint32Array; entries: Int32Array; size: number } | null {
  const { src, idx } = v;
  const known = v.cols.map((c) => new Int32Array(c.length).fill(-1));
  for (let j = 0; j < count; j++) {
    const seen = known[src[j]], i = idx[j];
    let at = seen[i];
    if (at < 0) {
      at = dict.index(j);
      if (at < 0) return null;
      seen[i] = at;
    }
    indices[j] = at;
  }
  return { indices, entries: dict.entries, size: dict.size };
}

/** Dictionary indices of a string or 32-bit integer leaf's values, or null when the dictionary is too large. */
function dictionaryEncode(
  v: LeafValues,
  type: ValueType,
  count: number,
  scratch: Scratch,
): { indices: Uint32Array; entries: Int32Array; size: number } | null {
  const indices = scratch.u32(4, count);
  if (type === "String" || type === "LowCardinality(String)") {
    const dict = new StrDictionary(v);
    if (v.shared) return sharedDictionaryEncode(v, dict, indices, count);
    // Rows of a batch mostly repeat the previous row's values at the same place (resource attributes,
    // attribute keys, service and scope names): that entry is tried first, with one comparison and no hash.
    const guess = new Int32Array(GUESSES).fill(-1);
    const rows = v.rowStart ?? v.elemStart;
    const cols = v.cols as StrColumn[], { src, idx } = v;
    for (let r = 0, j = 0; j < count; r++) {
      const end = rows ? valueStart(v, r + 1) : j + 1;
      const q = j;
      for (; j < end; j++) {
        // The value at the same place in the previous row (recent, so likely in cache) is compared first.
        const slot = j - q < GUESSES ? j - q : -1;
        const e = slot >= 0 ? guess[slot] : -1;
        if (e >= 0) {
          const a = cols[src[j]], ai = idx[j], b = cols[src[e]], bi = idx[e];
          const as = a.offsets[ai], len = a.offsets[ai + 1] - as, bs = b.offsets[bi];
          if (b.offsets[bi + 1] - bs === len) {
            const ab = a.bytes, bb = b.bytes;
            let m = 0;
            while (m < len && ab[as + m] === bb[bs + m]) m++;
            if (m === len) {
              indices[j] = indices[e];
              guess[slot] = j;
              continue;
            }
          }
        }
        const at = dict.index(j);
        if (at < 0) return null;
        indices[j] = at;
        if (slot >= 0) guess[slot] = j;
      }
    }
    return { indices, entries: dict.entries, size: dict.size };
  }
  const { cols, src, idx } = v;
  const seen = new Map<number, number>();
  const entries: number[] = [];
  for (let j = 0; j < count; j++) {
    const x = (cols[src[j]] as U8Column | U32Column).values[idx[j]];
    let at = seen.get(x);
    if (at === undefined) {
      at = entries.length;
      if (4 * (at + 1) > DICT_BYTES) return null;
      seen.set(x, at);
      entries.push(j);
    }
    indices[j] = at;
  }
  return { indices, entries: Int32Array.from(entries), size: entries.length };
}

/** Bytes of a fixed-width column's buffer, per source (for copying values). */
function byteViews(cols: Column[], type: ValueType): Uint8Array[] {
  return cols.map((c) => {
    const a = type === "DateTime64(9)" || type === "UInt64"
      ? (c as U64Column).words
      : (c as F64Column | U32Column | U8Column).values;
    return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  });
}

/** Appends the values at positions `at(k)`, k in [0, count), in PLAIN encoding. */
function plainValues(
  sink: ByteSink,
  type: LeafType,
  v: LeafValues,
  count: number,
  at: (k: number) => number,
): void {
  const { cols, src, idx } = v;
  switch (type) {
    case "String":
    case "LowCardinality(String)": {
      for (let k = 0; k < count; k++) {
        const j = at(k), c = cols[src[j]] as StrColumn, i = idx[j];
        const s = c.offsets[i], e = c.offsets[i + 1];
        sink.room(4 + e - s);
        sink.u32le(e - s);
        sink.bytes(c.bytes, s, e);
      }
      return;
    }
    case "DateTime64(9)":
    case "UInt64":
    case "Float64":
    case "UInt32":
    case "Int32": {
      const width = fixedWidth(type);
      const views = byteViews(cols, type);
      sink.room(count * width);
      const out = sink.buf;
      let p = sink.pos;
      for (let k = 0; k < count; k++) {
        const j = at(k), b = views[src[j]], s = idx[j] * width;
        for (let q = 0; q < width; q++) out[p++] = b[s + q];
      }
      sink.pos = p;
      return;
    }
    case "UInt8": {
      sink.room(count * 4);
      for (let k = 0; k < count; k++) {
        const j = at(k);
        sink.u32le((cols[src[j]] as U8Column).values[idx[j]]);
      }
      return;
    }
    case "Bool": {
      const bytes = (count + 7) >> 3;
      sink.room(bytes);
      const start = sink.pos;
      sink.buf.fill(0, start, start + bytes);
      for (let k = 0; k < count; k++) {
        const j = at(k);
        if ((cols[src[j]] as U8Column).values[idx[j]]) sink.buf[start + (k >> 3)] |= 1 << (k & 7);
      }
      sink.pos += bytes;
      return;
    }
  }
}

/** Bytes of one plain-encoded value of a fixed-width type (booleans counted as 4: only an upper bound). */
function fixedWidth(type: ValueType): number {
  return type === "DateTime64(9)" || type === "UInt64" || type === "Float64" ? 8 : 4;
}

/** Min and max of a chunk's values as Parquet statistics bytes, or null when left out. */
function statistics(
  type: LeafType,
  v: LeafValues,
  count: number,
  at: (k: number) => number,
): [Uint8Array, Uint8Array] | null {
  if (count === 0) return null;
  const { cols, src, idx } = v;
  switch (type) {
    case "String":
    case "LowCardinality(String)": {
      // The current minimum and maximum are kept as (bytes, start, length), so each value is compared
      // without looking them up again (this loop was 5 % of the server's time).
      const strs = cols as StrColumn[];
      let min = at(0), max = min;
      let c = strs[src[min]], i = idx[min];
      let minB = c.bytes, minS = c.offsets[i], minL = c.offsets[i + 1] - minS;
      let maxB = minB, maxS = minS, maxL = minL;
      for (let k = 1; k < count; k++) {
        const j = at(k);
        c = strs[src[j]], i = idx[j];
        const b = c.bytes, bs = c.offsets[i], bl = c.offsets[i + 1] - bs;
        // Below the minimum?
        let n = bl < minL ? bl : minL, m = 0;
        while (m < n && b[bs + m] === minB[minS + m]) m++;
        if (m < n ? b[bs + m] < minB[minS + m] : bl < minL) {
          min = j, minB = b, minS = bs, minL = bl;
          continue;
        }
        // Above the maximum?
        n = bl < maxL ? bl : maxL, m = 0;
        while (m < n && b[bs + m] === maxB[maxS + m]) m++;
        if (m < n ? b[bs + m] > maxB[maxS + m] : bl > maxL) max = j, maxB = b, maxS = bs, maxL = bl;
      }
      const bytesOf = (j: number) => {
        const c = cols[src[j]] as StrColumn, i = idx[j];
        return c.offsets[i + 1] - c.offsets[i] > STAT_BYTES
          ? null
          : c.bytes.slice(c.offsets[i], c.offsets[i + 1]);
      };
      const lo = bytesOf(min), hi = bytesOf(max);
      return lo && hi ? [lo, hi] : null;
    }
    case "DateTime64(9)":
    case "UInt64": {
      const signed = type === "DateTime64(9)";
      const hiOf = (j: number) => {
        const w = (cols[src[j]] as U64Column).words[idx[j] * 2 + 1];
        return signed ? w | 0 : w;
      };
      const loOf = (j: number) => (cols[src[j]] as U64Column).words[idx[j] * 2];
      const less = (x: number, y: number) => hiOf(x) < hiOf(y) || (hiOf(x) === hiOf(y) && loOf(x) < loOf(y));
      let min = at(0), max = min;
      for (let k = 1; k < count; k++) {
        const j = at(k);
        if (less(j, min)) min = j;
        if (less(max, j)) max = j;
      }
      const bytes = (j: number) => {
        const out = new Uint8Array(8), d = new DataView(out.buffer);
        d.setUint32(0, loOf(j), true), d.setUint32(4, hiOf(j) >>> 0, true);
        return out;
      };
      return [bytes(min), bytes(max)];
    }
    case "Float64": {
      let min = Infinity, max = -Infinity, any = false;
      for (let k = 0; k < count; k++) {
        const j = at(k), x = (cols[src[j]] as F64Column).values[idx[j]];
        if (x !== x) continue;
        any = true;
        if (x < min) min = x;
        if (x > max) max = x;
      }
      if (!any) return null;
      // The specification asks for -0 as a minimum of zero and +0 as a maximum of zero.
      if (min === 0) min = -0;
      if (max === 0) max = 0;
      const bytes = new Uint8Array(new Float64Array([min, max]).buffer);
      return [bytes.slice(0, 8), bytes.slice(8, 16)];
    }
    case "UInt8":
    case "UInt32":
    case "Int32":
    case "Bool": {
      const signed = type === "Int32";
      let min = Infinity, max = -Infinity;
      for (let k = 0; k < count; k++) {
        const j = at(k), w = (cols[src[j]] as U8Column | U32Column).values[idx[j]];
        const x = signed ? w | 0 : w;
        if (x < min) min = x;
        if (x > max) max = x;
      }
      const size = type === "Bool" ? 1 : 4;
      const enc = (x: number) => {
        const b = new Uint8Array(size);
        for (let i = 0; i < size; i++) b[i] = (x >>> (8 * i)) & 0xff;
        return b;
      };
      return [enc(min), enc(max)];
    }
  }
}

/** The metadata of one written column chunk. */
interface ChunkMeta {
  leaf: Leaf;
  encodings: number[];
  numValues: number;
  uncompressed: number;
  compressed: number;
  dataPageOffset: number;
  dictionaryPageOffset: number;
  nullCount: number;
  stats: [Uint8Array, Uint8Array] | null;
}

/** Collects the file's bytes as a list of parts (copied once, at the end). */
class FileParts {
  parts: Uint8Array[] = [];
  size = 0;
  push(b: Uint8Array): void {
    this.parts.push(b);
    this.size += b.length;
  }
  concat(): Uint8Array {
    return concatBytes(this.parts, this.size);
  }
}

interface PageOut {
  uncompressed: number;
  compressed: number;
}

/** Writes one page (header + compressed body) from `sink`'s bytes since `start`. */
function emitPage(
  file: FileParts,
  sink: ByteSink,
  start: number,
  options: WriterOptions,
  type: number,
  header: (w: CompactWriter) => void,
): PageOut {
  const raw = sink.view(start);
  const body = options.codec ? options.compress!(raw) : raw.slice();
  const w = new CompactWriter().i32(1, type).i32(2, raw.length).i32(3, body.length);
  header(w);
  const head = w.end().slice();
  file.push(head);
  file.push(body);
  sink.pos = start;
  return { uncompressed: head.length + raw.length, compressed: head.length + body.length };
}

const identity = (k: number) => k;

/** Where column chunks go, and the buffers they reuse. */
interface ChunkOutput {
  readonly file: FileParts;
  readonly sink: ByteSink;
  readonly scratch: Scratch;
  readonly options: WriterOptions;
}

/** Writes the column chunk of `leaf` for the `rows` rows of a row group whose values are `v`, yielding between pages. */
function* writeChunk(
  out: ChunkOutput,
  chunk: { leaf: Leaf; v: LeafValues; rows: number },
): Generator<void, ChunkMeta> {
  const { file, sink, scratch, options } = out, { leaf, v, rows } = chunk;
  const count = valueStart(v, rows);
  const dict = leaf.dictionary ? dictionaryEncode(v, leaf.type, count, scratch) : null;
  const entry = dict ? (k: number) => dict.entries[k] : identity;
  const meta: ChunkMeta = {
    leaf,
    encodings: dict ? [PLAIN, RLE, RLE_DICTIONARY] : [PLAIN, RLE],
    numValues: 0,
    uncompressed: 0,
    compressed: 0,
    dataPageOffset: 0,
    dictionaryPageOffset: -1,
    nullCount: 0,
    stats: statistics(leaf.type, v, dict ? dict.size : count, entry),
  };
  const add = (p: PageOut) => {
    meta.uncompressed += p.uncompressed;
    meta.compressed += p.compressed;
  };
  if (dict) {
    meta.dictionaryPageOffset = file.size;
    const start = sink.pos;
    plainValues(sink, leaf.type, v, dict.size, entry);
    const header = (w: CompactWriter) => w.struct(7, (d) => d.i32(1, dict.size).i32(2, PLAIN));
    add(emitPage(file, sink, start, options, DICTIONARY_PAGE, header));
  }
  meta.dataPageOffset = file.size;
  const width = dict ? bitWidth(Math.max(0, dict.size - 1)) : 0;
  const repeated = leaf.maxLevel > 0;
  const fixed = leaf.type !== "String" && leaf.type !== "LowCardinality(String)";
  let { rep, def } = scratch;
  let p0 = 0;
  while (p0 < rows) {
    // A page ends on a row boundary: after PAGE_ROWS rows or once its plain values pass PAGE_BYTES
    // (dictionary indices take a few bits a value: rows alone cut those pages).
    const pv0 = valueStart(v, p0);
    let p1 = Math.min(rows, p0 + PAGE_ROWS);
    if (dict) {
      while (p1 > p0 + 1 && valueStart(v, p1) - pv0 > PAGE_BYTES) p1 = p0 + ((p1 - p0) >> 1);
    } else if (fixed) {
      const width = fixedWidth(leaf.type);
      while (p1 > p0 + 1 && (valueStart(v, p1) - pv0) * width > PAGE_BYTES) p1 = p0 + ((p1 - p0) >> 1);
    } else {
      const cols = v.cols as StrColumn[], { src, idx } = v;
      let bytes = 0;
      for (let r = p0; r < p1; r++) {
        for (let j = valueStart(v, r), end = valueStart(v, r + 1); j < end; j++) {
          const o = cols[src[j]].offsets, i = idx[j];
          bytes += 4 + o[i + 1] - o[i];
        }
        if (bytes >= PAGE_BYTES) {
          p1 = r + 1;
          break;
        }
      }
    }
    const pv1 = valueStart(v, p1);
    const start = sink.pos;
    let levels = p1 - p0;
    if (repeated) {
      // Every row gives at least one level, every value one, and (lists of maps) every list element one.
      const elements = v.elemStart ? v.elemStart[p1] - v.elemStart[p0] : 0;
      const need = (p1 - p0) + (pv1 - pv0) + elements;
      if (rep.length < need) {
        rep = scratch.rep = new Uint8Array(need * 2);
        def = scratch.def = new Uint8Array(need * 2);
      }
      levels = levelsOf(v, p0, p1, rep, def);
      const levelWidth = bitWidth(leaf.maxLevel);
      for (const lv of [rep, def]) {
        const at = sink.pos;
        sink.u32le(0);
        writeHybrid(sink, lv, 0, levels, levelWidth);
        sink.u32leAt(at, sink.pos - at - 4);
      }
      for (let k = 0; k < levels; k++) if (def[k] < leaf.maxLevel) meta.nullCount++;
    }
    if (dict) {
      sink.byte(width);
      writeHybrid(sink, dict.indices, pv0, pv1, width);
    } else plainValues(sink, leaf.type, v, pv1 - pv0, (k) => pv0 + k);
    const encoding = dict ? RLE_DICTIONARY : PLAIN;
    const header = (w: CompactWriter) =>
      w.struct(5, (d) => d.i32(1, levels).i32(2, encoding).i32(3, RLE).i32(4, RLE));
    add(emitPage(file, sink, start, options, DATA_PAGE, header));
    meta.numValues += levels;
    p0 = p1;
    if (p0 < rows) yield;
  }
  return meta;
}

interface RowGroupMeta {
  chunks: ChunkMeta[];
  rows: number;
  offset: number;
}

/** Incremental file writer: row groups are appended one at a time, then `finish()` returns the file. */
export class ParquetFileWriter {
  readonly #def: TableDef;
  readonly #layout: Layout;
  readonly #options: WriterOptions;
  readonly #file = new FileParts();
  readonly #out: ChunkOutput;
  readonly #groups: RowGroupMeta[] = [];
  #rows = 0;

  constructor(def: TableDef, options: WriterOptions = {}) {
    if (options.codec && !options.compress) throw new TypeError("a codec needs a compress function");
    this.#def = def;
    this.#layout = layoutOf(def);
    this.#options = options;
    this.#out = { file: this.#file, sink: new ByteSink(), scratch: new Scratch(), options };
    this.#file.push(new Uint8Array([0x50, 0x41, 0x52, 0x31])); // "PAR1"
  }

  /** Appends all of `rows`, in their order, as row groups of at most `rowGroupRows` rows. */
  write(rows: Rows): void {
    const n = rows.length;
    this.writeOrdered({
      sources: [rows],
      from: new Uint32Array(n),
      rows: Uint32Array.from({ length: n }, (_, i) => i),
    });
  }

  /** Appends the rows of `group` (any number of sources, in the given order) as row groups. */
  writeOrdered(group: GroupRows): void {
    for (const _ of this.#steps(group));
  }

  /**
   * `writeOrdered`, awaiting `pause()` after every page (at most 20k rows or 1 MiB of values: a few
   * milliseconds of work), so a server can answer requests while a large batch is being encoded.
   */
  async writeOrderedAsync(group: GroupRows, pause: () => Promise<void>): Promise<void> {
    for (const _ of this.#steps(group)) await pause();
  }

  /** Writes the row groups of `group`, yielding after each page. */
  *#steps(group: GroupRows): Generator<void> {
    const size = this.#options.rowGroupRows ?? 131072;
    const n = group.from.length;
    for (let r0 = 0; r0 < n; r0 += size) {
      const r1 = Math.min(n, r0 + size);
      yield* this.#rowGroup({
        sources: group.sources,
        from: group.from.subarray(r0, r1),
        rows: group.rows.subarray(r0, r1),
      });
    }
  }

  *#rowGroup(group: GroupRows): Generator<void> {
    const offset = this.#file.size;
    const chunks: ChunkMeta[] = [];
    const columns = this.#def.columns;
    let values: { key: LeafValues; value: LeafValues } | undefined;
    let valuesOf = -1;
    for (const leaf of this.#layout.leaves) {
      // A map's key and value leaves share one expansion of the rows into entries.
      if (valuesOf !== leaf.column) {
        values = columnValues(columns[leaf.column], leaf.column, group, this.#out.scratch);
        valuesOf = leaf.column;
      }
      const v = leaf.part === "key" ? values!.key : values!.value;
      chunks.push(yield* writeChunk(this.#out, { leaf, v, rows: group.from.length }));
      yield;
    }
    this.#groups.push({ chunks, rows: group.from.length, offset });
    this.#rows += group.from.length;
  }

  /** Writes the footer and returns the whole file. */
  finish(): Uint8Array {
    const w = new CompactWriter();
    const codec = this.#options.codec ?? 0;
    w.i32(1, 1);
    w.structList(2, this.#layout.nodes, (s, n) => {
      if (n.type !== undefined) s.i32(1, n.type);
      if (n.repetition !== undefined) s.i32(3, n.repetition);
      s.string(4, n.name);
      if (n.children !== undefined) s.i32(5, n.children);
      if (n.converted !== undefined) s.i32(6, n.converted);
      if (n.logical) s.struct(10, (l) => n.logical!(l));
    });
    w.i64(3, this.#rows);
    w.structList(4, this.#groups, (g, group) => {
      g.structList(1, group.chunks, (c, m) => {
        const start = m.dictionaryPageOffset >= 0 ? m.dictionaryPageOffset : m.dataPageOffset;
        c.i64(2, start);
        c.struct(3, (md) => {
          md.i32(1, physicalOf[m.leaf.type]);
          md.i32List(2, m.encodings);
          md.stringList(3, m.leaf.path);
          md.i32(4, codec);
          md.i64(5, m.numValues);
          md.i64(6, m.uncompressed);
          md.i64(7, m.compressed);
          md.i64(9, m.dataPageOffset);
          if (m.dictionaryPageOffset >= 0) md.i64(11, m.dictionaryPageOffset);
          md.struct(12, (st) => {
            // The deprecated min/max too where they were defined (signed order), for older readers.
            const t = m.leaf.type;
            if (m.stats && (t === "DateTime64(9)" || t === "Int32" || t === "Float64")) {
              st.binary(1, m.stats[1]).binary(2, m.stats[0]);
            }
            st.i64(3, m.nullCount);
            if (m.stats) st.binary(5, m.stats[1]).binary(6, m.stats[0]).bool(7, true).bool(8, true);
          });
        });
      });
      g.i64(2, group.chunks.reduce((s, m) => s + m.uncompressed, 0));
      g.i64(3, group.rows);
      g.i64(5, group.offset);
      g.i64(6, group.chunks.reduce((s, m) => s + m.compressed, 0));
    });
    const kv: [string, string][] = [...(this.#options.metadata ?? []), [
      "ARROW:schema",
      this.#layout.arrowSchema,
    ]];
    w.structList(5, kv, (e, [k, v]) => e.string(1, k).string(2, v));
    if (this.#options.createdBy) w.string(6, this.#options.createdBy);
    w.structList(7, this.#layout.leaves, (o) => o.struct(1, () => {}));
    const footer = w.end();
    this.#file.push(footer.slice());
    const tail = new Uint8Array(8);
    new DataView(tail.buffer).setUint32(0, footer.length, true);
    tail.set([0x50, 0x41, 0x52, 0x31], 4);
    this.#file.push(tail);
    return this.#file.concat();
  }
}

/** Encodes `rows` as one Parquet file. */
export function writeParquetFile(rows: Rows, options: WriterOptions = {}): Uint8Array {
  const writer = new ParquetFileWriter(rows.def, options);
  writer.write(rows);
  return writer.finish();
}
