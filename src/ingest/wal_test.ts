import assert from "node:assert/strict";
import { crc32c } from "../codecs/crc32c.ts";
import { Wal, WalFullError, type WalOptions, type WalRecord } from "./wal.ts";
import { payloadFor } from "./testdata/wal_writer.ts";

const HEADER_BYTES = 24;
const WRITER = new URL("./testdata/wal_writer.ts", import.meta.url).pathname;
const BUN = new URL("../../node_modules/.bin/bun", import.meta.url).pathname;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "wal_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Opens a log and collects its warnings. */
async function openWal(
  dir: string,
  options: Partial<WalOptions> = {},
): Promise<{ wal: Wal; warnings: string[]; records: WalRecord[] }> {
  const warnings: string[] = [];
  const wal = await Wal.open({ dir, maxBytes: 1 << 30, onWarning: (m) => warnings.push(m), ...options });
  return { wal, warnings, records: await collect(wal.records()) };
}

async function collect(records: AsyncIterable<WalRecord>): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function text(payload: Uint8Array): string {
  return new TextDecoder().decode(payload);
}

async function segmentFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

async function totalSize(dir: string): Promise<number> {
  let sum = 0;
  for (const name of await segmentFiles(dir)) sum += (await Deno.stat(`${dir}/${name}`)).size;
  return sum;
}

Deno.test("crc32c() matches the standard check value and continues from a seed", () => {
  assert.equal(crc32c(bytes("123456789")), 0xe3069283);
  assert.equal(crc32c(bytes("")), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(bytes("56789"), crc32c(bytes("1234"))), 0xe3069283);
  // Lengths around the 8-byte stride agree with the byte-at-a-time path.
  const data = payloadFor(3, 4, 37);
  for (let cut = 0; cut <= data.length; cut++) {
    assert.equal(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), crc32c(data));
  }
});

Deno.test("Wal round-trips appends through close and reopen", async () => {
  await withDir(async (dir) => {
    const { wal, records: none } = await openWal(dir);
    assert.deepEqual(none, []);
    assert.equal(await wal.append(1, bytes("one")), 1);
    assert.equal(await wal.append(2, bytes("")), 2);
    assert.equal(await wal.append(0xffffffff, bytes("three")), 3);
    assert.equal(await wal.append(4, [bytes("fo"), bytes(""), bytes("ur")]), 4, "a payload in parts");
    await wal.close();
    await wal.close(); // idempotent

    const { wal: again, warnings, records } = await openWal(dir);
    assert.deepEqual(warnings, []);
    assert.deepEqual(records.map((r) => [r.seq, r.kind, text(r.payload)]), [
      [1, 1, "one"],
      [2, 2, ""],
      [3, 0xffffffff, "three"],
      [4, 4, "four"],
    ]);
    assert.deepEqual(await collect(again.records()), records, "records() reads the log again");
    await again.append(5, bytes("five"));
    assert.deepEqual(
      (await collect(again.records())).map((r) => r.seq),
      [1, 2, 3, 4],
      "only what was there at open",
    );
    assert.equal(again.stats().bytes, await totalSize(dir));
    await again.close();
  });
});

Deno.test("Wal.append() with a part's CRC computed elsewhere writes the same bytes; a wrong one fails at replay", async () => {
  const head = bytes("h"), body = bytes("a request body, checksummed by a worker thread");
  /** The log file after one append of [head, body] with these part CRCs, and what a reopen replays. */
  const logOf = async (crcs?: (number | undefined)[]) => {
    let file = new Uint8Array(), replayed: string[] = [], warned: string[] = [];
    await withDir(async (dir) => {
      const { wal } = await openWal(dir);
      await wal.append(7, [head, body], crcs);
      await wal.close();
      file = await Deno.readFile(`${dir}/${(await segmentFiles(dir))[0]}`);
      const { wal: again, records, warnings } = await openWal(dir);
      replayed = records.map((r) => text(r.payload)), warned = warnings;
      await again.close();
    });
    return { file, replayed, warned };
  };
  const plain = await logOf();
  const joined = await logOf([undefined, crc32c(body)]);
  assert.deepEqual(joined.file, plain.file, "the same bytes on disk, checksum included");
  assert.deepEqual(joined.replayed, ["h" + text(body)]);
  const wrong = await logOf([undefined, crc32c(body) ^ 1]);
  assert.deepEqual(wrong.replayed, [], "a record whose CRC is wrong is not replayed");
  assert.ok(wrong.warned.some((w) => /checksum/.test(w)), wrong.warned.join("; "));
});

Deno.test("Wal continues seqs across reopen, also once older segments are released", async () => {
  await withDir(async (dir) => {
    const { wal } = await openWal(dir, { segmentBytes: 200 });
    for (let i = 1; i <= 10; i++) assert.equal(await wal.append(0, payloadFor(0, i, 100)), i);
    await wal.releaseBefore(11);
    await wal.close();

    const reopened = await openWal(dir, { segmentBytes: 200 });
    assert.deepEqual(reopened.records.map((r) => r.seq), [10], "only the active segment remains");
    assert.equal(reopened.wal.stats().nextSeq, 11);
    assert.equal(await reopened.wal.append(0, bytes("x")), 11);
    await reopened.wal.close();

    // Even with no record left at all, the last segment's name keeps seqs from going back.
    const files = await segmentFiles(dir);
    for (const name of files) await Deno.truncate(`${dir}/${name}`, 0);
    const emptied = await openWal(dir, { segmentBytes: 200 });
    assert.deepEqual(emptied.records, []);
    const floor = Number(files.at(-1)!.slice(0, 20));
    assert.equal(emptied.wal.stats().nextSeq, floor);
    assert.equal(await emptied.wal.append(0, bytes("y")), floor);
    await emptied.wal.close();
  });
});

Deno.test("Wal.append() group-commits concurrent appends into few syncs", async () => {
  await withDir(async (dir) => {
    const { wal } = await openWal(dir);
    // 200 appenders, each appending 5 times in a row: appends keep arriving while syncs are in flight.
    const seqsBy = await Promise.all(Array.from({ length: 200 }, async (_, k) => {
      const seqs: number[] = [];
      for (let i = 0; i < 5; i++) seqs.push(await wal.append(k, payloadFor(k, i, 200)));
      return seqs;
    }));
    const stats = wal.stats();
    assert.equal(stats.appends, 1000);
    assert.ok(stats.syncs < stats.appends / 4, `syncs ${stats.syncs} for ${stats.appends} appends`);
    assert.ok(stats.syncs > 1, "later appends joined later groups");
    for (const seqs of seqsBy) for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1]);
    assert.equal(new Set(seqsBy.flat()).size, 1000);
    await wal.close();

    const { records, wal: again } = await openWal(dir);
    assert.equal(records.length, 1000);
    const bySeq = new Map(records.map((r) => [r.seq, r]));
    seqsBy.forEach((seqs, k) =>
      seqs.forEach((seq, i) => assert.deepEqual(bySeq.get(seq)!.payload, payloadFor(k, i, 200)))
    );
    await again.close();
  });
});

Deno.test("Wal.append() bounds a group to 1024 records and 16 MiB", async () => {
  await withDir(async (dir) => {
    const { wal } = await openWal(dir, { sync: false });
    await Promise.all(Array.from({ length: 2100 }, (_, i) => wal.append(0, payloadFor(0, i, 10))));
    assert.equal(wal.stats().groups, 3);
    const big = new Uint8Array(6 * 1024 * 1024);
    await Promise.all(Array.from({ length: 6 }, () => wal.append(1, big)));
    assert.equal(wal.stats().groups, 3 + 3, "two 6 MiB records per 16 MiB group");
    await wal.close();
  });
});

Deno.test("Wal.append() rejects beyond maxBytes at once and writes nothing", async () => {
  await withDir(async (dir) => {
    const { wal } = await openWal(dir, { maxBytes: 1000 });
    await assert.rejects(wal.append(0, new Uint8Array(2000)), WalFullError);
    assert.equal(await totalSize(dir), 0);
    assert.equal(await wal.append(0, new Uint8Array(600)), 1);
    // 624 on disk: two more 200-byte records fit, a third is over the bound even before they are written.
    const fits = [wal.append(0, new Uint8Array(150)), wal.append(0, new Uint8Array(150))];
    await assert.rejects(wal.append(0, new Uint8Array(150)), WalFullError);
    assert.deepEqual(await Promise.all(fits), [2, 3]);
    assert.equal(await totalSize(dir), 624 + 2 * 174);
    const error = await wal.append(0, new Uint8Array(1000)).catch((e) => e);
    assert.ok(error instanceof WalFullError && error instanceof RangeError);
    assert.equal(await totalSize(dir), 972);
    assert.equal(wal.stats().bytes, 972);
    await assert.rejects(wal.append(-1, new Uint8Array(1)), RangeError);
    await wal.close();
    await assert.rejects(wal.append(0, new Uint8Array(1)), /after close/);

    const { records, wal: again } = await openWal(dir, { maxBytes: 1000 });
    assert.deepEqual(records.map((r) => r.seq), [1, 2, 3]);
    await again.close();
  });
});

Deno.test("Wal.close() waits for in-flight appends", async () => {
  await withDir(async (dir) => {
    const { wal } = await openWal(dir);
    const appends = Array.from({ length: 50 }, (_, i) => wal.append(0, payloadFor(0, i)));
    await Promise.all([wal.close(), wal.close()]);
    assert.deepEqual(await Promise.all(appends), Array.from({ length: 50 }, (_, i) => i + 1));
    const { records, wal: again } = await openWal(dir);
    assert.equal(records.length, 50);
    await again.close();
  });
});

/** Writes `count` records (payload sizes vary) and returns the segment's bytes and each record's end. */
async function baseLog(dir: string, count: number): Promise<{ data: Uint8Array; ends: number[] }> {
  const { wal } = await openWal(dir);
  const ends: number[] = [];
  let end = 0;
  for (let i = 1; i <= count; i++) {
    await wal.append(i, payloadFor(1, i, 10 + i * 7));
    end += HEADER_BYTES + 10 + i * 7;
    ends.push(end);
  }
  await wal.close();
  const [name] = await segmentFiles(dir);
  return { data: await Deno.readFile(`${dir}/${name}`), ends };
}

Deno.test("Wal.open() recovers from a tail torn at every byte offset of the last record", async () => {
  await withDir(async (dir) => {
    const { data, ends } = await baseLog(`${dir}/base`, 4);
    const lastStart = ends[2];
    for (let cut = lastStart; cut < data.length; cut++) {
      const wdir = `${dir}/cut${cut}`;
      await Deno.mkdir(wdir);
      const file = `${wdir}/00000000000000000001.wal`;
      await Deno.writeFile(file, data.subarray(0, cut));

      const { wal, warnings, records } = await openWal(wdir);
      assert.equal(warnings.length, cut === lastStart ? 0 : 1, `cut ${cut}: ${warnings}`);
      assert.deepEqual(records.map((r) => r.seq), [1, 2, 3], `cut ${cut}`);
      records.forEach((r, i) => assert.deepEqual(r.payload, payloadFor(1, i + 1, 10 + (i + 1) * 7)));
      assert.equal((await Deno.stat(file)).size, lastStart, "truncated at the last good record");
      assert.equal(await wal.append(7, bytes(`after ${cut}`)), 4);
      await wal.close();

      const again = await openWal(wdir);
      assert.deepEqual(again.warnings, []);
      assert.deepEqual(again.records.map((r) => [r.seq, r.kind]), [[1, 1], [2, 2], [3, 3], [4, 7]]);
      assert.equal(text(again.records[3].payload), `after ${cut}`);
      await again.wal.close();
      await Deno.remove(wdir, { recursive: true });
    }
  });
});

Deno.test("Wal.open() truncates a corrupt last record, a zero-filled tail and a garbage tail", async () => {
  await withDir(async (dir) => {
    const { data, ends } = await baseLog(`${dir}/base`, 4);
    const flipped = data.slice();
    flipped[ends[2] + HEADER_BYTES + 3] ^= 0x01;
    const garbage = payloadFor(9, 9, 100);
    const cases: [string, Uint8Array, number[]][] = [
      ["crc", flipped, [1, 2, 3]],
      ["zeros", new Uint8Array([...data, ...new Uint8Array(4096)]), [1, 2, 3, 4]],
      ["zeros-after-torn", new Uint8Array([...data.subarray(0, ends[3] - 5), ...new Uint8Array(4096)]), [
        1,
        2,
        3,
      ]],
      ["garbage", new Uint8Array([...data, ...garbage]), [1, 2, 3, 4]],
    ];
    for (const [label, content, seqs] of cases) {
      const wdir = `${dir}/${label}`;
      await Deno.mkdir(wdir);
      await Deno.writeFile(`${wdir}/00000000000000000001.wal`, content);
      const { wal, warnings, records } = await openWal(wdir);
      assert.equal(warnings.length, 1, label);
      assert.deepEqual(records.map((r) => r.seq), seqs, label);
      assert.equal(await wal.append(0, bytes(label)), seqs.length + 1);
      await wal.close();
      const again = await openWal(wdir);
      assert.deepEqual(again.warnings, [], label);
      assert.deepEqual(again.records.map((r) => r.seq), [...seqs, seqs.length + 1], label);
      await again.wal.close();
    }
  });
});

Deno.test("Wal.open() skips the rest of a corrupt older segment and replays the later ones", async () => {
  await withDir(async (dir) => {
    const frame = HEADER_BYTES + 100;
    const { wal } = await openWal(dir, { segmentBytes: 5 * frame });
    for (let i = 1; i <= 20; i++) await wal.append(0, payloadFor(2, i, 100));
    await wal.close();
    const files = await segmentFiles(dir);
    assert.equal(files.length, 4);
    // A payload bit flip in the 3rd record of segment 1, and a length field hit in the 2nd of segment 2.
    const seg1 = await Deno.readFile(`${dir}/${files[0]}`);
    seg1[2 * frame + HEADER_BYTES + 50] ^= 0x40;
    await Deno.writeFile(`${dir}/${files[0]}`, seg1);
    const seg2 = await Deno.readFile(`${dir}/${files[1]}`);
    seg2[frame + 5] ^= 0x01;
    await Deno.writeFile(`${dir}/${files[1]}`, seg2);

    const { wal: reopened, warnings, records } = await openWal(dir, { segmentBytes: 5 * frame });
    assert.equal(warnings.length, 2, warnings.join("\n"));
    assert.match(warnings[0], /skipping the rest/);
    const expected = [1, 2, 6, ...Array.from({ length: 10 }, (_, i) => 11 + i)];
    assert.deepEqual(records.map((r) => r.seq), expected);
    for (const r of records) assert.deepEqual(r.payload, payloadFor(2, r.seq, 100));
    assert.equal((await Deno.stat(`${dir}/${files[0]}`)).size, 5 * frame, "older segments are not rewritten");
    assert.equal(await reopened.append(0, bytes("next")), 21);
    await reopened.close();
  });
});

Deno.test("Wal.append() gives a record larger than segmentBytes a segment of its own", async () => {
  await withDir(async (dir) => {
    const { wal } = await openWal(dir, { segmentBytes: 100 });
    await wal.append(0, new Uint8Array(10));
    await wal.append(0, new Uint8Array(500));
    await wal.append(0, new Uint8Array(10));
    assert.deepEqual(await segmentFiles(dir), [1, 2, 3].map((s) => `${String(s).padStart(20, "0")}.wal`));
    assert.deepEqual(
      await Promise.all((await segmentFiles(dir)).map((n) => Deno.stat(`${dir}/${n}`).then((s) => s.size))),
      [34, 524, 34],
    );
    await wal.close();
  });
});

Deno.test("Wal.releaseBefore() deletes only fully released segments, never the active one", async () => {
  await withDir(async (dir) => {
    const frame = HEADER_BYTES + 50;
    const { wal } = await openWal(dir, { segmentBytes: 5 * frame });
    for (let i = 1; i <= 20; i++) await wal.append(0, payloadFor(3, i, 50));
    const names = await segmentFiles(dir);
    assert.deepEqual(names.map((n) => Number(n.slice(0, 20))), [1, 6, 11, 16]);

    await wal.releaseBefore(5);
    assert.deepEqual(await segmentFiles(dir), names, "seq 5 is not released yet");
    await wal.releaseBefore(8);
    assert.deepEqual(await segmentFiles(dir), names.slice(1));
    await wal.releaseBefore(11);
    assert.deepEqual(await segmentFiles(dir), names.slice(2));
    await wal.releaseBefore(1_000);
    assert.deepEqual(await segmentFiles(dir), names.slice(3), "the active segment stays");
    assert.deepEqual(wal.stats().segments, 1);
    assert.equal(wal.stats().bytes, await totalSize(dir));
    assert.equal(await wal.append(0, bytes("more")), 21);
    await wal.close();

    const { records, wal: again } = await openWal(dir, { segmentBytes: 5 * frame });
    assert.deepEqual(records.map((r) => r.seq), [16, 17, 18, 19, 20, 21]);
    await again.close();
  });
});

Deno.test("Wal.rotate() starts a new segment so the active one can be released; appends meanwhile go after it", async () => {
  await withDir(async (dir) => {
    // One segment would hold everything: without a rotation nothing could ever be released.
    const { wal } = await openWal(dir, { segmentBytes: 1 << 20 });
    for (let i = 1; i <= 5; i++) await wal.append(0, payloadFor(5, i, 40));
    assert.deepEqual(wal.segmentList().map((s) => s.lastSeq), [5]);
    await wal.releaseBefore(6);
    assert.equal(wal.stats().segments, 1, "the active segment is never released");
    // Appends made while the rotation runs wait for the new segment.
    const during = [wal.rotate(), wal.append(0, bytes("six")), wal.append(0, bytes("seven"))];
    await Promise.all(during);
    assert.deepEqual(await segmentFiles(dir), ["00000000000000000001.wal", "00000000000000000006.wal"]);
    assert.deepEqual(wal.segmentList().map((s) => s.lastSeq), [5, 7]);
    await wal.releaseBefore(6);
    assert.deepEqual(await segmentFiles(dir), ["00000000000000000006.wal"]);
    assert.equal(wal.stats().bytes, await totalSize(dir));
    // Rotating an empty active segment does nothing.
    await wal.releaseBefore(8);
    await wal.rotate();
    await wal.rotate();
    assert.equal(wal.stats().segments, 2);
    await wal.rotate();
    assert.equal(wal.stats().segments, 2, "an empty active segment is not rotated");
    await wal.append(0, bytes("eight"));
    await wal.close();
    const { records, wal: again } = await openWal(dir);
    assert.deepEqual(records.map((r) => [r.seq, text(r.payload)]), [[6, "six"], [7, "seven"], [8, "eight"]]);
    await again.close();
  });
});

Deno.test({
  name: "Wal.append() rejects a whole group with WalFullError on ENOSPC, and later appends work",
  ignore: !(await Deno.stat("/dev/full").then(() => true, () => false)),
  fn: async () => {
    await withDir(async (dir) => {
      // The active segment is /dev/full: every write to it fails with ENOSPC, and it cannot be truncated.
      await Deno.symlink("/dev/full", `${dir}/00000000000000000001.wal`);
      const { wal } = await openWal(dir);
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => wal.append(0, payloadFor(4, i))),
      );
      for (const r of results) {
        assert.equal(r.status, "rejected");
        assert.ok(r.reason instanceof WalFullError, String(r.reason));
      }
      assert.equal(wal.stats().groups, 0);
      const seqs = await Promise.all([1, 2, 3].map((i) => wal.append(1, payloadFor(5, i))));
      assert.deepEqual(seqs, [11, 12, 13]);
      await wal.close();

      const { records, warnings, wal: again } = await openWal(dir);
      assert.deepEqual(warnings, []);
      assert.deepEqual(records.map((r) => r.seq), [11, 12, 13]);
      await again.releaseBefore(100);
      assert.deepEqual(await segmentFiles(dir), ["00000000000000000011.wal"]);
      await again.close();
    });
  },
});

const RUNTIMES = [["Deno", [Deno.execPath(), "run", "-A"]], ["Bun", [BUN]]] as const;

for (const [label, runtime] of RUNTIMES) {
  Deno.test({
    name: `Wal.append() truncates a failed group away (file size limit), and later appends work (${label})`,
    ignore: !(await Deno.stat(runtime[0]).then(() => true, () => false)),
    fn: () =>
      withDir(async (dir) => {
        // SIGXFSZ ignored, so a write past RLIMIT_FSIZE fails with EFBIG after a partial write.
        const child = new Deno.Command("sh", {
          args: ["-c", `ulimit -f 40; trap '' XFSZ; exec "$0" "$@"`, ...runtime, WRITER, "fill", dir],
          stdout: "piped",
          stderr: "piped",
        });
        const { code, stdout, stderr } = await child.output();
        assert.equal(code, 0, new TextDecoder().decode(stderr));
        const lines = new TextDecoder().decode(stdout).trim().split("\n");
        const failed = lines.filter((l) => l.startsWith("err"));
        assert.equal(failed.length, 5, `the whole failing group rejects:\n${lines.join("\n")}`);
        for (const line of failed) assert.match(line, /^err other /, "EFBIG is not a full disk");
        assert.match(lines.at(-1)!, /^ok \d+ 9 0$/, "an append after the failed group succeeds");
        const acked = lines.filter((l) => l.startsWith("ok")).map((l) => l.split(" ").slice(1).map(Number));
        assert.ok(acked.length >= 6);

        const { records, warnings, wal } = await openWal(dir);
        assert.deepEqual(warnings, [], "the log ends at a valid record");
        assert.deepEqual(records.map((r) => r.seq), acked.map(([seq]) => seq));
        for (const [i, [, k, n]] of acked.entries()) {
          assert.deepEqual(records[i].payload, payloadFor(k, n, k === 9 ? 10 : 1100));
        }
        await wal.close();
      }),
  });
}

/** Runs the loop writer, kills it with SIGKILL after `acks` acknowledgements, returns every ack it printed. */
async function killWriter(runtime: string[], dir: string, acks: number): Promise<number[][]> {
  const child = new Deno.Command(runtime[0], {
    args: [...runtime.slice(1), WRITER, "loop", dir],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines: number[][] = [];
  let killed = false;
  let buffered = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    buffered += decoder.decode(chunk, { stream: true });
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    for (const line of parts) lines.push(line.split(" ").map(Number));
    if (!killed && lines.length >= acks) {
      child.kill("SIGKILL");
      killed = true;
    }
  }
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL", "the writer died from the kill, not on its own");
  return lines;
}

for (const [label, runtime] of RUNTIMES) {
  Deno.test({
    name: `Wal keeps every acknowledged append through kill -9 of a ${label} writer`,
    ignore: !(await Deno.stat(runtime[0]).then(() => true, () => false)),
    fn: async () => {
      await withDir(async (dir) => {
        const acked = new Map<number, [number, number]>();
        for (let round = 0; round < 6; round++) {
          const lines = await killWriter([...runtime], dir, 50 + Math.floor(Math.random() * 400));
          assert.ok(lines.length >= 50);
          for (const [seq, k, i] of lines) {
            assert.ok(!acked.has(seq), `seq ${seq} acknowledged twice`);
            acked.set(seq, [k, i]);
          }
          const { records, wal } = await openWal(dir, { segmentBytes: 64 * 1024 });
          const bySeq = new Map(records.map((r) => [r.seq, r]));
          for (const [seq, [k, i]] of acked) {
            const record = bySeq.get(seq);
            assert.ok(record !== undefined, `round ${round}: acknowledged seq ${seq} is missing`);
            assert.equal(record.kind, k);
            assert.deepEqual(record.payload, payloadFor(k, i));
          }
          await wal.close();
        }
      });
    },
  });
}

Deno.test("Wal.records() hands over only the records wanted, and skips unwanted payloads of checked segments", async () => {
  await withDir(async (dir) => {
    const { wal } = await openWal(dir);
    const big = 3 * 1024 * 1024;
    for (let i = 1; i <= 3; i++) {
      await wal.append(1, payloadFor(1, i, big));
      await wal.append(2, bytes(`small ${i}`));
    }
    await wal.close();
    const total = await totalSize(dir);

    const again = await Wal.open({ dir, maxBytes: 1 << 30 });
    const small: WalRecord[] = [];
    for await (const r of again.records({ want: (kind) => kind === 2 })) small.push(r);
    assert.deepEqual(small.map((r) => [r.seq, text(r.payload)]), [[2, "small 1"], [4, "small 2"], [
      6,
      "small 3",
    ]]);
    const read = again.stats().readBytes;
    assert.ok(read < total / 2, `read ${read} of ${total} bytes to find the small records`);
    // The large ones, still intact, when asked for.
    let n = 0;
    for await (const r of again.records({ want: (kind) => kind === 1 })) {
      assert.deepEqual(r.payload, payloadFor(1, r.seq === 1 ? 1 : r.seq === 3 ? 2 : 3, big));
      n++;
    }
    assert.equal(n, 3);
    await again.close();
  });
});

Deno.test("Wal.releaseBefore({ roll }) replaces a fully released active segment by an empty one", async () => {
  await withDir(async (dir) => {
    const { wal } = await openWal(dir, { rollReleasedBytes: 100 });
    for (let i = 1; i <= 5; i++) await wal.append(0, payloadFor(0, i, 50));
    // Not every record released, or not asked to: the active segment stays.
    await wal.releaseBefore(5, { roll: true });
    await wal.releaseBefore(6);
    assert.equal(wal.stats().releaseRolls, 0);
    assert.equal((await segmentFiles(dir)).length, 1);
    await wal.releaseBefore(6, { roll: true });
    assert.equal(wal.stats().releaseRolls, 1);
    assert.deepEqual(await segmentFiles(dir), [`${"6".padStart(20, "0")}.wal`]);
    assert.equal(wal.stats().bytes, 0);
    assert.equal(await wal.append(0, bytes("next")), 6);
    // Below the size threshold: no roll.
    await wal.releaseBefore(7, { roll: true });
    assert.equal(wal.stats().releaseRolls, 1);
    // An append waiting to be written: the active segment is kept (its record may be unaccounted for).
    for (let i = 7; i <= 9; i++) await wal.append(0, payloadFor(0, i, 50));
    const during = wal.append(0, bytes("during"));
    await wal.releaseBefore(10, { roll: true });
    assert.equal(await during, 10);
    assert.equal(wal.stats().releaseRolls, 1);
    await wal.close();
    const { records, wal: reopened } = await openWal(dir);
    assert.deepEqual(records.map((r) => r.seq), [6, 7, 8, 9, 10]);
    await reopened.close();
  });
});
