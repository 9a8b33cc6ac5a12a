/**
 * Deno Deploy entry: the OTLP/HTTP handler served by `Deno.serve`, writing each request's Parquet files
 * to an S3-compatible bucket over `fetch` (SigV4) before answering; an isolate may be stopped at any
 * moment, so nothing is buffered across requests. Configuration from `OTLP2PARQUET_S3_*` and the
 * standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`) variables. A token is
 * required (`OTLP2PARQUET_AUTH_TOKEN`, or `OTLP2PARQUET_AUTH_TOKENS` while rotating): without one every
 * request gets 503 unless `OTLP2PARQUET_AUTH=none` (see docs/deploy.md#authentication).
 *
 * Locally: `deno run -A src/platforms/deploy/main.ts` (listens on `OTLP2PARQUET_LISTEN_ADDR`, default
 * 0.0.0.0:4318; Deploy itself ignores the address).
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import process from "node:process";
import { type Config, ConfigError } from "../../config/mod.ts";
import { VERSION } from "../../core/version.ts";
import { S3FetchStore } from "../../storage/s3_fetch_store.ts";
import { createDirectHandler, randomInstanceId, resolvePlatformConfig } from "../direct.ts";
import { createLogger } from "../server/log.ts";
import { loadParquetWasm } from "../wasm.ts";
import { nodeInflateSync } from "../node_codecs.ts";

/** Deploy isolates have 512 MB of memory. */
export const DEPLOY_DEFAULTS = {
  maxPayloadBytes: 16 * 1024 * 1024,
  maxInflightBytes: 64 * 1024 * 1024,
  storageBackend: "s3",
} as const;

interface DenoServe {
  serve(
    options: { hostname: string; port: number; onListen(address: { hostname: string; port: number }): void },
    handler: (request: Request) => Promise<Response>,
  ): { finished: Promise<void> };
}

function s3Store(config: Config, env: Record<string, string | undefined>): S3FetchStore {
  const problems: string[] = [];
  if (config.storage.backend !== "s3") {
    problems.push(
      `storage.backend is "${config.storage.backend}": Deno Deploy writes to S3-compatible storage only`,
    );
  }
  if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) {
    problems.push(
      "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set (there is no instance role on Deno Deploy)",
    );
  }
  if (problems.length) throw new ConfigError(problems);
  const s3 = config.storage.s3;
  return new S3FetchStore({
    bucket: s3.bucket!,
    region: s3.region,
    endpoint: s3.endpoint,
    prefix: s3.prefix,
    forcePathStyle: s3.forcePathStyle,
    accessKeyId: env.AWS_ACCESS_KEY_ID!,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY!,
    sessionToken: env.AWS_SESSION_TOKEN,
  });
}

async function main(): Promise<void> {
  let config: Config;
  let warnings: string[];
  let store: S3FetchStore;
  try {
    ({ config, warnings } = await resolvePlatformConfig(process.env, {
      defaults: DEPLOY_DEFAULTS,
      instanceId: `d${randomInstanceId()}`,
      readTextFile: (path) => readFile(path, "utf8"),
    }));
    store = s3Store(config, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(2);
  }
  const log = createLogger({ level: config.log.level, format: config.log.format });
  for (const warning of warnings) log.warn(warning);
  await loadParquetWasm();
  // Not awaited: a cold start should not wait for the probe, which only makes a bad bucket visible early.
  store.check().catch((error) =>
    log.warn("object store not reachable; requests get 503 until it is", {
      store: store.description,
      error: String(error),
    })
  );
  const handler = createDirectHandler(store, { config, log, inflateSync: nodeInflateSync });
  const deno = (globalThis as unknown as { Deno: DenoServe }).Deno;
  const server = deno.serve({
    hostname: config.server.hostname,
    port: config.server.port,
    onListen: ({ hostname, port }) =>
      log.info(
        `otlp2parquet ${VERSION} listening on http://${
          hostname.includes(":") ? `[${hostname}]` : hostname
        }:${port}`,
        {
          store: store.description,
          instance: config.server.instanceId,
        },
      ),
  }, handler);
  await server.finished;
}

await main();
