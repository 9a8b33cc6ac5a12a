/**
 * The ingest of the serverless platforms (Lambda, Workers, Deno Deploy): every request is converted and
 * written to the object store before it is acknowledged, because nothing may be buffered across
 * requests: a Lambda instance may be frozen right after its response and an isolate may be evicted at
 * any moment. A 200 therefore means "every file of this request is in the bucket".
 *
 * Failures never become a 500 for data the client sent correctly: a retryable store failure is tried a
 * few more times within a bounded time and then answered with 503 + Retry-After, and so is a permanent
 * one (a missing bucket or bad credentials are operator errors that a fix will clear), so OTLP clients
 * keep the data and retry.
 *
 * One request writes at most `limits.maxPartitions` objects (see `request_limits.ts`), encoded one at a
 * time per writer as they are written, so at most `concurrency` encoded files are held at once.
 *
 * @module
 */

import {
  type Decoded,
  encodeFile,
  type FileOptions,
  type Format,
  type ParquetFile,
} from "../core/convert.ts";
import { gatherSorted } from "../core/table/rows.ts";
import type { Signal } from "../core/table/schema.ts";
import type { Sink } from "./sink.ts";
import { isRetryableStorageError, type ObjectStore } from "../storage/object_store.ts";
import { UnavailableError } from "./errors.ts";
import { InflightBudget } from "./inflight_budget.ts";
import { type IngestObserver, type Logger, silentLogger } from "./ingest.ts";
import { checkLimits, limitRequest, type Rejection, type RequestLimits } from "./request_limits.ts";

/** Options of {@linkcode DirectSink}. */
export interface DirectSinkOptions {
  /** Parquet writer and object key settings; set `instanceId` to something unique per instance. Default `{}`. */
  files?: FileOptions;
  /**
   * Bound on the bytes of requests being read, decoded and written at once; a request that would exceed
   * it gets 429 (one request alone is always admitted, however large). Default 64 MiB.
   */
  maxInflightBytes?: number;
  /** Further attempts after a retryable write failure. Default 3. */
  retries?: number;
  /** Delay before the first retry; doubled for each next one, with jitter. Default 100 ms. */
  retryInitialMs?: number;
  /**
   * No retry starts later than this after the request's first write began, so a client is answered
   * within a bounded time even while the store is down. Default 5000 ms.
   */
  retryBudgetMs?: number;
  /** Files of one request written at the same time. Default 4. */
  concurrency?: number;
  /** `Retry-After` of the 503 sent when the store cannot take the data. Default 5 s. */
  retryAfterSecs?: number;
  /** Where failures are reported. Default: dropped. */
  log?: Logger;
  /** What one request may store: partitions, event-time window. Default: 128 partitions, no window. */
  limits?: RequestLimits;
  /** Milliseconds clock (the event-time window is around it). Default `Date.now`. */
  now?: () => number;
  /** Told of objects written and failed writes (the server's metrics). Default: none. */
  observer?: IngestObserver;
}

/** Counters, for logs and tests. */
export interface DirectSinkStats {
  /** Requests fully written. */
  requests: number;
  /** Objects written. */
  objects: number;
  /** Rows in the objects written. */
  rows: number;
  /** Write attempts that failed and were tried again. */
  retries: number;
  /** Requests answered with 503 because the store refused or failed. */
  failures: number;
  /** Bytes currently admitted. */
  inflightBytes: number;
  /** Records refused by the request limits (partition cap, event-time window). */
  rejected: number;
}

/**
 * A Sink that writes each request's Parquet files before resolving: no buffering, no background work.
 *
 * @example
 * ```ts
 * import { createHandler } from "../http/handler.ts";
 * import { MemoryStore } from "../storage/memory_store.ts";
 * import { DirectSink } from "./direct_sink.ts";
 *
 * const handler = createHandler({ sink: new DirectSink(new MemoryStore(), { files: { instanceId: "fn-1" } }) });
 * ```
 */
export class DirectSink implements Sink {
  readonly #store: ObjectStore;
  readonly #files: FileOptions;
  readonly #budget: InflightBudget;
  readonly #retries: number;
  readonly #retryInitialMs: number;
  readonly #retryBudgetMs: number;
  readonly #concurrency: number;
  readonly #retryAfterSecs: number;
  readonly #log: Logger;
  readonly #limits: RequestLimits;
  readonly #now: () => number;
  readonly #observer: IngestObserver;
  readonly #counters = { requests: 0, objects: 0, rows: 0, retries: 0, failures: 0, rejected: 0 };

  constructor(store: ObjectStore, options: DirectSinkOptions = {}) {
    this.#store = store;
    this.#files = options.files ?? {};
    this.#budget = new InflightBudget(options.maxInflightBytes ?? 64 * 1024 * 1024);
    this.#retries = nonNegative(options.retries ?? 3, "retries");
    this.#retryInitialMs = nonNegative(options.retryInitialMs ?? 100, "retryInitialMs");
    this.#retryBudgetMs = nonNegative(options.retryBudgetMs ?? 5000, "retryBudgetMs");
    this.#concurrency = positive(options.concurrency ?? 4, "concurrency");
    this.#retryAfterSecs = positive(options.retryAfterSecs ?? 5, "retryAfterSecs");
    this.#log = options.log ?? silentLogger;
    this.#limits = checkLimits(options.limits ?? {});
    this.#now = options.now ?? Date.now;
    this.#observer = options.observer ?? {};
  }

  /** Reserves `bytes` of the in-flight budget; throws OverloadedError (429) beyond it. */
  admit(bytes: number): () => void {
    return this.#budget.admit(bytes);
  }

  /**
   * Converts the request to Parquet files (one per partition within its limits) and writes every one of
   * them; resolves once all are stored, with the records the limits refused (for `partial_success`).
   * Throws UnavailableError (503) when the store cannot take them.
   */
  async accept(
    request: { signal: Signal; format: Format; body: Uint8Array; decoded: Decoded },
  ): Promise<Rejection> {
    const limited = limitRequest(request.decoded, this.#limits, this.#now());
    this.#counters.rejected += limited.rejected;
    const parts = limited.parts;
    const deadline = Date.now() + this.#retryBudgetMs;
    const errors: unknown[] = [];
    let next = 0;
    const worker = async () => {
      // Once one file has failed for good the request gets 503 anyway: the rest need not be tried.
      while (next < parts.length && errors.length === 0) {
        const { rows, indices } = parts[next++];
        const started = this.#now();
        // Outside the try: an encoding failure is a bug (500), not the store's (503).
        const file = encodeFile(gatherSorted([{ rows, indices }]), this.#files);
        try {
          await this.#write(file, deadline);
          this.#observer.objectWritten?.(
            rows.def.name,
            file.rows,
            file.bytes.length,
            (this.#now() - started) / 1000,
          );
        } catch (error) {
          errors.push(error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, parts.length) }, worker));
    if (errors.length > 0) {
      this.#counters.failures++;
      const error = errors[0];
      const retryable = isRetryableStorageError(error);
      const detail = error instanceof Error ? error.message : String(error);
      this.#log.error("cannot store a request; answering 503", {
        signal: request.signal,
        retryable,
        store: this.#store.description,
        error: detail,
      });
      throw new UnavailableError(
        retryable
          ? `object store unavailable: ${detail}; retry later`
          : `object store refused the write: ${detail}; retry after the operator fixed it`,
        this.#retryAfterSecs,
        { cause: error, reason: "store_unavailable" },
      );
    }
    this.#counters.requests++;
    return {
      rejected: limited.rejected,
      rejectMessage: limited.rejectMessage,
      overCap: limited.overCap,
      outsideWindow: limited.outsideWindow,
    };
  }

  /** Always true: each request is answered by its own write, so there is no backlog to refuse on. */
  ready(): boolean {
    return true;
  }

  /** A snapshot of the counters. */
  stats(): DirectSinkStats {
    return { ...this.#counters, inflightBytes: this.#budget.held };
  }

  async #write(file: ParquetFile, deadline: number): Promise<void> {
    let delay = this.#retryInitialMs;
    for (let attempt = 0;; attempt++) {
      try {
        await this.#store.put(file.key, file.bytes);
        this.#counters.objects++;
        this.#counters.rows += file.rows;
        return;
      } catch (error) {
        // Half the delay fixed, half random: spread out, yet never a near-zero retry into a struggling store.
        const wait = delay / 2 + Math.random() * delay / 2;
        const retrying = isRetryableStorageError(error) && attempt < this.#retries &&
          Date.now() + wait <= deadline;
        this.#observer.writeFailed?.("store", retrying);
        if (!retrying) throw error;
        this.#counters.retries++;
        this.#log.warn("object write failed; retrying", {
          key: file.key,
          attempt: attempt + 1,
          error: error instanceof Error ? error.message : String(error),
        });
        await new Promise((resolve) => setTimeout(resolve, wait));
        delay *= 2;
      }
    }
  }
}

function positive(value: number, name: string): number {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a non-negative number, got ${value}`);
  }
  return value;
}
