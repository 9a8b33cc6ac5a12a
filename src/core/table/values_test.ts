import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { KeyedMapColumn, MapColumn, SharedMapColumn } from "./columns.ts";
import { AttrScratch, PreparedMap } from "./values.ts";

/** Adds `[key, value]` entries to the scratch, in this order. */
function add(scratch: AttrScratch, ...entries: [string, string][]): void {
  for (const [k, v] of entries) scratch.keys.pushString(k), scratch.values.pushString(v);
}

Deno.test("AttrScratch.flushToKeyed reuses the last row's order and list only for the same keys and map", () => {
  // flushToKeyed keeps the keys as they came, their sorted order and their list id for the next row.
  // Each step here would come out wrong if that were reused where it must not be.
  const s = new AttrScratch(), k1 = new KeyedMapColumn(), k2 = new KeyedMapColumn(), plain = new MapColumn();
  add(s, ["b", "1"], ["a", "2"]), s.flushToKeyed(k1);
  // A plain flush in between sorts other keys with the scratch's working order.
  add(s, ["d", "x"], ["c", "y"], ["a", "z"]), s.flushTo(plain);
  add(s, ["b", "3"], ["a", "4"]), s.flushToKeyed(k1);
  // The same keys for another map: its own list there.
  add(s, ["b", "5"], ["a", "6"]), s.flushToKeyed(k2);
  // A repeated key (the last value wins), twice in a row: the second time from the kept order.
  add(s, ["b", "7"], ["a", "8"], ["a", "9"]), s.flushToKeyed(k1);
  add(s, ["b", "10"], ["a", "11"], ["a", "12"]), s.flushToKeyed(k1);
  // Same keys in another order; then keys of the same length and count but other bytes.
  add(s, ["a", "13"], ["b", "14"]), s.flushToKeyed(k1);
  add(s, ["a", "15"], ["c", "16"]), s.flushToKeyed(k1);
  // No keys at all, twice.
  s.flushToKeyed(k1), s.flushToKeyed(k1);
  assertEquals(Array.from({ length: k1.length }, (_, r) => k1.get(r)), [
    { a: "2", b: "1" },
    { a: "4", b: "3" },
    { a: "9", b: "7" },
    { a: "12", b: "10" },
    { a: "13", b: "14" },
    { a: "15", c: "16" },
    {},
    {},
  ]);
  assertEquals(k2.get(0), { a: "6", b: "5" });
  assertEquals(plain.get(0), { a: "z", c: "y", d: "x" });
  // Distinct key lists in k1: [a, b], [a, c] and the empty one; rows refer to them, not to copies.
  assertEquals(k1.lists.length, 3);
  assertEquals(k2.lists.length, 1);
});

Deno.test("a PreparedMap pushed to several tables in turn is stored once in each", () => {
  // A resource's metrics alternate between the gauge, sum and histogram tables: each table keeps one
  // copy of the resource's attributes, however often the tables alternate.
  const col = new MapColumn();
  col.keys.pushString("service.name"), col.values.pushString("svc"), col.closeRow();
  const resource = new PreparedMap(col);
  const tables = Array.from({ length: 10 }, () => new SharedMapColumn());
  for (let round = 0; round < 5; round++) {
    for (const t of tables.slice(0, 3)) resource.pushRepeated(t, 2);
  }
  for (const t of tables.slice(0, 3)) {
    assertEquals([t.length, t.distinct.length, t.get(9)], [10, 1, { "service.name": "svc" }]);
  }
  // More tables than it remembers: rows stay right; a forgotten table gets a second copy, no more.
  for (let round = 0; round < 2; round++) for (const t of tables) resource.pushTo(t);
  for (const t of tables) assertEquals(t.get(t.length - 1), { "service.name": "svc" });
  assertEquals(tables.map((t) => t.distinct.length), [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
});
