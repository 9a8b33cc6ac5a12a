/**
 * Snappy decoding, written from the format descriptions (google/snappy `format_description.txt`
 * and `framing_format.txt`): the raw block format, and the framing format that wraps blocks in
 * CRC-checked chunks. Lengths read from the input are untrusted: they are checked against the
 * caller's limit and against what the input could possibly expand to before anything is allocated.
 *
 * @module
 */

import { BodyTooLargeError } from "../http/body_errors.ts";
import { copyLiterals, copyMatch } from "./match_copy.ts";
import { crc32c } from "./crc32c.ts";

/** The framing format's stream identifier chunk: type 0xff, length 6, "sNaPpY". */
const STREAM_IDENTIFIER = [0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59];

/** The framing format caps each chunk's uncompressed data at 64 KiB. */
const MAX_FRAMED_CHUNK = 65536;

/** Best case for the encoder: a 3-byte copy element (2-byte offset) yields 64 bytes. */
const MAX_EXPANSION = 64 / 3;

function invalid(problem: string): SyntaxError {
  return new SyntaxError(`invalid snappy data: ${problem}`);
}

/** True when `input` starts with the framing format's stream identifier. */
export function isSnappyFramed(input: Uint8Array): boolean {
  if (input.length < STREAM_IDENTIFIER.length) return false;
  for (let i = 0; i < STREAM_IDENTIFIER.length; i++) if (input[i] !== STREAM_IDENTIFIER[i]) return false;
  return true;
}

/**
 * Decodes snappy data in either format: framed when it starts with the stream identifier, else a
 * raw block. Throws `SyntaxError` for invalid data and `BodyTooLargeError` when the decoded size
 * would exceed `maxBytes`.
 */
export function decodeSnappy(input: Uint8Array, maxBytes: number): Uint8Array {
  return isSnappyFramed(input) ? decodeSnappyFramed(input, maxBytes) : decodeSnappyBlock(input, maxBytes);
}

/** Reads the block's varint length preamble: [declared length, position after it]. */
function readPreamble(input: Uint8Array): [number, number] {
  let length = 0;
  let pos = 0;
  for (let shift = 0;; shift += 7) {
    if (pos >= input.length) throw invalid("truncated length preamble");
    const b = input[pos++];
    if (shift === 28 && b > 0x0f) throw invalid("length preamble exceeds 32 bits");
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [length, pos];
  }
}

function checkPlausible(declared: number, compressed: number): void {
  if (declared > Math.floor(compressed * MAX_EXPANSION)) {
    throw invalid(`declared length ${declared} is impossible for ${compressed} bytes of compressed data`);
  }
}

/**
 * Decodes one raw snappy block (varint length preamble, then literal and copy elements). Throws
 * `SyntaxError` for invalid data, `BodyTooLargeError` when the declared length exceeds `maxBytes`.
 */
export function decodeSnappyBlock(input: Uint8Array, maxBytes: number): Uint8Array {
  const [length, start] = readPreamble(input);
  if (length > maxBytes) throw new BodyTooLargeError(maxBytes);
  checkPlausible(length, input.length - start);
  const out = new Uint8Array(length);
  decodeElements(input, start, out, 0, length);
  return out;
}

/**
 * Decodes the elements of `input[pos..]` into `out[start, start + length)`, which must come out
 * exactly full. Copies may reach back to `start`, not before.
 */
function decodeElements(
  input: Uint8Array,
  pos: number,
  out: Uint8Array,
  start: number,
  length: number,
): void {
  const n = input.length;
  let op = 0;
  if (start > 0) out = out.subarray(start, start + length);
  while (pos < n) {
    const tag = input[pos++];
    const kind = tag & 3;
    if (kind === 0) {
      let len = tag >>> 2;
      if (len >= 60) {
        const extra = len - 59;
        if (pos + extra > n) throw invalid("truncated literal length");
        len = input[pos] | (extra > 1 ? input[pos + 1] << 8 : 0) | (extra > 2 ? input[pos + 2] << 16 : 0);
        if (extra > 3) len += input[pos + 3] * 0x1000000;
        pos += extra;
      }
      len += 1;
      if (len > n - pos) throw invalid("literal runs past the end of the input");
      if (len > length - op) throw invalid("data is longer than its declared length");
      copyLiterals(out, op, input, pos, len);
      pos += len;
      op += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      if (pos >= n) throw invalid("truncated copy element");
      len = 4 + ((tag >>> 2) & 7);
      offset = ((tag >>> 5) << 8) | input[pos++];
    } else if (kind === 2) {
      if (pos + 2 > n) throw invalid("truncated copy element");
      len = 1 + (tag >>> 2);
      offset = input[pos] | (input[pos + 1] << 8);
      pos += 2;
    } else {
      if (pos + 4 > n) throw invalid("truncated copy element");
      len = 1 + (tag >>> 2);
      offset = (input[pos] | (input[pos + 1] << 8) | (input[pos + 2] << 16) | (input[pos + 3] << 24)) >>> 0;
      pos += 4;
    }
    if (offset === 0 || offset > op) throw invalid(`copy offset ${offset} at output position ${op}`);
    if (len > length - op) throw invalid("data is longer than its declared length");
    copyMatch(out, op, offset, len);
    op += len;
  }
  if (op !== length) throw invalid(`data is shorter (${op} bytes) than its declared length ${length}`);
}

/** The framing format's CRC mask, so that CRCs of data containing CRCs stay well distributed. */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/**
 * Decodes the snappy framing format: a stream identifier, then compressed (0x00) and uncompressed
 * (0x01) chunks whose masked CRC-32C is verified; padding and reserved skippable chunks
 * (0x80-0xfe) are skipped; reserved unskippable chunks (0x02-0x7f) are an error. Concatenated
 * streams (a repeated identifier) are accepted.
 */
export function decodeSnappyFramed(input: Uint8Array, maxBytes: number): Uint8Array {
  return decodeFramedCounted(input, maxBytes).output;
}

/**
 * {@link decodeSnappyFramed} with the bytes its output buffer allocated, for tests. Chunks decode
 * straight into one buffer that grows geometrically, so a stream of tiny or empty chunks costs no
 * object per chunk and no more than a small multiple of its output in copying.
 */
export function decodeFramedCounted(
  input: Uint8Array,
  maxBytes: number,
): { output: Uint8Array; allocated: number } {
  const n = input.length;
  let out = new Uint8Array(Math.min(maxBytes, Math.max(4096, input.length * 2)));
  let allocated = out.length;
  const reserve = (needed: number) => {
    if (needed <= out.length) return;
    const grown = new Uint8Array(Math.min(maxBytes, Math.max(needed, 2 * out.length)));
    grown.set(out.subarray(0, total));
    allocated += grown.length;
    out = grown;
  };
  let total = 0;
  let pos = 0;
  let identified = false;
  while (pos < n) {
    if (n - pos < 4) throw invalid("truncated chunk header");
    const type = input[pos];
    const len = input[pos + 1] | (input[pos + 2] << 8) | (input[pos + 3] << 16);
    pos += 4;
    if (len > n - pos) throw invalid(`chunk of ${len} bytes runs past the end of the input`);
    const data = input.subarray(pos, pos + len);
    pos += len;
    if (type === 0xff) {
      if (!isSnappyFramed(input.subarray(pos - len - 4, pos))) throw invalid("bad stream identifier");
      identified = true;
      continue;
    }
    if (!identified) throw invalid("framed stream does not start with the stream identifier");
    if (type >= 0x80) continue; // padding (0xfe) and reserved skippable chunks
    if (type > 0x01) throw invalid(`reserved unskippable chunk type 0x${type.toString(16)}`);
    if (len < 4) throw invalid("chunk too short for its checksum");
    const expected = (data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)) >>> 0;
    const payload = data.subarray(4);
    let length: number;
    if (type === 0x00) {
      const [declared, start] = readPreamble(payload);
      length = declared;
      if (length > MAX_FRAMED_CHUNK) throw invalid(`chunk declares ${length} bytes, more than 65536`);
      if (length > maxBytes - total) throw new BodyTooLargeError(maxBytes);
      checkPlausible(length, payload.length - start);
      reserve(total + length);
      decodeElements(payload, start, out, total, length);
    } else {
      length = payload.length;
      if (length > MAX_FRAMED_CHUNK) throw invalid("uncompressed chunk larger than 65536 bytes");
      if (length > maxBytes - total) throw new BodyTooLargeError(maxBytes);
      reserve(total + length);
      out.set(payload, total);
    }
    if (maskedCrc32c(out.subarray(total, total + length)) !== expected) {
      throw invalid("chunk checksum mismatch");
    }
    total += length;
  }
  if (!identified) throw invalid("empty framed stream");
  // A buffer much larger than its content is trimmed, so the spare room is not kept alive with it.
  const output = out.length - total > total / 8 ? out.slice(0, total) : out.subarray(0, total);
  return { output, allocated };
}
