/**
 * A writer for Thrift's compact protocol, the encoding of Parquet's page headers and file footer. Only
 * what those structures use: structs, lists, i32, i64 (non-negative sizes and offsets), bool, binary (the
 * footer, page headers, page indexes and bloom filter headers).
 *
 * @module
 */

const enc = new TextEncoder();

/** Compact-protocol type ids. */
export const T = {
  TRUE: 1,
  FALSE: 2,
  BYTE: 3,
  I16: 4,
  I32: 5,
  I64: 6,
  DOUBLE: 7,
  BINARY: 8,
  LIST: 9,
  STRUCT: 12,
};

/** Writes one message; fields must be written in increasing id order inside each struct. */
export class CompactWriter {
  #buf = new Uint8Array(256);
  #pos = 0;
  #last = 0;
  #stack: number[] = [];

  /** The bytes written so far (a view; copy before writing more). */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
  }

  #byte(b: number): void {
    this.#room(1);
    this.#buf[this.#pos++] = b;
  }

  /** Unsigned varint of a non-negative integer below 2^53. */
  #varint(n: number): void {
    this.#room(8);
    while (n >= 0x80) {
      this.#buf[this.#pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.#buf[this.#pos++] = n;
  }

  #header(id: number, type: number): void {
    const delta = id - this.#last;
    if (delta > 0 && delta <= 15) this.#byte((delta << 4) | type);
    else {
      this.#byte(type);
      this.#varint(((id << 1) ^ (id >> 15)) & 0xffff);
    }
    this.#last = id;
  }

  #zigzag32(v: number): number {
    return ((v << 1) ^ (v >> 31)) >>> 0;
  }

  i32(id: number, v: number): this {
    this.#header(id, T.I32);
    this.#varint(this.#zigzag32(v));
    return this;
  }

  /** An i64 field holding a non-negative integer below 2^52 (sizes, offsets, counts). */
  i64(id: number, v: number): this {
    if (!(v >= 0 && v < 2 ** 52) || !Number.isInteger(v)) throw new RangeError(`i64 out of range: ${v}`);
    this.#header(id, T.I64);
    this.#varint(v * 2);
    return this;
  }

  /** An i8 field. */
  i8(id: number, v: number): this {
    this.#header(id, T.BYTE);
    this.#byte(v & 0xff);
    return this;
  }

  bool(id: number, v: boolean): this {
    this.#header(id, v ? T.TRUE : T.FALSE);
    return this;
  }

  binary(id: number, b: Uint8Array): this {
    this.#header(id, T.BINARY);
    this.#rawBinary(b);
    return this;
  }

  string(id: number, s: string): this {
    return this.binary(id, enc.encode(s));
  }

  #rawBinary(b: Uint8Array): void {
    this.#varint(b.length);
    this.#room(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
  }

  #listHeader(id: number, size: number, type: number): void {
    this.#header(id, T.LIST);
    if (size < 15) this.#byte((size << 4) | type);
    else {
      this.#byte(0xf0 | type);
      this.#varint(size);
    }
  }

  /** A nested struct field whose fields `body` writes. */
  struct(id: number, body: (w: this) => void): this {
    this.#header(id, T.STRUCT);
    this.#nested(body);
    return this;
  }

  #nested(body: (w: this) => void): void {
    this.#stack.push(this.#last);
    this.#last = 0;
    body(this);
    this.#byte(0);
    this.#last = this.#stack.pop()!;
  }

  structList<I>(id: number, items: readonly I[], body: (w: this, item: I) => void): this {
    this.#listHeader(id, items.length, T.STRUCT);
    for (const item of items) this.#nested((w) => body(w, item));
    return this;
  }

  i32List(id: number, values: readonly number[]): this {
    this.#listHeader(id, values.length, T.I32);
    for (const v of values) this.#varint(this.#zigzag32(v));
    return this;
  }

  /** A list of booleans: one byte each, 1 for true and 2 for false, as the compact protocol writes them. */
  boolList(id: number, values: readonly boolean[]): this {
    this.#listHeader(id, values.length, T.TRUE);
    for (const v of values) this.#byte(v ? T.TRUE : T.FALSE);
    return this;
  }

  /** A list of i64 holding non-negative integers below 2^52. */
  i64List(id: number, values: readonly number[]): this {
    this.#listHeader(id, values.length, T.I64);
    for (const v of values) {
      if (!(v >= 0 && v < 2 ** 52) || !Number.isInteger(v)) throw new RangeError(`i64 out of range: ${v}`);
      this.#varint(v * 2);
    }
    return this;
  }

  binaryList(id: number, values: readonly Uint8Array[]): this {
    this.#listHeader(id, values.length, T.BINARY);
    for (const v of values) this.#rawBinary(v);
    return this;
  }

  stringList(id: number, values: readonly string[]): this {
    this.#listHeader(id, values.length, T.BINARY);
    for (const v of values) this.#rawBinary(enc.encode(v));
    return this;
  }

  /** Ends the top-level struct. */
  end(): Uint8Array {
    this.#byte(0);
    return this.bytes();
  }
}
