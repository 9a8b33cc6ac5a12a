import {
  normalizePrefix,
  type ObjectStore,
  StorageError,
  toStorageError,
  validateKey,
  validatePrefix,
} from "./object_store.ts";

/** The part of an R2 object's metadata we read. */
export interface R2ObjectLike {
  readonly key: string;
  readonly size: number;
}

/** An R2 object with its body, as `R2Bucket.get` returns it. */
export interface R2ObjectBodyLike extends R2ObjectLike {
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** Options of `R2Bucket.list`, as far as we use them. */
export interface R2ListOptionsLike {
  prefix?: string;
  cursor?: string;
  /** 1..1000; R2's default is 1000. */
  limit?: number;
}

/** One page of `R2Bucket.list`: `cursor` is set exactly when `truncated` is true. */
export interface R2ObjectsLike {
  objects: R2ObjectLike[];
  truncated: boolean;
  cursor?: string;
}

/**
 * The minimal shape of a Workers R2 bucket binding (`env.MY_BUCKET`) this store needs, declared here so
 * the code type-checks without Cloudflare's types. The real `R2Bucket` satisfies it.
 */
export interface R2BucketLike {
  head(key: string): Promise<R2ObjectLike | null>;
  get(key: string): Promise<R2ObjectBodyLike | null>;
  put(key: string, value: ArrayBuffer | ArrayBufferView): Promise<R2ObjectLike | null>;
  delete(keys: string | string[]): Promise<void>;
  list(options?: R2ListOptionsLike): Promise<R2ObjectsLike>;
}

/** Options of {@linkcode R2Store}. */
export interface R2StoreOptions {
  /** Folder inside the bucket that every key is relative to. Default: "" (the bucket root). */
  prefix?: string;
  /** Bucket name for the description only (a binding does not know it). Default: "binding". */
  bucketName?: string;
}

/**
 * R2 binding errors end with a numeric code ("put: … (10001)"). These mean "try again": internal error,
 * service unavailable, too many requests (rate limit per object).
 */
const RETRYABLE_R2_CODES = new Set(["10001", "10043", "10058"]);

/** Key probed by check(): a HEAD is R2's cheapest (class B) operation and works on an empty bucket. */
const PROBE_KEY = ".otlp2parquet-probe";

/**
 * ObjectStore over a Cloudflare R2 bucket binding. R2 writes are atomic and strongly consistent, so
 * put/get/list need nothing beyond the binding's own calls.
 */
export class R2Store implements ObjectStore {
  readonly description: string;
  readonly #bucket: R2BucketLike;
  readonly #prefix: string;

  constructor(bucket: R2BucketLike, options: R2StoreOptions = {}) {
    this.#bucket = bucket;
    this.#prefix = normalizePrefix(options.prefix);
    this.description = `r2://${options.bucketName ?? "binding"}/${this.#prefix}`;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    validateKey(key);
    let written: R2ObjectLike | null;
    try {
      written = await this.#bucket.put(this.#prefix + key, bytes);
    } catch (error) {
      throw this.#wrap(error, `put ${key}`);
    }
    // put answers null only when an onlyIf precondition failed; we set none, so this is a broken binding.
    if (written === null) {
      throw new StorageError(`cannot put ${key} on ${this.description}: the binding refused the write`, {
        retryable: false,
      });
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    validateKey(key);
    try {
      const object = await this.#bucket.get(this.#prefix + key);
      if (object === null) return undefined;
      return new Uint8Array(await object.arrayBuffer());
    } catch (error) {
      throw this.#wrap(error, `get ${key}`);
    }
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    const keys: string[] = [];
    let cursor: string | undefined;
    try {
      do {
        const page = await this.#bucket.list({ prefix: this.#prefix + prefix, cursor, limit: 1000 });
        for (const object of page.objects) keys.push(object.key.slice(this.#prefix.length));
        // R2 may return fewer objects than the limit (even none) on a truncated page: follow the cursor.
        cursor = page.truncated ? page.cursor : undefined;
        if (page.truncated && cursor === undefined) {
          throw new StorageError(
            `cannot list ${prefix} on ${this.description}: truncated page without cursor`,
            {
              retryable: false,
            },
          );
        }
      } while (cursor !== undefined);
    } catch (error) {
      throw this.#wrap(error, `list ${prefix}`);
    }
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    try {
      await this.#bucket.delete(this.#prefix + key);
    } catch (error) {
      throw this.#wrap(error, `delete ${key}`);
    }
  }

  async check(): Promise<void> {
    try {
      await this.#bucket.head(this.#prefix + PROBE_KEY);
    } catch (error) {
      throw this.#wrap(error, "check");
    }
  }

  #wrap(error: unknown, what: string): StorageError {
    const wrapped = toStorageError(error, `cannot ${what} on ${this.description}`);
    const r2Code = error instanceof Error ? /\((\d{5})\)\s*$/.exec(error.message)?.[1] : undefined;
    if (r2Code === undefined) return wrapped;
    return new StorageError(wrapped.message, {
      retryable: wrapped.retryable || RETRYABLE_R2_CODES.has(r2Code),
      code: `r2_${r2Code}`,
      cause: error,
    });
  }
}
