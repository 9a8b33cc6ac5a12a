/**
 * GCS access tokens: a service-account key's JWT is verified with the key's public half by a token endpoint on
 * loopback (as Google's does), tokens are cached and renewed, and refusals are classified for the store.
 */
import assert from "node:assert/strict";
import { GCS_SCOPE, gcsTokenFromCredentials } from "./gcs_auth.ts";
import { GcsFetchStore } from "./gcs_fetch_store.ts";
import { StorageError } from "./object_store.ts";

function b64urlDecode(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - text.length % 4) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function serviceAccount() {
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const body = btoa(String.fromCharCode(...der)).replace(/.{64}/g, "$&\n");
  const pem = `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
  return { publicKey: pair.publicKey, pem };
}

/** A token endpoint that checks each assertion's signature and claims, answering `status` when told to. */
function tokenEndpoint(publicKey: CryptoKey) {
  const seen: Record<string, unknown>[] = [];
  let status = 200;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const form = new URLSearchParams(await request.text());
    assert.equal(form.get("grant_type"), "urn:ietf:params:oauth:grant-type:jwt-bearer");
    const [head, claims, signature] = form.get("assertion")!.split(".");
    const valid = await crypto.subtle.verify(
      "RSASSA-PKCS1-v1_5",
      publicKey,
      b64urlDecode(signature),
      new TextEncoder().encode(`${head}.${claims}`),
    );
    if (!valid) return new Response('{"error":"invalid_grant"}', { status: 400 });
    seen.push(JSON.parse(new TextDecoder().decode(b64urlDecode(claims))));
    if (status !== 200) return new Response('{"error":"nope"}', { status });
    return Response.json({ access_token: `token-${seen.length}`, expires_in: 3600, token_type: "Bearer" });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/token`,
    seen,
    answer(next: number) {
      status = next;
    },
    close: () => server.shutdown(),
  };
}

Deno.test("a service-account key gives signed, cached and renewed tokens", async () => {
  const { publicKey, pem } = await serviceAccount();
  const endpoint = tokenEndpoint(publicKey);
  try {
    let clock = 1_800_000_000_000;
    const credentials = JSON.stringify({
      type: "service_account",
      client_email: "writer@project.iam.gserviceaccount.com",
      private_key: pem,
      token_uri: endpoint.url,
    });
    const token = gcsTokenFromCredentials(credentials, { now: () => clock });
    // Concurrent first callers share one exchange.
    assert.deepEqual(await Promise.all([token(), token(), token()]), Array(3).fill("Bearer token-1"));
    assert.equal(endpoint.seen.length, 1);
    assert.deepEqual(endpoint.seen[0], {
      iss: "writer@project.iam.gserviceaccount.com",
      scope: GCS_SCOPE,
      aud: endpoint.url,
      iat: 1_800_000_000,
      exp: 1_800_003_600,
    });
    // Cached until five minutes before expiry, then renewed.
    clock += 54 * 60_000;
    assert.equal(await token(), "Bearer token-1");
    clock += 2 * 60_000;
    assert.equal(await token(), "Bearer token-2");
    assert.equal(endpoint.seen.length, 2);
  } finally {
    await endpoint.close();
  }
});

Deno.test("GcsFetchStore sends the token; a refused exchange is permanent, an unavailable one retryable", async () => {
  const { publicKey, pem } = await serviceAccount();
  const endpoint = tokenEndpoint(publicKey);
  const authorizations: (string | null)[] = [];
  const gcs = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    authorizations.push(request.headers.get("authorization"));
    return Response.json({ items: [] });
  });
  try {
    let clock = 0;
    const token = gcsTokenFromCredentials(
      JSON.stringify({
        type: "service_account",
        client_email: "w@p",
        private_key: pem,
        token_uri: endpoint.url,
      }),
      { now: () => clock },
    );
    const store = new GcsFetchStore({ bucket: "b", endpoint: `http://127.0.0.1:${gcs.addr.port}`, token });
    await store.check();
    assert.deepEqual(await store.list(""), []);
    assert.deepEqual(authorizations, ["Bearer token-1", "Bearer token-1"]);

    for (const [status, retryable] of [[401, false], [400, false], [503, true], [429, true]] as const) {
      clock += 3600_000;
      endpoint.answer(status);
      await assert.rejects(store.check(), (error: unknown) => {
        assert.ok(error instanceof StorageError, String(error));
        assert.equal(error.retryable, retryable, `token endpoint ${status}: ${error.message}`);
        assert.match(error.message, new RegExp(`no access token: .*HTTP ${status}`));
        return true;
      });
    }
    assert.equal(authorizations.length, 2, "no request went out without a token");
  } finally {
    await endpoint.close();
    await gcs.shutdown();
  }
});

Deno.test("credentials files the source cannot use are refused with what is wrong", () => {
  assert.throws(() => gcsTokenFromCredentials("{"), /not JSON/);
  assert.throws(() => gcsTokenFromCredentials('{"type":"external_account"}'), /not supported/);
  assert.throws(
    () => gcsTokenFromCredentials('{"type":"service_account","private_key":"x"}'),
    /client_email/,
  );
  assert.throws(
    () => gcsTokenFromCredentials('{"type":"authorized_user","client_id":"a","client_secret":"b"}'),
    /refresh_token/,
  );
});
