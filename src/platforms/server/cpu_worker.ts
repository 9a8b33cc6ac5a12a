/**
 * Entry of a CPU worker thread of the server (`cpu_pool.ts` starts them): it decodes request bodies into
 * rows and encodes batches into Parquet (`cpu_jobs.ts`), one job at a time in the order they arrive.
 * Nothing else: the main thread keeps the log, batching, memory accounting and the store.
 *
 * It registers the `node:zlib` page compressors (zstd, gzip), and loads parquet-wasm when the configured
 * codec needs it, from the path the main thread names (the single executable embeds the file).
 *
 * A decode pauses every CANCEL_CHECK_MS of work, so that a `cancel` from the main thread (its budget
 * refused the decoded bytes: 429/503) stops it within one slice; an encode runs through.
 *
 * @module
 */

import { rowsBuffers } from "../../core/table/rows.ts";
import { pauseEvery } from "../../http/pause.ts";
import { prepareParquet, useWasmPath } from "../wasm.ts";
import {
  CancelledError,
  errorData,
  type FromWorker,
  runDecode,
  runEncode,
  type ToWorker,
} from "./cpu_jobs.ts";

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
};

/**
 * How often a decode looks for a cancel. A pause is a timer (what makes Deno poll for messages), clamped
 * to 1-4 ms: every 20 ms (the main thread's rhythm, where other clients wait) cost a worker's decode ~25 %
 * (measured); every 200 ms costs ~2 %, and a cancelled decode runs at most that much longer.
 */
const CANCEL_CHECK_MS = 200;

/**
 * A young-generation garbage collection, where the runtime exposes one: Deno when started with
 * `--v8-flags=--expose-gc`, as `deno task start` is (`gc({ type: "minor" })`); Bun (`Bun.gc(false)`, which
 * does not block). Elsewhere undefined.
 */
const collect: (() => void) | undefined = (() => {
  const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: (options?: { type: string }) => void };
  if (g.Bun) return () => g.Bun!.gc(false);
  return typeof g.gc === "function" ? () => g.gc!({ type: "minor" }) : undefined;
})();

/**
 * How long a thread is idle before it collects its young garbage. Rows are shared memory (see
 * `decodedSnapshot`): their memory is freed only once every thread that saw them has dropped its handles,
 * and a thread that goes idle allocates nothing, so it would not collect for a long time. Measured with 2
 * workers: a burst of large requests (`tests/reliability/memory_test.ts`) raised peak RSS by +201 to +236 MiB
 * without collecting, against +161 to +175 before rows were shared. A full collection after each idle gap
 * brought it to +145 to +173 MiB but cost ~15 % more CPU per record and doubled p99 at 170k logs records/s
 * (at most one a second: still +10-15 % CPU, and +192 MiB). A young-generation one (the handles are young):
 * +127 to +166 MiB, with CPU per record and p99 as without (9.1-10.2 against 9.4-9.9 µs/record).
 */
const IDLE_COLLECT_MS = 50;
let jobsWaiting = 0;
let idleTimer: ReturnType<typeof setTimeout> | undefined;

/** Jobs cancelled by the main thread (while queued or running). */
const cancelled = new Set<number>();
/** Jobs run one after another: a worker is one core. */
let chain: Promise<void> = Promise.resolve();
let prepared: Promise<void> = Promise.resolve();

/**
 * Frees a job's input buffers now. A worker that goes idle allocates nothing, so its garbage would wait
 * for a collection that never comes: with two workers, a replay held ~100 MiB more at rest (measured).
 * Detaching a buffer (`transfer(0)`) releases its memory at once, without a collection.
 */
function release(buffers: readonly ArrayBuffer[]): void {
  for (const b of buffers) if (!b.detached) b.transfer(0);
}

async function run(job: ToWorker & { type: "decode" | "encode" }): Promise<void> {
  const started = performance.now();
  const busy = () => performance.now() - started;
  if (cancelled.delete(job.id)) {
    self.postMessage({ type: "failed", id: job.id, error: { kind: "cancelled" }, busyMs: 0 });
    return;
  }
  try {
    await prepared;
    if (job.type === "encode") {
      const { file, transfer } = await runEncode(job);
      self.postMessage({ type: "encoded", id: job.id, file, busyMs: busy() }, transfer);
      release(rowsBuffers(job.rows));
      return;
    }
    const pause = pauseEvery(CANCEL_CHECK_MS);
    const { result, transfer } = await runDecode(
      job,
      job.progress ? (bytes) => self.postMessage({ type: "progress", id: job.id, bytes }) : undefined,
      async () => {
        await pause();
        if (cancelled.has(job.id)) throw new CancelledError();
      },
    );
    self.postMessage({ type: "decoded", id: job.id, result, busyMs: busy() }, transfer);
    release([job.body.buffer as ArrayBuffer]);
  } catch (e) {
    self.postMessage({ type: "failed", id: job.id, error: errorData(e), busyMs: busy() });
  } finally {
    cancelled.delete(job.id);
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const message = e.data;
  switch (message.type) {
    case "init":
      if (message.wasmPath) useWasmPath(message.wasmPath);
      // A failure to load fails every job (as an internal error), not the thread.
      prepared = prepareParquet(message.compression ?? "zstd");
      prepared.then(() => self.postMessage({ type: "ready" }), () => {});
      return;
    case "cancel":
      cancelled.add(message.id);
      return;
    case "crash":
      // Uncaught, as a bug's error would be: the pool must see the thread fail and replace it.
      throw new Error("crash requested");
    default:
      jobsWaiting++;
      clearTimeout(idleTimer);
      chain = chain.then(() => run(message)).finally(() => {
        if (--jobsWaiting === 0 && collect) idleTimer = setTimeout(collect, IDLE_COLLECT_MS);
      });
  }
};
