/**
 * One ObjectStore contract, run against every implementation that can run here: MemoryStore, FsStore, OpenDAL fs,
 * OpenDAL s3 and S3FetchStore (both against a real s3rver on loopback), OpenDAL gcs against fake-gcs-server and
 * OpenDAL azblob against Azurite. Every backend the README lists meets a real server of its protocol.
 */
import assert from "node:assert/strict";
import {
  GcsFetchStore,
  MemoryStore,
  type ObjectStore,
  S3FetchStore,
  StorageError,
} from "../src/storage/mod.ts";
import { FsStore } from "../src/storage/fs_store.ts";
import { createOpendalStore, FS_STAGING_DIR } from "../src/storage/opendal_store.ts";
import { startS3Server } from "./support/s3_server.ts";
import { GCS_SKIP_REASON, startGcsServer } from "./support/gcs_server.ts";
import { startAzurite } from "./support/azurite.ts";

interface ContractFixture {
  store: ObjectStore;
  /** Makes the backend unreachable (`begin`) and reachable again with its data (`end`), when it can. */
  outage?: { begin(): Promise<void>; end(): Promise<void> };
  /**
   * Whether the backend itself keeps a replaced object whole for concurrent readers (S3 does; s3rver
   * rewrites the file in place, so the stores cannot be held to it there). Default: true.
   */
  atomicReplace?: boolean;
  /** Runs after the contract on the same store, for backend-specific checks. */
  extra?: (t: Deno.TestContext) => Promise<void>;
  dispose(): Promise<void>;
}

const SIX_MB = 6 * 1024 * 1024;

function randomBytes(length: number, seed: number): Uint8Array {
  // xorshift: reproducible, and no slower than crypto.getRandomValues' 64 KiB limit makes it.
  const bytes = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function assertBytes(actual: Uint8Array | undefined, expected: Uint8Array, message: string): void {
  assert.ok(actual instanceof Uint8Array, `${message}: expected bytes, got ${actual}`);
  assert.equal(actual.byteLength, expected.byteLength, `${message}: length`);
  assert.ok(sameBytes(actual, expected), `${message}: content differs`);
}

async function assertStorageError(
  promise: Promise<unknown>,
  retryable: boolean,
  what: string,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StorageError, `${what}: expected StorageError, got ${error}`);
    assert.equal(error.retryable, retryable, `${what}: retryable of ${error.message}`);
    return true;
  });
}

const INVALID_KEYS = [
  "",
  "/abs",
  "a//b",
  "a/../b",
  "..",
  "../escape",
  "a/./b",
  ".",
  "a\0b",
  "dir/",
  "x".repeat(1025),
  "bad\uD800surrogate",
];

function objectStoreContract(
  name: string,
  factory: () => Promise<ContractFixture>,
  skipReason?: string,
): void {
  if (skipReason !== undefined) console.warn(`ObjectStore contract: ${name} is skipped: ${skipReason}`);
  Deno.test({ name: `ObjectStore contract: ${name}`, ignore: skipReason !== undefined }, async (t) => {
    const fixture = await factory();
    const { store } = fixture;
    try {
      await t.step("check() passes on a reachable store", async () => {
        await store.check();
        assert.equal(typeof store.description, "string");
        assert.ok(store.description.length > 0);
      });

      await t.step("put() then get() returns the same binary bytes", async () => {
        const every = new Uint8Array(256).map((_, i) => i);
        await store.put("bin/every-byte", every);
        assertBytes(await store.get("bin/every-byte"), every, "every byte value");

        const empty = new Uint8Array(0);
        await store.put("bin/empty", empty);
        assertBytes(await store.get("bin/empty"), empty, "empty object");

        // A view into a larger buffer: only the viewed bytes may be stored.
        const backing = randomBytes(100, 7);
        const view = backing.subarray(10, 60);
        await store.put("bin/view", view);
        assertBytes(await store.get("bin/view"), backing.slice(10, 60), "subarray");
      });

      await t.step("put() and get() a 6 MB object", async () => {
        const big = randomBytes(SIX_MB, 42);
        await store.put("big/six-mb.parquet", big);
        assertBytes(await store.get("big/six-mb.parquet"), big, "6 MB object");
      });

      await t.step("put() stores a copy, get() returns one", async () => {
        const bytes = new Uint8Array([1, 2, 3]);
        await store.put("copy/a", bytes);
        bytes[0] = 9;
        const first = await store.get("copy/a");
        assertBytes(first, new Uint8Array([1, 2, 3]), "after caller mutated its buffer");
        first![1] = 9;
        assertBytes(await store.get("copy/a"), new Uint8Array([1, 2, 3]), "after mutating a read copy");
      });

      await t.step("keys with spaces, '=' and other URL-special characters round-trip", async () => {
        const key = "logs/service.name=my svc/date=2026-01-01/a+b&c(1)~'!$,;@ü%20.parquet";
        const bytes = randomBytes(1000, 3);
        await store.put(key, bytes);
        assertBytes(await store.get(key), bytes, "special key");
        assert.deepEqual(await store.list("logs/service.name=my svc/"), [key]);
        await store.delete(key);
        assert.equal(await store.get(key), undefined);
      });

      await t.step("put() over an existing key replaces the whole object", async () => {
        await store.put("over/key", randomBytes(5000, 1));
        const shorter = randomBytes(10, 2);
        await store.put("over/key", shorter);
        assertBytes(await store.get("over/key"), shorter, "replaced by a shorter object");
        assert.deepEqual(await store.list("over/"), ["over/key"]);
      });

      await t.step("list() is recursive, sorted and limited to the prefix", async () => {
        const keys = ["p/b/2", "p/a", "p/b/1/x.parquet", "pp/z", "q/p/a", "p0"];
        for (const key of keys) await store.put(key, new TextEncoder().encode(key));
        assert.deepEqual(await store.list("p/"), ["p/a", "p/b/1/x.parquet", "p/b/2"]);
        assert.deepEqual(await store.list("p/b/"), ["p/b/1/x.parquet", "p/b/2"]);
        // A plain string prefix, as in S3: "p" also matches "pp/z" and "p0".
        assert.deepEqual(await store.list("p"), ["p/a", "p/b/1/x.parquet", "p/b/2", "p0", "pp/z"]);
        assert.deepEqual(await store.list("p/b/1/x"), ["p/b/1/x.parquet"]);
        assert.deepEqual(await store.list("nothing/"), []);
        assert.deepEqual(await store.list("nothing/deeper/"), []);
        const all = await store.list("");
        assert.deepEqual(all, [...all].sort());
        for (const key of keys) assert.ok(all.includes(key), `list("") includes ${key}`);
      });

      await t.step({
        name: "listInfo() (where offered) lists what list() does, with sizes and modification times",
        ignore: store.listInfo === undefined,
        fn: async () => {
          const before = Date.now();
          await store.put("info/a", randomBytes(123, 5));
          await store.put("info/b/c", new Uint8Array(0));
          const infos = await store.listInfo!("info/");
          assert.deepEqual(infos.map((i) => i.key), await store.list("info/"));
          assert.deepEqual(infos.map((i) => i.size), [123, 0]);
          for (const i of infos) {
            // Stores keep whole seconds (S3's LastModified) and their clock is not ours: a minute either way.
            assert.ok(
              Math.abs(i.modifiedMs - before) < 60_000,
              `${i.key} modified ${i.modifiedMs}, now ${before}`,
            );
          }
          await store.delete("info/a");
          await store.delete("info/b/c");
        },
      });

      await t.step("get() of a missing key is undefined", async () => {
        assert.equal(await store.get("missing/key"), undefined);
        assert.equal(await store.get("never-a-folder/missing"), undefined);
      });

      await t.step("delete() removes the object; deleting a missing key succeeds", async () => {
        await store.put("del/a", new Uint8Array([1]));
        await store.put("del/b", new Uint8Array([2]));
        await store.delete("del/a");
        assert.equal(await store.get("del/a"), undefined);
        assert.deepEqual(await store.list("del/"), ["del/b"]);
        await store.delete("del/a");
        await store.delete("del/never-existed");
        await store.delete("del/b");
        assert.deepEqual(await store.list("del/"), []);
      });

      await t.step({
        name: "readers never see a half-written object",
        ignore: fixture.atomicReplace === false,
        fn: async () => {
          const before = new Uint8Array(SIX_MB).fill(1);
          const after = new Uint8Array(SIX_MB).fill(2);
          await store.put("atomic/obj", before);
          let done = false;
          const writing = store.put("atomic/obj", after).finally(() => done = true);
          try {
            let reads = 0;
            while (!done) {
              const seen = await store.get("atomic/obj");
              reads++;
              assert.ok(
                sameBytes(seen, before) || sameBytes(seen, after),
                `read ${reads} saw ${seen?.byteLength} bytes starting ${seen?.[0]} ending ${seen?.at(-1)}`,
              );
            }
          } finally {
            await writing;
          }
          assertBytes(await store.get("atomic/obj"), after, "after the write");
        },
      });

      await t.step("invalid keys are refused with RangeError", async () => {
        for (const key of INVALID_KEYS) {
          const label = JSON.stringify(key.slice(0, 20));
          await assert.rejects(store.put(key, new Uint8Array([1])), RangeError, `put ${label}`);
          await assert.rejects(store.get(key), RangeError, `get ${label}`);
          await assert.rejects(store.delete(key), RangeError, `delete ${label}`);
        }
        for (const prefix of ["/abs", "../", "a//", "a/../", "a\0"]) {
          await assert.rejects(store.list(prefix), RangeError, `list ${JSON.stringify(prefix)}`);
        }
        assert.ok(!(await store.list("")).some((key) => key.includes("abs") || key.includes("escape")));
      });

      if (fixture.outage !== undefined) {
        const outage = fixture.outage;
        await t.step(
          "an outage fails with retryable StorageErrors and heals with the data intact",
          async () => {
            const kept = randomBytes(2048, 5);
            await store.put("outage/kept", kept);
            await outage.begin();
            try {
              await assertStorageError(store.check(), true, "check during outage");
              await assertStorageError(
                store.put("outage/new", new Uint8Array([1])),
                true,
                "put during outage",
              );
              await assertStorageError(store.get("outage/kept"), true, "get during outage");
              await assertStorageError(store.list("outage/"), true, "list during outage");
            } finally {
              await outage.end();
            }
            await store.check();
            await store.put("outage/new", new Uint8Array([7]));
            assertBytes(await store.get("outage/new"), new Uint8Array([7]), "put after the outage");
            assertBytes(await store.get("outage/kept"), kept, "data written before the outage");
          },
        );
      }

      if (fixture.extra !== undefined) await fixture.extra(t);
    } finally {
      await fixture.dispose();
    }
  });
}

objectStoreContract("MemoryStore", () => {
  const store = new MemoryStore();
  return Promise.resolve({
    store,
    outage: {
      begin: () =>
        Promise.resolve(
          store.failWith(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })),
        ),
      end: () => Promise.resolve(store.failWith(undefined)),
    },
    dispose: () => Promise.resolve(),
  });
});

/** What both fs stores promise beyond the contract: OpenDAL's layout, so either reads what the other wrote. */
function fsExtras(store: ObjectStore, root: string): (t: Deno.TestContext) => Promise<void> {
  return async (t) => {
    await t.step("fs description names the absolute root", () => {
      assert.equal(store.description, `fs:${root}/data`);
    });
    await t.step("fs put() leaves no temporary files behind, on disk or in list()", async () => {
      const before = await store.list("");
      await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.put(`tmpcheck/part-${i}`, randomBytes(100_000, i + 1))),
      );
      const after = await store.list("");
      const added = after.filter((key) => !before.includes(key));
      assert.deepEqual(added, Array.from({ length: 8 }, (_, i) => `tmpcheck/part-${i}`));
      assert.ok(!after.some((key) => key.startsWith(FS_STAGING_DIR)));
      const staging = [...Deno.readDirSync(`${root}/data/${FS_STAGING_DIR}`)].map((e) => e.name);
      assert.deepEqual(staging, [], "staging folder is empty after the writes");
      const onDisk = [...Deno.readDirSync(`${root}/data/tmpcheck`)].map((e) => e.name).sort();
      assert.deepEqual(onDisk, Array.from({ length: 8 }, (_, i) => `part-${i}`));
    });
    await t.step("fs refuses keys inside its staging folder", async () => {
      await assert.rejects(store.put(`${FS_STAGING_DIR}/x`, new Uint8Array([1])), RangeError);
      await assert.rejects(store.put(FS_STAGING_DIR, new Uint8Array([1])), RangeError);
    });
    await t.step("fs objects are plain files under the root", async () => {
      await store.put("plain/file.bin", new Uint8Array([4, 5, 6]));
      assert.deepEqual(Deno.readFileSync(`${root}/data/plain/file.bin`), new Uint8Array([4, 5, 6]));
    });
  };
}

objectStoreContract("OpenDAL fs", () => {
  const root = Deno.makeTempDirSync({ prefix: "opendal-fs-" });
  const store = createOpendalStore({ backend: "fs", root: `${root}/data` });
  return Promise.resolve({
    store,
    extra: fsExtras(store, root),
    dispose: () => Promise.resolve(Deno.removeSync(root, { recursive: true })),
  });
});

objectStoreContract("FsStore (node:fs)", () => {
  const root = Deno.makeTempDirSync({ prefix: "fs-store-" });
  const store = new FsStore({ root: `${root}/data` });
  return Promise.resolve({
    store,
    extra: async (t) => {
      await fsExtras(store, root)(t);
      await t.step("fs reads what OpenDAL's fs backend wrote, and the reverse", async () => {
        const opendal = createOpendalStore({ backend: "fs", root: `${root}/data` });
        await opendal.put("cross/from-opendal", new Uint8Array([1, 2]));
        await store.put("cross/from-node", new Uint8Array([3]));
        assertBytes(await store.get("cross/from-opendal"), new Uint8Array([1, 2]), "written by OpenDAL");
        assertBytes(await opendal.get("cross/from-node"), new Uint8Array([3]), "written by FsStore");
        assert.deepEqual(await store.list("cross/"), await opendal.list("cross/"));
      });
      await t.step("fs check() creates the root; a root under a file fails permanently", async () => {
        const fresh = new FsStore({ root: `${root}/fresh/deeper` });
        await fresh.check();
        assert.ok(Deno.statSync(`${root}/fresh/deeper/${FS_STAGING_DIR}`).isDirectory);
        Deno.writeTextFileSync(`${root}/a-file`, "x");
        const blocked = new FsStore({ root: `${root}/a-file/data` });
        await assertStorageError(blocked.check(), false, "check under a file");
        await assertStorageError(blocked.put("k", new Uint8Array([1])), false, "put under a file");
      });
    },
    dispose: () => Promise.resolve(Deno.removeSync(root, { recursive: true })),
  });
});

objectStoreContract("OpenDAL s3 against s3rver", async () => {
  const server = await startS3Server();
  const store = createOpendalStore({
    backend: "s3",
    bucket: server.bucket,
    endpoint: server.endpoint,
    region: "us-east-1",
    prefix: "tenant/a",
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    // Small parts so the 6 MB object goes up as a multipart upload.
    multipartChunkBytes: 5 * 1024 * 1024,
    timeoutMs: 10_000,
  });
  return {
    store,
    atomicReplace: false,
    outage: { begin: () => server.stop(), end: () => server.restart() },
    extra: async (t) => {
      await t.step("s3 keys live under the prefix inside the bucket", async () => {
        await store.put("under/prefix", new Uint8Array([1]));
        const response = await fetch(`${server.endpoint}/${server.bucket}/tenant/a/under/prefix`);
        assert.equal(response.status, 200);
        assert.deepEqual(new Uint8Array(await response.arrayBuffer()), new Uint8Array([1]));
        assert.equal(store.description, `s3://${server.bucket}/tenant/a/ (${server.endpoint})`);
      });
      await t.step("s3 against a missing bucket fails permanently", async () => {
        const missing = createOpendalStore({
          backend: "s3",
          bucket: "no-such-bucket",
          endpoint: server.endpoint,
          accessKeyId: server.accessKeyId,
          secretAccessKey: server.secretAccessKey,
        });
        await assertStorageError(missing.check(), false, "check of a missing bucket");
        await assertStorageError(missing.put("k", new Uint8Array([1])), false, "put into a missing bucket");
      });
    },
    dispose: () => server.stop(),
  };
});

objectStoreContract("S3FetchStore against s3rver", async () => {
  const server = await startS3Server();
  const options = {
    bucket: server.bucket,
    endpoint: server.endpoint,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    prefix: "tenant/b/",
    // Two keys a page, so every list() above walks continuation tokens.
    listPageSize: 2,
    timeoutMs: 10_000,
  };
  const store = new S3FetchStore(options);
  return {
    store,
    atomicReplace: false,
    outage: { begin: () => Promise.resolve(server.kill()), end: () => server.restart() },
    extra: async (t) => {
      await t.step(
        "S3FetchStore keys live under the prefix; others in the bucket are not listed",
        async () => {
          await store.put("under/prefix", new Uint8Array([1]));
          const outside = new S3FetchStore({ ...options, prefix: "tenant/bb" });
          await outside.put("under/prefix-not-mine", new Uint8Array([2]));
          assert.deepEqual(await store.list("under/"), ["under/prefix"]);
          const response = await fetch(`${server.endpoint}/${server.bucket}/tenant/b/under/prefix`);
          assert.deepEqual(new Uint8Array(await response.arrayBuffer()), new Uint8Array([1]));
          assert.equal(store.description, `s3://${server.bucket}/tenant/b/ (${server.endpoint})`);
        },
      );
      await t.step("S3FetchStore against a missing bucket fails permanently", async () => {
        const missing = new S3FetchStore({ ...options, bucket: "no-such-bucket" });
        await assertStorageError(missing.check(), false, "check of a missing bucket");
        await assertStorageError(missing.put("k", new Uint8Array([1])), false, "put into a missing bucket");
        await assertStorageError(missing.list(""), false, "list of a missing bucket");
        // No get(): fake-gcs-server answers a plain "Not Found" for a missing bucket and a missing object alike
        // (GCS itself says which), so get() there can only report the object as absent.
      });
      await t.step("S3FetchStore with an unknown access key fails permanently", async () => {
        const stranger = new S3FetchStore({ ...options, accessKeyId: "NOBODY" });
        await assertStorageError(stranger.put("k", new Uint8Array([1])), false, "put with a bad key id");
      });
    },
    dispose: () => server.stop(),
  };
});

objectStoreContract("GcsFetchStore against fake-gcs-server", async () => {
  const server = await startGcsServer();
  // Two names a page, so every list() above walks page tokens.
  const options = {
    bucket: server.bucket,
    endpoint: server.endpoint,
    prefix: "tenant/g",
    listPageSize: 2,
    timeoutMs: 10_000,
  };
  const store = new GcsFetchStore(options);
  return {
    store,
    outage: { begin: () => Promise.resolve(server.kill()), end: () => server.restart() },
    extra: async (t) => {
      await t.step("gcs keys live under the prefix inside the bucket", async () => {
        await store.put("under/prefix", new Uint8Array([1]));
        const object = encodeURIComponent("tenant/g/under/prefix");
        const response = await fetch(
          `${server.endpoint}/storage/v1/b/${server.bucket}/o/${object}?alt=media`,
        );
        assert.equal(response.status, 200);
        assert.deepEqual(new Uint8Array(await response.arrayBuffer()), new Uint8Array([1]));
        assert.equal(store.description, `gs://${server.bucket}/tenant/g/ (${server.endpoint})`);
      });
      await t.step("gcs against a missing bucket fails permanently", async () => {
        const missing = new GcsFetchStore({ ...options, bucket: "no-such-bucket" });
        await assertStorageError(missing.check(), false, "check of a missing bucket");
        await assertStorageError(missing.put("k", new Uint8Array([1])), false, "put into a missing bucket");
        // No get(): fake-gcs-server answers a plain "Not Found" for a missing bucket and a missing object alike
        // (GCS itself says which), so get() there can only report the object as absent.
      });
    },
    dispose: () => server.stop(),
  };
}, GCS_SKIP_REASON);

objectStoreContract("OpenDAL azblob against Azurite", async () => {
  const server = await startAzurite();
  const options = {
    backend: "azblob",
    container: server.container,
    endpoint: server.endpoint,
    accountName: server.account,
    accountKey: server.accountKey,
    prefix: "tenant/z",
    timeoutMs: 10_000,
  } as const;
  const store = createOpendalStore(options);
  return {
    store,
    // Azurite keeps its blob index in memory and saves it now and then, so a kill -9 of Azurite itself loses
    // recent blobs: the outage is a graceful stop, which saves it (the server cannot keep what Azurite drops).
    outage: { begin: () => server.stop(), end: () => server.restart() },
    extra: async (t) => {
      await t.step("azblob keys live under the prefix inside the container", async () => {
        await store.put("under/prefix", new Uint8Array([1]));
        const other = createOpendalStore({ ...options, prefix: "" });
        assertBytes(
          await other.get("tenant/z/under/prefix"),
          new Uint8Array([1]),
          "seen from the container root",
        );
        assert.equal(store.description, `azblob://${server.container}/tenant/z/ (${server.endpoint})`);
      });
      await t.step("azblob against a missing container fails permanently", async () => {
        const missing = createOpendalStore({ ...options, container: "no-such-container" });
        await assertStorageError(
          missing.put("k", new Uint8Array([1])),
          false,
          "put into a missing container",
        );
      });
      await t.step("azblob with a wrong account key fails permanently", async () => {
        const stranger = createOpendalStore({ ...options, accountKey: btoa("not the key".repeat(6)) });
        await assertStorageError(stranger.put("k", new Uint8Array([1])), false, "put with a wrong key");
      });
    },
    dispose: () => server.stop(),
  };
});
