/**
 * Runs the decodeRequest fuzz cases in a Worker, so the test can terminate it if a case hangs. Announces
 * every input before decoding it; the test keeps the last one to report a hang.
 *
 * Message in: `{ seed, runs }`. Messages out: `{ type: "case", bytes }` per case, then
 * `{ type: "done", failure?, stats, files }`: `files` are the Parquet files of every case that decoded,
 * for the test to read back (FuzzFiles).
 *
 * @module
 */

import fc from "fast-check";
import { decodeRequest } from "../../src/core/convert.ts";
import { encodeFile } from "../../src/core/convert.ts";
import { DecodeError } from "../../src/core/errors.ts";
import type { Signal } from "../../src/core/table/schema.ts";
import { loadParquetWasm } from "../../src/platforms/wasm.ts";
import { corpus, describeCase, mutate, mutationsArb } from "./fuzz_cases.ts";
import { FuzzFiles, type FuzzFilesSnapshot } from "./fuzz_readback.ts";

const port = self as unknown as { postMessage(message: unknown): void; onmessage: unknown };

/** Counters the test prints. */
export interface FuzzStats {
  runs: number;
  /** Mutated requests that still decoded (and then also encoded to Parquet). */
  decoded: number;
  /** Refused with DecodeError. */
  refused: number;
  /** Slowest case, in ms. */
  slowestMs: number;
}

port.onmessage = async (event: MessageEvent<{ seed: number; runs: number }>) => {
  await loadParquetWasm();
  const seeds = corpus();
  const stats: FuzzStats = { runs: 0, decoded: 0, refused: 0, slowestMs: 0 };
  const files = new FuzzFiles();
  const signals: Signal[] = ["logs", "traces", "metrics"];
  const property = fc.property(
    fc.nat(seeds.length - 1),
    mutationsArb,
    // Now and then the body goes to another signal's decoder.
    fc.option(fc.constantFrom(...signals), { freq: 8 }),
    (index, mutations, otherSignal) => {
      const s = seeds[index];
      const bytes = mutate(s, mutations);
      const signal = otherSignal ?? s.signal;
      port.postMessage({ type: "case", bytes, signal, format: s.format });
      const t0 = performance.now();
      stats.runs++;
      try {
        let decoded;
        try {
          decoded = decodeRequest(signal, bytes, { format: s.format });
        } catch (e) {
          if (e instanceof DecodeError) {
            stats.refused++;
            return;
          }
          throw new Error(`decodeRequest threw ${(e as Error)?.name}: ${(e as Error)?.message ?? e}`, {
            cause: e,
          });
        }
        let rows = 0;
        for (const t of decoded.tables) rows += t.length;
        if (rows !== decoded.records || decoded.rejected < 0) {
          throw new Error(`inconsistent result: ${decoded.records} records, ${rows} rows`);
        }
        // Whatever is accepted is logged and later written: it must encode, or it would poison the log.
        for (const t of decoded.tables) files.add(encodeFile(t), `${s.name}, case ${stats.runs}`);
        stats.decoded++;
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${describeCase(s, mutations, bytes)}`, { cause: e });
      } finally {
        stats.slowestMs = Math.max(stats.slowestMs, performance.now() - t0);
      }
    },
  );
  const details = fc.check(property, { seed: event.data.seed, numRuns: event.data.runs });
  port.postMessage({
    type: "done",
    stats,
    files: files.snapshot() satisfies FuzzFilesSnapshot,
    failure: details.failed
      ? `${
        details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
      }` +
        ` (fast-check seed ${details.seed}, path ${details.counterexamplePath})`
      : undefined,
  });
};
