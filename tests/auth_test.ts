/**
 * Authentication across the receiver: the settings (`OTLP2PARQUET_AUTH`, `_AUTH_TOKEN`, `_AUTH_TOKENS`),
 * the handler's check on every path but `/health` and `/ready`, and the server over real HTTP with right,
 * wrong, missing and rotated tokens, Bearer and Basic, plus its start-up warning. Lambda, Workers and Deno
 * Deploy are covered in their own end-to-end files (lambda_test.ts, workers_auth_test.ts, deploy_test.ts).
 */
import assert from "node:assert/strict";
import { ConfigError, describeConfig, resolveConfig } from "../src/config/mod.ts";
import { CHALLENGE } from "../src/http/auth.ts";
import { createHandler } from "../src/http/handler.ts";
import type { Sink } from "../src/ingest/sink.ts";
import { resolvePlatformConfig } from "../src/platforms/direct.ts";
import { startTestServer } from "./support/server.ts";

const DATA = new URL("../../shared/testdata/otlp2parquet-rust/", import.meta.url);
const read = (name: string): Uint8Array<ArrayBuffer> =>
  new Uint8Array(Deno.readFileSync(new URL(name, DATA)));
const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

const TOKEN = "tok-3f9c2a1b7d4e8c1e5a6b";
const NEXT = "tok-0b1c2d3e4f5a6b7c8d9e";

async function problems(env: Record<string, string>): Promise<string[]> {
  try {
    await resolveConfig({ env });
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.problems;
  }
  return [];
}

Deno.test("resolveConfig() reads one token or a comma-separated list, and derives the mode from them", async () => {
  const off = await resolveConfig({});
  assert.deepEqual(off.config.auth, { mode: "none", token: undefined, tokens: [] });
  const one = await resolveConfig({ env: { OTLP2PARQUET_AUTH_TOKEN: TOKEN } });
  assert.deepEqual(one.config.auth, { mode: "token", token: TOKEN, tokens: [TOKEN] });
  const rotating = await resolveConfig({
    env: { OTLP2PARQUET_AUTH_TOKEN: TOKEN, OTLP2PARQUET_AUTH_TOKENS: ` ${NEXT} ,, ${TOKEN},` },
  });
  assert.deepEqual(rotating.config.auth.tokens, [TOKEN, NEXT]);
  const toml = await resolveConfig({
    flags: { config: "x.toml" },
    readTextFile: () => Promise.resolve(`[auth]\ntokens = "${TOKEN},${NEXT}"\n`),
  });
  assert.deepEqual(toml.config.auth, { mode: "token", token: undefined, tokens: [TOKEN, NEXT] });
  // No warning "unknown environment variable" any more.
  assert.deepEqual(one.warnings, []);
});

Deno.test("resolveConfig() refuses contradicting auth settings and bad tokens without quoting them", async () => {
  assert.match(
    (await problems({ OTLP2PARQUET_AUTH: "token" })).join("\n"),
    /auth.mode is "token" \(from OTLP2PARQUET_AUTH\) but no token is set/,
  );
  assert.match(
    (await problems({ OTLP2PARQUET_AUTH: "none", OTLP2PARQUET_AUTH_TOKEN: TOKEN })).join("\n"),
    /auth.mode is "none" .* but a token is set/,
  );
  const secret = "sk_live_S3CR3T with space";
  const bad = (await problems({ OTLP2PARQUET_AUTH_TOKENS: `${TOKEN},${secret}` })).join("\n");
  assert.match(bad, /auth token 2 .* has a character other than visible ASCII/);
  assert.ok(!bad.includes("S3CR3T") && !bad.includes(TOKEN), bad);
  // A value of the wrong type is reported without the value.
  const fromFile = await resolveConfig({
    flags: { config: "x.toml" },
    readTextFile: () => Promise.resolve(`[auth]\ntoken = 123456789\n`),
  }).then(() => "", (e: ConfigError) => e.message);
  assert.match(fromFile, /invalid auth.token \(value hidden\)/);
  assert.ok(!fromFile.includes("123456789"), fromFile);
});

Deno.test("resolvePlatformConfig() requires a token unless OTLP2PARQUET_AUTH=none says otherwise", async () => {
  const defaults = { maxPayloadBytes: 1 << 20, maxInflightBytes: 1 << 21 };
  const bare = await resolvePlatformConfig({}, { defaults, instanceId: "p" });
  assert.deepEqual(bare.config.auth, { mode: "token", token: undefined, tokens: [] });
  const open = await resolvePlatformConfig({ OTLP2PARQUET_AUTH: "none" }, { defaults, instanceId: "p" });
  assert.equal(open.config.auth.mode, "none");
  const set = await resolvePlatformConfig({ OTLP2PARQUET_AUTH_TOKEN: TOKEN }, { defaults, instanceId: "p" });
  assert.deepEqual(set.config.auth.tokens, [TOKEN]);
});

Deno.test("describeConfig() counts the tokens and never shows them", async () => {
  const { config } = await resolveConfig({ env: { OTLP2PARQUET_AUTH_TOKENS: `${TOKEN},${NEXT}` } });
  const text = describeConfig(config);
  assert.match(text, /auth +token \(Bearer, or Basic password\): 2 accepted/);
  assert.ok(!text.includes(TOKEN) && !text.includes(NEXT), text);
  assert.match(describeConfig((await resolveConfig({})).config), /auth +none/);
});

/** A sink that counts what reaches it. */
function countingSink() {
  const seen = { admitted: 0, accepted: 0 };
  const sink: Sink = {
    admit: (bytes) => {
      seen.admitted += bytes;
      return () => {};
    },
    accept: () => {
      seen.accepted++;
      return Promise.resolve();
    },
    ready: () => true,
  };
  return { sink, seen };
}

Deno.test("createHandler() with auth checks every path but /health and /ready, before any other answer", async () => {
  const { sink, seen } = countingSink();
  const handler = createHandler({ sink, auth: { tokens: [TOKEN] } });
  const call = (path: string, init: RequestInit = {}) => handler(new Request(`http://x${path}`, init));
  for (const path of ["/health", "/ready"]) {
    const open = await call(path);
    assert.equal(open.status, 200, path);
    await open.body?.cancel();
  }
  // Unknown paths, wrong methods and types are not told apart before the client has authenticated.
  for (
    const [path, init] of [
      ["/v1/logs", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }],
      ["/v1/logs", { method: "GET" }],
      ["/nowhere", { method: "POST" }],
      ["/v1/traces", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }],
    ] as [string, RequestInit][]
  ) {
    const refused = await call(path, init);
    assert.equal(refused.status, 401, `${path} ${init.method}`);
    assert.equal(refused.headers.get("www-authenticate"), CHALLENGE);
    await refused.body?.cancel();
  }
  // Nothing of a refused request reached the in-flight budget or the sink.
  assert.deepEqual(seen, { admitted: 0, accepted: 0 });
  const ok = await call("/v1/logs", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: read("log.json"),
  });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), {});
  assert.equal(seen.accepted, 1);
});

Deno.test("server over HTTP: right, rotated, wrong and missing tokens, Bearer and Basic", async () => {
  const server = await startTestServer({
    env: { OTLP2PARQUET_AUTH_TOKEN: TOKEN, OTLP2PARQUET_AUTH_TOKENS: NEXT },
  });
  try {
    const post = (headers: Record<string, string>, body = read("logs.pb")) =>
      fetch(`${server.url}/v1/logs`, {
        method: "POST",
        headers: { "content-type": "application/x-protobuf", ...headers },
        body,
      });
    for (
      const authorization of [
        `Bearer ${TOKEN}`,
        `Bearer ${NEXT}`,
        basic("otel-collector", TOKEN),
        basic("", NEXT),
      ]
    ) {
      const response = await post({ authorization });
      assert.equal(response.status, 200, authorization);
      await response.body?.cancel();
    }
    for (
      const [authorization, message] of [
        [undefined, /missing credentials/],
        [`Bearer ${TOKEN}x`, /invalid credentials/],
        [`Bearer ${TOKEN.slice(0, -1)}`, /invalid credentials/],
        [basic(TOKEN, "x"), /invalid credentials/],
        [`Token ${TOKEN}`, /missing credentials/],
      ] as [string | undefined, RegExp][]
    ) {
      const response = await post(authorization ? { authorization } : {});
      assert.equal(response.status, 401, authorization);
      assert.equal(response.headers.get("www-authenticate"), CHALLENGE);
      assert.equal(response.headers.get("content-type"), "application/x-protobuf");
      assert.match(new TextDecoder().decode(await response.arrayBuffer()), message);
    }
    const health = await fetch(`${server.url}/health`);
    assert.equal(await health.text(), "ok\n");
    const ready = await fetch(`${server.url}/ready`);
    assert.equal(ready.status, 200);
    await ready.body?.cancel();
    // Four accepted requests of the same 81 records (one stored, three answered as its resends: whatever
    // token they carry, the same bytes are the same request), nothing of the refused ones.
    const stats = server.server.ingest.stats();
    assert.deepEqual([stats.requests, stats.records, stats.deduplicated], [1, 81, 3]);
    assert.ok(!server.logs.join("\n").includes(TOKEN), "a token in the log");
    assert.ok(!server.logs.some((l) => l.includes("without authentication")));
  } finally {
    await server.dispose();
  }
});

Deno.test("server warns at start-up when it listens beyond loopback without a token, not otherwise", async () => {
  const open = await startTestServer({ env: { OTLP2PARQUET_LISTEN_ADDR: "0.0.0.0:0" } });
  const local = await startTestServer();
  const guarded = await startTestServer({
    env: { OTLP2PARQUET_LISTEN_ADDR: "0.0.0.0:0", OTLP2PARQUET_AUTH_TOKEN: TOKEN },
  });
  try {
    const warned = (lines: string[]) =>
      lines.filter((l) => / WARN .*without authentication: anyone who reaches it can write/.test(l)).length;
    assert.equal(warned(open.logs), 1, open.logs.join("\n"));
    assert.equal(warned(local.logs), 0);
    assert.equal(warned(guarded.logs), 0);
  } finally {
    await Promise.all([open.dispose(), local.dispose(), guarded.dispose()]);
  }
});
