/** docs/schema.md documents every column of every table, in order, with its ClickHouse type. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { TABLES } from "../src/core/table/schema.ts";

const DOC = readFileSync(new URL("../docs/schema.md", import.meta.url), "utf8");

/** The `| \`Column\` | \`Type\` | … |` rows of the section under a `### ` heading that contains `heading`. */
function documentedColumns(heading: string): [string, string][] {
  const start = DOC.split("\n").findIndex((l) => l.startsWith("### ") && l.includes(heading));
  assert.ok(start >= 0, `docs/schema.md has a section "${heading}"`);
  const rows: [string, string][] = [];
  for (const line of DOC.split("\n").slice(start + 1)) {
    if (line.startsWith("#")) break;
    const m = /^\|\s*`([^`]+)`\s*\|\s*(?:`([^`]+)`|([^|]+?))\s*\|/.exec(line);
    if (m) rows.push([m[1], m[2] ?? m[3]]);
  }
  return rows;
}

const MAP = "Map(LowCardinality(String), String)";

Deno.test("docs/schema.md lists every column of every table, in order, with its type", () => {
  const head = documentedColumns("the columns every metrics table starts with");
  const exemplars = head.filter(([n]) => n.startsWith("Exemplars."));
  const common = head.filter(([n]) => !n.startsWith("Exemplars."));
  for (const t of TABLES) {
    const section = documentedColumns(`\`${t.name}\``);
    // Metrics tables document the common head once, and `Exemplars.*` stands for the five exemplar columns.
    const documented = t.signal === "metrics"
      ? [
        ...common,
        ...section.flatMap((row) => row[0] === "Exemplars.*" ? exemplars : [row]),
      ]
      : section;
    const expected = t.columns.map((c): [string, string] => {
      const base = c.type === "Map" ? MAP : c.type;
      return [c.name, c.list ? `Array(${base})` : base];
    });
    assert.deepEqual(documented, expected, t.name);
  }
});

Deno.test("every column name of every table appears in docs/schema.md", () => {
  for (const t of TABLES) {
    for (const c of t.columns) assert.ok(DOC.includes(`\`${c.name}\``), `${t.name}.${c.name}`);
  }
});
