/**
 * Reads back what the server stored (every Parquet file, through DuckDB, as a consumer would) and checks
 * it against what the clients were told: each acknowledged record exactly once, the others at most once.
 *
 * @module
 */

import { join } from "node:path";
import { openDuckDb } from "../support/duckdb.ts";

/** Every `.parquet` file under `dir`, skipping dot-folders (the write-ahead log, the fs staging folder). */
export function parquetFilesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      if (e.name.startsWith(".")) continue;
      const path = join(d, e.name);
      if (e.isDirectory) walk(path);
      else if (e.isFile && e.name.endsWith(".parquet")) out.push(path);
    }
  };
  walk(dir);
  return out.sort();
}

/** How often each log record id (the `Body` column of `otel_logs`) occurs across `files`. */
export async function countIds(files: string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  if (!files.length) return counts;
  const db = await openDuckDb();
  try {
    const list = files.map((f) => `'${f.replaceAll("'", "''")}'`).join(", ");
    const rows = await db.rows(
      `SELECT Body AS id, count(*)::INTEGER AS n FROM read_parquet([${list}]) GROUP BY Body`,
    );
    for (const r of rows) counts.set(String(r.id), Number(r.n));
  } finally {
    db.close();
  }
  return counts;
}

/** The outcome of an audit; `lost` and `duplicated` must be empty. */
export interface Audit {
  acknowledged: number;
  /** Acknowledged ids not stored. */
  lost: string[];
  /** Acknowledged ids stored more than once. */
  duplicated: string[];
  /** Unacknowledged ids that were stored anyway (allowed: the client may just have missed the answer). */
  unacknowledgedStored: number;
  /** Unacknowledged ids stored more than once (not allowed either). */
  unacknowledgedDuplicated: string[];
  /** Stored ids no client ever sent (not allowed). */
  unknown: string[];
  stored: number;
}

/** Compares stored ids with what clients were told. */
export function audit(acked: Set<string>, unacked: Set<string>, counts: Map<string, number>): Audit {
  const out: Audit = {
    acknowledged: acked.size,
    lost: [],
    duplicated: [],
    unacknowledgedStored: 0,
    unacknowledgedDuplicated: [],
    unknown: [],
    stored: 0,
  };
  for (const id of acked) {
    const n = counts.get(id) ?? 0;
    if (n === 0) out.lost.push(id);
    else if (n > 1) out.duplicated.push(id);
  }
  for (const [id, n] of counts) {
    out.stored += n;
    if (acked.has(id)) continue;
    if (!unacked.has(id)) out.unknown.push(id);
    else {
      out.unacknowledgedStored++;
      if (n > 1) out.unacknowledgedDuplicated.push(id);
    }
  }
  return out;
}

/** One line of figures for the test output. */
export function describeAudit(a: Audit): string {
  return `acknowledged records ${a.acknowledged}, lost ${a.lost.length}, duplicated ${a.duplicated.length}, ` +
    `unacknowledged but stored ${a.unacknowledgedStored} (duplicated ${a.unacknowledgedDuplicated.length}), ` +
    `unknown ${a.unknown.length}, stored rows ${a.stored}`;
}
