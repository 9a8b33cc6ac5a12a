/**
 * Column buffers to Arrow, with `makeData` over the buffers themselves (no per-value Builders, which are
 * slower and use `new Function`, refused by Workers). Types are those ClickHouse reads back as its own:
 * required fields, `Timestamp(ns, "UTC")`, `Map<Utf8, Utf8>` over a non-null entries struct.
 *
 * @module
 */

import {
  Bool,
  type Data,
  type DataType,
  Field,
  Float64,
  Int32,
  List,
  makeData,
  Map_,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Timestamp,
  TimeUnit,
  Uint32,
  Uint64,
  Uint8,
  Utf8,
} from "apache-arrow";
import {
  type Column,
  type F64Column,
  KeyedMapColumn,
  type ListColumn,
  type MapColumn,
  SharedMapColumn,
  SharedStrColumn,
  type StrColumn,
  type U32Column,
  type U64Column,
  type U8Column,
} from "../table/columns.ts";
import { InternalError } from "../errors.ts";
import type { Rows } from "../table/rows.ts";
import type { ColumnDef, TableDef, ValueType } from "../table/schema.ts";

function entriesType(): Struct {
  return new Struct([new Field("key", new Utf8(), false), new Field("value", new Utf8(), false)]);
}

function scalarType(t: ValueType): DataType {
  switch (t) {
    case "DateTime64(9)":
      return new Timestamp(TimeUnit.NANOSECOND, "UTC");
    case "String":
    case "LowCardinality(String)":
      return new Utf8();
    case "UInt8":
      return new Uint8();
    case "UInt32":
      return new Uint32();
    case "UInt64":
      return new Uint64();
    case "Int32":
      return new Int32();
    case "Float64":
      return new Float64();
    case "Bool":
      return new Bool();
    case "Map": {
      // The Parquet spec and ClickHouse name the repeated map group "key_value"; the Parquet writer
      // takes the name from this field, but apache-arrow's Map_ constructor renames it to "entries".
      const map = new Map_(new Field("entries", entriesType(), false), false);
      (map as { children: Field[] }).children = [new Field("key_value", entriesType(), false)];
      return map;
    }
  }
}

function fieldType(def: ColumnDef): DataType {
  const t = scalarType(def.type);
  return def.list ? new List(new Field("element", t, false)) : t;
}

/** The Arrow schema of a table. */
export function arrowSchema(table: TableDef): Schema {
  return new Schema(table.columns.map((c) => new Field(c.name, fieldType(c), false)));
}

function strData(col: StrColumn): Data {
  return makeData({
    type: new Utf8(),
    length: col.length,
    nullCount: 0,
    valueOffsets: col.offsets.subarray(0, col.length + 1),
    data: col.bytes.subarray(0, col.offsets[col.length]),
  });
}

function scalarData(type: ValueType, col: Column): Data {
  switch (type) {
    case "DateTime64(9)": {
      const c = col as U64Column;
      return makeData({
        type: new Timestamp(TimeUnit.NANOSECOND, "UTC"),
        length: c.length,
        nullCount: 0,
        data: c.signedView(),
      });
    }
    case "UInt64": {
      const c = col as U64Column;
      return makeData({ type: new Uint64(), length: c.length, nullCount: 0, data: c.unsignedView() });
    }
    case "String":
    case "LowCardinality(String)":
      return strData(col instanceof SharedStrColumn ? checked(col).toStrColumn() : col as StrColumn);
    case "UInt8": {
      const c = col as U8Column;
      return makeData({ type: new Uint8(), length: c.length, nullCount: 0, data: c.view() });
    }
    case "Bool": {
      const c = col as U8Column;
      const bits = new Uint8Array((c.length + 7) >> 3);
      for (let i = 0; i < c.length; i++) if (c.values[i]) bits[i >> 3] |= 1 << (i & 7);
      return makeData({ type: new Bool(), length: c.length, nullCount: 0, data: bits });
    }
    case "UInt32": {
      const c = col as U32Column;
      return makeData({ type: new Uint32(), length: c.length, nullCount: 0, data: c.view() });
    }
    case "Int32": {
      const c = col as U32Column;
      return makeData({
        type: new Int32(),
        length: c.length,
        nullCount: 0,
        data: new Int32Array(c.view().buffer, 0, c.length),
      });
    }
    case "Float64": {
      const c = col as F64Column;
      return makeData({ type: new Float64(), length: c.length, nullCount: 0, data: c.view() });
    }
    case "Map": {
      // Arrow has no layout for maps stored once, or keys stored once: expand.
      const c = col instanceof SharedMapColumn || col instanceof KeyedMapColumn
        ? checked(col).toMapColumn()
        : col as MapColumn;
      const n = c.keys.length;
      const entries = makeData({
        type: entriesType(),
        length: n,
        nullCount: 0,
        children: [strData(c.keys), strData(c.values)],
      });
      return makeData({
        type: scalarType("Map") as Map_,
        length: c.length,
        nullCount: 0,
        valueOffsets: c.offsets.subarray(0, c.length + 1),
        child: entries,
      });
    }
  }
}

/**
 * `col` after checking that every row refers to one of its distinct values (and, for keyed maps, to a
 * key list as long as its values): an index past them (a bug upstream) would be expanded from whatever
 * lies beyond, into a broken file. Throws an InternalError instead.
 */
function checked<C extends SharedStrColumn | SharedMapColumn | KeyedMapColumn>(col: C): C {
  const shared: { ids: Uint32Array; distinct: { length: number } } = col instanceof KeyedMapColumn
    ? col.keyLists
    : col as SharedStrColumn | SharedMapColumn;
  const ids = shared.ids, size = shared.distinct.length;
  for (let r = 0; r < col.length; r++) {
    const id = ids[r];
    let ok = id < size;
    if (ok && col instanceof KeyedMapColumn) {
      const l = col.lists.offsets, v = col.values.offsets;
      ok = l[id + 1] - l[id] === v[r + 1] - v[r];
    }
    if (!ok) throw new InternalError(`dictionary index ${id} out of range (${size} values): nothing written`);
  }
  return col;
}

function columnData(def: ColumnDef, col: Column): Data {
  if (!def.list) return scalarData(def.type, col);
  const list = col as ListColumn;
  return makeData({
    type: fieldType(def) as List,
    length: list.length,
    nullCount: 0,
    valueOffsets: list.offsets.subarray(0, list.length + 1),
    child: scalarData(def.type, list.child),
  });
}

/** The rows as an Arrow table (zero-copy over the column buffers where the layouts agree). */
export function toArrowTable(rows: Rows): Table {
  const schema = arrowSchema(rows.def);
  const children = rows.def.columns.map((def, i) => columnData(def, rows.columns[i]));
  const data = makeData({ type: new Struct(schema.fields), length: rows.length, nullCount: 0, children });
  return new Table([new RecordBatch(schema, data)]);
}
