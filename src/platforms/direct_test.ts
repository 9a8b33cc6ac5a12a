import assert from "node:assert/strict";
import { ConfigError } from "../config/mod.ts";
import { MemoryStore } from "../storage/memory_store.ts";
import { createDirectHandler, randomInstanceId, resolvePlatformConfig } from "./direct.ts";
import { silentLogger } from "../ingest/ingest.ts";
import { loadParquetWasm } from "./wasm.ts";

const DEFAULTS = { maxPayloadBytes: 8 * 1024 * 1024, maxInflightBytes: 16 * 1024 * 1024 };

Deno.test("resolvePlatformConfig() puts the platform's limits under the environment and skips bindings", async () => {
  const env = {
    BUCKET: { put() {} },
    OTLP2PARQUET_PARQUET_COMPRESSION: "snappy",
    OTLP2PARQUET_S3_PREFIX: "otel",
  };
  const { config, warnings } = await resolvePlatformConfig(env, { defaults: DEFAULTS, instanceId: "w1" });
  assert.deepEqual(warnings, []);
  assert.equal(config.server.maxPayloadBytes, 8 * 1024 * 1024);
  assert.equal(config.server.maxInflightBytes, 16 * 1024 * 1024);
  assert.equal(config.server.instanceId, "w1");
  assert.equal(config.parquet.compression, "snappy");
  assert.equal(config.storage.s3.prefix, "otel");
  // A platform's default backend is checked like any other setting: s3 needs a bucket.
  await assert.rejects(
    resolvePlatformConfig(env, { defaults: { ...DEFAULTS, storageBackend: "s3" }, instanceId: "w1" }),
    (e: unknown) => e instanceof ConfigError && /no bucket is set/.test(e.message),
  );
  const s3 = await resolvePlatformConfig({ ...env, OTLP2PARQUET_S3_BUCKET: "b" }, {
    defaults: { ...DEFAULTS, storageBackend: "s3" },
    instanceId: "w1",
  });
  assert.equal(s3.config.storage.backend, "s3");
});

Deno.test("resolvePlatformConfig() raises the in-flight default to a larger payload limit set alone", async () => {
  const { config } = await resolvePlatformConfig(
    { OTLP2PARQUET_MAX_PAYLOAD_BYTES: "32MiB", OTLP2PARQUET_INSTANCE_ID: "mine" },
    { defaults: DEFAULTS, instanceId: "w1" },
  );
  assert.equal(config.server.maxPayloadBytes, 32 * 1024 * 1024);
  assert.equal(config.server.maxInflightBytes, 32 * 1024 * 1024);
  assert.equal(config.server.instanceId, "mine");
  await assert.rejects(
    resolvePlatformConfig(
      { OTLP2PARQUET_MAX_PAYLOAD_BYTES: "32MiB", OTLP2PARQUET_MAX_INFLIGHT_BYTES: "1MiB" },
      { defaults: DEFAULTS, instanceId: "w1" },
    ),
    /exceeds server.max_inflight_bytes/,
  );
});

Deno.test("resolvePlatformConfig() refuses a config file where the platform reads no files", async () => {
  await assert.rejects(
    resolvePlatformConfig({ OTLP2PARQUET_CONFIG: "/etc/otlp2parquet.toml" }, {
      defaults: DEFAULTS,
      instanceId: "x",
    }),
    (e: unknown) => e instanceof ConfigError && /reads no files/.test(e.message),
  );
  const { config } = await resolvePlatformConfig({ OTLP2PARQUET_CONFIG: "conf.toml" }, {
    defaults: DEFAULTS,
    instanceId: "x",
    readTextFile: () => Promise.resolve("[parquet]\ncompression = 'gzip'\n"),
  });
  assert.equal(config.parquet.compression, "gzip");
});

Deno.test("randomInstanceId() gives 12 hex digits, different each time", () => {
  const a = randomInstanceId(), b = randomInstanceId();
  assert.match(a, /^[0-9a-f]{12}$/);
  assert.notEqual(a, b);
});

Deno.test("createDirectHandler() writes with the configured instance id and limits", async () => {
  await loadParquetWasm();
  const { config } = await resolvePlatformConfig({
    OTLP2PARQUET_MAX_PAYLOAD_BYTES: "1KiB",
    OTLP2PARQUET_AUTH: "none",
  }, {
    defaults: DEFAULTS,
    instanceId: "fn7",
  });
  const store = new MemoryStore();
  const handler = createDirectHandler(store, { config, log: silentLogger });
  const body = JSON.stringify({
    resourceLogs: [{
      scopeLogs: [{ logRecords: [{ timeUnixNano: "1700000000000000000", body: { stringValue: "hi" } }] }],
    }],
  });
  const ok = await handler(
    new Request("http://x/v1/logs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    }),
  );
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  const [key] = await store.list("");
  assert.match(key, /-fn7-[0-9a-f]{16}\.parquet$/);
  const big = await handler(
    new Request("http://x/v1/logs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body.padEnd(2048, " "),
    }),
  );
  assert.equal(big.status, 413);
  await big.body?.cancel();
});
