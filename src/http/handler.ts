/**
 * The OTLP/HTTP receiver as one `(Request) => Promise<Response>` handler: one route table for the three
 * signals, content types, content encodings, the size limit after decompression, OTLP responses, and
 * `/health` / `/ready`. Platforms only adapt it (Deno.serve and Bun.serve take it as is).
 *
 * @module
 */

import { type Decoded, decodeRequestAsync, type Format } from "../core/convert.ts";
import { DecodeLimitError } from "../core/decode_limits.ts";
import type { Signal } from "../core/schema.ts";
import { OverloadedError, UnavailableError } from "../ingest/errors.ts";
import { BodyTooLargeError, type InflateSync, readBody, UnsupportedEncodingError } from "./body.ts";
import { pauseEvery } from "./pause.ts";
import { exportResponse, type ResponseEncoding, statusResponse } from "./otlp_response.ts";

/** What accepts decoded requests: the batching ingest on servers, a direct writer on Lambda and Workers. */
export interface Sink {
  /**
   * Reserves `bytes` of the in-flight budget for one request, or throws OverloadedError (429) /
   * UnavailableError (503). Returns the release function.
   */
  admit(bytes: number): () => void;
  /** Stores a decoded request durably; resolves only once a 200 may be sent. */
  accept(request: { signal: Signal; format: Format; body: Uint8Array; decoded: Decoded }): Promise<void>;
  /** Whether data can be accepted now (for `/ready`). */
  ready(): Promise<boolean> | boolean;
}

/** Handler options. */
export interface HandlerOptions {
  sink: Sink;
  /** Largest body accepted after decompression, in bytes. Default 64 MiB. */
  maxPayloadBytes?: number;
  /** A body not received within this time is abandoned with 408. Default 30 000 ms. */
  readTimeoutMs?: number;
  /** Reports unexpected failures (bugs); default: none. */
  onError?: (error: unknown, request: Request) => void;
  /** A runtime's one-call gzip/deflate inflater (see `readBody`); default: `DecompressionStream`. */
  inflateSync?: InflateSync;
  /**
   * Decoded bytes one request may hold (as batches count them; a legitimate protobuf request decodes to
   * 1-3 times its size); beyond, 413. They are charged to the in-flight budget as they are produced
   * (429 when it cannot take them). Default 4 × `maxPayloadBytes`.
   */
  maxDecodedBytes?: number;
  /**
   * Makes the pause awaited between slices of one long decode, so that other clients are served
   * meanwhile. Default `pauseEvery(20)`: a timer once 20 ms have passed.
   */
  pause?: () => () => Promise<void>;
}

interface Route {
  readonly signal: Signal;
}

/** The route table: one entry per signal, the same handling for all. */
export const ROUTES: Readonly<Record<string, Route>> = {
  "/v1/logs": { signal: "logs" },
  "/v1/traces": { signal: "traces" },
  "/v1/metrics": { signal: "metrics" },
};

const FORMATS: Readonly<Record<string, Format>> = {
  "application/x-protobuf": "protobuf",
  "application/protobuf": "protobuf",
  "application/json": "json",
  "application/x-ndjson": "jsonl",
  "application/jsonl": "jsonl",
  "application/json-lines": "jsonl",
  "application/jsonlines": "jsonl",
  "application/x-jsonlines": "jsonl",
};

/** The request's body format from its Content-Type (parameters ignored), or undefined. */
export function formatOf(contentType: string | null): Format | undefined {
  if (!contentType) return undefined;
  return FORMATS[contentType.split(";")[0].trim().toLowerCase()];
}

class ReadTimeoutError extends Error {}

/** The body stream failed (the client went away mid-upload): the client's problem, not a 500. */
class BodyReadError extends Error {}

/** Maps any failure to its response: the one place where errors become HTTP statuses. */
export function failureResponse(error: unknown, encoding: ResponseEncoding): Response {
  if (error instanceof OverloadedError) {
    return statusResponse(429, error.message, { encoding, retryAfterSecs: error.retryAfterSecs });
  }
  if (error instanceof UnavailableError) {
    return statusResponse(503, error.message, { encoding, retryAfterSecs: error.retryAfterSecs });
  }
  if (error instanceof BodyTooLargeError || error instanceof DecodeLimitError) {
    return statusResponse(413, error.message, { encoding });
  }
  if (error instanceof ReadTimeoutError) return statusResponse(408, error.message, { encoding });
  if (error instanceof BodyReadError) return statusResponse(400, error.message, { encoding });
  if (error instanceof UnsupportedEncodingError || error instanceof SyntaxError) {
    return statusResponse(400, error.message, { encoding });
  }
  return statusResponse(500, "internal error", { encoding });
}

/**
 * Grows a request's share of the in-flight budget from `charged` to at least `want` bytes (body plus
 * decoded bytes so far) and returns the new share. Its reservations are replaced by one (so that a
 * request alone is still always admitted, as `Sink.admit` promises), grown by at least 1 MiB or an eighth
 * at a time, so a decode calls `admit` a few dozen times at most. `admit` throws (429, 503) when the
 * budget cannot take it, which stops the decode.
 */
function charge(sink: Sink, releases: (() => void)[], charged: number, want: number): number {
  if (want <= charged) return charged;
  const next = Math.max(want, charged + Math.max(1 << 20, charged >> 3));
  for (const release of releases.splice(0)) release();
  releases.push(sink.admit(next));
  return next;
}

/** Creates the receiver's handler. */
export function createHandler(options: HandlerOptions): (request: Request) => Promise<Response> {
  const maxPayload = options.maxPayloadBytes ?? 64 * 1024 * 1024;
  const readTimeout = options.readTimeoutMs ?? 30_000;
  const maxDecoded = options.maxDecodedBytes ?? 4 * maxPayload;
  const newPause = options.pause ?? (() => pauseEvery(20));
  const { sink } = options;

  return async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const route = ROUTES[url.pathname];
    const format = formatOf(request.headers.get("content-type"));
    const encoding: ResponseEncoding = format === "protobuf" ? "protobuf" : "json";
    if (!route) {
      if (url.pathname === "/health" && (request.method === "GET" || request.method === "HEAD")) {
        return new Response("ok\n", { headers: { "content-type": "text/plain" } });
      }
      if (url.pathname === "/ready" && (request.method === "GET" || request.method === "HEAD")) {
        const ok = await sink.ready();
        return new Response(ok ? "ready\n" : "not ready\n", {
          status: ok ? 200 : 503,
          headers: { "content-type": "text/plain", ...(ok ? {} : { "retry-after": "5" }) },
        });
      }
      await request.body?.cancel();
      return statusResponse(404, `no such path ${url.pathname}: use /v1/logs, /v1/traces or /v1/metrics`, {
        encoding,
      });
    }
    if (request.method !== "POST") {
      await request.body?.cancel();
      return statusResponse(405, `method ${request.method} not allowed: use POST`, {
        encoding,
        headers: { allow: "POST" },
      });
    }
    if (!format) {
      await request.body?.cancel();
      return statusResponse(
        415,
        `unsupported content type ${JSON.stringify(request.headers.get("content-type") ?? "")}: ` +
          "use application/x-protobuf, application/json or application/x-ndjson",
        { encoding },
      );
    }
    const declared = Number(request.headers.get("content-length") ?? NaN);
    const releases: (() => void)[] = [];
    try {
      const contentEncoding = request.headers.get("content-encoding");
      const identity = !contentEncoding || contentEncoding.trim().toLowerCase() === "identity";
      if (identity && declared > maxPayload) {
        await request.body?.cancel();
        throw new BodyTooLargeError(maxPayload);
      }
      // Reserve the budget before reading, so memory stays bounded however many clients send at once.
      // Without Content-Length (chunked, as gzip exporters send) `declared` is NaN, which must not reach
      // the budget: NaN would disable it for good.
      const known = declared >= 0;
      const reserved = identity && known
        ? declared
        : Math.min(maxPayload, Math.max(known ? declared * 4 : 0, 1 << 20));
      releases.push(sink.admit(reserved));
      const timeout = new AbortController();
      const timer = setTimeout(
        () => timeout.abort(new ReadTimeoutError(`body not received within ${readTimeout / 1000} s`)),
        readTimeout,
      );
      let body: Uint8Array;
      try {
        body = await readBody(request.body, {
          encoding: contentEncoding,
          maxBytes: maxPayload,
          signal: timeout.signal,
          inflateSync: options.inflateSync,
        });
      } catch (e) {
        if (
          e instanceof BodyTooLargeError || e instanceof ReadTimeoutError || e instanceof SyntaxError ||
          e instanceof UnsupportedEncodingError
        ) throw e;
        throw new BodyReadError(`cannot read the request body: ${(e as Error)?.message ?? e}`, { cause: e });
      } finally {
        clearTimeout(timer);
      }
      // A compressed body can inflate far past its guess: reserve the rest now that its size is known.
      if (body.length > reserved) releases.push(sink.admit(body.length - reserved));
      // Decoded bytes are charged as they are produced, so the budget bounds them too, not only the bodies.
      const held = Math.max(reserved, body.length);
      let charged = held;
      const decoded = await decodeRequestAsync(route.signal, body, {
        format,
        maxDecodedBytes: maxDecoded,
        onDecodedBytes: (bytes) => void (charged = charge(sink, releases, charged, held + bytes)),
        pause: newPause(),
      });
      if (decoded.records > 0) await sink.accept({ signal: route.signal, format, body, decoded });
      const { body: out, contentType } = exportResponse(route.signal, encoding, {
        rejected: decoded.rejected,
        message: decoded.rejectMessage,
      });
      return new Response(out as Uint8Array<ArrayBuffer>, {
        status: 200,
        headers: { "content-type": contentType },
      });
    } catch (error) {
      const response = failureResponse(error, encoding);
      if (response.status === 500) options.onError?.(error, request);
      return response;
    } finally {
      for (const release of releases) release();
    }
  };
}
