/**
 * Streaming zstd decoding, written from RFC 8878, with work bounded per byte and checksums verified.
 *
 * Why our own decoder and not `fzstd` or the runtime's: fzstd trusted the frame (it allocated the
 * declared window, and executed every sequence even past its block's end: an 18-byte body of 98,047
 * long RLE-coded matches froze the event loop for 454 s) and did not verify the content checksum.
 * Pre-parsing each block's sequences to bound fzstd would have meant writing the FSE and sequence
 * decoding anyway, then decoding twice. `node:zlib`'s native decompressor exists only on some runtimes
 * (not on workerd), so a bounded pure-TypeScript path was needed regardless; one decoder everywhere
 * keeps one behaviour to test.
 *
 * Bounds, per RFC 8878: a block may produce at most Block_Maximum_Size = min(window, 128 KiB) bytes.
 * Every sequence needs at least 3 output bytes, so a block declaring more sequences than that allows
 * is refused before any is decoded, and each sequence is checked against the block's remaining room
 * before its literals or match are copied. Everything else is linear in the input or the output:
 * blocks cost at least 3 input bytes, and table rebuilds (up to 2^11 + 3 * 2^9 entries a block) are
 * held to TABLE_WORK_PER_BYTE entries per output byte. The internal `work` counter adds up these
 * units so tests can assert the bound by counting. One `push` pauses after PAUSE_AFTER bytes of
 * output so the caller can let other work run (a few bytes can decode to megabytes).
 *
 * Memory: the window kept is min(declared window, what may still be decoded), in a buffer of at most
 * twice that plus two blocks, slid (one copy of the window per window's worth of output) rather than
 * kept whole. Supported: raw, RLE and compressed blocks; raw, RLE, Huffman (1 or 4 streams) and
 * treeless literals; predefined, RLE, FSE and repeat sequence tables; repeat offsets; skippable frames
 * and concatenated frames; the content checksum (XXH64, low 32 bits), verified. Not supported:
 * dictionaries (a frame that names one is refused).
 *
 * @module
 */

import { BodyTooLargeError } from "../http/body_errors.ts";
import { copyLiterals, copyMatch } from "./match_copy.ts";
import { Xxh64 } from "../core/parquet/xxh64.ts";

const FRAME_MAGIC = 0xfd2fb528;
const SKIPPABLE_MAGIC = 0x184d2a50; // low 4 bits are free
const MAX_BLOCK = 131072;
/**
 * One `push` or `resume` produces about this much before it pauses: ~80 ms at the slowest we know
 * (75 ns a byte, table rebuilds at their budget), ~5 ms for ordinary data.
 */
const PAUSE_AFTER = 1 << 20;
/** Decoded output is handed on in pieces of about this size (or at the end of a push or frame). */
const FLUSH_AT = 65536;
/** Bytes after a copied block that bit readers may touch (always masked off). */
const PADDING = 16;
const MIN_MATCH = 3;
/**
 * Table rebuilds may cost this many entries per decoded byte, plus TABLE_ALLOWANCE per body. A valid
 * but hostile block of 21 bytes can rebuild 3,300 table entries for 4 bytes of output (537 ns per
 * input byte: 36 s for a 64 MiB body). Real encoders size their tables to their blocks: under one
 * entry per output byte for whole bodies, and at most 10.3 measured for a stream flushed every 100
 * bytes (node:zlib, levels 1-19, flushes every 30 to 1,000 bytes); 32 leaves room above that. At
 * the budget, tables cost ~75 ns per output byte.
 */
const TABLE_WORK_PER_BYTE = 32;
const TABLE_ALLOWANCE = 1 << 20;

function invalid(problem: string): SyntaxError {
  return new SyntaxError(`invalid zstd data: ${problem}`);
}

function highBit(x: number): number {
  return 31 - Math.clz32(x);
}

// ---- Sequence code tables (RFC 8878 §3.1.1.3.2.1.1) ----

// deno-fmt-ignore
const LL_BASE = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256,
  512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
];
// deno-fmt-ignore
const LL_BITS = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13,
  14, 15, 16,
];
// deno-fmt-ignore
const ML_BASE = [
  3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
  30, 31, 32, 33, 34, 35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051, 4099, 8195,
  16387, 32771, 65539,
];
// deno-fmt-ignore
const ML_BITS = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1,
  1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
];
/**
 * Offset code 31 would mean an offset of 2^31 or more: beyond any window we keep (the limit on a
 * body is well under 2 GiB), so it decodes to an offset that is always refused, and every value
 * fits a 32-bit integer.
 */
const OF_BASE = Array.from({ length: 32 }, (_, code) => code < 31 ? 2 ** code : 2 ** 31 - 1);
const OF_BITS = Array.from({ length: 32 }, (_, code) => code < 31 ? code : 0);

// Predefined distributions (RFC 8878 §3.1.1.3.2.2).
// deno-fmt-ignore
const LL_DEFAULT = [
  4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1,
  -1, -1,
];
// deno-fmt-ignore
const ML_DEFAULT = [
  1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1,
];
// deno-fmt-ignore
const OF_DEFAULT = [
  1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1,
];

/** What one kind of FSE table decodes to: per symbol, a value base and a number of extra bits. */
interface SymbolKind {
  name: string;
  maxSymbol: number;
  maxLog: number;
  base: Int32Array;
  bits: Uint8Array;
}

/** A symbol kind with typed value tables (one element type everywhere keeps table builds fast). */
function kind(name: string, maxSymbol: number, maxLog: number, base: number[], bits: number[]): SymbolKind {
  return { name, maxSymbol, maxLog, base: Int32Array.from(base), bits: Uint8Array.from(bits) };
}

const LL = kind("literal length", 35, 9, LL_BASE, LL_BITS);
const ML = kind("match length", 52, 9, ML_BASE, ML_BITS);
const OF = kind("offset", 31, 8, OF_BASE, OF_BITS);
const IDENTITY = Array.from({ length: 256 }, (_, s) => s);
/** Huffman weights, FSE-coded: the value is the symbol itself. */
const WEIGHTS = kind("Huffman weight", 255, 6, IDENTITY, new Array(256).fill(0));

/**
 * A decoding table: for each state, the bits to read for the next state and the base to add to
 * them, and the decoded value's base and extra bits.
 */
class FseTable {
  log = 0;
  readonly nbBits: Uint8Array;
  readonly next: Uint16Array;
  readonly valueBase: Int32Array;
  readonly valueBits: Uint8Array;

  constructor(maxLog: number) {
    const size = 1 << maxLog;
    this.nbBits = new Uint8Array(size);
    this.next = new Uint16Array(size);
    this.valueBase = new Int32Array(size);
    this.valueBits = new Uint8Array(size);
  }
}

// Scratch for table builds (decoding is synchronous: one build at a time).
const spread = new Uint8Array(512);
const symbolNext = new Uint16Array(256);

/**
 * Builds `table` from normalized counts `norm[0, symbols)` summing to 2^log (RFC 8878 §4.1.1).
 * Returns the entries filled (the work done).
 */
function buildFse(norm: Int16Array, symbols: number, log: number, kind: SymbolKind, table: FseTable): number {
  const size = 1 << log;
  const mask = size - 1;
  let high = size - 1;
  for (let s = 0; s < symbols; s++) {
    if (norm[s] === -1) {
      spread[high--] = s;
      symbolNext[s] = 1;
    } else {
      symbolNext[s] = norm[s];
    }
  }
  const step = (size >>> 1) + (size >>> 3) + 3;
  let pos = 0;
  for (let s = 0; s < symbols; s++) {
    for (let i = 0; i < norm[s]; i++) {
      spread[pos] = s;
      do pos = (pos + step) & mask; while (pos > high);
    }
  }
  if (pos !== 0) throw invalid(`${kind.name} table: counts do not fill it`);
  for (let u = 0; u < size; u++) {
    const s = spread[u];
    const x = symbolNext[s]++;
    const nb = log - highBit(x);
    table.nbBits[u] = nb;
    table.next[u] = (x << nb) - size;
    table.valueBase[u] = kind.base[s];
    table.valueBits[u] = kind.bits[s];
  }
  table.log = log;
  return size;
}

function predefined(counts: number[], log: number, kind: SymbolKind): FseTable {
  const table = new FseTable(log);
  buildFse(Int16Array.from(counts), counts.length, log, kind, table);
  return table;
}

const LL_PREDEFINED = predefined(LL_DEFAULT, 6, LL);
const ML_PREDEFINED = predefined(ML_DEFAULT, 6, ML);
const OF_PREDEFINED = predefined(OF_DEFAULT, 5, OF);

/**
 * Bits [low, low + n) of the backward bitstream whose first byte is `src[start]`, as a number whose
 * highest bit is the one read first. n <= 25. Bits below the stream's start read as zero (RFC 8878
 * §4.1: a finished stream is padded with zeros). The caller keeps 3 readable bytes after the stream.
 */
function bitsAt(src: Uint8Array, start: number, low: number, n: number): number {
  if (low >= 0) {
    const b = start + (low >>> 3);
    const word = src[b] | (src[b + 1] << 8) | (src[b + 2] << 16) | (src[b + 3] << 24);
    return (word >>> (low & 7)) & ((1 << n) - 1);
  }
  return bitsBelowStart(src, start, low, n);
}

/** {@link bitsAt} for a read that reaches below the stream's start (rare: kept out of the hot path). */
function bitsBelowStart(src: Uint8Array, start: number, low: number, n: number): number {
  const m = low + n;
  if (m <= 0) return 0;
  const word = src[start] | (src[start + 1] << 8) | (src[start + 2] << 16) | (src[start + 3] << 24);
  return (word & ((1 << m) - 1)) << -low;
}

/** Reads n <= 32 bits ending at `top` (exclusive); for offsets, whose extra bits may exceed 25. */
function wideBitsAt(src: Uint8Array, start: number, top: number, n: number): number {
  if (n <= 25) return bitsAt(src, start, top - n, n);
  return bitsAt(src, start, top - n + 16, n - 16) * 65536 + bitsAt(src, start, top - n, 16);
}

/** The bit position just below the end marker of a backward bitstream `src[start, end)`. */
function streamBits(src: Uint8Array, start: number, end: number, what: string): number {
  if (end <= start) throw invalid(`empty ${what} bitstream`);
  const last = src[end - 1];
  if (last === 0) throw invalid(`${what} bitstream has no end marker`);
  return 8 * (end - 1 - start) + highBit(last);
}

type State = "magic" | "block" | "checksum" | "skip";

/**
 * Decodes a zstd stream pushed in arbitrary pieces. `onData` receives the decoded bytes in fresh
 * arrays (about 64 KiB each, and whatever is decoded when a push or a frame ends); the total never
 * exceeds `maxBytes` or `push` throws `BodyTooLargeError`.
 * Invalid data, including a content checksum that does not match, throws `SyntaxError` (from `push`,
 * or from `finish` when the input stops mid-frame).
 */
export class ZstdStreamDecoder {
  readonly #maxBytes: number;
  readonly #onData: (chunk: Uint8Array) => void;
  readonly #queue = new ByteQueue();
  #state: State = "magic";
  #paused = false;
  #skipLeft = 0;
  #total = 0;
  /** Units of work done: input bytes, table entries built, sequences and bytes decoded or moved. */
  #work = 0;
  /** Bytes of output buffers allocated. */
  #allocated = 0;
  /** Table entries built so far, held to TABLE_WORK_PER_BYTE per output byte (plus the allowance). */
  #tableWork = 0;

  // Frame state.
  #window = 0;
  #keep = 0;
  #blockMax = MAX_BLOCK;
  #hasChecksum = false;
  #contentSize = -1;
  #frameOutput = 0;
  readonly #hash = new Xxh64();
  #rep0 = 1;
  #rep1 = 4;
  #rep2 = 8;
  #hufTable = new Uint16Array(2048);
  #hufBits = 0; // 0: no table yet in this frame
  #llTable: FseTable | undefined;
  #ofTable: FseTable | undefined;
  #mlTable: FseTable | undefined;

  /** Output of this frame: the kept window, then the block being decoded, from `hist[0]`. */
  #hist = new Uint8Array(0);
  #pos = 0;
  /** Where the output not yet handed to `onData` starts in `hist`. */
  #unsent = 0;

  // Scratch, allocated on first use.
  #block: Uint8Array | undefined;
  #literals: Uint8Array | undefined;
  readonly #llOwn = new FseTable(LL.maxLog);
  readonly #ofOwn = new FseTable(OF.maxLog);
  readonly #mlOwn = new FseTable(ML.maxLog);
  readonly #llRle = new FseTable(0);
  readonly #ofRle = new FseTable(0);
  readonly #mlRle = new FseTable(0);
  readonly #weightTable = new FseTable(WEIGHTS.maxLog);
  readonly #norm = new Int16Array(256);
  readonly #weights = new Uint8Array(256);
  #ncSymbols = 0;
  #ncLog = 0;

  constructor(maxBytes: number, onData: (chunk: Uint8Array) => void) {
    this.#maxBytes = maxBytes;
    this.#onData = onData;
  }

  /** Decoded bytes so far. */
  get total(): number {
    return this.#total;
  }

  /** Work units so far (internal, for tests that assert the bound by counting). */
  get work(): number {
    return this.#work;
  }

  /** Bytes of window and scratch buffers allocated so far (internal, for tests). */
  get allocated(): number {
    return this.#allocated;
  }

  /**
   * Queues `chunk` and decodes what it can. After about PAUSE_AFTER output bytes in one call it stops
   * early and sets `paused` (a few bytes can decode to megabytes: 2 KiB of zstd can be 26 MiB and
   * half a second); the caller then yields to the event loop and calls `resume()`. A caller that
   * ignores `paused` loses nothing: the next `push` or `finish` carries on.
   */
  push(chunk: Uint8Array): void {
    this.#queue.push(chunk);
    this.#drain(PAUSE_AFTER);
    this.#flush();
  }

  /** True when the last `push` or `resume` stopped early with decodable input left. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Carries on decoding after a pause (see `push`). */
  resume(): void {
    this.#drain(PAUSE_AFTER);
    this.#flush();
  }

  /** Declares the end of input: throws `SyntaxError` unless it ended between frames. */
  finish(): void {
    if (this.#paused) this.#drain(Infinity);
    this.#flush();
    if (this.#state !== "magic" || this.#queue.length > 0) throw invalid("unexpected end of input");
  }

  /** Decodes queued input until it runs out, or until `budget` bytes have been produced (a pause). */
  #drain(budget: number): void {
    const q = this.#queue;
    const stop = this.#total + budget;
    this.#paused = false;
    for (;;) {
      if (this.#total >= stop) {
        this.#paused = true;
        return;
      }
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
            this.#work += 8;
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
          const length = 3 + (type === 1 ? 1 : size);
          if (q.length < length) return;
          const block = q.take(length);
          this.#work += length;
          this.#decodeBlock(type, block, size);
          if (last) this.#state = this.#hasChecksum ? "checksum" : "magic";
          if (last && !this.#hasChecksum) this.#endFrame();
          break;
        }
        case "checksum": {
          if (q.length < 4) return;
          const c = q.take(4);
          const expected = (c[0] | (c[1] << 8) | (c[2] << 16) | (c[3] << 24)) >>> 0;
          if (this.#hash.digest()[1] !== expected) throw invalid("content checksum mismatch");
          this.#state = "magic";
          this.#endFrame();
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
    const header = q.take(length);
    this.#work += length;
    let pos = 5;
    let window = 0;
    if (!singleSegment) {
      const descriptor = header[pos++];
      const base = 2 ** (10 + (descriptor >>> 3));
      window = base + (base / 8) * (descriptor & 7);
    }
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
    this.#window = window;
    // Matches never reach further back than this frame's output, which is at most `budget`.
    this.#keep = Math.min(window, budget);
    this.#blockMax = Math.min(window, MAX_BLOCK);
    this.#hasChecksum = ((fhd >>> 2) & 1) === 1;
    this.#contentSize = contentSize;
    this.#frameOutput = 0;
    this.#hash.reset();
    this.#rep0 = 1;
    this.#rep1 = 4;
    this.#rep2 = 8;
    this.#hufBits = 0;
    this.#llTable = this.#ofTable = this.#mlTable = undefined;
    this.#pos = this.#unsent = 0;
    this.#state = "block";
    return true;
  }

  #endFrame(): void {
    if (this.#contentSize >= 0 && this.#frameOutput !== this.#contentSize) {
      throw invalid(`frame decodes to ${this.#frameOutput} bytes but declares ${this.#contentSize}`);
    }
    this.#flush();
  }

  /**
   * Hands the checked output not yet sent to `onData`. Output is gathered into pieces of up to
   * FLUSH_AT bytes rather than sent per block, so a stream of tiny blocks does not become as many
   * tiny arrays (a million 1-byte blocks would be a million objects).
   */
  #flush(): void {
    if (this.#pos === this.#unsent) return;
    const piece = this.#hist.slice(this.#unsent, this.#pos);
    this.#unsent = this.#pos;
    this.#onData(piece);
  }

  /** Makes room for `n` (<= MAX_BLOCK) more bytes at `#pos`: grows, or slides the window down. */
  #reserve(n: number): void {
    const hist = this.#hist;
    if (this.#pos + n <= hist.length) return;
    this.#flush();
    const keep = this.#keep;
    const full = 2 * keep + MAX_BLOCK;
    if (hist.length >= full && this.#pos > keep) {
      // At full size a slide frees at least `keep` bytes, so it costs at most one byte per output byte.
      hist.copyWithin(0, this.#pos - keep, this.#pos);
      this.#work += keep;
      this.#pos = this.#unsent = keep;
      return;
    }
    const size = Math.max(this.#pos + n, Math.min(full, Math.max(2 * hist.length, 65536)));
    const grown = new Uint8Array(size);
    this.#allocated += size;
    grown.set(hist.subarray(0, this.#pos));
    this.#work += this.#pos;
    this.#hist = grown;
  }

  #decodeBlock(type: number, block: Uint8Array, size: number): void {
    this.#reserve(this.#blockMax);
    const start = this.#pos;
    const hist = this.#hist;
    if (type === 0) {
      hist.set(block.subarray(3, 3 + size), start);
      this.#pos += size;
    } else if (type === 1) {
      hist.fill(block[3], start, start + size);
      this.#pos += size;
    } else {
      let src = this.#block;
      if (src === undefined) {
        src = this.#block = new Uint8Array(MAX_BLOCK + PADDING);
        this.#allocated += src.length;
      }
      src.set(block.subarray(3, 3 + size));
      this.#compressedBlock(src, size);
    }
    this.#emit(start);
  }

  /** Hands `hist[start, pos)` on, after the limits and the checksum have seen it. */
  #emit(start: number): void {
    const n = this.#pos - start;
    this.#work += n;
    if (n === 0) return;
    if (this.#total + n > this.#maxBytes) throw new BodyTooLargeError(this.#maxBytes);
    if (this.#contentSize >= 0 && this.#frameOutput + n > this.#contentSize) {
      throw invalid(`frame decodes to more than the ${this.#contentSize} bytes it declares`);
    }
    this.#total += n;
    this.#frameOutput += n;
    if (this.#hasChecksum) this.#hash.update(this.#hist, start, this.#pos);
    if (this.#pos - this.#unsent >= FLUSH_AT) this.#flush();
  }

  /** Decodes the compressed block `src[0, end)` (RFC 8878 §3.1.1.3) onto `hist` at `pos`. */
  #compressedBlock(src: Uint8Array, end: number): void {
    // Literals section header (§3.1.1.3.1.1).
    if (end < 1) throw invalid("empty compressed block");
    const b0 = src[0];
    const litType = b0 & 3;
    const sizeFormat = (b0 >>> 2) & 3;
    let ip: number;
    let litSize: number;
    let litSrc: Uint8Array;
    let litStart = 0;
    if (litType < 2) {
      let headerSize: number;
      if ((sizeFormat & 1) === 0) {
        headerSize = 1;
        litSize = b0 >>> 3;
      } else if (sizeFormat === 1) {
        headerSize = 2;
        litSize = (b0 >>> 4) | (src[1] << 4);
      } else {
        headerSize = 3;
        litSize = (b0 >>> 4) | (src[1] << 4) | (src[2] << 12);
      }
      if (headerSize > end) throw invalid("truncated literals header");
      if (litSize > this.#blockMax) throw invalid("literals exceed the block maximum");
      ip = headerSize;
      if (litType === 0) {
        if (ip + litSize > end) throw invalid("raw literals run past the block");
        litSrc = src;
        litStart = ip;
        ip += litSize;
      } else {
        if (ip + 1 > end) throw invalid("truncated RLE literals");
        litSrc = this.#literalBuffer();
        litSrc.fill(src[ip], 0, litSize);
        ip += 1;
      }
    } else {
      let headerSize: number;
      let compressedSize: number;
      const streams = sizeFormat === 0 ? 1 : 4;
      if (sizeFormat < 2) {
        headerSize = 3;
        const v = b0 | (src[1] << 8) | (src[2] << 16);
        litSize = (v >>> 4) & 0x3ff;
        compressedSize = (v >>> 14) & 0x3ff;
      } else if (sizeFormat === 2) {
        headerSize = 4;
        const v = (b0 | (src[1] << 8) | (src[2] << 16) | (src[3] << 24)) >>> 0;
        litSize = (v >>> 4) & 0x3fff;
        compressedSize = v >>> 18;
      } else {
        headerSize = 5;
        const v = (b0 | (src[1] << 8) | (src[2] << 16) | (src[3] << 24)) >>> 0;
        litSize = (v >>> 4) & 0x3ffff;
        compressedSize = (v >>> 22) | (src[4] << 10);
      }
      if (headerSize > end) throw invalid("truncated literals header");
      if (litSize > this.#blockMax) throw invalid("literals exceed the block maximum");
      ip = headerSize;
      if (ip + compressedSize > end) throw invalid("compressed literals run past the block");
      const litEnd = ip + compressedSize;
      if (litType === 2) {
        ip = this.#readHuffmanTree(src, ip, litEnd);
      } else if (this.#hufBits === 0) {
        throw invalid("treeless literals without a previous Huffman table");
      }
      litSrc = this.#literalBuffer();
      this.#decodeLiterals(src, ip, litEnd, litSrc, litSize, streams);
      ip = litEnd;
    }

    // Sequences section header (§3.1.1.3.2.1).
    if (ip >= end) throw invalid("missing sequences section");
    let nbSeq = src[ip++];
    if (nbSeq >= 128) {
      if (nbSeq === 255) {
        if (ip + 2 > end) throw invalid("truncated sequences header");
        nbSeq = src[ip] + (src[ip + 1] << 8) + 0x7f00;
        ip += 2;
      } else {
        if (ip + 1 > end) throw invalid("truncated sequences header");
        nbSeq = ((nbSeq - 128) << 8) + src[ip++];
      }
    }
    // The bound: each sequence makes at least MIN_MATCH bytes, and the block at most blockMax.
    if (litSize + MIN_MATCH * nbSeq > this.#blockMax) {
      throw invalid(`${nbSeq} sequences cannot fit in a block of at most ${this.#blockMax} bytes`);
    }
    if (nbSeq === 0) {
      if (ip !== end) throw invalid("bytes after an empty sequences section");
      this.#copyLiterals(litSrc, litStart, litSize);
      return;
    }
    if (ip >= end) throw invalid("truncated sequences header");
    const modes = src[ip++];
    if (modes & 3) throw invalid("reserved bits set in the sequence compression modes");
    ip = this.#readTable(src, ip, end, (modes >>> 6) & 3, LL);
    ip = this.#readTable(src, ip, end, (modes >>> 4) & 3, OF);
    ip = this.#readTable(src, ip, end, (modes >>> 2) & 3, ML);
    this.#work += nbSeq;
    this.#sequences(src, ip, end, nbSeq, litSrc, litStart, litSize);
  }

  /** Counts `entries` of table building, refusing the body once tables cost more than its output. */
  #chargeTable(entries: number): void {
    this.#tableWork += entries;
    if (this.#tableWork > TABLE_WORK_PER_BYTE * this.#total + TABLE_ALLOWANCE) {
      throw invalid(
        `tables rebuilt far more often than the output needs (${this.#tableWork} entries for ${this.#total} bytes)`,
      );
    }
  }

  #literalBuffer(): Uint8Array {
    if (this.#literals === undefined) {
      this.#literals = new Uint8Array(MAX_BLOCK + PADDING);
      this.#allocated += this.#literals.length;
    }
    return this.#literals;
  }

  #copyLiterals(litSrc: Uint8Array, litStart: number, n: number): void {
    this.#hist.set(litSrc.subarray(litStart, litStart + n), this.#pos);
    this.#pos += n;
  }

  /** Sets the sequence table of `kind` for the given mode (§3.1.1.3.2.2); returns the new `ip`. */
  #readTable(src: Uint8Array, ip: number, end: number, mode: number, kind: SymbolKind): number {
    let table: FseTable;
    if (mode === 0) {
      table = kind === LL ? LL_PREDEFINED : kind === OF ? OF_PREDEFINED : ML_PREDEFINED;
    } else if (mode === 1) {
      if (ip >= end) throw invalid(`truncated ${kind.name} RLE symbol`);
      const symbol = src[ip++];
      if (symbol > kind.maxSymbol) throw invalid(`${kind.name} code ${symbol} out of range`);
      table = kind === LL ? this.#llRle : kind === OF ? this.#ofRle : this.#mlRle;
      table.log = 0;
      table.nbBits[0] = 0;
      table.next[0] = 0;
      table.valueBase[0] = kind.base[symbol];
      table.valueBits[0] = kind.bits[symbol];
    } else if (mode === 2) {
      ip = this.#readCounts(src, ip, end, kind);
      table = kind === LL ? this.#llOwn : kind === OF ? this.#ofOwn : this.#mlOwn;
      this.#chargeTable(1 << this.#ncLog);
      this.#work += buildFse(this.#norm, this.#ncSymbols, this.#ncLog, kind, table);
    } else {
      const previous = kind === LL ? this.#llTable : kind === OF ? this.#ofTable : this.#mlTable;
      if (previous === undefined) throw invalid(`repeated ${kind.name} table without a previous one`);
      table = previous;
    }
    if (kind === LL) this.#llTable = table;
    else if (kind === OF) this.#ofTable = table;
    else this.#mlTable = table;
    return ip;
  }

  /**
   * Reads an FSE table description (normalized counts, §4.1.1) at `src[ip..]` into `#norm`,
   * `#ncSymbols`, `#ncLog`; returns the position after it.
   */
  #readCounts(src: Uint8Array, ip: number, end: number, kind: SymbolKind): number {
    const available = end - ip;
    if (available < 1) throw invalid(`truncated ${kind.name} table`);
    const log = (src[ip] & 15) + 5;
    if (log > kind.maxLog) throw invalid(`${kind.name} table accuracy ${log} exceeds ${kind.maxLog}`);
    const norm = this.#norm;
    let bit = 4;
    let remaining = (1 << log) + 1;
    let threshold = 1 << log;
    let nbBits = log + 1;
    let symbol = 0;
    const read = (n: number) => {
      const b = ip + (bit >>> 3);
      const word = src[b] | (src[b + 1] << 8) | (src[b + 2] << 16) | (src[b + 3] << 24);
      return (word >>> (bit & 7)) & ((1 << n) - 1);
    };
    while (remaining > 1 && symbol <= kind.maxSymbol) {
      if (bit >>> 3 >= available) throw invalid(`truncated ${kind.name} table`);
      const max = 2 * threshold - 1 - remaining;
      let count: number;
      const low = read(nbBits - 1);
      if (low < max) {
        count = low;
        bit += nbBits - 1;
      } else {
        count = read(nbBits);
        if (count >= threshold) count -= max;
        bit += nbBits;
      }
      count--;
      remaining -= count < 0 ? -count : count;
      norm[symbol++] = count;
      if (count === 0) {
        // Zero counts are followed by 2-bit repeat flags: 3 means three more zeros and another flag.
        for (;;) {
          if (bit >>> 3 >= available) throw invalid(`truncated ${kind.name} table`);
          const repeat = read(2);
          bit += 2;
          if (symbol + repeat > kind.maxSymbol + 1) throw invalid(`${kind.name} table has too many symbols`);
          for (let i = 0; i < repeat; i++) norm[symbol++] = 0;
          if (repeat !== 3) break;
        }
      }
      while (remaining < threshold) {
        nbBits--;
        threshold >>>= 1;
      }
    }
    if (remaining !== 1) throw invalid(`${kind.name} table counts do not add up`);
    const used = (bit + 7) >>> 3;
    if (used > available) throw invalid(`truncated ${kind.name} table`);
    this.#ncSymbols = symbol;
    this.#ncLog = log;
    return ip + used;
  }

  /** Reads a Huffman tree description (§4.2.1) at `src[ip..]`; returns the position after it. */
  #readHuffmanTree(src: Uint8Array, ip: number, end: number): number {
    if (ip >= end) throw invalid("truncated Huffman tree");
    const header = src[ip++];
    const weights = this.#weights;
    let count: number;
    if (header >= 128) {
      count = header - 127;
      const bytes = (count + 1) >>> 1;
      if (ip + bytes > end) throw invalid("truncated Huffman weights");
      for (let i = 0; i < count; i++) {
        const b = src[ip + (i >>> 1)];
        weights[i] = i & 1 ? b & 15 : b >>> 4;
      }
      ip += bytes;
    } else {
      if (ip + header > end) throw invalid("truncated Huffman weights");
      count = this.#fseWeights(src, ip, ip + header);
      ip += header;
    }
    // The last weight is implied: the one that makes the total a power of two.
    let total = 0;
    for (let i = 0; i < count; i++) {
      const w = weights[i];
      if (w > 11) throw invalid(`Huffman weight ${w} exceeds 11`);
      if (w > 0) total += 1 << (w - 1);
    }
    if (total === 0) throw invalid("Huffman weights are all zero");
    const maxBits = highBit(total) + 1;
    if (maxBits > 11) throw invalid("Huffman codes longer than 11 bits");
    const rest = (1 << maxBits) - total;
    if ((rest & (rest - 1)) !== 0) throw invalid("Huffman weights do not add up");
    weights[count++] = highBit(rest) + 1;
    this.#chargeTable((1 << maxBits) + maxBits * count);
    // Codes are dealt in order of increasing weight, then symbol: each takes 2^(weight-1) entries.
    const table = this.#hufTable;
    let pos = 0;
    for (let w = 1; w <= maxBits; w++) {
      const entry = (maxBits + 1 - w) << 8;
      const span = 1 << (w - 1);
      for (let s = 0; s < count; s++) {
        if (weights[s] !== w) continue;
        table.fill(entry | s, pos, pos + span);
        pos += span;
      }
    }
    this.#work += (1 << maxBits) + maxBits * count;
    this.#hufBits = maxBits;
    return ip;
  }

  /** Decodes FSE-compressed Huffman weights from `src[ip, end)` into `#weights`; returns the count. */
  #fseWeights(src: Uint8Array, ip: number, end: number): number {
    const start = this.#readCounts(src, ip, end, WEIGHTS);
    const table = this.#weightTable;
    this.#chargeTable(1 << this.#ncLog);
    this.#work += buildFse(this.#norm, this.#ncSymbols, this.#ncLog, WEIGHTS, table);
    const log = table.log;
    let bit = streamBits(src, start, end, "Huffman weights");
    let s1 = bitsAt(src, start, bit - log, log);
    bit -= log;
    let s2 = bitsAt(src, start, bit - log, log);
    bit -= log;
    const weights = this.#weights;
    let count = 0;
    // Two interleaved states; when the stream runs out, the other state gives the last symbol.
    for (;;) {
      if (count >= 255) throw invalid("too many Huffman weights");
      weights[count++] = table.valueBase[s1];
      let nb = table.nbBits[s1];
      s1 = table.next[s1] + bitsAt(src, start, bit - nb, nb);
      bit -= nb;
      if (bit < 0) {
        weights[count++] = table.valueBase[s2];
        break;
      }
      if (count >= 255) throw invalid("too many Huffman weights");
      weights[count++] = table.valueBase[s2];
      nb = table.nbBits[s2];
      s2 = table.next[s2] + bitsAt(src, start, bit - nb, nb);
      bit -= nb;
      if (bit < 0) {
        weights[count++] = table.valueBase[s1];
        break;
      }
    }
    if (count > 255) throw invalid("too many Huffman weights");
    this.#work += count;
    return count;
  }

  /** Huffman-decodes `size` literals from 1 or 4 streams in `src[ip, end)` into `out`. */
  #decodeLiterals(
    src: Uint8Array,
    ip: number,
    end: number,
    out: Uint8Array,
    size: number,
    streams: number,
  ): void {
    this.#work += size;
    if (streams === 1) {
      this.#huffmanStream(src, ip, end, out, 0, size);
      return;
    }
    if (ip + 6 > end) throw invalid("truncated literals jump table");
    const s1 = src[ip] | (src[ip + 1] << 8);
    const s2 = src[ip + 2] | (src[ip + 3] << 8);
    const s3 = src[ip + 4] | (src[ip + 5] << 8);
    const p1 = ip + 6, p2 = p1 + s1, p3 = p2 + s2, p4 = p3 + s3;
    if (p4 > end) throw invalid("literals jump table runs past the literals");
    const segment = (size + 3) >>> 2;
    if (3 * segment > size) throw invalid("too few literals for four streams");
    this.#huffmanStream(src, p1, p2, out, 0, segment);
    this.#huffmanStream(src, p2, p3, out, segment, 2 * segment);
    this.#huffmanStream(src, p3, p4, out, 2 * segment, 3 * segment);
    this.#huffmanStream(src, p4, end, out, 3 * segment, size);
  }

  #huffmanStream(
    src: Uint8Array,
    start: number,
    end: number,
    out: Uint8Array,
    op: number,
    stop: number,
  ): void {
    const table = this.#hufTable;
    const maxBits = this.#hufBits;
    const mask = (1 << maxBits) - 1;
    let bit = streamBits(src, start, end, "literals");
    for (; op < stop; op++) {
      const low = bit - maxBits;
      let index: number;
      if (low >= 0) {
        const b = start + (low >>> 3);
        index = ((src[b] | (src[b + 1] << 8) | (src[b + 2] << 16)) >>> (low & 7)) & mask;
      } else {
        index = bitsAt(src, start, low, maxBits);
      }
      const entry = table[index];
      out[op] = entry;
      bit -= entry >>> 8;
    }
    if (bit !== 0) throw invalid("literals stream not consumed exactly");
  }

  /** Decodes and executes `nbSeq` sequences from the bitstream `src[ip, end)` (§3.1.1.3.2.1, §3.1.1.4). */
  #sequences(
    src: Uint8Array,
    ip: number,
    end: number,
    nbSeq: number,
    lit: Uint8Array,
    litPos: number,
    litSize: number,
  ): void {
    const ll = this.#llTable!, of = this.#ofTable!, ml = this.#mlTable!;
    const llNb = ll.nbBits, llNext = ll.next, llBase = ll.valueBase, llBits = ll.valueBits;
    const ofNb = of.nbBits, ofNext = of.next, ofBase = of.valueBase, ofBits = of.valueBits;
    const mlNb = ml.nbBits, mlNext = ml.next, mlBase = ml.valueBase, mlBits = ml.valueBits;
    const hist = this.#hist;
    const window = this.#window;
    const litEnd = litPos + litSize;
    let op = this.#pos;
    const limit = op + this.#blockMax;
    let rep0 = this.#rep0, rep1 = this.#rep1, rep2 = this.#rep2;
    let bit = streamBits(src, ip, end, "sequences");
    let llState = bitsAt(src, ip, bit - ll.log, ll.log);
    bit -= ll.log;
    let ofState = bitsAt(src, ip, bit - of.log, of.log);
    bit -= of.log;
    let mlState = bitsAt(src, ip, bit - ml.log, ml.log);
    bit -= ml.log;
    for (let i = 0; i < nbSeq; i++) {
      let nb = ofBits[ofState];
      let offset = ofBase[ofState] + wideBitsAt(src, ip, bit, nb);
      bit -= nb;
      nb = mlBits[mlState];
      const matchLength = mlBase[mlState] + bitsAt(src, ip, bit - nb, nb);
      bit -= nb;
      nb = llBits[llState];
      const literalLength = llBase[llState] + bitsAt(src, ip, bit - nb, nb);
      bit -= nb;
      // Repeat offsets (§3.1.1.5): values 1-3 name a recent offset, shifted by one without literals.
      if (offset > 3) {
        offset -= 3;
        rep2 = rep1;
        rep1 = rep0;
        rep0 = offset;
      } else {
        const index = offset - 1 + (literalLength === 0 ? 1 : 0);
        if (index === 0) {
          offset = rep0;
        } else {
          offset = index === 1 ? rep1 : index === 2 ? rep2 : rep0 - 1;
          if (index !== 1) rep2 = rep1;
          rep1 = rep0;
          rep0 = offset;
        }
      }
      if (i + 1 < nbSeq) {
        nb = llNb[llState];
        llState = llNext[llState] + bitsAt(src, ip, bit - nb, nb);
        bit -= nb;
        nb = mlNb[mlState];
        mlState = mlNext[mlState] + bitsAt(src, ip, bit - nb, nb);
        bit -= nb;
        nb = ofNb[ofState];
        ofState = ofNext[ofState] + bitsAt(src, ip, bit - nb, nb);
        bit -= nb;
      }
      // Checked before anything is copied: the sequence stays within the literals and the block.
      if (literalLength > litEnd - litPos) throw invalid("sequences use more literals than decoded");
      if (op + literalLength + matchLength > limit) {
        throw invalid(`sequences produce more than the block maximum of ${this.#blockMax} bytes`);
      }
      copyLiterals(hist, op, lit, litPos, literalLength);
      litPos += literalLength;
      op += literalLength;
      if (offset > op || offset > window || offset === 0) {
        throw invalid(`match offset ${offset} reaches before the window`);
      }
      copyMatch(hist, op, offset, matchLength);
      op += matchLength;
    }
    if (bit !== 0) throw invalid("sequences bitstream not consumed exactly");
    this.#rep0 = rep0;
    this.#rep1 = rep1;
    this.#rep2 = rep2;
    const rest = litEnd - litPos;
    if (op + rest > limit) throw invalid(`block decodes to more than ${this.#blockMax} bytes`);
    this.#pos = op;
    this.#copyLiterals(lit, litPos, rest);
  }
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
