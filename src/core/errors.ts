/**
 * The one error the core raises for bad input: it names the signal, the field path and the problem,
 * so a client can find what to fix ("cannot decode logs request: field
 * resourceLogs[0].scopeLogs[1].logRecords[3].traceId: must be 16 bytes, got 5").
 *
 * Messages are small whatever the input: quoted input goes through `quote` (at most
 * `MAX_QUOTED_CHARS` characters, then an ellipsis and the original length), and a whole message is cut
 * at `MAX_MESSAGE_CHARS`, so a hostile request cannot buy a large error response.
 *
 * @module
 */

/** Quoted input is cut after this many characters (`quote`). */
export const MAX_QUOTED_CHARS = 128;
/** A message, and each of a DecodeError's problem and path, is cut after this many characters. */
export const MAX_MESSAGE_CHARS = 1024;

/**
 * A value of the input as it appears in a message: strings JSON-quoted and cut after
 * `MAX_QUOTED_CHARS` characters ("…" and the original length follow); numbers and booleans as they
 * are; arrays and objects named, never serialised (they may be huge).
 */
export function quote(v: unknown): string {
  if (typeof v === "string") {
    if (v.length <= MAX_QUOTED_CHARS) return JSON.stringify(v);
    return `${JSON.stringify(v.slice(0, MAX_QUOTED_CHARS))}… (${v.length} characters)`;
  }
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  switch (typeof v) {
    case "number":
    case "boolean":
    case "bigint":
    case "undefined":
      return String(v);
    case "object":
      return "an object";
    default:
      return `a ${typeof v}`;
  }
}

/** Bytes of UTF-8 decoded for `quoteUtf8`: enough for MAX_QUOTED_CHARS characters of any width. */
const QUOTE_BYTES = MAX_QUOTED_CHARS * 4;
const decoder = new TextDecoder();

/** `quote` of UTF-8 bytes `buf[start, end)`, decoding only the part that is shown. */
export function quoteUtf8(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= MAX_QUOTED_CHARS) return JSON.stringify(decoder.decode(buf.subarray(start, end)));
  const head = decoder.decode(buf.subarray(start, start + Math.min(n, QUOTE_BYTES)));
  if (n <= QUOTE_BYTES && head.length <= MAX_QUOTED_CHARS) return JSON.stringify(head);
  return `${JSON.stringify(head.slice(0, MAX_QUOTED_CHARS))}… (${n} bytes)`;
}

/** `text` cut to at most `max` characters (an ellipsis and the original length mark the cut). */
export function capText(text: string, max = MAX_MESSAGE_CHARS): string {
  if (text.length <= max) return text;
  const note = `… (${text.length} characters)`;
  return text.slice(0, Math.max(0, max - note.length)) + note;
}

/** Undecodable or invalid OTLP input. A `SyntaxError`, so callers map it to 400 without guessing. */
export class DecodeError extends SyntaxError {
  /** Field path from the request root, e.g. `resourceLogs[0].scopeLogs[1].logRecords[3].traceId`. */
  path: string;
  /** What is wrong, without the path. */
  readonly problem: string;
  signal = "";

  constructor(problem: string, path = "") {
    super("");
    this.name = "DecodeError";
    this.problem = capText(problem);
    this.path = capText(path);
    this.refresh();
  }

  /** Adds an outer path segment (decoders rethrow through each level). */
  within(segment: string): this {
    this.path = capText(
      this.path ? (this.path.startsWith("[") ? segment + this.path : `${segment}.${this.path}`) : segment,
    );
    this.refresh();
    return this;
  }

  /** Names the signal: the message becomes "cannot decode logs request: …". */
  forSignal(signal: string): this {
    this.signal = signal;
    this.refresh();
    return this;
  }

  private refresh(): void {
    const where = this.path ? `field ${this.path}: ` : "";
    this.message = capText(
      this.signal
        ? `cannot decode ${this.signal} request: ${where}${this.problem}`
        : `${where}${this.problem}`,
    );
  }
}

/**
 * A broken invariant inside the server (a bug), raised where going on would write a broken file: not
 * a SyntaxError or RangeError, so it is answered with 500 and reported, never blamed on the client.
 */
export class InternalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InternalError";
  }
}

/** Runs `fn`, prefixing any DecodeError's path with `segment`. */
export function within<T>(segment: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DecodeError) throw e.within(segment);
    throw e;
  }
}
