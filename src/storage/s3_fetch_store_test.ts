import assert from "node:assert/strict";
import { StorageError } from "./object_store.ts";
import { parseListPage, S3FetchStore } from "./s3_fetch_store.ts";
import { startS3Server } from "../../tests/support/s3_server.ts";

const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

function isStorageError(retryable: boolean, code?: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof StorageError, `expected StorageError, got ${error}`);
    assert.equal(error.retryable, retryable, error.message);
    if (code !== undefined) assert.equal(error.code, code);
    return true;
  };
}

Deno.test("parseListPage() reads keys, sizes, times, truncation and the token, decoding XML entities", () => {
  const page = parseListPage(
    `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<Contents><Key>p/a&amp;b&lt;c&gt;&quot;&apos;.parquet</Key><Size>1</Size></Contents>
<Contents><Key>p/&#252;&#x1F600;</Key><LastModified>2025-01-15T10:00:01.000Z</LastModified><Size>2</Size></Contents>
<IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>`,
  );
  assert.deepEqual(page.keys, [`p/a&b<c>"'.parquet`, "p/ü😀"]);
  assert.deepEqual(page.sizes, [1, 2]);
  assert.deepEqual(page.modified, [NaN, Date.UTC(2025, 0, 15, 10, 0, 1)]);
  assert.equal(page.truncated, true);
  assert.equal(page.nextToken, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  const last = parseListPage("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  assert.deepEqual(last, { keys: [], sizes: [], modified: [], truncated: false, nextToken: undefined });
});

Deno.test("S3FetchStore refuses incomplete options with RangeError", () => {
  assert.throws(() => new S3FetchStore({ bucket: "", ...CREDENTIALS }), RangeError);
  assert.throws(() => new S3FetchStore({ bucket: "b", accessKeyId: "", secretAccessKey: "x" }), RangeError);
  assert.throws(() => new S3FetchStore({ bucket: "b", ...CREDENTIALS, listPageSize: 1001 }), RangeError);
  assert.throws(() => new S3FetchStore({ bucket: "b", ...CREDENTIALS, prefix: "a/../b" }), RangeError);
  assert.equal(new S3FetchStore({ bucket: "b", ...CREDENTIALS, prefix: "x" }).description, "s3://b/x/");
});

// s3rver tells virtual-host requests apart by their Host header ("<bucket>.s3.amazonaws.com"). Sending
// them through s3rver as an HTTP proxy delivers that Host to it while nothing leaves the loopback.
Deno.test("S3FetchStore addresses the bucket virtual-host style with forcePathStyle: false", async () => {
  const server = await startS3Server({ bucket: "vhost-bucket" });
  const client = Deno.createHttpClient({ proxy: { url: server.endpoint } });
  try {
    const requested: string[] = [];
    const store = new S3FetchStore({
      ...CREDENTIALS,
      bucket: "vhost-bucket",
      endpoint: "http://s3.amazonaws.com",
      forcePathStyle: false,
      sessionToken: "session-token",
      prefix: "vh",
      fetch: (input, init) => {
        requested.push(String(input));
        return fetch(input, { ...init, client });
      },
    });
    await store.check();
    await store.put("a b/c.parquet", new Uint8Array([1, 2, 3]));
    assert.deepEqual(await store.get("a b/c.parquet"), new Uint8Array([1, 2, 3]));
    assert.deepEqual(await store.list(""), ["a b/c.parquet"]);
    await store.delete("a b/c.parquet");
    assert.deepEqual(await store.list(""), []);
    assert.ok(
      requested.every((url) => url.startsWith("http://vhost-bucket.s3.amazonaws.com/")),
      requested.join(),
    );
    assert.ok(requested.includes("http://vhost-bucket.s3.amazonaws.com/vh/a%20b/c.parquet"));
    // The object really sits in that bucket under the prefix: read it path-style, straight from s3rver.
    await store.put("direct", new Uint8Array([9]));
    const response = await fetch(`${server.endpoint}/vhost-bucket/vh/direct`);
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), new Uint8Array([9]));
  } finally {
    client.close();
    await server.stop();
  }
});

/** A loopback HTTP server that answers every request with `respond`: failure injection S3 itself can't do. */
async function withServer(
  respond: (request: Request) => Response,
  run: (endpoint: string) => Promise<void>,
): Promise<void> {
  const controller = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: () => {} },
    respond,
  );
  try {
    await run(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    controller.abort();
    await server.finished;
  }
}

function xmlError(status: number, code: string): Response {
  return new Response(`<?xml version="1.0"?><Error><Code>${code}</Code><Message>m</Message></Error>`, {
    status,
    headers: { "content-type": "application/xml" },
  });
}

Deno.test("S3FetchStore classifies S3 error answers by status and code", async () => {
  const answers: Record<string, Response | (() => Response)> = {};
  await withServer(
    (request) => {
      const answer = answers[new URL(request.url).pathname];
      return typeof answer === "function" ? answer() : answer ?? new Response(null, { status: 200 });
    },
    async (endpoint) => {
      const store = new S3FetchStore({ ...CREDENTIALS, bucket: "b", endpoint });
      const cases: [string, () => Response, boolean, string][] = [
        ["slow", () => xmlError(503, "SlowDown"), true, "SlowDown"],
        ["internal", () => xmlError(500, "InternalError"), true, "InternalError"],
        ["throttled", () => xmlError(429, "TooManyRequests"), true, "TooManyRequests"],
        ["timeout", () => xmlError(400, "RequestTimeout"), true, "RequestTimeout"],
        ["denied", () => xmlError(403, "AccessDenied"), false, "AccessDenied"],
        ["nobucket", () => xmlError(404, "NoSuchBucket"), false, "NoSuchBucket"],
        ["bare502", () => new Response("bad gateway", { status: 502 }), true, "http_502"],
      ];
      for (const [name, answer, retryable, code] of cases) {
        answers[`/b/${name}`] = answer;
        await assert.rejects(store.put(name, new Uint8Array([1])), isStorageError(retryable, code), name);
      }
      answers["/b/missing"] = () => xmlError(404, "NoSuchKey");
      assert.equal(await store.get("missing"), undefined);
      answers["/b/gone"] = () => xmlError(404, "NoSuchBucket");
      await assert.rejects(store.get("gone"), isStorageError(false, "NoSuchBucket"));
      answers["/b"] = () => new Response(null, { status: 403 });
      await assert.rejects(store.check(), isStorageError(false, "AccessDenied"));
    },
  );
});

Deno.test("S3FetchStore reads at most 64 KiB of an endless error body", async () => {
  await withServer(
    () => {
      const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
      const body = new ReadableStream<Uint8Array>({ pull: (c) => c.enqueue(chunk) });
      return new Response(body, { status: 500 });
    },
    async (endpoint) => {
      const store = new S3FetchStore({ ...CREDENTIALS, bucket: "b", endpoint, timeoutMs: 5000 });
      await assert.rejects(store.put("k", new Uint8Array([1])), isStorageError(true, "http_500"));
    },
  );
});

Deno.test("S3FetchStore turns an unanswered request into a retryable timeout", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  try {
    const store = new S3FetchStore({
      ...CREDENTIALS,
      bucket: "b",
      endpoint: `http://127.0.0.1:${listener.addr.port}`,
      timeoutMs: 200,
    });
    const started = Date.now();
    await assert.rejects(store.check(), isStorageError(true));
    assert.ok(Date.now() - started < 5000);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of accepted) conn.close();
  }
});

Deno.test("S3FetchStore against a closed port fails retryably", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const store = new S3FetchStore({ ...CREDENTIALS, bucket: "b", endpoint: `http://127.0.0.1:${port}` });
  await assert.rejects(store.check(), isStorageError(true));
  await assert.rejects(store.put("k", new Uint8Array([1])), isStorageError(true));
});
