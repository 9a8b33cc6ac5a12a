/**
 * OTLP/JSON decode speed and memory, for before/after comparisons of the JSON decoder:
 *
 * - `deno run -A bench/json_decode.ts speed [--sizes=10000,100000] [--runs=7]`: MB/s of JSON body
 *   decoded (`decodeRequest`, format "json") per signal and size, the median of `runs` runs, with
 *   protobuf of the same request for reference. Prints a markdown table.
 * - `deno run -A --v8-flags=--max-semi-space-size=4 bench/json_decode.ts memory [--mb=60] [--signal=logs]`:
 *   decodes one JSON request of about `mb` MB in a fresh process and prints the peak RSS and JS heap
 *   sampled every 5 ms while it decodes (run it once per variant; it starts from a settled heap).
 *
 * Timings on a shared machine are noisy: compare runs made back to back, and say so with the numbers.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { decodeRequest } from "../src/core/convert.ts";
import { encodeJson, encodeProtobuf, generateRequest, type Signal } from "./data.ts";

const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    sizes: { type: "string", default: "10000,100000" },
    runs: { type: "string", default: "7" },
    mb: { type: "string", default: "60" },
    signal: { type: "string", default: "logs" },
  },
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Median MB/s of decoding `body` `runs` times (after one warm-up run). */
function speed(signal: Signal, body: Uint8Array, format: "json" | "protobuf", runs: number): number {
  decodeRequest(signal, body, { format });
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    decodeRequest(signal, body, { format });
    times.push(performance.now() - t0);
  }
  return body.length / 1e6 / (median(times) / 1000);
}

if (positionals[0] === "memory") {
  const signal = values.signal as Signal;
  const target = Number(values.mb) * 1e6;
  // Sized from a small sample: records ≈ target / (JSON bytes per record).
  const sample = encodeJson(generateRequest(signal, 1000, { seed: 7 })).length / 1000;
  const records = Math.round(target / sample);
  let body: Uint8Array | undefined = encodeJson(generateRequest(signal, records, { seed: 7 }));
  const bodyBytes = body.length;
  // Let the generator's garbage go before measuring.
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 50));
  const before = Deno.memoryUsage();
  let peakRss = before.rss, peakHeap = before.heapUsed;
  const sampler = setInterval(() => {
    const m = Deno.memoryUsage();
    peakRss = Math.max(peakRss, m.rss), peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 5);
  // Decoded in slices so the sampler runs between them (the server decodes so too).
  const { decodeRequestAsync } = await import("../src/core/convert.ts");
  const t0 = performance.now();
  const decoded = await decodeRequestAsync(signal, body, {
    format: "json",
    pause: () => new Promise((r) => setTimeout(r, 0)),
  });
  const ms = performance.now() - t0;
  clearInterval(sampler);
  const m = Deno.memoryUsage();
  peakRss = Math.max(peakRss, m.rss), peakHeap = Math.max(peakHeap, m.heapUsed);
  body = undefined;
  const mb = (n: number) => (n / 1e6).toFixed(0);
  console.log(
    `${signal}: ${mb(bodyBytes)} MB JSON body, ${decoded.records} records, decoded in ${ms.toFixed(0)} ms; ` +
      `RSS ${mb(before.rss)} MB before, peak ${mb(peakRss)} MB (+${mb(peakRss - before.rss)}); ` +
      `JS heap ${mb(before.heapUsed)} MB before, peak ${mb(peakHeap)} MB (+${
        mb(peakHeap - before.heapUsed)
      })`,
  );
} else {
  const runs = Number(values.runs);
  const rows = [
    "| signal | records | JSON body | JSON decode | protobuf decode |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const signal of ["logs", "traces", "metrics"] as const) {
    for (const records of values.sizes.split(",").map(Number)) {
      const request = generateRequest(signal, records, { seed: 42 });
      const json = encodeJson(request), pb = encodeProtobuf(signal, request);
      const j = speed(signal, json, "json", runs), p = speed(signal, pb, "protobuf", runs);
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
