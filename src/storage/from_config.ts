/**
 * The object store a resolved configuration names, loading only what that store needs: the `fs` backend is
 * {@linkcode FsStore} (`node:fs`), `gcs` is {@linkcode GcsFetchStore} (OpenDAL's GCS writer mangles names at
 * the pinned version: see that file), and OpenDAL's native addon (about 55 MB of resident memory) is imported
 * only for `s3` and `azblob`. S3 goes over fetch ({@linkcode S3FetchStore}) instead when the caller
 * prefers it (Lambda: its role's credentials are in the environment) or when OpenDAL cannot load (a build
 * without it).
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import { FsStore } from "./fs_store.ts";
import type { ObjectStore } from "./object_store.ts";
import type { OpendalStoreOptions } from "./opendal_store.ts";
import { S3FetchStore } from "./s3_fetch_store.ts";
import { GcsFetchStore } from "./gcs_fetch_store.ts";
import { gcsTokenFromCredentials, gcsTokenFromMetadataServer, type GcsTokenSource } from "./gcs_auth.ts";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** OpenDAL options of the configured backend (credentials come from the standard environment). */
export function opendalOptions(config: Config): OpendalStoreOptions {
  const s = config.storage;
  switch (s.backend) {
    case "gcs":
      throw new RangeError("gcs is written over fetch (GcsFetchStore), not OpenDAL");
    case "fs":
      return { backend: "fs", root: s.path };
    case "s3":
      return {
        backend: "s3",
        bucket: s.s3.bucket!,
        region: s.s3.region,
        endpoint: s.s3.endpoint,
        prefix: s.s3.prefix,
        forcePathStyle: s.s3.forcePathStyle,
      };
    case "azblob":
      return {
        backend: "azblob",
        container: s.azblob.container!,
        accountName: s.azblob.account,
        endpoint: s.azblob.endpoint,
        prefix: s.azblob.prefix,
      };
  }
}

/** Options of {@linkcode storeFromConfig}. */
export interface StoreFromConfigOptions {
  /** Where AWS credentials are read for S3 over fetch. Default: none (S3 then needs OpenDAL). */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Write S3 over fetch whenever `env` holds `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, without
   * loading OpenDAL. Default: false (OpenDAL, which also reads profiles and instance metadata).
   */
  s3OverFetch?: boolean;
  /** Told when OpenDAL could not load and S3 goes over fetch instead. Default: nothing. */
  onFallback?: (error: unknown) => void;
}

/**
 * Creates the configured store. Construction does no I/O (call `check()`); the only slow part is loading
 * OpenDAL when the backend needs it.
 *
 * @throws when the backend needs OpenDAL and it cannot load (S3 without credentials in `env` included).
 */
export async function storeFromConfig(
  config: Config,
  options: StoreFromConfigOptions = {},
): Promise<ObjectStore> {
  if (config.storage.backend === "fs") return new FsStore({ root: config.storage.path });
  if (config.storage.backend === "gcs") return await gcsStore(config, options.env ?? {});
  if (options.s3OverFetch && config.storage.backend === "s3") {
    const store = s3FetchStore(config, options.env);
    if (store !== undefined) return store;
  }
  let opendal: typeof import("./opendal_store.ts");
  try {
    opendal = await loadOpendal();
  } catch (error) {
    const fallback = config.storage.backend === "s3" ? s3FetchStore(config, options.env) : undefined;
    if (fallback === undefined) {
      throw new Error(
        `the ${config.storage.backend} backend needs OpenDAL, which cannot load here (${String(error)})` +
          (config.storage.backend === "s3"
            ? "; S3 over fetch needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            : ""),
      );
    }
    options.onFallback?.(error);
    return fallback;
  }
  return opendal.createOpendalStore(opendalOptions(config));
}

/**
 * Set (to true) only by `deno task build --lambda` through Bun's `--define`: the Lambda bootstrap writes
 * S3 over fetch, so OpenDAL's module and its 43 MB native addon are left out of that executable.
 */
declare const OTLP2PARQUET_WITHOUT_OPENDAL: boolean;

/** OpenDAL's store module, imported on first use; the constant folds away the import in a build without it. */
function loadOpendal(): Promise<typeof import("./opendal_store.ts")> {
  return typeof OTLP2PARQUET_WITHOUT_OPENDAL === "boolean" && OTLP2PARQUET_WITHOUT_OPENDAL
    ? Promise.reject(new Error("this executable is built without OpenDAL (deno task build --lambda)"))
    : import("./opendal_store.ts");
}

/** S3 over fetch with the credentials in `env`, or undefined without them. */
function s3FetchStore(
  config: Config,
  env: Readonly<Record<string, string | undefined>> | undefined,
): S3FetchStore | undefined {
  const accessKeyId = env?.AWS_ACCESS_KEY_ID, secretAccessKey = env?.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  const s = config.storage.s3;
  return new S3FetchStore({
    bucket: s.bucket!,
    region: s.region,
    endpoint: s.endpoint,
    prefix: s.prefix,
    forcePathStyle: s.forcePathStyle,
    accessKeyId,
    secretAccessKey,
    sessionToken: env?.AWS_SESSION_TOKEN,
  });
}

/**
 * GCS over fetch. Credentials, as Google's clients look for them: none when `storage.gcs.anonymous`; else the
 * file named by `GOOGLE_APPLICATION_CREDENTIALS`; else gcloud's application-default credentials file; else
 * the metadata server (on Google Cloud).
 *
 * @throws when a named credentials file cannot be read or is not one.
 */
async function gcsStore(
  config: Config,
  env: Readonly<Record<string, string | undefined>>,
): Promise<GcsFetchStore> {
  const s = config.storage.gcs;
  let token: GcsTokenSource | undefined;
  if (!s.anonymous) {
    const named = env.GOOGLE_APPLICATION_CREDENTIALS;
    const adc = join(
      env.CLOUDSDK_CONFIG ?? join(homedir(), ".config", "gcloud"),
      "application_default_credentials.json",
    );
    let json: string | undefined;
    if (named) {
      try {
        json = await readFile(named, "utf8");
      } catch (error) {
        throw new Error(
          `GOOGLE_APPLICATION_CREDENTIALS names ${named}, which cannot be read: ${(error as Error).message}`,
        );
      }
    } else {
      json = await readFile(adc, "utf8").catch(() => undefined);
    }
    token = json === undefined ? gcsTokenFromMetadataServer() : gcsTokenFromCredentials(json);
  }
  return new GcsFetchStore({ bucket: s.bucket!, endpoint: s.endpoint, prefix: s.prefix, token });
}
