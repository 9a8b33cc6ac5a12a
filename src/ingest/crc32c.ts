/**
 * CRC-32C (Castagnoli), the checksum of iSCSI, ext4 metadata and most log formats.
 *
 * Slicing-by-8: eight 256-entry tables let the loop consume 8 bytes per step, which is several
 * times faster than the byte-at-a-time table in a JS engine (the WAL checksums every byte it writes).
 *
 * @module
 */

/** Reflected form of the Castagnoli polynomial 0x1EDC6F41. */
const POLY = 0x82f63b78;

const TABLES: Int32Array[] = buildTables();

function buildTables(): Int32Array[] {
  const tables: Int32Array[] = [];
  const t0 = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c;
  }
  tables.push(t0);
  for (let t = 1; t < 8; t++) {
    const prev = tables[t - 1];
    const cur = new Int32Array(256);
    for (let n = 0; n < 256; n++) cur[n] = (prev[n] >>> 8) ^ t0[prev[n] & 0xff];
    tables.push(cur);
  }
  return tables;
}

/**
 * Computes the CRC-32C of `bytes`.
 *
 * `seed` is a previous result to continue from, so `crc32c(b, crc32c(a))` equals the CRC of `a`
 * followed by `b`. Defaults to 0 (a fresh checksum).
 *
 * @example
 * ```ts
 * crc32c(new TextEncoder().encode("123456789")); // 0xe3069283
 * ```
 */
export function crc32c(bytes: Uint8Array, seed = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  let crc = ~seed;
  let i = 0;
  const n = bytes.length;
  const end8 = n - (n % 8);
  while (i < end8) {
    const lo = crc ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    crc = t7[lo & 0xff] ^ t6[(lo >>> 8) & 0xff] ^ t5[(lo >>> 16) & 0xff] ^ t4[lo >>> 24] ^
      t3[bytes[i + 4]] ^ t2[bytes[i + 5]] ^ t1[bytes[i + 6]] ^ t0[bytes[i + 7]];
    i += 8;
  }
  while (i < n) crc = (crc >>> 8) ^ t0[(crc ^ bytes[i++]) & 0xff];
  return ~crc >>> 0;
}
