/**
 * OTLP/HTTP load generator, run as its own process (pinned to its own core by `bench/e2e.ts`):
 *
 * ```sh
 * deno run -A bench/loadgen.ts --url http://127.0.0.1:4318/v1/logs --variant protobuf \
 *   --records 5000 --concurrency 4 --duration 15 --max-requests 2000
 * ```
 *
 * Builds a pool of distinct requests first, then keeps `concurrency` requests in flight until the
 * duration or the request count runs out (both bounded), every body unique (see `bodies.ts`). Prints
 * one JSON line (`LoadResult`) on stdout; progress goes to stderr. Only loopback URLs are accepted.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BodySource, type Variant, VARIANTS } from "./bodies.ts";
import type { Signal } from "./data.ts";
import { latencySummary, postLoad, quantile } from "../src/cli/bench.ts";

export { quantile };

/** What one load run measured. */
export interface LoadResult {
  url: string;
  signal: Signal;
  variant: Variant;
  concurrency: number;
  recordsPerRequest: number;
  /** Seconds spent building the body pool (before the clock starts). */
  prepareSeconds: number;
  /** Epoch ms of the first request and of the last response. */
  startMs: number;
  endMs: number;
  seconds: number;
  requests: number;
  /** Responses by status ("200", "429", …) plus "network" for requests that got no response. */
  statuses: Record<string, number>;
  /** Requests answered 2xx, and their records. */
  acked: number;
  ackedRecords: number;
  /** Bytes sent on the wire (after compression) and before compression, for acknowledged requests. */
  wireBytes: number;
  rawBytes: number;
  recordsPerSecond: number;
  /** Uncompressed request MB (10^6 bytes) per second. */
  rawMBps: number;
  wireMBps: number;
  /** Latency of acknowledged requests, ms. */
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
}

/** Options of a load run. */
export interface LoadOptions {
  /** Target URL; its host must be loopback. */
  url: string;
  /** Default "logs". */
  signal?: Signal;
  /** Default "protobuf". */
  variant?: Variant;
  /** Records per request; default 5000. */
  records?: number;
  /** Requests in flight; default 4. */
  concurrency?: number;
  /** Seconds of load; default 15 (at most 600). */
  duration?: number;
  /** Most requests sent; default 2000 (at most 100000). */
  maxRequests?: number;
  /** Distinct base requests; default 40. */
  pool?: number;
  /** Per-request timeout, seconds; default 60. */
  timeout?: number;
  /** Called now and then with a progress line. */
  progress?: (line: string) => void;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Runs one bounded load against a loopback OTLP/HTTP endpoint. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.url);
  if (!LOOPBACK.has(url.hostname)) throw new RangeError(`refusing non-loopback target ${url.hostname}`);
  const signal = options.signal ?? "logs";
  const variant = options.variant ?? "protobuf";
  const concurrency = Math.min(Math.max(options.concurrency ?? 4, 1), 64);
  const duration = Math.min(Math.max(options.duration ?? 15, 0.1), 600);
  const maxRequests = Math.min(Math.max(options.maxRequests ?? 2000, 1), 100_000);
  const timeoutMs = (options.timeout ?? 60) * 1000;
  const progress = options.progress ?? (() => {});

  const t0 = performance.now();
  const source = new BodySource(signal, variant, { records: options.records ?? 5000, pool: options.pool });
  // Build the first bodies once so lazy compilation is not billed to the first requests.
  for (let i = 0; i < concurrency; i++) source.body(i);
  const prepareSeconds = (performance.now() - t0) / 1000;

  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  let next = 0, acked = 0, ackedRecords = 0, wireBytes = 0, rawBytes = 0;
  const startMs = Date.now();
  const start = performance.now();
  const deadline = start + duration * 1000;
  let lastReport = start;

  const worker = async (): Promise<void> => {
    while (next < maxRequests && performance.now() < deadline) {
      const load = source.body(next++);
      const sent = performance.now();
      let status = "network";
      try {
        const res = await postLoad(url, load, { timeoutMs });
        await res.arrayBuffer();
        status = String(res.status);
        if (res.ok) {
          latencies.push(performance.now() - sent);
          acked++, ackedRecords += load.records, wireBytes += load.body.length, rawBytes += load.rawBytes;
        }
      } catch {
        // counted as "network"
      }
      statuses[status] = (statuses[status] ?? 0) + 1;
      const now = performance.now();
      if (now - lastReport > 5000) {
        lastReport = now;
        progress(`${((now - start) / 1000).toFixed(0)} s: ${acked} acked, ${JSON.stringify(statuses)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    url: url.href,
    signal,
    variant,
    concurrency,
    recordsPerRequest: source.records,
    prepareSeconds: round(prepareSeconds),
    startMs,
    endMs: Date.now(),
    seconds: round(seconds),
    requests: next,
    statuses,
    acked,
    ackedRecords,
    wireBytes,
    rawBytes,
    recordsPerSecond: Math.round(ackedRecords / seconds),
    rawMBps: round(rawBytes / 1e6 / seconds),
    wireMBps: round(wireBytes / 1e6 / seconds),
    latencyMs: {
      ...latencySummary(latencies),
      mean: round(latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1)),
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      url: { type: "string" },
      signal: { type: "string", default: "logs" },
      variant: { type: "string", default: "protobuf" },
      records: { type: "string", default: "5000" },
      concurrency: { type: "string", default: "4" },
      duration: { type: "string", default: "15" },
      "max-requests": { type: "string", default: "2000" },
      pool: { type: "string", default: "40" },
      timeout: { type: "string", default: "60" },
    },
  });
  if (!values.url) {
    console.error(
      "usage: loadgen.ts --url http://127.0.0.1:PORT/v1/logs [--variant protobuf|json|protobuf+gzip|json+gzip]",
    );
    Deno.exit(2);
  }
  if (!VARIANTS.includes(values.variant as Variant)) {
    console.error(`unknown variant ${values.variant}; one of ${VARIANTS.join(", ")}`);
    Deno.exit(2);
  }
  const result = await runLoad({
    url: values.url,
    signal: values.signal as Signal,
    variant: values.variant as Variant,
    records: Number(values.records),
    concurrency: Number(values.concurrency),
    duration: Number(values.duration),
    maxRequests: Number(values["max-requests"]),
    pool: Number(values.pool),
    timeout: Number(values.timeout),
    progress: (line) => console.error(`loadgen: ${line}`),
  });
  console.log(JSON.stringify(result));
}
