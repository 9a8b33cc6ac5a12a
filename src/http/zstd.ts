/**
 * Streaming zstd decoding with bounded memory, on top of `fzstd`'s decoder. fzstd trusts the frame
 * header: it allocates the declared window (up to 2 GiB) or content size up front, and shifts the
 * whole window once per block. So this wrapper walks the frame and block headers itself
 * (RFC 8878 §3.1) before fzstd sees them: it refuses content sizes over the limit, shrinks windows
 * larger than the output can be (a back-reference never reaches further than what was produced),
 * bounds the block size, and hands fzstd whole blocks (so fzstd never re-concatenates partial ones).
 *
 * @module
 */

import { Decompress } from "fzstd";
import { BodyTooLargeError } from "./body_errors.ts";

const FRAME_MAGIC = 0xfd2fb528;
const SKIPPABLE_MAGIC = 0x184d2a50; // low 4 bits are free
const MAX_BLOCK = 131072;
/**
 * fzstd shifts its whole window once per block, so the cost of a block is its window size, however
 * little it decodes to: a 64 MiB window with 1-byte blocks would take hours. We allow the shifting
 * work that full 128 KiB blocks with an 8 MiB window (zstd's recommended decoder minimum, and what
 * high levels use) cost per decoded byte, plus a fixed allowance; nothing costs more than the worst
 * ordinary body of the same size.
 */
const WORK_PER_BYTE = (8 << 20) / MAX_BLOCK;
const WORK_ALLOWANCE = 4 << 20;

function invalid(problem: string): SyntaxError {
  return new SyntaxError(`invalid zstd data: ${problem}`);
}

/** Window_Size from a window descriptor byte (RFC 8878 §3.1.1.1.2). */
function windowSize(descriptor: number): number {
  const base = 2 ** (10 + (descriptor >>> 3));
  return base + (base / 8) * (descriptor & 7);
}

/** The smallest window descriptor whose Window_Size is at least `size`. */
function descriptorFor(size: number): number {
  for (let d = 0; d < 256; d++) if (windowSize(d) >= size) return d;
  return 255;
}

/** Input bytes queued until a whole header or block is available. */
class ByteQueue {
  #chunks: Uint8Array[] = [];
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first `n` bytes (n <= length) as one array, without consuming them. */
  peek(n: number): Uint8Array {
    const first = this.#chunks[0];
    if (first.length >= n) return first.subarray(0, n);
    const merged = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0];
      const take = Math.min(c.length, n - at);
      merged.set(c.subarray(0, take), at);
      at += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#chunks.unshift(merged);
    return merged;
  }

  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const c = this.#chunks[0];
      if (c.length <= n) {
        this.#chunks.shift();
        n -= c.length;
      } else {
        this.#chunks[0] = c.subarray(n);
        n = 0;
      }
    }
  }

  take(n: number): Uint8Array {
    const bytes = this.peek(n);
    this.skip(n);
    return bytes;
  }
}

type State = "magic" | "block" | "skip";

/**
 * Decodes a zstd stream pushed in arbitrary pieces. `onData` receives each decoded block (a fresh
 * array, at most 128 KiB); the total never exceeds `maxBytes` or `push` throws `BodyTooLargeError`.
 * Invalid data throws `SyntaxError` (from `push`, or from `finish` when the input stops mid-frame).
 * Content checksums are skipped, not verified (fzstd does not implement XXH64).
 */
export class ZstdStreamDecoder {
  readonly #maxBytes: number;
  readonly #onData: (chunk: Uint8Array) => void;
  readonly #queue = new ByteQueue();
  #state: State = "magic";
  #skipLeft = 0;
  #decoder: Decompress | undefined;
  /** The frame header, held back so fzstd gets it together with the first block. */
  #header: Uint8Array | undefined;
  #blockMax = MAX_BLOCK;
  /** The window fzstd will keep (after any shrinking), and the shifting work done so far. */
  #window = 0;
  #work = 0;
  #hasChecksum = false;
  #contentSize = -1;
  #frameOutput = 0;
  #total = 0;

  constructor(maxBytes: number, onData: (chunk: Uint8Array) => void) {
    this.#maxBytes = maxBytes;
    this.#onData = onData;
  }

  /** Decoded bytes so far. */
  get total(): number {
    return this.#total;
  }

  push(chunk: Uint8Array): void {
    this.#queue.push(chunk);
    this.#drain();
  }

  /** Declares the end of input: throws `SyntaxError` unless it ended between frames. */
  finish(): void {
    if (this.#state !== "magic" || this.#queue.length > 0) throw invalid("unexpected end of input");
  }

  #drain(): void {
    const q = this.#queue;
    for (;;) {
      switch (this.#state) {
        case "magic": {
          if (q.length < 4) return;
          const m = q.peek(4);
          const magic = (m[0] | (m[1] << 8) | (m[2] << 16) | (m[3] << 24)) >>> 0;
          if (magic === FRAME_MAGIC) {
            if (!this.#startFrame()) return;
          } else if ((magic & 0xfffffff0) >>> 0 === SKIPPABLE_MAGIC) {
            if (q.length < 8) return;
            const h = q.take(8);
            this.#skipLeft = (h[4] | (h[5] << 8) | (h[6] << 16) | (h[7] << 24)) >>> 0;
            this.#state = "skip";
          } else {
            throw invalid(`bad frame magic 0x${magic.toString(16)}`);
          }
          break;
        }
        case "skip": {
          const n = Math.min(q.length, this.#skipLeft);
          q.skip(n);
          this.#skipLeft -= n;
          if (this.#skipLeft > 0) return;
          this.#state = "magic";
          break;
        }
        case "block": {
          if (q.length < 3) return;
          const h = q.peek(3);
          const last = h[0] & 1;
          const type = (h[0] >>> 1) & 3;
          const size = (h[0] >>> 3) | (h[1] << 5) | (h[2] << 13);
          if (type === 3) throw invalid("reserved block type");
          if (size > this.#blockMax) {
            throw invalid(`block size ${size} exceeds the maximum ${this.#blockMax}`);
          }
          // fzstd needs the checksum bytes in the same final push as the last block.
          const length = 3 + (type === 1 ? 1 : size) + (last && this.#hasChecksum ? 4 : 0);
          if (q.length < length) return;
          let block = q.take(length);
          this.#work += this.#window;
          if (this.#work > WORK_PER_BYTE * (this.#total + WORK_ALLOWANCE)) {
            throw invalid(
              `a ${this.#window}-byte window is too costly to decode with blocks this small ` +
                "(up to 8 MiB is fine with full blocks)",
            );
          }
          if (this.#header) {
            const joined = new Uint8Array(this.#header.length + block.length);
            joined.set(this.#header);
            joined.set(block, this.#header.length);
            block = joined;
            this.#header = undefined;
          }
          // `final` makes fzstd decode a frame shorter than 18 bytes instead of waiting for more.
          this.#decoder!.push(block, last === 1);
          if (last) this.#endFrame();
          break;
        }
      }
    }
  }

  /** Parses and vets a frame header (RFC 8878 §3.1.1.1); false when it has not fully arrived. */
  #startFrame(): boolean {
    const q = this.#queue;
    if (q.length < 5) return false;
    const fhd = q.peek(5)[4];
    const fcsFlag = fhd >>> 6;
    const singleSegment = (fhd >>> 5) & 1;
    const dictFlag = fhd & 3;
    if (fhd & 0x08) throw invalid("reserved bit set in the frame header");
    const dictBytes = [0, 1, 2, 4][dictFlag];
    const fcsBytes = fcsFlag ? 1 << fcsFlag : singleSegment;
    const length = 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
    if (q.length < length) return false;
    const header = q.take(length).slice(); // a copy: the window descriptor may be rewritten
    let pos = 5;
    let window = 0;
    if (!singleSegment) window = windowSize(header[pos++]);
    let dictId = 0;
    for (let i = 0; i < dictBytes; i++) dictId += header[pos++] * 2 ** (8 * i);
    if (dictId !== 0) throw invalid("frames that need a dictionary are not supported");
    let contentSize = -1;
    if (fcsBytes) {
      contentSize = 0;
      for (let i = 0; i < fcsBytes; i++) contentSize += header[pos++] * 2 ** (8 * i);
      if (fcsBytes === 2) contentSize += 256;
    }
    const budget = this.#maxBytes - this.#total;
    if (contentSize > budget) throw new BodyTooLargeError(this.#maxBytes);
    if (singleSegment) window = contentSize;
    this.#blockMax = Math.min(window, MAX_BLOCK);
    // Matches never reach further back than this frame's output, which is at most `budget`; a
    // smaller declared window keeps fzstd's allocation and per-block window shift small. Never
    // below the block size, which fzstd derives from the window too.
    const needed = Math.max(budget, MAX_BLOCK);
    if (!singleSegment && window > needed) header[5] = descriptorFor(needed);
    this.#window = singleSegment ? window : windowSize(header[5]);
    this.#header = header;
    this.#hasChecksum = ((fhd >>> 2) & 1) === 1;
    this.#contentSize = contentSize;
    this.#frameOutput = 0;
    this.#decoder = new Decompress((chunk) => this.#emit(chunk));
    this.#state = "block";
    return true;
  }

  #emit(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#total += chunk.length;
    this.#frameOutput += chunk.length;
    if (this.#total > this.#maxBytes) throw new BodyTooLargeError(this.#maxBytes);
    this.#onData(chunk);
  }

  #endFrame(): void {
    if (this.#contentSize >= 0 && this.#frameOutput !== this.#contentSize) {
      throw invalid(`frame decodes to ${this.#frameOutput} bytes but declares ${this.#contentSize}`);
    }
    this.#decoder = undefined;
    this.#state = "magic";
  }
}
