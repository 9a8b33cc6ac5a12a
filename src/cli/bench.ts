/**
 * `bench`: a load generator against any OTLP/HTTP endpoint (this server or another), with the request
 * bodies of `bench/` (`bench/bodies.ts`: realistic records from `bench/data.ts`, every body unique so a
 * server that names files by content stores every request).
 *
 * Two modes:
 * - `--rate N` (records/s): open loop. Request i is due at `start + i / (N / records per request)`
 *   whatever the answers so far; its latency is measured from that scheduled time, not from when it
 *   actually left, so a server that falls behind shows it as latency (no coordinated omission). At most
 *   `--concurrency` requests are in flight; when that is not enough, requests leave late (their latency
 *   includes the wait) and the summary says the target rate was not reached.
 * - `--max`: closed loop, `--concurrency` requests always in flight; latency from the actual send.
 *
 * Progress goes to stderr (overwritten in place with `\r` on a terminal, a plain line every 5 s
 * otherwise); the summary to stdout (text, or `--json`).
 *
 * @module
 */

import { zstdCompressSync } from "node:zlib";
import { BodySource, type LoadBody, type Variant } from "../../bench/bodies.ts";
import type { Signal } from "../core/table/schema.ts";
import type { CliIo } from "./convert.ts";

/** Options of a bench run. */
export interface BenchOptions {
  /** Base URL (`/v1/<signal>` is appended) or the full URL of the signal's path. */
  endpoint: string;
  /** Default `logs`. */
  signal?: Signal;
  /** Default `protobuf`. */
  encoding?: "protobuf" | "json";
  /** Request body compression; default `gzip`. */
  compression?: "gzip" | "zstd" | "none";
  /** Target records per second (open loop); absent: `max`. */
  rate?: number;
  /** Records per request; default 1000 (at least 2). */
  recordsPerRequest?: number;
  /** Requests in flight: exactly this many with `--max`, at most this many with `--rate`. Default 8. */
  concurrency?: number;
  /** Seconds of load; default 10 (at most 86400). */
  durationSecs?: number;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Per-request timeout, seconds; default 30. */
  timeoutSecs?: number;
  /**
   * Distinct base requests the bodies are built on (each body still unique); default 40, fewer for large
   * requests. Fewer is quicker to build before the clock starts.
   */
  pool?: number;
  /** Seed of the generated data; default: from the clock (each run sends new bodies). */
  seed?: number;
  /** Time of the first record, ns; default: 56 minutes ago (so the records are recent, not in the future). */
  startNs?: bigint;
  /** Progress lines; default none. `tty`: overwrite one line. */
  progress?: { write: (text: string) => void; tty: boolean };
  /** Clock in ms (tests); default `performance.now`. */
  now?: () => number;
}

/** What a bench run measured. */
export interface BenchResult {
  url: string;
  signal: Signal;
  encoding: string;
  compression: string;
  mode: "rate" | "max";
  recordsPerRequest: number;
  concurrency: number;
  /** Target records/s (rate mode). */
  targetRecordsPerSecond?: number;
  seconds: number;
  /** Requests sent (answered or not) and their records. */
  requests: number;
  records: number;
  /** Responses by HTTP status, plus `network` (no response) and `timeout`. */
  statuses: Record<string, number>;
  /** Records of 200 responses minus the records they rejected in `partial_success`. */
  acknowledgedRecords: number;
  /** Records rejected in `partial_success` of 200 responses. */
  rejectedRecords: number;
  /** Acknowledged records per second of the run. */
  recordsPerSecond: number;
  /** Request bytes sent (as on the wire, after compression) per second, MB (10^6 bytes). */
  wireMBps: number;
  /** The same before compression. */
  rawMBps: number;
  /** Latency of every answered request, ms (rate mode: from its scheduled send time). */
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** Rate mode: requests sent per second / scheduled per second, and whether it reached 95 % of the target. */
  achievedRecordsPerSecond?: number;
  targetReached?: boolean;
  /** Rate mode: the largest delay between a request's scheduled time and its actual send, ms. */
  maxSendLagMs?: number;
  /**
   * Rate mode: scheduled requests never sent, because the run was already twice its duration (every
   * request scheduled within the duration is sent otherwise, late if need be).
   */
  unsentRequests?: number;
}

/** The `q`-quantile (0..1) of sorted values (nearest rank). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** p50, p90, p99 and max of sorted latencies, ms, rounded to hundredths (0 when there are none). */
export function latencySummary(
  sorted: readonly number[],
): { p50: number; p90: number; p99: number; max: number } {
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    p50: round(quantile(sorted, 0.5)),
    p90: round(quantile(sorted, 0.9)),
    p99: round(quantile(sorted, 0.99)),
    max: round(sorted.at(-1) ?? 0),
  };
}

/** The URL requests go to: `endpoint` itself when it names a `/v1/<signal>` path, else with it appended. */
export function signalUrl(endpoint: string, signal: Signal): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new RangeError(`--endpoint ${endpoint}: not a URL (e.g. http://127.0.0.1:4318)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new RangeError(`--endpoint ${endpoint}: only http and https`);
  }
  if (!/\/v1\/(logs|traces|metrics)$/.test(url.pathname)) {
    url.pathname = url.pathname.replace(/\/$/, "") + `/v1/${signal}`;
  }
  return url;
}

/** Records a 200 response refused, from its `partial_success` (protobuf or JSON); 0 when none. */
export function rejectedOf(body: Uint8Array, contentType: string): number {
  if (body.length === 0) return 0;
  if (contentType.includes("json")) {
    try {
      const p = JSON.parse(new TextDecoder().decode(body))?.partialSuccess;
      const n = p?.rejectedLogRecords ?? p?.rejectedSpans ?? p?.rejectedDataPoints ?? 0;
      return Number(n) || 0;
    } catch {
      return 0;
    }
  }
  // Export*ServiceResponse { partial_success (1, message) { rejected_* (1, int64), error_message (2) } }
  let at = 0;
  const varint = (): number => {
    let v = 0, mul = 1;
    for (let i = 0; i < 10 && at < body.length; i++) {
      const b = body[at++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) break;
      mul *= 128;
    }
    return v;
  };
  while (at < body.length) {
    const tag = varint();
    if (tag === ((1 << 3) | 2)) {
      const end = at + varint();
      while (at < end) {
        const t = varint();
        if (t === (1 << 3)) return varint();
        if ((t & 7) === 2) at += varint();
        else if ((t & 7) === 0) varint();
        else return 0;
      }
      return 0;
    }
    if ((tag & 7) === 2) at += varint();
    else if ((tag & 7) === 0) varint();
    else return 0;
  }
  return 0;
}

/** POSTs one body with its content headers (and the token as a Bearer), failing after `timeoutMs`. */
export function postLoad(
  url: URL,
  load: LoadBody,
  options: { token?: string; timeoutMs: number },
): Promise<Response> {
  const headers: Record<string, string> = { "content-type": load.contentType };
  if (load.contentEncoding) headers["content-encoding"] = load.contentEncoding;
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  return fetch(url, {
    method: "POST",
    headers,
    body: load.body,
    signal: AbortSignal.timeout(options.timeoutMs),
  });
}

const HOUR_NS = 3_600_000_000_000n;

/** A body source for the options: BodySource for protobuf/JSON (gzip spliced), zstd compressed per body. */
function bodies(signal: Signal, options: BenchOptions): { records: number; body: (seq: number) => LoadBody } {
  const encoding = options.encoding ?? "protobuf";
  const compression = options.compression ?? "gzip";
  const variant = (compression === "gzip" ? `${encoding}+gzip` : encoding) as Variant;
  const seed = options.seed ?? (Date.now() % 1_000_000_007);
  const startNs = options.startNs ?? BigInt(Date.now()) * 1_000_000n - (HOUR_NS * 56n) / 60n;
  const records = Math.max(2, Math.floor(options.recordsPerRequest ?? 1000));
  // 40 bases (default) take a while to build for large requests: fewer for those, still all distinct.
  const pool = options.pool ?? Math.max(2, Math.min(40, Math.floor(400_000 / records)));
  const source = new BodySource(signal, variant, { records, pool, seed, startNs });
  if (compression !== "zstd") return { records, body: (seq) => source.body(seq) };
  if (typeof zstdCompressSync !== "function") {
    throw new RangeError("--compression zstd: this runtime's node:zlib has no zstd");
  }
  return {
    records,
    body: (seq) => {
      const plain = source.body(seq);
      const body = new Uint8Array(zstdCompressSync(plain.body));
      return { ...plain, body, contentEncoding: "zstd" };
    },
  };
}

/** Runs one bench: see the module doc for the two modes. */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const signal = options.signal ?? "logs";
  const url = signalUrl(options.endpoint, signal);
  const rate = options.rate;
  if (rate !== undefined && !(rate > 0 && Number.isFinite(rate))) {
    throw new RangeError(`--rate ${rate}: expected records per second above 0`);
  }
  const concurrency = Math.min(Math.max(Math.floor(options.concurrency ?? 8), 1), 1024);
  const duration = Math.min(Math.max(options.durationSecs ?? 10, 0.1), 86_400);
  const timeoutMs = (options.timeoutSecs ?? 30) * 1000;
  const now = options.now ?? (() => performance.now());
  const source = bodies(signal, options);
  const perRequest = source.records;
  // The first bodies once before the clock starts, so building the first ones is not billed to the run.
  for (let i = 0; i < Math.min(concurrency, 4); i++) source.body(i);

  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  let sent = 0, sentRecords = 0, acked = 0, rejected = 0, wire = 0, raw = 0, maxLag = 0, done = 0, unsent = 0;
  const start = now();
  const deadline = start + duration * 1000;
  const progress = options.progress;
  let lastProgress = start;
  const report = (final: boolean): void => {
    if (!progress) return;
    const t = now();
    if (!final && t - lastProgress < (progress.tty ? 500 : 5000)) return;
    lastProgress = t;
    const secs = Math.max((t - start) / 1000, 1e-3);
    const errors = Object.entries(statuses).filter(([s]) => s !== "200").reduce((n, [, c]) => n + c, 0);
    const line = `${secs.toFixed(1)} s: ${done} answered, ${fmtInt(acked)} records acked ` +
      `(${fmtInt(acked / secs)}/s), ${errors} errors, ${sent - done} in flight`;
    if (progress.tty) progress.write(`\r\x1b[2K${line}${final ? "\n" : ""}`);
    else progress.write(line + "\n");
  };

  const send = async (seq: number, scheduled: number): Promise<void> => {
    const load = source.body(seq);
    sent++, sentRecords += load.records, wire += load.body.length, raw += load.rawBytes;
    let status = "network";
    try {
      const res = await postLoad(url, load, { token: options.token, timeoutMs });
      const body = new Uint8Array(await res.arrayBuffer());
      status = String(res.status);
      latencies.push(now() - scheduled);
      if (res.status === 200) {
        const r = Math.min(load.records, rejectedOf(body, res.headers.get("content-type") ?? ""));
        acked += load.records - r, rejected += r;
      }
    } catch (e) {
      if ((e as Error)?.name === "TimeoutError") status = "timeout";
    }
    statuses[status] = (statuses[status] ?? 0) + 1;
    done++;
    report(false);
  };

  const inFlight = new Set<Promise<void>>();
  const launch = (seq: number, scheduled: number): void => {
    const p = send(seq, scheduled).finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  if (rate === undefined) {
    let seq = 0;
    const worker = async (): Promise<void> => {
      while (now() < deadline) await send(seq++, now());
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  } else {
    const intervalMs = 1000 / (rate / perRequest);
    for (let seq = 0;; seq++) {
      const scheduled = start + seq * intervalMs;
      if (scheduled >= deadline) break;
      let wait = scheduled - now();
      if (wait > 0) await sleep(wait);
      // Full: wait for a slot; the request then leaves late, and its latency (from `scheduled`) shows it.
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
      // So far behind that the run would last more than twice its duration: the rest is not sent.
      if (now() >= deadline + duration * 1000) {
        unsent = Math.ceil((deadline - scheduled) / intervalMs);
        break;
      }
      wait = now() - scheduled;
      if (wait > maxLag) maxLag = wait;
      launch(seq, scheduled);
    }
    await Promise.all(inFlight);
  }
  report(true);
  const seconds = Math.max((now() - start) / 1000, 1e-3);
  latencies.sort((a, b) => a - b);
  const round = (x: number): number => Math.round(x * 100) / 100;
  const result: BenchResult = {
    url: url.href,
    signal,
    encoding: options.encoding ?? "protobuf",
    compression: options.compression ?? "gzip",
    mode: rate === undefined ? "max" : "rate",
    recordsPerRequest: perRequest,
    concurrency,
    seconds: round(seconds),
    requests: sent,
    records: sentRecords,
    statuses,
    acknowledgedRecords: acked,
    rejectedRecords: rejected,
    recordsPerSecond: Math.round(acked / seconds),
    wireMBps: round(wire / 1e6 / seconds),
    rawMBps: round(raw / 1e6 / seconds),
    latencyMs: latencySummary(latencies),
  };
  if (rate !== undefined) {
    result.targetRecordsPerSecond = rate;
    // Sent over the scheduled span (not the drain after it): what the generator managed to offer.
    result.achievedRecordsPerSecond = Math.round(sentRecords / duration);
    result.targetReached = unsent === 0 && sentRecords / duration >= rate * 0.95 && maxLag < 1000;
    result.maxSendLagMs = round(maxLag);
    result.unsentRequests = unsent;
  }
  return result;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString("en-US");

/** The human-readable summary. */
export function formatBench(r: BenchResult): string {
  const how = `${r.signal}, ${r.encoding}${r.compression === "none" ? "" : `+${r.compression}`}`;
  const mode = r.mode === "rate"
    ? `open loop at ${fmtInt(r.targetRecordsPerSecond!)} records/s (at most ${r.concurrency} in flight)`
    : `closed loop, ${r.concurrency} in flight`;
  const errors = Object.entries(r.statuses).filter(([s]) => s !== "200").sort();
  const lines = [
    `bench ${r.url} (${how}, ${fmtInt(r.recordsPerRequest)} records/request, ${mode})`,
    `  sent:        ${fmtInt(r.requests)} requests, ${fmtInt(r.records)} records in ${r.seconds} s`,
    `  acked:       ${fmtInt(r.acknowledgedRecords)} records (HTTP 200: ${fmtInt(r.statuses["200"] ?? 0)}` +
    ` requests; rejected in partial_success: ${fmtInt(r.rejectedRecords)})`,
    `  throughput:  ${fmtInt(r.recordsPerSecond)} records/s, ${r.wireMBps} MB/s on the wire ` +
    `(${r.rawMBps} MB/s uncompressed)`,
    `  latency:     p50 ${r.latencyMs.p50} ms, p90 ${r.latencyMs.p90} ms, p99 ${r.latencyMs.p99} ms, ` +
    `max ${r.latencyMs.max} ms` + (r.mode === "rate" ? " (from each request's scheduled send time)" : ""),
    `  errors:      ${errors.length ? errors.map(([s, n]) => `${s}: ${fmtInt(n)}`).join(", ") : "none"}`,
  ];
  if (r.mode === "rate") {
    lines.push(
      r.targetReached
        ? `  target rate: reached (${fmtInt(r.achievedRecordsPerSecond!)} records/s offered)`
        : `  target rate: NOT reached: ${fmtInt(r.achievedRecordsPerSecond!)} of ` +
          `${fmtInt(r.targetRecordsPerSecond!)} records/s offered, requests up to ${
            fmtInt(r.maxSendLagMs!)
          } ms late${
            r.unsentRequests ? `, ${fmtInt(r.unsentRequests)} never sent` : ""
          } (raise --concurrency, or the server is the limit)`,
    );
  }
  return lines.join("\n") + "\n";
}

/** Runs `bench` and prints its summary; exit code 1 when no record was acknowledged. */
export async function runBenchCommand(
  io: CliIo,
  options: BenchOptions & { json?: boolean },
): Promise<number> {
  const result = await runBench(options);
  io.stdout(options.json ? JSON.stringify(result, null, 2) + "\n" : formatBench(result));
  return result.acknowledgedRecords > 0 ? 0 : 1;
}
