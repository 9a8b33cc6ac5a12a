/**
 * The server's pool of CPU worker threads (issue #12): N Web Workers (`cpu_worker.ts`) that decode request
 * bodies into rows and encode cut batches into Parquet, while the main thread keeps everything that
 * decides what is stored and when: HTTP, request identity, the write-ahead log, batching per (table,
 * service, hour), memory accounting and the store. A batch is never split by worker: the main thread
 * cuts it as with one thread, and one worker encodes it whole, so objects are the same.
 *
 * Why threads in one process rather than processes sharing the port: the log, the retry window and the
 * batches stay in one place (several processes would each need their own log and would each write their
 * own, smaller objects per hour), and rows cross threads as typed arrays (`Rows.snapshot`), not
 * re-encoded: decoded rows in shared memory, which the encoding worker reads in place (see `cpu_jobs.ts`).
 * The HTTP accept loop and the log's group-committed fsync stay on the main thread: with the identity,
 * batching and hand-off, 19-29 % of the CPU per record with 2 workers once the hot code is compiled, the
 * serial part (BENCHMARKS.md "Use every core: fourth run": about 2.6-3.5x one core on 8).
 *
 * Bounds: jobs wait in the main thread's queue (their bodies and rows are already counted there: the
 * in-flight budget, the encode queue) until a worker has room; a worker holds at most `maxJobsPerWorker`
 * jobs (running and waiting its turn), and nothing waits behind an encode. So a worker cannot buffer unbounded
 * work, and `stats()` says the most it ever held.
 *
 * Failures: a job's own error comes back as the same error class and message as in-thread (a DecodeError
 * is a 400 with the same text). A worker that dies (an uncaught error; the runtime stopping it) fails its
 * decodes with 503 (the client retries) and gives its encodes to the other workers (tried up to three
 * times), and is replaced. `close()` terminates the workers: after the final flush, so the process exits.
 *
 * @module
 */

import type { AsyncDecodeOptions, Decoded, FileOptions, ParquetFile } from "../../core/convert.ts";
import type { ParquetCompression } from "../../core/parquet/parquet.ts";
import type { RowSelection } from "../../core/table/rows.ts";
import type { Signal } from "../../core/table/schema.ts";
import { UnavailableError } from "../../ingest/errors.ts";
import type { Logger } from "../../ingest/ingest.ts";
import type { BodyChecks } from "../../ingest/sink.ts";
import { wasmPathInUse } from "../wasm.ts";
import {
  CancelledError,
  decodedFrom,
  type DecodedSnapshot,
  encodeJob,
  encodeJobAsync,
  errorFrom,
  type FromWorker,
  type ToWorker,
} from "./cpu_jobs.ts";

/** Pool settings. */
export interface CpuPoolOptions {
  /** Worker threads (at least 1). */
  size: number;
  /** The Parquet codec: a worker loads parquet-wasm only when it needs it. */
  compression: ParquetCompression;
  /** Jobs one worker holds at once, running or waiting its turn (nothing behind an encode). Default 2. */
  maxJobsPerWorker?: number;
  /** The worker's module. Default: `cpu_worker.ts` beside this file. */
  workerUrl?: string | URL;
  /** Attempts of an encode whose worker dies. Default 3. */
  maxEncodeAttempts?: number;
  log?: Logger;
}

/** What the pool did, for the metrics and the tests. */
export interface CpuPoolStats {
  workers: number;
  /** Jobs waiting in the main thread for a worker. */
  queued: number;
  /** Jobs held by workers now. */
  inFlight: number;
  /** The most jobs one worker held at once, since the start. */
  peakJobsPerWorker: number;
  /** The most jobs waiting in the main thread at once. */
  peakQueued: number;
  /** Per worker slot: seconds spent on jobs. */
  busySeconds: number[];
  decodes: number;
  encodes: number;
  /** Workers replaced after dying. */
  restarts: number;
  /** Bytes copied into encode jobs (the batches' rows, unless shared: then their row numbers). */
  encodeCopyBytes: number;
}

interface Job {
  readonly id: number;
  readonly kind: "decode" | "encode";
  message: ToWorker & { type: "decode" | "encode" };
  transfer: ArrayBuffer[];
  /** Builds the message again (its buffers went with the first attempt): encodes, whose rows stay here. */
  readonly again?: () => { message: Job["message"]; transfer: ArrayBuffer[] };
  resolve(value: unknown): void;
  reject(error: unknown): void;
  onProgress?: (bytes: number) => void;
  /** The promise has been settled (a cancelled decode may still run in its worker). */
  settled: boolean;
  attempts: number;
}

interface Slot {
  readonly index: number;
  worker: Worker;
  readonly jobs: Map<number, Job>;
  busyMs: number;
  /** Settles once the thread has loaded its modules (it says "ready"), or has died. */
  readonly loaded: Promise<void>;
  markLoaded(): void;
}

/** A pool of CPU worker threads; see the module doc. */
export class CpuPool {
  readonly size: number;
  /**
   * Encodes the ingest may run at once: one worker fewer than the pool (at least one), so that a worker is
   * always free to decode. An encode takes hundreds of ms and nothing waits behind it; with every worker
   * encoding, the requests arriving meanwhile waited for the first to finish (p99 ~1.3 s with 2 workers).
   */
  readonly concurrency: number;
  /** Encodes at once while the encode queue is past half its bound: every worker (see BatchEncoder). */
  readonly maxConcurrency: number;
  readonly #options: CpuPoolOptions;
  readonly #url: string;
  readonly #maxJobs: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closed = false;
  readonly #counts = { decodes: 0, encodes: 0, restarts: 0, peakJobs: 0, peakQueued: 0, copied: 0 };

  constructor(options: CpuPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new RangeError(`a pool needs at least one worker, got ${options.size}`);
    }
    this.#options = options;
    this.size = options.size;
    this.concurrency = Math.max(1, options.size - 1);
    this.maxConcurrency = options.size;
    this.#maxJobs = Math.max(1, options.maxJobsPerWorker ?? 2);
    const url = options.workerUrl ?? new URL("./cpu_worker.ts", import.meta.url);
    this.#url = typeof url === "string" ? url : url.href;
    for (let i = 0; i < options.size; i++) this.#slots.push(this.#start(i));
  }

  #start(index: number): Slot {
    const worker = new Worker(this.#url, { type: "module" });
    let markLoaded!: () => void;
    const loaded = new Promise<void>((resolve) => markLoaded = resolve);
    const slot: Slot = { index, worker, jobs: new Map(), busyMs: 0, loaded, markLoaded };
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.#received(slot, e.data);
    worker.onerror = (e: ErrorEvent) => {
      // Handled here: unhandled, a worker's error would end the whole process.
      e.preventDefault();
      this.#died(slot, e.message || "uncaught error");
    };
    worker.onmessageerror = () => this.#died(slot, "a message could not be read");
    const init: ToWorker = {
      type: "init",
      compression: this.#options.compression,
      wasmPath: wasmPathInUse(),
    };
    worker.postMessage(init);
    return slot;
  }

  /**
   * Decodes a request body in a worker: the same result and errors as `decodeRequestAsync`. With `move`,
   * a body that owns its whole buffer is moved to the worker rather than copied, and comes back as the
   * result's `body`: the caller's view is detached from then on, even if the decode fails.
   */
  decode(
    signal: Signal,
    body: Uint8Array,
    options: AsyncDecodeOptions,
    move = false,
  ): Promise<Decoded & BodyChecks> {
    const { pause: _p, onDecodedBytes, stats: _s, format, ...limits } = options;
    // With `move`, moved to the worker and back with the result when the body owns its whole buffer (a body
    // read from the network does): no copy. Otherwise (the caller keeps it; or a view into a larger buffer,
    // which may hold other data) a copy of its own, moved. (Not `slice`: on a node Buffer that is a view.)
    const owns = move && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength &&
      body.buffer instanceof ArrayBuffer && body.byteLength > 0;
    const copy = owns ? body : new Uint8Array(body);
    const message: ToWorker & { type: "decode" } = {
      type: "decode",
      id: this.#nextId++,
      signal,
      format,
      body: copy,
      limits,
      progress: onDecodedBytes !== undefined,
      giveBack: owns,
    };
    this.#counts.decodes++;
    return this.#submit("decode", message, [copy.buffer as ArrayBuffer], onDecodedBytes)
      .then((s) => decodedFrom(s as DecodedSnapshot));
  }

  /** Encodes a batch in a worker: the same file as `encodeBatch`. The rows are copied, and stay usable. */
  async encode(selections: readonly RowSelection[], options: FileOptions): Promise<ParquetFile> {
    const id = this.#nextId++;
    // Copied in slices, with the caller's pause between (the ingest's: a turn of the event loop).
    const pause = options.pause ?? (() => Promise.resolve());
    const { message, transfer, bytes } = await encodeJobAsync(id, selections, options, everyMs(pause, 5));
    this.#counts.encodes++;
    this.#counts.copied += bytes;
    const again = () => encodeJob(id, selections, options);
    return this.#submit("encode", message, transfer, undefined, again) as Promise<ParquetFile>;
  }

  #submit(
    kind: Job["kind"],
    message: Job["message"],
    transfer: ArrayBuffer[],
    onProgress?: (bytes: number) => void,
    again?: Job["again"],
  ): Promise<unknown> {
    if (this.#closed) return Promise.reject(shuttingDown());
    return new Promise((resolve, reject) => {
      this.#queue.push({
        id: message.id,
        kind,
        message,
        transfer,
        resolve,
        reject,
        onProgress,
        again,
        settled: false,
        attempts: 0,
      });
      this.#counts.peakQueued = Math.max(this.#counts.peakQueued, this.#queue.length);
      this.#dispatch();
    });
  }

  /**
   * Gives waiting jobs to the workers with room, the least busy first: encodes before decodes (a batch
   * waiting to be encoded holds memory and, past its bound, has requests refused: the encode queue is the
   * one to drain), each kind in order.
   */
  #dispatch(): void {
    if (this.#queue.some((j) => j.kind === "encode")) {
      const encodes = this.#queue.filter((j) => j.kind === "encode");
      const decodes = this.#queue.filter((j) => j.kind !== "encode");
      this.#queue.splice(0, this.#queue.length, ...encodes, ...decodes);
    }
    for (let i = 0; i < this.#queue.length;) {
      const job = this.#queue[i];
      let best: Slot | undefined;
      for (const slot of this.#slots) {
        if (slot.jobs.size >= this.#maxJobs) continue;
        // Nothing waits behind an encode (hundreds of ms): a decode queued there would hold its request up.
        if ([...slot.jobs.values()].some((j) => j.kind === "encode")) continue;
        if (!best || slot.jobs.size < best.jobs.size) best = slot;
      }
      if (!best) {
        i++;
        continue;
      }
      this.#queue.splice(i, 1);
      best.jobs.set(job.id, job);
      this.#counts.peakJobs = Math.max(this.#counts.peakJobs, best.jobs.size);
      // A retried encode is built again: its buffers went with the first attempt.
      if (job.attempts++ > 0 && job.again) ({ message: job.message, transfer: job.transfer } = job.again());
      best.worker.postMessage(job.message, job.transfer);
    }
  }

  #received(slot: Slot, m: FromWorker): void {
    if (m.type === "ready") return slot.markLoaded();
    const job = slot.jobs.get(m.id);
    if (!job) return;
    if (m.type === "progress") {
      if (job.settled || !job.onProgress) return;
      try {
        job.onProgress(m.bytes);
      } catch (e) {
        // The budget refused the decoded bytes (429/503): the answer now, and the worker stops the decode
        // at its next pause (it stays counted as the worker's until then).
        job.settled = true;
        job.reject(e);
        slot.worker.postMessage({ type: "cancel", id: job.id } satisfies ToWorker);
      }
      return;
    }
    slot.jobs.delete(m.id);
    slot.busyMs += m.busyMs;
    if (!job.settled) {
      job.settled = true;
      if (m.type === "decoded") job.resolve(m.result);
      else if (m.type === "encoded") job.resolve(m.file);
      else job.reject(errorFrom(m.error));
    }
    this.#dispatch();
  }

  /** A worker died: its decodes fail (503), its encodes go to the others, and it is replaced. */
  #died(slot: Slot, why: string): void {
    if (this.#closed || this.#slots[slot.index] !== slot) return;
    slot.markLoaded();
    slot.worker.terminate();
    const jobs = [...slot.jobs.values()];
    slot.jobs.clear();
    this.#options.log?.error("a worker thread failed; replacing it", {
      worker: slot.index,
      error: why,
      jobs: jobs.length,
    });
    this.#counts.restarts++;
    const next = this.#start(slot.index);
    next.busyMs = slot.busyMs;
    this.#slots[slot.index] = next;
    const retry: Job[] = [];
    for (const job of jobs) {
      if (job.settled) continue;
      if (job.kind === "encode" && job.attempts < (this.#options.maxEncodeAttempts ?? 3)) retry.push(job);
      else {
        job.settled = true;
        job.reject(
          job.kind === "decode"
            ? new UnavailableError(`a worker thread failed while decoding this request (${why}); retry`, 1)
            : new Error(`encoding failed: its worker thread failed ${job.attempts} times (${why})`),
        );
      }
    }
    this.#queue.unshift(...retry);
    this.#dispatch();
  }

  /**
   * Resolves once every thread has loaded its modules, or after `timeoutMs` (returning false). The server
   * waits for this before it listens: a thread still reading its modules when a connection flood has used
   * up the process's descriptors fails to load with EMFILE, and the runtime (Deno 2.9) then panics and
   * ends the whole process instead of reporting an error.
   */
  async ready(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const slots = [...this.#slots];
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), left));
      const late = await Promise.race([Promise.all(slots.map((s) => s.loaded)).then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) return false;
      // A thread that died while loading was replaced: wait for the new one too.
      if (slots.every((s, i) => this.#slots[i] === s)) return true;
    }
  }

  stats(): CpuPoolStats {
    let inFlight = 0;
    for (const s of this.#slots) inFlight += s.jobs.size;
    return {
      workers: this.size,
      queued: this.#queue.length,
      inFlight,
      peakJobsPerWorker: this.#counts.peakJobs,
      peakQueued: this.#counts.peakQueued,
      busySeconds: this.#slots.map((s) => s.busyMs / 1000),
      decodes: this.#counts.decodes,
      encodes: this.#counts.encodes,
      restarts: this.#counts.restarts,
      encodeCopyBytes: this.#counts.copied,
    };
  }

  /** Terminates the workers; jobs not done fail (503). Call after the final flush. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#slots) {
      slot.worker.terminate();
      for (const job of slot.jobs.values()) if (!job.settled) job.settled = true, job.reject(shuttingDown());
      slot.jobs.clear();
    }
    for (const job of this.#queue.splice(0)) job.settled = true, job.reject(shuttingDown());
  }

  /** Makes worker `index` throw an uncaught error, as a bug would (tests: the jobs it holds then). */
  crashForTest(index: number): void {
    this.#slots[index].worker.postMessage({ type: "crash" } satisfies ToWorker);
  }
}

/** `pause`, awaited only once `ms` have passed since the last time. */
function everyMs(pause: () => Promise<void>, ms: number): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < ms) return;
    await pause();
    last = performance.now();
  };
}

function shuttingDown(): UnavailableError {
  return new UnavailableError("shutting down", 5, { reason: "shutting_down" });
}

export { CancelledError };
