import assert from "node:assert/strict";
import { CHALLENGE, createAuthCheck, digestMatches, presentedCredential, sha256 } from "./auth.ts";

const text = (bytes: Uint8Array | undefined) => bytes && new TextDecoder().decode(bytes);
const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

/** An array whose element reads are counted, to see what a compare visits. */
function counted(bytes: Uint8Array, reads: { n: number }): ArrayLike<number> {
  return new Proxy(bytes, {
    get(target, key) {
      if (typeof key === "string" && /^\d+$/.test(key)) reads.n++;
      return Reflect.get(target, key);
    },
  }) as ArrayLike<number>;
}

Deno.test("presentedCredential() reads the Bearer token and the Basic password, nothing else", () => {
  assert.equal(text(presentedCredential("Bearer abc.DEF-123")), "abc.DEF-123");
  assert.equal(text(presentedCredential("bearer   abc  ")), "abc");
  assert.equal(text(presentedCredential(basic("collector", "s3cr:et"))), "s3cr:et");
  // The Collector's basicauth extension may send an empty user name.
  assert.equal(text(presentedCredential(basic("", "tok"))), "tok");
  for (
    const header of [
      null,
      "",
      "Bearer",
      "Bearer ",
      "Token abc",
      "Basic !!!",
      `Basic ${btoa("no-colon")}`,
      basic(
        "u",
        "",
      ),
    ]
  ) {
    assert.equal(presentedCredential(header), undefined, String(header));
  }
});

Deno.test("presentedCredential() reads a header of long blank runs in one pass", () => {
  assert.equal(text(presentedCredential("\tBearer\t abc \t")), "abc");
  // 256 KiB of blanks inside, before and after the credential: one pass over them is instant, while the
  // backtracking pattern this replaced took time quadratic in their length (1.2 s at 32 KB; minutes here).
  const blanks = " \t".repeat(128 * 1024);
  assert.equal(text(presentedCredential(`Bearer x${blanks}y${blanks}`)), `x${blanks}y`);
  assert.equal(presentedCredential(`${blanks}Bearer${blanks}`), undefined);
  assert.equal(text(presentedCredential(`${blanks}Bearer${blanks}tok`)), "tok");
});

Deno.test("digestMatches() visits every byte of every digest wherever the match is, and only matches equals", async () => {
  const digests = await Promise.all(
    ["a", "a much longer token ".repeat(20), "tok-3"].map((t) => sha256(new TextEncoder().encode(t))),
  );
  // Tokens of very different lengths have digests of one length: the compare cannot leak the length.
  assert.deepEqual(digests.map((d) => d.length), [32, 32, 32]);
  const visits = (presented: Uint8Array) => {
    const reads = { n: 0 };
    const result = digestMatches(counted(presented, reads), digests.map((d) => counted(d, reads)));
    return { result, reads: reads.n };
  };
  const first = visits(digests[0]);
  const last = visits(digests[2]);
  const wrongFirstByte = digests[1].slice();
  wrongFirstByte[0] ^= 1;
  const none = visits(wrongFirstByte);
  assert.deepEqual([first.result, last.result, none.result], [true, true, false]);
  // 3 digests x 32 bytes, both sides read: no early exit at the match, nor at the first differing byte.
  assert.deepEqual([first.reads, last.reads, none.reads], [192, 192, 192]);
  const lastByte = digests[2].slice();
  lastByte[31] ^= 0x80;
  assert.equal(digestMatches(lastByte, digests), false);
  // Another length never matches, even as a prefix.
  assert.equal(digestMatches(digests[0].subarray(0, 16), digests), false);
  assert.equal(digestMatches(digests[0], []), false);
});

function request(path: string, headers: Record<string, string>, body?: ReadableStream<Uint8Array>) {
  return new Request(`http://x${path}`, {
    method: "POST",
    headers,
    body,
    ...(body ? { duplex: "half" } : {}),
  } as RequestInit);
}

Deno.test("createAuthCheck() passes right Bearer and Basic tokens, any rotated one, and refuses others with 401", async () => {
  const check = createAuthCheck({ tokens: ["new-token-0123456789", "old-token-9876543210"] });
  for (
    const authorization of [
      "Bearer new-token-0123456789",
      "Bearer old-token-9876543210",
      basic("otel", "new-token-0123456789"),
      basic("", "old-token-9876543210"),
    ]
  ) {
    assert.equal(await check(request("/v1/logs", { authorization }), "json"), undefined, authorization);
  }
  const wrong = await check(request("/v1/logs", { authorization: "Bearer new-token-012345678" }), "json");
  assert.equal(wrong?.status, 401);
  assert.equal(wrong?.headers.get("www-authenticate"), CHALLENGE);
  assert.deepEqual(await wrong?.json(), { code: 16, message: "invalid credentials" });
  const missing = await check(request("/v1/logs", {}), "protobuf");
  assert.equal(missing?.status, 401);
  assert.equal(missing?.headers.get("content-type"), "application/x-protobuf");
  const bytes = new Uint8Array(await missing!.arrayBuffer());
  // google.rpc.Status { code = 16 (UNAUTHENTICATED), message = "missing credentials: …" }
  assert.deepEqual([...bytes.subarray(0, 2)], [0x08, 16]);
  assert.match(new TextDecoder().decode(bytes), /missing credentials: send Authorization/);
  const basicWrong = await check(request("/v1/logs", { authorization: basic("u", "old-token") }), "json");
  assert.equal(basicWrong?.status, 401);
});

Deno.test("createAuthCheck() cancels the body of a refused request without reading it", async () => {
  let pulled = 0;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(new Uint8Array(1 << 20));
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  const check = createAuthCheck({ tokens: ["t0ken-abcdefghijklmnop"] });
  const refused = await check(request("/v1/logs", { authorization: "Bearer nope" }, body), "json");
  assert.equal(refused?.status, 401);
  assert.equal(cancelled, true);
  assert.equal(pulled, 0);
});

Deno.test("createAuthCheck() without tokens refuses everything with a generic 503", async () => {
  const check = createAuthCheck({ tokens: [] });
  const refused = await check(request("/v1/logs", { authorization: "Bearer anything" }), "json");
  assert.equal(refused?.status, 503);
  assert.equal(refused?.headers.get("retry-after"), "30");
  assert.deepEqual(await refused?.json(), {
    code: 14,
    message: "otlp2parquet is misconfigured: see its log",
  });
});
