/**
 * OTLP/HTTP responses: `Export*ServiceResponse` (with `partial_success` when records were refused) and
 * `google.rpc.Status` failures, each in the encoding of the request (protobuf or JSON).
 *
 * @module
 */

import type { Signal } from "../core/schema.ts";

/** How a response body is encoded: like the request's. */
export type ResponseEncoding = "protobuf" | "json";

const encoder = new TextEncoder();

function varint(out: number[], v: number): void {
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function lengthDelimited(out: number[], field: number, bytes: Uint8Array | number[]): void {
  varint(out, (field << 3) | 2);
  varint(out, bytes.length);
  for (const b of bytes) out.push(b);
}

const REJECTED_FIELD: Record<Signal, string> = {
  logs: "rejectedLogRecords",
  traces: "rejectedSpans",
  metrics: "rejectedDataPoints",
};

/**
 * The success body: empty `Export*ServiceResponse`, or one with `partial_success { rejected_*, error_message }`.
 */
export function exportResponse(
  signal: Signal,
  encoding: ResponseEncoding,
  partial?: { rejected: number; message: string },
): { body: Uint8Array<ArrayBuffer>; contentType: string } {
  if (encoding === "json") {
    const body = partial && partial.rejected > 0
      ? {
        partialSuccess: { [REJECTED_FIELD[signal]]: String(partial.rejected), errorMessage: partial.message },
      }
      : {};
    return { body: encoder.encode(JSON.stringify(body)), contentType: "application/json" };
  }
  const out: number[] = [];
  if (partial && partial.rejected > 0) {
    // ExportXPartialSuccess { int64 rejected_* = 1; string error_message = 2; }
    const inner: number[] = [];
    varint(inner, 1 << 3);
    varint(inner, partial.rejected);
    lengthDelimited(inner, 2, encoder.encode(partial.message));
    lengthDelimited(out, 1, inner);
  }
  return { body: new Uint8Array(out), contentType: "application/x-protobuf" };
}

/** gRPC status codes used in `google.rpc.Status.code`, by HTTP status. */
const GRPC_CODE: Record<number, number> = {
  400: 3, // INVALID_ARGUMENT
  401: 16, // UNAUTHENTICATED
  404: 5, // NOT_FOUND
  405: 12, // UNIMPLEMENTED
  408: 4, // DEADLINE_EXCEEDED
  413: 3, // INVALID_ARGUMENT
  415: 3,
  429: 8, // RESOURCE_EXHAUSTED
  500: 13, // INTERNAL
  503: 14, // UNAVAILABLE
};

/** A failure response with a `google.rpc.Status` body. */
export function statusResponse(
  httpStatus: number,
  message: string,
  options: { encoding?: ResponseEncoding; retryAfterSecs?: number; headers?: Record<string, string> } = {},
): Response {
  const code = GRPC_CODE[httpStatus] ?? 2; // UNKNOWN
  const headers = new Headers(options.headers);
  if (options.retryAfterSecs !== undefined) {
    headers.set("retry-after", String(Math.max(1, Math.ceil(options.retryAfterSecs))));
  }
  let body: Uint8Array<ArrayBuffer>;
  if (options.encoding === "protobuf") {
    const out: number[] = [];
    varint(out, 1 << 3);
    varint(out, code);
    lengthDelimited(out, 2, encoder.encode(message));
    body = new Uint8Array(out);
    headers.set("content-type", "application/x-protobuf");
  } else {
    body = encoder.encode(JSON.stringify({ code, message }));
    headers.set("content-type", "application/json");
  }
  return new Response(body, { status: httpStatus, headers });
}
