/**
 * OAuth 2.0 access tokens for Google Cloud Storage, on Web Crypto and `fetch` only (no `node:` module), from
 * the three places Google's own clients look:
 *
 * - a service-account key (`"type": "service_account"`): a JWT signed with the key's RSA private key
 *   (RS256) is exchanged at its `token_uri` (RFC 7523);
 * - user credentials from `gcloud auth application-default login` (`"type": "authorized_user"`): the
 *   refresh token is exchanged at Google's token endpoint;
 * - the metadata server of a Google Cloud VM, Cloud Run service or GKE pod (no file at all).
 *
 * Tokens are cached until five minutes before they expire; concurrent callers share one exchange.
 *
 * @module
 */

import { readBoundedText } from "./object_store.ts";

/** Gives the `Authorization` header value ("Bearer …") for the next request. */
export type GcsTokenSource = () => Promise<string>;

/** Scope of every token: objects read and written, buckets not administered. */
export const GCS_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write";

const GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token";
const METADATA_TOKEN_URL =
  "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";
/** A token is renewed this long before Google says it expires. */
const RENEW_BEFORE_MS = 5 * 60_000;
/** Bound on the bytes read from a token endpoint's answer. */
const MAX_TOKEN_RESPONSE = 64 * 1024;

/** Options shared by the token sources. */
export interface GcsTokenOptions {
  /** Default: globalThis.fetch. */
  fetch?: typeof fetch;
  /** Default: () => Date.now(). */
  now?: () => number;
  /** Deadline of one token exchange. Default: 10000 ms. */
  timeoutMs?: number;
}

/**
 * A token source for a credentials file's JSON (service account or authorized user).
 *
 * @throws RangeError when the JSON is not a credentials file this understands.
 */
export function gcsTokenFromCredentials(json: string, options: GcsTokenOptions = {}): GcsTokenSource {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new RangeError(`GCS credentials are not JSON: ${(error as Error).message}`);
  }
  const field = (name: string): string => {
    const value = parsed?.[name];
    if (typeof value !== "string" || value === "") {
      throw new RangeError(`GCS credentials of type ${JSON.stringify(parsed?.type)} lack "${name}"`);
    }
    return value;
  };
  if (parsed?.type === "service_account") {
    const email = field("client_email");
    const tokenUri = typeof parsed.token_uri === "string" ? parsed.token_uri : GOOGLE_TOKEN_URI;
    const key = importPkcs8(field("private_key"));
    return cachedToken(async (send, now) => {
      const iat = Math.floor(now / 1000);
      const assertion = await signJwt(await key, {
        iss: email,
        scope: GCS_SCOPE,
        aud: tokenUri,
        iat,
        exp: iat + 3600,
      });
      return send(tokenUri, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }),
      });
    }, options);
  }
  if (parsed?.type === "authorized_user") {
    const body = new URLSearchParams({
      grant_type: "refresh_token",
      client_id: field("client_id"),
      client_secret: field("client_secret"),
      refresh_token: field("refresh_token"),
    });
    return cachedToken((send) =>
      send(GOOGLE_TOKEN_URI, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body,
      }), options);
  }
  throw new RangeError(
    `GCS credentials of type ${JSON.stringify(parsed?.type)} are not supported ` +
      `(service_account or authorized_user)`,
  );
}

/** A token source asking the metadata server of the Google Cloud machine this runs on. */
export function gcsTokenFromMetadataServer(options: GcsTokenOptions = {}): GcsTokenSource {
  return cachedToken(
    (send) => send(METADATA_TOKEN_URL, { headers: { "metadata-flavor": "Google" } }),
    options,
  );
}

type Send = (url: string, init: RequestInit) => Promise<{ access_token: string; expires_in: number }>;

function cachedToken(
  exchange: (send: Send, now: number) => Promise<{ access_token: string; expires_in: number }>,
  options: GcsTokenOptions,
): GcsTokenSource {
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const now = options.now ?? (() => Date.now());
  const timeoutMs = options.timeoutMs ?? 10_000;
  const send: Send = async (url, init) => {
    const response = await doFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await readBoundedText(response, MAX_TOKEN_RESPONSE);
    if (!response.ok) {
      throw new TokenError(
        `token exchange at ${url} answered HTTP ${response.status}: ${text.slice(0, 300)}`,
        response.status,
      );
    }
    const answer = JSON.parse(text);
    if (typeof answer?.access_token !== "string" || typeof answer?.expires_in !== "number") {
      throw new TokenError(`token exchange at ${url} gave no access_token/expires_in`, response.status);
    }
    return answer;
  };
  let current: { header: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;
  return () => {
    if (current !== undefined && now() < current.renewAt) return Promise.resolve(current.header);
    pending ??= (async () => {
      try {
        const started = now();
        const answer = await exchange(send, started);
        current = {
          header: `Bearer ${answer.access_token}`,
          renewAt: started + Math.max(0, answer.expires_in * 1000 - RENEW_BEFORE_MS),
        };
        return current.header;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  };
}

/** A refused token exchange; `status` lets the store tell bad credentials (4xx) from an outage (5xx). */
export class TokenError extends Error {
  override readonly name = "TokenError";
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

function importPkcs8(pem: string): Promise<CryptoKey> {
  const base64 = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return crypto.subtle.importKey("pkcs8", der, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, [
    "sign",
  ]);
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A compact JWS (RS256) over `claims`. */
export async function signJwt(key: CryptoKey, claims: Record<string, unknown>): Promise<string> {
  const encoder = new TextEncoder();
  const head = base64url(encoder.encode(JSON.stringify({ alg: "RS256", typ: "JWT" })));
  const body = base64url(encoder.encode(JSON.stringify(claims)));
  const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, encoder.encode(`${head}.${body}`));
  return `${head}.${body}.${base64url(new Uint8Array(signature))}`;
}
