/** DuckDB (in memory, `@duckdb/node-api`) for tests: reads Parquet files as another consumer would. */
import { DuckDBInstance, type Json } from "@duckdb/node-api";

export interface DuckDb {
  /** Runs a query; values as JSON (BIGINT/UBIGINT/timestamps as strings, maps as `[{key, value}]`). */
  rows(sql: string): Promise<Record<string, Json>[]>;
  close(): void;
}

/** A fresh in-memory database. */
export async function openDuckDb(): Promise<DuckDb> {
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  return {
    rows: async (sql) => (await connection.runAndReadAll(sql)).getRowObjectsJson(),
    close: () => {
      connection.closeSync();
      instance.closeSync();
    },
  };
}
