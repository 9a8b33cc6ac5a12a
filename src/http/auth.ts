/**
 * Token authentication of OTLP requests, the same on every platform: a request passes with
 * `Authorization: Bearer <token>`, or Basic with the token as the password (what the Collector's
 * `basicauth` extension sends; the user name is ignored). `/health` and `/ready` stay open.
 *
 * Tokens are compared in constant time: the presented credential and every accepted token are reduced to
 * SHA-256 digests, and all digests are compared byte by byte with no early exit, so neither the position
 * of the first differing byte nor a token's length nor which token matched shows in the time taken.
 *
 * @example
 * ```ts
 * import { createAuthCheck } from "./auth.ts";
 *
 * const check = createAuthCheck({ tokens: ["s3cr3t-token"] });
 * const refused = await check(new Request("http://x/v1/logs", { method: "POST" }), "json");
 * refused?.status; // 401
 * ```
 *
 * @module
 */

import { type ResponseEncoding, statusResponse } from "./otlp_response.ts";

/** Options of {@linkcode createAuthCheck}. */
export interface AuthOptions {
  /**
   * The accepted tokens (several while rotating). Empty means a token is required but none is set: every
   * checked request then gets 503 (misconfigured), never a pass.
   */
  readonly tokens: readonly string[];
}

/** Paths every client may reach without credentials (liveness and readiness probes). */
export const OPEN_PATHS: ReadonlySet<string> = new Set(["/health", "/ready"]);

/** What a request without (usable) credentials is told. */
export const MISSING_CREDENTIALS =
  "missing credentials: send Authorization: Bearer <token> (or Basic auth with the token as password)";
/** What a request with wrong credentials is told. */
export const INVALID_CREDENTIALS = "invalid credentials";
/** What every request is told while a token is required but none is set. */
export const MISCONFIGURED = "otlp2parquet is misconfigured: see its log";

/** Both schemes a client may use, as RFC 9110 challenges. */
export const CHALLENGE = 'Bearer realm="otlp2parquet", Basic realm="otlp2parquet", charset="UTF-8"';

/**
 * The credential an `Authorization` header presents, as bytes: the Bearer token, or the password of
 * Basic credentials (after the first `:` of the decoded user-pass). Undefined when there is none or the
 * header is malformed. Header values are byte strings, so each char code is one byte.
 */
export function presentedCredential(authorization: string | null): Uint8Array | undefined {
  if (authorization === null) return undefined;
  // Scanned by hand, in one pass: a backtracking pattern for "scheme, blanks, credential, blanks" took
  // 1.2 s on a 32 KB header of blanks, before the client had shown any credential.
  const blank = (i: number) => authorization.charCodeAt(i) === 32 || authorization.charCodeAt(i) === 9;
  let start = 0, end = authorization.length;
  while (start < end && blank(start)) start++;
  while (end > start && blank(end - 1)) end--;
  let gap = start;
  while (gap < end && !blank(gap)) gap++;
  let credential = gap;
  while (credential < end && blank(credential)) credential++;
  const schemeText = authorization.slice(start, gap);
  if (credential === gap || credential === end || !/^[A-Za-z]+$/.test(schemeText)) return undefined;
  const scheme = schemeText.toLowerCase();
  const presented = authorization.slice(credential, end);
  let text: string;
  if (scheme === "bearer") text = presented;
  else if (scheme === "basic") {
    let decoded: string;
    try {
      decoded = atob(presented);
    } catch {
      return undefined;
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) return undefined;
    text = decoded.slice(colon + 1);
  } else return undefined;
  if (text === "") return undefined;
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/**
 * Whether `presented` equals any of `accepted`, in time that depends only on the number of digests: every
 * byte of every digest is visited, differences are OR-accumulated and the per-digest results combined
 * without branches. Digests of another length than `presented` never match (the lengths enter the
 * accumulator instead of ending the loop).
 */
export function digestMatches(
  presented: ArrayLike<number>,
  accepted: readonly ArrayLike<number>[],
): boolean {
  let matched = 0;
  const n = presented.length;
  for (const digest of accepted) {
    let diff = digest.length ^ n;
    // Past the end of a shorter digest the read gives undefined (0 here): diff is already non-zero.
    for (let i = 0; i < n; i++) diff |= presented[i] ^ digest[i];
    // 1 exactly when diff is 0: diff is a small non-negative integer, so diff - 1 is negative only then.
    matched |= (diff - 1) >>> 31;
  }
  return matched === 1;
}

/** The SHA-256 digest of `bytes`. */
export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/**
 * The 503 of a receiver that must not serve (a token is required but none is set; on Workers, any invalid
 * setting). The text is generic on purpose: the details, which may quote configuration values, go to the
 * log only.
 */
export function misconfiguredResponse(encoding: ResponseEncoding = "json"): Response {
  return statusResponse(503, MISCONFIGURED, { encoding, retryAfterSecs: 30 });
}

/**
 * Creates the check the handler runs before anything else on every path but {@linkcode OPEN_PATHS}:
 * it resolves to undefined when the request may proceed, or to the response refusing it (401 with
 * `WWW-Authenticate` and a `google.rpc.Status` in the request's encoding; 503 when no token is set).
 * The body of a refused request is cancelled unread, so it costs no memory and no in-flight budget.
 */
export function createAuthCheck(
  options: AuthOptions,
): (request: Request, encoding: ResponseEncoding) => Promise<Response | undefined> {
  const encoder = new TextEncoder();
  // Hashed once, on first use: crypto.subtle is asynchronous and handlers are created synchronously.
  let accepted: Promise<Uint8Array[]> | undefined;
  const required = options.tokens.length > 0;
  return async (request, encoding) => {
    let refusal: Response;
    if (!required) refusal = misconfiguredResponse(encoding);
    else {
      const presented = presentedCredential(request.headers.get("authorization"));
      if (presented !== undefined) {
        accepted ??= Promise.all(options.tokens.map((t) => sha256(encoder.encode(t))));
        const digests = await accepted;
        if (digestMatches(await sha256(presented), digests)) return undefined;
      }
      refusal = statusResponse(
        401,
        presented === undefined ? MISSING_CREDENTIALS : INVALID_CREDENTIALS,
        { encoding, headers: { "www-authenticate": CHALLENGE } },
      );
    }
    try {
      await request.body?.cancel();
    } catch {
      // Already closed or failed: nothing left to drain.
    }
    return refusal;
  };
}
