/**
 * Fuzz inputs: a corpus of valid OTLP requests (logs, traces, metrics; protobuf and JSON) and fast-check
 * arbitraries of mutations to them: bit flips, byte insertions, deletions and overwrites, truncations,
 * and tweaks aimed at the protobuf structure itself (length prefixes and wire types of real fields).
 *
 * @module
 */

import fc from "fast-check";
import type { Signal } from "../../src/core/table/schema.ts";
import {
  anyValue,
  type Bytes,
  concat,
  deeplyNestedLogsRequest,
  idLogsJson,
  idLogsRequest,
  keyValue,
  logRecord,
  logsRequest,
  metricsRequest,
  tracesRequest,
  varint,
} from "./otlp_proto.ts";

/** One valid request and where its protobuf structure is. */
export interface Seed {
  readonly name: string;
  readonly signal: Signal;
  readonly format: "protobuf" | "json";
  readonly bytes: Bytes;
  /** Offsets of field tags (protobuf only). */
  readonly tags: number[];
  /** Length prefixes of length-delimited fields: offset, byte count and value (protobuf only). */
  readonly lengths: { at: number; size: number; value: number }[];
}

function readVarint(buf: Uint8Array, at: number, end: number): { value: number; next: number } | undefined {
  let value = 0, scale = 1;
  for (let i = at; i < end && i < at + 10; i++) {
    value += (buf[i] & 0x7f) * scale;
    scale *= 128;
    if (buf[i] < 0x80) return { value, next: i + 1 };
  }
  return undefined;
}

/** Walks a protobuf message; collects tags and length prefixes of every part that parses as a message. */
function walk(
  buf: Uint8Array,
  start: number,
  end: number,
  tags: number[],
  lengths: Seed["lengths"],
): boolean {
  const myTags: number[] = [], myLengths: Seed["lengths"] = [];
  let at = start;
  while (at < end) {
    const tag = readVarint(buf, at, end);
    if (!tag || tag.value < 8) return false;
    myTags.push(at);
    at = tag.next;
    switch (tag.value & 7) {
      case 0: {
        const v = readVarint(buf, at, end);
        if (!v) return false;
        at = v.next;
        break;
      }
      case 1:
        at += 8;
        break;
      case 5:
        at += 4;
        break;
      case 2: {
        const len = readVarint(buf, at, end);
        if (!len || len.next + len.value > end) return false;
        myLengths.push({ at, size: len.next - at, value: len.value });
        // Strings and packed numbers usually do not parse as messages; then only the prefix is kept.
        walk(buf, len.next, len.next + len.value, myTags, myLengths);
        at = len.next + len.value;
        break;
      }
      default:
        return false;
    }
    if (at > end) return false;
  }
  tags.push(...myTags);
  lengths.push(...myLengths);
  return true;
}

function seed(name: string, signal: Signal, bytes: Bytes, format: "protobuf" | "json" = "protobuf"): Seed {
  const tags: number[] = [], lengths: Seed["lengths"] = [];
  if (format === "protobuf") walk(bytes, 0, bytes.length, tags, lengths);
  return { name, signal, format, bytes, tags, lengths };
}

/** The valid requests the mutations start from. */
export function corpus(): Seed[] {
  const t = 1_700_000_000_000;
  const nested = anyValue.kvlist([
    keyValue("a", anyValue.array([anyValue.int(-5), anyValue.double(2.5), anyValue.bool(true)])),
    keyValue("b", anyValue.kvlist([keyValue("c", anyValue.bytes(new Uint8Array([0, 255, 7])))])),
    keyValue("d", anyValue.string("ünïcödé ✓")),
  ]);
  return [
    seed("logs: ids", "logs", idLogsRequest("svc", ["a-1", "a-2", "a-3"], t)),
    seed(
      "logs: ids, nested values, trace context",
      "logs",
      logsRequest([
        {
          service: "checkout",
          records: [
            logRecord({
              timeMs: t,
              severity: 17,
              body: nested,
              attributes: [keyValue("http.status_code", anyValue.int(500)), keyValue("k", nested)],
              traceId: new Uint8Array(16).fill(3),
              spanId: new Uint8Array(8).fill(4),
            }),
            logRecord({ timeMs: t + 1, body: anyValue.bytes(new Uint8Array(5)) }),
          ],
        },
        { service: "", records: [logRecord({ timeMs: t + 2 })] },
      ]),
    ),
    seed("logs: nested 10 levels", "logs", deeplyNestedLogsRequest(10, { kvlist: true })),
    seed("traces", "traces", tracesRequest("api", 3, t)),
    seed("metrics: all five types", "metrics", metricsRequest("db", t)),
    seed("logs json", "logs", idLogsJson("svc", ["j-1", "j-2"], t), "json"),
  ];
}

/** One mutation; positions are taken modulo the input's length, so any mutation fits any input. */
export type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; length: number }
  | { kind: "overwrite"; at: number; bytes: Uint8Array }
  | { kind: "truncate"; at: number }
  | { kind: "length"; which: number; value: number | bigint; relative: boolean }
  | { kind: "wiretype"; which: number; wireType: number };

const ABSURD: (number | bigint)[] = [
  0,
  1,
  0x7f,
  0x80,
  0x3fff,
  0x7fffffff,
  0x80000000,
  0xffffffff,
  2 ** 32,
  2 ** 53,
  2n ** 63n,
  2n ** 64n - 1n,
];

/** Arbitrary mutations (one to four per case). */
export const mutationsArb: fc.Arbitrary<Mutation[]> = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({
      kind: fc.constant("insert" as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }),
    }),
    fc.record({
      kind: fc.constant("delete" as const),
      at: fc.nat(),
      length: fc.integer({ min: 1, max: 16 }),
    }),
    fc.record({
      kind: fc.constant("overwrite" as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
    fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
    fc.record({
      kind: fc.constant("length" as const),
      which: fc.nat(),
      value: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(...ABSURD)),
      relative: fc.boolean(),
    }).map((m) => ({ ...m, relative: m.relative && typeof m.value === "number" && Math.abs(m.value) <= 3 })),
    fc.record({
      kind: fc.constant("wiretype" as const),
      which: fc.nat(),
      wireType: fc.integer({ min: 0, max: 7 }),
    }),
  ),
  { minLength: 1, maxLength: 4, size: "xsmall" },
);

/** Applies mutations in order. Structure-aware ones use the seed's offsets while they still fit. */
export function mutate(s: Seed, mutations: Mutation[]): Bytes {
  let b: Bytes = s.bytes.slice();
  for (const m of mutations) {
    const n = b.length;
    switch (m.kind) {
      case "flip":
        if (n) b[m.at % n] ^= 1 << m.bit;
        break;
      case "insert": {
        const at = n ? m.at % (n + 1) : 0;
        b = concat(b.subarray(0, at), m.bytes, b.subarray(at));
        break;
      }
      case "delete": {
        if (!n) break;
        const at = m.at % n;
        b = concat(b.subarray(0, at), b.subarray(at + m.length));
        break;
      }
      case "overwrite":
        if (n) b.set(m.bytes.subarray(0, n - (m.at % n)), m.at % n);
        break;
      case "truncate":
        b = b.slice(0, n ? m.at % n : 0);
        break;
      case "length": {
        if (!s.lengths.length) break;
        const l = s.lengths[m.which % s.lengths.length];
        if (l.at + l.size > n) break;
        const value = m.relative ? Math.max(0, l.value + Number(m.value)) : m.value;
        b = concat(b.subarray(0, l.at), varint(value), b.subarray(l.at + l.size));
        break;
      }
      case "wiretype": {
        if (!s.tags.length) break;
        const at = s.tags[m.which % s.tags.length];
        if (at < n) b[at] = (b[at] & ~7) | m.wireType;
        break;
      }
    }
  }
  return b;
}

/** A short description of a failing case, for assertion messages. */
export function describeCase(s: Seed, mutations: Mutation[], bytes: Uint8Array): string {
  const hex = [...bytes.subarray(0, 256)].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `seed request "${s.name}", mutations ${
    JSON.stringify(
      mutations,
      (_, v) => v instanceof Uint8Array ? [...v] : typeof v === "bigint" ? `${v}n` : v,
    )
  }, ${bytes.length} bytes: ${hex}${bytes.length > 256 ? "…" : ""}`;
}
