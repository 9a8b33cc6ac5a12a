/**
 * Object storage behind one narrow interface, {@linkcode ObjectStore}: put/get/list/delete/check of whole
 * objects under '/'-separated keys. Implementations: {@linkcode MemoryStore} (tests, benchmarks),
 * {@linkcode R2Store} (a Workers R2 binding), {@linkcode S3FetchStore} (S3 over fetch with SigV4, for
 * Deno Deploy and the edge), {@linkcode GcsFetchStore} (Google Cloud Storage's JSON API over fetch) and, imported from their own files on purpose so this barrel loads neither
 * `node:fs` nor a native addon, `FsStore` (`./fs_store.ts`: a local folder, server and Lambda) and
 * `createOpendalStore` (`./opendal_store.ts`: s3 and azblob through Apache OpenDAL's native addon).
 * `storeFromConfig` (`./from_config.ts`) picks one for a configuration, loading OpenDAL only when needed. Failures are {@linkcode StorageError}s classified once as retryable or permanent; invalid
 * keys are RangeErrors.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "./mod.ts";
 *
 * const store = new MemoryStore();
 * await store.put("logs/service=api/part-0.parquet", new Uint8Array([0x50, 0x41, 0x52, 0x31]));
 * console.log(await store.list("logs/")); // ["logs/service=api/part-0.parquet"]
 * ```
 *
 * @module
 */
export {
  isRetryableS3Error,
  isRetryableStatus,
  isRetryableStorageError,
  MAX_KEY_BYTES,
  normalizePrefix,
  type ObjectInfo,
  type ObjectStore,
  StorageError,
  type StorageErrorOptions,
  toStorageError,
  validateKey,
  validatePrefix,
} from "./object_store.ts";
export { MemoryStore, type MemoryStoreOptions } from "./memory_store.ts";
export {
  type R2BucketLike,
  type R2ListOptionsLike,
  type R2ObjectBodyLike,
  type R2ObjectLike,
  type R2ObjectsLike,
  R2Store,
  type R2StoreOptions,
} from "./r2_store.ts";
export { S3FetchStore, type S3FetchStoreOptions } from "./s3_fetch_store.ts";
export { GcsFetchStore, type GcsFetchStoreOptions } from "./gcs_fetch_store.ts";
export {
  gcsTokenFromCredentials,
  gcsTokenFromMetadataServer,
  type GcsTokenOptions,
  type GcsTokenSource,
} from "./gcs_auth.ts";
export { type AwsCredentials, signV4, type SigV4Options, type SigV4Request } from "./aws_sigv4.ts";
