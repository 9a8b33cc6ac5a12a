/**
 * Reading back the Parquet files this project writes, for `compact`: the footer (row count, row groups,
 * key-value metadata) with a small Thrift compact-protocol reader, and the rows themselves as a `Rows`
 * of the table (parquet-wasm reads one row group at a time into Arrow; the Arrow buffers are copied into
 * the same column buffers the decoders fill), so they can be re-encoded by the server's own writer.
 *
 * @module
 */

import { type Data, tableFromIPC, Type } from "apache-arrow";
import { readParquet } from "parquet-wasm/esm";
import {
  type Column,
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
import { parquetReady } from "./parquet.ts";
import { hourOf, Rows } from "../table/rows.ts";
import type { TableDef } from "../table/schema.ts";

/** What `readFooter` reports. */
export interface ParquetFooter {
  readonly numRows: number;
  readonly rowGroups: number;
  /** Bytes of the file that are not column data: the magic numbers, the footer and its length. */
  readonly overheadBytes: number;
  /** Key-value metadata, in file order. */
  readonly keyValue: ReadonlyMap<string, string>;
}

const decoder = new TextDecoder();

/** A Thrift compact-protocol reader of the few things a footer needs; everything else is skipped. */
class CompactReader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  byte(): number {
    if (this.pos >= this.buf.length) throw new RangeError("truncated Parquet footer");
    return this.buf[this.pos++];
  }
  varint(): number {
    let v = 0, mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
    throw new RangeError("bad varint in Parquet footer");
  }
  zigzag(): number {
    const v = this.varint();
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }
  binary(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.buf.length) throw new RangeError("truncated Parquet footer");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** Reads a field header: [type, id], type 0 at the struct's end. */
  field(last: number): [number, number] {
    const b = this.byte();
    const type = b & 0x0f;
    if (type === 0) return [0, 0];
    const delta = b >> 4;
    return [type, delta ? last + delta : this.zigzag()];
  }
  /** A list header: [element type, size]. */
  list(): [number, number] {
    const b = this.byte();
    const size = b >> 4 === 15 ? this.varint() : b >> 4;
    return [b & 0x0f, size];
  }
  skip(type: number, depth = 0): void {
    if (depth > 64) throw new RangeError("Parquet footer nested too deeply");
    switch (type) {
      case 1:
      case 2:
        return; // booleans live in the field header
      case 3:
        this.pos++;
        return;
      case 4:
      case 5:
      case 6:
        this.varint();
        return;
      case 7:
        this.pos += 8;
        return;
      case 8:
        this.binary();
        return;
      case 9:
      case 10: {
        const [el, n] = this.list();
        for (let i = 0; i < n; i++) el === 1 || el === 2 ? this.pos++ : this.skip(el, depth + 1);
        return;
      }
      case 11: {
        const n = this.varint();
        if (n === 0) return;
        const kv = this.byte();
        for (let i = 0; i < n; i++) this.skip(kv >> 4, depth + 1), this.skip(kv & 0x0f, depth + 1);
        return;
      }
      case 12: {
        let last = 0;
        for (;;) {
          const [t, id] = this.field(last);
          if (t === 0) return;
          this.skip(t, depth + 1);
          last = id;
        }
      }
      default:
        throw new RangeError(`unknown Thrift type ${type} in Parquet footer`);
    }
  }
}

/** Reads a Parquet file's footer: row count, row groups and key-value metadata. Throws RangeError when it is not one. */
export function readFooter(file: Uint8Array): ParquetFooter {
  const n = file.length;
  const magic = (at: number) =>
    file[at] === 0x50 && file[at + 1] === 0x41 && file[at + 2] === 0x52 && file[at + 3] === 0x31;
  if (n < 12 || !magic(0) || !magic(n - 4)) throw new RangeError("not a Parquet file");
  const len = new DataView(file.buffer, file.byteOffset + n - 8, 4).getUint32(0, true);
  if (len > n - 12) throw new RangeError("Parquet footer longer than the file");
  const r = new CompactReader(file.subarray(n - 8 - len, n - 8));
  let numRows = -1, rowGroups = 0, last = 0;
  const keyValue = new Map<string, string>();
  for (;;) {
    const [type, id] = r.field(last);
    if (type === 0) break;
    if (id === 3 && type === 6) numRows = r.zigzag();
    else if (id === 4 && type === 9) {
      const [el, size] = r.list();
      rowGroups = size;
      for (let i = 0; i < size; i++) r.skip(el);
    } else if (id === 5 && type === 9) {
      const [, size] = r.list();
      for (let i = 0; i < size; i++) {
        let key = "", value = "", l = 0;
        for (;;) {
          const [t, f] = r.field(l);
          if (t === 0) break;
          if (f === 1 && t === 8) key = decoder.decode(r.binary());
          else if (f === 2 && t === 8) value = decoder.decode(r.binary());
          else r.skip(t);
          l = f;
        }
        keyValue.set(key, value);
      }
    } else r.skip(type);
    last = id;
  }
  if (numRows < 0) throw new RangeError("Parquet footer without a row count");
  return { numRows, rowGroups, overheadBytes: len + 12, keyValue };
}

// ---- Arrow data to column buffers ----

/** A column of `dst`'s class holding `data` (views over Arrow's buffers where the layouts agree). */
function plainColumn(dst: Column, data: Data): Column {
  if (data.offset !== 0) throw new RangeError("sliced Arrow data is not supported");
  const n = data.length;
  if (dst instanceof U64Column) {
    const v = data.values as BigInt64Array | BigUint64Array;
    const c = new U64Column(0);
    c.words = new Uint32Array(v.buffer, v.byteOffset, n * 2), c.length = n;
    return c;
  }
  if (dst instanceof F64Column) {
    const c = new F64Column(0);
    c.values = data.values as Float64Array, c.length = n;
    return c;
  }
  if (dst instanceof U32Column) {
    const v = data.values as Int32Array | Uint32Array;
    const c = new U32Column(0);
    c.values = new Uint32Array(v.buffer, v.byteOffset, n), c.length = n;
    return c;
  }
  if (dst instanceof U8Column) {
    const c = new U8Column(0);
    if (data.typeId === Type.Bool) {
      const bits = data.values as Uint8Array, out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = (bits[i >> 3] >> (i & 7)) & 1;
      c.values = out;
    } else c.values = data.values as Uint8Array;
    c.length = n;
    return c;
  }
  if (dst instanceof StrColumn || dst instanceof SharedStrColumn) return strColumn(data);
  if (dst instanceof MapColumn || dst instanceof SharedMapColumn || dst instanceof KeyedMapColumn) {
    return mapColumn(data);
  }
  if (dst instanceof ListColumn) {
    const c = new ListColumn(plainColumn(dst.child, data.children[0]), 0);
    c.offsets = data.valueOffsets as Int32Array, c.length = n;
    return c;
  }
  throw new RangeError(`cannot read ${String(data.type)} into ${dst.constructor.name}`);
}

function strColumn(data: Data): StrColumn {
  if (data.typeId !== Type.Utf8) throw new RangeError(`expected Utf8, found ${String(data.type)}`);
  const c = new StrColumn(0, 0);
  c.offsets = data.valueOffsets as Int32Array, c.bytes = data.values as Uint8Array, c.length = data.length;
  return c;
}

function mapColumn(data: Data): MapColumn {
  if (data.typeId !== Type.Map) throw new RangeError(`expected Map, found ${String(data.type)}`);
  const entries = data.children[0];
  const c = new MapColumn(0, 0) as MapColumn & { keys: StrColumn; values: StrColumn };
  (c as { keys: StrColumn }).keys = strColumn(entries.children[0]);
  (c as { values: StrColumn }).values = strColumn(entries.children[1]);
  c.offsets = data.valueOffsets as Int32Array, c.length = data.length;
  return c;
}

/** Whether strings `a` and `b` of a column hold the same bytes. */
function sameStr(c: StrColumn, a: number, b: number): boolean {
  const o = c.offsets, as = o[a], bs = o[b], len = o[a + 1] - as;
  if (o[b + 1] - bs !== len) return false;
  for (let i = 0; i < len; i++) if (c.bytes[as + i] !== c.bytes[bs + i]) return false;
  return true;
}

/** Whether maps `a` and `b` hold the same entries in the same order. */
function sameMap(m: MapColumn, a: number, b: number): boolean {
  const o = m.offsets, n = o[a + 1] - o[a];
  if (o[b + 1] - o[b] !== n) return false;
  for (let i = 0; i < n; i++) {
    if (!sameStr(m.keys, o[a] + i, o[b] + i) || !sameStr(m.values, o[a] + i, o[b] + i)) return false;
  }
  return true;
}

/** Appends `data`'s rows to `dst`, whatever its class (shared and keyed columns store runs and key lists once). */
function appendData(dst: Column, data: Data): void {
  const src = plainColumn(dst, data);
  const n = src.length;
  if (dst instanceof SharedStrColumn) {
    const s = src as StrColumn;
    for (let i = 0; i < n;) {
      let j = i + 1;
      while (j < n && sameStr(s, i, j)) j++;
      dst.pushRepeated(s.bytes.subarray(s.offsets[i], s.offsets[i + 1]), j - i);
      i = j;
    }
  } else if (dst instanceof SharedMapColumn) {
    const m = src as MapColumn;
    for (let i = 0; i < n;) {
      let j = i + 1;
      while (j < n && sameMap(m, i, j)) j++;
      dst.pushId(dst.addMap(m, i), j - i);
      i = j;
    }
  } else if (dst instanceof KeyedMapColumn) {
    const m = src as MapColumn, ko = m.keys.offsets;
    let starts = new Int32Array(16), ends = new Int32Array(16);
    for (let r = 0; r < n; r++) {
      const from = m.offsets[r], to = m.offsets[r + 1], k = to - from;
      if (k > starts.length) starts = new Int32Array(k * 2), ends = new Int32Array(k * 2);
      for (let e = 0; e < k; e++) starts[e] = ko[from + e], ends[e] = ko[from + e + 1];
      dst.values.child.appendRange(m.values, from, to);
      dst.closeRow(k, m.keys.bytes, starts, ends);
    }
  } else {
    dst.appendRange(src, 0, n);
  }
}

/**
 * Reads a Parquet file of `def`'s table (as this project writes them) into a `Rows`, one row group at a
 * time. Every row is put in the partition of the first row (service and event hour): a file holds one.
 * Needs parquet-wasm initialised (`initParquet`).
 */
export function parquetToRows(file: Uint8Array, def: TableDef): Rows {
  if (!parquetReady()) throw new Error("parquet-wasm is not initialised: call initParquet() first");
  const footer = readFooter(file);
  const rows = new Rows(def, Math.min(footer.numRows, 1 << 20));
  for (let g = 0; g < footer.rowGroups; g++) {
    const table = tableFromIPC(readParquet(file, { rowGroups: [g] }).intoIPCStream());
    for (const batch of table.batches) {
      def.columns.forEach((col, i) => {
        const child = batch.getChild(col.name);
        if (!child) throw new RangeError(`the file has no column ${col.name}: not a ${def.name} file`);
        appendData(rows.columns[i], child.data[0]);
      });
    }
  }
  const n = rows.columns[0].length;
  for (const c of rows.columns) {
    if (c.length !== n) throw new RangeError("the file's columns differ in length");
  }
  if (n !== footer.numRows) throw new RangeError(`read ${n} rows, the footer says ${footer.numRows}`);
  if (n > 0) {
    const words = rows.time.words;
    const service = rows.col<SharedStrColumn>("ServiceName").get(0);
    rows.assignAll({ service, hour: hourOf(words[0], words[1]) }, n);
  }
  return rows;
}
