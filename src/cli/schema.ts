/**
 * `schema`: the output tables as ClickHouse DDL (to create the tables the files load into) or as the
 * Arrow schema the Parquet files carry.
 *
 * @module
 */

import { type DataType, List, Map_ } from "apache-arrow";
import { arrowSchema } from "../core/parquet/arrow.ts";
import { clickhouseDdl, TABLES } from "../core/table/schema.ts";

/** Arrow type as text, maps shown as `Map<key, value>`. */
export function arrowTypeName(type: DataType): string {
  if (type instanceof List) return `List<${arrowTypeName(type.children[0].type)}>`;
  if (type instanceof Map_) {
    const [k, v] = type.children[0].type.children;
    return `Map<${arrowTypeName(k.type)}, ${arrowTypeName(v.type)}>`;
  }
  return String(type);
}

/** One column of `schema arrow`. */
export interface ArrowColumn {
  readonly name: string;
  readonly arrow: string;
  readonly clickhouse: string;
  readonly nullable: boolean;
}

/** Every table's columns with their Arrow types (and the ClickHouse type they stand for). */
export function arrowColumns(): { table: string; path: string; columns: ArrowColumn[] }[] {
  return TABLES.map((t) => {
    const fields = arrowSchema(t).fields;
    return {
      table: t.name,
      path: t.path,
      columns: t.columns.map((c, i) => {
        const base = c.type === "Map" ? "Map(LowCardinality(String), String)" : c.type;
        return {
          name: c.name,
          arrow: arrowTypeName(fields[i].type),
          clickhouse: c.list ? `Array(${base})` : base,
          nullable: fields[i].nullable,
        };
      }),
    };
  });
}

/**
 * The text `schema <kind>` prints.
 *
 * @example
 * ```ts
 * import { schemaText } from "./schema.ts";
 * console.log(schemaText("clickhouse").startsWith("CREATE TABLE"));
 * ```
 */
export function schemaText(
  kind: "clickhouse" | "arrow",
  options: {
    /** Database prefix of the table names (clickhouse); default none. */
    database?: string;
    /** JSON instead of text (arrow); default false. */
    json?: boolean;
  } = {},
): string {
  if (kind === "clickhouse") return clickhouseDdl({ database: options.database });
  const tables = arrowColumns();
  if (options.json) return JSON.stringify(tables, null, 2) + "\n";
  const out: string[] = [];
  for (const t of tables) {
    out.push(`${t.table} (${t.path}/)`);
    const w1 = Math.max(...t.columns.map((c) => c.name.length));
    const w2 = Math.max(...t.columns.map((c) => c.arrow.length));
    for (const c of t.columns) {
      out.push(
        `  ${c.name.padEnd(w1)}  ${c.arrow.padEnd(w2)}  ${
          c.nullable ? "nullable" : "not null"
        }  ${c.clickhouse}`,
      );
    }
    out.push("");
  }
  return out.join("\n");
}
