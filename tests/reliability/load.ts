/**
 * Concurrent OTLP clients for the reliability tests: each sends protobuf logs requests whose records
 * carry unique ids, and remembers which ids were acknowledged (200) and which were not (any other
 * status, a dropped connection, a timeout). With `retry`, a client resends an unanswered request with the
 * same bytes until it gets its 200, as the Collector's `retry_on_failure` does.
 *
 * @module
 */

import { idLogsJson, idLogsRequest } from "./otlp_proto.ts";

/** A small deterministic PRNG (mulberry32) so a failing run can be repeated with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed from `RELIABILITY_SEED`, else a fresh one; printed so a failure can be replayed. */
export function seedFor(test: string): number {
  const fixed = Deno.env.get("RELIABILITY_SEED");
  const seed = fixed ? Number(fixed) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  console.log(`${test}: seed ${seed} (repeat with RELIABILITY_SEED=${seed})`);
  return seed;
}

/** Options of {@linkcode startLoad}. */
export interface LoadOptions {
  /** The server's base URL now (it changes when the server restarts on a new port). */
  url: () => string;
  /** Concurrent clients. Default 4. */
  clients?: number;
  seed: number;
  /** Prefix of every id (unique per run). */
  prefix: string;
  /** Records per request, chosen uniformly in [1, maxRecords]. Default 20. */
  maxRecords?: number;
  /** Bytes of padding per record id, to make requests bigger. Default 0. */
  padding?: number;
  /** Services the requests are spread over (one batch each). Default 3. */
  services?: number;
  /** Per-request timeout in ms. Default 10 000. */
  timeoutMs?: number;
  /** Pause between requests of one client, in ms. Default 0. */
  pauseMs?: number;
  /** Send OTLP/JSON instead of protobuf. Default false. */
  json?: boolean;
  /**
   * Resend a request that got no 200 (a failure, a timeout, 429, 503) with the same bytes until it does or
   * the load stops, instead of moving on. Default false.
   */
  retry?: boolean;
}

/** What the clients saw. */
export interface LoadResult {
  acked: Set<string>;
  unacked: Set<string>;
  requests: number;
  ackedRequests: number;
  /** Body bytes of the acknowledged requests. */
  ackedBytes: number;
  /** Count per HTTP status; network failures under 0. */
  statuses: Map<number, number>;
  /** 429/503 answers that carried no Retry-After header. */
  missingRetryAfter: number;
  /** Requests sent again with the same bytes (with `retry`). */
  resent: number;
}

/** A running load. */
export interface Load {
  /** What has been seen so far (live). */
  readonly result: LoadResult;
  /** Stops the clients and waits for their last requests. */
  stop(): Promise<LoadResult>;
}

/** Starts the clients; they run until `stop()`. */
export function startLoad(options: LoadOptions): Load {
  const clients = options.clients ?? 4;
  const maxRecords = options.maxRecords ?? 20;
  const services = options.services ?? 3;
  const pad = "x".repeat(options.padding ?? 0);
  const result = emptyResult();
  let running = true;
  const count = (status: number) => result.statuses.set(status, (result.statuses.get(status) ?? 0) + 1);

  const client = async (c: number) => {
    const random = prng(options.seed + c * 7919);
    for (let n = 0; running; n++) {
      const records = 1 + Math.floor(random() * maxRecords);
      const ids = Array.from({ length: records }, (_, k) => `${options.prefix}-${c}-${n}-${k}${pad}`);
      const service = `svc-${Math.floor(random() * services)}`;
      const body = options.json ? idLogsJson(service, ids) : idLogsRequest(service, ids);
      result.requests++;
      let status = 0;
      for (let attempt = 0;; attempt++) {
        if (attempt > 0) result.resent++;
        try {
          const response = await fetch(`${options.url()}/v1/logs`, {
            method: "POST",
            headers: { "content-type": options.json ? "application/json" : "application/x-protobuf" },
            body,
            signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
          });
          await response.arrayBuffer();
          status = response.status;
          if ((status === 429 || status === 503) && !response.headers.get("retry-after")) {
            result.missingRetryAfter++;
          }
        } catch {
          status = 0;
        }
        count(status);
        if (status === 200 || !options.retry || !running) break;
        await new Promise((r) => setTimeout(r, status === 0 ? 20 : 50));
      }
      if (status === 200) {
        result.ackedRequests++;
        result.ackedBytes += body.length;
        for (const id of ids) result.acked.add(id);
      } else {
        for (const id of ids) result.unacked.add(id);
        // Server down or refusing: do not spin.
        await new Promise((r) => setTimeout(r, status === 0 ? 20 : 50));
      }
      if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
    }
  };
  const done = Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  return {
    result,
    async stop() {
      running = false;
      await done;
      return result;
    },
  };
}

function emptyResult(): LoadResult {
  return {
    acked: new Set(),
    unacked: new Set(),
    requests: 0,
    ackedRequests: 0,
    ackedBytes: 0,
    statuses: new Map(),
    missingRetryAfter: 0,
    resent: 0,
  };
}

/** What several loads saw, together. */
export function mergeResults(results: readonly LoadResult[]): LoadResult {
  const out = emptyResult();
  for (const r of results) {
    for (const id of r.acked) out.acked.add(id);
    for (const id of r.unacked) out.unacked.add(id);
    out.requests += r.requests;
    out.ackedRequests += r.ackedRequests;
    out.ackedBytes += r.ackedBytes;
    out.missingRetryAfter += r.missingRetryAfter;
    out.resent += r.resent;
    for (const [s, n] of r.statuses) out.statuses.set(s, (out.statuses.get(s) ?? 0) + n);
  }
  return out;
}

/** `{200: 812, 0: 14}` as a short string. */
export function describeStatuses(statuses: Map<number, number>): string {
  return [...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s === 0 ? "failed" : s}: ${n}`).join(
    ", ",
  );
}
