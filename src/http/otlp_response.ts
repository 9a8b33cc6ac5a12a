/**
 * OTLP/HTTP responses: `Export*ServiceResponse` (with `partial_success` when records were refused) and
 * `google.rpc.Status` failures, each in the encoding of the request (protobuf or JSON).
 *
 * @module
 */

import { capText, MAX_MESSAGE_CHARS } from "../core/errors.ts";
import type { Signal } from "../core/table/schema.ts";

/** How a response body is encoded: like the request's. */
export type ResponseEncoding = "protobuf" | "json";

const encoder = new TextEncoder();

/** A message in a response is cut after this many characters (the core's cap for its errors, too). */
export const MAX_RESPONSE_MESSAGE_CHARS = MAX_MESSAGE_CHARS;

/** Bytes of a varint. */
function varintSize(v: number): number {
  let n = 1;
  for (; v > 0x7f; v = Math.floor(v / 128)) n++;
  return n;
}

/** Writes a varint at `out[at]`; returns the end. */
function putVarint(out: Uint8Array, at: number, v: number): number {
  for (; v > 0x7f; v = Math.floor(v / 128)) out[at++] = (v & 0x7f) | 0x80;
  out[at++] = v;
  return at;
}

/**
 * A protobuf message of one varint field (`number` = 1) and one length-delimited field (`text` = 2),
 * written straight into one buffer: the shape of both `google.rpc.Status { code, message }` and
 * `ExportXPartialSuccess { rejected_*, error_message }`.
 */
function varintAndText(number: number, text: Uint8Array): Uint8Array<ArrayBuffer> {
  const size = 1 + varintSize(number) + 1 + varintSize(text.length) + text.length;
  const out = new Uint8Array(size);
  let at = putVarint(out, 0, 1 << 3);
  at = putVarint(out, at, number);
  at = putVarint(out, at, (2 << 3) | 2);
  at = putVarint(out, at, text.length);
  out.set(text, at);
  return out;
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
  const message = partial ? capText(partial.message) : "";
  if (encoding === "json") {
    const body = partial && partial.rejected > 0
      ? { partialSuccess: { [REJECTED_FIELD[signal]]: String(partial.rejected), errorMessage: message } }
      : {};
    return { body: encoder.encode(JSON.stringify(body)), contentType: "application/json" };
  }
  if (!partial || partial.rejected <= 0) {
    return { body: new Uint8Array(0), contentType: "application/x-protobuf" };
  }
  // Export*ServiceResponse { ExportXPartialSuccess partial_success = 1; }
  const inner = varintAndText(partial.rejected, encoder.encode(message));
  const body = new Uint8Array(1 + varintSize(inner.length) + inner.length);
  body.set(inner, putVarint(body, putVarint(body, 0, (1 << 3) | 2), inner.length));
  return { body, contentType: "application/x-protobuf" };
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

/** A fixed, tiny failure body, for when building the real one failed. */
const FALLBACK_JSON = encoder.encode('{"code":13,"message":"internal error"}');

/**
 * A failure response with a `google.rpc.Status` body. The message is cut after
 * MAX_RESPONSE_MESSAGE_CHARS characters, so the body stays small whatever it quotes; and building the
 * response cannot throw (bad headers, say, fall back to a fixed 500 body).
 */
export function statusResponse(
  httpStatus: number,
  message: string,
  options: { encoding?: ResponseEncoding; retryAfterSecs?: number; headers?: Record<string, string> } = {},
): Response {
  try {
    const code = Object.hasOwn(GRPC_CODE, httpStatus) ? GRPC_CODE[httpStatus] : 2; // UNKNOWN
    const headers = new Headers(options.headers);
    if (options.retryAfterSecs !== undefined) {
      headers.set("retry-after", String(Math.max(1, Math.ceil(options.retryAfterSecs))));
    }
    const text = capText(String(message));
    let body: Uint8Array<ArrayBuffer>;
    if (options.encoding === "protobuf") {
      body = varintAndText(code, encoder.encode(text));
      headers.set("content-type", "application/x-protobuf");
    } else {
      body = encoder.encode(JSON.stringify({ code, message: text }));
      headers.set("content-type", "application/json");
    }
    return new Response(body, { status: httpStatus, headers });
  } catch {
    return fallbackResponse();
  }
}

/** The response of last resort: 500 with a fixed JSON Status; nothing in it can fail. */
export function fallbackResponse(): Response {
  return new Response(FALLBACK_JSON.slice(), {
    status: 500,
    headers: { "content-type": "application/json" },
  });
}
