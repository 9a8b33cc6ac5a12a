/**
 * Authentication and misconfiguration of the Cloudflare Workers bundle, in real workerd through Miniflare:
 * right, rotated, wrong and missing tokens (Bearer and Basic); no token at all is a 503 unless
 * `OTLP2PARQUET_AUTH=none`; an invalid setting is a generic 503 whose details reach only the log.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import type { Readable } from "node:stream";
import { Miniflare } from "miniflare";
import type { R2BucketLike } from "../src/storage/r2_store.ts";
import { buildWorkersBundle, workersOptions } from "./support/workers.ts";

const DATA = new URL("../../shared/testdata/otlp2parquet-rust/", import.meta.url);
const read = (name: string): Uint8Array<ArrayBuffer> =>
  new Uint8Array(Deno.readFileSync(new URL(name, DATA)));
const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

const TOKEN = "worker-token-8a7c6e5f4d3b";
const NEXT = "worker-token-next-1f2e3d4c";

/** A Miniflare whose workerd output (console.* of the worker) is collected. */
function start(outdir: string, bindings: Record<string, string>): { mf: Miniflare; output: () => string } {
  let text = "";
  const collect = (stream: Readable) => stream.on("data", (chunk: Uint8Array) => text += String(chunk));
  const mf = new Miniflare({
    ...workersOptions(outdir, bindings),
    handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
      collect(stdout);
      collect(stderr);
    },
  });
  return { mf, output: () => text };
}

function post(mf: Miniflare, path: string, file: string, headers: Record<string, string>) {
  return mf.dispatchFetch(`http://otlp.example.com${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: read(file),
  });
}

async function objects(mf: Miniflare): Promise<string[]> {
  const bucket = (await mf.getR2Bucket("BUCKET")) as unknown as R2BucketLike;
  return (await bucket.list({ limit: 1000 })).objects.map((o) => o.key);
}

Deno.test({
  name: "Workers bundle in workerd checks tokens, requires one, and keeps configuration out of responses",
  // Miniflare keeps sockets and timers of its own beyond dispose().
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const outdir = await buildWorkersBundle();
    try {
      await t.step("right, rotated, wrong and missing tokens, Bearer and Basic", async () => {
        const { mf } = start(outdir, { OTLP2PARQUET_AUTH_TOKENS: `${TOKEN},${NEXT}` });
        try {
          for (
            const authorization of [
              `Bearer ${TOKEN}`,
              `Bearer ${NEXT}`,
              basic("otel", TOKEN),
              basic("", NEXT),
            ]
          ) {
            const ok = await post(mf, "/v1/logs", "log.json", { authorization });
            assert.equal(ok.status, 200, `${authorization}: ${await ok.clone().text()}`);
            assert.deepEqual(await ok.json(), {});
          }
          const written = await objects(mf);
          assert.ok(written.length > 0 && written.every((k) => k.startsWith("logs/")), written.join("\n"));
          for (
            const [headers, message] of [
              [{}, /missing credentials/],
              [{ authorization: `Bearer ${TOKEN.slice(1)}` }, /invalid credentials/],
              [{ authorization: basic(TOKEN, "") }, /missing credentials/],
              [{ authorization: basic("otel", `${NEXT} `) }, /invalid credentials/],
            ] as [Record<string, string>, RegExp][]
          ) {
            const refused = await post(mf, "/v1/metrics", "metrics_sum.json", headers);
            assert.equal(refused.status, 401, JSON.stringify(headers));
            assert.match(
              refused.headers.get("www-authenticate") ?? "",
              /^Bearer realm="otlp2parquet", Basic/,
            );
            const status = (await refused.json()) as { code: number; message: string };
            assert.equal(status.code, 16);
            assert.match(status.message, message);
          }
          // Nothing refused reached R2.
          assert.deepEqual(await objects(mf), written);
          const health = await mf.dispatchFetch("http://otlp.example.com/health");
          assert.equal(await health.text(), "ok\n");
        } finally {
          await mf.dispose();
        }
      });

      await t.step("without a token: 503 (misconfigured) unless OTLP2PARQUET_AUTH=none", async () => {
        const { mf, output } = start(outdir, {});
        try {
          const refused = await post(mf, "/v1/logs", "log.json", { authorization: "Bearer guess" });
          assert.equal(refused.status, 503);
          assert.equal(refused.headers.get("retry-after"), "30");
          assert.deepEqual(await refused.json(), {
            code: 14,
            message: "otlp2parquet is misconfigured: see its log",
          });
          const health = await mf.dispatchFetch("http://otlp.example.com/health");
          assert.equal(health.status, 200);
          await health.body?.cancel();
          assert.deepEqual(await objects(mf), []);
          assert.match(output(), /no authentication token is set/);
        } finally {
          await mf.dispose();
        }
        const open = start(outdir, { OTLP2PARQUET_AUTH: "none" });
        try {
          const ok = await post(open.mf, "/v1/logs", "log.json", {});
          assert.equal(ok.status, 200);
          await ok.body?.cancel();
        } finally {
          await open.mf.dispose();
        }
      });

      await t.step(
        "an invalid setting: a generic 503, the details (and values) in the log only",
        async () => {
          const secret = "sk_live_51HxQzS3CR3T";
          const { mf, output } = start(outdir, {
            OTLP2PARQUET_AUTH_TOKEN: TOKEN,
            OTLP2PARQUET_MAX_PAYLOAD_BYTES: secret,
            OTLP2PARQUET_S3_ENDPOINT: `ftp://admin:${secret}@example.com`,
          });
          try {
            for (const contentType of ["application/json", "application/x-protobuf"]) {
              const response = await post(mf, "/v1/logs", "log.json", {
                authorization: `Bearer ${TOKEN}`,
                "content-type": contentType,
              });
              assert.equal(response.status, 503);
              assert.equal(response.headers.get("retry-after"), "30");
              assert.equal(response.headers.get("content-type"), contentType);
              const body = new TextDecoder().decode(await response.arrayBuffer());
              assert.match(body, /otlp2parquet is misconfigured: see its log/);
              for (const leak of [secret, "admin", "OTLP2PARQUET_", TOKEN]) {
                assert.ok(!body.includes(leak), `${leak} in ${body}`);
              }
            }
            assert.deepEqual(await objects(mf), []);
            // Miniflare forwards workerd's output asynchronously.
            for (let i = 0; i < 100 && !output().includes("OTLP2PARQUET_S3_ENDPOINT"); i++) {
              await new Promise((r) => setTimeout(r, 20));
            }
            assert.match(output(), /invalid OTLP2PARQUET_MAX_PAYLOAD_BYTES/);
            assert.match(output(), /invalid OTLP2PARQUET_S3_ENDPOINT/);
            assert.ok(!output().includes(TOKEN), "the token in the log");
          } finally {
            await mf.dispose();
          }
        },
      );
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  },
});
