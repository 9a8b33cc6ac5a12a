/**
 * The two transient refusals of the ingest path. Both tell the client to come back later: the HTTP layer
 * turns them into 429 / 503 with `Retry-After`, which OTLP clients retry (never 500, which they drop).
 *
 * @module
 */

/** Too much is in flight right now (memory budget): 429. */
export class OverloadedError extends Error {
  constructor(message: string, readonly retryAfterSecs = 1) {
    super(message);
    this.name = "OverloadedError";
  }
}

/** Cannot take data now: the write-ahead log is full, the disk is full or the object store is down: 503. */
export class UnavailableError extends Error {
  constructor(message: string, readonly retryAfterSecs = 5, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UnavailableError";
  }
}
