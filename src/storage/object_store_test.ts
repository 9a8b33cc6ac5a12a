import assert from "node:assert/strict";
import {
  isRetryableS3Error,
  isRetryableStatus,
  isRetryableStorageError,
  normalizePrefix,
  StorageError,
  toStorageError,
  validateKey,
  validatePrefix,
} from "./object_store.ts";

Deno.test("validateKey() accepts relative '/'-separated keys", () => {
  for (
    const key of [
      "a",
      "logs/service=api/2026/11/26/part-0001.parquet",
      ".hidden/x",
      "a..b/c...d",
      "spaces are fine/ü/😀",
      "x".repeat(1024),
    ]
  ) validateKey(key);
});

Deno.test("validateKey() refuses keys that would escape, alias or break a backend", () => {
  const bad = [
    "",
    "/a",
    "a//b",
    "a/../b",
    "..",
    "../a",
    "a/..",
    ".",
    "./a",
    "a/./b",
    "a/",
    "a\0b",
    "\uDC00",
    "x".repeat(1025),
  ];
  for (const key of bad) assert.throws(() => validateKey(key), RangeError, JSON.stringify(key.slice(0, 20)));
  // 1024 bytes is the limit in UTF-8, not in code units.
  assert.throws(() => validateKey("ü".repeat(513)), RangeError);
  validateKey("ü".repeat(512));
});

Deno.test("validatePrefix() allows '' and a trailing '/' but not escapes", () => {
  for (const prefix of ["", "a", "a/", "a/b/", "a/partial-na"]) validatePrefix(prefix);
  for (const prefix of ["/", "/a", "a//", "../", "a/../", "a\0", "./"]) {
    assert.throws(() => validatePrefix(prefix), RangeError, JSON.stringify(prefix));
  }
});

Deno.test("normalizePrefix() yields '' or 'a/b/'", () => {
  assert.equal(normalizePrefix(undefined), "");
  assert.equal(normalizePrefix(""), "");
  assert.equal(normalizePrefix("/"), "");
  assert.equal(normalizePrefix("a/b"), "a/b/");
  assert.equal(normalizePrefix("/a/b/"), "a/b/");
  assert.throws(() => normalizePrefix("a/../b"), RangeError);
});

Deno.test("isRetryableStatus() retries timeouts, throttling and server errors only", () => {
  for (const status of [408, 425, 429, 500, 502, 503, 504, 599]) {
    assert.ok(isRetryableStatus(status), String(status));
  }
  for (const status of [400, 401, 403, 404, 405, 409, 411, 412, 501]) {
    assert.ok(!isRetryableStatus(status), String(status));
  }
  assert.ok(isRetryableS3Error(400, "RequestTimeout"));
  assert.ok(isRetryableS3Error(403, "RequestTimeTooSkewed"));
  assert.ok(isRetryableS3Error(503, "SlowDown"));
  assert.ok(!isRetryableS3Error(404, "NoSuchBucket"));
  assert.ok(!isRetryableS3Error(403, "AccessDenied"));
  assert.ok(!isRetryableS3Error(403, "InvalidAccessKeyId"));
});

Deno.test("isRetryableStorageError() classifies what runtimes and OpenDAL throw", () => {
  const errno = (code: string) => Object.assign(new Error(`${code}: failed`), { code });
  const retryable: unknown[] = [
    errno("ECONNREFUSED"),
    errno("ECONNRESET"),
    errno("ETIMEDOUT"),
    errno("ENOSPC"),
    errno("EAI_AGAIN"),
    new DOMException("signal timed out", "TimeoutError"),
    new DOMException("aborted", "AbortError"),
    new TypeError("fetch failed"),
    new TypeError("Network connection lost."),
    new TypeError("error reading a body from connection: connection reset"),
    errno("ConnectionRefused"),
    new TypeError("error sending request for url (http://127.0.0.1:1/): client error (Connect)"),
    new Error("Unexpected (temporary) at write, context: { service: s3 } => send http request"),
    new Error("Unexpected (persistent) at read => retried and still failing"),
    new Error("RateLimited (permanent) at write => slow down"),
    new Error("Unexpected (temporary) at write => No space left on device (os error 28)"),
    new Error("wrapper", { cause: errno("ECONNRESET") }),
    new StorageError("x", { retryable: true }),
  ];
  const permanent: unknown[] = [
    errno("EACCES"),
    errno("EROFS"),
    new RangeError("invalid object key"),
    new TypeError("Cannot read properties of undefined (reading 'x')"),
    new TypeError("Cannot read properties of undefined (reading 'request')"),
    new Error("PermissionDenied (permanent) at write => 403 AccessDenied"),
    new Error("ConfigInvalid (permanent) at write => NoSuchBucket"),
    new Error("NotFound (permanent) at read, context: { } => connection refused text in a permanent error"),
    new Error("something nobody recognises"),
    "a string",
    undefined,
    null,
    new StorageError("x", { retryable: false }),
  ];
  for (const error of retryable) assert.equal(isRetryableStorageError(error), true, String(error));
  for (const error of permanent) assert.equal(isRetryableStorageError(error), false, String(error));
});

Deno.test("toStorageError() wraps once, keeps the cause and the errno code", () => {
  const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" });
  const wrapped = toStorageError(cause, "cannot put k");
  assert.ok(wrapped instanceof StorageError);
  assert.equal(wrapped.name, "StorageError");
  assert.equal(wrapped.message, "cannot put k: connect ECONNREFUSED 127.0.0.1:9");
  assert.equal(wrapped.retryable, true);
  assert.equal(wrapped.code, "ECONNREFUSED");
  assert.equal(wrapped.cause, cause);
  assert.equal(toStorageError(wrapped, "again"), wrapped);
});
