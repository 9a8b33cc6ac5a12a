/**
 * The two transient refusals of the ingest path. Both tell the client to come back later: the HTTP layer
 * turns them into 429 / 503 with `Retry-After`, which OTLP clients retry (never 500, which they drop).
 *
 * @module
 */

/** Too much is in flight right now (memory budget): 429. */
export class OverloadedError extends Error {
  /** The `reason` label of the refusal metrics. */
  readonly reason = "overloaded";

  constructor(message: string, readonly retryAfterSecs = 1) {
    super(message);
    this.name = "OverloadedError";
  }
}

/** Why a 503 was sent, as the `reason` label of the refusal metrics names it (a fixed set). */
export type UnavailableReason =
  | "shutting_down"
  | "store_unavailable"
  | "encode_behind"
  | "wal_full"
  | "wal_failed"
  | "unavailable";

/** Cannot take data now: the write-ahead log is full, the disk is full or the object store is down: 503. */
export class UnavailableError extends Error {
  /** The `reason` label of the refusal metrics; default `unavailable`. */
  readonly reason: UnavailableReason;

  constructor(
    message: string,
    readonly retryAfterSecs = 5,
    options?: { cause?: unknown; reason?: UnavailableReason },
  ) {
    super(message, options);
    this.name = "UnavailableError";
    this.reason = options?.reason ?? "unavailable";
  }
}
