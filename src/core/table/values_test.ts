import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { KeyedMapColumn, MapColumn } from "./columns.ts";
import { AttrScratch } from "./values.ts";

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
