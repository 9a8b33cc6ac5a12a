/**
 * The worst decode cost per input byte: the amplifying requests of issue 10 at full size (64 MiB or
 * less), decoded with the default limits and with the limits lifted (to see the cost per unit), in
 * slices as the server does. Prints CPU time, the work counters, the decoded bytes and the longest slice
 * (the longest the event loop waits for another client). RSS is the process's, so run one case and one
 * setting a process (`CASE` 0-4, `LIMITS` defaults | uncapped):
 * `for c in 0 1 2 3 4; do for l in defaults uncapped; do CASE=$c LIMITS=$l node_modules/.bin/deno run -A
 * --v8-flags=--max-semi-space-size=4 bench/request_decode_cost.ts; done; done`.
 *
 * @module
 */

import process from "node:process";
import { decodeRequestAsync, type Format } from "../src/core/convert.ts";
import { type DecodeStats, UNCAPPED } from "../src/core/decode/decode_limits.ts";
import type { Signal } from "../src/core/table/schema.ts";

const MiB = 1 << 20;

function repeat(unit: number[], n: number): Uint8Array {
  const u = new Uint8Array(unit), out = new Uint8Array(u.length * n);
  for (let i = 0; i < n; i++) out.set(u, i * u.length);
  return out;
}

/** A length-delimited field `tag` around `body`. */
function ld(tag: number, body: Uint8Array): Uint8Array {
  const len: number[] = [];
  let n = body.length;
  while (n >= 0x80) len.push((n & 0x7f) | 0x80), n = Math.floor(n / 128);
  len.push(n);
  const out = new Uint8Array(1 + len.length + body.length);
  out[0] = tag, out.set(len, 1), out.set(body, 1 + len.length);
  return out;
}

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const cases: [string, Signal, Format, () => Uint8Array][] = [
  [
    "4M empty ResourceLogs{ScopeLogs{}}",
    "logs",
    "protobuf",
    () => repeat([0x0a, 0x02, 0x12, 0x00], 4_000_000),
  ],
  ["JSON Lines of 22M {}", "logs", "jsonl", () => repeat([0x7b, 0x7d, 0x0a], 22_000_000)],
  ["33M empty log records", "logs", "protobuf", () => ld(0x0a, ld(0x12, repeat([0x12, 0x00], 33_000_000)))],
  // Just under the record cap: the decoded-bytes bound stops it, the slowest per input byte found.
  ["8M empty log records", "logs", "protobuf", () => ld(0x0a, ld(0x12, repeat([0x12, 0x00], 8_000_000)))],
  ["one span, 30M empty events", "traces", "protobuf", () => {
    return ld(0x0a, ld(0x12, ld(0x12, repeat([0x5a, 0x00], 30_000_000))));
  }],
];

const settings = {
  // As the server runs it: the decoded bytes bounded by 4 × the 64 MiB payload limit.
  defaults: { maxDecodedBytes: 4 * 64 * MiB },
  uncapped: { ...UNCAPPED, maxDecodedBytes: Infinity },
};
const only = Number(Deno.env.get("CASE") ?? NaN);
const which = Deno.env.get("LIMITS");
for (const [i, [name, signal, format, build]] of cases.entries()) {
  if (only >= 0 && i !== only) continue;
  const body = build();
  for (const [label, limits] of Object.entries(settings)) {
    if (which && label !== which) continue;
    const stats = {} as DecodeStats;
    let longest = 0, last = cpu();
    const start = last;
    let outcome: string;
    try {
      const d = await decodeRequestAsync(signal, body, {
        format,
        ...limits,
        stats,
        pause: () => {
          const now = cpu();
          longest = Math.max(longest, now - last);
          return new Promise((r) => setImmediate(() => (last = cpu(), r())));
        },
      });
      outcome = `${d.records} records`;
    } catch (e) {
      outcome = (e as Error).message.replace(/^cannot decode \w+ request: /, "").slice(0, 70);
    }
    longest = Math.max(longest, cpu() - last);
    const ms = cpu() - start;
    console.log(
      `${name} (${(body.length / MiB).toFixed(1)} MiB) ${label}: ${ms.toFixed(0)} ms CPU, ` +
        `${(ms * 1e6 / body.length).toFixed(1)} ns/byte, longest slice ${longest.toFixed(1)} ms, ` +
        `${stats.envelopes} envelopes (${stats.envelopesDecoded} decoded), ${stats.records} records, ` +
        `${stats.items} items, ${(stats.decodedBytes / MiB).toFixed(0)} MiB decoded, ` +
        `RSS ${(Deno.memoryUsage().rss / MiB).toFixed(0)} MiB: ${outcome}`,
    );
  }
}
