/**
 * The server's ingest path: accepted requests are logged durably (write-ahead log, group-committed
 * fsync) before they are acknowledged, batched per (table, service, event hour), and flushed as one
 * Parquet object per batch when it reaches its row, byte or age limit.
 *
 * Exactly-once across crashes: before an object is written, an intent record names its key and the
 * (request, table, partition) contributions it holds; after the write, a commit record closes it. On
 * start, committed contributions are skipped, uncommitted intents are redone under the same key (an
 * overwrite, never a duplicate) and everything else is batched again. A commit record also lists the
 * requests it finished (all their rows now in confirmed objects), so a replay neither decodes nor batches
 * those. A log segment is deleted only when every request in it has all its rows in confirmed objects;
 * the active one too, by starting a new one, once it is large enough (see `Wal.releaseBefore`).
 *
 * A log that fills makes the batches holding the requests of its oldest segments be written at once (and
 * the active segment rotated if it was among them); a request that finds it full waits for that, and is
 * refused (503) only when the store is failing or slower than ingest.
 *
 * The replay streams: it reads the log's intent and commit records first, then the requests still
 * unfinished one at a time, and before decoding each it waits until the encode queue and the objects
 * waiting for the store are within the bounds `admit` applies to live requests; open batches are kept
 * under `maxBytes` as for live requests. So a replay holds no more than live traffic may.
 *
 * A retried request is stored once: a request whose identity (a 128-bit hash of signal, format and
 * decompressed body; see `dedupe.ts`) was accepted within the retry window, or is still in the log, is
 * answered as the first was without adding its rows again; one identical to a request being accepted now
 * waits for that one's answer. Identities are kept across restarts in a small file beside the log.
 *
 * Memory is bounded by what is admitted: open batches hold at most `maxBytes` of decoded rows in at most
 * `maxOpenBatches` batches (beyond either, batches are cut early); cut batches wait to be encoded in a queue
 * of at most `maxQueuedBytes` and `maxOpenBatches` batches, and encoded objects wait for the store up to
 * `maxPendingBytes`. While the queue or the objects waiting are over their bound, `admit` refuses new
 * requests (503) before their bodies are read or decoded. Each request may open at most
 * `limits.maxPartitions` partitions (see `request_limits.ts`).
 *
 * @module
 */

import { setImmediate } from "node:timers";
import {
  decodeRequest,
  encodeBatch,
  type FileOptions,
  type Format,
  type ParquetFile,
} from "../core/convert.ts";
import type { Partition, PartitionRows, Rows, RowSelection } from "../core/table/rows.ts";
import type { Signal, TableDef } from "../core/table/schema.ts";
import type { ObjectStore } from "../storage/object_store.ts";
import { type Answer, idKey, type RequestId, requestId, SeenLog, SeenTable } from "./dedupe.ts";
import { OverloadedError, UnavailableError } from "./errors.ts";
import { checkLimits, limitRequest, type Rejection, type RequestLimits } from "./request_limits.ts";
import { type AcceptedRequest, FORMAT_CODES, SIGNAL_CODES, type Sink } from "./sink.ts";
import { type Wal, WalFullError } from "./wal.ts";

/** Minimal structured logger the platform supplies. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Why a batch was cut: the `reason` label of `otlp2parquet_flushes_total`. */
export type FlushReason = "rows" | "bytes" | "age" | "open_batches" | "memory" | "wal_full" | "shutdown";

/** What the ingest reports as it works, for the metrics; every method is optional and must not throw. */
export interface IngestObserver {
  /** A batch was cut: taken out of the open set, to be encoded and written. */
  batchCut?(table: string, reason: FlushReason): void;
  /** An object was stored: its rows and bytes, and the seconds from its batch being cut to stored. */
  objectWritten?(table: string, rows: number, bytes: number, seconds: number): void;
  /** A write failed (`store`: an object; `wal`: an intent record), and is tried again if `retrying`. */
  writeFailed?(target: "store" | "wal", retrying: boolean): void;
  /** A request was answered as a resend of one already accepted: its rows were not added again. */
  deduplicated?(signal: Signal): void;
}

/** Encodes batches into Parquet files: `encodeBatch`, here or in worker threads. */
export interface BatchEncoder {
  /** The same contract as `encodeBatch`; the selections' rows must stay usable (other batches hold them). */
  encode(selections: readonly RowSelection[], options: FileOptions): Promise<ParquetFile>;
  /** Batches it may encode at once. */
  readonly concurrency: number;
  /**
   * Batches it may encode at once while the encode queue is past half its bound (`maxQueuedBytes`): the
   * pool lets every worker encode then, leaving none free for decodes, rather than refuse requests with
   * 503 while a thread could still encode. Default `concurrency`.
   */
  readonly maxConcurrency?: number;
}

/** Encoding in the calling thread, one batch at a time. */
const IN_THREAD: BatchEncoder = { encode: encodeBatch, concurrency: 1 };

/** Ingest settings. */
export interface IngestOptions {
  store: ObjectStore;
  /** The write-ahead log; without it a 200 means "in memory" (`durability = none`). */
  wal?: Wal;
  /**
   * Requests are refused (503) once the log holds this many bytes, so the rest of it stays free for the
   * intent and commit records that let batches be written and the log emptied: a log full of requests
   * alone could never drain. Set it below the log's own bound. Default: none (only the log's bound).
   */
  maxLogBytes?: number;
  /** Flush a batch at this many rows. Default 200 000. */
  maxRows?: number;
  /** Flush a batch at this many decoded bytes; also the bound on all open batches together. Default 128 MiB. */
  maxBytes?: number;
  /** Flush a batch this long after its first row arrived. Default 60 000 ms. */
  maxAgeMs?: number;
  /** Bound on request bodies being read and decoded at once; beyond it requests get 429. Default 256 MiB. */
  maxInflightBytes?: number;
  /** Bound on encoded objects waiting for the store; beyond it requests get 503. Default 256 MiB. */
  maxPendingBytes?: number;
  /**
   * Bound on open batches; opening one more first cuts the oldest (written early, as a smaller object).
   * Also the bound on batches waiting to be encoded (beyond it, 503 before decoding). Default 1024.
   */
  maxOpenBatches?: number;
  /**
   * Bound on the decoded bytes of batches cut but not yet encoded (they wait for an encoder: the main
   * thread, or a worker thread); beyond it requests get 503 before their bodies are read. Default 128 MiB.
   */
  maxQueuedBytes?: number;
  /** What one request may store: partitions, event-time window. Default: 128 partitions, no window. */
  limits?: RequestLimits;
  /** Parquet writer and object key settings (set `instanceId`). */
  files?: FileOptions;
  log?: Logger;
  /** Retry backoff of object writes: first delay and cap, in ms. Default 200 and 30 000. */
  retry?: { initialMs?: number; maxMs?: number };
  /** Whether the store answered at start-up (else `/ready` is 503 until it does). Default true. */
  storeReachable?: boolean;
  /** Why it did not, for `/ready`. */
  storeError?: string;
  /**
   * The store is probed (`check()`) this often while no write has shown it reachable for as long, so
   * `/ready` turns 503 when it goes away even without traffic. 0: only while it is known to be down.
   * Default 10 000 ms.
   */
  probeIntervalMs?: number;
  /**
   * How long a request that finds the log full waits for the batches pinning its oldest segments to be
   * written before it is refused (503). Default 5000 ms.
   */
  logWaitMs?: number;
  /** Milliseconds clock; default Date.now. */
  now?: () => number;
  /**
   * Where batches are encoded: default in this thread (`encodeBatch`), one at a time; the server with
   * worker threads passes its pool, which encodes `concurrency` batches at once.
   */
  encoder?: BatchEncoder;
  /**
   * Awaited by the encoder after every page, so requests are served meanwhile. Default: a timer (a turn of
   * the event loop that reads requests), or `setImmediate` while the encode queue is past half its bound
   * or the ingest is stopping (see `encodeFirst`).
   */
  encodePause?: () => Promise<void>;
  /**
   * The retry window (see `dedupe.ts`): how long a request's identity is remembered after it was accepted
   * or its rows started to be written (and while it is in the log), at most how many, and the directory
   * (the log's) of the file that keeps them across restarts; without `dir` they are kept in memory only.
   * `windowMs: 0` turns deduplication off. Default: 10 minutes, 1 000 000 identities.
   */
  dedupe?: { windowMs?: number; maxEntries?: number; dir?: string; sync?: boolean };
  /** Told of batches cut, objects written and failed writes (the metrics). Default: none. */
  observer?: IngestObserver;
}

/**
 * Log record kinds. KIND_REQUEST_AT also holds the arrival time, so that a replay applies the same
 * event-time window as the answer did; it is written only while a window is configured, so that the log
 * stays readable by earlier versions otherwise. KIND_REQUEST records replay without a window.
 */
const KIND_REQUEST = 1, KIND_INTENT = 2, KIND_COMMIT = 3, KIND_REQUEST_AT = 4;
/** [signal, format, arrival ms as a float64 LE] before the body of a KIND_REQUEST_AT record. */
const REQUEST_AT_HEAD = 10;

/** Runs the callbacks ready now (other encodes' and decodes' continuations), without polling for I/O. */
const yieldToCallbacks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/**
 * A turn of the event loop that polls for I/O (a timer: `setImmediate` does not make the runtime poll), so
 * request bodies are read and answers sent. Costs ~2 ms of waiting when nothing else is ready (nested timers
 * are clamped), no CPU.
 */
const yieldToIo = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Member {
  readonly seq: number;
  readonly rows: Rows;
  readonly indices: Uint32Array;
  readonly bytes: number;
}

interface Batch {
  readonly id: string;
  readonly table: TableDef;
  readonly part: Partition;
  readonly members: Member[];
  rows: number;
  bytes: number;
  readonly openedAt: number;
}

/** Payload of a KIND_INTENT record (JSON). */
interface Intent {
  key: string;
  table: string;
  service: string;
  hour: number;
  members: number[];
}

/**
 * Payload of a KIND_COMMIT record (JSON). `done`: the requests whose last outstanding contribution this
 * object holds (absent in logs of earlier versions, whose requests are then all decoded at replay).
 */
interface Commit {
  key: string;
  done?: number[];
}

/** An uncommitted intent being rebuilt during a replay, as its requests are read back. */
interface Redo {
  intent: Intent;
  members: Member[];
  table: TableDef | undefined;
  /** Members not read back yet; written once none is left (or at the end of the replay). */
  left: number;
}

const batchId = (table: string, part: Partition): string => `${table}\u0000${part.service}\u0000${part.hour}`;

/**
 * Log fill, as a fraction of the bound on request records (`maxLogBytes`): past `LOG_FREE_AT` the batches
 * holding the requests of the oldest segments are written in the background, until at most `LOG_FREE_TO`
 * is left; `/ready` is 503 from `LOG_NOT_READY_AT` until the log is back under `LOG_READY_AT`.
 */
const LOG_FREE_AT = 0.75, LOG_FREE_TO = 0.25, LOG_NOT_READY_AT = 0.9, LOG_READY_AT = 0.75;

/** `/ready`'s hysteresis on the log: whether it is held not ready at `fill`, given whether it was. */
export function logLatch(latched: boolean, fill: number): boolean {
  return latched ? fill >= LOG_READY_AT : fill >= LOG_NOT_READY_AT;
}

/** Counters for logs, `/ready` and tests. */
export interface IngestStats {
  requests: number;
  records: number;
  objects: number;
  objectRows: number;
  writeRetries: number;
  openBatches: number;
  bufferedBytes: number;
  pendingBytes: number;
  inflightBytes: number;
  /** Records refused by the request limits (partition cap, event-time window). */
  rejected: number;
  /** Batches cut and waiting to be encoded (the one being encoded included), and their decoded bytes. */
  queuedBatches: number;
  queuedBytes: number;
  /** Decoded bytes of the requests that open or waiting batches hold (each request whole). */
  heldBytes: number;
  /** Requests answered as retries of one already accepted (their rows not added again). */
  deduplicated: number;
  /** Request identities remembered for the retry window, and those forgotten early at its bound. */
  dedupeEntries: number;
  dedupeEvicted: number;
  /** The most `heldBytes` has been since start (the replay included). */
  peakHeldBytes: number;
}

/** What `Ingest.start` found in the log. */
export interface ReplayStats {
  /** Requests decoded and batched again (or redone): those whose rows were not all in objects. */
  requests: number;
  /** Their records. */
  records: number;
  /** Interrupted object writes redone under their recorded keys. */
  redone: number;
  /** Logged requests skipped without reading or decoding their bodies: all their rows were in objects. */
  skipped: number;
  /** Bytes of the log read back. */
  readBytes: number;
}

/** A request read back from the log. */
export interface LoggedRequest {
  seq: number;
  signal: Signal;
  format: Format;
  /** The body as it was decoded when it arrived (decompressed). */
  body: Uint8Array;
  /** Arrival time (ms), logged only while an event-time window is configured. */
  at: number | undefined;
}

/** The batching, durable ingest. Create with `Ingest.start`, which replays the log first. */
export class Ingest implements Sink {
  private readonly store: ObjectStore;
  private readonly wal?: Wal;
  private readonly maxLogBytes: number;
  private readonly maxRows: number;
  private readonly maxBytes: number;
  private readonly maxAgeMs: number;
  private readonly maxInflight: number;
  private readonly maxPending: number;
  private readonly maxOpen: number;
  private readonly maxQueued: number;
  private readonly limits: RequestLimits;
  private readonly files: FileOptions;
  private readonly log: Logger;
  private readonly retryInitial: number;
  private readonly retryMax: number;
  private readonly now: () => number;
  private readonly observer: IngestObserver;

  private readonly batches = new Map<string, Batch>();
  /** Outstanding contributions per logged request; the log is released below the smallest key. */
  private readonly outstanding = new Map<number, number>();
  /**
   * Contributions per logged request not yet named by a commit record being written: the commit record
   * that takes a request to 0 lists it as finished, so a replay skips it. Counted down before the commit
   * record is appended (unlike `outstanding`, counted down after it is durable, which releases the log).
   */
  private readonly uncommitted = new Map<number, number>();
  /** Woken whenever a batch is encoded or an object write ends: the replay waits on them for room. */
  private progressWaiters: (() => void)[] = [];
  private peakHeldBytes = 0;
  private readonly inflightFlushes = new Set<Promise<void>>();
  private bufferedBytes = 0;
  private pendingBytes = 0;
  private inflightBytes = 0;
  /**
   * The decoded rows of each request still referenced by an open batch (`open`) or a batch waiting to be
   * encoded (`queued`), with their full size: a request's rows are one buffer shared by all its partitions,
   * so it stays in memory, whole, while any of them does.
   */
  private readonly held = new Map<Rows, { bytes: number; open: number; queued: number }>();
  /** Bytes of the rows referenced by open batches; flushing keeps it at most `maxBytes`. */
  private openHeldBytes = 0;
  /** Bytes of the rows referenced by open or waiting batches: what batching holds in memory. */
  private heldBytes = 0;
  private queuedBatches = 0;
  /**
   * Bytes of rows held only for the batch being encoded (counted when its encoding starts). They are the
   * memory table's "batch being encoded", bounded by `maxBytes`, not part of the queue: counting them
   * there made one full batch fill a queue of the same size, and every flush refuse requests until done.
   */
  private encodingBytes = 0;
  private readonly encoder: BatchEncoder;
  private readonly encodePause: () => Promise<void>;
  private lastRejectLog = -Infinity;
  /** Bytes of request records being appended to the log now. */
  private loggingBytes = 0;
  private localSeq = 0;
  /** Mixed into every batch's object name with its requests' sequence numbers (which restart without a log). */
  private readonly run = crypto.randomUUID();
  /** The last probe's verdict (a successful write counts as one). */
  private probeOk = true;
  /** Retry loops of object writes whose last attempt failed. */
  private failingWrites = 0;
  /** Why the store is taken for down: the last failure's message. */
  private storeError = "";
  private readonly probeIntervalMs: number;
  private readonly logWaitMs: number;
  /** `/ready` hysteresis on the log's fill (see `LOG_NOT_READY_AT`). */
  private logLatched = false;
  /** A request was refused for log room since the log last was under `LOG_READY_AT`. */
  private logRefused = false;
  /** Woken when the store is found failing, so requests waiting for log room are refused at once. */
  private storeFailed: (() => void)[] = [];
  /** Woken when a probe finds the store reachable, so writes waiting to be retried go at once. */
  private readonly storeBack = new Set<() => void>();
  /** The flush that frees log space, shared by every request waiting for it. */
  private freeing: Promise<void> | undefined;
  private stopping = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly counters = {
    requests: 0,
    records: 0,
    objects: 0,
    objectRows: 0,
    writeRetries: 0,
    rejected: 0,
    deduplicated: 0,
  };
  /** Identities of requests accepted within the window; undefined when deduplication is off. */
  private seen: SeenTable | undefined;
  private seenLog: SeenLog | undefined;
  /** The window's clock is `now() - clockOffset`: it resumes where the file ends after a restart. */
  private clockOffset = 0;
  /** Identical requests being accepted now, by identity: a second one waits for the first's answer. */
  private readonly accepting = new Map<string, Promise<Rejection>>();
  /**
   * Identities of logged requests still outstanding, and whether they are (being) written to the file:
   * that must be done before the commit record of any object holding their rows.
   */
  private readonly unrecorded = new Map<
    number,
    { id: RequestId; rejected: number; written?: Promise<void> }
  >();
  private readonly isPending = (seq: number): boolean => this.outstanding.has(seq);

  private constructor(options: IngestOptions) {
    this.store = options.store;
    this.wal = options.wal;
    this.maxLogBytes = options.maxLogBytes ?? Infinity;
    this.maxRows = options.maxRows ?? 200_000;
    this.maxBytes = options.maxBytes ?? 128 * 1024 * 1024;
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
    this.maxInflight = options.maxInflightBytes ?? 256 * 1024 * 1024;
    this.maxPending = options.maxPendingBytes ?? 256 * 1024 * 1024;
    this.maxOpen = options.maxOpenBatches ?? 1024;
    this.maxQueued = options.maxQueuedBytes ?? 128 * 1024 * 1024;
    this.encoder = options.encoder ?? IN_THREAD;
    // With worker threads the pause only splits the copy of a batch's rows for its worker (every 5 ms):
    // a timer there made p99 worse (2 workers, 185k logs records/s: 76-114 ms against 62-70).
    this.encodePause = options.encodePause ??
      (this.encoder === IN_THREAD
        ? () => this.encodeFirst() ? yieldToCallbacks() : yieldToIo()
        : yieldToCallbacks);
    if (!Number.isInteger(this.encoder.concurrency) || this.encoder.concurrency < 1) {
      throw new RangeError(`encoder.concurrency must be a positive integer, got ${this.encoder.concurrency}`);
    }
    if (!Number.isInteger(this.maxOpen) || this.maxOpen < 1) {
      throw new RangeError(`maxOpenBatches must be a positive integer, got ${this.maxOpen}`);
    }
    this.limits = checkLimits(options.limits ?? {});
    this.files = options.files ?? {};
    this.log = options.log ?? silentLogger;
    this.retryInitial = options.retry?.initialMs ?? 200;
    this.retryMax = options.retry?.maxMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.probeIntervalMs = options.probeIntervalMs ?? 10_000;
    this.logWaitMs = options.logWaitMs ?? 5000;
    this.observer = options.observer ?? {};
  }

  /**
   * Creates the ingest, replays what the write-ahead log still holds (redoing uncommitted writes under
   * their recorded keys) and starts the age timer. Resolves once the replayed data is batched again.
   */
  static async start(options: IngestOptions): Promise<{ ingest: Ingest; replayed: ReplayStats }> {
    const ingest = new Ingest(options);
    await ingest.openSeen(options.dedupe ?? {});
    const replayed = await ingest.replay();
    const tick = Math.max(50, Math.min(1000, ingest.maxAgeMs / 4));
    if (options.storeReachable === false) {
      ingest.probeOk = false;
      ingest.storeError = `unreachable at start-up: ${options.storeError ?? "see the log"}`;
    }
    ingest.lastProbe = ingest.now();
    ingest.timer = setInterval(() => {
      ingest.flushAged();
      ingest.probeStore();
      ingest.logNearFull();
    }, tick);
    return { ingest, replayed };
  }

  /** Reserves in-flight budget for a request of about `bytes`; see `Sink.admit`. */
  admit(bytes: number): () => void {
    if (this.stopping) throw new UnavailableError("shutting down", 5, { reason: "shutting_down" });
    if (this.pendingBytes > this.maxPending) {
      throw new UnavailableError("the object store is not keeping up or unreachable; retry later", 10, {
        reason: "store_unavailable",
      });
    }
    // Refused here, before the body is read and decoded: decoded rows would only add to the backlog.
    if (this.encodeBehind()) {
      throw new UnavailableError(
        `encoding is behind (${this.queuedBatches} batches, ${this.queuedBytes()} bytes waiting); retry later`,
        2,
        { reason: "encode_behind" },
      );
    }
    const n = Math.max(0, Math.min(bytes, this.maxInflight));
    if (this.inflightBytes + n > this.maxInflight && this.inflightBytes > 0) {
      throw new OverloadedError(`too much data in flight (${this.inflightBytes} bytes); retry later`, 1);
    }
    this.inflightBytes += n;
    let released = false;
    return () => {
      if (!released) this.inflightBytes -= n, released = true;
    };
  }

  /** Whether new data can be accepted now: see {@linkcode notReadyReasons}. */
  ready(): boolean {
    return this.notReadyReasons().length === 0;
  }

  /**
   * Why a request of ordinary size would be refused now (empty: ready): shutting down, the store failing
   * (a write or the periodic probe), objects or batches piling up, or the log near its bound (from 90 % of
   * the room for requests until it is back under 75 %) while it cannot be freed in time: a request was
   * refused for room (store failing or slower than ingest). A full log that flushing frees is ready:
   * requests then wait for the flush and are admitted.
   */
  notReadyReasons(): string[] {
    const reasons: string[] = [];
    if (this.stopping) reasons.push("shutting down");
    if (!this.storeOk()) reasons.push(`store: ${this.storeError}`);
    if (this.pendingBytes > this.maxPending) {
      reasons.push(`store: ${this.pendingBytes} bytes of objects waiting for it (bound ${this.maxPending})`);
    }
    if (this.encodeBehind()) reasons.push(`encoding is behind (${this.queuedBatches} batches waiting)`);
    const log = this.logNearFull();
    if (log) reasons.push(log);
    return reasons;
  }

  private storeOk(): boolean {
    return this.probeOk && this.failingWrites === 0;
  }

  /**
   * Updates the log's readiness latch; returns why it is not ready, if it is not. Also starts writing the
   * batches that pin the oldest segments once the log is past `LOG_FREE_AT`, so requests rarely find it full.
   */
  private logNearFull(): string | undefined {
    if (!this.wal || this.maxLogBytes === Infinity) return undefined;
    const bytes = this.wal.stats().bytes + this.loggingBytes;
    const fill = bytes / this.maxLogBytes;
    if (fill >= LOG_FREE_AT && this.storeOk() && !this.stopping && !this.replaying) void this.freeLog();
    this.logLatched = logLatch(this.logLatched, fill);
    if (!this.logLatched) this.logRefused = false;
    if (!this.logLatched || (!this.logRefused && this.storeOk())) return undefined;
    const percent = Math.round(fill * 100);
    const under = LOG_READY_AT * 100;
    return `write-ahead log: ${bytes} of ${this.maxLogBytes} bytes (${percent} %; ready again under ${under} %)`;
  }

  /** Whether the batches waiting to be encoded (not the one being encoded) are over their bound. */
  private encodeBehind(): boolean {
    return this.queuedBytes() - this.encodingBytes > this.maxQueued || this.queuedBatches > this.maxOpen;
  }

  /** Bytes of the distinct rows of `members` that no open batch holds. */
  private closedBytes(members: readonly { rows: Rows }[]): number {
    let bytes = 0;
    for (const rows of new Set(members.map((m) => m.rows))) {
      const h = this.held.get(rows);
      if (h && h.open === 0) bytes += h.bytes;
    }
    return bytes;
  }

  /** Bytes of rows held only for batches waiting to be encoded. */
  private queuedBytes(): number {
    return this.heldBytes - this.openHeldBytes;
  }

  /** Counts a reference to `rows` from an open batch (`open`) or a batch waiting to be encoded. */
  private retain(rows: Rows, open: boolean): void {
    let h = this.held.get(rows);
    if (!h) {
      h = { bytes: rows.byteLength(), open: 0, queued: 0 };
      this.held.set(rows, h);
      this.heldBytes += h.bytes;
      if (this.heldBytes > this.peakHeldBytes) this.peakHeldBytes = this.heldBytes;
    }
    if (open && h.open++ === 0) this.openHeldBytes += h.bytes;
    if (!open) h.queued++;
  }

  /** Drops a reference taken by {@linkcode retain}. */
  private unretain(rows: Rows, open: boolean): void {
    const h = this.held.get(rows);
    if (!h) return;
    if (open && --h.open === 0) this.openHeldBytes -= h.bytes;
    if (!open) h.queued--;
    if (h.open === 0 && h.queued === 0) this.held.delete(rows), this.heldBytes -= h.bytes;
  }

  /** Whether a request record of `bytes` would take the log past `maxLogBytes`. */
  private logFull(bytes: number): boolean {
    if (!this.wal || this.maxLogBytes === Infinity) return false;
    const used = this.wal.stats().bytes + this.loggingBytes;
    // An empty log takes what its own bound allows, so that a request larger than the limit is not refused
    // forever. (A log holding only written requests is emptied by `freeLog`: rotated, then released.)
    return used > 0 && used + bytes > this.maxLogBytes;
  }

  /**
   * Accepts a decoded request. Resolves when a 200 may be sent: after the fsync of its log record
   * (durable mode), or at once (without a log); with the records the request limits refused, for
   * `partial_success`.
   */
  async accept(request: AcceptedRequest): Promise<Rejection> {
    if (this.stopping) throw new UnavailableError("shutting down", 5, { reason: "shutting_down" });
    if (!this.seen) return this.acceptNew(request);
    const id = request.id ??
      requestId(SIGNAL_CODES.indexOf(request.signal), FORMAT_CODES.indexOf(request.format), request.body);
    const known = this.seen.find(id, this.clock(), this.isPending);
    if (known) {
      this.counters.deduplicated++;
      this.observer.deduplicated?.(request.signal);
      return answerOf(known);
    }
    const key = idKey(id);
    const running = this.accepting.get(key);
    if (running) {
      // The same bytes are being accepted now (a client that timed out and resent): one answer for both.
      const answer = await running;
      this.counters.deduplicated++;
      this.observer.deduplicated?.(request.signal);
      return answer;
    }
    const accepted = this.acceptNew(request, id);
    this.accepting.set(key, accepted);
    try {
      return await accepted;
    } finally {
      this.accepting.delete(key);
    }
  }

  /** The window's clock (ms). */
  private clock(): number {
    return this.now() - this.clockOffset;
  }

  /** Accepts a request not seen within the window; `id` is its identity when deduplication is on. */
  private async acceptNew(request: AcceptedRequest, id?: RequestId): Promise<Rejection> {
    const { decoded } = request;
    const now = this.now();
    for (const rows of decoded.tables) rows.compact(); // kept until written: drop the decoders' spare capacity
    const limited = limitRequest(decoded, this.limits, now);
    this.counters.requests++;
    this.counters.records += limited.records;
    this.counters.rejected += limited.rejected;
    if (limited.rejected && now - this.lastRejectLog >= 60_000) {
      // At most once a minute: the client is told in `partial_success`; the log only says it happens.
      this.lastRejectLog = now;
      this.log.warn("records refused by the request limits (reported to the client)", {
        signal: request.signal,
        reason: limited.rejectMessage,
      });
    }
    const rejection = {
      rejected: limited.rejected,
      rejectMessage: limited.rejectMessage,
      overCap: limited.overCap,
      outsideWindow: limited.outsideWindow,
    };
    if (!limited.records) return rejection;
    let seq: number;
    if (this.wal) {
      // The record is [signal, format(, arrival time)] + the body, written from the body's own buffer.
      const windowed = this.limits.acceptPastMs !== undefined || this.limits.acceptFutureMs !== undefined;
      const head = new Uint8Array(windowed ? REQUEST_AT_HEAD : 2);
      head[0] = SIGNAL_CODES.indexOf(request.signal), head[1] = FORMAT_CODES.indexOf(request.format);
      if (windowed) new DataView(head.buffer).setFloat64(2, now, true);
      const payload = [head, request.body];
      const length = head.length + request.body.length;
      if (this.logFull(length)) await this.waitForLogRoom(length);
      this.loggingBytes += length;
      try {
        seq = await this.wal.append(windowed ? KIND_REQUEST_AT : KIND_REQUEST, payload, [
          undefined,
          request.bodyCrc,
        ]);
      } catch (e) {
        if (e instanceof WalFullError) {
          throw new UnavailableError(`write-ahead log full (${e.message}); retry later`, 10, {
            cause: e,
            reason: "wal_full",
          });
        }
        throw new UnavailableError(`write-ahead log write failed: ${(e as Error).message}`, 5, {
          cause: e,
          reason: "wal_failed",
        });
      } finally {
        this.loggingBytes -= length;
      }
      this.logNearFull();
    } else {
      seq = ++this.localSeq;
    }
    if (id) this.remember(id, this.wal ? seq : 0, rejection);
    this.add(seq, limited.parts);
    return rejection;
  }

  /** Sets up the retry window: the table, and the file that keeps it across restarts (read back here). */
  private async openSeen(options: NonNullable<IngestOptions["dedupe"]>): Promise<void> {
    const windowMs = options.windowMs ?? 600_000;
    if (windowMs === 0) return;
    if (!(windowMs > 0)) throw new RangeError(`dedupe.windowMs must be positive or 0, got ${windowMs}`);
    const maxEntries = options.maxEntries ?? 1_000_000;
    this.seen = new SeenTable(maxEntries, windowMs);
    if (options.dir === undefined) return;
    const seen = this.seen;
    const { log, newest } = await SeenLog.open({
      dir: options.dir,
      windowMs,
      maxEntries,
      sync: options.sync,
      onWarning: (message) => this.log.warn(message),
      // Oldest first: at its bound the table keeps the newest.
      onEntry: (id, time, rejected) => seen.add(id, time, { rejected, rejectMessage: "" }),
    });
    this.seenLog = log;
    // The clock stands still while the server is down: it resumes from the newest entry.
    if (newest !== undefined) this.clockOffset = this.now() - newest;
    seen.expire(this.clock());
  }

  /** Records the identity of a request just accepted (`seq`: its log record, 0 without a log). */
  private remember(id: RequestId, seq: number, answer: Rejection): void {
    this.seen!.add(id, this.clock(), answer, seq);
    if (seq && this.seenLog) this.unrecorded.set(seq, { id, rejected: answer.rejected });
  }

  /**
   * Writes the identities of the requests `seqs` to the file (once each), before the commit record of an
   * object holding their rows: a restart may then skip their log records, and still know them.
   */
  private recordSeen(seqs: readonly number[]): Promise<unknown> {
    if (!this.seenLog) return Promise.resolve();
    const waits: Promise<void>[] = [];
    const fresh: { id: RequestId; rejected: number; written?: Promise<void> }[] = [];
    for (const seq of new Set(seqs)) {
      const u = this.unrecorded.get(seq);
      if (!u) continue;
      if (u.written) waits.push(u.written);
      else fresh.push(u);
    }
    if (fresh.length) {
      const now = this.clock();
      // The window starts over: the retry of a request whose rows are being written is most likely now.
      for (const u of fresh) this.seen!.add(u.id, now);
      const entries = fresh.map((u) => ({ id: u.id, time: now, rejected: u.rejected }));
      const written = this.retrying(() => this.seenLog!.append(entries), "record request identities", false);
      written.catch(() => {});
      for (const u of fresh) u.written = written;
      waits.push(written);
    }
    return Promise.all(waits);
  }

  /** Adds a request's partitions (after its limits) to the open batches and starts the flushes that are due. */
  private add(seq: number, parts: readonly PartitionRows[], skip?: Set<string>): void {
    let count = 0;
    const perRow = new Map<Rows, number>();
    for (const { rows, part: p, indices } of parts) {
      const part = rows.parts[p];
      const id = batchId(rows.def.name, part);
      if (skip?.has(`${seq}\u0000${id}`)) continue;
      let batch = this.batches.get(id);
      if (!batch) {
        // Too many open batches: cut the oldest (the map keeps opening order), a smaller object early.
        if (this.batches.size >= this.maxOpen) {
          this.flush(this.batches.values().next().value!, "open_batches");
        }
        batch = { id, table: rows.def, part, members: [], rows: 0, bytes: 0, openedAt: this.now() };
        this.batches.set(id, batch);
      }
      let per = perRow.get(rows);
      if (per === undefined) perRow.set(rows, per = rows.length ? rows.byteLength() / rows.length : 0);
      const bytes = Math.ceil(per * indices.length);
      batch.members.push({ seq, rows, indices, bytes });
      this.retain(rows, true);
      batch.rows += indices.length;
      batch.bytes += bytes;
      this.bufferedBytes += bytes;
      count++;
      if (batch.rows >= this.maxRows) this.flush(batch, "rows");
      else if (batch.bytes >= this.maxBytes) this.flush(batch, "bytes");
    }
    if (this.wal) {
      if (count) this.expect(seq, count);
      else {
        // A replayed request with every row in objects keeps its identity until the replay records it.
        if (!this.replaying) this.unrecorded.delete(seq);
        void this.releaseLog();
      }
    }
    // The rows open batches hold stay under maxBytes: flush the batch holding the most until they do,
    // together with every batch holding rows of the same requests. A request's decoded rows are one buffer
    // shared by the batches of its partitions, and it is held whole until the last of them is encoded: so
    // rows are counted whole (a batch whose other partitions were written long ago still holds them all),
    // and flushing one of the batches alone would free nothing while the others hold it.
    while (this.openHeldBytes > this.maxBytes && this.batches.size) {
      let largest: Batch | undefined, most = -1;
      for (const b of this.batches.values()) {
        let holds = 0;
        for (const m of b.members) holds += this.held.get(m.rows)?.bytes ?? 0;
        if (holds > most) largest = b, most = holds;
      }
      const shared = new Set(largest!.members.map((m) => m.rows));
      for (const b of [...this.batches.values()]) {
        if (b === largest || b.members.some((m) => shared.has(m.rows))) this.flush(b, "memory");
      }
    }
  }

  /**
   * Waits until a request record of `length` bytes fits under `maxLogBytes`, writing the batches that pin
   * the oldest segments meanwhile; refuses (503) at once when the store is failing, or after `logWaitMs`
   * when writing is slower than ingest.
   */
  private async waitForLogRoom(length: number): Promise<void> {
    const deadline = Date.now() + this.logWaitMs;
    while (this.logFull(length)) {
      if (this.stopping) throw new UnavailableError("shutting down", 5, { reason: "shutting_down" });
      if (!this.storeOk()) {
        this.logRefused = true;
        throw new UnavailableError(
          `write-ahead log full: the object store is failing (last error: ${this.storeError}); retry later`,
          10,
          { reason: "wal_full" },
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        this.logRefused = true;
        throw new UnavailableError(
          "write-ahead log full: writing to the object store is slower than ingest; retry later",
          10,
          { reason: "wal_full" },
        );
      }
      const before = this.wal!.stats().bytes;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let failed: (() => void) | undefined;
      await Promise.race([
        this.freeLog(),
        new Promise((r) => timer = setTimeout(r, left)),
        new Promise<void>((r) => this.storeFailed.push(failed = r)),
      ]);
      clearTimeout(timer);
      this.storeFailed = this.storeFailed.filter((w) => w !== failed);
      // Nothing freed (say the log holds only requests still being appended): do not spin.
      if (this.wal!.stats().bytes >= before && this.logFull(length)) {
        await new Promise((r) => setTimeout(r, Math.min(50, Math.max(0, deadline - Date.now()))));
      }
    }
  }

  /**
   * Frees log space: cuts the open batches that hold requests of the oldest segments (enough of them to
   * leave at most `LOG_FREE_TO` of the bound), waits for every write in progress, starts a new segment if
   * the active one was among them (it is never deleted while active), and releases what was written. One
   * run at a time; callers share it.
   */
  private freeLog(): Promise<void> {
    return this.freeing ??= (async () => {
      const wal = this.wal!;
      let left = wal.stats().bytes + this.loggingBytes;
      const target = this.maxLogBytes * LOG_FREE_TO;
      const segments = wal.segmentList();
      let upTo = 0, rotate = false;
      for (let i = 0; i < segments.length && left > target; i++) {
        upTo = Math.max(upTo, segments[i].lastSeq);
        left -= segments[i].bytes;
        rotate = i === segments.length - 1;
      }
      const cut = [...this.batches.values()].filter((b) => b.members.some((m) => m.seq <= upTo));
      this.log.debug("the write-ahead log is filling: writing the batches holding its oldest requests", {
        logBytes: wal.stats().bytes,
        batches: cut.length,
        rotate,
      });
      for (const b of cut) this.flush(b, "wal_full");
      await Promise.allSettled([...this.inflightFlushes]);
      // Safe to release right after: `rotate` starts the new segment only once no append is waiting or
      // being written, and after file I/O, so every request already in the old segment has been added to
      // `outstanding` by then (its `accept` goes on from its append to `add` without awaiting).
      if (rotate) {
        try {
          await wal.rotate();
        } catch (e) {
          this.log.warn("could not start a new log segment", { error: String(e) });
        }
      }
      await this.releaseLog();
    })().finally(() => this.freeing = undefined);
  }

  private flushAged(): void {
    const now = this.now();
    for (const b of [...this.batches.values()]) if (now - b.openedAt >= this.maxAgeMs) this.flush(b, "age");
  }

  /** Takes a batch out of the open set and writes it in the background. */
  private flush(batch: Batch, reason: FlushReason): void {
    if (this.batches.get(batch.id) !== batch) return;
    this.batches.delete(batch.id);
    this.observer.batchCut?.(batch.table.name, reason);
    this.bufferedBytes -= batch.bytes;
    // The encode queue takes the rows over (and `encode` releases them) before the open references go.
    for (const m of batch.members) this.retain(m.rows, false);
    for (const m of batch.members) this.unretain(m.rows, true);
    const p = this.writeBatch(batch).catch((e) => {
      this.log.error("batch lost from memory (still in the write-ahead log if enabled)", {
        error: String(e),
        table: batch.table.name,
      });
    }).finally(() => this.inflightFlushes.delete(p));
    this.inflightFlushes.add(p);
  }

  /**
   * Encodes and writes one batch. With the log: intent, write (retried until it succeeds or the ingest
   * stops), commit, release.
   */
  private async writeBatch(batch: Batch, key?: string): Promise<void> {
    const cutAt = this.now();
    const file = await this.encode(batch);
    const objectKey = key ?? file.key;
    const seqs = batch.members.map((m) => m.seq);
    // The decoded rows are in the file now; while the write is retried (say the store is down) only the
    // encoded bytes stay in memory, and those are what `maxPendingBytes` bounds.
    batch.members.length = 0;
    this.pendingBytes += file.bytes.length;
    const recorded = this.recordSeen(seqs);
    recorded.catch(() => {});
    try {
      if (this.wal && key === undefined) {
        const intent: Intent = {
          key: objectKey,
          table: batch.table.name,
          service: batch.part.service,
          hour: batch.part.hour,
          members: seqs,
        };
        await this.retrying(
          () => this.wal!.append(KIND_INTENT, encoder.encode(JSON.stringify(intent))),
          "log intent",
          false,
        );
      }
      await this.retrying(() => this.store.put(objectKey, file.bytes), `write ${objectKey}`, true);
      this.counters.objects++;
      this.counters.objectRows += file.rows;
      this.observer.objectWritten?.(
        batch.table.name,
        file.rows,
        file.bytes.length,
        (this.now() - cutAt) / 1000,
      );
      this.log.debug("wrote object", { key: objectKey, rows: file.rows, bytes: file.bytes.length });
      if (this.wal) {
        // Identities first: once the commit lists a request as done, a replay no longer reads it.
        await recorded;
        // The requests this commit finishes: with it, all their rows are in objects.
        const done: number[] = [];
        for (const seq of seqs) {
          const left = (this.uncommitted.get(seq) ?? 1) - 1;
          if (left > 0) this.uncommitted.set(seq, left);
          else this.uncommitted.delete(seq), done.push(seq);
        }
        try {
          const commit: Commit = { key: objectKey, done };
          await this.wal.append(KIND_COMMIT, encoder.encode(JSON.stringify(commit)));
        } catch (e) {
          // Without the commit record a restart redoes the intent under the same key: an overwrite.
          this.log.warn("could not log a commit record", { key: objectKey, error: String(e) });
        }
        for (const seq of seqs) {
          const left = (this.outstanding.get(seq) ?? 1) - 1;
          if (left > 0) this.outstanding.set(seq, left);
          else this.outstanding.delete(seq), this.unrecorded.delete(seq);
        }
        await this.releaseLog();
      }
    } finally {
      this.pendingBytes -= file.bytes.length;
      this.progressed();
    }
  }

  /** Counts `n` more contributions of request `seq` that must reach objects before it is finished. */
  private expect(seq: number, n: number): void {
    this.outstanding.set(seq, (this.outstanding.get(seq) ?? 0) + n);
    this.uncommitted.set(seq, (this.uncommitted.get(seq) ?? 0) + n);
  }

  private progressed(): void {
    for (const wake of this.progressWaiters.splice(0)) wake();
  }

  /**
   * Encodes a batch, `encoder.concurrency` at a time (one without worker threads: encoding is CPU-bound
   * and its wasm memory never shrinks, so concurrent encodes on one thread would only raise the peak).
   * With worker threads, batches are encoded side by side; each worker gets a copy of its batch's rows
   * (the originals are already counted: open, queued or being encoded), and the copies together stay within
   * `maxBytes`, the size of the one batch encoded with one thread (one batch alone always may, however large).
   */
  private encode(batch: Batch): Promise<ParquetFile> {
    // Until it is encoded, a batch's rows count against the queue's bound (`admit` refuses beyond it).
    // The callers (`flush`, the replay's redo) retained its rows as queued; released once encoded.
    const members = batch.members.slice();
    this.queuedBatches++;
    const copy = members.reduce((n, m) => n + m.bytes, 0);
    // Its turn is taken after the code cutting it has run (a microtask later): a flush for memory cuts every
    // batch sharing a request's rows, and only then do those rows count as held for encoding alone.
    const run = Promise.resolve().then(() => this.encodeTurn(members, copy)).then((started) => {
      // Encoding yields to the event loop after every page, so requests keep being read and answered
      // while large batches are written (`encodeFirst` says which goes first). A worker thread needs no
      // pause; the copy for it pauses every 5 ms.
      const selections = batch.members.map((m) => ({ rows: m.rows, indices: m.indices }));
      // This run and the requests' sequence numbers name the batch: two batches of byte-identical rows (the
      // same records in two requests) must not get one key, or the second write replaces the first. A
      // replay redoes a logged intent under the key it logged, so this need not be the same after a restart.
      const salt = `${this.run}:${batch.members.map((m) => m.seq).join(",")}`;
      return this.encoder.encode(selections, { ...this.files, pause: this.encodePause, salt }).finally(
        started,
      );
    }).finally(() => {
      this.queuedBatches--;
      for (const m of members) this.unretain(m.rows, false);
      this.progressed();
    });
    return run;
  }

  /**
   * Waits for the batch's turn to be encoded and counts its rows as being encoded; resolves with the
   * function that ends its turn. `copy`: the bytes of the batch's own rows (what a worker copies).
   */
  private encodeTurn(members: readonly Member[], copy: number): Promise<() => void> {
    // Rows leave an open batch only when it is cut, never join one again: these cannot grow meanwhile.
    const distinct = [...new Set(members.map((m) => m.rows))];
    const closed = () => distinct.filter((rows) => this.held.get(rows)?.open === 0);
    return new Promise((resolve) => {
      this.encodeWaiting.push({
        copy,
        start: () => {
          this.encodeCopies += copy;
          const mine = closed();
          for (const rows of mine) {
            const n = this.encodingRows.get(rows) ?? 0;
            if (n === 0) this.encodingBytes += this.held.get(rows)!.bytes;
            this.encodingRows.set(rows, n + 1);
          }
          this.encodesRunning++;
          resolve(() => {
            for (const rows of mine) {
              const n = this.encodingRows.get(rows)! - 1;
              if (n > 0) this.encodingRows.set(rows, n);
              else this.encodingRows.delete(rows), this.encodingBytes -= this.held.get(rows)?.bytes ?? 0;
            }
            this.encodesRunning--;
            this.encodeCopies -= copy;
            this.startEncodes();
          });
        },
      });
      this.startEncodes();
    });
  }

  /**
   * Starts waiting encodes, first come first served, while a slot is free and the batches being encoded
   * (their own rows: what the workers copy) stay within `maxBytes` (one encode always may, however large).
   */
  private startEncodes(): void {
    while (this.encodeWaiting.length && this.encodesRunning < this.encodeSlots()) {
      const next = this.encodeWaiting[0];
      if (this.encodesRunning > 0 && this.encodeCopies + next.copy > this.maxBytes) return;
      this.encodeWaiting.shift()!.start();
    }
  }

  /** Encodes that may run now: `encoder.concurrency`, or `maxConcurrency` with the queue past half its bound. */
  private encodeSlots(): number {
    const { concurrency, maxConcurrency = concurrency } = this.encoder;
    if (maxConcurrency <= concurrency) return concurrency;
    return this.queuePastHalf() ? maxConcurrency : concurrency;
  }

  /** Whether the batches waiting to be encoded (not yet being encoded) hold more than half the queue's bound. */
  private queuePastHalf(): boolean {
    return this.queuedBytes() - this.encodingBytes > this.maxQueued / 2;
  }

  /**
   * Whether an encode in this thread (no worker threads) goes before requests at its pauses: while the
   * encode queue is past half its bound (requests are refused at the bound: draining it comes first), and
   * while stopping (no new requests). Otherwise requests go first: after each page the encode waits for a
   * turn of the event loop that reads request bodies and answers them, so a request waits for a page
   * (≤ 20k rows or 1 MiB of values), not a batch. Measured (docs/reliability.md, "A long encode gives way
   * too"): p99 at 70 % load 288-375 ms → 56-80 ms; under overload, 503s and a higher peak RSS instead of
   * requests waiting unread.
   */
  private encodeFirst(): boolean {
    return this.stopping || this.queuePastHalf();
  }

  /** Batches waiting for their turn to be encoded. */
  private readonly encodeWaiting: { copy: number; start(): void }[] = [];
  private encodesRunning = 0;
  /** The own rows of the batches being encoded (see `encode`). */
  private encodeCopies = 0;
  /** The rows being encoded, with how many of the running encodes hold each. */
  private readonly encodingRows = new Map<Rows, number>();

  private async releaseLog(): Promise<void> {
    // While replaying, `outstanding` does not yet know the requests still to be batched again or redone:
    // releasing then would delete their only durable copy.
    if (!this.wal || this.replaying) return;
    let min = Infinity;
    for (const seq of this.outstanding.keys()) if (seq < min) min = seq;
    const upTo = min === Infinity ? this.wal.stats().nextSeq : min;
    try {
      // A request whose append resolved is in `outstanding` by now, unless its `accept` is still between
      // the append and `add` (`loggingBytes` counts it until then): the active segment may go only if not.
      await this.wal.releaseBefore(upTo, { roll: this.loggingBytes === 0 });
    } catch (e) {
      this.log.warn("could not delete released log segments", { error: String(e) });
    }
  }

  /**
   * Runs `op` until it succeeds, with exponential backoff and full jitter; gives up only when stopping hard.
   * `store` says whether failures are the object store's (they make `/ready` answer 503 until one succeeds).
   */
  private async retrying<T>(op: () => Promise<T>, what: string, store: boolean): Promise<T> {
    let delay = this.retryInitial;
    let failing = false;
    try {
      for (let attempt = 1;; attempt++) {
        try {
          const out = await op();
          if (store) this.storeAnswered(what);
          return out;
        } catch (e) {
          this.observer.writeFailed?.(store ? "store" : "wal", !this.abandon);
          if (this.abandon) throw e;
          if (attempt === 1 || attempt % 10 === 0) {
            this.log.warn("write failed; retrying", { what, attempt, error: (e as Error).message });
          }
          if (store) {
            this.storeError = `${what}: ${(e as Error).message}`;
            if (!failing) failing = true, this.failingWrites++;
            for (const wake of this.storeFailed.splice(0)) wake();
          }
          this.counters.writeRetries++;
          // A stop that gave up wakes the wait, so no backoff outlasts the stop timeout; so does a probe that
          // finds the store back, so the log drains as soon as it can.
          await new Promise<void>((r) => {
            const wake =
              () => (clearTimeout(timer), this.retryWaits.delete(wake), this.storeBack.delete(wake), r());
            const timer = setTimeout(wake, Math.random() * delay);
            this.retryWaits.add(wake);
            if (store) this.storeBack.add(wake);
          });
          if (this.abandon) throw e;
          delay = Math.min(this.retryMax, delay * 2);
        }
      }
    } finally {
      if (failing) this.failingWrites--;
    }
  }

  private abandon = false;
  private readonly retryWaits = new Set<() => void>();
  private replaying = false;
  private lastProbe = 0;
  private probing = false;
  /** Fails a probe that takes too long; cleared by `close` so no timer outlives the ingest. */
  private probeTimer: ReturnType<typeof setTimeout> | undefined;

  /** A store operation succeeded: it proves reachability as a probe would. */
  private storeAnswered(what: string): void {
    const wasOk = this.storeOk();
    this.probeOk = true;
    this.lastProbe = this.now();
    if (what === "probe") { for (const wake of [...this.storeBack]) wake(); }
    if (!wasOk && this.storeOk()) this.log.info("object store reachable again", { what });
  }

  /**
   * Probes the store (`check()`: a HEAD of the bucket on S3, a write and delete of an empty file on fs)
   * when nothing has shown it reachable for `probeIntervalMs`: so `/ready` turns 503 when the store goes
   * away without traffic, and back to 200 when it returns, without waiting for a write. While it is known
   * to be down, every 2 s (or the interval, if shorter); a probe that succeeds then retries the waiting
   * writes at once. A probe that takes longer than the interval (at most 10 s) fails.
   */
  private probeStore(): void {
    const now = this.now();
    const every = this.storeOk() ? this.probeIntervalMs : Math.min(this.probeIntervalMs || 2000, 2000);
    if (this.probing || !every || now - this.lastProbe < every) return;
    this.probing = true;
    this.lastProbe = now;
    const limit = Math.min(every, 10_000);
    Promise.race([
      this.store.check(),
      new Promise((_, reject) =>
        this.probeTimer = setTimeout(
          () => reject(new Error(`no answer to a probe within ${limit} ms`)),
          limit,
        )
      ),
    ]).then(
      () => this.storeAnswered("probe"),
      (e) => {
        if (this.probeOk) this.log.warn("object store probe failed", { error: (e as Error).message });
        this.probeOk = false;
        this.storeError = `probe: ${(e as Error).message}`;
        for (const wake of this.storeFailed.splice(0)) wake();
      },
    ).finally(() => {
      clearTimeout(this.probeTimer);
      this.probing = false;
    });
  }

  /**
   * Replays the write-ahead log (see the module doc), in two passes: the intent and commit records, which
   * say what is in objects already; then the requests still unfinished, one at a time, under the live
   * bounds (`replayRoom`). Uncommitted intents are rebuilt as their requests are read back and written
   * under their recorded keys once complete.
   */
  private async replay(): Promise<ReplayStats> {
    const stats: ReplayStats = { requests: 0, records: 0, redone: 0, skipped: 0, readBytes: 0 };
    if (!this.wal) return stats;
    const log = this.wal.stats();
    // Pass 1: the small records.
    const done = new SeqBits(log.firstSeq, log.nextSeq);
    const intents: Intent[] = [];
    const committed = new Set<string>();
    for await (
      const rec of this.wal.records({ want: (kind) => kind === KIND_INTENT || kind === KIND_COMMIT })
    ) {
      if (rec.kind === KIND_INTENT) intents.push(JSON.parse(decoder.decode(rec.payload)));
      else {
        const commit: Commit = JSON.parse(decoder.decode(rec.payload));
        committed.add(commit.key);
        for (const seq of commit.done ?? []) done.add(seq);
      }
    }
    // A request is read back if it is unfinished, or if an uncommitted intent holds rows of it (its commit
    // record may be missing while a later one says the request is finished: the redo needs its rows).
    const redoOf = new Map<number, Redo[]>();
    for (const intent of intents) {
      if (committed.has(intent.key)) continue;
      const redo: Redo = { intent, members: [], table: undefined, left: intent.members.length };
      for (const seq of intent.members) redoOf.set(seq, [...(redoOf.get(seq) ?? []), redo]);
    }
    const needed = (seq: number) => !done.has(seq) || redoOf.has(seq);
    // Of those, the contributions already in objects (committed) or about to be redone are not batched again.
    const skip = new Set<string>();
    for (const intent of intents) {
      const id = batchId(intent.table, { service: intent.service, hour: intent.hour });
      for (const seq of intent.members) if (needed(seq)) skip.add(`${seq}\u0000${id}`);
    }
    intents.length = 0;
    committed.clear();

    // Pass 2: the requests, streamed. Nothing is released meanwhile: `outstanding` does not yet know the
    // requests still to be read.
    this.replaying = true;
    try {
      const wanted = (seq: number) => needed(seq) || (stats.skipped++, false);
      for await (const request of this.loggedRequests(wanted)) {
        await this.replayRoom();
        const { seq } = request;
        let parts: readonly PartitionRows[] | undefined;
        try {
          // Limited as its answer was (same partitions, same window around its arrival time), so a replay
          // stores exactly the records the client was told were accepted.
          const d = decodeRequest(request.signal, request.body, { format: request.format });
          for (const rows of d.tables) rows.compact();
          const limited = limitRequest(d, this.limits, request.at);
          parts = limited.parts;
          stats.requests++;
          stats.records += limited.records;
          // A client may resend a request whose answer the crash cut off: known as soon as we listen.
          if (this.seen) {
            const id = requestId(
              SIGNAL_CODES.indexOf(request.signal),
              FORMAT_CODES.indexOf(request.format),
              request.body,
            );
            const { rejected, rejectMessage, overCap, outsideWindow } = limited;
            this.remember(id, seq, { rejected, rejectMessage, overCap, outsideWindow });
          }
        } catch (e) {
          this.log.error("a logged request no longer decodes; skipping it", { seq, error: String(e) });
        }
        const redos = redoOf.get(seq) ?? [];
        if (parts) {
          // Counted before `add`, so the request stays unfinished until its redone rows are committed too.
          for (const redo of redos) {
            const { intent } = redo;
            const found = parts.find(({ rows, part }) =>
              rows.def.name === intent.table && rows.parts[part].service === intent.service &&
              rows.parts[part].hour === intent.hour
            );
            if (!found) continue;
            redo.table = found.rows.def;
            redo.members.push({ seq, rows: found.rows, indices: found.indices, bytes: 0 });
            this.retain(found.rows, false);
            this.expect(seq, 1);
          }
          this.add(seq, parts, skip);
        }
        for (const redo of redos) if (--redo.left === 0 && this.redo(redo)) stats.redone++;
      }
      // Intents some of whose requests were not found (a segment lost to corruption): what there is.
      for (const redos of redoOf.values()) {
        for (const redo of redos) if (redo.left > 0 && (redo.left = 0, this.redo(redo))) stats.redone++;
      }
    } finally {
      this.replaying = false;
    }
    stats.readBytes = this.wal.stats().readBytes;
    // Requests read back whose rows all turned out to be in objects (say, logged by a version without the
    // identity file, or finished without a commit listing them): keep their identities before their
    // segments go. Tried once: start-up must not wait on it (without it, only a resend after their segments
    // are gone, within the window, would be stored again).
    const settled = [...this.unrecorded.keys()].filter((seq) => !this.outstanding.has(seq));
    if (settled.length && this.seenLog) {
      const now = this.clock();
      const entries = settled.map((seq) => ({ ...this.unrecorded.get(seq)!, time: now }));
      await this.seenLog.append(entries).catch((e) =>
        this.log.warn("could not record the identities of replayed requests", { error: String(e) })
      );
    }
    for (const seq of settled) this.unrecorded.delete(seq);
    await this.releaseLog();
    return stats;
  }

  /**
   * The logged requests, read back one at a time in seq order: the one place where request records are
   * parsed. `want(seq)` says which to read; the bodies of the others are not read (nor checked, once their
   * segment has been). Memory: one record (and one read chunk) at a time.
   */
  async *loggedRequests(want: (seq: number) => boolean = () => true): AsyncGenerator<LoggedRequest> {
    if (!this.wal) return;
    const records = this.wal.records({
      want: (kind, seq) => (kind === KIND_REQUEST || kind === KIND_REQUEST_AT) && want(seq),
    });
    for await (const { seq, kind, payload: p } of records) {
      const at = kind === KIND_REQUEST_AT
        ? new DataView(p.buffer, p.byteOffset, REQUEST_AT_HEAD).getFloat64(2, true)
        : undefined;
      yield {
        seq,
        signal: SIGNAL_CODES[p[0]],
        format: FORMAT_CODES[p[1]],
        body: p.subarray(kind === KIND_REQUEST_AT ? REQUEST_AT_HEAD : 2),
        at,
      };
    }
  }

  /**
   * During a replay, before decoding the next request: waits until the batches waiting to be encoded and
   * the objects waiting for the store are within the bounds `admit` refuses live requests beyond. (While the
   * store is down and objects fill `maxPendingBytes`, that is until the store is back.)
   */
  private async replayRoom(): Promise<void> {
    // Only a queue the encoder is working through counts: rows kept for an intent still being rebuilt
    // (retained as queued) would never leave it by waiting.
    while ((this.encodeBehind() && this.queuedBatches > 0) || this.pendingBytes > this.maxPending) {
      await new Promise<void>((resolve) => this.progressWaiters.push(resolve));
    }
  }

  /** Writes a rebuilt uncommitted intent under its recorded key, exactly as it was cut; false if none of its rows are left. */
  private redo(redo: Redo): boolean {
    const { intent, members, table } = redo;
    if (!table || !members.length) return false;
    const id = batchId(intent.table, { service: intent.service, hour: intent.hour });
    const batch: Batch = {
      id,
      table,
      part: members[0].rows.parts.find((x) => batchId(intent.table, x) === id)!,
      members,
      rows: 0,
      bytes: 0,
      openedAt: this.now(),
    };
    const p = this.writeBatch(batch, intent.key).catch((e) =>
      this.log.error("redo failed", { error: String(e) })
    )
      .finally(() => this.inflightFlushes.delete(p));
    this.inflightFlushes.add(p);
    return true;
  }

  /** Flushes every open batch and waits for all writes. */
  async flushAll(): Promise<void> {
    for (const b of [...this.batches.values()]) this.flush(b, "shutdown");
    while (this.inflightFlushes.size) await Promise.allSettled([...this.inflightFlushes]);
  }

  /**
   * Stops: refuses new data, flushes everything and waits for the writes, up to `deadlineMs` (then the
   * remaining data stays in the log for the next start: retries stop, and only store calls already in flight
   * are waited for, each bounded by the store's own timeout). Idempotent.
   */
  async close(options: { deadlineMs?: number } = {}): Promise<{ flushed: boolean }> {
    this.stopping = true;
    if (this.timer !== undefined) clearInterval(this.timer), this.timer = undefined;
    clearTimeout(this.probeTimer);
    const deadline = options.deadlineMs ?? 30_000;
    let timeout: ReturnType<typeof setTimeout> | undefined;
    const flushed = await Promise.race([
      this.flushAll().then(() => true),
      new Promise<boolean>((r) => timeout = setTimeout(() => r(false), deadline)),
    ]);
    clearTimeout(timeout);
    if (!flushed) {
      this.abandon = true;
      for (const wake of [...this.retryWaits]) wake();
    }
    await Promise.allSettled([...this.inflightFlushes]);
    await this.seenLog?.close();
    await this.wal?.close();
    return { flushed };
  }

  /** The open batches per table: how many, their rows and decoded bytes (for the metrics, when scraped). */
  openBatchesByTable(): Map<string, { batches: number; rows: number; bytes: number }> {
    const out = new Map<string, { batches: number; rows: number; bytes: number }>();
    for (const b of this.batches.values()) {
      let t = out.get(b.table.name);
      if (!t) out.set(b.table.name, t = { batches: 0, rows: 0, bytes: 0 });
      t.batches++, t.rows += b.rows, t.bytes += b.bytes;
    }
    return out;
  }

  /** Counters. */
  stats(): IngestStats {
    return {
      ...this.counters,
      openBatches: this.batches.size,
      bufferedBytes: this.bufferedBytes,
      pendingBytes: this.pendingBytes,
      inflightBytes: this.inflightBytes,
      queuedBatches: this.queuedBatches,
      queuedBytes: this.queuedBytes(),
      heldBytes: this.heldBytes,
      dedupeEntries: this.seen?.size ?? 0,
      dedupeEvicted: this.seen?.evicted ?? 0,
      peakHeldBytes: this.peakHeldBytes,
    };
  }
}

/** The answer to a retry: the original's, with a message if only its count was kept (across a restart). */
function answerOf(known: Answer): Rejection {
  const answer = { overCap: 0, outsideWindow: 0, ...known };
  if (!answer.rejected || answer.rejectMessage) return answer;
  return {
    ...answer,
    rejectMessage: `${answer.rejected} records were refused when this request was first received`,
  };
}

/** A set of seqs in [from, to), one bit each: a replay's finished requests, compact however many. */
class SeqBits {
  readonly #bits: Uint8Array;
  constructor(readonly from: number, readonly to: number) {
    this.#bits = new Uint8Array(Math.ceil(Math.max(0, to - from) / 8));
  }
  add(seq: number): void {
    const i = seq - this.from;
    if (Number.isInteger(i) && i >= 0 && seq < this.to) this.#bits[i >> 3] |= 1 << (i & 7);
  }
  has(seq: number): boolean {
    const i = seq - this.from;
    return i >= 0 && seq < this.to && (this.#bits[i >> 3] & (1 << (i & 7))) !== 0;
  }
}
