/**
 * AWS Lambda custom runtime entry (`provided.al2` / `provided.al2023`, built as `bootstrap` by
 * `deno task build --lambda`, and run by the single executable when `AWS_LAMBDA_RUNTIME_API` is set).
 * Configuration from `OTLP2PARQUET_*` variables; storage defaults to S3 over fetch, with the function's
 * role credentials that Lambda puts in the environment. Each invocation's Parquet files are written
 * before its response is posted, because Lambda may freeze the process right after it: nothing is
 * buffered across invocations.
 *
 * Serves HTTP events of API Gateway (HTTP API and REST), Function URLs and ALB target groups. A token is
 * required (`OTLP2PARQUET_AUTH_TOKEN`), unless `OTLP2PARQUET_AUTH=none` says the integration authenticates
 * callers itself (a Function URL with IAM auth); without either, every request gets 503.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import process from "node:process";
import type { Logger } from "../../ingest/ingest.ts";
import { storeFromConfig } from "../../storage/from_config.ts";
import { createDirectHandler, randomInstanceId, resolvePlatformConfig } from "../direct.ts";
import { createLogger } from "../server/log.ts";
import { prepareParquet } from "../wasm.ts";
import { nodeInflateSync } from "../node_codecs.ts";
import { handleEvent, type LambdaHttpEvent } from "./events.ts";
import { runRuntime, RuntimeClient } from "./runtime.ts";

/**
 * Lambda caps a synchronous request at 6 MB, so bodies are at most that (less once base64-encoded);
 * a compressed body that inflates beyond this gets 413: raise it together with the function's memory.
 */
export const LAMBDA_DEFAULTS = {
  maxPayloadBytes: 6 * 1024 * 1024,
  maxInflightBytes: 6 * 1024 * 1024,
  storageBackend: "s3",
} as const;

async function main(): Promise<void> {
  const api = process.env.AWS_LAMBDA_RUNTIME_API;
  if (!api) {
    console.error("AWS_LAMBDA_RUNTIME_API is not set: this is a Lambda custom runtime (bootstrap)");
    process.exit(1);
  }
  const client = new RuntimeClient(api);
  let handler: (request: Request) => Promise<Response>;
  let log: Logger;
  try {
    const { config, warnings } = await resolvePlatformConfig(process.env, {
      defaults: LAMBDA_DEFAULTS,
      instanceId: `l${randomInstanceId()}`,
      readTextFile: (path) => readFile(path, "utf8"),
    });
    log = createLogger({ level: config.log.level, format: config.log.format });
    for (const warning of warnings) log.warn(warning);
    // Cold start is paid by every new instance: load only what this configuration writes with. S3 goes over
    // fetch with the role's credentials Lambda puts in the environment, so OpenDAL's addon (~55 MB) stays
    // unloaded (and out of the `--lambda` build); other backends still load it.
    await prepareParquet(config.parquet.compression);
    const store = await storeFromConfig(config, {
      env: process.env,
      s3OverFetch: true,
      onFallback: (error) =>
        log.warn("OpenDAL is not available in this build; writing to S3 over fetch", {
          error: String(error),
        }),
    });
    handler = createDirectHandler(store, { config, log, inflateSync: nodeInflateSync });
    log.info("otlp2parquet Lambda runtime started", {
      store: store.description,
      instance: config.server.instanceId,
    });
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    await client.initError(error).catch((e) => console.error("cannot report the init error:", e));
    process.exit(1);
  }
  await runRuntime(client, async (event, context) => {
    if (context.traceId) process.env._X_AMZN_TRACE_ID = context.traceId;
    return await handleEvent(event as LambdaHttpEvent, handler);
  }, {
    onError: (error, context) =>
      log.error("invocation failed", { requestId: context.requestId, error: String(error) }),
  });
}

await main();
