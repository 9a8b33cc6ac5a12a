import assert from "node:assert/strict";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { idKey, requestId, type SeenEntry, SeenLog, SeenTable } from "./dedupe.ts";

const id = (n: number) => Uint32Array.of(n, n ^ 0x5555, n * 3, n & 7); // few distinct last words: probing

Deno.test("requestId() depends on signal, format and every byte of the body", () => {
  const body = new TextEncoder().encode('{"resourceLogs":[]}');
  const base = idKey(requestId(0, 1, body));
  assert.equal(idKey(requestId(0, 1, body.slice())), base);
  assert.notEqual(idKey(requestId(1, 1, body)), base);
  assert.notEqual(idKey(requestId(0, 2, body)), base);
  const changed = body.slice();
  changed[5] ^= 1;
  assert.notEqual(idKey(requestId(0, 1, changed)), base);
  assert.notEqual(idKey(requestId(0, 1, body.subarray(0, body.length - 1))), base);
});

Deno.test("SeenTable agrees with a plain map under random adds, lookups and expiry", () => {
  let seed = 7;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const window = 1000;
  const table = new SeenTable(100_000, window);
  const model = new Map<number, { time: number; rejected: number }>();
  let now = 0;
  for (let step = 0; step < 50_000; step++) {
    now += Math.floor(random() * 3);
    const n = Math.floor(random() * 3000);
    for (const [k, v] of model) if (v.time < now - window) model.delete(k);
    const found = table.find(id(n), now);
    assert.equal(found?.rejected, model.get(n)?.rejected, `step ${step}: identity ${n}`);
    if (random() < 0.5) {
      const rejected = step % 5;
      table.add(id(n), now, { rejected, rejectMessage: rejected ? `r${rejected}` : "" });
      model.set(n, { time: now, rejected });
      assert.equal(table.find(id(n), now)?.rejectMessage, rejected ? `r${rejected}` : "");
    }
    assert.equal(table.size, model.size, `step ${step}`);
  }
  assert.ok(model.size > 100, "the test keeps many identities at once");
});

Deno.test("SeenTable forgets the oldest first at its bound, and counts them", () => {
  const table = new SeenTable(3, 60_000);
  for (let n = 1; n <= 5; n++) table.add(id(n), n);
  assert.equal(table.size, 3);
  assert.equal(table.evicted, 2);
  assert.equal(table.find(id(1), 5), undefined);
  assert.equal(table.find(id(2), 5), undefined);
  for (const n of [3, 4, 5]) assert.ok(table.find(id(n), 5), `identity ${n} kept`);
  // Recording a known identity again moves it to the young end: 3 now outlives 4.
  table.add(id(3), 6);
  table.add(id(6), 7);
  assert.ok(table.find(id(3), 7));
  assert.equal(table.find(id(4), 7), undefined);
});

Deno.test("SeenTable keeps an identity past the window while its request is still pending", () => {
  const table = new SeenTable(10, 100);
  table.add(id(1), 0, { rejected: 2, rejectMessage: "two" }, 41);
  table.add(id(2), 0, undefined, 42);
  const pending = new Set([41]);
  assert.deepEqual(table.find(id(1), 500, (s) => pending.has(s)), { rejected: 2, rejectMessage: "two" });
  assert.equal(table.find(id(2), 500, (s) => pending.has(s)), undefined, "not pending: forgotten");
  pending.clear();
  // Kept from 500 on: still known within the window from then, forgotten after it.
  assert.ok(table.find(id(1), 599, (s) => pending.has(s)));
  assert.equal(table.find(id(1), 601, (s) => pending.has(s)), undefined);
});

/** Opens the log in `dir`, collecting its entries. */
async function openSeen(dir: string, maxEntries = 100, onWarning?: (m: string) => void) {
  const entries: SeenEntry[] = [];
  const onEntry = (id: Uint32Array, time: number, rejected: number) =>
    entries.push({ id: id.slice(), time, rejected });
  const { log, newest } = await SeenLog.open({
    dir,
    windowMs: 1000,
    maxEntries,
    sync: false,
    onWarning,
    onEntry,
  });
  return { log, newest, entries };
}

Deno.test("SeenLog keeps entries across reopening, cuts a torn tail, and rotates by the window", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "o2p-seen-" });
  try {
    const first = await openSeen(dir);
    assert.equal(first.entries.length, 0);
    assert.equal(first.newest, undefined);
    await first.log.append([{ id: id(1), time: 10, rejected: 0 }, { id: id(2), time: 10, rejected: 3 }]);
    await Promise.all([
      first.log.append([{ id: id(3), time: 20, rejected: 0 }]),
      first.log.append([{ id: id(4), time: 20, rejected: 0 }]),
    ]);
    await first.log.close();
    const files = readdirSync(dir);
    assert.equal(files.length, 1);
    // A torn entry at the end (a crash during a write).
    const path = join(dir, files[0]);
    writeFileSync(path, new Uint8Array(13), { flag: "a" });
    const warnings: string[] = [];
    const second = await openSeen(dir, 100, (m) => warnings.push(m));
    assert.deepEqual(second.entries.map((e) => [idKey(e.id), e.time, e.rejected]), [
      [idKey(id(1)), 10, 0],
      [idKey(id(2)), 10, 3],
      [idKey(id(3)), 20, 0],
      [idKey(id(4)), 20, 0],
    ]);
    assert.equal(second.newest, 20);
    assert.equal(warnings.length, 1);
    assert.equal(statSync(path).size, 4 * 32, "torn tail cut off");
    // Past the window, a new file starts; once the next one is older than the window, the old one goes.
    await second.log.append([{ id: id(5), time: 2000, rejected: 0 }]);
    assert.equal(readdirSync(dir).length, 2);
    await second.log.append([{ id: id(6), time: 3500, rejected: 0 }]);
    assert.equal(readdirSync(dir).length, 2, "the first file deleted, a third started");
    await second.log.close();
    const third = await openSeen(dir);
    assert.deepEqual(third.entries.map((e) => e.time), [2000, 3500]);
    await third.log.close();
    // A full file (maxEntries) starts a new one too, and the files stay few however fast entries come.
    const fourth = await openSeen(dir, 1);
    for (let t = 3501; t < 3520; t++) {
      await fourth.log.append([{ id: id(t), time: t, rejected: 0 }]);
      assert.ok(readdirSync(dir).length <= 3, `${readdirSync(dir).length} files`);
    }
    await fourth.log.close();
    assert.deepEqual((await openSeen(dir, 1)).entries.map((e) => e.time).slice(-2), [3518, 3519]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("SeenLog reads back a file larger than its read buffer, entry for entry", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "o2p-seen-" });
  try {
    const { log } = await openSeen(dir, 100_000);
    const n = 40_000; // 1.25 MiB: more than one 1 MiB read
    await log.append(Array.from({ length: n }, (_, i) => ({ id: id(i), time: 5 + i / n, rejected: i % 3 })));
    await log.close();
    const back = await openSeen(dir, 100_000);
    assert.equal(back.entries.length, n);
    assert.ok(back.entries.every((e, i) => idKey(e.id) === idKey(id(i)) && e.rejected === i % 3));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
