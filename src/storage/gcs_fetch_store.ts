/**
 * Google Cloud Storage over `fetch`, through the JSON API: one media upload per object (atomic: readers see
 * the old object or the new one), `alt=media` downloads, paged listing, deletes. Needs no `node:` module.
 *
 * Why not OpenDAL's `gcs` service: at the pinned version (0.49.2, the last whose Linux binary runs on
 * glibc < 2.38) its writer percent-encodes object names twice (apache/opendal#7926, fixed upstream in
 * 2026-07), so `year=2026/…` is stored as `year%3D2026/…`: every Hive partition key breaks and nothing
 * written can be read back under its own name. Found by the contract test against fake-gcs-server.
 *
 * @module
 */

import type { GcsTokenSource } from "./gcs_auth.ts";
import { TokenError } from "./gcs_auth.ts";
import {
  isRetryableStatus,
  isRetryableStorageError,
  normalizePrefix,
  type ObjectInfo,
  type ObjectStore,
  readBoundedText,
  StorageError,
  toStorageError,
  validateKey,
  validatePrefix,
} from "./object_store.ts";

/** Options of {@linkcode GcsFetchStore}. */
export interface GcsFetchStoreOptions {
  bucket: string;
  /** Folder inside the bucket that every key is relative to. Default: "". */
  prefix?: string;
  /** JSON API root, e.g. "http://127.0.0.1:4443" for fake-gcs-server. Default: "https://storage.googleapis.com". */
  endpoint?: string;
  /** Gives the Authorization header; absent: anonymous requests (emulators, public buckets). */
  token?: GcsTokenSource;
  /** Per-request deadline; a timeout is a retryable StorageError. Default: 30000 ms. */
  timeoutMs?: number;
  /** Names asked for per listing page (1..1000). Default: 1000. */
  listPageSize?: number;
  /** Default: globalThis.fetch. */
  fetch?: typeof fetch;
}

const MAX_ERROR_BODY = 64 * 1024;

/** Google Cloud Storage through its JSON API over `fetch`. Construction does no I/O. */
export class GcsFetchStore implements ObjectStore {
  readonly description: string;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #api: string;
  readonly #token: GcsTokenSource | undefined;
  readonly #timeoutMs: number;
  readonly #pageSize: number;
  readonly #fetch: typeof fetch;

  constructor(options: GcsFetchStoreOptions) {
    if (!options.bucket) throw new RangeError("GCS bucket name is empty");
    const pageSize = options.listPageSize ?? 1000;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      throw new RangeError(`listPageSize must be an integer in 1..1000, got ${pageSize}`);
    }
    this.#bucket = options.bucket;
    this.#prefix = normalizePrefix(options.prefix);
    this.#api = (options.endpoint ?? "https://storage.googleapis.com").replace(/\/+$/, "");
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#pageSize = pageSize;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.description = `gs://${this.#bucket}/${this.#prefix}` +
      (options.endpoint === undefined ? "" : ` (${this.#api})`);
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    validateKey(key);
    const url = `${this.#api}/upload/storage/v1/b/${
      encodeURIComponent(this.#bucket)
    }/o?uploadType=media&name=${encodeURIComponent(this.#prefix + key)}`;
    const response = await this.#send("POST", url, `put ${key}`, bytes);
    await this.#expectOk(response, `put ${key}`);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    validateKey(key);
    const response = await this.#send("GET", `${this.#objectUrl(key)}?alt=media`, `get ${key}`);
    if (response.status === 404) {
      const error = await this.#error(response, `get ${key}`);
      if (error.code === "bucket_not_found") throw error;
      return undefined;
    }
    await this.#expectOk(response, `get ${key}`, false);
    try {
      return new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      throw toStorageError(error, `cannot get ${key} from ${this.description}`);
    }
  }

  async list(prefix: string): Promise<string[]> {
    return (await this.listInfo(prefix)).map((o) => o.key);
  }

  async listInfo(prefix: string): Promise<ObjectInfo[]> {
    validatePrefix(prefix);
    const keys: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const query = new URLSearchParams({
        prefix: this.#prefix + prefix,
        maxResults: String(this.#pageSize),
        fields: "items(name,size,updated),nextPageToken",
      });
      if (token !== undefined) query.set("pageToken", token);
      const response = await this.#send("GET", `${this.#bucketUrl()}/o?${query}`, `list ${prefix}`);
      await this.#expectOk(response, `list ${prefix}`, false);
      let page: { items?: { name?: unknown; size?: unknown; updated?: unknown }[]; nextPageToken?: unknown };
      try {
        page = await response.json();
      } catch (error) {
        throw toStorageError(error, `cannot list ${prefix} in ${this.description}`);
      }
      for (const item of page.items ?? []) {
        // A bucket may hold names we could never have written; they are not ours to list.
        if (typeof item.name === "string" && item.name.startsWith(this.#prefix) && !item.name.endsWith("/")) {
          keys.push({
            key: item.name.slice(this.#prefix.length),
            // The JSON API writes the size (a uint64) as a string.
            size: Number(item.size ?? NaN),
            modifiedMs: typeof item.updated === "string" ? Date.parse(item.updated) : NaN,
          });
        }
      }
      token = typeof page.nextPageToken === "string" && page.nextPageToken !== ""
        ? page.nextPageToken
        : undefined;
    } while (token !== undefined);
    return keys.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    const response = await this.#send("DELETE", this.#objectUrl(key), `delete ${key}`);
    if (response.status === 404) {
      const error = await this.#error(response, `delete ${key}`);
      if (error.code === "bucket_not_found") throw error;
      return;
    }
    await this.#expectOk(response, `delete ${key}`);
  }

  async check(): Promise<void> {
    // Listing one name proves the bucket exists and the credentials may list it, at one class A request.
    const response = await this.#send(
      "GET",
      `${this.#bucketUrl()}/o?maxResults=1&fields=nextPageToken`,
      "check",
    );
    await this.#expectOk(response, "check");
  }

  #bucketUrl(): string {
    return `${this.#api}/storage/v1/b/${encodeURIComponent(this.#bucket)}`;
  }

  /** The JSON API takes the whole object name as one path segment: '/' is encoded too. */
  #objectUrl(key: string): string {
    return `${this.#bucketUrl()}/o/${encodeURIComponent(this.#prefix + key)}`;
  }

  async #send(method: string, url: string, what: string, body?: Uint8Array): Promise<Response> {
    let authorization: string | undefined;
    try {
      authorization = await this.#token?.();
    } catch (error) {
      // A refused exchange (4xx but 408/429) means bad credentials; a network error or a 5xx may pass.
      throw new StorageError(
        `cannot ${what} on ${this.description}: no access token: ${(error as Error).message}`,
        {
          retryable: error instanceof TokenError
            ? isRetryableStatus(error.status)
            : isRetryableStorageError(error),
          code: "token",
          cause: error,
        },
      );
    }
    const headers: Record<string, string> = {};
    if (authorization !== undefined) headers.authorization = authorization;
    if (body !== undefined) headers["content-type"] = "application/octet-stream";
    try {
      return await this.#fetch(url, {
        method,
        headers,
        body: body as Uint8Array<ArrayBuffer> | undefined,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw toStorageError(error, `cannot ${what} on ${this.description}`);
    }
  }

  /** Consumes the body; throws a classified StorageError unless the status is 2xx. */
  async #expectOk(response: Response, what: string, drain = true): Promise<void> {
    if (response.ok) {
      if (drain) await response.body?.cancel();
      return;
    }
    throw await this.#error(response, what);
  }

  async #error(response: Response, what: string): Promise<StorageError> {
    const text = await readBoundedText(response, MAX_ERROR_BODY);
    let message = text.slice(0, 300);
    let reason: string | undefined;
    try {
      const parsed = JSON.parse(text)?.error;
      if (typeof parsed?.message === "string") message = parsed.message;
      if (typeof parsed?.errors?.[0]?.reason === "string") reason = parsed.errors[0].reason;
    } catch {
      // Not JSON (a proxy's page): the status and the start of the text say it.
    }
    // GCS answers 404 for a missing bucket and a missing object alike; only the message tells them apart.
    const code = response.status === 404 && /bucket/i.test(message)
      ? "bucket_not_found"
      : reason ?? `http_${response.status}`;
    return new StorageError(
      `cannot ${what} on ${this.description}: HTTP ${response.status} ${message}`.trimEnd(),
      {
        retryable: isRetryableStatus(response.status),
        code,
      },
    );
  }
}
