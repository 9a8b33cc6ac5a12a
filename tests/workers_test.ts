/**
 * The Cloudflare Workers bundle end to end: `build/compile.ts --workers` builds it, Miniflare loads it into
 * real workerd with an R2 bucket, OTLP requests go in through `dispatchFetch`, and the Parquet objects in
 * R2 are read back with DuckDB.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Miniflare } from "miniflare";
import { openDuckDb } from "./support/duckdb.ts";
import { buildWorkersBundle, GZIP_LIMIT, r2, workersOptions } from "./support/workers.ts";

const DATA = new URL("../../shared/testdata/otlp2parquet-rust/", import.meta.url);
const read = (name: string): Uint8Array<ArrayBuffer> =>
  new Uint8Array(Deno.readFileSync(new URL(name, DATA)));

function workerOptions(outdir: string, bindings: Record<string, string>) {
  // Workers require a token by default; tests/workers_auth_test.ts covers authentication.
  return workersOptions(outdir, { OTLP2PARQUET_AUTH: "none", ...bindings });
}

/** Three one-record logs requests as JSON Lines, each from its own service (so none shares an object). */
function jsonLines(): Uint8Array<ArrayBuffer> {
  const text = new TextDecoder().decode(read("log.json"));
  const lines = [1, 2, 3].map((i) =>
    JSON.stringify(JSON.parse(text.replace('"frontend-proxy"', `"jsonl-${i}"`)))
  );
  return new TextEncoder().encode(lines.join("\n") + "\n");
}

function post(
  mf: Miniflare,
  path: string,
  body: Uint8Array<ArrayBuffer>,
  headers: Record<string, string>,
) {
  return mf.dispatchFetch(`http://otlp.example.com${path}`, { method: "POST", headers, body });
}

Deno.test({
  name: "Workers bundle in workerd stores OTLP logs, traces and metrics in R2 as readable Parquet",
  // Miniflare keeps sockets and timers of its own beyond dispose().
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const outdir = await buildWorkersBundle();
    const scratch = mkdtempSync(join(tmpdir(), "otlp2parquet-r2-"));
    const mf = new Miniflare(
      workerOptions(outdir, { OTLP2PARQUET_S3_PREFIX: "otel", OTLP2PARQUET_LOG_LEVEL: "warn" }),
    );
    try {
      // The bundle stays within the free plan's 3 MiB (gzip) limit.
      const js = readFileSync(join(outdir, "worker.js"));
      const wasm = readFileSync(join(outdir, "parquet_wasm_bg.wasm"));
      const gzip = gzipSync(js, { level: 9 }).length + gzipSync(wasm, { level: 9 }).length;
      assert.ok(gzip < GZIP_LIMIT, `bundle is ${gzip} bytes gzip`);
      assert.equal(JSON.parse(readFileSync(join(outdir, "size.json"), "utf8")).gzipBytes, gzip);
      // No wasm compiled from bytes at run time (workerd forbids it): the module is imported.
      assert.match(js.toString(), /from"\.\/parquet_wasm_bg\.wasm"/);

      const protobuf = { "content-type": "application/x-protobuf" };
      const json = { "content-type": "application/json" };
      const gz = { "content-encoding": "gzip" };
      const cases: [string, Uint8Array<ArrayBuffer>, Record<string, string>][] = [
        ["/v1/logs", read("logs.pb"), protobuf],
        ["/v1/logs", read("log.json"), json],
        ["/v1/logs", gzipSync(jsonLines()), { "content-type": "application/x-ndjson", ...gz }],
        ["/v1/traces", gzipSync(read("traces.pb")), { ...protobuf, ...gz }],
        ["/v1/traces", read("trace.json"), json],
        ["/v1/metrics", read("metrics_mixed.pb"), protobuf],
        ["/v1/metrics", gzipSync(read("metrics_sum.json")), { ...json, ...gz }],
        ["/v1/metrics", read("metrics_exponential_histogram.pb"), protobuf],
      ];
      for (const [path, body, headers] of cases) {
        const response = await post(mf, path, body, headers);
        const bytes = new Uint8Array(await response.arrayBuffer());
        assert.equal(
          response.status,
          200,
          `${path} ${JSON.stringify(headers)}: ${new TextDecoder().decode(bytes)}`,
        );
        if (headers["content-type"] === "application/x-protobuf") {
          assert.equal(response.headers.get("content-type"), "application/x-protobuf");
          assert.equal(bytes.length, 0);
        } else {
          assert.deepEqual(JSON.parse(new TextDecoder().decode(bytes)), {});
        }
      }

      const badJson = await post(mf, "/v1/logs", new TextEncoder().encode('{"resourceLogs": ['), json);
      assert.equal(badJson.status, 400);
      assert.match(((await badJson.json()) as { message: string }).message, /cannot decode logs request/);
      const badProto = await post(mf, "/v1/traces", new Uint8Array([0x0a, 0x05, 0x01]), protobuf);
      assert.equal(badProto.status, 400);
      assert.equal(badProto.headers.get("content-type"), "application/x-protobuf");
      await badProto.body?.cancel();
      const text = await post(mf, "/v1/logs", new TextEncoder().encode("hello"), {
        "content-type": "text/plain",
      });
      assert.equal(text.status, 415);
      await text.body?.cancel();
      const health = await mf.dispatchFetch("http://otlp.example.com/health");
      assert.equal(await health.text(), "ok\n");

      // Every object is in R2 under the prefix, and DuckDB reads the rows back.
      const bucket = await r2(mf);
      const listed = await bucket.list({ limit: 1000 });
      assert.equal(listed.truncated, false);
      const keys = listed.objects.map((o) => o.key);
      assert.ok(keys.length >= 10, keys.join("\n"));
      for (const key of keys) {
        assert.match(
          key,
          /^otel\/(logs|traces|metrics\/\w+)\/.+\/year=\d{4}\/month=\d\d\/day=\d\d\/hour=\d\d\/.+-w[0-9a-f]{12}-[0-9a-f]{16}\.parquet$/,
        );
        const object = await bucket.get(key);
        assert.ok(object);
        const local = join(scratch, key);
        Deno.mkdirSync(join(local, ".."), { recursive: true });
        writeFileSync(local, new Uint8Array(await object.arrayBuffer()));
      }
      const db = await openDuckDb();
      try {
        const count = async (table: string) =>
          (await db.rows(
            `SELECT count(*)::INTEGER AS n FROM read_parquet('${scratch}/otel/${table}/**/*.parquet')`,
          ))[0]
            .n;
        assert.equal(await count("logs"), 81 + 1 + 3);
        assert.equal(await count("traces"), 19 + 2);
        assert.equal(await count("metrics/gauge"), 1);
        assert.equal(await count("metrics/sum"), 1 + 4);
        assert.equal(await count("metrics/histogram"), 1);
        assert.equal(await count("metrics/exponential_histogram"), 2);
        const [service] = await db.rows(
          `SELECT count(DISTINCT ServiceName)::INTEGER AS n FROM read_parquet('${scratch}/otel/logs/**/*.parquet')`,
        );
        assert.ok((service.n as number) >= 6);
      } finally {
        db.close();
      }
    } finally {
      await mf.dispose();
      rmSync(outdir, { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
    }
  },
});

Deno.test({
  name: "Workers bundle answers 503 (never 500) when its configuration is invalid",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const outdir = await buildWorkersBundle();
    const mf = new Miniflare(workerOptions(outdir, { OTLP2PARQUET_PARQUET_COMPRESSION: "lzo" }));
    try {
      const response = await post(mf, "/v1/logs", read("log.json"), { "content-type": "application/json" });
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), "30");
      // Generic: the details may quote secrets, so they go to the log only (tests/workers_auth_test.ts).
      assert.match(((await response.json()) as { message: string }).message, /misconfigured: see its log/);
      const listed = await (await r2(mf)).list();
      assert.equal(listed.objects.length, 0);
    } finally {
      await mf.dispose();
      rmSync(outdir, { recursive: true, force: true });
    }
  },
});
