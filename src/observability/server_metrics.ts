/**
 * The server's Prometheus metrics (`GET /metrics`): what the handler answered (requests, refusals,
 * records accepted and rejected, durations, body sizes), what the ingest did (batches cut, objects and
 * bytes written, store errors and retries, records replayed) and, computed when scraped, what it holds
 * now (write-ahead log size, open batches per table, bytes in flight and waiting for the store).
 *
 * Every label value comes from a fixed set: signals, statuses and refusal reasons of our own handler,
 * content codings we decode (anything else is `other`), table names of our schema, flush reasons. No
 * label ever carries client input (a path, a service name): an unknown path counts as signal `none`,
 * status 404, and appears with its path only in the log. Series are resolved once per label tuple and
 * kept in arrays and maps keyed by those fixed values, so a request costs a few number updates and no
 * string building. The names and their meaning are listed in docs/metrics.md.
 *
 * @module
 */

import type { Signal } from "../core/table/schema.ts";
import { TABLES } from "../core/table/schema.ts";
import { VERSION } from "../core/version.ts";
import { parseContentEncoding } from "../http/body.ts";
import type { RefusalReason, RequestOutcome } from "../http/handler.ts";
import type { FlushReason, IngestObserver } from "../ingest/ingest.ts";
import { Counter, type CounterChild, Gauge, Histogram, type HistogramChild, Registry } from "./prometheus.ts";

/** The `signal` label: the three OTLP signals, and `none` for every other path. */
const SIGNALS = ["logs", "traces", "metrics", "none"] as const;
const SIGNAL_INDEX: Readonly<Record<Signal, number>> = { logs: 0, traces: 1, metrics: 2 };
const NONE = 3;

/** The `encoding` label: the content codings we decode, and `other` for anything else. */
const ENCODINGS = ["identity", "gzip", "deflate", "zstd", "snappy", "lz4", "other"] as const;
const OTHER_ENCODING = ENCODINGS.length - 1;
/** Header values as clients usually send them, looked up without building a string. */
const ENCODING_FAST = new Map<string, number>([
  ["gzip", 1],
  ["deflate", 2],
  ["zstd", 3],
  ["snappy", 4],
  ["lz4", 5],
  ["identity", 0],
]);

/** Reasons records are refused inside a 200 (`partial_success`). */
const PARTIAL_REASONS = ["invalid", "partitions_limit", "time_window"] as const;

/** Upper bounds of `otlp2parquet_request_duration_seconds`. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Upper bounds of the body size histograms: 256 B to 64 MiB, by fours. */
export const BYTES_BUCKETS = [256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
/** Upper bounds of `otlp2parquet_flush_duration_seconds` (cut to stored, retries included). */
export const FLUSH_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The live objects the gauges read when scraped; each may be absent (no log, batching disabled). */
export interface MetricSources {
  /** Open batches per table (the batching ingest). */
  openBatchesByTable?(): Map<string, { batches: number; rows: number; bytes: number }>;
  /** Bytes of requests in flight, of encoded objects waiting for the store, and batches waiting to be encoded. */
  stats?(): { inflightBytes: number; pendingBytes: number; queuedBatches: number };
  /** The write-ahead log's size now. */
  wal?: { stats(): { bytes: number; segments: number } };
  /** The write-ahead log's bound, in bytes. */
  walMaxBytes?: number;
  /** The CPU worker threads: how many (1: none, all on the main thread) and each one's busy time so far. */
  workers?(): { count: number; busySeconds: readonly number[]; restarts: number };
}

/** Options of {@linkcode ServerMetrics}. */
export interface ServerMetricsOptions {
  /** Resident set size in bytes, read when scraped. Default: none (the series is left out). */
  residentMemory?: () => number;
  /** When the process started, in ms since the epoch. Default: when this object was created. */
  startTimeMs?: number;
}

/** The metrics of one server. */
export class ServerMetrics {
  readonly registry: Registry = new Registry();
  /** For `Ingest`'s `observer` option. */
  readonly ingestObserver: IngestObserver;
  #sources: MetricSources = {};

  readonly #requests: Counter;
  /** [signal][encoding] → status → series. */
  readonly #requestsBy: Map<number, CounterChild>[][];
  readonly #refused: Counter;
  readonly #refusedBy: Map<string, CounterChild>[];
  readonly #duration: HistogramChild[];
  readonly #wireBytes: HistogramChild[];
  readonly #bodyBytes: HistogramChild[];
  readonly #accepted: CounterChild[];
  readonly #rejected: Counter;
  /** [signal] → reason → series. */
  readonly #rejectedBy: Map<string, CounterChild>[];
  readonly #replayedRequests: CounterChild;
  readonly #replayedRecords: CounterChild;

  constructor(options: ServerMetricsOptions = {}) {
    const r = this.registry;
    r.add(new Gauge("otlp2parquet_build_info", "Always 1; the version is a label.", ["version"]))
      .labels(VERSION).set(1);
    const startTime = r.add(
      new Gauge("process_start_time_seconds", "When the process started, in Unix time."),
    );
    startTime.labels().set((options.startTimeMs ?? Date.now()) / 1000);
    if (options.residentMemory) {
      const rss = r.add(new Gauge("process_resident_memory_bytes", "Resident memory size in bytes."));
      const read = options.residentMemory;
      r.onCollect(() => rss.labels().set(read()));
    }

    this.#requests = r.add(
      new Counter(
        "otlp2parquet_requests_total",
        "HTTP requests answered, by signal (none: any path but /v1/logs, /v1/traces, /v1/metrics), " +
          "status and content encoding.",
        ["signal", "status", "encoding"],
      ),
    );
    this.#requestsBy = SIGNALS.map(() => ENCODINGS.map(() => new Map()));
    this.#refused = r.add(
      new Counter(
        "otlp2parquet_requests_refused_total",
        "Requests answered with a 4xx or 5xx, by signal and reason.",
        ["signal", "reason"],
      ),
    );
    this.#refusedBy = SIGNALS.map(() => new Map());
    const duration = r.add(
      new Histogram(
        "otlp2parquet_request_duration_seconds",
        "Time from a request reaching the handler to its answer being ready.",
        ["signal"],
        DURATION_BUCKETS,
      ),
    );
    this.#duration = SIGNALS.map((s) => duration.labels(s));
    const wire = r.add(
      new Histogram(
        "otlp2parquet_request_body_bytes",
        "OTLP request bodies as read off the wire (compressed, if they were).",
        ["signal"],
        BYTES_BUCKETS,
      ),
    );
    const body = r.add(
      new Histogram(
        "otlp2parquet_request_decompressed_body_bytes",
        "OTLP request bodies after decompression (read whole).",
        ["signal"],
        BYTES_BUCKETS,
      ),
    );
    const otlp = SIGNALS.slice(0, NONE);
    this.#wireBytes = otlp.map((s) => wire.labels(s));
    this.#bodyBytes = otlp.map((s) => body.labels(s));
    const accepted = r.add(
      new Counter(
        "otlp2parquet_records_accepted_total",
        "Records (log records, spans, data points) accepted: durably logged, or stored, before the 200.",
        ["signal"],
      ),
    );
    this.#accepted = otlp.map((s) => accepted.labels(s));
    this.#rejected = r.add(
      new Counter(
        "otlp2parquet_records_rejected_total",
        "Records refused, by signal and reason: inside a 200 (partial_success: invalid, partitions_limit, " +
          "time_window), or decoded and then refused with their whole request (the refusal's reason).",
        ["signal", "reason"],
      ),
    );
    this.#rejectedBy = otlp.map((s) => {
      const m = new Map<string, CounterChild>();
      for (const reason of PARTIAL_REASONS) m.set(reason, this.#rejected.labels(s, reason));
      return m;
    });

    // What the ingest holds now: read from it when scraped.
    const walBytes = r.add(new Gauge("otlp2parquet_wal_bytes", "Bytes of the write-ahead log on disk."));
    const walMax = r.add(new Gauge("otlp2parquet_wal_max_bytes", "The write-ahead log's bound, in bytes."));
    const walSegments = r.add(
      new Gauge("otlp2parquet_wal_segments", "Segment files of the write-ahead log."),
    );
    const openBatches = r.add(new Gauge("otlp2parquet_open_batches", "Batches open, by table.", ["table"]));
    const openRows = r.add(
      new Gauge("otlp2parquet_open_batch_rows", "Rows in open batches, by table.", ["table"]),
    );
    const openBytes = r.add(
      new Gauge("otlp2parquet_open_batch_bytes", "Decoded bytes in open batches, by table.", ["table"]),
    );
    const inflight = r.add(
      new Gauge("otlp2parquet_inflight_bytes", "Bytes of request bodies being read and decoded now."),
    );
    const pending = r.add(
      new Gauge("otlp2parquet_pending_bytes", "Bytes of encoded objects waiting to be stored."),
    );
    const queued = r.add(
      new Gauge(
        "otlp2parquet_queued_batches",
        "Batches cut and waiting to be encoded (the one being encoded too).",
      ),
    );
    const tables = TABLES.map((t) => ({
      name: t.name,
      batches: openBatches.labels(t.name),
      rows: openRows.labels(t.name),
      bytes: openBytes.labels(t.name),
    }));
    const workerCount = r.add(
      new Gauge(
        "otlp2parquet_workers",
        "Threads that decode requests and encode Parquet (server.workers); 1: the main thread does it all.",
      ),
    );
    const busy = r.add(
      new Counter(
        "otlp2parquet_worker_busy_seconds_total",
        "Seconds each worker thread spent decoding and encoding, by worker index.",
        ["worker"],
      ),
    );
    const workerBusy: CounterChild[] = [];
    const restarts = r.add(
      new Counter("otlp2parquet_worker_restarts_total", "Worker threads replaced after failing."),
    );
    r.onCollect(() => {
      const s = this.#sources;
      const wal = s.wal?.stats();
      walBytes.labels().set(wal?.bytes ?? 0);
      walSegments.labels().set(wal?.segments ?? 0);
      walMax.labels().set(s.walMaxBytes ?? 0);
      const open = s.openBatchesByTable?.();
      for (const t of tables) {
        const o = open?.get(t.name);
        t.batches.set(o?.batches ?? 0), t.rows.set(o?.rows ?? 0), t.bytes.set(o?.bytes ?? 0);
      }
      const w = s.workers?.();
      workerCount.labels().set(w?.count ?? 1);
      w?.busySeconds.forEach((secs, i) => {
        const c = workerBusy[i] ??= busy.labels(String(i));
        // A counter: raised by what was added since the last scrape.
        if (secs > c.value) c.inc(secs - c.value);
      });
      if (w && w.restarts > restarts.labels().value) {
        restarts.labels().inc(w.restarts - restarts.labels().value);
      }
      const st = s.stats?.();
      inflight.labels().set(st?.inflightBytes ?? 0);
      pending.labels().set(st?.pendingBytes ?? 0);
      queued.labels().set(st?.queuedBatches ?? 0);
    });

    // What the ingest did: counted as it happens.
    const flushes = r.add(
      new Counter(
        "otlp2parquet_flushes_total",
        "Batches cut to be written, by table and reason (rows, bytes, age, open_batches, memory, wal_full, shutdown).",
        ["table", "reason"],
      ),
    );
    const flushDuration = r.add(
      new Histogram(
        "otlp2parquet_flush_duration_seconds",
        "Time from a batch being cut to its object stored (encoding queue and retries included), by table.",
        ["table"],
        FLUSH_BUCKETS,
      ),
    );
    const objects = r.add(
      new Counter("otlp2parquet_written_objects_total", "Parquet objects stored.", ["table"]),
    );
    const rows = r.add(
      new Counter("otlp2parquet_written_rows_total", "Rows in the objects stored.", ["table"]),
    );
    const bytes = r.add(
      new Counter("otlp2parquet_written_bytes_total", "Bytes of the objects stored.", ["table"]),
    );
    const storeErrors = r.add(
      new Counter("otlp2parquet_store_errors_total", "Object writes that failed (each attempt)."),
    ).labels();
    const storeRetries = r.add(
      new Counter("otlp2parquet_store_retries_total", "Object writes tried again after a failure."),
    ).labels();
    const walErrors = r.add(
      new Counter(
        "otlp2parquet_wal_write_errors_total",
        "Intent records that failed to be logged (each attempt).",
      ),
    ).labels();
    const deduplicated = r.add(
      new Counter(
        "otlp2parquet_requests_deduplicated_total",
        "Requests answered as a resend of one already accepted (same bytes, within the retry window), not stored again.",
        ["signal"],
      ),
    );
    const deduplicatedBy = new Map(
      (["logs", "traces", "metrics"] as const).map((s) => [s as string, deduplicated.labels(s)]),
    );
    const perTable = new Map<string, {
      flushes: Map<FlushReason, CounterChild>;
      duration: HistogramChild;
      objects: CounterChild;
      rows: CounterChild;
      bytes: CounterChild;
    }>(TABLES.map((t) => [t.name, {
      flushes: new Map<FlushReason, CounterChild>(),
      duration: flushDuration.labels(t.name),
      objects: objects.labels(t.name),
      rows: rows.labels(t.name),
      bytes: bytes.labels(t.name),
    }]));
    this.ingestObserver = {
      batchCut(table, reason) {
        const t = perTable.get(table);
        if (!t) return;
        let c = t.flushes.get(reason);
        if (!c) t.flushes.set(reason, c = flushes.labels(table, reason));
        c.inc();
      },
      objectWritten(table, rowCount, byteCount, seconds) {
        const t = perTable.get(table);
        if (!t) return;
        t.objects.inc(), t.rows.inc(rowCount), t.bytes.inc(byteCount), t.duration.observe(seconds);
      },
      deduplicated(signal) {
        deduplicatedBy.get(signal)?.inc();
      },
      writeFailed(target, retrying) {
        if (target === "wal") walErrors.inc();
        else {
          storeErrors.inc();
          if (retrying) storeRetries.inc();
        }
      },
    };
    this.#replayedRequests = r.add(
      new Counter(
        "otlp2parquet_replayed_requests_total",
        "Requests replayed from the write-ahead log at start.",
      ),
    ).labels();
    this.#replayedRecords = r.add(
      new Counter(
        "otlp2parquet_replayed_records_total",
        "Records replayed from the write-ahead log at start.",
      ),
    ).labels();
  }

  /** Sets what the gauges read when scraped. */
  watch(sources: MetricSources): void {
    this.#sources = sources;
  }

  /** Counts what the start-up replay batched again. */
  replayed(requests: number, records: number): void {
    this.#replayedRequests.inc(requests);
    this.#replayedRecords.inc(records);
  }

  /** The handler's `observe`: counts one answered request. */
  readonly observe = (o: Readonly<RequestOutcome>): void => {
    const s = o.signal === undefined ? NONE : SIGNAL_INDEX[o.signal];
    const e = encodingIndex(o.contentEncoding);
    const byStatus = this.#requestsBy[s][e];
    let c = byStatus.get(o.status);
    if (!c) byStatus.set(o.status, c = this.#requests.labels(SIGNALS[s], String(o.status), ENCODINGS[e]));
    c.inc();
    this.#duration[s].observe(o.seconds);
    if (o.reason !== undefined) this.#refusal(s, o.reason);
    if (s === NONE) return;
    if (o.wireBytes > 0 || o.bodyBytes >= 0) this.#wireBytes[s].observe(o.wireBytes);
    if (o.bodyBytes >= 0) this.#bodyBytes[s].observe(o.bodyBytes);
    if (o.accepted) this.#accepted[s].inc(o.accepted);
    const rejected = this.#rejectedBy[s];
    if (o.invalid) rejected.get("invalid")!.inc(o.invalid);
    if (o.overCap) rejected.get("partitions_limit")!.inc(o.overCap);
    if (o.outsideWindow) rejected.get("time_window")!.inc(o.outsideWindow);
    if (o.refusedRecords && o.reason !== undefined) {
      let r = rejected.get(o.reason);
      if (!r) rejected.set(o.reason, r = this.#rejected.labels(SIGNALS[s], o.reason));
      r.inc(o.refusedRecords);
    }
  };

  #refusal(s: number, reason: RefusalReason): void {
    const by = this.#refusedBy[s];
    let c = by.get(reason);
    if (!c) by.set(reason, c = this.#refused.labels(SIGNALS[s], reason));
    c.inc();
  }

  /** The exposition text. */
  render(): string {
    return this.registry.render();
  }
}

/** The `encoding` label's index of a `Content-Encoding` header value. */
function encodingIndex(header: string | null): number {
  if (header === null) return 0;
  const fast = ENCODING_FAST.get(header);
  if (fast !== undefined) return fast;
  try {
    return ENCODINGS.indexOf(parseContentEncoding(header));
  } catch {
    return OTHER_ENCODING;
  }
}
