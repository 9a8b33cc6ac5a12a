/**
 * Cloudflare Workers module worker: the OTLP/HTTP handler over the R2 binding `BUCKET`. Without a
 * batcher, each request's Parquet files are in R2 before the 200 is sent (an isolate's memory outlives no
 * request reliably). parquet-wasm arrives as a compiled `WebAssembly.Module` (wrangler's `CompiledWasm` rule) and is
 * initialised on the first request; configuration comes from the `OTLP2PARQUET_*` variables of `env`.
 *
 * With the Durable Object `OtlpBatcher` (exported here) bound as `BATCHER`, requests are handed to it and
 * written later in batches (`batcher.ts`); without it, each request is written as its own objects.
 *
 * Build with `deno task build --workers` (→ `dist/workers/`), deploy with wrangler
 * (`deploy/cloudflare/wrangler.toml`, `docs/deploy.md`).
 *
 * @module
 */

// @ts-ignore: a wasm import is a compiled WebAssembly.Module under wrangler/workerd; Deno never runs this file.
import parquetWasm from "parquet-wasm/esm/parquet_wasm_bg.wasm";
import { ConfigError } from "../../config/mod.ts";
import { initParquet } from "../../core/parquet/parquet.ts";
import { misconfiguredResponse } from "../../http/auth.ts";
import { formatOf } from "../../http/handler.ts";
import { limitsOf } from "../../ingest/request_limits.ts";
import { type R2BucketLike, R2Store } from "../../storage/r2_store.ts";
import { createDirectHandler, randomInstanceId, resolvePlatformConfig } from "../direct.ts";
import { createLogger } from "../server/log.ts";
import { BatcherSink, type DurableObjectNamespaceLike } from "./batcher_sink.ts";

export { OtlpBatcher } from "./batcher.ts";

/** The bindings the worker reads. */
export interface WorkerEnv {
  /** The R2 bucket binding. */
  BUCKET: R2BucketLike;
  /** The `OtlpBatcher` Durable Object namespace: when bound, requests are batched there (`batcher.ts`). */
  BATCHER?: DurableObjectNamespaceLike;
  /** `OTLP2PARQUET_*` variables; everything else is ignored. */
  [name: string]: unknown;
}

/** The part of the Workers `ExecutionContext` this worker may use. */
export interface WorkerContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** Workers isolates have 128 MB of memory: a decoded request and its Parquet must fit several times. */
export const WORKERS_DEFAULTS = { maxPayloadBytes: 8 * 1024 * 1024, maxInflightBytes: 16 * 1024 * 1024 };

type Handler = (request: Request) => Promise<Response>;

let handler: Promise<Handler> | undefined;

async function start(env: WorkerEnv): Promise<Handler> {
  // Random values are refused at module scope on Workers, so the instance id is drawn here.
  const { config, warnings } = await resolvePlatformConfig(env, {
    defaults: WORKERS_DEFAULTS,
    instanceId: `w${randomInstanceId()}`,
  });
  const log = createLogger({ level: config.log.level, format: config.log.format });
  for (const warning of warnings) log.warn(warning);
  if (!env.BUCKET || typeof env.BUCKET.put !== "function") {
    throw new ConfigError(['no R2 bucket binding named "BUCKET": add [[r2_buckets]] binding = "BUCKET"']);
  }
  initParquet(parquetWasm as WebAssembly.Module);
  const store = new R2Store(env.BUCKET, { prefix: config.storage.s3.prefix });
  log.info("otlp2parquet worker started", { store: store.description, instance: config.server.instanceId });
  // With the batcher bound, each request is stored in it and written later with others; without, each
  // request is written to R2 as its own objects before the answer.
  const sink = env.BATCHER
    ? new BatcherSink(env.BATCHER, {
      shards: config.batcher.shards,
      maxInflightBytes: config.server.maxInflightBytes,
      limits: limitsOf(config.batch),
    })
    : undefined;
  return createDirectHandler(store, { config, log, sink });
}

/** The module worker. */
export default {
  async fetch(request: Request, env: WorkerEnv, _ctx: WorkerContext): Promise<Response> {
    let serve: Handler;
    try {
      serve = await (handler ??= start(env));
    } catch (error) {
      // A misconfigured worker answers 503 so that OTLP clients keep the data until it is fixed. The
      // details quote configuration values, which may be secrets: they go to the log, never to the client.
      console.error(error instanceof Error ? error.message : String(error));
      await request.body?.cancel().catch(() => {});
      return misconfiguredResponse(
        formatOf(request.headers.get("content-type")) === "protobuf" ? "protobuf" : "json",
      );
    }
    return serve(request);
  },
};
