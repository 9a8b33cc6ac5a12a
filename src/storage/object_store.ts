/** Where Parquet objects go. Keys are '/'-separated relative paths, never starting with '/'. */
export interface ObjectStore {
  /** Human-readable target for banners/logs, e.g. "fs:/abs/path" or "s3://bucket/prefix". */
  readonly description: string;
  /** Write the whole object, replacing any existing one. Readers never see a half-written object. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** The object, or undefined when absent. */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * All keys starting with `prefix` (a plain string prefix, as in S3: "logs/" matches "logs/a/b",
   * "logs" also matches "logs2/x"), at any depth, sorted by code unit. "" lists everything.
   */
  list(prefix: string): Promise<string[]>;
  /**
   * Like `list`, with each object's size and last-modified time (what `compact` needs to leave young
   * objects alone). Optional: stores without it cannot be compacted.
   */
  listInfo?(prefix: string): Promise<ObjectInfo[]>;
  /** Removes the object; removing an absent key is not an error. */
  delete(key: string): Promise<void>;
  /** Cheap reachability probe (used by /ready and at start-up); throws StorageError when unreachable. */
  check(): Promise<void>;
}

/** An object as `listInfo` reports it. */
export interface ObjectInfo {
  readonly key: string;
  /** Bytes. */
  readonly size: number;
  /** Last modification, milliseconds since the epoch (NaN when the store does not say). */
  readonly modifiedMs: number;
}

/** Options of {@linkcode StorageError}. */
export interface StorageErrorOptions extends ErrorOptions {
  /** Whether trying the same operation again later may succeed. */
  retryable: boolean;
  /** A short machine-readable code from the backend (e.g. "NoSuchBucket", "ENOSPC", "http_503"), if known. */
  code?: string;
}

/** A storage operation failed; `retryable` says whether trying again later may succeed. */
export class StorageError extends Error {
  override readonly name = "StorageError";
  readonly retryable: boolean;
  readonly code: string | undefined;

  constructor(message: string, options: StorageErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable;
    this.code = options.code;
  }
}

/** S3/R2/GCS all cap keys at 1024 bytes of UTF-8; refusing longer ones here keeps every backend alike. */
export const MAX_KEY_BYTES = 1024;

const encoder = new TextEncoder();
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Throws RangeError unless `key` is a relative '/'-separated path every backend stores under the same name:
 * non-empty, no leading '/', no empty, "." or ".." segment, no NUL, well-formed UTF-16, at most {@linkcode MAX_KEY_BYTES}.
 */
export function validateKey(key: string): void {
  if (typeof key !== "string" || key.length === 0) throw new RangeError("invalid object key: empty");
  checkPath(key, "object key");
  if (key.endsWith("/")) throw new RangeError(`invalid object key: ends with '/': ${JSON.stringify(key)}`);
}

/** Like {@linkcode validateKey} but for list prefixes: "" and a trailing '/' are allowed. */
export function validatePrefix(prefix: string): void {
  if (typeof prefix !== "string") throw new RangeError("invalid list prefix: not a string");
  if (prefix.length === 0) return;
  checkPath(prefix.endsWith("/") ? prefix.slice(0, -1) : prefix, "list prefix");
}

function checkPath(path: string, what: string): void {
  const quoted = JSON.stringify(path);
  if (path.includes("\0")) throw new RangeError(`invalid ${what}: contains NUL: ${quoted}`);
  // A lone surrogate has no UTF-8 form: backends would store U+FFFD under a different name.
  if (LONE_SURROGATE.test(path)) throw new RangeError(`invalid ${what}: not well-formed UTF-16: ${quoted}`);
  if (path.startsWith("/")) throw new RangeError(`invalid ${what}: starts with '/': ${quoted}`);
  if (encoder.encode(path).length > MAX_KEY_BYTES) {
    throw new RangeError(`invalid ${what}: longer than ${MAX_KEY_BYTES} bytes`);
  }
  const segments = path.split("/");
  // The last segment of a prefix may be a partial name, but "." and ".." never are.
  for (const segment of segments) {
    if (segment === "" || segment === "." || segment === "..") {
      throw new RangeError(`invalid ${what}: empty, '.' or '..' segment: ${quoted}`);
    }
  }
}

/**
 * Joins an optional store prefix (a folder inside the bucket, given with or without slashes) and a key.
 * The prefix is normalised to "a/b/" or "".
 */
export function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? "").replace(/^\/+|\/+$/g, "");
  if (trimmed === "") return "";
  validatePrefix(trimmed);
  return `${trimmed}/`;
}

/** Node/libc error codes that describe a passing condition: the same call can succeed later. */
const TRANSIENT_ERRNO = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  // DNS outages surface as ENOTFOUND too; a misspelt host then retries until someone notices.
  "ENOTFOUND",
  "ENOSPC",
  "EDQUOT",
  "EMFILE",
  "ENFILE",
  "EBUSY",
  "EAGAIN",
  "EINTR",
  // Bun names its fetch failures instead of using errno codes.
  "ConnectionRefused",
  "ConnectionClosed",
  "FailedToOpenSocket",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

// Deno: "error sending request …", "error reading a body from connection"; Node: "fetch failed";
// workerd: "Network connection lost."; browsers: "Failed to fetch", "NetworkError …".
const FETCH_NETWORK_FAILURE =
  /fetch failed|failed to fetch|error sending request|error reading a body|network|connection (?:refused|reset|closed|lost|error)|socket/i;

/** S3-style error codes that are worth retrying even though their HTTP status is a 4xx. */
const TRANSIENT_S3_CODES = new Set([
  "RequestTimeout",
  "RequestTimeTooSkewed",
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequests",
  "InternalError",
  "ServiceUnavailable",
  "OperationAborted",
]);

/** HTTP statuses after which the same request can succeed later (timeouts, throttling, server trouble). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || (status >= 500 && status !== 501);
}

/** Whether an S3-style error (status plus the `<Code>` of its XML body) is worth retrying. */
export function isRetryableS3Error(status: number, code: string | undefined): boolean {
  if (code !== undefined && TRANSIENT_S3_CODES.has(code)) return true;
  return isRetryableStatus(status);
}

// Texts of transient failures from runtimes and bindings that throw plain Errors (fetch, workerd, R2, OpenDAL).
const TRANSIENT_MESSAGE =
  /\((?:temporary|persistent)\)|network connection lost|connection (?:refused|reset|closed)|timed? ?out|try again|temporarily|too many requests|internal error|no space left|os error (?:28|110|111|104)|error sending request|broken pipe/i;

/**
 * Classifies anything thrown by a storage call: true when the same call may succeed later (network errors,
 * timeouts, throttling, 5xx, full disks), false for permanent failures (bad credentials, missing bucket,
 * invalid keys) and for errors nothing here recognises.
 */
export function isRetryableStorageError(error: unknown): boolean {
  if (error instanceof StorageError) return error.retryable;
  if (error instanceof RangeError) return false;
  if (typeof error !== "object" || error === null) return false;
  const record = error as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown };
  if (record.name === "TimeoutError" || record.name === "AbortError") return true;
  if (typeof record.code === "string" && TRANSIENT_ERRNO.has(record.code)) return true;
  // fetch() rejects with a TypeError for network-level failures; its texts differ per runtime.
  if (error instanceof TypeError && FETCH_NETWORK_FAILURE.test(String(record.message))) return true;
  if (typeof record.message === "string") {
    // OpenDAL states its own verdict in the message ("NotFound (permanent) at read, …"); throttling is
    // worth retrying whatever it says.
    if (/^RateLimited /.test(record.message)) return true;
    if (/^\w+ \(permanent\) at /.test(record.message)) return false;
    if (TRANSIENT_MESSAGE.test(record.message)) return true;
  }
  if (record.cause !== undefined && record.cause !== error) return isRetryableStorageError(record.cause);
  return false;
}

/** Wraps anything thrown into a StorageError (returned as is when it already is one), classified once. */
export function toStorageError(error: unknown, message: string): StorageError {
  if (error instanceof StorageError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  const code = typeof (error as { code?: unknown })?.code === "string"
    ? (error as { code: string }).code
    : undefined;
  return new StorageError(`${message}: ${detail}`, {
    retryable: isRetryableStorageError(error),
    code,
    cause: error,
  });
}

/**
 * The start of a response body as text, at most about `maxChars` characters, then the rest is cancelled: a
 * misbehaving endpoint cannot balloon memory with an endless error page. Never throws: "" if unreadable.
 */
export async function readBoundedText(response: Response, maxChars: number): Promise<string> {
  let text = "";
  try {
    const reader = response.body?.getReader();
    if (reader === undefined) return "";
    const decoder = new TextDecoder();
    while (text.length < maxChars) {
      const { done, value } = await reader.read();
      if (done) return text + decoder.decode();
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
  } catch {
    // What was read so far is all the caller gets.
  }
  return text;
}
