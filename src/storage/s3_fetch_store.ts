import { type AwsCredentials, EMPTY_SHA256, sha256Hex, signV4, uriEncode } from "./aws_sigv4.ts";
import {
  isRetryableS3Error,
  normalizePrefix,
  type ObjectInfo,
  type ObjectStore,
  readBoundedText,
  StorageError,
  toStorageError,
  validateKey,
  validatePrefix,
} from "./object_store.ts";

/** Options of {@linkcode S3FetchStore}. */
export interface S3FetchStoreOptions extends AwsCredentials {
  bucket: string;
  /** Default: "us-east-1" (MinIO and s3rver accept it; R2 wants "auto"). */
  region?: string;
  /**
   * Service URL, e.g. "http://127.0.0.1:9000" or "https://<account>.r2.cloudflarestorage.com".
   * Default: `https://s3.<region>.amazonaws.com`.
   */
  endpoint?: string;
  /** Folder inside the bucket that every key is relative to. Default: "" (the bucket root). */
  prefix?: string;
  /**
   * Address the bucket as `<endpoint>/<bucket>/key` instead of `<bucket>.<endpoint host>/key`.
   * Default: true when `endpoint` is given (MinIO, R2, s3rver), false for AWS.
   */
  forcePathStyle?: boolean;
  /** Per-request deadline; a timeout is a retryable StorageError. Default: 30000 ms. */
  timeoutMs?: number;
  /** Keys asked for per ListObjectsV2 page (1..1000). Default: 1000. */
  listPageSize?: number;
  /** The fetch to use (a platform may pass its own). Default: globalThis.fetch. */
  fetch?: typeof fetch;
  /** Clock for request signatures. Default: () => new Date(). */
  now?: () => Date;
}

/** Upper bound on the bytes read from an error response, so a misbehaving endpoint cannot balloon memory. */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * S3 (and S3-compatible: R2, MinIO, GCS interop) over `fetch`, signed with SigV4 on Web Crypto. Needs no
 * `node:` module, so it runs on Deno Deploy and Workers. Credentials must be given: shared code never reads
 * the environment.
 */
export class S3FetchStore implements ObjectStore {
  readonly description: string;
  readonly #credentials: AwsCredentials;
  readonly #region: string;
  readonly #bucket: string;
  readonly #prefix: string;
  /** Base URL of the bucket's objects, ending with '/', path encoded. */
  readonly #base: URL;
  /** URL of the bucket itself (HeadBucket, ListObjectsV2): "/bucket" path-style, "/" virtual-host. */
  readonly #bucketUrl: URL;
  readonly #timeoutMs: number;
  readonly #pageSize: number;
  readonly #fetch: typeof fetch;
  readonly #now: () => Date;

  constructor(options: S3FetchStoreOptions) {
    if (!options.bucket) throw new RangeError("S3 bucket name is empty");
    if (!options.accessKeyId || !options.secretAccessKey) {
      throw new RangeError("S3 credentials missing: accessKeyId and secretAccessKey are required");
    }
    const pageSize = options.listPageSize ?? 1000;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      throw new RangeError(`listPageSize must be an integer in 1..1000, got ${pageSize}`);
    }
    this.#credentials = {
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      sessionToken: options.sessionToken,
    };
    this.#region = options.region ?? "us-east-1";
    this.#bucket = options.bucket;
    this.#prefix = normalizePrefix(options.prefix);
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#pageSize = pageSize;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#now = options.now ?? (() => new Date());

    const endpoint = new URL(options.endpoint ?? `https://s3.${this.#region}.amazonaws.com`);
    const pathStyle = options.forcePathStyle ?? options.endpoint !== undefined;
    const basePath = endpoint.pathname.replace(/\/+$/, "");
    this.#base = pathStyle
      ? new URL(`${endpoint.origin}${basePath}/${uriEncode(this.#bucket)}/`)
      : new URL(`${endpoint.protocol}//${this.#bucket}.${endpoint.host}${basePath}/`);
    this.#bucketUrl = pathStyle ? new URL(this.#base.href.slice(0, -1)) : new URL(this.#base);
    this.description = `s3://${this.#bucket}/${this.#prefix}` +
      (options.endpoint === undefined ? "" : ` (${endpoint.origin})`);
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    validateKey(key);
    const response = await this.#send("PUT", this.#objectUrl(key), {
      body: bytes,
      what: `put ${key}`,
      headers: { "content-type": "application/octet-stream" },
    });
    await this.#expectOk(response, `put ${key}`);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    validateKey(key);
    const response = await this.#send("GET", this.#objectUrl(key), { what: `get ${key}` });
    if (response.status === 404) {
      const { code, message } = await readError(response);
      if (code === undefined || code === "NoSuchKey") return undefined;
      throw this.#error(`get ${key}`, 404, code, message);
    }
    if (!response.ok) await this.#expectOk(response, `get ${key}`);
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
      const url = new URL(this.#bucketUrl);
      const query = [
        ["list-type", "2"],
        ["max-keys", String(this.#pageSize)],
        ["prefix", this.#prefix + prefix],
        ...(token === undefined ? [] : [["continuation-token", token]]),
      ];
      url.search = query.map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join("&");
      const response = await this.#send("GET", url, { what: `list ${prefix}` });
      if (!response.ok) await this.#expectOk(response, `list ${prefix}`);
      let xml: string;
      try {
        xml = await response.text();
      } catch (error) {
        throw toStorageError(error, `cannot list ${prefix} in ${this.description}`);
      }
      const page = parseListPage(xml);
      page.keys.forEach((key, i) => {
        // A bucket may hold keys we could never have written (e.g. "a//b"); they are not ours to list.
        if (!key.startsWith(this.#prefix)) return;
        keys.push({ key: key.slice(this.#prefix.length), size: page.sizes[i], modifiedMs: page.modified[i] });
      });
      if (page.truncated && page.nextToken === undefined) {
        throw new StorageError(`cannot list ${prefix} in ${this.description}: truncated page without token`, {
          retryable: false,
        });
      }
      token = page.truncated ? page.nextToken : undefined;
    } while (token !== undefined);
    return keys.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    const response = await this.#send("DELETE", this.#objectUrl(key), { what: `delete ${key}` });
    // S3 answers 204 for absent keys too; some compatibles answer 404, which means the same here.
    if (response.status === 404) {
      const { code, message } = await readError(response);
      if (code === undefined || code === "NoSuchKey") return;
      throw this.#error(`delete ${key}`, 404, code, message);
    }
    await this.#expectOk(response, `delete ${key}`);
  }

  async check(): Promise<void> {
    const response = await this.#send("HEAD", new URL(this.#bucketUrl), { what: "check" });
    await response.body?.cancel();
    if (response.ok) return;
    // HEAD responses carry no body, so the status alone names the problem.
    const code = response.status === 404
      ? "NoSuchBucket"
      : response.status === 403
      ? "AccessDenied"
      : undefined;
    throw this.#error("check", response.status, code, undefined);
  }

  #objectUrl(key: string): URL {
    const path = (this.#prefix + key).split("/").map(uriEncode).join("/");
    return new URL(path, this.#base);
  }

  async #send(
    method: string,
    url: URL,
    options: { what: string; body?: Uint8Array; headers?: Record<string, string> },
  ): Promise<Response> {
    try {
      const payloadHash = options.body === undefined ? EMPTY_SHA256 : await sha256Hex(options.body);
      const headers = await signV4(
        { method, url, headers: options.headers, payloadHash },
        this.#credentials,
        { region: this.#region, date: this.#now() },
      );
      return await this.#fetch(url, {
        method,
        headers,
        body: options.body as Uint8Array<ArrayBuffer> | undefined,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw toStorageError(error, `cannot ${options.what} on ${this.description}`);
    }
  }

  /** Consumes the body; throws a classified StorageError unless the status is 2xx. */
  async #expectOk(response: Response, what: string): Promise<void> {
    if (response.ok) {
      await response.body?.cancel();
      return;
    }
    const { code, message } = await readError(response);
    throw this.#error(what, response.status, code, message);
  }

  #error(what: string, status: number, code: string | undefined, message: string | undefined): StorageError {
    const detail = [code, message].filter((part) => part !== undefined).join(": ");
    return new StorageError(
      `cannot ${what} on ${this.description}: HTTP ${status}${detail === "" ? "" : ` ${detail}`}`,
      { retryable: isRetryableS3Error(status, code), code: code ?? `http_${status}` },
    );
  }
}

async function readError(response: Response): Promise<{ code?: string; message?: string }> {
  const text = await readBoundedText(response, MAX_ERROR_BODY);
  return { code: xmlText(text, "Code"), message: xmlText(text, "Message") };
}

/** One page of a ListObjectsV2 answer. */
export interface ListPage {
  keys: string[];
  /** `Size` of each key (NaN when absent). */
  sizes: number[];
  /** `LastModified` of each key, ms since the epoch (NaN when absent). */
  modified: number[];
  truncated: boolean;
  nextToken: string | undefined;
}

/**
 * Reads the few fields of a ListObjectsV2 body we need. A full XML parser is not available on every
 * platform (no DOMParser in Deno or Workers), and S3 writes these elements without attributes or CDATA.
 */
export function parseListPage(xml: string): ListPage {
  const keys: string[] = [], sizes: number[] = [], modified: number[] = [];
  for (const match of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const key = xmlText(match[1], "Key");
    if (key === undefined) continue;
    keys.push(key);
    sizes.push(Number(xmlText(match[1], "Size") ?? NaN));
    modified.push(Date.parse(xmlText(match[1], "LastModified") ?? ""));
  }
  return {
    keys,
    sizes,
    modified,
    truncated: xmlText(xml, "IsTruncated") === "true",
    nextToken: xmlText(xml, "NextContinuationToken"),
  };
}

function xmlText(xml: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  return match === null ? undefined : decodeXmlEntities(match[1]);
}

function decodeXmlEntities(text: string): string {
  return text.replace(/&(?:#x([0-9a-fA-F]+)|#(\d+)|(amp|lt|gt|quot|apos));/g, (_, hex, dec, name) => {
    if (hex !== undefined) return String.fromCodePoint(parseInt(hex, 16));
    if (dec !== undefined) return String.fromCodePoint(parseInt(dec, 10));
    return { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[name as "amp"];
  });
}
