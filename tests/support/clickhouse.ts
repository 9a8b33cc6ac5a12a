/**
 * ClickHouse in-process (chDB) for tests: one session with its own temporary data folder, so tables
 * persist across queries. chDB allows one live session per process; close it at the end.
 */
import { Session } from "chdb";

/** A column as `DESCRIBE` shows it. */
export interface Described {
  name: string;
  type: string;
}

export interface ClickHouse {
  /** Runs statements (several may be separated by `;` at line ends) and returns the text result. */
  exec(sql: string): string;
  /** Runs a query and returns its rows as objects (chDB writes 64-bit integers as JSON numbers). */
  rows<T = Record<string, unknown>>(sql: string): T[];
  /** `DESCRIBE` of a table or table function, e.g. `file('/tmp/x.parquet')`. */
  describe(source: string): Described[];
  close(): void;
}

/** SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/** Opens a chDB session in a temporary folder (removed on close). */
export function openClickHouse(): ClickHouse {
  const session = new Session();
  const exec = (sql: string): string => {
    let out = "";
    for (const stmt of sql.split(/;\s*\n/)) if (stmt.trim()) out += session.query(stmt, "TabSeparated");
    return out;
  };
  const rows = <T>(sql: string): T[] =>
    session.query(sql, "JSONEachRow").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as T);
  return {
    exec,
    rows,
    describe: (source) => rows<Described>(`DESCRIBE ${source}`).map(({ name, type }) => ({ name, type })),
    close: () => session.close(),
  };
}
