import assert from "node:assert/strict";
import { MemoryStore } from "./memory_store.ts";
import { StorageError } from "./object_store.ts";

Deno.test("MemoryStore refuses puts beyond maxBytes with a retryable error, counting replacements once", async () => {
  const store = new MemoryStore({ maxBytes: 10 });
  await store.put("a", new Uint8Array(6));
  await store.put("a", new Uint8Array(10));
  assert.equal(store.byteLength, 10);
  await assert.rejects(store.put("b", new Uint8Array(1)), (e: unknown) => {
    assert.ok(e instanceof StorageError);
    assert.equal(e.retryable, true);
    assert.equal(e.code, "ENOSPC");
    return true;
  });
  assert.equal(await store.get("b"), undefined);
  await store.delete("a");
  await store.put("b", new Uint8Array(10));
  assert.equal(store.byteLength, 10);
  assert.equal(store.size, 1);
});

Deno.test("MemoryStore.failWith() fails every operation until cleared", async () => {
  const store = new MemoryStore();
  await store.put("k", new Uint8Array([1]));
  store.failWith(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
  const attempts = [
    () => store.check(),
    () => store.put("k", new Uint8Array([2])),
    () => store.get("k"),
    () => store.list(""),
    () => store.delete("k"),
  ];
  for (const attempt of attempts) {
    await assert.rejects(attempt, (e: unknown) => e instanceof StorageError && e.retryable);
  }
  store.failWith(undefined);
  assert.deepEqual(await store.get("k"), new Uint8Array([1]));
});

Deno.test("MemoryStore.failWith() keeps a permanent error permanent", async () => {
  const store = new MemoryStore();
  const denied = new StorageError("denied", { retryable: false, code: "AccessDenied" });
  store.failWith(denied);
  await assert.rejects(store.check(), (e: unknown) => e === denied);
});

Deno.test("MemoryStore reports invalid keys as rejections, not synchronous throws", async () => {
  const store = new MemoryStore();
  const pending = store.put("/abs", new Uint8Array([1]));
  assert.ok(pending instanceof Promise);
  await assert.rejects(pending, RangeError);
});
