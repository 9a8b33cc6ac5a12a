/**
 * A growable byte buffer for building Parquet pages, and the RLE / bit-packing hybrid encoding that
 * Parquet uses for repetition and definition levels and dictionary indices.
 *
 * @module
 */

/** Appends bytes to one reusable buffer. */
export class ByteSink {
  buf: Uint8Array;
  pos = 0;
  constructor(capacity = 1 << 16) {
    this.buf = new Uint8Array(capacity);
  }

  /** Makes room for `n` more bytes. */
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /** The bytes written since `start` (a view, valid until the next write). */
  view(start = 0): Uint8Array {
    return this.buf.subarray(start, this.pos);
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  u32le(v: number): void {
    this.room(4);
    const b = this.buf, p = this.pos;
    b[p] = v & 0xff, b[p + 1] = (v >>> 8) & 0xff, b[p + 2] = (v >>> 16) & 0xff, b[p + 3] = v >>> 24;
    this.pos += 4;
  }

  /** Writes `v` in place at `at` (a length prefix reserved earlier). */
  u32leAt(at: number, v: number): void {
    const b = this.buf;
    b[at] = v & 0xff, b[at + 1] = (v >>> 8) & 0xff, b[at + 2] = (v >>> 16) & 0xff, b[at + 3] = v >>> 24;
  }

  varint(n: number): void {
    this.room(8);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  bytes(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.room(n);
    if (n < 24) {
      const b = this.buf;
      for (let i = start, j = this.pos; i < end; i++, j++) b[j] = src[i];
    } else this.buf.set(src.subarray(start, end), this.pos);
    this.pos += n;
  }
}

/** `parts` back to back in one new buffer (`total`: their summed length). A single part is returned as is. */
export function concatBytes(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

/** Bits needed to store values up to `max` (at least 1). */
export function bitWidth(max: number): number {
  let w = 1;
  while (max >= 2 ** w) w++;
  return w;
}

// A bit-packed run holds at most this many groups of 8, so its header is one byte (as common writers do).
const MAX_GROUPS = 63;

function repeatsFrom(values: ArrayLike<number>, i: number, end: number): number {
  const v = values[i];
  let j = i + 1;
  while (j < end && values[j] === v) j++;
  return j - i;
}

/**
 * Appends `values[start, end)` in the RLE / bit-packing hybrid with `width` bits a value (1-24): runs of 8
 * or more equal values as RLE runs, the rest bit-packed in groups of 8 (the last group zero-padded).
 */
export function writeHybrid(
  sink: ByteSink,
  values: ArrayLike<number>,
  start: number,
  end: number,
  width: number,
): void {
  const valueBytes = (width + 7) >> 3;
  let i = start;
  while (i < end) {
    const run = repeatsFrom(values, i, end);
    if (run >= 8) {
      sink.varint(run * 2);
      const v = values[i];
      sink.room(valueBytes);
      for (let b = 0; b < valueBytes; b++) sink.buf[sink.pos++] = (v >>> (8 * b)) & 0xff;
      i += run;
      continue;
    }
    // Bit-pack groups of 8 until a group boundary starts a run worth an RLE run, or the values end.
    const from = i;
    let groups = 0;
    do {
      i += 8;
      groups++;
    } while (i < end && groups < MAX_GROUPS && repeatsFrom(values, i, Math.min(end, i + 8)) < 8);
    sink.varint(groups * 2 + 1);
    sink.room(groups * width);
    const buf = sink.buf;
    let pos = sink.pos, acc = 0, bits = 0;
    const stop = from + groups * 8;
    for (let k = from; k < stop; k++) {
      acc |= (k < end ? values[k] : 0) << bits;
      bits += width;
      while (bits >= 8) {
        buf[pos++] = acc & 0xff;
        acc >>>= 8;
        bits -= 8;
      }
    }
    sink.pos = pos;
    if (i > end) i = end;
  }
}
