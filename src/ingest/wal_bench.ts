/**
 * Append throughput of the WAL with sync on: `deno bench -A src/ingest/wal_bench.ts`.
 *
 * One iteration = every appender appends 4 records in a row (so groups form the way they do under load),
 * then old segments are released so the disk use stays flat. Throughput = appenders × 4 × payload / time.
 *
 * @module
 */

import { Wal } from "./wal.ts";

const ROUNDS = 4;
const dir = await Deno.makeTempDir({ prefix: "wal_bench_" });
addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

for (const [label, size] of [["5 KB", 5_000], ["1 MB", 1_000_000]] as const) {
  for (const appenders of [1, 4, 64]) {
    const payload = new Uint8Array(size).map((_, i) => i * 13);
    const wal = await Wal.open({ dir: `${dir}/${label.replace(" ", "")}-${appenders}`, maxBytes: 2 ** 40 });
    Deno.bench({
      name: `${appenders} appenders × ${label}`,
      group: label,
      baseline: appenders === 1,
      n: size > 100_000 ? 10 : 100,
      warmup: 2,
      async fn(b) {
        b.start();
        await Promise.all(Array.from({ length: appenders }, async () => {
          for (let i = 0; i < ROUNDS; i++) await wal.append(0, payload);
        }));
        b.end();
        await wal.releaseBefore(wal.stats().nextSeq);
      },
    });
  }
}
