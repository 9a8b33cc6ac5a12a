/**
 * LZ4 decoding, written from the format descriptions (lz4 `lz4_Frame_format.md` and
 * `lz4_Block_format.md`): the frame format (magic 0x184D2204; linked or independent blocks;
 * optional block and content checksums, xxHash32, verified when present; skippable frames), and
 * the raw block format as a fallback for bodies that do not start with a frame magic.
 * Sizes read from the input are untrusted: checked against the caller's limit and against what the
 * input could possibly expand to before anything is allocated.
 *
 * @module
 */

import { BodyTooLargeError } from "../http/body_errors.ts";
import { copyLiterals, copyMatch } from "./match_copy.ts";
import { xxh32 } from "./xxh32.ts";

const FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MAGIC = 0x184d2a50; // low 4 bits are free
/** Best case for an encoder: every extra match-length byte of 255 yields 255 more bytes. */
const MAX_EXPANSION = 255;

function invalid(problem: string): SyntaxError {
  return new SyntaxError(`invalid lz4 data: ${problem}`);
}

function u32(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

/**
 * An output buffer that grows geometrically (at least doubling) up to `maxBytes`, then refuses. Sizes
 * read from the input are hints: they may make the next growth larger, never an exact reallocation,
 * so however many frames declare sizes, the bytes allocated and copied stay within a small multiple
 * of the output.
 */
class Output {
  buf: Uint8Array = new Uint8Array(0);
  length = 0;
  /** Bytes allocated and bytes copied by growth, for tests that assert the bound by counting. */
  allocated = 0;
  copied = 0;

  constructor(readonly maxBytes: number) {}

  /** Makes room for `needed` bytes in total; returns the (possibly new) buffer. */
  reserve(needed: number): Uint8Array {
    if (needed <= this.buf.length) return this.buf;
    if (needed > this.maxBytes) throw new BodyTooLargeError(this.maxBytes);
    const size = Math.min(this.maxBytes, Math.max(needed, this.buf.length * 2, 4096));
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.allocated += size;
    this.copied += this.length;
    this.buf = next;
    return next;
  }

  append(bytes: Uint8Array): void {
    this.reserve(this.length + bytes.length).set(bytes, this.length);
    this.length += bytes.length;
  }

  result(): Uint8Array {
    return this.length === this.buf.length ? this.buf : this.buf.subarray(0, this.length);
  }
}

/** True when `input` starts with an LZ4 frame (or skippable frame) magic number. */
export function isLz4Frame(input: Uint8Array): boolean {
  if (input.length < 4) return false;
  const magic = u32(input, 0);
  return magic === FRAME_MAGIC || (magic & 0xfffffff0) >>> 0 === SKIPPABLE_MAGIC;
}

/**
 * Decodes LZ4 data: a sequence of frames when it starts with a frame magic number, else one raw
 * block. Throws `SyntaxError` for invalid data and `BodyTooLargeError` when the decoded size would
 * exceed `maxBytes`.
 */
export function decodeLz4(input: Uint8Array, maxBytes: number): Uint8Array {
  return isLz4Frame(input) ? decodeLz4Frames(input, maxBytes) : decodeLz4Block(input, maxBytes);
}

/** Decodes one raw LZ4 block (no frame, no size header); its output size is only bounded by `maxBytes`. */
export function decodeLz4Block(input: Uint8Array, maxBytes: number): Uint8Array {
  const out = new Output(maxBytes);
  // A guess to avoid most regrowth; typical LZ4 ratios on telemetry are 2-5.
  out.reserve(Math.min(maxBytes, Math.max(4096, input.length * 4)));
  decodeBlock(input, 0, input.length, out, 0, Infinity);
  return out.result();
}

/** Decodes concatenated LZ4 frames (skippable frames are skipped). */
export function decodeLz4Frames(input: Uint8Array, maxBytes: number): Uint8Array {
  return decodeFramesInto(input, new Output(maxBytes)).result();
}

/** {@link decodeLz4Frames} with the output's growth counters, for tests. */
export function decodeLz4FramesCounted(
  input: Uint8Array,
  maxBytes: number,
): { output: Uint8Array; allocated: number; copied: number } {
  const out = decodeFramesInto(input, new Output(maxBytes));
  return { output: out.result(), allocated: out.allocated, copied: out.copied };
}

function decodeFramesInto(input: Uint8Array, out: Output): Output {
  const n = input.length;
  let pos = 0;
  while (pos < n) {
    if (n - pos < 4) throw invalid("truncated frame magic");
    const magic = u32(input, pos);
    if ((magic & 0xfffffff0) >>> 0 === SKIPPABLE_MAGIC) {
      if (n - pos < 8) throw invalid("truncated skippable frame");
      const size = u32(input, pos + 4);
      if (size > n - pos - 8) throw invalid("skippable frame runs past the end of the input");
      pos += 8 + size;
      continue;
    }
    if (magic !== FRAME_MAGIC) throw invalid(`bad frame magic 0x${magic.toString(16)}`);
    pos = decodeFrame(input, pos + 4, out);
  }
  return out;
}

/** Decodes one frame whose descriptor starts at `pos`; returns the position after the frame. */
function decodeFrame(input: Uint8Array, pos: number, out: Output): number {
  const n = input.length;
  if (n - pos < 3) throw invalid("truncated frame descriptor");
  const flg = input[pos];
  const bd = input[pos + 1];
  if (flg >>> 6 !== 1) throw invalid(`unsupported frame version ${flg >>> 6}`);
  if (flg & 0x02 || bd & 0x8f) throw invalid("reserved bits set in the frame descriptor");
  const independent = (flg & 0x20) !== 0;
  const blockChecksums = (flg & 0x10) !== 0;
  const hasContentSize = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  if (flg & 0x01) throw invalid("frames that need a dictionary are not supported");
  const sizeCode = (bd >>> 4) & 7;
  if (sizeCode < 4) throw invalid(`reserved block maximum size code ${sizeCode}`);
  const blockMax = 1 << (2 * sizeCode + 8); // 64 KiB, 256 KiB, 1 MiB, 4 MiB
  const descriptorLength = 2 + (hasContentSize ? 8 : 0);
  if (n - pos < descriptorLength + 1) throw invalid("truncated frame descriptor");
  const headerChecksum = input[pos + descriptorLength];
  if (((xxh32(input.subarray(pos, pos + descriptorLength)) >>> 8) & 0xff) !== headerChecksum) {
    throw invalid("frame descriptor checksum mismatch");
  }
  let contentSize = -1;
  if (hasContentSize) {
    contentSize = u32(input, pos + 2) + u32(input, pos + 6) * 2 ** 32;
  }
  pos += descriptorLength + 1;
  const frameStart = out.length;
  if (contentSize >= 0) {
    if (contentSize > out.maxBytes - frameStart) throw new BodyTooLargeError(out.maxBytes);
    if (contentSize > (n - pos) * MAX_EXPANSION) {
      throw invalid(`declared content size ${contentSize} is impossible for ${n - pos} bytes of input`);
    }
    out.reserve(frameStart + contentSize); // a hint: growth stays geometric
  }
  for (;;) {
    if (n - pos < 4) throw invalid("truncated block header");
    const word = u32(input, pos);
    pos += 4;
    if (word === 0) break; // EndMark
    const stored = word >= 0x80000000;
    const size = word & 0x7fffffff;
    if (size > blockMax) throw invalid(`block of ${size} bytes exceeds the frame's maximum ${blockMax}`);
    if (n - pos < size + (blockChecksums ? 4 : 0)) throw invalid("truncated block");
    const end = pos + size;
    if (blockChecksums && xxh32(input.subarray(pos, end)) !== u32(input, end)) {
      throw invalid("block checksum mismatch");
    }
    if (stored) {
      out.append(input.subarray(pos, end));
    } else {
      const blockStart = out.length;
      decodeBlock(input, pos, end, out, independent ? blockStart : frameStart, blockStart + blockMax);
    }
    pos = end + (blockChecksums ? 4 : 0);
  }
  const produced = out.length - frameStart;
  if (contentSize >= 0 && produced !== contentSize) {
    throw invalid(`frame decodes to ${produced} bytes but declares ${contentSize}`);
  }
  if (contentChecksum) {
    if (n - pos < 4) throw invalid("truncated content checksum");
    if (xxh32(out.buf.subarray(frameStart, out.length)) !== u32(input, pos)) {
      throw invalid("content checksum mismatch");
    }
    pos += 4;
  }
  return pos;
}

/**
 * Decodes the block `src[sp, end)` onto `out`. Matches may not reach before `windowStart` (the
 * block's own start for independent blocks, the frame's start for linked ones); the block may not
 * decode past `limit` (the frame's block maximum).
 */
function decodeBlock(
  src: Uint8Array,
  sp: number,
  end: number,
  out: Output,
  windowStart: number,
  limit: number,
): void {
  let buf = out.buf;
  let op = out.length;
  for (;;) {
    if (sp >= end) throw invalid("block does not end with a literals-only sequence");
    const token = src[sp++];
    let literals = token >>> 4;
    if (literals === 15) {
      for (;;) {
        if (sp >= end) throw invalid("truncated literal length");
        const b = src[sp++];
        literals += b;
        if (b !== 255) break;
      }
    }
    if (literals > end - sp) throw invalid("literals run past the end of the block");
    if (op + literals > limit) throw invalid("block decodes to more than the frame's block maximum");
    if (op + literals > buf.length) {
      out.length = op; // reserve() keeps only the bytes written so far
      buf = out.reserve(op + literals);
    }
    copyLiterals(buf, op, src, sp, literals);
    sp += literals;
    op += literals;
    if (sp === end) break; // the last sequence has literals only
    if (end - sp < 2) throw invalid("truncated match offset");
    const offset = src[sp] | (src[sp + 1] << 8);
    sp += 2;
    if (offset === 0 || offset > op - windowStart) {
      throw invalid(`match offset ${offset} reaches before the window`);
    }
    let length = (token & 15) + 4;
    if (length === 19) {
      for (;;) {
        if (sp >= end) throw invalid("truncated match length");
        const b = src[sp++];
        length += b;
        if (b !== 255) break;
      }
    }
    if (op + length > limit) throw invalid("block decodes to more than the frame's block maximum");
    if (op + length > buf.length) {
      out.length = op; // reserve() keeps only the bytes written so far
      buf = out.reserve(op + length);
    }
    copyMatch(buf, op, offset, length);
    op += length;
  }
  out.length = op;
}
