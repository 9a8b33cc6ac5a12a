/**
 * The write-ahead log alone, as the server appends to it (`src/ingest/wal.ts`, fsync on): `appenders`
 * requests in flight, each appending `[2-byte head, body]` (the server logs the decompressed body) and
 * waiting for its group commit, for `seconds`. Reports MB/s, appends/s, records/s (appends × the records
 * of the request the body stands for), fsyncs (groups) per second, and the CPU per append: the whole
 * process (the runtime's I/O threads write and fsync) and its main thread alone (framing, CRC-32C,
 * bookkeeping: what the server's main thread pays). Run pinned to one core by `bench/scaling.ts`.
 *
 * ```sh
 * taskset -c 0 deno run -A bench/wal_ceiling.ts --dir .bench/wal --seconds 3 --appenders 1,8
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Wal } from "../src/ingest/wal.ts";
import { cpuDelta, cpuSplit } from "./proc_stat.ts";

/** A request size to log. */
export interface WalCase {
  label: string;
  /** Body bytes (decompressed). */
  bytes: number;
  /** Records the body holds. */
  records: number;
}

/** What one case measured. */
export interface WalCeilingResult extends WalCase {
  appenders: number;
  seconds: number;
  appends: number;
  groups: number;
  mbPerSecond: number;
  appendsPerSecond: number;
  recordsPerSecond: number;
  /** CPU ms per append: whole process, and its main thread. */
  cpuMsPerAppend: number;
  mainMsPerAppend: number;
}

/** Logs `case_` with `appenders` in flight for `seconds` in a fresh log under `dir` (removed after). */
export async function walCeiling(
  dir: string,
  case_: WalCase,
  appenders: number,
  seconds: number,
): Promise<WalCeilingResult> {
  const walDir = await Deno.makeTempDir({ dir, prefix: "wal_" });
  const wal = await Wal.open({ dir: walDir, maxBytes: 2 ** 40 });
  const head = new Uint8Array([0, 0]);
  const body = new Uint8Array(case_.bytes).map((_, i) => (i * 131) ^ (i >> 9));
  let appends = 0, releasing = false;
  // Warm-up: one group, so the segment exists and the code is compiled.
  await wal.append(1, [head, body]);
  const before = cpuSplit(Deno.pid);
  const groups0 = wal.stats().groups;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(Array.from({ length: appenders }, async () => {
    while (performance.now() < deadline) {
      await wal.append(1, [head, body]);
      appends++;
      // Keep the disk use flat, as the server does once batches are written: whole segments released.
      if (!releasing && wal.stats().bytes > 512 * 1024 * 1024) {
        releasing = true;
        await wal.rotate();
        await wal.releaseBefore(wal.stats().nextSeq);
        releasing = false;
      }
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  const cpu = cpuDelta(before, cpuSplit(Deno.pid));
  const groups = wal.stats().groups - groups0;
  await wal.close();
  await Deno.remove(walDir, { recursive: true });
  const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
  return {
    ...case_,
    appenders,
    seconds: round(elapsed),
    appends,
    groups,
    mbPerSecond: round((appends * (case_.bytes + 2)) / 1e6 / elapsed, 1),
    appendsPerSecond: round(appends / elapsed, 1),
    recordsPerSecond: Math.round((appends * case_.records) / elapsed),
    cpuMsPerAppend: round((cpu.total * 1000) / Math.max(1, appends), 3),
    mainMsPerAppend: round((cpu.main * 1000) / Math.max(1, appends), 3),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      dir: { type: "string" },
      seconds: { type: "string", default: "3" },
      appenders: { type: "string", default: "1,8" },
      cases: { type: "string" },
    },
  });
  const dir = values.dir ?? await Deno.makeTempDir({ prefix: "wal_ceiling_" });
  Deno.mkdirSync(dir, { recursive: true });
  const cases: WalCase[] = values.cases
    ? JSON.parse(values.cases)
    : [{ label: "logs protobuf, 5,000 records", bytes: 1_435_317, records: 5000 }];
  const results: WalCeilingResult[] = [];
  for (const c of cases) {
    for (const n of values.appenders.split(",").map(Number)) {
      const r = await walCeiling(dir, c, n, Number(values.seconds));
      console.error(
        `wal: ${c.label}, ${n} in flight: ${r.mbPerSecond} MB/s, ${r.recordsPerSecond} records/s, ` +
          `${r.cpuMsPerAppend} ms CPU/append (main thread ${r.mainMsPerAppend})`,
      );
      results.push(r);
    }
  }
  console.log(JSON.stringify(results));
}
