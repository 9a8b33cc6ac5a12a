/**
 * Test-only zstd frames built by construction from RFC 8878's parts, for the tests and the decode-cost
 * benchmark: hostile shapes (huge sequence counts, long RLE-coded matches, table rebuilds in every
 * block) that no real encoder writes but any client can send.
 *
 * @module
 */

export function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** A frame header: windowed when `descriptor` is given, else single-segment (content size required). */
export function frameHeader(
  { descriptor, contentSize, checksum = false }: {
    descriptor?: number;
    contentSize?: number;
    checksum?: boolean;
  },
): number[] {
  const single = descriptor === undefined;
  const fcsFlag = contentSize === undefined ? 0 : 2; // 4-byte content size
  const out = [0x28, 0xb5, 0x2f, 0xfd, (fcsFlag << 6) | (single ? 0x20 : 0) | (checksum ? 4 : 0)];
  if (!single) out.push(descriptor!);
  if (contentSize !== undefined) out.push(...le32(contentSize));
  return out;
}

export function blockHeader(type: number, size: number, last: boolean): number[] {
  const v = (size << 3) | (type << 1) | (last ? 1 : 0);
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff];
}

export function rawBlock(data: number[], last = false): number[] {
  return [...blockHeader(0, data.length, last), ...data];
}

export function rleBlock(byte: number, size: number, last = false): number[] {
  return [...blockHeader(1, size, last), byte];
}

function sequenceCount(n: number): number[] {
  if (n < 128) return [n];
  if (n < 0x7f00) return [(n >>> 8) + 128, n & 0xff];
  return [255, (n - 0x7f00) & 0xff, (n - 0x7f00) >>> 8];
}

/**
 * A compressed block with raw literals and `nbSeq` sequences whose three codes are fixed by RLE
 * modes (so each sequence costs no bits beyond its codes' extra bits), then `bitstream`.
 */
export function rleSequencesBlock(
  { literals = [], nbSeq, modes = 0x54, ll, of, ml, bitstream = [0x01], last = true }: {
    literals?: number[];
    modes?: number;
    nbSeq: number;
    ll: number;
    of: number;
    ml: number;
    bitstream?: number[];
    last?: boolean;
  },
): number[] {
  const n = literals.length;
  const litHeader = n < 32
    ? [n << 3]
    : n < 4096
    ? [(n << 4) | 0x04, n >>> 4]
    : [(n << 4) | 0x0c, n >>> 4, n >>> 12];
  const body = [...litHeader.map((b) => b & 0xff), ...literals, ...sequenceCount(nbSeq)];
  if (nbSeq > 0) body.push(modes, ll, of, ml, ...bitstream);
  return [...blockHeader(2, body.length, last), ...body];
}

export const HISTORY = [0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68]; // "abcdefgh"

/** LL code 0 (no literals), offset code 0 (a repeat offset), ML code 31 (34 bytes): no extra bits. */
export function longRun(
  nbSeq: number,
  extra: Partial<Parameters<typeof rleSequencesBlock>[0]> = {},
): Uint8Array {
  return new Uint8Array([
    ...frameHeader({ descriptor: 0x50 }), // 1 MiB window
    ...rawBlock(HISTORY),
    ...rleSequencesBlock({ nbSeq, ll: 0, of: 0, ml: 31, ...extra }),
  ]);
}

/**
 * The costliest valid block per input byte we know: 21 bytes that rebuild a 2048-entry Huffman table
 * (two symbols of weight 11) and three FSE sequence tables at their largest accuracy (all weight on
 * code 0: no literals, a repeat offset, a 3-byte match), for one sequence and one literal: 4 bytes out.
 * Needs 4 bytes of history before it.
 */
export function tableHeavyBlock(last = false): number[] {
  const literalsHeader = 2 | (1 << 4) | (3 << 14); // compressed, one stream, 1 literal in 3 bytes
  const body = [
    literalsHeader & 0xff,
    (literalsHeader >>> 8) & 0xff,
    (literalsHeader >>> 16) & 0xff,
    128, // tree: one direct weight (the second symbol's is implied)
    0xb0, // weight 11
    0x02, // the stream: one 0 bit, then the end marker
    1, // one sequence
    0xa8, // all three tables FSE-described
    0xf4, // LL: accuracy 9, all 512 states on code 0
    0x3f,
    0xf3, // OF: accuracy 8, all 256 states on code 0
    0x1f,
    0xf4, // ML: accuracy 9
    0x3f,
    0x00, // the sequences bitstream: the three initial states (26 zero bits), then the end marker
    0x00,
    0x00,
    0x04,
  ];
  return [...blockHeader(2, body.length, last), ...body];
}
