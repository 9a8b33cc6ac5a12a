import assert from "node:assert/strict";
import { join } from "node:path";
import { StorageError } from "./object_store.ts";
import { createOpendalStore, FS_STAGING_DIR } from "./opendal_store.ts";

Deno.test("createOpendalStore() fs creates missing folders and names its absolute root", async () => {
  const base = Deno.makeTempDirSync({ prefix: "opendal-unit-" });
  try {
    const cwd = Deno.cwd();
    Deno.chdir(base);
    let store;
    try {
      store = createOpendalStore({ backend: "fs", root: "relative/root" });
    } finally {
      Deno.chdir(cwd);
    }
    assert.equal(store.description, `fs:${join(base, "relative/root")}`);
    await store.put("deep/er/still/file.bin", new Uint8Array([1, 2]));
    assert.deepEqual(
      Deno.readFileSync(join(base, "relative/root/deep/er/still/file.bin")),
      new Uint8Array([1, 2]),
    );
    assert.deepEqual(await store.list(""), ["deep/er/still/file.bin"]);
    assert.ok(Deno.statSync(join(base, "relative/root", FS_STAGING_DIR)).isDirectory);
  } finally {
    Deno.removeSync(base, { recursive: true });
  }
});

Deno.test("createOpendalStore() builds azblob operators without I/O", () => {
  assert.equal(
    createOpendalStore({ backend: "azblob", container: "c", accountName: "acct", accountKey: btoa("key") })
      .description,
    "azblob://c/ (https://acct.blob.core.windows.net)",
  );
  assert.equal(
    createOpendalStore({
      backend: "azblob",
      container: "c",
      endpoint: "http://127.0.0.1:10000/devstoreaccount1",
    })
      .description,
    "azblob://c/ (http://127.0.0.1:10000/devstoreaccount1)",
  );
});

Deno.test("createOpendalStore() reports an unusable configuration as a permanent StorageError", () => {
  assert.throws(
    () => createOpendalStore({ backend: "azblob", container: "c" }),
    (e: unknown) => e instanceof StorageError && !e.retryable && /endpoint/.test(e.message),
  );
  assert.throws(
    () => createOpendalStore({ backend: "s3", bucket: "b", multipartChunkBytes: 1024 }),
    RangeError,
  );
  assert.throws(
    () => createOpendalStore({ backend: "s3", bucket: "b", prefix: "../up" }),
    RangeError,
  );
});

Deno.test("createOpendalStore() s3 with an endpoint needs no region", () => {
  const store = createOpendalStore({
    backend: "s3",
    bucket: "b",
    endpoint: "http://127.0.0.1:9",
    accessKeyId: "k",
    secretAccessKey: "s",
  });
  assert.equal(store.description, "s3://b/ (http://127.0.0.1:9)");
});

Deno.test("OpenDAL s3 store against a closed port fails retryably with OpenDAL's kind as code", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const store = createOpendalStore({
    backend: "s3",
    bucket: "b",
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    accessKeyId: "k",
    secretAccessKey: "s",
  });
  // Each call starts only when the previous one has been awaited: a rejection that settles while an
  // earlier call is still pending would otherwise have no handler yet and fail the module.
  const attempts = [
    () => store.check(),
    () => store.put("k", new Uint8Array([1])),
    () => store.get("k"),
    () => store.list(""),
  ];
  for (const attempt of attempts) {
    await assert.rejects(attempt, (e: unknown) => {
      assert.ok(e instanceof StorageError);
      assert.equal(e.retryable, true, e.message);
      assert.equal(e.code, "Unexpected");
      assert.ok(e.message.startsWith(`cannot `), e.message);
      return true;
    });
  }
});
