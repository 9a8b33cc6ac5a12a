/**
 * The seam between the HTTP layer and what stores requests: the handler calls a `Sink`; the batching
 * ingest (servers), the direct writer (Lambda) and the Workers batcher implement it. Declared here, below
 * the handler, so that both sides import it downward.
 *
 * @module
 */

import type { Decoded, Format } from "../core/convert.ts";
import type { Signal } from "../core/table/schema.ts";
import type { RequestId } from "./dedupe.ts";

/**
 * The codes of signals and formats in log records and request identities: a value's index. Never reorder
 * them (logs written before would replay as another signal, and retries would no longer be recognised).
 */
export const SIGNAL_CODES: readonly Signal[] = ["logs", "traces", "metrics"];
export const FORMAT_CODES: readonly Format[] = ["protobuf", "json", "jsonl"];

/** What a worker thread computed over a body while decoding it, for the log and the retry window. */
export interface BodyChecks {
  /** CRC-32C of the body (the log record's checksum covers it). */
  bodyCrc?: number;
  /** The request's identity (`requestId` in `dedupe.ts`). */
  id?: RequestId;
  /**
   * The body, when the decoder took the caller's buffer (a worker thread: moved there and back rather
   * than copied); the caller's own view of it is then detached, and this is the one to use.
   */
  body?: Uint8Array;
}

/** A decoded request handed to a sink: the (decompressed) body and its rows. */
export interface AcceptedRequest extends BodyChecks {
  signal: Signal;
  format: Format;
  body: Uint8Array;
  /** With `BodyChecks` when a worker thread computed them while decoding; the ingest computes them if absent. */
  decoded: Decoded;
}

/** What accepts decoded requests: the batching ingest on servers, a direct writer on Lambda and Workers. */
export interface Sink {
  /**
   * Reserves `bytes` of the in-flight budget for one request, or throws OverloadedError (429) /
   * UnavailableError (503). Returns the release function.
   */
  admit(bytes: number): () => void;
  /**
   * Stores a decoded request durably; resolves only once a 200 may be sent, with the records its limits
   * refused (partition cap, event-time window), which the answer reports in `partial_success`.
   */
  accept(
    request: AcceptedRequest,
  ): Promise<{ rejected: number; rejectMessage: string; overCap?: number; outsideWindow?: number } | void>;
  /** Whether data can be accepted now (for `/ready`). */
  ready(): Promise<boolean> | boolean;
  /** Why data cannot be accepted now, one short phrase each (empty: ready); `/ready` prints them. Optional. */
  notReadyReasons?(): string[];
}
