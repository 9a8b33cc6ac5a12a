/**
 * The OpenDAL options a resolved configuration names. Kept apart from `opendal_store.ts`, so entry points
 * can work them out without loading OpenDAL's native addon (Lambda loads it lazily).
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import type { OpendalStoreOptions } from "./opendal_store.ts";

/** OpenDAL options of the configured backend (credentials come from the standard environment). */
export function opendalOptions(config: Config): OpendalStoreOptions {
  const s = config.storage;
  switch (s.backend) {
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
    case "gcs":
      return { backend: "gcs", bucket: s.gcs.bucket! };
    case "azblob":
      return {
        backend: "azblob",
        container: s.azblob.container!,
        accountName: s.azblob.account,
        endpoint: s.azblob.endpoint,
      };
  }
}
