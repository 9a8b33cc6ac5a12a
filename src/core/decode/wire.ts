/**
 * A minimal protobuf wire-format reader over a byte array: tags, varints, fixed-width values and
 * length-delimited ranges, with every length checked against the bytes that remain. It allocates
 * nothing per field: 64-bit values land in `lo`/`hi`, byte ranges in `start`/`end`.
 *
 * @module
 */

import { DecodeError } from "../errors.ts";

/** Protobuf wire types. */
export const VARINT = 0, I64 = 1, LEN = 2, I32 = 5;

const WIRE_NAMES = ["varint", "fixed64", "length-delimited", "group start", "group end", "fixed32"];

// Little-endian scratch for doubles (every platform this runs on is little-endian).
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);

/** Reads protobuf wire format from `buf[pos, end)`. */
export class WireReader {
  pos: number;
  end: number;
  /** Low / high 32 bits of the last 64-bit value read. */
  lo = 0;
  hi = 0;
  /** Range of the last length-delimited value read. */
  start = 0;
  stop = 0;
  buf: Uint8Array;

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /** Points the reader at another range, so hot loops reuse one reader instead of allocating. */
  reset(buf: Uint8Array, pos: number, end: number): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    return this;
  }

  /** Reads a varint and returns its low 32 bits as an unsigned number. */
  uint32(): number {
    const b = this.buf;
    let p = this.pos;
    if (p >= this.end) throw new DecodeError("truncated varint");
    let byte = b[p++];
    let v = byte & 0x7f;
    if (byte < 0x80) {
      this.pos = p;
      return v;
    }
    let shift = 7;
    for (;;) {
      if (p >= this.end) throw new DecodeError("truncated varint");
      byte = b[p++];
      if (shift < 32) v |= (byte & 0x7f) << shift;
      if (byte < 0x80) break;
      shift += 7;
      if (shift >= 70) throw new DecodeError("varint longer than 10 bytes");
    }
    this.pos = p;
    return v >>> 0;
  }

  /** Reads a field tag; field number 0 and tags beyond 32 bits are invalid protobuf. */
  tag(): number {
    const b = this.buf, p = this.pos;
    // One- and two-byte tags (fields 1-2047) are nearly all of them.
    if (p < this.end && b[p] < 0x80) {
      if (b[p] < 8) throw new DecodeError(`invalid field number 0`);
      this.pos = p + 1;
      return b[p];
    }
    this.varint64();
    if (this.hi !== 0) throw new DecodeError("field tag longer than 32 bits");
    if (this.lo >>> 3 === 0) throw new DecodeError(`invalid field number 0`);
    return this.lo;
  }

  /** Reads a varint of up to 64 bits into `lo`/`hi`. */
  varint64(): void {
    const b = this.buf;
    let p = this.pos;
    if (p < this.end && b[p] < 0x80) {
      this.lo = b[p], this.hi = 0, this.pos = p + 1;
      return;
    }
    let lo = 0, hi = 0, shift = 0, byte = 0;
    for (;;) {
      if (p >= this.end) throw new DecodeError("truncated varint");
      byte = b[p++];
      if (shift < 28) lo |= (byte & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (byte & 0x0f) << 28;
        hi |= (byte & 0x7f) >>> 4;
      } else if (shift < 64) hi |= (byte & 0x7f) << (shift - 32);
      if (byte < 0x80) break;
      shift += 7;
      if (shift >= 70) throw new DecodeError("varint longer than 10 bytes");
    }
    this.pos = p;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** Reads 8 little-endian bytes into `lo`/`hi`. */
  fixed64(): void {
    const p = this.pos;
    if (p + 8 > this.end) throw new DecodeError("truncated fixed64");
    const b = this.buf;
    this.lo = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
    this.hi = (b[p + 4] | (b[p + 5] << 8) | (b[p + 6] << 16) | (b[p + 7] << 24)) >>> 0;
    this.pos = p + 8;
  }

  fixed32(): number {
    const p = this.pos;
    if (p + 4 > this.end) throw new DecodeError("truncated fixed32");
    this.pos = p + 4;
    const b = this.buf;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
  }

  double(): number {
    const p = this.pos;
    if (p + 8 > this.end) throw new DecodeError("truncated double");
    this.pos = p + 8;
    const b = this.buf;
    for (let i = 0; i < 8; i++) F64_BYTES[i] = b[p + i];
    return F64[0];
  }

  /** Reads a length prefix, sets `start`/`stop` to the value's range and moves past it. */
  bytes(): void {
    const b = this.buf;
    let p = this.pos;
    // Lengths below 16384 (one or two bytes) are nearly all of them.
    if (p + 1 < this.end) {
      let n = b[p];
      if (n < 0x80) p++;
      else if (b[p + 1] < 0x80) n = (n & 0x7f) | (b[p + 1] << 7), p += 2;
      else n = -1;
      if (n >= 0) {
        if (n > this.end - p) throw new DecodeError(`length ${n} exceeds the ${this.end - p} bytes left`);
        this.start = p;
        this.stop = p + n;
        this.pos = p + n;
        return;
      }
    }
    this.varint64();
    p = this.pos;
    const n = this.hi * 4294967296 + this.lo;
    if (n > this.end - p) throw new DecodeError(`length ${n} exceeds the ${this.end - p} bytes left`);
    this.start = p;
    this.stop = p + n;
    this.pos = p + n;
  }

  /**
   * Reads a field tag and, for a length-delimited field, its range into `start`/`stop` (`start` is -1
   * when no range was read). Bit f of `unread` set (f < 32) leaves the value of field f unread: a
   * known field of another wire type must fail on its wire type rather than on a length. Loops over a
   * message's fields call this instead of tag() and bytesOf() (one call per field).
   */
  field(unread: number): number {
    const b = this.buf, end = this.end;
    let p = this.pos, tag = b[p];
    if (p < end && tag >= 8 && tag < 0x80) p++;
    else {
      tag = this.tag();
      p = this.pos;
    }
    this.start = -1;
    this.pos = p;
    const f = tag >>> 3;
    if ((tag & 7) !== LEN || (f < 32 && ((unread >>> f) & 1) !== 0)) return tag;
    const n = b[p];
    if (p < end && n < 0x80 && n < end - p) {
      this.start = p + 1;
      this.stop = this.pos = p + 1 + n;
    } else this.bytes();
    return tag;
  }

  /** Checks the wire type of a length-delimited field whose range field() read. */
  rangeOf(wireType: number, field: string): void {
    if (wireType !== LEN) throw wrongWireType(field, wireType, LEN);
  }

  /** Skips a field that field() returned (unless it read its range already). */
  skipRest(wireType: number): void {
    if (this.start < 0) this.skip(wireType);
  }

  /** Reads a fixed64 field (into `lo`/`hi`) after checking its wire type. */
  fixed64Of(wireType: number, field: string): void {
    if (wireType !== I64) throw wrongWireType(field, wireType, I64);
    this.fixed64();
  }

  /** Reads a double field after checking its wire type. */
  doubleOf(wireType: number, field: string): number {
    if (wireType !== I64) throw wrongWireType(field, wireType, I64);
    return this.double();
  }

  /** Reads a fixed32 field after checking its wire type. */
  fixed32Of(wireType: number, field: string): number {
    if (wireType !== I32) throw wrongWireType(field, wireType, I32);
    return this.fixed32();
  }

  /** Reads a varint field (low 32 bits) after checking its wire type. */
  uint32Of(wireType: number, field: string): number {
    if (wireType !== VARINT) throw wrongWireType(field, wireType, VARINT);
    return this.uint32();
  }

  /** Reads a length-delimited field (into `start`/`stop`) after checking its wire type. */
  bytesOf(wireType: number, field: string): void {
    if (wireType !== LEN) throw wrongWireType(field, wireType, LEN);
    this.bytes();
  }

  /** Skips a field of the given wire type. */
  skip(wireType: number): void {
    switch (wireType) {
      case VARINT:
        this.varint64();
        return;
      case I64:
        if (this.pos + 8 > this.end) throw new DecodeError("truncated fixed64");
        this.pos += 8;
        return;
      case LEN:
        this.bytes();
        return;
      case I32:
        if (this.pos + 4 > this.end) throw new DecodeError("truncated fixed32");
        this.pos += 4;
        return;
      default:
        throw new DecodeError(`unsupported wire type ${wireType}`);
    }
  }
}

/** The error for a known field that arrived with the wrong wire type. */
export function wrongWireType(field: string, got: number, want: number): DecodeError {
  return new DecodeError(`wrong wire type ${WIRE_NAMES[got] ?? got} (expected ${WIRE_NAMES[want]})`, field);
}

/** A signed 64-bit (lo, hi) pair as an exact decimal string. */
export function int64ToDecimal(lo: number, hi: number): string {
  if (hi === 0) return String(lo);
  if (hi === 0xffffffff && lo !== 0) return String(lo - 4294967296);
  const v = hi * 4294967296 + lo;
  if (hi < 0x200000) return String(v);
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/** A signed 64-bit (lo, hi) pair as a float64 (as_int metric values become Float64 columns). */
export function int64ToNumber(lo: number, hi: number): number {
  return (hi | 0) * 4294967296 + lo;
}

/** Zig-zag decoding of a 32-bit sint32. */
export function zigzag32(v: number): number {
  return (v >>> 1) ^ -(v & 1);
}

/** Whether `buf[start, end)` is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
export function isUtf8(buf: Uint8Array, start: number, end: number): boolean {
  const i = asciiPrefixEnd(buf, start, end);
  return i === end || isUtf8From(buf, i, end);
}

/** Whether `buf[start, end)` is all ASCII (so also UTF-8). */
export function isAscii(buf: Uint8Array, start: number, end: number): boolean {
  return asciiPrefixEnd(buf, start, end) === end;
}

// A view of the last buffer checked: calls come by the thousand for ranges of one request.
let viewOf: Uint8Array | undefined, view: DataView = new DataView(new ArrayBuffer(0));

/**
 * Where the ASCII bytes at the start of `buf[start, end)` end (at most eight bytes before the first
 * non-ASCII byte, or `end`). ASCII is nearly all text here: eight bytes at a time.
 */
function asciiPrefixEnd(buf: Uint8Array, start: number, end: number): number {
  if (buf !== viewOf) viewOf = buf, view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const v = view;
  let i = start;
  if (end - start >= 8) {
    for (; i + 8 <= end; i += 8) {
      if (((v.getUint32(i, true) | v.getUint32(i + 4, true)) & 0x80808080) !== 0) return i;
    }
    // The tail as the last eight bytes (overlapping what was checked) rather than a byte loop.
    const j = end - 8;
    if (i < end && ((v.getUint32(j, true) | v.getUint32(j + 4, true)) & 0x80808080) !== 0) return j;
    return end;
  }
  if (end - start >= 4) {
    return ((v.getUint32(start, true) | v.getUint32(end - 4, true)) & 0x80808080) !== 0 ? start : end;
  }
  for (; i < end; i++) if (buf[i] >= 0x80) return i;
  return end;
}

function isUtf8From(buf: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const b = buf[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    if (b >= 0xc2 && b <= 0xdf) {
      if (i + 1 >= end || (buf[i + 1] & 0xc0) !== 0x80) return false;
      i += 2;
    } else if (b >= 0xe0 && b <= 0xef) {
      if (i + 2 >= end) return false;
      const b1 = buf[i + 1];
      if ((b1 & 0xc0) !== 0x80 || (buf[i + 2] & 0xc0) !== 0x80) return false;
      if (b === 0xe0 && b1 < 0xa0) return false;
      if (b === 0xed && b1 > 0x9f) return false;
      i += 3;
    } else if (b >= 0xf0 && b <= 0xf4) {
      if (i + 3 >= end) return false;
      const b1 = buf[i + 1];
      if ((b1 & 0xc0) !== 0x80 || (buf[i + 2] & 0xc0) !== 0x80 || (buf[i + 3] & 0xc0) !== 0x80) return false;
      if (b === 0xf0 && b1 < 0x90) return false;
      if (b === 0xf4 && b1 > 0x8f) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}
