/**
 * OTLP/JSON decode speed and memory, for before/after comparisons of the JSON decoder:
 *
 * - `deno run -A bench/json_decode.ts speed [--sizes=10000,100000] [--runs=7] [--warmup=1]
 *   [--signals=logs,traces,metrics]`: MB/s of JSON body decoded (`decodeRequest`, format "json") per
 *   signal and size, the median of `runs` runs after `warmup` runs not measured, with protobuf of the same
 *   request for reference. Prints a markdown table. One warm-up run leaves the JIT still compiling the
 *   decoder for 10k-record requests; `--warmup=20 --runs=60` gives the steady state a server decodes in.
 * - `deno run -A bench/json_decode.ts write [--mb=60] [--signal=logs]` writes one request of about `mb`
 *   MB of JSON to `.bench/<signal>.json` (and `.pb`, the same request in protobuf); then
 *   `deno run -A --v8-flags=--max-semi-space-size=4,--expose-gc bench/json_decode.ts memory
 *   [--signal=logs] [--format=json|protobuf]` decodes it once in a fresh process (as the server does: in
 *   slices) and prints how far RSS and the JS heap rose above where they stood before, sampled every 2 ms.
 *
 * Timings on a shared machine are noisy: compare runs made back to back, and say so with the numbers.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { decodeRequest, decodeRequestAsync } from "../src/core/convert.ts";
import type { DecodeStats } from "../src/core/decode/decode_limits.ts";
import { encodeJson, encodeProtobuf, generateRequest, type Signal } from "./data.ts";

const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    sizes: { type: "string", default: "10000,100000" },
    runs: { type: "string", default: "7" },
    warmup: { type: "string", default: "1" },
    signals: { type: "string", default: "logs,traces,metrics" },
    mb: { type: "string", default: "60" },
    signal: { type: "string", default: "logs" },
    format: { type: "string", default: "json" },
  },
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/**
 * The JSON and protobuf bodies of one generated request. Only the bytes outlive this call: the request's
 * JS object tree (65 MB of heap for 100k metrics points) would be marked by every full GC while decoding,
 * which the server has no such tree to do (it made protobuf decoding 1.6x slower in some runs, not others).
 */
function bodies(signal: Signal, records: number): [Uint8Array, Uint8Array] {
  const request = generateRequest(signal, records, { seed: 42 });
  return [encodeJson(request), encodeProtobuf(signal, request)];
}

/** Median MB/s of decoding `body` `runs` times (after `warmup` runs not measured). */
function speed(
  signal: Signal,
  body: Uint8Array,
  format: "json" | "protobuf",
  runs: number,
  warmup: number,
): number {
  for (let i = 0; i < warmup; i++) decodeRequest(signal, body, { format });
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    decodeRequest(signal, body, { format });
    times.push(performance.now() - t0);
  }
  return body.length / 1e6 / (median(times) / 1000);
}

if (positionals[0] === "write") {
  // One request of about `mb` MB of JSON, as JSON and protobuf files, for `memory` to read.
  const signal = values.signal as Signal;
  const sample = encodeJson(generateRequest(signal, 1000, { seed: 7 })).length / 1000;
  const request = generateRequest(signal, Math.round(Number(values.mb) * 1e6 / sample), { seed: 7 });
  Deno.mkdirSync(".bench", { recursive: true });
  Deno.writeFileSync(`.bench/${signal}.json`, encodeJson(request));
  Deno.writeFileSync(`.bench/${signal}.pb`, encodeProtobuf(signal, request));
} else if (positionals[0] === "memory") {
  // Decodes `.bench/<signal>.<format>` (see `write`) once in this process, sampling RSS and heap.
  const signal = values.signal as Signal, format = values.format === "protobuf" ? "protobuf" : "json";
  const body = Deno.readFileSync(`.bench/${signal}.${format === "json" ? "json" : "pb"}`);
  (globalThis as { gc?: () => void }).gc?.();
  const before = Deno.memoryUsage();
  let peakRss = before.rss, peakHeap = before.heapUsed;
  const sampler = setInterval(() => {
    const m = Deno.memoryUsage();
    peakRss = Math.max(peakRss, m.rss), peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 2);
  // Decoded in slices, as the server decodes, so that the sampler runs between them.
  const stats = {} as DecodeStats;
  const t0 = performance.now();
  const decoded = await decodeRequestAsync(signal, body, {
    format,
    stats,
    pause: () => new Promise((r) => setTimeout(r, 0)),
  });
  const ms = performance.now() - t0;
  clearInterval(sampler);
  const m = Deno.memoryUsage();
  peakRss = Math.max(peakRss, m.rss), peakHeap = Math.max(peakHeap, m.heapUsed);
  const mb = (n: number) => (n / 1e6).toFixed(0);
  console.log(
    `${signal} ${format}: ${mb(body.length)} MB body, ${decoded.records} records (${
      mb(stats.decodedBytes)
    } MB of rows), ${ms.toFixed(0)} ms; RSS ${mb(before.rss)} MB before, peak +${
      mb(peakRss - before.rss)
    } MB; JS heap ${mb(before.heapUsed)} MB before, peak +${mb(peakHeap - before.heapUsed)} MB`,
  );
} else {
  const runs = Number(values.runs), warmup = Number(values.warmup);
  const rows = [
    "| signal | records | JSON body | JSON decode | protobuf decode |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const signal of values.signals.split(",") as Signal[]) {
    for (const records of values.sizes.split(",").map(Number)) {
      const [json, pb] = bodies(signal, records);
      const j = speed(signal, json, "json", runs, warmup), p = speed(signal, pb, "protobuf", runs, warmup);
      rows.push(
        `| ${signal} | ${records} | ${(json.length / 1e6).toFixed(1)} MB | ${j.toFixed(0)} MB/s | ${
          p.toFixed(0)
        } MB/s |`,
      );
      console.error(rows[rows.length - 1]);
    }
  }
  console.log(rows.join("\n"));
}
