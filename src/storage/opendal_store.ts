import { Buffer } from "node:buffer";
import { resolve } from "node:path";
import { Operator, TimeoutLayer } from "opendal";
import {
  normalizePrefix,
  type ObjectInfo,
  type ObjectStore,
  StorageError,
  toStorageError,
  validateKey,
  validatePrefix,
} from "./object_store.ts";
import { FS_STAGING_DIR } from "./fs_store.ts";

/** Settings shared by every backend. */
interface CommonOptions {
  /** Deadline of each storage call (OpenDAL's TimeoutLayer); expiry is a retryable StorageError. Default: 60000 ms. */
  timeoutMs?: number;
}

/** A local folder. */
export interface FsStoreOptions extends CommonOptions {
  backend: "fs";
  /** Folder holding the objects; relative paths resolve against the working directory. Created if absent. */
  root: string;
}

/** AWS S3 or an S3-compatible service (MinIO, R2, s3rver, ...). */
export interface S3StoreOptions extends CommonOptions {
  backend: "s3";
  bucket: string;
  /** Default: OpenDAL's loading (AWS_REGION / AWS_DEFAULT_REGION / ~/.aws/config), else "us-east-1" with an endpoint. */
  region?: string;
  /** Default: AWS (`https://s3.<region>.amazonaws.com`). */
  endpoint?: string;
  /** Folder inside the bucket. Default: "" (bucket root). */
  prefix?: string;
  /** Default: loaded by OpenDAL from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, profiles, IMDS. */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Path-style (`<endpoint>/<bucket>/key`) addressing. Default: true when `endpoint` is set, else false. */
  forcePathStyle?: boolean;
  /**
   * Objects larger than this go up as a multipart upload in parts of this size, four at a time. S3 needs
   * parts of at least 5 MiB. Default: 16 MiB.
   */
  multipartChunkBytes?: number;
}

/** Azure Blob Storage. */
export interface AzblobStoreOptions extends CommonOptions {
  backend: "azblob";
  container: string;
  /** Default: `https://<accountName>.blob.core.windows.net`. */
  endpoint?: string;
  /** Default: OpenDAL's loading (AZBLOB_* / AZURE_STORAGE_* environment). */
  accountName?: string;
  accountKey?: string;
  /** Folder inside the container. Default: "". */
  prefix?: string;
}

/** Options of {@linkcode createOpendalStore}, one shape per backend. */
export type OpendalStoreOptions = FsStoreOptions | S3StoreOptions | AzblobStoreOptions;

// The fs root's staging folder is the node:fs store's, so either store reads a folder the other wrote.
export { FS_STAGING_DIR };

const MIN_PART_BYTES = 5 * 1024 * 1024;

/**
 * An ObjectStore over Apache OpenDAL (native addon: server and Lambda only). Construction does no I/O;
 * call check() to probe the target.
 */
export function createOpendalStore(options: OpendalStoreOptions): ObjectStore {
  const { operator, description, chunkBytes, hidden } = buildOperator(options);
  const timeout = new TimeoutLayer();
  timeout.timeout = options.timeoutMs ?? 60_000;
  timeout.ioTimeout = options.timeoutMs ?? 60_000;
  return new OpendalStore(operator.layer(timeout.build()), { description, chunkBytes, hidden });
}

interface Built {
  operator: Operator;
  description: string;
  chunkBytes: number | undefined;
  hidden: string | undefined;
}

function buildOperator(options: OpendalStoreOptions): Built {
  switch (options.backend) {
    case "fs": {
      const root = resolve(options.root);
      const operator = construct("fs", { root, atomic_write_dir: `${root}/${FS_STAGING_DIR}` }, `fs:${root}`);
      return { operator, description: `fs:${root}`, chunkBytes: undefined, hidden: `${FS_STAGING_DIR}/` };
    }
    case "s3": {
      const prefix = normalizePrefix(options.prefix);
      const chunkBytes = options.multipartChunkBytes ?? 16 * 1024 * 1024;
      if (!Number.isInteger(chunkBytes) || chunkBytes < MIN_PART_BYTES) {
        throw new RangeError(`multipartChunkBytes must be an integer of at least ${MIN_PART_BYTES}`);
      }
      const description = `s3://${options.bucket}/${prefix}` +
        (options.endpoint === undefined ? "" : ` (${options.endpoint})`);
      const config: Record<string, string> = {
        bucket: options.bucket,
        root: `/${prefix}`,
        enable_virtual_host_style: String(!(options.forcePathStyle ?? options.endpoint !== undefined)),
      };
      setIf(config, "endpoint", options.endpoint);
      setIf(config, "access_key_id", options.accessKeyId);
      setIf(config, "secret_access_key", options.secretAccessKey);
      setIf(config, "session_token", options.sessionToken);
      if (options.region !== undefined) {
        config.region = options.region;
        return { operator: construct("s3", config, description), description, chunkBytes, hidden: undefined };
      }
      try {
        return { operator: new Operator("s3", config), description, chunkBytes, hidden: undefined };
      } catch (error) {
        // S3-compatible services mostly ignore the region but the signature needs one.
        if (options.endpoint === undefined || !/region/i.test(String(error))) throw wrap(error, description);
        config.region = "us-east-1";
        return { operator: construct("s3", config, description), description, chunkBytes, hidden: undefined };
      }
    }
    case "azblob": {
      const prefix = normalizePrefix(options.prefix);
      const endpoint = options.endpoint ??
        (options.accountName === undefined
          ? undefined
          : `https://${options.accountName}.blob.core.windows.net`);
      const description = `azblob://${options.container}/${prefix}` +
        (endpoint === undefined ? "" : ` (${endpoint})`);
      const config: Record<string, string> = { container: options.container, root: `/${prefix}` };
      setIf(config, "endpoint", endpoint);
      setIf(config, "account_name", options.accountName);
      setIf(config, "account_key", options.accountKey);
      return {
        operator: construct("azblob", config, description),
        description,
        chunkBytes: undefined,
        hidden: undefined,
      };
    }
    default: {
      const backend: never = options;
      throw new RangeError(
        `unknown storage backend: ${JSON.stringify((backend as { backend: unknown }).backend)}`,
      );
    }
  }
}

function setIf(config: Record<string, string>, name: string, value: string | undefined): void {
  if (value !== undefined) config[name] = value;
}

function construct(scheme: string, config: Record<string, string>, description: string): Operator {
  try {
    return new Operator(scheme, config);
  } catch (error) {
    throw wrap(error, description);
  }
}

function wrap(error: unknown, description: string): StorageError {
  return toStorageError(error, `cannot configure storage ${description}`);
}

class OpendalStore implements ObjectStore {
  readonly description: string;
  readonly #operator: Operator;
  readonly #chunkBytes: number | undefined;
  readonly #hidden: string | undefined;

  constructor(
    operator: Operator,
    options: { description: string; chunkBytes: number | undefined; hidden: string | undefined },
  ) {
    this.#operator = operator;
    this.description = options.description;
    this.#chunkBytes = options.chunkBytes;
    this.#hidden = options.hidden;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    this.#validate(key);
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const multipart = this.#chunkBytes !== undefined && bytes.byteLength > this.#chunkBytes;
    try {
      await this.#operator.write(
        key,
        buffer,
        multipart ? { chunk: BigInt(this.#chunkBytes!), concurrent: 4 } : undefined,
      );
    } catch (error) {
      throw this.#wrap(error, `put ${key}`);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#validate(key);
    try {
      const buffer = await this.#operator.read(key);
      // A plain Uint8Array view: callers compare and slice without meeting Buffer's differences.
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.#wrap(error, `get ${key}`);
    }
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    // OpenDAL lists folders; the string prefix may end inside a name, so list its folder and filter.
    const folder = prefix.slice(0, prefix.lastIndexOf("/") + 1);
    let entries;
    try {
      entries = await this.#operator.list(folder, { recursive: true });
    } catch (error) {
      if (isNotFound(error)) return [];
      throw this.#wrap(error, `list ${prefix}`);
    }
    const keys: string[] = [];
    for (const entry of entries) {
      const path = entry.path();
      if (path.endsWith("/") || !path.startsWith(prefix)) continue;
      if (this.#hidden !== undefined && path.startsWith(this.#hidden)) continue;
      keys.push(path);
    }
    return keys.sort();
  }

  async listInfo(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    for (const key of await this.list(prefix)) {
      try {
        const meta = await this.#operator.stat(key);
        const modified = meta.lastModified === null ? NaN : Date.parse(meta.lastModified);
        out.push({ key, size: Number(meta.contentLength ?? 0n), modifiedMs: modified });
      } catch (error) {
        if (isNotFound(error)) continue; // deleted since the listing
        throw this.#wrap(error, `stat ${key}`);
      }
    }
    return out;
  }

  async delete(key: string): Promise<void> {
    this.#validate(key);
    try {
      await this.#operator.delete(key);
    } catch (error) {
      if (isNotFound(error)) return;
      throw this.#wrap(error, `delete ${key}`);
    }
  }

  async check(): Promise<void> {
    try {
      await this.#operator.check();
    } catch (error) {
      throw this.#wrap(error, "check");
    }
  }

  #validate(key: string): void {
    validateKey(key);
    if (this.#hidden !== undefined && (key + "/").startsWith(this.#hidden)) {
      throw new RangeError(`invalid object key: ${FS_STAGING_DIR} is reserved: ${JSON.stringify(key)}`);
    }
  }

  #wrap(error: unknown, what: string): StorageError {
    const wrapped = toStorageError(error, `cannot ${what} on ${this.description}`);
    const kind = error instanceof Error
      ? /^(\w+) \((?:permanent|temporary|persistent)\)/.exec(error.message)
      : null;
    if (kind === null) return wrapped;
    // OpenDAL's kind ("ConfigInvalid", "PermissionDenied", ...) says more than napi's "GenericFailure".
    return new StorageError(wrapped.message, { retryable: wrapped.retryable, code: kind[1], cause: error });
  }
}

/** OpenDAL errors carry their kind first in the message: "NotFound (permanent) at read, …". */
function isNotFound(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NotFound ");
}
