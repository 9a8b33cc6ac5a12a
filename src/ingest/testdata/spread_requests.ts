/**
 * Test requests whose records are spread over many partitions (the "20,000 records, each in a
 * different hour"), as the handler hands them to a sink.
 *
 * @module
 */

import { decodeRequest } from "../../core/convert.ts";

const encoder = new TextEncoder();
/** 2023-11-14T22:00Z, in hours since the epoch. */
export const BASE_HOUR = 472_222;
const HOUR_NS = 3_600_000_000_000n;

/**
 * An OTLP/JSON logs request with one record at minute 30 of each of `hours` (hours since the epoch), for
 * service `service`.
 */
export function hoursRequest(hours: readonly number[], service = "svc") {
  const body = encoder.encode(JSON.stringify({
    resourceLogs: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
      scopeLogs: [{
        logRecords: hours.map((h, i) => ({
          timeUnixNano: String(BigInt(h) * HOUR_NS + HOUR_NS / 2n + BigInt(i)),
          body: { stringValue: `record ${i}` },
        })),
      }],
    }],
  }));
  return {
    signal: "logs" as const,
    format: "json" as const,
    body,
    decoded: decodeRequest("logs", body, { format: "json" }),
  };
}

/** `n` consecutive hours from `from` (default {@linkcode BASE_HOUR}). */
export const consecutiveHours = (n: number, from = BASE_HOUR): number[] =>
  Array.from({ length: n }, (_, i) => from + i);
