/**
 * Snapshots of columns and rows (what crosses between the server's main thread and its worker threads):
 * every column class, and the rows of every table of every signal, come back from a snapshot, through
 * `structuredClone` with their buffers transferred as `postMessage` moves them (or shared, in one
 * SharedArrayBuffer), holding the same rows and encoding to byte-identical Parquet.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { decodeRequest, encodeBatch, type Format } from "../convert.ts";
import {
  type Column,
  type ColumnSnapshot,
  eachArray,
  F64Column,
  inSharedMemory,
  isShared,
  KeyedMapColumn,
  ListColumn,
  MapColumn,
  SharedMapColumn,
  SharedStrColumn,
  shareSnapshot,
  snapshotBuffers,
  StrColumn,
  U32Column,
  U64Column,
  U8Column,
} from "./columns.ts";
import { Rows, rowsBuffers, type RowsSnapshot } from "./rows.ts";
import { type Signal, TABLES } from "./schema.ts";

const DATA = fileURLToPath(new URL("../../../../shared/testdata/otlp2parquet-rust/", import.meta.url));
const enc = new TextEncoder();

/** Moves a snapshot as `postMessage` does: a structured clone with every buffer transferred. */
function moved<T extends ColumnSnapshot | RowsSnapshot[]>(s: T, buffers: ArrayBuffer[]): T {
  return structuredClone(s, { transfer: buffers });
}

/**
 * Shares a snapshot as the worker threads do: its rows' arrays copied into one SharedArrayBuffer, and a
 * structured clone without a transfer list (what `postMessage` does with shared memory: both sides then
 * read the same bytes).
 */
function shared<T extends ColumnSnapshot | RowsSnapshot[]>(view: T): T {
  const s = shareSnapshot(view);
  const memory = new Set<ArrayBufferLike>();
  eachArray(s, (a) => {
    if (isShared(a.buffer)) return void memory.add(a.buffer);
    assert.ok(a.byteLength <= 256, `only a small cache may be left out of shared memory (${a.byteLength})`);
  });
  assert.equal(memory.size, 1, "one SharedArrayBuffer holds the snapshot");
  assert.equal(inSharedMemory(s), true);
  return structuredClone(s);
}

/** Every row of a column, as plain values (what the rows hold, whatever the layout). */
function rowsOf(c: Column): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < c.length; i++) {
    if (c instanceof F64Column || c instanceof U32Column || c instanceof U8Column) out.push(c.values[i]);
    else if (c instanceof U64Column) out.push(c.bigint(i));
    else if (
      c instanceof StrColumn || c instanceof SharedStrColumn || c instanceof MapColumn ||
      c instanceof SharedMapColumn || c instanceof KeyedMapColumn
    ) out.push(c.get(i));
    else if (c instanceof ListColumn) {
      const o = c.offsets, child = rowsOf(c.child);
      out.push(child.slice(o[i], o[i + 1]));
    } else throw new TypeError(`no reader for ${c.constructor.name}`);
  }
  return out;
}

/** One column of each class, with rows. */
function samples(): Column[] {
  const f64 = new F64Column(), u32 = new U32Column(), u8 = new U8Column(), u64 = new U64Column();
  const str = new StrColumn(), map = new MapColumn(), list = new ListColumn(new U64Column());
  const sharedStr = new SharedStrColumn(), sharedMap = new SharedMapColumn(), keyed = new KeyedMapColumn();
  const one = new MapColumn();
  for (let i = 0; i < 100; i++) {
    f64.push(i / 3), u32.push(i * 7), u8.push(i % 2), u64.push(i, i >> 2);
    str.pushString(`row ${i} ü`);
    map.keys.pushString(`k${i % 3}`), map.values.pushString(`v${i}`), map.closeRow();
    for (let e = 0; e < i % 4; e++) list.child.push(e, i);
    list.closeRow();
    sharedStr.pushRepeated(enc.encode(`svc-${i >> 4}`), 1);
    if (i % 10 === 0) {
      one.keys.pushString("host"), one.values.pushString(`h${i}`), one.closeRow();
      sharedMap.pushId(sharedMap.addMap(one, one.length - 1), 10);
    }
    const keys = enc.encode(i % 2 ? "ab" : "abc");
    const n = i % 2 ? 2 : 3;
    for (let k = 0; k < n; k++) keyed.values.child.pushString(`x${i}-${k}`);
    keyed.closeRow(
      n,
      keys,
      Int32Array.from({ length: n }, (_, k) => k),
      Int32Array.from({ length: n }, (_, k) => k + 1),
    );
  }
  sharedStr.pushEnum(3, enc.encode("SPAN_KIND_SERVER"));
  return [f64, u32, u8, u64, str, map, list, sharedStr, sharedMap, keyed];
}

Deno.test("Column.snapshot() and restore() give back the rows of every column class, copied, moved or shared", () => {
  const classes = new Set<string>();
  for (const copy of [true, false, "shared"] as const) {
    for (const column of samples()) {
      classes.add(column.constructor.name);
      const rows = rowsOf(column), bytes = column.byteLength();
      const snapshot = column.snapshot(copy === "shared" ? "view" : copy);
      const back = column.emptyLike();
      back.restore(copy === "shared" ? shared(snapshot) : moved(snapshot, [...snapshotBuffers(snapshot)]));
      assert.deepEqual(rowsOf(back), rows, column.constructor.name);
      assert.equal(back.byteLength(), bytes);
      // The restored column keeps working: it takes more rows like the original.
      const more = column.emptyLike();
      more.appendRange(back, 0, back.length);
      more.appendRange(back, 1, 3);
      assert.deepEqual(rowsOf(more), [...rows, ...rows.slice(1, 3)]);
      if (copy === true) {
        // A copy leaves the column as it was, and is cut to the rows held.
        assert.deepEqual(rowsOf(column), rows);
        for (const b of snapshotBuffers(snapshot)) assert.ok(b.byteLength <= Math.max(16, bytes * 2) + 512);
      }
      if (copy === "shared") {
        // The original is untouched, and the shared column is passed on as it is: its view is shared still.
        assert.deepEqual(rowsOf(column), rows, column.constructor.name);
        assert.equal(inSharedMemory(back.snapshot("view")), true, column.constructor.name);
        // An original's own arrays are not shared memory: they would be copied.
        if (bytes > 1024) {
          assert.equal(inSharedMemory(column.snapshot("view")), false, column.constructor.name);
        }
      }
    }
  }
  assert.equal(classes.size, 10);
  // A snapshot is restored into its own kind only.
  assert.throws(() => new U8Column().restore(new U32Column().snapshot(true)), TypeError);
});

/** The request bodies of the test data: every table of every signal, protobuf and JSON. */
const BODIES: { signal: Signal; format: Format; file: string }[] = [
  { signal: "logs", format: "protobuf", file: "logs.pb" },
  { signal: "logs", format: "jsonl", file: "logs.jsonl" },
  { signal: "traces", format: "protobuf", file: "traces.pb" },
  { signal: "traces", format: "json", file: "trace.json" },
  { signal: "metrics", format: "protobuf", file: "metrics_mixed.pb" },
  { signal: "metrics", format: "protobuf", file: "metrics_gauge.pb" },
  { signal: "metrics", format: "protobuf", file: "metrics_sum.pb" },
  { signal: "metrics", format: "protobuf", file: "metrics_histogram.pb" },
  { signal: "metrics", format: "protobuf", file: "metrics_exponential_histogram.pb" },
  { signal: "metrics", format: "protobuf", file: "metrics_summary.pb" },
  { signal: "metrics", format: "json", file: "metrics_mixed.json" },
];

/** Uncompressed pages: the bytes compared are the encoded values themselves (the TypeScript writer). */
const FILES = { compression: "none" as const };

const all = (rows: Rows) => Uint32Array.from({ length: rows.length }, (_, i) => i);

Deno.test("Rows restored from a snapshot encode to byte-identical Parquet, for every table of every signal", async () => {
  const tables = new Set<string>();
  for (const { signal, format, file } of BODIES) {
    const decoded = decodeRequest(signal, readFileSync(DATA + file), { format });
    assert.ok(decoded.tables.length > 0, file);
    for (const copy of [true, "shared", false] as const) {
      // Encoded before a move: a move empties the originals' buffers.
      const expected = await Promise.all(
        decoded.tables.map((rows) => encodeBatch([{ rows, indices: all(rows) }], FILES)),
      );
      const snapshots = decoded.tables.map((rows) => rows.snapshot(copy === "shared" ? "view" : copy));
      const restored = (copy === "shared" ? shared(snapshots) : moved(snapshots, rowsBuffers(snapshots)))
        .map((s) => Rows.restore(s));
      for (let t = 0; t < restored.length; t++) {
        const rows = restored[t];
        tables.add(rows.def.name);
        assert.equal(rows.length, expected[t].rows);
        assert.deepEqual(rows.parts, decoded.tables[t].parts);
        const file2 = await encodeBatch([{ rows, indices: all(rows) }], FILES);
        assert.equal(file2.key, expected[t].key, `${file} ${rows.def.name}`);
        assert.deepEqual(file2.bytes, expected[t].bytes, `${file} ${rows.def.name}: Parquet differs`);
        // Every partition's selection too (a batch takes one partition of a request).
        const byPart = rows.rowsByPartition();
        assert.equal(byPart.length, rows.parts.length);
      }
      if (copy === false) {
        // Moved: the originals' buffers went with the message.
        assert.equal(decoded.tables[0].partOf.values.byteLength, 0);
      }
    }
  }
  assert.deepEqual([...tables].sort(), TABLES.map((t) => t.name).sort());
});

Deno.test("Rows.restore() refuses a snapshot whose columns do not fit its table", () => {
  const rows = decodeRequest("logs", readFileSync(DATA + "logs.pb"), { format: "protobuf" }).tables[0];
  const s = rows.snapshot(true);
  assert.throws(() => Rows.restore({ ...s, columns: s.columns.slice(1) }), TypeError);
  assert.throws(() => Rows.restore({ ...s, table: "otel_traces" }), TypeError);
});
