import assert from "node:assert/strict";
import type {
  R2BucketLike,
  R2ListOptionsLike,
  R2ObjectBodyLike,
  R2ObjectLike,
  R2ObjectsLike,
} from "./r2_store.ts";
import { R2Store } from "./r2_store.ts";
import { StorageError } from "./object_store.ts";

const utf8 = new TextEncoder();

/** Byte-wise UTF-8 order, which is how R2 sorts listed keys. */
function compareUtf8(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * An in-test R2 bucket following the documented R2Bucket semantics: get/head answer null for absent keys;
 * a body can be read once; delete of absent keys succeeds; list sorts by UTF-8 bytes, defaults to and caps
 * at 1000, and may return fewer objects than the limit on a truncated page, with an opaque cursor to go on.
 * `pageCap` forces short pages; `failNext` makes the next call throw the way a binding does (a plain Error).
 */
class FakeR2Bucket implements R2BucketLike {
  readonly objects = new Map<string, Uint8Array>();
  readonly calls: string[] = [];
  pageCap = 1000;
  failNext: Error | undefined;
  refusePuts = false;

  #meta(key: string, bytes: Uint8Array): R2ObjectLike {
    return { key, size: bytes.byteLength };
  }

  #enter(call: string): void {
    this.calls.push(call);
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure !== undefined) throw failure;
  }

  head(key: string): Promise<R2ObjectLike | null> {
    this.#enter(`head ${key}`);
    const bytes = this.objects.get(key);
    return Promise.resolve(bytes === undefined ? null : this.#meta(key, bytes));
  }

  get(key: string): Promise<R2ObjectBodyLike | null> {
    this.#enter(`get ${key}`);
    const bytes = this.objects.get(key);
    if (bytes === undefined) return Promise.resolve(null);
    let used = false;
    return Promise.resolve({
      ...this.#meta(key, bytes),
      arrayBuffer: () => {
        if (used) return Promise.reject(new TypeError("Body has already been used"));
        used = true;
        return Promise.resolve(bytes.slice().buffer);
      },
    });
  }

  put(key: string, value: ArrayBuffer | ArrayBufferView): Promise<R2ObjectLike | null> {
    this.#enter(`put ${key}`);
    if (utf8.encode(key).length > 1024) {
      return Promise.reject(new Error("put: The specified object name is not valid. (10020)"));
    }
    if (this.refusePuts) return Promise.resolve(null);
    const bytes = value instanceof ArrayBuffer
      ? new Uint8Array(value.slice(0))
      : new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
    this.objects.set(key, bytes);
    return Promise.resolve(this.#meta(key, bytes));
  }

  delete(keys: string | string[]): Promise<void> {
    this.#enter(`delete ${keys}`);
    for (const key of Array.isArray(keys) ? keys : [keys]) this.objects.delete(key);
    return Promise.resolve();
  }

  list(options: R2ListOptionsLike = {}): Promise<R2ObjectsLike> {
    this.#enter(`list ${options.prefix ?? ""} ${options.cursor ?? "-"}`);
    const limit = options.limit ?? 1000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      return Promise.reject(new Error("list: MaxKeys params must be positive integer <= 1000. (10022)"));
    }
    const after = options.cursor === undefined ? undefined : atob(options.cursor);
    const matching = [...this.objects.keys()]
      .filter((key) => key.startsWith(options.prefix ?? ""))
      .filter((key) => after === undefined || compareUtf8(key, after) > 0)
      .sort(compareUtf8);
    const page = matching.slice(0, Math.min(limit, this.pageCap));
    const truncated = matching.length > page.length;
    return Promise.resolve({
      objects: page.map((key) => this.#meta(key, this.objects.get(key)!)),
      truncated,
      // The cursor resumes after the last key handed out (or where the previous one did, on an empty page).
      cursor: truncated ? btoa(page.at(-1) ?? after ?? "") : undefined,
    });
  }
}

Deno.test("R2Store put() then get() round-trips bytes under its prefix", async () => {
  const bucket = new FakeR2Bucket();
  const store = new R2Store(bucket, { prefix: "/otel/", bucketName: "telemetry" });
  const bytes = new Uint8Array([0, 255, 1, 254]);
  await store.put("logs/a.parquet", bytes.subarray(1, 3));
  assert.deepEqual([...bucket.objects.keys()], ["otel/logs/a.parquet"]);
  assert.deepEqual(await store.get("logs/a.parquet"), new Uint8Array([255, 1]));
  assert.equal(store.description, "r2://telemetry/otel/");
});

Deno.test("R2Store get() of a missing key is undefined and delete() of one succeeds", async () => {
  const store = new R2Store(new FakeR2Bucket());
  assert.equal(await store.get("nope"), undefined);
  await store.delete("nope");
});

Deno.test("R2Store put() replaces and delete() removes", async () => {
  const bucket = new FakeR2Bucket();
  const store = new R2Store(bucket);
  await store.put("k", new Uint8Array(100));
  await store.put("k", new Uint8Array([3]));
  assert.deepEqual(await store.get("k"), new Uint8Array([3]));
  await store.delete("k");
  assert.equal(await store.get("k"), undefined);
  assert.equal(bucket.objects.size, 0);
});

Deno.test("R2Store list() follows cursors across short pages, strips its prefix and sorts", async () => {
  const bucket = new FakeR2Bucket();
  bucket.pageCap = 2;
  const store = new R2Store(bucket, { prefix: "t" });
  const keys = ["p/e", "p/a", "p/d/x", "p/c", "p/b", "pp/z", "q/a"];
  for (const key of keys) await store.put(key, utf8.encode(key));
  bucket.objects.set("outside/p/a", new Uint8Array([1]));
  bucket.calls.length = 0;
  assert.deepEqual(await store.list("p/"), ["p/a", "p/b", "p/c", "p/d/x", "p/e"]);
  assert.equal(bucket.calls.filter((call) => call.startsWith("list")).length, 3);
  assert.deepEqual(await store.list("p"), ["p/a", "p/b", "p/c", "p/d/x", "p/e", "pp/z"]);
  assert.deepEqual(await store.list(""), [...keys].sort());
  assert.deepEqual(await store.list("none/"), []);
});

Deno.test("R2Store list() keeps going through a truncated page with no objects", async () => {
  const bucket = new FakeR2Bucket();
  const store = new R2Store(bucket);
  await store.put("a", new Uint8Array([1]));
  await store.put("b", new Uint8Array([2]));
  const realList = bucket.list.bind(bucket);
  let first = true;
  bucket.list = (options) => {
    if (first) {
      first = false;
      bucket.calls.push("list (empty page)");
      return Promise.resolve({ objects: [], truncated: true, cursor: btoa("") });
    }
    return realList(options);
  };
  assert.deepEqual(await store.list(""), ["a", "b"]);
});

Deno.test("R2Store check() probes with a HEAD", async () => {
  const bucket = new FakeR2Bucket();
  const store = new R2Store(bucket, { prefix: "x" });
  await store.check();
  assert.deepEqual(bucket.calls, ["head x/.otlp2parquet-probe"]);
});

Deno.test("R2Store classifies binding errors as retryable or permanent", async () => {
  const bucket = new FakeR2Bucket();
  const store = new R2Store(bucket);
  const cases: [Error, boolean][] = [
    [new Error("put: We encountered an internal error. Please try again. (10001)"), true],
    [new Error("Network connection lost."), true],
    [new Error("get: Reduce your concurrent request rate for the same object. (10058)"), true],
    [new Error("put: Service unavailable. (10043)"), true],
    [new Error("put: Account not entitled to this feature. (10042)"), false],
    [new Error("put: Insufficient permissions for the requested operation. (10003)"), false],
  ];
  for (const [error, retryable] of cases) {
    bucket.failNext = error;
    await assert.rejects(store.put("k", new Uint8Array([1])), (thrown: unknown) => {
      assert.ok(thrown instanceof StorageError);
      assert.equal(thrown.retryable, retryable, error.message);
      assert.equal(thrown.cause, error);
      return true;
    });
  }
  bucket.failNext = new Error("Network connection lost.");
  await assert.rejects(store.check(), (e: unknown) => e instanceof StorageError && e.retryable);
  bucket.failNext = new Error("Network connection lost.");
  await assert.rejects(store.list(""), (e: unknown) => e instanceof StorageError && e.retryable);
});

Deno.test("R2Store put() answered with null is a permanent StorageError", async () => {
  const bucket = new FakeR2Bucket();
  bucket.refusePuts = true;
  await assert.rejects(
    new R2Store(bucket).put("k", new Uint8Array([1])),
    (e: unknown) => e instanceof StorageError && !e.retryable,
  );
});

Deno.test("R2Store refuses invalid keys before calling the binding", async () => {
  const bucket = new FakeR2Bucket();
  const store = new R2Store(bucket);
  for (const key of ["", "/a", "a/../b", "a//b", "x".repeat(1025)]) {
    await assert.rejects(store.put(key, new Uint8Array([1])), RangeError);
    await assert.rejects(store.get(key), RangeError);
    await assert.rejects(store.delete(key), RangeError);
  }
  await assert.rejects(store.list("../"), RangeError);
  assert.deepEqual(bucket.calls, []);
});
