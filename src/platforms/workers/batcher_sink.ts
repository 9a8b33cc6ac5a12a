/**
 * The worker's side of batching on Cloudflare: a {@linkcode Sink} that hands each accepted request to the
 * `OtlpBatcher` Durable Object bound as `BATCHER` and resolves only once that object has stored it (its
 * SQLite write is confirmed before its answer leaves it). The worker still reads, decompresses and
 * decodes the request itself, so bad input gets its 400 here, and the object receives the decoded
 * request's partitions with the body: it never decodes a request just to learn where its rows go.
 *
 * Sharding: with `OTLP2PARQUET_BATCHER_SHARDS` = N, a request goes to one of N objects (`shard-0` …),
 * chosen by a stable hash of its signal and its main service (the one with the most rows). A request is
 * never split: rows of its other services are batched in the same object, so a (table, service, hour)
 * that arrives in requests with different main services is written by more than one object.
 *
 * @module
 */

import type { Decoded, Format } from "../../core/convert.ts";
import { hash64 } from "../../core/table/keys.ts";
import type { PartitionRows } from "../../core/table/rows.ts";
import type { Signal } from "../../core/table/schema.ts";
import type { Sink } from "../../ingest/sink.ts";
import { OverloadedError, UnavailableError } from "../../ingest/errors.ts";
import { InflightBudget } from "../../ingest/inflight_budget.ts";
import {
  checkLimits,
  limitRequest,
  type Rejection,
  type RequestLimits,
} from "../../ingest/request_limits.ts";

/** The part of a Durable Object namespace binding (`env.BATCHER`) the worker calls. */
export interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(input: string, init?: RequestInit): Promise<Response> };
}

/** One partition of a request, as the batcher stores it: table, service, hour, rows, decoded bytes. */
export type PartEntry = [table: string, service: string, hour: number, rows: number, bytes: number];

/** What travels before the body in a request to the batcher. */
export interface BatcherMeta {
  signal: Signal;
  format: Format;
  /** When the worker received the request (ms): the batcher applies the request limits as of then. */
  arrived: number;
  /** The partitions kept by the request limits (partition cap, event-time window). */
  parts: PartEntry[];
}

/** The URL the worker posts to; a Durable Object's fetch sees it as is (the host is never resolved). */
export const BATCHER_ACCEPT_URL = "https://otlp2parquet-batcher/accept";

const encoder = new TextEncoder();

/**
 * The kept partitions of a request (`limitRequest(…).parts`), with the decoded bytes the server's batches
 * would count for them.
 */
export function partsOf(kept: readonly PartitionRows[]): PartEntry[] {
  const perRow = new Map<unknown, number>();
  return kept.map(({ rows, part, indices }): PartEntry => {
    let each = perRow.get(rows);
    if (each === undefined) perRow.set(rows, each = rows.length ? rows.byteLength() / rows.length : 0);
    const { service, hour } = rows.parts[part];
    return [rows.def.name, service, hour, indices.length, Math.ceil(each * indices.length)];
  });
}

/** The shard of a request: a stable hash of its signal and main service, modulo `shards`. */
export function shardOf(signal: Signal, parts: readonly PartEntry[], shards: number): number {
  if (shards <= 1) return 0;
  const rows = new Map<string, number>();
  for (const [, service, , n] of parts) rows.set(service, (rows.get(service) ?? 0) + n);
  let main = "";
  let most = -1;
  for (const [service, n] of rows) {
    if (n > most || (n === most && service < main)) main = service, most = n;
  }
  const h = hash64(encoder.encode(`${signal}\u0000${main}`));
  return parseInt(h.slice(0, 8), 16) % shards;
}

/** The message to the batcher: a 4-byte little-endian length, the metadata as JSON, then the body. */
export function encodeBatcherMessage(meta: BatcherMeta, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(JSON.stringify(meta));
  const out = new Uint8Array(4 + head.length + body.length);
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  out.set(body, 4 + head.length);
  return out;
}

/** Reads a message of {@linkcode encodeBatcherMessage}. Throws SyntaxError when it is not one. */
export function decodeBatcherMessage(bytes: Uint8Array): { meta: BatcherMeta; body: Uint8Array } {
  if (bytes.length < 4) throw new SyntaxError("batcher message too short");
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (4 + length > bytes.length) throw new SyntaxError("batcher message truncated");
  const meta = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length))) as BatcherMeta;
  if (
    !Array.isArray(meta?.parts) || typeof meta.signal !== "string" || typeof meta.format !== "string" ||
    typeof meta.arrived !== "number"
  ) {
    throw new SyntaxError("batcher message without signal, format, arrival time and parts");
  }
  return { meta, body: bytes.subarray(4 + length) };
}

/** Options of {@linkcode BatcherSink}. */
export interface BatcherSinkOptions {
  /** Objects to spread requests over (`OTLP2PARQUET_BATCHER_SHARDS`). Default 1. */
  shards?: number;
  /** Bound on the bytes of requests being read, decoded and handed over at once (429 beyond). Default 16 MiB. */
  maxInflightBytes?: number;
  /** What one request may store (`batch.max_partitions_per_request`, the event-time window). Default `{}`. */
  limits?: RequestLimits;
  /** Milliseconds clock. Default `Date.now`. */
  now?: () => number;
}

/** A Sink that stores each request in the batching Durable Object before the 200. */
export class BatcherSink implements Sink {
  readonly #namespace: DurableObjectNamespaceLike;
  readonly #shards: number;
  readonly #budget: InflightBudget;
  readonly #limits: RequestLimits;
  readonly #now: () => number;

  constructor(namespace: DurableObjectNamespaceLike, options: BatcherSinkOptions = {}) {
    this.#namespace = namespace;
    this.#shards = Math.max(1, Math.floor(options.shards ?? 1));
    this.#budget = new InflightBudget(options.maxInflightBytes ?? 16 * 1024 * 1024);
    this.#limits = checkLimits(options.limits ?? {});
    this.#now = options.now ?? Date.now;
  }

  /** Reserves `bytes` of the in-flight budget; one request alone is always admitted. */
  admit(bytes: number): () => void {
    return this.#budget.admit(bytes);
  }

  /**
   * Resolves once the batcher has stored the request, with the records the request limits refused (for
   * `partial_success`); 503 (UnavailableError) when it cannot store it.
   */
  async accept(
    request: { signal: Signal; format: Format; body: Uint8Array; decoded: Decoded },
  ): Promise<Rejection> {
    const arrived = this.#now();
    const limited = limitRequest(request.decoded, this.#limits, arrived);
    const rejection = { rejected: limited.rejected, rejectMessage: limited.rejectMessage };
    if (!limited.parts.length) return rejection;
    const parts = partsOf(limited.parts);
    const shard = shardOf(request.signal, parts, this.#shards);
    const message = encodeBatcherMessage(
      { signal: request.signal, format: request.format, arrived, parts },
      request.body,
    );
    let response: Response;
    try {
      const stub = this.#namespace.get(this.#namespace.idFromName(`shard-${shard}`));
      response = await stub.fetch(BATCHER_ACCEPT_URL, { method: "POST", body: message });
    } catch (error) {
      // The object was reset, overloaded or is being moved: nothing was stored, the client retries.
      throw new UnavailableError(
        `batcher unavailable: ${(error as Error)?.message ?? error}; retry later`,
        5,
        {
          cause: error,
        },
      );
    }
    if (response.ok) {
      await response.body?.cancel();
      return rejection;
    }
    let message_ = `batcher answered ${response.status}`;
    let retryAfter = Number(response.headers.get("retry-after")) || 5;
    try {
      const answer = (await response.json()) as { message?: string; retryAfterSecs?: number };
      if (answer.message) message_ = answer.message;
      if (answer.retryAfterSecs) retryAfter = answer.retryAfterSecs;
    } catch {
      // not the batcher's JSON: keep the status
    }
    if (response.status === 429) throw new OverloadedError(message_, retryAfter);
    throw new UnavailableError(message_, retryAfter);
  }

  /** Always true: whether the batcher can take data is known only when a request reaches it. */
  ready(): boolean {
    return true;
  }
}
