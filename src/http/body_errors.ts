/**
 * The two request-body errors that are not plain undecodable input (that one is a `SyntaxError`):
 * a coding we do not speak, and a body that decodes to more than the limit. They live apart from
 * `body.ts` so the snappy and LZ4 decoders can throw them without an import cycle.
 *
 * @module
 */

/** The `Content-Encoding` names a coding this server does not decode: answer 400. */
export class UnsupportedEncodingError extends Error {
  /** The header value as received. */
  readonly encoding: string;

  constructor(encoding: string, message = `unsupported Content-Encoding: ${JSON.stringify(encoding)}`) {
    super(message);
    this.name = "UnsupportedEncodingError";
    this.encoding = encoding;
  }
}

/** The body (after decompression) is larger than allowed: answer 413. */
export class BodyTooLargeError extends RangeError {
  /** The limit in bytes that was exceeded. */
  readonly limit: number;

  constructor(limit: number, message = `request body exceeds the limit of ${limit} bytes`) {
    super(message);
    this.name = "BodyTooLargeError";
    this.limit = limit;
  }
}
