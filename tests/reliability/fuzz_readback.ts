/**
 * Reads back the Parquet files a fuzz run wrote, with DuckDB and with ClickHouse (chDB): whatever the
 * server accepts is stored, so every file must open in both and decode in every column, or it would
 * break every later query over its table. Files are kept per table in one folder and read in one query
 * per table (DuckDB) and one call for all tables (chDB, which is slow to start); only when a read fails
 * are the files read one by one, to name the broken one.
 *
 * @module
 */

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ParquetFile } from "../../src/core/convert.ts";
import { TABLES } from "../../src/core/table/schema.ts";

/** What a FuzzFiles holds, as a Worker can post it. */
export interface FuzzFilesSnapshot {
  dir: string;
  files: [string, string[]][];
  folders: [string, string][];
  rows: [string, number][];
  notes: [string, string][];
}

/** A folder of Parquet files from a fuzz run, by table. */
export class FuzzFiles {
  readonly dir: string;
  /** Rows written, by table. */
  readonly rows: Map<string, number>;
  /** Files written, by table. */
  readonly files: Map<string, string[]>;
  /** The folder holding each table's files (at any depth below it), by table. */
  readonly folders: Map<string, string>;
  /** What produced each file (a case description), by path: failures name it. */
  readonly notes: Map<string, string>;

  /** A new, empty folder; or the files of `snapshot` (written in a Worker, say). */
  constructor(snapshot?: FuzzFilesSnapshot) {
    this.dir = snapshot?.dir ?? mkdtempSync(join(tmpdir(), "o2p-fuzz-files-"));
    this.files = new Map(snapshot?.files);
    this.folders = new Map(snapshot?.folders);
    this.rows = new Map(snapshot?.rows);
    this.notes = new Map(snapshot?.notes);
  }

  /** The files kept, to post to another thread. */
  snapshot(): FuzzFilesSnapshot {
    return {
      dir: this.dir,
      files: [...this.files],
      folders: [...this.folders],
      rows: [...this.rows],
      notes: [...this.notes],
    };
  }

  /**
   * The Parquet files a server stored under `root` (a filesystem store: `{table path}/{service}/…`), by
   * table; their row counts are not known, so only whether they read is checked.
   */
  static inFolder(root: string): FuzzFiles {
    const files = new FuzzFiles({ dir: root, files: [], folders: [], rows: [], notes: [] });
    const walk = (dir: string, out: string[]) => {
      if (!existsSync(dir)) return;
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name), out);
        else if (e.name.endsWith(".parquet")) out.push(join(dir, e.name));
      }
    };
    for (const def of TABLES) {
      const paths: string[] = [];
      walk(join(root, def.path), paths);
      if (paths.length > 0) {
        files.files.set(def.name, paths), files.folders.set(def.name, join(root, def.path));
      }
    }
    return files;
  }

  /** Keeps one encoded file; `note` says what produced it. */
  add(file: ParquetFile, note = ""): void {
    const folder = join(this.dir, file.table);
    const list = this.files.get(file.table) ?? [];
    if (list.length === 0) mkdirSync(folder, { recursive: true }), this.folders.set(file.table, folder);
    const path = join(folder, `${list.length}.parquet`);
    writeFileSync(path, file.bytes);
    list.push(path);
    this.notes.set(path, note);
    this.files.set(file.table, list);
    this.rows.set(file.table, (this.rows.get(file.table) ?? 0) + file.rows);
  }

  /** Files kept, all tables. */
  get count(): number {
    let n = 0;
    for (const list of this.files.values()) n += list.length;
    return n;
  }

  /**
   * Reads every file with DuckDB and chDB, decoding every column of every row; throws naming the first
   * file a reader cannot read, or a row count that differs from what was written (when it is known).
   */
  async readBack(): Promise<void> {
    if (this.count === 0) return;
    // Imported here: the files may be written in a Worker that has no use for the readers.
    const { openDuckDb } = await import("../support/duckdb.ts");
    const { openClickHouse, sqlString } = await import("../support/clickhouse.ts");
    const db = await openDuckDb();
    try {
      for (const [table, paths] of this.files) {
        const src = (list: string[]) =>
          `read_parquet([${list.map(sqlString).join(",")}], hive_partitioning = false)`;
        // Casting every column to text decodes every page, dictionaries included.
        const query = (list: string[]) =>
          `SELECT count(*) AS n, max(length(CAST(COLUMNS(*) AS VARCHAR))) FROM ${src(list)}`;
        let n: number;
        try {
          n = Number((await db.rows(query(paths)))[0].n);
        } catch (e) {
          for (const path of paths) {
            await db.rows(query([path])).catch((err) => {
              throw new Error(
                `DuckDB cannot read ${path} (${this.notes.get(path)}): ${(err as Error).message}`,
              );
            });
          }
          throw e;
        }
        if (this.rows.has(table) && n !== this.rows.get(table)) {
          throw new Error(`DuckDB reads ${n} rows of ${table}, ${this.rows.get(table)} written`);
        }
      }
    } finally {
      db.close();
    }
    const ch = openClickHouse();
    try {
      const src = (glob: string) => `file(${sqlString(glob)}, Parquet) SETTINGS use_hive_partitioning = 0`;
      // cityHash64 of all columns decodes every value.
      const part = (table: string, glob: string) =>
        `SELECT ${sqlString(table)} AS t, count() AS n, sum(cityHash64(*)) AS h FROM ${src(glob)}`;
      const tables = [...this.files.keys()];
      let counts: { t: string; n: number }[];
      try {
        counts = ch.rows<{ t: string; n: number }>(
          tables.map((t) => part(t, join(this.folders.get(t)!, "**", "*.parquet"))).join(" UNION ALL "),
        );
      } catch (e) {
        for (const [table, paths] of this.files) {
          for (const path of paths) {
            try {
              ch.rows(part(table, path));
            } catch (err) {
              throw new Error(
                `chDB cannot read ${path} (${this.notes.get(path)}): ${(err as Error).message}`,
              );
            }
          }
        }
        throw e;
      }
      for (const { t, n } of counts) {
        if (this.rows.has(t) && Number(n) !== this.rows.get(t)) {
          throw new Error(`chDB reads ${n} rows of ${t}, ${this.rows.get(t)} written`);
        }
      }
      if (counts.length !== tables.length) {
        throw new Error(`chDB read ${counts.length} of ${tables.length} tables`);
      }
    } finally {
      ch.close();
    }
  }

  /** Removes the folder. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
