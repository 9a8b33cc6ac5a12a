import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  type KeyedMapColumn,
  type SharedMapColumn,
  SharedStrColumn,
  type StrColumn,
  type U64Column,
} from "./columns.ts";
import { decodeRequest } from "../convert.ts";
import { gatherSorted, hourOf, limitPartitions, type Rows } from "./rows.ts";

const enc = new TextEncoder();

/** A request of records at `times` (ns past a base), alternating between `resources` resources and scopes. */
function logs(times: number[], tag: string, resources = 2): Rows {
  const record = (t: number, i: number) => ({
    timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(t)),
    body: { stringValue: `${tag}${i}` },
    attributes: Array.from({ length: i % 3 }, (_, k) => ({ key: `k${k}`, value: { intValue: t + k } })),
  });
  const body = enc.encode(JSON.stringify({
    resourceLogs: Array.from({ length: resources }, (_, r) => ({
      resource: {
        attributes: [
          { key: "service.name", value: { stringValue: "svc" } },
          { key: "host.name", value: { stringValue: `${tag}-host${r}` } },
        ],
      },
      scopeLogs: [{
        scope: { name: `${tag}-scope${r}`, attributes: [{ key: "s", value: { intValue: r } }] },
        logRecords: times.map((t, i) => [t, i]).filter(([, i]) => i % resources === r).map(([t, i]) =>
          record(t, i)
        ),
      }],
    })),
  }));
  return decodeRequest("logs", body, { format: "json" }).tables[0];
}

function table(rows: Rows): unknown[] {
  const body = rows.col<StrColumn>("Body"), attrs = rows.col<KeyedMapColumn>("LogAttributes");
  const res = rows.col<SharedMapColumn>("ResourceAttributes"),
    scope = rows.col<SharedMapColumn>("ScopeAttributes");
  const scopeName = rows.col<SharedStrColumn>("ScopeName"),
    service = rows.col<SharedStrColumn>("ServiceName");
  const ts = rows.col<U64Column>("Timestamp");
  return Array.from({ length: rows.length }, (_, i) => [
    ts.bigint(i),
    body.get(i),
    attrs.get(i),
    res.get(i),
    scope.get(i),
    scopeName.get(i),
    service.get(i),
  ]);
}

Deno.test("gatherSorted() interleaves rows of several requests in time order, stable on ties", () => {
  const a = logs([5, 1, 9, 3], "a"), b = logs([2, 9, 4, 0], "b");
  const all = (r: Rows) => Uint32Array.from({ length: r.length }, (_, i) => i);
  const out = gatherSorted([{ rows: a, indices: all(a) }, { rows: b, indices: all(b) }]);
  const expected = [...table(a), ...table(b)].sort((x, y) => Number((x as [bigint])[0] - (y as [bigint])[0]));
  assertEquals(table(out), expected);
  assertEquals(out.parts, [{ service: "svc", hour: a.parts[0].hour }]);
});

Deno.test("gatherSorted() copies long runs of consecutive rows unchanged", () => {
  const times = Array.from({ length: 100 }, (_, i) => i * 10);
  const a = logs(times, "a", 1);
  const idx = Uint32Array.from({ length: 50 }, (_, i) => i + 25);
  assertEquals(table(gatherSorted([{ rows: a, indices: idx }])), table(a).slice(25, 75));
});

Deno.test("resource and scope columns hold each distinct value once, however many rows share it", () => {
  const times = Array.from({ length: 1000 }, (_, i) => i);
  const a = logs(times, "a");
  const res = a.col<SharedMapColumn>("ResourceAttributes"), name = a.col<SharedStrColumn>("ScopeName");
  assertEquals([res.distinct.length, name.distinct.length], [2, 2]);
  assertEquals(res.get(0), { "host.name": "a-host0", "service.name": "svc" });
  assertEquals(res.get(999), { "host.name": "a-host1", "service.name": "svc" });
  assertEquals([name.get(499), name.get(500)], ["a-scope0", "a-scope1"]); // rows come resource by resource
  // Batch limits count the rows as plain columns would hold them.
  assertEquals(res.byteLength(), res.toMapColumn().byteLength());
  assertEquals(name.byteLength(), name.toStrColumn().byteLength());
  const gathered = gatherSorted([{ rows: a, indices: Uint32Array.from(times) }]);
  assertEquals(table(gathered), table(a).sort((x, y) => Number((x as [bigint])[0] - (y as [bigint])[0])));
});

Deno.test("attribute maps store each distinct key list once, also when shapes interleave", () => {
  const times = Array.from({ length: 1000 }, (_, i) => i);
  const a = logs(times, "a", 1), b = logs(times, "b", 1);
  const attrs = a.col<KeyedMapColumn>("LogAttributes");
  // Records carry i % 3 attributes: three key lists ([], [k0], [k0, k1]) in turn.
  assertEquals(attrs.lists.length, 3);
  assertEquals([attrs.get(0), attrs.get(1), attrs.get(5)], [{}, { k0: "1" }, { k0: "5", k1: "6" }]);
  const gathered = gatherSorted([{ rows: a, indices: Uint32Array.from(times) }, {
    rows: b,
    indices: Uint32Array.from(times),
  }]);
  const g = gathered.col<KeyedMapColumn>("LogAttributes");
  assertEquals(g.length, 2000);
  assertEquals(g.lists.length, 6); // each source's lists, once
  assertEquals(g.byteLength(), g.toMapColumn().byteLength());
  const byTime = (x: unknown, y: unknown) => Number((x as [bigint])[0] - (y as [bigint])[0]);
  assertEquals(table(gathered), [...table(a), ...table(b)].sort(byTime));
});

const words = (ns: bigint): [number, number] => [Number(ns & 0xffffffffn), Number(ns >> 32n)];

Deno.test("hourOf() is exact at hour boundaries", () => {
  const hour = 3_600_000_000_000n * 472_222n;
  assertEquals(hourOf(...words(hour)), 472_222);
  assertEquals(hourOf(...words(hour - 1n)), 472_221);
  assertEquals(hourOf(...words(hour + 1n)), 472_222);
});

/** A logs request of one record per entry of `hours` (hours after a base), for service `svc`. */
function inHours(hours: number[], minutes = 30): Rows {
  const body = enc.encode(JSON.stringify({
    resourceLogs: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "svc" } }] },
      scopeLogs: [{
        logRecords: hours.map((h, i) => ({
          timeUnixNano: String((BASE_HOUR + BigInt(h)) * 3_600_000_000_000n + BigInt(minutes * 60e9 + i)),
        })),
      }],
    }],
  }));
  return decodeRequest("logs", body, { format: "json" }).tables[0];
}
const BASE_HOUR = 472_222n; // 2023-11-14T22:00Z

Deno.test("limitPartitions() without limits keeps every partition", () => {
  const rows = inHours([0, 1, 1, 2]);
  const out = limitPartitions([rows]);
  assertEquals(out.parts.map((p) => [...p.indices]), [[0], [1, 2], [3]]);
  assertEquals([out.records, out.outsideWindow, out.overCap, out.partitions], [4, 0, 0, 3]);
});

Deno.test("limitPartitions() keeps the largest partitions up to the cap, ties by first appearance", () => {
  // Hour 5 has 3 records, hour 7 has 2, hours 1, 2 and 3 one each.
  const rows = inHours([1, 5, 2, 7, 5, 3, 7, 5]);
  const out = limitPartitions([rows], { maxPartitions: 3 });
  // Kept in their original order: hour 5 (3), hour 7 (2), then the first of the one-record hours (1).
  assertEquals(out.parts.map((p) => rows.parts[p.part].hour - Number(BASE_HOUR)), [1, 5, 7]);
  assertEquals([out.records, out.overCap, out.partitions], [6, 2, 5]);
});

Deno.test("limitPartitions() caps partitions across the tables of one request", () => {
  const a = inHours([0, 1]), b = inHours([0, 1, 2]);
  const out = limitPartitions([a, b], { maxPartitions: 4 });
  assertEquals(out.parts.length, 4);
  assertEquals([out.records, out.overCap, out.partitions], [4, 1, 5]);
});

Deno.test("limitPartitions() refuses records outside the window, exactly at its edges", () => {
  const rows = inHours([0, 1, 1, 2, 3, 9]);
  const at = (h: number, minutes: number) => (Number(BASE_HOUR) + h) * 3_600_000 + minutes * 60_000;
  // The window starts inside hour 1 (after its records at :30) and ends inside hour 3 (after its record).
  const out = limitPartitions([rows], { earliestMs: at(1, 31), latestMs: at(3, 30) + 1 });
  assertEquals(out.parts.map((p) => [...p.indices]), [[3], [4]]);
  assertEquals([out.records, out.outsideWindow, out.partitions], [2, 4, 2]);
  // A window of one millisecond around a record keeps it alone.
  const edge = limitPartitions([rows], { earliestMs: at(2, 30), latestMs: at(2, 30) + 1 });
  assertEquals(edge.parts.map((p) => [...p.indices]), [[3]]);
  assertEquals([edge.records, edge.outsideWindow], [1, 5]);
});

Deno.test("limitPartitions() applies the window before the cap", () => {
  const rows = inHours([0, 0, 0, 5, 6, 7]);
  const at = (h: number) => (Number(BASE_HOUR) + h) * 3_600_000;
  const out = limitPartitions([rows], { earliestMs: at(5), maxPartitions: 2 });
  assertEquals(out.parts.map((p) => [...p.indices]), [[3], [4]]);
  assertEquals([out.records, out.outsideWindow, out.overCap, out.partitions], [2, 3, 1, 3]);
});

Deno.test("hourOf() is exact at hour boundaries of small times too (time 0, the default, among them)", () => {
  for (const hour of [0n, 1n, 2n, 1_000n, 1_250_000n]) {
    const ns = 3_600_000_000_000n * hour;
    assertEquals(hourOf(...words(ns)), Number(hour));
    if (ns > 0n) assertEquals(hourOf(...words(ns - 1n)), Number(hour) - 1);
    assertEquals(hourOf(...words(ns + 1n)), Number(hour));
  }
});

Deno.test("Rows.select() copies runs of consecutive rows and scattered rows alike", () => {
  const times = Array.from({ length: 200 }, (_, i) => i * 7);
  const a = logs(times, "a", 3);
  const runs = Uint32Array.from([
    ...Array.from({ length: 60 }, (_, i) => 10 + i),
    ...Array.from({ length: 50 }, (_, i) => 120 + i),
  ]);
  const scattered = Uint32Array.from({ length: 40 }, (_, i) => i * 5);
  for (const keep of [runs, scattered]) {
    const all = table(a);
    assertEquals(table(a.select(keep)), Array.from(keep, (i) => all[i]));
  }
});

Deno.test("SharedStrColumn.pushRepeated stores a value once while it repeats, by bytes or as the same array", () => {
  const col = new SharedStrColumn();
  const a = enc.encode("http.server.duration"),
    b = enc.encode("rpc.calls"),
    aAgain = enc.encode("http.server.duration");
  col.pushRepeated(a, 1);
  col.pushRepeated(a, 2); // the same array: no new value
  col.pushRepeated(aAgain, 1); // equal bytes in another array: no new value
  assertEquals([col.length, col.distinct.length], [4, 1]);
  col.pushRepeated(b, 1);
  col.pushRepeated(a, 1); // the same array as before, but another value came between: stored again
  assertEquals([col.length, col.distinct.length], [6, 3]);
  // A value stored by another path between two pushes of one array: the array's bytes are looked at again.
  col.pushEnum(0, enc.encode("SPAN_KIND_SERVER"));
  col.pushRepeated(a, 1);
  assertEquals([col.length, col.distinct.length], [8, 5]);
  const text = (i: number) => col.get(i);
  assertEquals(
    Array.from({ length: col.length }, (_, i) => col.ids[i]),
    [0, 0, 0, 0, 1, 2, 3, 4],
  );
  assertEquals(text(7), "http.server.duration");
});
