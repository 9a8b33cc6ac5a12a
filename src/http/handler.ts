/**
 * The OTLP/HTTP receiver as one `(Request) => Promise<Response>` handler: one route table for the three
 * signals, content types, content encodings, the size limit after decompression, OTLP responses,
 * `/health` / `/ready`, and `/metrics` when given a renderer. Platforms only adapt it (Deno.serve and
 * Bun.serve take it as is). Each answer can be reported to an observer (`observe`: the server's metrics
 * and its log of refusals) with its outcome: status, the reason of a refusal from a fixed set, and the
 * records accepted and refused.
 *
 * @module
 */

import { type AsyncDecodeOptions, type Decoded, decodeRequestAsync, type Format } from "../core/convert.ts";
import { DecodeLimitError } from "../core/decode/decode_limits.ts";
import type { Signal } from "../core/table/schema.ts";
import { OverloadedError, UnavailableError, type UnavailableReason } from "../ingest/errors.ts";
import { CONTENT_TYPE as METRICS_CONTENT_TYPE } from "../observability/prometheus.ts";
import {
  type AuthOptions,
  createAuthCheck,
  INVALID_CREDENTIALS,
  MISCONFIGURED,
  MISSING_CREDENTIALS,
  OPEN_PATHS,
  presentedCredential,
} from "./auth.ts";
import { BodyTooLargeError, type InflateSync, readBody, UnsupportedEncodingError } from "./body.ts";
import { exportResponse, fallbackResponse, type ResponseEncoding, statusResponse } from "./otlp_response.ts";
import { pauseEvery } from "./pause.ts";
import type { BodyChecks, Sink } from "../ingest/sink.ts";

/** Handler options. */
export interface HandlerOptions {
  sink: Sink;
  /** Largest body accepted after decompression, in bytes. Default 64 MiB. */
  maxPayloadBytes?: number;
  /** A body not received within this time is abandoned with 408. Default 30 000 ms. */
  readTimeoutMs?: number;
  /**
   * Slowest average rate, in bytes a second, at which a body may arrive once `bodyRateGraceMs` has passed;
   * a slower one is abandoned with 408 and its connection closed, so trickling clients cannot hold
   * connections and memory for the whole `readTimeoutMs`. Default 1024.
   */
  minBodyRateBytesPerSec?: number;
  /** Time a body may take before `minBodyRateBytesPerSec` applies. Default 5000 ms. */
  bodyRateGraceMs?: number;
  /** Reports unexpected failures (bugs); default: none. */
  onError?: (error: unknown, request: Request) => void;
  /** A runtime's one-call gzip/deflate inflater (see `readBody`); default: `DecompressionStream`. */
  inflateSync?: InflateSync;
  /** Token authentication of every path but `/health` and `/ready` (see `auth.ts`). Default: none. */
  auth?: AuthOptions;
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
  /**
   * Decodes a request body: the platform's choice of where (the server with workers passes its thread
   * pool's, which reports decoded bytes as they are produced, so the budget is charged the same way).
   * Same contract as the default, `decodeRequestAsync`: result, DecodeError / DecodeLimitError, and
   * errors thrown by `onDecodedBytes` passed through; with the body's CRC-32C and identity when it
   * computed them (a worker thread does, so that the main thread need not read the body again). It may
   * take `body`'s buffer (detaching the caller's view) if it gives the body back as `result.body`.
   */
  decode?: (signal: Signal, body: Uint8Array, options: AsyncDecodeOptions) => Promise<Decoded & BodyChecks>;
  /**
   * Serves `GET /metrics` with what this returns (Prometheus text format), without authentication like
   * `/health` and `/ready`. Default: none (`/metrics` is 404).
   */
  metrics?: () => string;
  /**
   * Told of every answer, once it is ready (before it is sent). Must be cheap; what it throws is ignored.
   * `info` is what the platform passed with the request (the client's address). Default: none.
   */
  observe?: (outcome: Readonly<RequestOutcome>, request: Request, info?: RequestInfo) => void;
}

/** What a platform may pass with a request (the shape of `Deno.serve`'s second handler argument). */
export interface RequestInfo {
  readonly remoteAddr?: { readonly hostname: string; readonly port: number };
}

/** Why a request was refused: a fixed set, so that it can be a metric label. */
export type RefusalReason =
  | "not_found"
  | "method_not_allowed"
  | "unsupported_media_type"
  | "unauthorized"
  | "misconfigured"
  | "too_large"
  | "timeout"
  | "body_read_failed"
  | "unsupported_encoding"
  | "invalid"
  | "overloaded"
  | UnavailableReason
  | "internal";

/** The outcome of one answered request, for metrics and the log. */
export interface RequestOutcome {
  /** The OTLP signal of the path; undefined for every other path. */
  signal: Signal | undefined;
  /** The path as the client sent it (for the log only: never a metric label). */
  path: string;
  /** The request's `Content-Encoding` header, as sent. */
  contentEncoding: string | null;
  status: number;
  /** Why it was refused (status 4xx/5xx); undefined for an answer that is not a refusal. */
  reason: RefusalReason | undefined;
  /** What the client was told about its refusal; "" otherwise. */
  message: string;
  /** Body bytes read off the wire (0 when the body was not read). */
  wireBytes: number;
  /** Body bytes after decompression; -1 when the body was not read whole. */
  bodyBytes: number;
  /** Records stored. */
  accepted: number;
  /** Records the decoder refused (in `partial_success`, e.g. a data point without a value). */
  invalid: number;
  /** Records refused by the partition cap (in `partial_success`). */
  overCap: number;
  /** Records refused by the event-time window (in `partial_success`). */
  outsideWindow: number;
  /** Records decoded, then refused with the whole request (a 429/503 after decoding; the client retries). */
  refusedRecords: number;
  /** Seconds from the request reaching the handler to its answer being ready. */
  seconds: number;
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
  const name = contentType.split(";")[0].trim().toLowerCase();
  // Own properties only: "constructor" or "__proto__" are no formats.
  return Object.hasOwn(FORMATS, name) ? FORMATS[name] : undefined;
}

class ReadTimeoutError extends Error {}

/** Budget reserved before a body is read, and the least it grows by once its bytes pass that. */
export const BUDGET_STEP_BYTES = 64 * 1024;

/**
 * The in-flight budget one request holds, charged as its body arrives (raw bytes off the wire, and the
 * decoded output of a compressed body as it is produced) rather than from a declared Content-Length, which
 * a client can set to anything. It holds at most `max(raw, decoded) + BUDGET_STEP_BYTES`, and never more
 * than `maxBytes` (the payload limit, which the configuration keeps within the budget), so a request alone
 * is always admitted. `admit` may throw OverloadedError (429) or UnavailableError (503) at any step.
 */
class BudgetCharge {
  readonly #sink: Sink;
  readonly #maxBytes: number;
  readonly #releases: (() => void)[] = [];
  #held = 0;
  #raw = 0;
  #decoded = 0;

  constructor(sink: Sink, maxBytes: number) {
    this.#sink = sink;
    this.#maxBytes = maxBytes;
    this.#grow(BUDGET_STEP_BYTES);
  }

  /** Bytes of the body read off the wire so far. */
  get raw(): number {
    return this.#raw;
  }

  /** Bytes of the budget held now. */
  get held(): number {
    return this.#held;
  }

  read(bytes: number): void {
    this.#raw += bytes;
    this.#cover(this.#raw);
  }

  decoded(bytes: number): void {
    this.#decoded += bytes;
    this.#cover(this.#decoded);
  }

  #cover(used: number): void {
    if (used > this.#held) this.#grow(Math.max(BUDGET_STEP_BYTES, used - this.#held));
  }

  #grow(bytes: number): void {
    const n = Math.min(bytes, this.#maxBytes - this.#held);
    if (n <= 0) return;
    this.#releases.push(this.#sink.admit(n));
    this.#held += n;
  }

  release(): void {
    for (const release of this.#releases) release();
    this.#releases.length = 0;
  }
}

/** The body stream failed (the client went away mid-upload): the client's problem, not a 500. */
class BodyReadError extends Error {}

/**
 * Maps any failure to its response: the one place where errors become HTTP statuses. Messages are cut
 * short by `statusResponse`; this function cannot throw (a failure here answers a fixed tiny 500).
 */
export function failureResponse(error: unknown, encoding: ResponseEncoding): Response {
  try {
    return responseFor(error, encoding);
  } catch {
    return fallbackResponse();
  }
}

interface Failure {
  status: number;
  reason: RefusalReason;
  message: string;
  retryAfterSecs?: number;
}

/** The status, refusal reason and message of a failure. */
function classify(error: unknown): Failure {
  if (error instanceof OverloadedError) {
    return {
      status: 429,
      reason: "overloaded",
      message: error.message,
      retryAfterSecs: error.retryAfterSecs,
    };
  }
  if (error instanceof UnavailableError) {
    return {
      status: 503,
      reason: error.reason,
      message: error.message,
      retryAfterSecs: error.retryAfterSecs,
    };
  }
  if (error instanceof BodyTooLargeError || error instanceof DecodeLimitError) {
    return { status: 413, reason: "too_large", message: error.message };
  }
  if (error instanceof ReadTimeoutError) return { status: 408, reason: "timeout", message: error.message };
  if (error instanceof BodyReadError) {
    return { status: 400, reason: "body_read_failed", message: error.message };
  }
  if (error instanceof UnsupportedEncodingError) {
    return { status: 400, reason: "unsupported_encoding", message: error.message };
  }
  if (error instanceof SyntaxError) return { status: 400, reason: "invalid", message: error.message };
  return { status: 500, reason: "internal", message: "internal error" };
}

function responseFor(error: unknown, encoding: ResponseEncoding): Response {
  const f = classify(error);
  return statusResponse(f.status, f.message, { encoding, retryAfterSecs: f.retryAfterSecs });
}

/**
 * Grows a request's share of the in-flight budget from `charged` to at least `want` bytes (body plus
 * decoded bytes so far) and returns the new share. Its reservations are replaced by one (so that a
 * request alone is still always admitted, as `Sink.admit` promises), grown by at least 1 MiB or an eighth
 * at a time, so a decode calls `admit` a few dozen times at most. `admit` throws (429, 503) when the
 * budget cannot take it, which stops the decode.
 */
function chargeDecoded(sink: Sink, releases: (() => void)[], charged: number, want: number): number {
  if (want <= charged) return charged;
  const next = Math.max(want, charged + Math.max(1 << 20, charged >> 3));
  for (const release of releases.splice(0)) release();
  releases.push(sink.admit(next));
  return next;
}

/** Creates the receiver's handler. */
export function createHandler(
  options: HandlerOptions,
): (request: Request, info?: RequestInfo) => Promise<Response> {
  const maxPayload = options.maxPayloadBytes ?? 64 * 1024 * 1024;
  const readTimeout = options.readTimeoutMs ?? 30_000;
  const minRate = options.minBodyRateBytesPerSec ?? 1024;
  const rateGrace = options.bodyRateGraceMs ?? 5000;
  // Often enough to close a trickler soon after its grace ends, rarely enough to cost nothing.
  const rateCheckMs = Math.min(1000, Math.max(100, rateGrace / 4));
  const maxDecoded = options.maxDecodedBytes ?? 4 * maxPayload;
  const newPause = options.pause ?? (() => pauseEvery(20));
  const decode = options.decode ?? decodeRequestAsync;
  const { sink, metrics, observe } = options;
  const authCheck = options.auth && createAuthCheck(options.auth);
  // A token is required but none is set: every request gets 503, so the instance is not ready either.
  const misconfigured = options.auth !== undefined && options.auth.tokens.length === 0;

  /** Answers a request, filling in `out` (its outcome) as it goes. */
  const answer = async (request: Request, out: RequestOutcome): Promise<Response> => {
    const url = new URL(request.url);
    const route = Object.hasOwn(ROUTES, url.pathname) ? ROUTES[url.pathname] : undefined;
    out.signal = route?.signal;
    out.path = url.pathname;
    const contentEncoding = out.contentEncoding = request.headers.get("content-encoding");
    const format = formatOf(request.headers.get("content-type"));
    const encoding: ResponseEncoding = format === "protobuf" ? "protobuf" : "json";
    const refuse = (
      status: number,
      reason: RefusalReason,
      message: string,
      extra: { headers?: Record<string, string> } = {},
    ): Response => {
      out.reason = reason;
      out.message = message;
      return statusResponse(status, message, { encoding, ...extra });
    };
    // `/metrics` is open like the probes: it tells counts, never data (docs/metrics.md).
    if (authCheck && !OPEN_PATHS.has(url.pathname) && !(metrics && url.pathname === "/metrics")) {
      const refused = await authCheck(request, encoding);
      if (refused) {
        if (refused.status === 401) {
          out.reason = "unauthorized";
          out.message = presentedCredential(request.headers.get("authorization")) === undefined
            ? MISSING_CREDENTIALS
            : INVALID_CREDENTIALS;
        } else out.reason = "misconfigured", out.message = MISCONFIGURED;
        return refused;
      }
    }
    if (!route) {
      const read = request.method === "GET" || request.method === "HEAD";
      if (url.pathname === "/health" && read) {
        return new Response("ok\n", { headers: { "content-type": "text/plain" } });
      }
      if (url.pathname === "/ready" && read) {
        // One short phrase per reason, "; "-separated; a sink that cannot say why gives an empty one.
        const reasons = misconfigured
          ? ["misconfigured, see the log"]
          : sink.notReadyReasons?.() ?? (await sink.ready() ? [] : [""]);
        const ok = reasons.length === 0;
        const message = ok ? "ready" : reasons[0] ? `not ready: ${reasons.join("; ")}` : "not ready";
        if (!ok) out.reason = misconfigured ? "misconfigured" : "unavailable", out.message = message;
        return new Response(
          `${message}\n`,
          {
            status: ok ? 200 : 503,
            headers: { "content-type": "text/plain", ...(ok ? {} : { "retry-after": "5" }) },
          },
        );
      }
      if (url.pathname === "/metrics" && metrics && read) {
        let text: string;
        try {
          text = metrics();
        } catch (error) {
          try {
            options.onError?.(error, request);
          } catch {
            // A failing reporter must not leave the request unanswered.
          }
          out.reason = "internal", out.message = "internal error";
          return fallbackResponse();
        }
        return new Response(text, { headers: { "content-type": METRICS_CONTENT_TYPE } });
      }
      await request.body?.cancel();
      return refuse(
        404,
        "not_found",
        `no such path ${url.pathname}: use /v1/logs, /v1/traces or /v1/metrics`,
      );
    }
    if (request.method !== "POST") {
      await request.body?.cancel();
      return refuse(405, "method_not_allowed", `method ${request.method} not allowed: use POST`, {
        headers: { allow: "POST" },
      });
    }
    if (!format) {
      await request.body?.cancel();
      return refuse(
        415,
        "unsupported_media_type",
        `unsupported content type ${JSON.stringify(request.headers.get("content-type") ?? "")}: ` +
          "use application/x-protobuf, application/json or application/x-ndjson",
      );
    }
    const declared = Number(request.headers.get("content-length") ?? NaN);
    const releases: (() => void)[] = [];
    let charge: BudgetCharge | undefined;
    let decoded: Decoded | undefined;
    try {
      const identity = !contentEncoding || contentEncoding.trim().toLowerCase() === "identity";
      if (identity && declared > maxPayload) {
        await request.body?.cancel();
        throw new BodyTooLargeError(maxPayload);
      }
      // The budget is charged as bytes arrive: a declared Content-Length (only a hint, used above for the
      // early 413) would let four clients that declare 64 MiB and send a byte a second hold it all.
      const budget = charge = new BudgetCharge(sink, maxPayload);
      releases.push(() => budget.release());
      const timeout = new AbortController();
      const timer = setTimeout(
        () => timeout.abort(new ReadTimeoutError(`body not received within ${readTimeout / 1000} s`)),
        readTimeout,
      );
      const started = Date.now();
      const rateTimer = setInterval(() => {
        const late = Date.now() - started - rateGrace;
        if (late > 0 && budget.raw < minRate * late / 1000) {
          timeout.abort(
            new ReadTimeoutError(
              `body arriving slower than ${minRate} bytes/s (${budget.raw} bytes in ${
                Math.round((late + rateGrace) / 100) / 10
              } s)`,
            ),
          );
        }
      }, rateCheckMs);
      let body: Uint8Array;
      try {
        body = await readBody(request.body, {
          encoding: contentEncoding,
          maxBytes: maxPayload,
          signal: timeout.signal,
          inflateSync: options.inflateSync,
          onRead: (n) => budget.read(n),
          onDecoded: (n) => budget.decoded(n),
        });
      } catch (e) {
        if (
          e instanceof BodyTooLargeError || e instanceof ReadTimeoutError || e instanceof SyntaxError ||
          e instanceof UnsupportedEncodingError || e instanceof OverloadedError ||
          e instanceof UnavailableError
        ) throw e;
        throw new BodyReadError(`cannot read the request body: ${(e as Error)?.message ?? e}`, { cause: e });
      } finally {
        clearTimeout(timer);
        clearInterval(rateTimer);
      }
      out.bodyBytes = body.length;
      // Decoded bytes are charged as they are produced, so the budget bounds them too, not only the bodies.
      const held = budget.held;
      let charged = held;
      const result: Decoded & BodyChecks = await decode(route.signal, body, {
        format,
        maxDecodedBytes: maxDecoded,
        onDecodedBytes: (bytes) => void (charged = chargeDecoded(sink, releases, charged, held + bytes)),
        pause: newPause(),
      });
      decoded = result;
      const { bodyCrc, id } = result;
      if (result.body) body = result.body;
      const refused = decoded.records > 0
        ? await sink.accept({ signal: route.signal, format, body, decoded, bodyCrc, id })
        : undefined;
      out.invalid = decoded.rejected;
      out.accepted = decoded.records - (refused?.rejected ?? 0);
      out.overCap = refused?.overCap ?? 0;
      out.outsideWindow = refused?.outsideWindow ?? 0;
      const { body: response, contentType } = exportResponse(route.signal, encoding, {
        rejected: decoded.rejected + (refused?.rejected ?? 0),
        message: [decoded.rejectMessage, refused?.rejectMessage].filter(Boolean).join("; "),
      });
      return new Response(response as Uint8Array<ArrayBuffer>, {
        status: 200,
        headers: { "content-type": contentType },
      });
    } catch (error) {
      const response = failureResponse(error, encoding);
      // The rest of an abandoned body is never read, so the connection cannot carry another request.
      if (error instanceof ReadTimeoutError) response.headers.set("connection", "close");
      try {
        if (response.status === 500) options.onError?.(error, request);
      } catch {
        // A failing reporter must not leave the request unanswered.
      }
      if (observe) {
        const f = classify(error);
        out.reason = f.reason;
        out.message = f.message;
        if (decoded) out.refusedRecords = decoded.records;
      }
      return response;
    } finally {
      out.wireBytes = charge?.raw ?? 0;
      for (const release of releases) release();
    }
  };

  if (!observe) return (request) => answer(request, newOutcome());
  return async (request, info) => {
    const started = performance.now();
    const out = newOutcome();
    const response = await answer(request, out);
    out.status = response.status;
    out.seconds = (performance.now() - started) / 1000;
    try {
      observe(out, request, info);
    } catch {
      // Counting must never change an answer.
    }
    return response;
  };
}

/** An outcome before anything is known: no signal, no body read, nothing counted. */
export function newOutcome(): RequestOutcome {
  return {
    signal: undefined,
    path: "",
    contentEncoding: null,
    status: 0,
    reason: undefined,
    message: "",
    wireBytes: 0,
    bodyBytes: -1,
    accepted: 0,
    invalid: 0,
    overCap: 0,
    outsideWindow: 0,
    refusedRecords: 0,
    seconds: 0,
  };
}
