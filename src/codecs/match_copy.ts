/**
 * The literal and back-reference copies shared by the LZ77-family decoders (snappy, LZ4, zstd).
 * Internal to them, and positional (no options object) because they run once per sequence.
 *
 * @module
 */

/**
 * Copies `length` literal bytes from `src[sp..]` to `dst[dp..]` (different arrays, both checked by the
 * caller): a loop for the short runs that dominate, `set` for long ones.
 */
export function copyLiterals(dst: Uint8Array, dp: number, src: Uint8Array, sp: number, length: number): void {
  if (length <= 16) {
    for (let i = 0; i < length; i++) dst[dp + i] = src[sp + i];
  } else {
    dst.set(src.subarray(sp, sp + length), dp);
  }
}

/**
 * Copies `length` bytes from `offset` bytes behind `pos` to `pos` within `buf`. The regions may
 * overlap (offset < length repeats the last `offset` bytes), which `copyWithin` alone would not do.
 * The caller has checked that `1 <= offset <= pos` and that `pos + length` fits in `buf`.
 */
export function copyMatch(buf: Uint8Array, pos: number, offset: number, length: number): void {
  const from = pos - offset;
  if (length <= 16) {
    for (let i = 0; i < length; i++) buf[pos + i] = buf[from + i];
    return;
  }
  if (offset >= length) {
    buf.copyWithin(pos, from, from + length);
    return;
  }
  // Overlapping: each pass copies everything written so far of the repeating pattern, doubling it.
  let done = 0;
  let span = offset;
  while (done < length) {
    const step = Math.min(span, length - done);
    buf.copyWithin(pos + done, from, from + step);
    done += step;
    span += step;
  }
}
