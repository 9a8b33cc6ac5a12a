/**
 * A Parquet writer for the seven tables, in TypeScript, reading the column buffers directly: no Arrow
 * IPC, no copy into wasm. It writes what parquet-wasm (arrow-rs) writes for the same Arrow schema: the
 * same Parquet schema (required fields, `MAP` over a repeated `key_value` group, `LIST` over a repeated
 * `list` group of `element`, `TIMESTAMP(NANOS, UTC)`, unsigned integer annotations), the Arrow schema in
 * the `ARROW:schema` key, data pages v1, dictionary encoding with a fallback to plain encoding, and
 * statistics per column chunk (long strings' bounds truncated). Beyond what parquet-wasm can write, it
 * adds split-block bloom filters on the id columns of BLOOM_COLUMNS; both write a page index
 * (`parquet_index.ts` holds those structures). Page compression is a function the platform supplies (zstd
 * from `node:zlib` on Deno and Bun), so the core stays pure.
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
} from "../table/columns.ts";
import type { Rows } from "../table/rows.ts";
import { type ColumnDef, isIdColumn, type TableDef, type ValueType } from "../table/schema.ts";
import { CompactWriter } from "./thrift.ts";
import { InternalError } from "../errors.ts";
import {
  ASCENDING,
  BloomFilter,
  bloomFilterBytes,
  type ColumnIndex,
  columnIndexBytes,
  DESCENDING,
  distinctHashes,
  offsetIndexBytes,
  type PageLocation,
  STAT_BYTES,
  truncateMax,
  truncateMin,
  UNORDERED,
} from "./parquet_index.ts";
import { xxh64Out, xxh64Range } from "./xxh64.ts";

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
  /** A data page ends after this many rows (or PAGE_BYTES of values); default 20,000. */
  pageRows?: number;
  /** Write a page index (ColumnIndex and OffsetIndex) for every column chunk; default true. */
  pageIndex?: boolean;
  /**
   * False-positive rate the bloom filters (of BLOOM_COLUMNS) are sized for, from each row group's distinct
   * values; default 0.01. 0 writes none.
   */
  bloomFilterFpp?: number;
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
  /** Whether the leaf's column chunks get a bloom filter (see BLOOM_COLUMNS). */
  readonly bloom: boolean;
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

/**
 * The columns that get a bloom filter per row group: high-cardinality strings that are looked up by
 * equality, where min/max cannot help (random ids in rows sorted by time). "Find trace X" reads the
 * `TraceId` of spans and logs; "span X" (a trace view's link, logs of a span) the `SpanId`. Not
 * `ParentSpanId` (children are found within a trace, which `TraceId` already narrows to its row groups),
 * not the ids inside lists (`Links.*`, `Exemplars.*`: readers do not test list elements against bloom
 * filters), not attribute values (map elements: likewise) nor `Body` (searched by words, not equality),
 * and not low-cardinality columns such as `ServiceName` (their dictionary and min/max already answer).
 */
export const BLOOM_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  otel_traces: ["TraceId", "SpanId"],
  otel_logs: ["TraceId", "SpanId"],
};

function leavesOf(def: ColumnDef, column: number, table: string): Leaf[] {
  const idColumn = isIdColumn(def.name);
  const bloom = !def.list && def.type === "String" && (BLOOM_COLUMNS[table] ?? []).includes(def.name);
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
      bloom: false,
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
    bloom,
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
    leaves.push(...leavesOf(c, i, def.name));
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
  #u32 = Array.from({ length: 7 }, () => new Uint32Array(0));
  #i32 = [new Int32Array(0), new Int32Array(0)];
  /**
   * Uint32 buffer `slot`: 0-1 the first expansion (or a shared string column's ids), 2-3 the second
   * expansion (or a shared map's row ids, a keyed map's key indices), 4 dictionary indices, 5-6 the
   * hashes of a bloom filter's values.
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

/** Compares bytes `a[as, ae)` and `b[bs, be)` unsigned, lexicographically (Parquet's string order). */
function compareBytes(a: Uint8Array, as: number, ae: number, b: Uint8Array, bs: number, be: number): number {
  const n = Math.min(ae - as, be - bs);
  for (let m = 0; m < n; m++) if (a[as + m] !== b[bs + m]) return a[as + m] - b[bs + m];
  return (ae - as) - (be - bs);
}

/** Compares values `a` and `b` of a leaf in the Parquet order of its type (Float64: neither is NaN). */
function compareAt(type: LeafType, v: LeafValues, a: number, b: number): number {
  const { cols, src, idx } = v;
  switch (type) {
    case "String":
    case "LowCardinality(String)": {
      const ca = cols[src[a]] as StrColumn, cb = cols[src[b]] as StrColumn, ia = idx[a], ib = idx[b];
      return compareBytes(
        ca.bytes,
        ca.offsets[ia],
        ca.offsets[ia + 1],
        cb.bytes,
        cb.offsets[ib],
        cb.offsets[ib + 1],
      );
    }
    case "DateTime64(9)":
    case "UInt64": {
      const wa = (cols[src[a]] as U64Column).words, wb = (cols[src[b]] as U64Column).words;
      const ia = idx[a] * 2, ib = idx[b] * 2;
      let ha = wa[ia + 1], hb = wb[ib + 1];
      if (type === "DateTime64(9)") ha |= 0, hb |= 0;
      return ha !== hb ? ha - hb : wa[ia] - wb[ib];
    }
    case "Float64": {
      const x = (cols[src[a]] as F64Column).values[idx[a]], y = (cols[src[b]] as F64Column).values[idx[b]];
      return x < y ? -1 : x > y ? 1 : 0;
    }
    default: {
      let x = (cols[src[a]] as U8Column | U32Column).values[idx[a]];
      let y = (cols[src[b]] as U8Column | U32Column).values[idx[b]];
      if (type === "Int32") x |= 0, y |= 0;
      return x - y;
    }
  }
}

/**
 * The positions of the least and greatest of values `[from, to)` of a leaf, or null when there are none
 * to bound (no values, or only NaNs: NaN is left out of Parquet statistics).
 */
function pageBounds(type: LeafType, v: LeafValues, from: number, to: number): [number, number] | null {
  if (to <= from) return null;
  const { cols, src, idx } = v;
  switch (type) {
    case "String":
    case "LowCardinality(String)": {
      // The current minimum and maximum are kept as (bytes, start, length), so each value is compared
      // without looking them up again (this loop was 5 % of the server's time).
      const strs = cols as StrColumn[];
      let min = from, max = min;
      let c = strs[src[min]], i = idx[min];
      let minB = c.bytes, minS = c.offsets[i], minL = c.offsets[i + 1] - minS;
      let maxB = minB, maxS = minS, maxL = minL;
      for (let j = from + 1; j < to; j++) {
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
      return [min, max];
    }
    case "DateTime64(9)":
    case "UInt64": {
      const signed = type === "DateTime64(9)";
      let min = from, max = from;
      let c = cols[src[from]] as U64Column;
      let minH = signed ? c.words[idx[from] * 2 + 1] | 0 : c.words[idx[from] * 2 + 1],
        minL = c.words[idx[from] * 2];
      let maxH = minH, maxL = minL;
      for (let j = from + 1; j < to; j++) {
        c = cols[src[j]] as U64Column;
        const w = c.words, i = idx[j] * 2, h = signed ? w[i + 1] | 0 : w[i + 1], l = w[i];
        if (h < minH || (h === minH && l < minL)) min = j, minH = h, minL = l;
        if (h > maxH || (h === maxH && l > maxL)) max = j, maxH = h, maxL = l;
      }
      return [min, max];
    }
    case "Float64": {
      let min = -1, max = -1, lo = Infinity, hi = -Infinity;
      for (let j = from; j < to; j++) {
        const x = (cols[src[j]] as F64Column).values[idx[j]];
        if (x !== x) continue;
        if (min < 0 || x < lo) min = j, lo = x;
        if (max < 0 || x > hi) max = j, hi = x;
      }
      return min < 0 ? null : [min, max];
    }
    default: {
      const signed = type === "Int32";
      let min = from, max = from, lo = Infinity, hi = -Infinity;
      for (let j = from; j < to; j++) {
        const w = (cols[src[j]] as U8Column | U32Column).values[idx[j]];
        const x = signed ? w | 0 : w;
        if (x < lo) min = j, lo = x;
        if (x > hi) max = j, hi = x;
      }
      return [min, max];
    }
  }
}

/**
 * Value `j` of a leaf as a Parquet statistics bound: its plain bytes; strings longer than STAT_BYTES
 * truncated (a prefix as a minimum, an incremented prefix as a maximum; null when no maximum shorter than
 * the value exists). Zero is -0 as a minimum and +0 as a maximum, as the specification asks.
 */
function boundBytes(type: LeafType, v: LeafValues, j: number, max: boolean): Uint8Array | null {
  const { cols, src, idx } = v;
  switch (type) {
    case "String":
    case "LowCardinality(String)": {
      const c = cols[src[j]] as StrColumn, s = c.offsets[idx[j]], e = c.offsets[idx[j] + 1];
      return max ? truncateMax(c.bytes, s, e) : truncateMin(c.bytes, s, e);
    }
    case "DateTime64(9)":
    case "UInt64": {
      const w = (cols[src[j]] as U64Column).words, i = idx[j] * 2;
      return new Uint8Array(new Uint32Array([w[i], w[i + 1]]).buffer);
    }
    case "Float64": {
      let x = (cols[src[j]] as F64Column).values[idx[j]];
      if (x === 0) x = max ? 0 : -0;
      return new Uint8Array(new Float64Array([x]).buffer);
    }
    default: {
      const x = (cols[src[j]] as U8Column | U32Column).values[idx[j]];
      const size = type === "Bool" ? 1 : 4, b = new Uint8Array(size);
      for (let i = 0; i < size; i++) b[i] = (x >>> (8 * i)) & 0xff;
      return b;
    }
  }
}

/** Whether value `j` of a string leaf is longer than its statistics bound (so the bound is not exact). */
function truncated(type: LeafType, v: LeafValues, j: number): boolean {
  if (type !== "String" && type !== "LowCardinality(String)") return false;
  const c = v.cols[v.src[j]] as StrColumn, i = v.idx[j];
  return c.offsets[i + 1] - c.offsets[i] > STAT_BYTES;
}

/** A column chunk's statistics bounds; either may be missing (a maximum with no short upper bound). */
interface Bounds {
  min: Uint8Array | null;
  max: Uint8Array | null;
  minExact: boolean;
  maxExact: boolean;
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
  stats: Bounds | null;
  /** Where each data page starts (OffsetIndex). */
  pages: PageLocation[];
  /** The chunk's ColumnIndex, or null when a page has values but no bounds (only NaNs; no short maximum). */
  columnIndex: ColumnIndex | null;
  /** The bloom filter, for the leaves that have one. */
  bloom: BloomFilter | null;
  /** Where the bloom filter, column index and offset index were written (set when written). */
  bloomAt: number;
  bloomLength: number;
  columnIndexAt: number;
  columnIndexLength: number;
  offsetIndexAt: number;
  offsetIndexLength: number;
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

/**
 * Order of the dictionary entries of a chunk: `rank[e]` is entry e's place among the entries sorted by
 * value, `sorted[r]` the entry at place r. Page bounds then come from the least and greatest rank of
 * their indices (integers) instead of comparing every value.
 */
function dictionaryOrder(
  type: LeafType,
  v: LeafValues,
  dict: { entries: Int32Array; size: number },
): { rank: Int32Array; sorted: Int32Array } {
  const sorted = Int32Array.from({ length: dict.size }, (_, e) => e);
  const at = dict.entries;
  sorted.sort((a, b) => compareAt(type, v, at[a], at[b]));
  const rank = new Int32Array(dict.size);
  for (let r = 0; r < dict.size; r++) rank[sorted[r]] = r;
  return { rank, sorted };
}

/** The bloom filter of a leaf's `count` values (strings), sized for their distinct count. */
function bloomFilterOf(v: LeafValues, count: number, fpp: number, scratch: Scratch): BloomFilter {
  const high = scratch.u32(5, count), low = scratch.u32(6, count);
  const cols = v.cols as StrColumn[], { src, idx } = v;
  let pb: Uint8Array = new Uint8Array(0), ps = 0, pl = -1;
  for (let j = 0; j < count; j++) {
    const c = cols[src[j]], i = idx[j], b = c.bytes, s = c.offsets[i], l = c.offsets[i + 1] - s;
    // A value equal to the previous one (a log record's trace id, repeated by the records of one span)
    // reuses its hash: one compare instead of a hash (~0.1-0.4 µs).
    if (l === pl) {
      let m = 0;
      while (m < l && b[s + m] === pb[ps + m]) m++;
      if (m === l) {
        high[j] = high[j - 1], low[j] = low[j - 1];
        continue;
      }
    }
    xxh64Range(b, s, s + l);
    high[j] = xxh64Out.high, low[j] = xxh64Out.low;
    pb = b, ps = s, pl = l;
  }
  const filter = new BloomFilter(bloomFilterBytes(distinctHashes(high, low, count), fpp));
  for (let j = 0; j < count; j++) filter.insert(high[j], low[j]);
  return filter;
}

/** Writes the column chunk of `leaf` for the `rows` rows of a row group whose values are `v`, yielding between pages. */
function* writeChunk(
  out: ChunkOutput,
  chunk: { leaf: Leaf; v: LeafValues; rows: number },
): Generator<void, ChunkMeta> {
  const { file, sink, scratch, options } = out, { leaf, v, rows } = chunk;
  const { type } = leaf;
  const count = valueStart(v, rows);
  const dict = leaf.dictionary ? dictionaryEncode(v, type, count, scratch) : null;
  const entry = dict ? (k: number) => dict.entries[k] : identity;
  const fpp = options.bloomFilterFpp ?? 0.01;
  const meta: ChunkMeta = {
    leaf,
    encodings: dict ? [PLAIN, RLE, RLE_DICTIONARY] : [PLAIN, RLE],
    numValues: 0,
    uncompressed: 0,
    compressed: 0,
    dataPageOffset: 0,
    dictionaryPageOffset: -1,
    nullCount: 0,
    stats: null,
    pages: [],
    columnIndex: null,
    bloom: leaf.bloom && fpp > 0 ? bloomFilterOf(v, count, fpp, scratch) : null,
    bloomAt: -1,
    bloomLength: 0,
    columnIndexAt: -1,
    columnIndexLength: 0,
    offsetIndexAt: -1,
    offsetIndexLength: 0,
  };
  const add = (p: PageOut) => {
    meta.uncompressed += p.uncompressed;
    meta.compressed += p.compressed;
  };
  const order = dict ? dictionaryOrder(type, v, dict) : null;
  if (dict) {
    meta.dictionaryPageOffset = file.size;
    const start = sink.pos;
    plainValues(sink, type, v, dict.size, entry);
    const header = (w: CompactWriter) => w.struct(7, (d) => d.i32(1, dict.size).i32(2, PLAIN));
    add(emitPage(file, sink, start, options, DICTIONARY_PAGE, header));
  }
  meta.dataPageOffset = file.size;
  const width = dict ? bitWidth(Math.max(0, dict.size - 1)) : 0;
  const repeated = leaf.maxLevel > 0;
  const fixed = type !== "String" && type !== "LowCardinality(String)";
  // Per data page: the positions of its least and greatest value (-1: none), and its null count.
  const pageMin: number[] = [], pageMax: number[] = [], pageNulls: number[] = [];
  let boundless = false;
  let { rep, def } = scratch;
  let p0 = 0;
  while (p0 < rows) {
    // A page ends on a row boundary: after PAGE_ROWS rows or once its plain values pass PAGE_BYTES
    // (dictionary indices take a few bits a value: rows alone cut those pages).
    const pv0 = valueStart(v, p0);
    let p1 = Math.min(rows, p0 + (options.pageRows ?? PAGE_ROWS));
    if (dict) {
      while (p1 > p0 + 1 && valueStart(v, p1) - pv0 > PAGE_BYTES) p1 = p0 + ((p1 - p0) >> 1);
    } else if (fixed) {
      const width = fixedWidth(type);
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
    // The page's bounds: by dictionary rank, or by comparing its values.
    let bounds: [number, number] | null = null;
    if (order && pv1 > pv0) {
      const rank = order.rank, indices = dict!.indices;
      let lo = rank[indices[pv0]], hi = lo;
      for (let j = pv0 + 1; j < pv1; j++) {
        const r = rank[indices[j]];
        if (r < lo) lo = r;
        else if (r > hi) hi = r;
      }
      bounds = [dict!.entries[order.sorted[lo]], dict!.entries[order.sorted[hi]]];
    } else if (!order) bounds = pageBounds(type, v, pv0, pv1);
    if (!bounds && pv1 > pv0) boundless = true;
    pageMin.push(bounds ? bounds[0] : -1), pageMax.push(bounds ? bounds[1] : -1);
    const start = sink.pos;
    let levels = p1 - p0, nulls = 0;
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
      for (let k = 0; k < levels; k++) if (def[k] < leaf.maxLevel) nulls++;
    }
    meta.nullCount += nulls;
    pageNulls.push(nulls);
    if (dict) {
      sink.byte(width);
      writeHybrid(sink, dict.indices, pv0, pv1, width);
    } else plainValues(sink, type, v, pv1 - pv0, (k) => pv0 + k);
    const encoding = dict ? RLE_DICTIONARY : PLAIN;
    const header = (w: CompactWriter) =>
      w.struct(5, (d) => d.i32(1, levels).i32(2, encoding).i32(3, RLE).i32(4, RLE));
    const offset = file.size;
    const page = emitPage(file, sink, start, options, DATA_PAGE, header);
    add(page);
    meta.pages.push({ offset, size: page.compressed, firstRow: p0 });
    meta.numValues += levels;
    p0 = p1;
    if (p0 < rows) yield;
  }
  // The chunk's bounds are the least page minimum and the greatest page maximum.
  let min = -1, max = -1;
  for (let p = 0; p < pageMin.length; p++) {
    if (pageMin[p] < 0) continue;
    if (min < 0 || compareAt(type, v, pageMin[p], min) < 0) min = pageMin[p];
    if (max < 0 || compareAt(type, v, pageMax[p], max) > 0) max = pageMax[p];
  }
  if (min >= 0) {
    meta.stats = {
      min: boundBytes(type, v, min, false),
      max: boundBytes(type, v, max, true),
      minExact: !truncated(type, v, min),
      maxExact: !truncated(type, v, max),
    };
  }
  if (options.pageIndex !== false && !boundless) {
    meta.columnIndex = columnIndexOf(type, v, pageMin, pageMax, pageNulls);
  }
  return meta;
}

/** The ColumnIndex of a chunk from its pages' bound positions, or null when a maximum has no short bound. */
function columnIndexOf(
  type: LeafType,
  v: LeafValues,
  pageMin: number[],
  pageMax: number[],
  pageNulls: number[],
): ColumnIndex | null {
  const ci: ColumnIndex = {
    nullPages: [],
    mins: [],
    maxes: [],
    boundaryOrder: UNORDERED,
    nullCounts: pageNulls,
  };
  const none = new Uint8Array(0);
  for (let p = 0; p < pageMin.length; p++) {
    if (pageMin[p] < 0) {
      ci.nullPages.push(true), ci.mins.push(none), ci.maxes.push(none);
      continue;
    }
    const hi = boundBytes(type, v, pageMax[p], true);
    if (!hi) return null;
    ci.nullPages.push(false), ci.mins.push(boundBytes(type, v, pageMin[p], false)!), ci.maxes.push(hi);
  }
  // Ascending (or descending) when the pages' bounds are, in the order the written bounds compare (strings
  // as their truncated bytes): readers may then binary-search them. Pages without values do not count.
  const str = type === "String" || type === "LowCardinality(String)";
  const cmp = (a: number, b: number, list: Uint8Array[], pos: number[]) =>
    str
      ? compareBytes(list[a], 0, list[a].length, list[b], 0, list[b].length)
      : compareAt(type, v, pos[a], pos[b]);
  let up = true, down = true;
  for (let p = 0, last = -1; p < pageMin.length; p++) {
    if (pageMin[p] < 0) continue;
    if (last >= 0) {
      const a = cmp(last, p, ci.mins, pageMin), b = cmp(last, p, ci.maxes, pageMax);
      if (a > 0 || b > 0) up = false;
      if (a < 0 || b < 0) down = false;
    }
    last = p;
  }
  ci.boundaryOrder = up ? ASCENDING : down ? DESCENDING : UNORDERED;
  return ci;
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
    // Bloom filters follow their row group's column chunks (as arrow-rs writes them by default).
    for (const m of chunks) {
      if (!m.bloom) continue;
      const bytes = m.bloom.serialize();
      m.bloomAt = this.#file.size, m.bloomLength = bytes.length;
      this.#file.push(bytes);
      m.bloom = null;
    }
    this.#groups.push({ chunks, rows: group.from.length, offset });
    this.#rows += group.from.length;
  }

  /** Writes the footer and returns the whole file. */
  finish(): Uint8Array {
    // The page index goes between the last row group and the footer: every column index, then every
    // offset index (PageIndex.md; the order arrow-rs and parquet-java write them in).
    for (const group of this.#groups) {
      for (const m of group.chunks) {
        if (!m.columnIndex) continue;
        const bytes = columnIndexBytes(m.columnIndex);
        m.columnIndexAt = this.#file.size, m.columnIndexLength = bytes.length;
        this.#file.push(bytes);
      }
    }
    if (this.#options.pageIndex !== false) {
      for (const group of this.#groups) {
        for (const m of group.chunks) {
          const bytes = offsetIndexBytes(m.pages);
          m.offsetIndexAt = this.#file.size, m.offsetIndexLength = bytes.length;
          this.#file.push(bytes);
        }
      }
    }
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
        // file_offset is deprecated; the specification now asks writers for 0 (it once pointed at a
        // copy of the metadata after the chunk, which no writer keeps).
        c.i64(2, 0);
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
            const t = m.leaf.type, b = m.stats;
            if (b && (t === "DateTime64(9)" || t === "Int32" || t === "Float64")) {
              st.binary(1, b.max!).binary(2, b.min!);
            }
            st.i64(3, m.nullCount);
            if (b?.max) st.binary(5, b.max);
            if (b?.min) st.binary(6, b.min);
            if (b?.max) st.bool(7, b.maxExact);
            if (b?.min) st.bool(8, b.minExact);
          });
          if (m.bloomAt >= 0) md.i64(14, m.bloomAt).i32(15, m.bloomLength);
        });
        if (m.offsetIndexAt >= 0) c.i64(4, m.offsetIndexAt).i32(5, m.offsetIndexLength);
        if (m.columnIndexAt >= 0) c.i64(6, m.columnIndexAt).i32(7, m.columnIndexLength);
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
