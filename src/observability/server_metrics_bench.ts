// What the metrics and the refusal log cost a request, and a scrape: `deno bench -A src/observability/server_metrics_bench.ts`.
import { newOutcome, type RequestOutcome } from "../http/handler.ts";
import { silentLogger } from "../ingest/ingest.ts";
import { RefusalLog } from "./refusal_log.ts";
import { ServerMetrics } from "./server_metrics.ts";

const metrics = new ServerMetrics();
const ok: RequestOutcome = {
  ...newOutcome(),
  signal: "logs",
  path: "/v1/logs",
  contentEncoding: "gzip",
  status: 200,
  wireBytes: 120_000,
  bodyBytes: 900_000,
  accepted: 1000,
  seconds: 0.012,
};
const notFound: RequestOutcome = {
  ...ok,
  signal: undefined,
  path: "/v1/log",
  status: 404,
  reason: "not_found",
};
for (let i = 0; i < 1000; i++) metrics.observe(notFound);

Deno.bench("observe: an accepted request (counters, 3 histograms)", { n: 1_000_000, warmup: 10_000 }, () => {
  metrics.observe(ok);
});

Deno.bench("observe: a refused request", { n: 1_000_000, warmup: 10_000 }, () => {
  metrics.observe(notFound);
});

Deno.bench("render: one scrape", { n: 2000, warmup: 100 }, () => {
  metrics.render();
});

const refusals = new RefusalLog(silentLogger);
const request = new Request("http://x/v1/log", { method: "POST" });
Deno.bench("refusal log: a refusal past the window's bound (counted, not logged)", {
  n: 1_000_000,
  warmup: 10_000,
}, () => {
  refusals.observe(notFound, request);
});
