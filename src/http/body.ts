/**
 * Reads a request body and undoes its `Content-Encoding`, with the size limit applied to the
 * decoded bytes (a 10 KB gzip can inflate to 10 MB). Reading stops, and the stream is cancelled,
 * the moment the decoded size passes the limit, so a compression bomb costs at most about the limit
 * plus one decoded piece. Web-standard APIs only (`DecompressionStream`, `ReadableStream`), plus
 * our own zstd, snappy and LZ4 decoders, so it runs on Deno, Bun and workerd alike.
 *
 * @module
 */

import { concatBytes } from "../core/parquet/byte_sink.ts";
import { adler32 } from "../codecs/adler32.ts";
import { BodyTooLargeError, UnsupportedEncodingError } from "./body_errors.ts";
import { decodeLz4 } from "../codecs/lz4.ts";
import { decodeSnappy } from "../codecs/snappy.ts";
import { ZstdStreamDecoder } from "../codecs/zstd.ts";

export { BodyTooLargeError, UnsupportedEncodingError };

/** The content codings `readBody` decodes. */
export type ContentCoding = "identity" | "gzip" | "deflate" | "zstd" | "snappy" | "lz4";

const CODINGS: Record<string, ContentCoding> = {
  identity: "identity",
  gzip: "gzip",
  "x-gzip": "gzip",
  deflate: "deflate",
  zlib: "deflate",
  zstd: "zstd",
  snappy: "snappy",
  "x-snappy-framed": "snappy",
  lz4: "lz4",
};

/**
 * Parses a `Content-Encoding` header value: case-insensitive, a comma-separated list in the order
 * the codings were applied. `identity` entries are ignored; at most one other coding is supported.
 * Absent or empty means `identity`. Throws `UnsupportedEncodingError` for anything else.
 */
export function parseContentEncoding(value: string | null | undefined): ContentCoding {
  if (value == null) return "identity";
  let found: ContentCoding = "identity";
  for (const raw of value.split(",")) {
    const name = raw.trim().toLowerCase();
    if (name === "") continue;
    const coding = Object.hasOwn(CODINGS, name) ? CODINGS[name] : undefined; // not "constructor"
    if (coding === undefined) throw new UnsupportedEncodingError(value);
    if (coding === "identity") continue;
    if (found !== "identity") {
      throw new UnsupportedEncodingError(
        value,
        `unsupported Content-Encoding ${JSON.stringify(value)}: more than one coding`,
      );
    }
    found = coding;
  }
  return found;
}

/** Options of {@link readBody}. */
export interface ReadBodyOptions {
  /** The `Content-Encoding` header value. Default: none (identity). */
  encoding?: string | null;
  /**
   * Limit on the decoded body in bytes; more → `BodyTooLargeError`. Compressed input is bounded
   * too, by `maxBytes + maxBytes / 16 + 1 KiB` (room for incompressible data's framing overhead).
   */
  maxBytes: number;
  /**
   * Abandons the read (say, a trickling upload past its deadline): the stream is cancelled and the
   * promise rejects with `signal.reason`. Default: none.
   */
  signal?: AbortSignal;
  /**
   * A runtime's one-call inflater (the server passes `node:zlib`'s): gzip and deflate bodies are then read
   * whole (at most the compressed bound) and inflated at once, ~1.7x faster than `DecompressionStream` in
   * bounded pieces. Default: none (the web-standard stream, which also stops reading a bomb early).
   */
  inflateSync?: InflateSync;
  /**
   * Called with the size of each piece of the body as it arrives off the wire, before it is kept. It may
   * throw (the in-flight budget refusing it, say): reading stops, the stream is cancelled and `readBody`
   * rejects with that error. Default: none.
   */
  onRead?: (bytes: number) => void;
  /**
   * Called with the size of each piece of decoded output of a compressed body as it is produced (whole
   * bodies, as snappy, lz4 and `inflateSync` decode them, in one call); may throw like `onRead`. Not called
   * for identity bodies, whose decoded bytes are the ones `onRead` saw. Default: none.
   */
  onDecoded?: (bytes: number) => void;
}

/**
 * Inflates `data` in one call: gzip (members back to back), zlib (RFC 1950) or raw deflate. Throws
 * `BodyTooLargeError` past `maxBytes` of output (without producing more than that) and `SyntaxError` for
 * anything that does not inflate completely, including bytes after the end of the data.
 */
export type InflateSync = (
  format: "gzip" | "deflate" | "deflate-raw",
  data: Uint8Array,
  maxBytes: number,
) => Uint8Array;

/**
 * Reads and decodes a request body, stopping (and cancelling the stream) as soon as the decoded
 * size exceeds `maxBytes`. A `null` or zero-length body decodes to empty bytes whatever the coding.
 *
 * Rejects with `UnsupportedEncodingError` (400) for an unknown coding, `BodyTooLargeError` (413)
 * over the limit, `SyntaxError` (400) for data that does not decompress ("cannot decompress gzip
 * body: …"), the signal's reason when aborted, and the stream's own error if reading fails.
 */
export async function readBody(
  body: ReadableStream<Uint8Array> | null,
  options: ReadBodyOptions,
): Promise<Uint8Array> {
  const { maxBytes, signal } = options;
  if (!(maxBytes >= 0)) throw new RangeError(`maxBytes must be a non-negative number, got ${maxBytes}`);
  let coding: ContentCoding;
  try {
    coding = parseContentEncoding(options.encoding);
  } catch (e) {
    body?.cancel(e).catch(ignore);
    throw e;
  }
  if (body === null) return new Uint8Array(0);
  const limit = coding === "identity" ? maxBytes : maxBytes + Math.floor(maxBytes / 16) + 1024;
  // A callback's own error (a refused budget) must reach the caller as it is, not as a decoding error.
  let refused: { error: unknown } | undefined;
  const guard = (callback: ((bytes: number) => void) | undefined) =>
    callback === undefined ? ignore : (bytes: number) => {
      try {
        callback(bytes);
      } catch (error) {
        refused ??= { error };
        throw error;
      }
    };
  const input = new BodyInput(body, maxBytes, limit, signal, guard(options.onRead));
  const decoded = guard(options.onDecoded);
  try {
    switch (coding) {
      case "identity":
        return await input.readAll();
      case "gzip":
      case "deflate": {
        if (!options.inflateSync) return await inflate(coding, input, maxBytes, signal, decoded);
        const compressed = await input.readAll();
        if (compressed.length === 0) return compressed;
        let format: "gzip" | "deflate" | "deflate-raw" = "gzip";
        if (coding === "deflate") {
          if (compressed.length < 2) throw new SyntaxError("cannot decompress deflate body: truncated");
          format = isZlibHeader(compressed[0], compressed[1]) ? "deflate" : "deflate-raw";
        }
        let out: Uint8Array;
        try {
          out = options.inflateSync(format, compressed, maxBytes);
        } catch (e) {
          throw decompressError(coding, e);
        }
        decoded(out.length);
        return out;
      }
      case "zstd":
        return await unzstd(input, maxBytes, decoded);
      case "snappy":
      case "lz4": {
        const compressed = await input.readAll();
        if (compressed.length === 0) return compressed;
        const out = decodeWhole(coding, compressed, maxBytes);
        decoded(out.length);
        return out;
      }
    }
  } catch (e) {
    input.cancel(e);
    throw refused ? refused.error : e;
  } finally {
    input.release();
  }
}

function ignore(): void {}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function decompressError(coding: string, e: unknown): unknown {
  if (e instanceof BodyTooLargeError) return e;
  return new SyntaxError(`cannot decompress ${coding} body: ${describe(e)}`, { cause: e });
}

/** The raw body: chunk by chunk, bounded, abortable. */
class BodyInput {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #maxBytes: number;
  readonly #limit: number;
  readonly #signal: AbortSignal | undefined;
  readonly #aborted: Promise<never> | undefined;
  readonly #onAbort: (() => void) | undefined;
  readonly #onRead: (bytes: number) => void;
  #read = 0;
  #done = false;

  constructor(
    body: ReadableStream<Uint8Array>,
    maxBytes: number,
    limit: number,
    signal: AbortSignal | undefined,
    onRead: (bytes: number) => void,
  ) {
    this.#reader = body.getReader();
    this.#onRead = onRead;
    this.#maxBytes = maxBytes;
    this.#limit = limit;
    this.#signal = signal;
    if (signal) {
      let reject!: (reason: unknown) => void;
      this.#aborted = new Promise<never>((_, r) => reject = r);
      this.#aborted.catch(ignore); // rejections are consumed through race(); this one may go unseen
      this.#onAbort = () => reject(signal.reason);
      if (signal.aborted) this.#onAbort();
      else signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /** Settles like `promise`, or rejects with the signal's reason as soon as it aborts. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.#aborted === undefined) return promise;
    if (this.#signal!.aborted) {
      promise.catch(ignore);
      return this.#aborted;
    }
    return Promise.race([promise, this.#aborted]);
  }

  /** The next non-empty chunk, or `undefined` at the end. */
  async next(): Promise<Uint8Array | undefined> {
    while (!this.#done) {
      const { done, value } = await this.race(this.#reader.read());
      if (done) {
        this.#done = true;
        return undefined;
      }
      if (!(value instanceof Uint8Array)) throw new TypeError("request body chunks must be Uint8Array");
      if (value.length === 0) continue;
      this.#read += value.length;
      if (this.#read > this.#limit) {
        throw new BodyTooLargeError(
          this.#maxBytes,
          this.#limit === this.#maxBytes
            ? undefined
            : `compressed request body exceeds ${this.#limit} bytes (the limit is ${this.#maxBytes} bytes decoded)`,
        );
      }
      this.#onRead(value.length);
      return value;
    }
    return undefined;
  }

  /** Everything that is left, as one array (one copy at the end). */
  async readAll(): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (let c = await this.next(); c !== undefined; c = await this.next()) {
      chunks.push(c);
      total += c.length;
    }
    return concatBytes(chunks, total);
  }

  /** Stops the upload; never waits, never throws. */
  cancel(reason: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#reader.cancel(reason).catch(ignore);
  }

  release(): void {
    if (this.#onAbort) this.#signal!.removeEventListener("abort", this.#onAbort);
  }
}

function decodeWhole(coding: "snappy" | "lz4", compressed: Uint8Array, maxBytes: number): Uint8Array {
  try {
    return coding === "snappy" ? decodeSnappy(compressed, maxBytes) : decodeLz4(compressed, maxBytes);
  } catch (e) {
    throw decompressError(coding, e);
  }
}

async function unzstd(
  input: BodyInput,
  maxBytes: number,
  onDecoded: (bytes: number) => void,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const decoder = new ZstdStreamDecoder(maxBytes, (c) => {
    chunks.push(c);
    onDecoded(c.length);
  });
  let any = false;
  for (let c = await input.next(); c !== undefined; c = await input.next()) {
    any = true;
    try {
      decoder.push(c);
      // A few bytes can decode to megabytes: let other requests run between the decoder's pieces.
      while (decoder.paused) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        decoder.resume();
      }
    } catch (e) {
      throw decompressError("zstd", e);
    }
  }
  if (!any) return new Uint8Array(0);
  try {
    decoder.finish();
  } catch (e) {
    throw decompressError("zstd", e);
  }
  return concatBytes(chunks, decoder.total);
}

/** zlib (RFC 1950) header: CM 8, window ≤ 32 KiB, and the header checksum. */
function isZlibHeader(b0: number, b1: number): boolean {
  return (b0 & 0x0f) === 8 && b0 >>> 4 <= 7 && ((b0 << 8) | b1) % 31 === 0;
}

// Deno's DecompressionStream inflates each written piece in one go: 64 KiB of a gzip bomb would
// become 64 MB at once. Pieces sized to the remaining budget over deflate's worst ratio (~1032:1)
// keep each decoded piece near what may still be accepted.
const DEFLATE_MAX_RATIO = 1032;
const MIN_PIECE = 256;
const MAX_PIECE = 65536;

async function inflate(
  coding: "gzip" | "deflate",
  input: BodyInput,
  maxBytes: number,
  signal: AbortSignal | undefined,
  onDecoded: (bytes: number) => void,
): Promise<Uint8Array> {
  let pending = await input.next();
  if (pending === undefined) return new Uint8Array(0);
  let format: CompressionFormat = "gzip";
  if (coding === "deflate") {
    // "deflate" means zlib-wrapped (RFC 9110), but some clients send raw deflate: sniff.
    while (pending.length < 2) {
      const more = await input.next();
      if (more === undefined) break;
      pending = concatBytes([pending, more], pending.length + more.length);
    }
    // Nothing valid is shorter than 2 bytes; a 1-byte body also cannot be sniffed.
    if (pending.length < 2) throw new SyntaxError("cannot decompress deflate body: truncated");
    format = isZlibHeader(pending[0], pending[1]) ? "deflate" : "deflate-raw";
  }
  const zlib = format === "deflate";
  // Deno's DecompressionStream neither checks a zlib stream's Adler-32 nor notices one cut short,
  // so we check the trailer (the last 4 input bytes: trailing garbage is already refused) ourselves.
  let tail: Uint8Array = new Uint8Array(0);
  let adler = 1;

  const chunks: Uint8Array[] = [];
  let total = 0;
  let sourceError: unknown;
  let sourceFailed = false;
  const source = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        while (pending === undefined || pending.length === 0) {
          pending = await input.next();
          if (pending === undefined) {
            controller.close();
            return;
          }
        }
        const budget = (maxBytes - total) / DEFLATE_MAX_RATIO;
        const size = Math.max(MIN_PIECE, Math.min(MAX_PIECE, Math.ceil(budget)));
        const piece = pending.subarray(0, size);
        pending = pending.subarray(size);
        if (zlib) {
          tail = piece.length >= 4
            ? piece.subarray(piece.length - 4)
            : concatBytes([tail, piece], tail.length + piece.length).slice(-4);
        }
        controller.enqueue(piece);
      } catch (e) {
        sourceFailed = true;
        sourceError = e;
        controller.error(e);
      }
    },
    cancel(reason) {
      input.cancel(reason);
    },
  }, { highWaterMark: 0 });

  // Request bodies are never SharedArrayBuffer-backed, which is all `BufferSource` rules out.
  const decompressor = new DecompressionStream(format) as unknown as ReadableWritablePair<
    Uint8Array,
    Uint8Array
  >;
  const reader = source.pipeThrough(decompressor, { signal }).getReader();
  try {
    for (;;) {
      const { done, value } = await input.race(reader.read());
      if (done) break;
      total += value.length;
      if (total > maxBytes) throw new BodyTooLargeError(maxBytes);
      onDecoded(value.length);
      chunks.push(value);
      if (zlib) adler = adler32(value, adler);
    }
    if (
      zlib &&
      (tail.length < 4 || ((tail[0] << 24) | (tail[1] << 16) | (tail[2] << 8) | tail[3]) >>> 0 !== adler)
    ) {
      throw new Error("Adler-32 mismatch: corrupt or truncated zlib stream");
    }
  } catch (e) {
    reader.cancel(e).catch(ignore);
    if (sourceFailed) throw sourceError;
    if (signal?.aborted) throw signal.reason;
    throw decompressError(coding, e);
  }
  return concatBytes(chunks, total);
}
