/**
 * AWS Signature Version 4 (header form) on Web Crypto only, so it runs on Deno Deploy, Workers, Bun and
 * Deno alike. Follows the published algorithm: canonical request -> string to sign -> HMAC chain.
 */

/** Long-term or temporary AWS credentials. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Set for temporary (STS) credentials; sent and signed as x-amz-security-token. */
  sessionToken?: string;
}

/** A request to sign. Its URL path and query must already be encoded with {@linkcode uriEncode}. */
export interface SigV4Request {
  method: string;
  url: URL;
  /** Headers to send and sign (host is added from the URL). */
  headers?: Record<string, string>;
  /** Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD". */
  payloadHash: string;
}

/** Options of {@linkcode signV4}. */
export interface SigV4Options {
  region: string;
  /** Default: "s3". */
  service?: string;
  /** Signing time. Default: now. */
  date?: Date;
}

/** Hex SHA-256 of nothing: the payload hash of every body-less request. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const encoder = new TextEncoder();

/** RFC 3986 percent-encoding of everything but unreserved characters, as SigV4 requires ('/' included). */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Hex SHA-256 of bytes or a UTF-8 string. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return toHex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/** "20130524T000000Z" */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * The canonical request of SigV4: method, canonical URI (each path segment decoded then encoded once, as
 * S3 wants), sorted canonical query, sorted lower-case headers with folded whitespace, signed header list
 * and payload hash.
 */
export function canonicalRequest(
  request: { method: string; url: URL; headers: Record<string, string>; payloadHash: string },
): { canonical: string; signedHeaders: string } {
  const path = request.url.pathname === "" ? "/" : request.url.pathname;
  const canonicalUri = path.split("/").map((segment) => uriEncode(decodeURIComponent(segment))).join("/");
  const query = [...request.url.searchParams]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0)
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const headers = new Map<string, string>();
  for (const [name, value] of Object.entries(request.headers)) {
    headers.set(name.toLowerCase(), value.trim().replace(/\s+/g, " "));
  }
  const names = [...headers.keys()].sort();
  const canonicalHeaders = names.map((name) => `${name}:${headers.get(name)}\n`).join("");
  const signedHeaders = names.join(";");
  return {
    canonical: [
      request.method.toUpperCase(),
      canonicalUri,
      query,
      canonicalHeaders,
      signedHeaders,
      request.payloadHash,
    ].join("\n"),
    signedHeaders,
  };
}

async function hmac(key: Uint8Array | ArrayBuffer, data: string): Promise<ArrayBuffer> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    key as ArrayBuffer,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(data));
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
export async function deriveSigningKey(
  secretAccessKey: string,
  dateStamp: string,
  region: string,
  service: string,
): Promise<ArrayBuffer> {
  const kDate = await hmac(encoder.encode(`AWS4${secretAccessKey}`), dateStamp);
  const kRegion = await hmac(kDate, region);
  const kService = await hmac(kRegion, service);
  return hmac(kService, "aws4_request");
}

/**
 * Signs a request: returns the headers to send (the given ones plus x-amz-date, x-amz-content-sha256,
 * x-amz-security-token when there is a session token, and authorization). Host is signed from the URL and
 * left for fetch to send.
 */
export async function signV4(
  request: SigV4Request,
  credentials: AwsCredentials,
  options: SigV4Options,
): Promise<Record<string, string>> {
  const service = options.service ?? "s3";
  const timestamp = amzDate(options.date ?? new Date());
  const dateStamp = timestamp.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;
  headers["x-amz-date"] = timestamp;
  headers["x-amz-content-sha256"] = request.payloadHash;
  if (credentials.sessionToken) headers["x-amz-security-token"] = credentials.sessionToken;
  const { canonical, signedHeaders } = canonicalRequest({
    method: request.method,
    url: request.url,
    headers: { ...headers, host: request.url.host },
    payloadHash: request.payloadHash,
  });
  const scope = `${dateStamp}/${options.region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", timestamp, scope, await sha256Hex(canonical)].join("\n");
  const key = await deriveSigningKey(credentials.secretAccessKey, dateStamp, options.region, service);
  const signature = toHex(await hmac(key, stringToSign));
  headers["authorization"] =
    `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}

function toHex(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
  return out;
}
