/**
 * The log of refused requests: every 4xx and 5xx answer becomes a `warn` line with what an operator needs
 * to find the client and fix it (path, status, content type and encoding, body length, client address,
 * and the reason, the same text the client was told). OTLP clients drop data for good on a 4xx other
 * than 429, so a misconfigured Collector (wrong path, batches over the size limit) must show in the log.
 *
 * Rate-limited per (path class, status): at most `linesPerWindow` lines per `windowMs`; the rest of the
 * window is counted, and one "suppressed N similar refusals" line follows when the window ends (on the
 * next refusal of that key, by a timer that does not keep the process alive, or on `close`). Path classes
 * are a fixed set (the OTLP routes, `/health`, `/ready`, `/metrics`, and `other` for every other path)
 * and statuses are those the handler sends, so the limiter's memory is bounded; it is also capped at
 * `MAX_KEYS` windows.
 *
 * @module
 */

import { clearTimeout, setTimeout } from "node:timers";
import type { RequestInfo, RequestOutcome } from "../http/handler.ts";
import type { Logger } from "../ingest/ingest.ts";

/** The path classes of the limiter's keys. */
const PATH_CLASSES = ["/v1/logs", "/v1/traces", "/v1/metrics", "/health", "/ready", "/metrics"] as const;
const OTHER = "other";
/** Windows kept at most (keys are bounded anyway: path classes × statuses sent). */
export const MAX_KEYS = 64;
/** Client-supplied texts (path, headers) are cut to this many characters in a line. */
const MAX_FIELD_CHARS = 256;

/** Options of {@linkcode RefusalLog}. */
export interface RefusalLogOptions {
  /** Lines per key and window. Default 10. */
  linesPerWindow?: number;
  /** The window, in ms. Default 60 000. */
  windowMs?: number;
  /** Milliseconds clock. Default `Date.now`. */
  now?: () => number;
}

interface Window {
  readonly path: string;
  readonly status: number;
  readonly start: number;
  lines: number;
  suppressed: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const cut = (text: string | null): string | undefined =>
  text === null ? undefined : text.length > MAX_FIELD_CHARS ? text.slice(0, MAX_FIELD_CHARS) + "…" : text;

/** Logs refused requests, rate-limited; see the module doc. */
export class RefusalLog {
  readonly #log: Logger;
  readonly #lines: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #windows = new Map<number, Window>();

  constructor(log: Logger, options: RefusalLogOptions = {}) {
    this.#log = log;
    this.#lines = options.linesPerWindow ?? 10;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    if (!(this.#lines >= 1) || !(this.#windowMs > 0)) {
      throw new RangeError("linesPerWindow must be at least 1 and windowMs positive");
    }
  }

  /** The handler's `observe`: logs the answer if it is a refusal (status 400 or more). */
  readonly observe = (o: Readonly<RequestOutcome>, request: Request, info?: RequestInfo): void => {
    if (o.status < 400) return;
    const now = this.#now();
    let p = (PATH_CLASSES as readonly string[]).indexOf(o.path);
    if (p < 0) p = PATH_CLASSES.length;
    const key = p * 1000 + o.status;
    let w = this.#windows.get(key);
    if (w && now - w.start >= this.#windowMs) this.#end(key, w), w = undefined;
    if (!w) {
      // Past the cap (not reachable with the handler's statuses), the new key is logged unlimited rather
      // than dropped: losing refusals from the log is what this module exists to prevent.
      if (this.#windows.size >= MAX_KEYS) return this.#line(o, request, info);
      w = {
        path: PATH_CLASSES[p] ?? OTHER,
        status: o.status,
        start: now,
        lines: 0,
        suppressed: 0,
        timer: undefined,
      };
      this.#windows.set(key, w);
    }
    if (w.lines < this.#lines) {
      w.lines++;
      this.#line(o, request, info);
      return;
    }
    w.suppressed++;
    if (w.timer === undefined) {
      const window = w;
      w.timer = setTimeout(() => {
        window.timer = undefined;
        if (this.#windows.get(key) === window) this.#end(key, window);
      }, Math.max(0, w.start + this.#windowMs - now));
      w.timer.unref?.();
    }
  };

  /** Ends every window now (their summaries are logged) and stops the timers. */
  close(): void {
    for (const [key, w] of [...this.#windows]) this.#end(key, w);
  }

  #end(key: number, w: Window): void {
    this.#windows.delete(key);
    if (w.timer !== undefined) clearTimeout(w.timer), w.timer = undefined;
    if (!w.suppressed) return;
    const seconds = Math.round(Math.min(this.#now() - w.start, this.#windowMs) / 100) / 10;
    this.#log.warn(`suppressed ${w.suppressed} similar refusals in the last ${seconds} s`, {
      path: w.path,
      status: w.status,
      suppressed: w.suppressed,
    });
  }

  #line(o: Readonly<RequestOutcome>, request: Request, info?: RequestInfo): void {
    const h = request.headers;
    const remote = info?.remoteAddr;
    const fields: Record<string, unknown> = {
      path: cut(o.path),
      status: o.status,
      refusal: o.reason ?? "other",
      reason: o.message,
      contentType: cut(h.get("content-type")),
      contentEncoding: cut(o.contentEncoding),
      contentLength: cut(h.get("content-length")),
      bodyBytes: o.wireBytes,
      client: remote && typeof remote.hostname === "string"
        ? (remote.hostname.includes(":") ? `[${remote.hostname}]` : remote.hostname) + `:${remote.port}`
        : undefined,
    };
    const forwarded = cut(h.get("x-forwarded-for"));
    if (forwarded !== undefined) fields.forwardedFor = forwarded;
    for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
    this.#log.warn(`refused a request: ${o.status} ${request.method} ${cut(o.path)}`, fields);
  }
}
