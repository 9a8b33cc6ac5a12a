/**
 * Decoded rows of one table: one column buffer per output column, plus the partition (service, hour)
 * of every row. Decoders append to it; batching gathers row subsets of many of them into one file.
 *
 * @module
 */

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
} from "./columns.ts";
import type { ColumnDef, TableDef } from "./schema.ts";

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

  /** Bytes of decoded data held. */
  byteLength(): number {
    let n = 0;
    for (const c of this.columns) n += c.byteLength();
    return n;
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
