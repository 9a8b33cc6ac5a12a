/**
 * What one request may store, shared by both sinks (the batching `Ingest` and `DirectSink`): at most
 * `maxPartitions` (table, service, event hour) partitions, so a request can cause only a bounded number of
 * objects, and optionally only event times within a window around now. Records beyond a limit are refused
 * through OTLP `partial_success` (a count and a message the client logs), never silently, and never by
 * refusing the whole request: a 4xx other than 429 makes clients drop all of it, and a 429/503 would be
 * retried forever, since the same request would be refused again.
 *
 * @module
 */

import type { Decoded } from "../core/convert.ts";
import { type LimitedPartitions, limitPartitions } from "../core/table/rows.ts";

/** The per-request limits. */
export interface RequestLimits {
  /** Partitions (table, service, event hour) one request may write. Default 128. */
  maxPartitions?: number;
  /** Refuse records whose event time is more than this far in the past (ms). Default: no limit. */
  acceptPastMs?: number;
  /** Refuse records whose event time is more than this far in the future (ms). Default: no limit. */
  acceptFutureMs?: number;
}

/** Default of `batch.max_partitions_per_request`. */
export const DEFAULT_MAX_PARTITIONS = 128;

/** A request's partitions after its limits, with what to tell the client about the rest. */
export interface LimitedRequest extends LimitedPartitions {
  /** Records refused by the limits. */
  readonly rejected: number;
  /** Why, for `partial_success.error_message` ("" when nothing was refused). */
  readonly rejectMessage: string;
}

/** What a sink's `accept` reports back for `partial_success`. */
export interface Rejection {
  readonly rejected: number;
  readonly rejectMessage: string;
  /** Of `rejected`, those refused by the partition cap (for the metrics' `reason` label). */
  readonly overCap?: number;
  /** Of `rejected`, those refused by the event-time window. */
  readonly outsideWindow?: number;
}

/** Checks the limits' values once, when a sink is created. */
export function checkLimits(limits: RequestLimits): RequestLimits & { maxPartitions: number } {
  const maxPartitions = limits.maxPartitions ?? DEFAULT_MAX_PARTITIONS;
  if (!Number.isInteger(maxPartitions) || maxPartitions < 1) {
    throw new RangeError(`maxPartitions must be a positive integer, got ${maxPartitions}`);
  }
  for (const name of ["acceptPastMs", "acceptFutureMs"] as const) {
    const v = limits[name];
    if (v !== undefined && !(v >= 0)) throw new RangeError(`${name} must be a non-negative number, got ${v}`);
  }
  return { ...limits, maxPartitions };
}

/**
 * Applies `limits` to a decoded request whose records arrived at `nowMs` (`undefined`: no time window,
 * as for requests logged before windows existed).
 */
export function limitRequest(
  decoded: Decoded,
  limits: RequestLimits,
  nowMs: number | undefined,
): LimitedRequest {
  const windowed = nowMs !== undefined;
  const limited = limitPartitions(decoded.tables, {
    maxPartitions: limits.maxPartitions ?? DEFAULT_MAX_PARTITIONS,
    earliestMs: windowed && limits.acceptPastMs !== undefined ? nowMs - limits.acceptPastMs : undefined,
    latestMs: windowed && limits.acceptFutureMs !== undefined ? nowMs + limits.acceptFutureMs : undefined,
  });
  const reasons: string[] = [];
  if (limited.outsideWindow) {
    reasons.push(
      `${limited.outsideWindow} records refused: event time outside the accepted window (${
        limits.acceptPastMs === undefined ? "" : `at most ${seconds(limits.acceptPastMs)} in the past`
      }${limits.acceptPastMs !== undefined && limits.acceptFutureMs !== undefined ? ", " : ""}${
        limits.acceptFutureMs === undefined ? "" : `at most ${seconds(limits.acceptFutureMs)} in the future`
      }; batch.accept_past_secs / batch.accept_future_secs)`,
    );
  }
  if (limited.overCap) {
    const cap = limits.maxPartitions ?? DEFAULT_MAX_PARTITIONS;
    reasons.push(
      `${limited.overCap} records refused: the request spans ${limited.partitions} partitions (table, service, ` +
        `event hour) and at most ${cap} are accepted per request (batch.max_partitions_per_request); ` +
        `the records of the ${limited.partitions - cap} smallest were refused`,
    );
  }
  return { ...limited, rejected: limited.outsideWindow + limited.overCap, rejectMessage: reasons.join("; ") };
}

const seconds = (ms: number): string => `${ms / 1000} s`;

/** The request limits of a configuration's `batch.*` settings. */
export function limitsOf(
  batch: { maxPartitionsPerRequest: number; acceptPastSecs?: number; acceptFutureSecs?: number },
): RequestLimits {
  return {
    maxPartitions: batch.maxPartitionsPerRequest,
    acceptPastMs: batch.acceptPastSecs === undefined ? undefined : batch.acceptPastSecs * 1000,
    acceptFutureMs: batch.acceptFutureSecs === undefined ? undefined : batch.acceptFutureSecs * 1000,
  };
}
