/**
 * Decoded rows of one table: one column buffer per output column, plus the partition (service, hour)
 * of every row. Decoders append to it; batching gathers row subsets of many of them into one file.
 *
 * @module
 */

import {
  type Column,
  type ColumnSnapshot,
  F64Column,
  KeyedMapColumn,
  ListColumn,
  MapColumn,
  SharedMapColumn,
  SharedStrColumn,
  snapshotBuffers,
  type SnapshotMode,
  StrColumn,
  U32Column,
  U64Column,
  U8Column,
} from "./columns.ts";
import { type ColumnDef, type TableDef, tableDef, type TableName } from "./schema.ts";

/**
 * A `Rows` as plain data (see `Rows.snapshot`): what a worker thread sends back after decoding, and what
 * the main thread sends a worker to encode. The table travels by name: its definition is code.
 */
export interface RowsSnapshot {
  readonly table: TableName;
  readonly columns: readonly ColumnSnapshot[];
  readonly partOf: ColumnSnapshot;
  /** Indexed by `partOf`'s values; may have holes (see `Rows.snapshot`'s `onlyParts`). */
  readonly parts: readonly Partition[];
}

/** Every buffer of some `Rows` snapshots, once each: the transfer list of a `postMessage` that moves them. */
export function rowsBuffers(snapshots: readonly RowsSnapshot[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const s of snapshots) {
    snapshotBuffers(s.partOf, out);
    for (const c of s.columns) snapshotBuffers(c, out);
  }
  return [...out];
}

/** An object's partition: the service and the event-time hour (hours since the Unix epoch, UTC). */
export interface Partition {
  readonly service: string;
  readonly hour: number;
}

const HOUR_NS = 3_600_000_000_000;

/** Creates the empty column buffer for a column definition. */
export function createColumn(def: ColumnDef, capacity = 64): Column {
  // List children start small: most rows have few or no events, links or exemplars.
  const n = def.list ? 16 : capacity;
  const scalar = (): Column => {
    switch (def.type) {
      case "DateTime64(9)":
      case "UInt64":
        return new U64Column(n);
      case "String":
      case "LowCardinality(String)":
        return def.shared && !def.list ? new SharedStrColumn(n) : new StrColumn(n, 24);
      case "UInt8":
      case "Bool":
        return new U8Column(n);
      case "UInt32":
      case "Int32":
        return new U32Column(n);
      case "Float64":
        return new F64Column(n);
      case "Map":
        if (def.shared && !def.list) return new SharedMapColumn(n);
        if (def.keyed && !def.list) return new KeyedMapColumn(n, 8);
        return new MapColumn(n, 8);
    }
  };
  return def.list ? new ListColumn(scalar(), capacity) : scalar();
}

/** A table's columns by class: the fixed-width ones (bytes = length * width) and the rest. */
interface ColumnsByWidth {
  u64: U64Column[];
  f64: F64Column[];
  u32: U32Column[];
  u8: U8Column[];
  other: Column[];
}

function groupByWidth(columns: readonly Column[]): ColumnsByWidth {
  const w: ColumnsByWidth = { u64: [], f64: [], u32: [], u8: [], other: [] };
  for (const c of columns) {
    if (c instanceof U64Column) w.u64.push(c);
    else if (c instanceof F64Column) w.f64.push(c);
    else if (c instanceof U32Column) w.u32.push(c);
    else if (c instanceof U8Column) w.u8.push(c);
    else w.other.push(c);
  }
  return w;
}

/** Rows of one table. */
export class Rows {
  readonly columns: Column[];
  /** Partition index of every row, into `parts`. */
  readonly partOf: U32Column;
  readonly parts: Partition[] = [];
  private readonly partIndex = new Map<string, number>();
  private readonly byName = new Map<string, Column>();
  private lastService = "";
  private lastHour = NaN;
  private lastPart = -1;

  /** `expectedRows` sizes the buffers up front (they still grow past it). */
  constructor(readonly def: TableDef, expectedRows = 64) {
    const capacity = Math.min(Math.max(16, expectedRows), 1 << 20);
    this.partOf = new U32Column(capacity);
    this.columns = def.columns.map((c) => createColumn(c, capacity));
    def.columns.forEach((c, i) => this.byName.set(c.name, this.columns[i]));
  }

  /** Number of complete rows. */
  get length(): number {
    return this.partOf.length;
  }

  /** The column buffer of a column, by name. */
  col<T extends Column>(name: string): T {
    const col = this.byName.get(name);
    if (!col) throw new RangeError(`${this.def.name} has no column ${name}`);
    return col as T;
  }

  /** The event-time column. */
  get time(): U64Column {
    return this.col<U64Column>(this.def.timeColumn);
  }

  /** Completes a row: every column has had its value appended; assigns the row its partition. */
  endRow(service: string, timeLo: number, timeHi: number): void {
    const hour = hourOf(timeLo, timeHi);
    if (service !== this.lastService || hour !== this.lastHour || this.lastPart < 0) {
      const key = `${hour}\u0000${service}`;
      let idx = this.partIndex.get(key);
      if (idx === undefined) {
        idx = this.parts.length;
        this.parts.push({ service, hour });
        this.partIndex.set(key, idx);
      }
      this.lastService = service, this.lastHour = hour, this.lastPart = idx;
    }
    this.partOf.push(this.lastPart);
  }

  /** Puts the next `count` rows (already appended to the columns) into one partition. */
  assignAll(part: Partition, count: number): void {
    let idx = this.parts.findIndex((p) => p.service === part.service && p.hour === part.hour);
    if (idx < 0) idx = this.parts.push(part) - 1;
    for (let i = 0; i < count; i++) this.partOf.push(idx);
  }

  /**
   * Trims every buffer to its contents. Decoders size buffers generously up front; rows that are kept
   * (batched across requests) should not hold that slack.
   */
  compact(): void {
    for (const c of this.columns) c.compact();
    this.partOf.compact();
  }

  /**
   * Bytes of decoded data held. Decoders measure it every 1024 units of work (see DecodeMeter), so it
   * avoids a call per column: fixed-width columns hold `length * width` bytes and are summed by class
   * (monomorphic loops over plain length fields); only the variable-size ones are asked.
   */
  byteLength(): number {
    const w = this.byWidth ??= groupByWidth(this.columns);
    let n8 = 0, n4 = 0, n1 = 0, n = 0;
    for (const c of w.u64) n8 += c.length;
    for (const c of w.f64) n8 += c.length;
    for (const c of w.u32) n4 += c.length;
    for (const c of w.u8) n1 += c.length;
    for (const c of w.other) n += c.byteLength();
    return n + n8 * 8 + n4 * 4 + n1;
  }
  /** The columns grouped as byteLength() reads them (on first use). */
  private byWidth: ColumnsByWidth | undefined;

  /**
   * A new `Rows` of the rows `keep` (ascending), each in its own partition as here. Partitions no kept
   * row is in are left out.
   */
  select(keep: Uint32Array): Rows {
    const out = new Rows(this.def, keep.length);
    // Long runs of consecutive rows (a partition of a request: its records come resource by resource) copy
    // fastest as ranges; scattered rows as a per-row gather.
    const runStarts: number[] = [0];
    for (let i = 1; i < keep.length; i++) if (keep[i] !== keep[i - 1] + 1) runStarts.push(i);
    if (keep.length > 0 && runStarts.length * 8 <= keep.length) {
      this.columns.forEach((c, i) => {
        for (let r = 0; r < runStarts.length; r++) {
          const a = runStarts[r], b = r + 1 < runStarts.length ? runStarts[r + 1] : keep.length;
          out.columns[i].appendRange(c, keep[a], keep[a] + (b - a));
        }
      });
    } else {
      const from = new Uint32Array(keep.length);
      this.columns.forEach((c, i) => out.columns[i].gather([c], from, keep));
    }
    const map = new Int32Array(this.parts.length).fill(-1), part = this.partOf.values;
    for (const i of keep) {
      let p = map[part[i]];
      if (p < 0) {
        const { service, hour } = this.parts[part[i]];
        p = map[part[i]] = out.parts.push({ service, hour }) - 1;
        out.partIndex.set(`${hour}\u0000${service}`, p);
      }
      out.partOf.push(p);
    }
    return out;
  }

  /**
   * The rows as plain data that `postMessage` carries (see `Column.snapshot`): with `copy`, fresh arrays
   * cut to the rows (these rows stay usable); without, the buffers themselves, to transfer (these rows
   * must not be used afterwards); `"view"`, views cut to the rows (see `shareSnapshot`). `Rows.restore`
   * reads it back into rows that encode to the same bytes. With `onlyParts`, the snapshot holds just those
   * partitions (the others are holes): enough to encode rows of those partitions only (an encode job's rows
   * may span many more partitions than its batch's one, and each would cost an object to copy).
   */
  snapshot(copy: SnapshotMode, onlyParts?: Iterable<number>): RowsSnapshot {
    let parts: Partition[];
    if (onlyParts === undefined) parts = this.parts.map(({ service, hour }) => ({ service, hour }));
    else {
      parts = [];
      for (const p of onlyParts) {
        const { service, hour } = this.parts[p];
        parts[p] = { service, hour };
      }
    }
    return {
      table: this.def.name,
      columns: this.columns.map((c) => c.snapshot(copy)),
      partOf: this.partOf.snapshot(copy),
      parts,
    };
  }

  /** Rows from a snapshot (see {@linkcode Rows.snapshot}); a TypeError when it does not fit its table. */
  static restore(s: RowsSnapshot): Rows {
    const def = tableDef(s.table);
    if (s.columns.length !== def.columns.length) {
      throw new TypeError(`a ${s.table} snapshot has ${s.columns.length} columns, not ${def.columns.length}`);
    }
    const out = new Rows(def, 16);
    out.columns.forEach((c, i) => c.restore(s.columns[i]));
    out.partOf.restore(s.partOf);
    // Indexed, not iterated: a snapshot of some partitions only has holes (see `snapshot`).
    s.parts.forEach(({ service, hour }, i) => {
      out.parts[i] = { service, hour };
      out.partIndex.set(`${hour}\u0000${service}`, i);
    });
    return out;
  }

  /** Row indices of each partition, in row order. */
  rowsByPartition(): Uint32Array[] {
    const counts = new Uint32Array(this.parts.length);
    const part = this.partOf.values;
    for (let i = 0; i < this.length; i++) counts[part[i]]++;
    const out = Array.from(counts, (n) => new Uint32Array(n));
    counts.fill(0);
    for (let i = 0; i < this.length; i++) out[part[i]][counts[part[i]]++] = i;
    return out;
  }
}

/** The UTC hour (since the epoch) of a nanosecond timestamp given as (low, high) words, exactly. */
export function hourOf(lo: number, hi: number): number {
  const approx = hi * 4294967296 + lo;
  const hour = Math.floor(approx / HOUR_NS);
  if (hi < 0x100000) {
    // Below 2^52 the double is the exact time, and so is the remainder: no BigInt needed (time 0, the
    // default of records without one, is such a boundary).
    const r = approx - hour * HOUR_NS;
    return r < 0 ? hour - 1 : r >= HOUR_NS ? hour + 1 : hour;
  }
  const rest = approx - hour * HOUR_NS;
  // A double holds the timestamp to within 256 ns; only right at an hour boundary is exact arithmetic needed.
  if (rest > 1_000_000 && rest < HOUR_NS - 1_000_000) return hour;
  return Number(((BigInt(hi) << 32n) | BigInt(lo)) / BigInt(HOUR_NS));
}

/** A selection of rows of one `Rows`. */
export interface RowSelection {
  readonly rows: Rows;
  readonly indices: Uint32Array;
}

/** The time order of a batch's rows: row `rows[k]` of selection `from[k]` is the k-th earliest. */
export interface BatchOrder {
  readonly selections: readonly RowSelection[];
  readonly from: Uint32Array;
  readonly rows: Uint32Array;
  /** The batch's partition (that of its first row). */
  readonly part: Partition;
}

/** Sorts the selected rows of several `Rows` of one table by event time (stable on equal times). */
export function sortBatch(selections: readonly RowSelection[]): BatchOrder {
  const n = selections.reduce((s, x) => s + x.indices.length, 0);
  const src = new Uint32Array(n), row = new Uint32Array(n);
  const hi = new Float64Array(n), lo = new Float64Array(n);
  let k = 0;
  selections.forEach((sel, s) => {
    const words = sel.rows.time.words;
    for (const i of sel.indices) {
      src[k] = s, row[k] = i, lo[k] = words[i * 2], hi[k] = words[i * 2 + 1];
      k++;
    }
  });
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) {
    sorted = hi[i - 1] < hi[i] || (hi[i - 1] === hi[i] && lo[i - 1] <= lo[i]);
  }
  const from = src, rows = row;
  if (!sorted) {
    const order = new Uint32Array(n).map((_, i) => i).sort((a, b) => hi[a] - hi[b] || lo[a] - lo[b] || a - b);
    const f = new Uint32Array(n), r = new Uint32Array(n);
    for (let i = 0; i < n; i++) f[i] = src[order[i]], r[i] = row[order[i]];
    return { selections, from: f, rows: r, part: partOfFirst(selections) };
  }
  return { selections, from, rows, part: partOfFirst(selections) };
}

function partOfFirst(selections: readonly RowSelection[]): Partition {
  const first = selections[0].rows;
  return first.parts[first.partOf.values[selections[0].indices[0]]] ?? { service: "", hour: 0 };
}

/** Copies the rows `[start, end)` of a sorted batch into a new `Rows` (one partition). */
export function gatherRange(order: BatchOrder, start = 0, end = order.from.length): Rows {
  const { selections } = order;
  const from = order.from.subarray(start, end), rowsIdx = order.rows.subarray(start, end);
  const n = end - start;
  const out = new Rows(selections[0].rows.def, n);
  // Long runs of consecutive rows (one request's sorted records) copy fastest as ranges; interleaved rows
  // (concurrent senders) as a per-row gather.
  const runStarts: number[] = [0];
  for (let i = 1; i < n; i++) {
    if (from[i] !== from[i - 1] || rowsIdx[i] !== rowsIdx[i - 1] + 1) runStarts.push(i);
  }
  const byRuns = runStarts.length * 8 <= n;
  for (let c = 0; c < out.columns.length; c++) {
    const dst = out.columns[c];
    if (!byRuns) {
      dst.gather(selections.map((s) => s.rows.columns[c]), from, rowsIdx);
      continue;
    }
    for (let r = 0; r < runStarts.length; r++) {
      const i = runStarts[r], j = r + 1 < runStarts.length ? runStarts[r + 1] : n;
      dst.appendRange(selections[from[i]].rows.columns[c], rowsIdx[i], rowsIdx[i] + (j - i));
    }
  }
  out.assignAll(order.part, n);
  return out;
}

/**
 * Gathers selected rows of several `Rows` of the same table into one new `Rows`, sorted by event time
 * (stable: rows with equal times keep their order). All rows land in one partition, that of the first.
 */
export function gatherSorted(selections: readonly RowSelection[]): Rows {
  return gatherRange(sortBatch(selections));
}

/** The rows one request holds for one partition: table, service and event hour. */
export interface PartitionRows {
  readonly rows: Rows;
  /** Index into `rows.parts`. */
  readonly part: number;
  /** The partition's row indices, in row order. */
  readonly indices: Uint32Array;
}

/** What one request may store; every limit is off when absent. */
export interface PartitionLimits {
  /** At most this many (table, service, hour) partitions; the records of the others are refused. */
  readonly maxPartitions?: number;
  /** Refuse records whose event time is before this (milliseconds since the epoch). */
  readonly earliestMs?: number;
  /** Refuse records whose event time is after this (milliseconds since the epoch). */
  readonly latestMs?: number;
}

/** A request's partitions after {@linkcode limitPartitions}. */
export interface LimitedPartitions {
  /** The partitions kept, in table and first-appearance order. */
  readonly parts: PartitionRows[];
  /** Records kept. */
  readonly records: number;
  /** Records refused for an event time outside `[earliestMs, latestMs]`. */
  readonly outsideWindow: number;
  /** Records refused because their partition was beyond `maxPartitions`. */
  readonly overCap: number;
  /** Partitions the request had within the window (kept or not). */
  readonly partitions: number;
}

const HOUR_MS = 3_600_000;

/**
 * Applies a request's limits to its decoded rows: first the event-time window, record by record, then the
 * partition cap. Beyond the cap the largest partitions are kept (ties: the first to appear), so the fewest
 * records are refused. Partitions are counted before any is gathered, and only the kept ones get index
 * arrays: a request spread over 20,000 hours costs 20,000 counters, not 20,000 arrays. Without a window
 * no event time is read; with one, only the rows of hours that straddle a window edge are.
 */
export function limitPartitions(tables: readonly Rows[], limits: PartitionLimits = {}): LimitedPartitions {
  const earliest = limits.earliestMs ?? -Infinity, latest = limits.latestMs ?? Infinity;
  const windowed = earliest > -Infinity || latest < Infinity;
  const max = limits.maxPartitions ?? Infinity;
  let inside = 0, all = 0;
  // Per table: rows in the window per partition, and which partitions straddle an edge of it.
  const counted = tables.map((rows) => {
    const n = rows.parts.length, part = rows.partOf.values;
    const counts = new Uint32Array(n);
    if (n === 1) counts[0] = rows.length; // the common case: one service, one hour
    else for (let i = 0; i < rows.length; i++) counts[part[i]]++;
    let edge: Uint8Array | undefined;
    if (windowed) {
      edge = new Uint8Array(n);
      let straddling = false;
      for (let p = 0; p < n; p++) {
        const start = rows.parts[p].hour * HOUR_MS, end = start + HOUR_MS;
        if (end <= earliest || start > latest) counts[p] = 0;
        else if (start < earliest || end > latest) edge[p] = 1, counts[p] = 0, straddling = true;
      }
      if (straddling) {
        const words = rows.time.words;
        for (let i = 0; i < rows.length; i++) {
          if (edge[part[i]] && inWindow(words, i, earliest, latest)) counts[part[i]]++;
        }
      }
    }
    all += rows.length;
    for (let p = 0; p < n; p++) inside += counts[p];
    return { rows, counts, edge };
  });
  // The partitions with rows left, across tables, in order of appearance; beyond the cap, the largest.
  const candidates: { t: number; p: number; n: number }[] = [];
  counted.forEach(({ counts }, t) => counts.forEach((n, p) => n && candidates.push({ t, p, n })));
  let kept = candidates, overCap = 0;
  if (candidates.length > max) {
    const order = candidates.map((_, i) => i).sort((a, b) => candidates[b].n - candidates[a].n || a - b);
    const keep = new Uint8Array(candidates.length);
    for (let k = 0; k < max; k++) keep[order[k]] = 1;
    kept = candidates.filter((c, i) => keep[i] || (overCap += c.n, false));
  }
  // Index arrays for the kept partitions only, filled in one pass over each table's rows.
  const parts: PartitionRows[] = [];
  counted.forEach(({ rows, edge }, t) => {
    const mine = kept.filter((c) => c.t === t);
    if (!mine.length) return;
    if (mine.length === 1 && mine[0].n === rows.length) {
      // Every row in one partition: no need to look at any.
      const all = new Uint32Array(rows.length);
      for (let i = 0; i < all.length; i++) all[i] = i;
      parts.push({ rows, part: mine[0].p, indices: all });
      return;
    }
    const slot = new Int32Array(rows.parts.length).fill(-1);
    const out = mine.map((c, k) => (slot[c.p] = k, new Uint32Array(c.n)));
    const fill = new Uint32Array(mine.length);
    const part = rows.partOf.values, words = rows.time.words;
    for (let i = 0; i < rows.length; i++) {
      const k = slot[part[i]];
      if (k < 0 || (edge?.[part[i]] && !inWindow(words, i, earliest, latest))) continue;
      out[k][fill[k]++] = i;
    }
    mine.forEach((c, k) => parts.push({ rows, part: c.p, indices: out[k] }));
  });
  let records = 0;
  for (const p of parts) records += p.indices.length;
  return { parts, records, outsideWindow: all - inside, overCap, partitions: candidates.length };
}

/** Whether row `i`'s event time lies in `[earliest, latest]` ms (to within 256 ns, which a window ignores). */
function inWindow(words: Uint32Array, i: number, earliest: number, latest: number): boolean {
  const ms = (words[i * 2 + 1] * 4294967296 + words[i * 2]) / 1e6;
  return ms >= earliest && ms <= latest;
}

/**
 * The rows whose times all fit `DateTime64(9)`: below 2^63 ns (2262-04-11T23:47:16.854775807Z), the
 * largest time a signed 64-bit nanosecond count holds. OTLP times are unsigned 64-bit, so a later one
 * would be written as a negative time (before 1970) and the file would no longer be sorted by its own
 * time column. A row is refused when any of its `DateTime64(9)` values is out of range: its own time
 * (`Timestamp`, `TimeUnix`) and the others it stores (`StartTimeUnix`, `Events.Timestamp`,
 * `Exemplars.TimeUnix`). One look at the high word of every time; `rows` itself when all fit.
 */
export function rowsInTimeRange(rows: Rows): { rows: Rows; refused: number } {
  let bad: Uint8Array | undefined;
  const n = rows.length;
  rows.def.columns.forEach((def, c) => {
    if (def.type !== "DateTime64(9)") return;
    const col = rows.columns[c];
    if (!def.list) {
      const w = (col as U64Column).words;
      for (let i = 0; i < n; i++) if (w[i * 2 + 1] >= 0x80000000) (bad ??= new Uint8Array(n))[i] = 1;
      return;
    }
    const list = col as ListColumn<U64Column>, w = list.child.words, o = list.offsets;
    let any = false;
    for (let e = 0; e < list.child.length && !any; e++) any = w[e * 2 + 1] >= 0x80000000;
    if (!any) return;
    for (let i = 0; i < n; i++) {
      for (let e = o[i]; e < o[i + 1]; e++) {
        if (w[e * 2 + 1] >= 0x80000000) (bad ??= new Uint8Array(n))[i] = 1;
      }
    }
  });
  if (!bad) return { rows, refused: 0 };
  let refused = 0;
  for (let i = 0; i < n; i++) refused += bad[i];
  const keep = new Uint32Array(n - refused);
  for (let i = 0, k = 0; i < n; i++) if (!bad[i]) keep[k++] = i;
  return { rows: rows.select(keep), refused };
}
