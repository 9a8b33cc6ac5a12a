/**
 * A Thrift compact-protocol reader for tests, written from the protocol specification independently of
 * the writer in `src/core/parquet/thrift.ts`: it decodes any struct into a tree keyed by field id, so tests can
 * read a Parquet footer, page headers, page indexes and bloom filter headers back byte for byte.
 */

/** A decoded value: numbers as bigint (i64) or number, binaries as bytes, structs as Maps by field id. */
export type ThriftValue = boolean | number | bigint | Uint8Array | ThriftValue[] | ThriftStruct;
export type ThriftStruct = Map<number, ThriftValue>;

/** Reads structs from `bytes` starting at `pos`; `pos` advances past each one read. */
export class ThriftReader {
  constructor(readonly bytes: Uint8Array, public pos = 0) {}

  #varint(): bigint {
    let v = 0n, shift = 0n;
    for (;;) {
      const b = this.bytes[this.pos++];
      if (b === undefined) throw new RangeError("thrift: read past the end");
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
      shift += 7n;
    }
  }

  #zigzag(): bigint {
    const v = this.#varint();
    return (v >> 1n) ^ -(v & 1n);
  }

  #value(type: number): ThriftValue {
    switch (type) {
      case 1:
        return true;
      case 2:
        return false;
      case 3:
        return (this.bytes[this.pos++] << 24) >> 24;
      case 4:
      case 5:
        return Number(this.#zigzag());
      case 6:
        return this.#zigzag();
      case 7: {
        const v = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 8).getFloat64(0, true);
        this.pos += 8;
        return v;
      }
      case 8: {
        const n = Number(this.#varint());
        const b = this.bytes.subarray(this.pos, this.pos + n);
        this.pos += n;
        return b;
      }
      case 9:
      case 10: {
        const head = this.bytes[this.pos++];
        let n = head >> 4;
        if (n === 15) n = Number(this.#varint());
        const elem = head & 15;
        const out: ThriftValue[] = [];
        for (let i = 0; i < n; i++) {
          // Booleans in a list are one byte each: 1 true, 2 false (some writers use 0 for false).
          if (elem === 1 || elem === 2) out.push(this.bytes[this.pos++] === 1);
          else out.push(this.#value(elem));
        }
        return out;
      }
      case 12:
        return this.struct();
      default:
        throw new RangeError(`thrift: unknown type ${type} at ${this.pos}`);
    }
  }

  /** Reads one struct. */
  struct(): ThriftStruct {
    const out: ThriftStruct = new Map();
    let last = 0;
    for (;;) {
      const head = this.bytes[this.pos++];
      if (head === 0) return out;
      const type = head & 15, delta = head >> 4;
      const id = delta ? last + delta : Number(this.#zigzag());
      out.set(id, this.#value(type));
      last = id;
    }
  }
}

/** The footer (FileMetaData) of a Parquet file. */
export function parquetFooter(file: Uint8Array): ThriftStruct {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const length = view.getUint32(file.length - 8, true);
  return new ThriftReader(file, file.length - 8 - length).struct();
}

/** Field `id` of a struct, typed by the caller. */
export function field<T extends ThriftValue>(s: ThriftStruct, id: number): T {
  return s.get(id) as T;
}
