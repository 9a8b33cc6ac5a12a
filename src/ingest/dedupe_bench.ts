/**
 * What a request's identity costs on the hot path: `deno bench -A src/ingest/dedupe_bench.ts`.
 *
 * The identity is MurmurHash3_x86_128 of the decompressed body (see `dedupe.ts`); XXH64 (64 bits, with
 * its 64-bit multiplies done in 16-bit pieces) is shown beside it, and CRC-32C (what the write-ahead log
 * already computes over every request) for scale.
 * Also the table: one lookup and one insert in a table of a million identities.
 *
 * @module
 */

import { crc32c } from "../codecs/crc32c.ts";
import { xxh64 } from "../core/parquet/xxh64.ts";
import { requestId, SeenTable } from "./dedupe.ts";

const body = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);

Deno.bench({
  name: "identity (MurmurHash3 x86_128), 1 MiB",
  group: "hash",
  baseline: true,
  fn: () => void requestId(0, 0, body),
});
Deno.bench({ name: "XXH64 once, 1 MiB", group: "hash", fn: () => void xxh64(body) });
Deno.bench({ name: "CRC-32C, 1 MiB", group: "hash", fn: () => void crc32c(body) });

const table = new SeenTable(1_000_000, 600_000);
for (let i = 0; i < 1_000_000; i++) table.add(Uint32Array.of(i, i * 7, i * 13, i * 31), 0);
let n = 1_000_000;
Deno.bench({
  name: "table of 1M: lookup of an unknown identity, then insert (evicting the oldest)",
  group: "table",
  fn: () => {
    const id = Uint32Array.of(n, n * 7, n * 13, n * 31);
    if (!table.find(id, 0)) table.add(id, 0);
    n++;
  },
});
