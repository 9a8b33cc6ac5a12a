/**
 * One load run of `bench/scaling.ts`, in a process of its own (so it can be pinned to core 1 while the
 * server runs on core 0): the options of `runBench` (`src/cli/bench.ts`: closed loop, or open loop at
 * `rate` records/s with latency from each request's scheduled send time) as one JSON argument; prints the
 * result, plus `endMs` (epoch ms when the run ended), as one JSON line on stdout.
 *
 * ```sh
 * deno run -A bench/scaling_load.ts '{"endpoint":"http://127.0.0.1:4318","signal":"logs","encoding":"protobuf","compression":"none","recordsPerRequest":5000,"concurrency":8,"durationSecs":8,"pool":8}'
 * ```
 *
 * @module
 */

import { type BenchOptions, type BenchResult, runBench } from "../src/cli/bench.ts";

/** What the process prints. */
export interface ScalingLoadResult extends BenchResult {
  /** Epoch ms at the end of the run; the run started `seconds` before. */
  endMs: number;
}

if (import.meta.main) {
  const options = JSON.parse(Deno.args[0] ?? "{}") as BenchOptions;
  const url = new URL(options.endpoint);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    console.error(`scaling_load: refusing non-loopback target ${url.hostname}`);
    Deno.exit(2);
  }
  const result = await runBench(options);
  const out: ScalingLoadResult = { ...result, endMs: Date.now() };
  console.log(JSON.stringify(out));
}
