/**
 * The in-flight budget of the serverless sinks: bytes of requests being read, decoded and stored at once,
 * so memory stays bounded however many clients send together. Beyond it a request gets 429 (clients
 * retry); one request alone is always admitted, however large (the payload limit bounds it).
 *
 * @module
 */

import { OverloadedError } from "./errors.ts";

/** A byte budget shared by the requests in flight. */
export class InflightBudget {
  readonly #max: number;
  #held = 0;

  /** `maxBytes`: the budget (positive). */
  constructor(maxBytes: number) {
    if (!(maxBytes > 0) || !Number.isFinite(maxBytes)) {
      throw new RangeError(`maxInflightBytes must be a positive number, got ${maxBytes}`);
    }
    this.#max = maxBytes;
  }

  /** Reserves `bytes`; throws OverloadedError (429) beyond the budget. Returns the release (idempotent). */
  admit(bytes: number): () => void {
    const n = Math.max(0, Math.min(bytes, this.#max));
    if (this.#held > 0 && this.#held + n > this.#max) {
      throw new OverloadedError(`too much data in flight (${this.#held} bytes); retry later`, 1);
    }
    this.#held += n;
    let released = false;
    return () => {
      if (!released) this.#held -= n, released = true;
    };
  }

  /** Bytes reserved now. */
  get held(): number {
    return this.#held;
  }
}
