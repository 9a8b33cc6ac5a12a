/**
 * The server's ingest path: accepted requests are logged durably (write-ahead log, group-committed
 * fsync) before they are acknowledged, batched per (table, service, event hour), and flushed as one
 * Parquet object per batch when it reaches its row, byte or age limit.
 *
 * Exactly-once across crashes: before an object is written, an intent record names its key and the
 * (request, table, partition) contributions it holds; after the write, a commit record closes it. On
 * start, committed contributions are skipped, uncommitted intents are redone under the same key (an
 * overwrite, never a duplicate) and everything else is batched again. A log segment is deleted only
 * when every request in it has all its rows in confirmed objects.
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
  type Decoded,
  decodeRequest,
  encodeBatch,
  type FileOptions,
  type Format,
  type ParquetFile,
} from "../core/convert.ts";
import type { Partition, PartitionRows, Rows } from "../core/rows.ts";
import type { Signal, TableDef } from "../core/schema.ts";
import type { ObjectStore } from "../storage/object_store.ts";
import { OverloadedError, UnavailableError } from "./errors.ts";
import { checkLimits, limitRequest, type Rejection, type RequestLimits } from "./request_limits.ts";
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
   * Bound on the decoded bytes of batches cut but not yet encoded (they wait for the one encoder);
   * beyond it requests get 503 before their bodies are read. Default 128 MiB.
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
  /** Milliseconds clock; default Date.now. */
  now?: () => number;
  /** Awaited by the encoder after every page, so requests are served meanwhile. Default: `setImmediate`. */
  encodePause?: () => Promise<void>;
}

/**
 * Log record kinds. KIND_REQUEST_AT also holds the arrival time, so that a replay applies the same
 * event-time window as the answer did; it is written only while a window is configured, so that the log
 * stays readable by earlier versions otherwise. KIND_REQUEST records replay without a window.
 */
const KIND_REQUEST = 1, KIND_INTENT = 2, KIND_COMMIT = 3, KIND_REQUEST_AT = 4;
/** [signal, format, arrival ms as a float64 LE] before the body of a KIND_REQUEST_AT record. */
const REQUEST_AT_HEAD = 10;

/** A macrotask turn: pending I/O runs first. `setImmediate`, not `setTimeout(0)`, which Deno clamps (~2 ms). */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const SIGNALS: readonly Signal[] = ["logs", "traces", "metrics"];
const FORMATS: readonly Format[] = ["protobuf", "json", "jsonl"];
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

interface Intent {
  key: string;
  table: string;
  service: string;
  hour: number;
  members: number[];
}

const batchId = (table: string, part: Partition): string => `${table}\u0000${part.service}\u0000${part.hour}`;

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
}

/** The batching, durable ingest. Create with `Ingest.start`, which replays the log first. */
export class Ingest {
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

  private readonly batches = new Map<string, Batch>();
  /** Outstanding contributions per logged request; the log is released below the smallest key. */
  private readonly outstanding = new Map<number, number>();
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
  private readonly encodePause: () => Promise<void>;
  private lastRejectLog = -Infinity;
  /** Bytes of request records being appended to the log now. */
  private loggingBytes = 0;
  private localSeq = 0;
  private storeHealthy = true;
  private stopping = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly counters = {
    requests: 0,
    records: 0,
    objects: 0,
    objectRows: 0,
    writeRetries: 0,
    rejected: 0,
  };

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
    this.encodePause = options.encodePause ?? yieldToEventLoop;
    if (!Number.isInteger(this.maxOpen) || this.maxOpen < 1) {
      throw new RangeError(`maxOpenBatches must be a positive integer, got ${this.maxOpen}`);
    }
    this.limits = checkLimits(options.limits ?? {});
    this.files = options.files ?? {};
    this.log = options.log ?? silentLogger;
    this.retryInitial = options.retry?.initialMs ?? 200;
    this.retryMax = options.retry?.maxMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * Creates the ingest, replays what the write-ahead log still holds (redoing uncommitted writes under
   * their recorded keys) and starts the age timer. Resolves once the replayed data is batched again.
   */
  static async start(
    options: IngestOptions,
  ): Promise<{ ingest: Ingest; replayed: { requests: number; records: number; redone: number } }> {
    const ingest = new Ingest(options);
    const replayed = await ingest.replay();
    const tick = Math.max(50, Math.min(1000, ingest.maxAgeMs / 4));
    ingest.storeHealthy = options.storeReachable ?? true;
    ingest.timer = setInterval(() => {
      ingest.flushAged();
      ingest.probeStore();
    }, tick);
    return { ingest, replayed };
  }

  /** Reserves in-flight budget for a request of about `bytes`; see `Sink.admit`. */
  admit(bytes: number): () => void {
    if (this.stopping) throw new UnavailableError("shutting down", 5);
    if (this.pendingBytes > this.maxPending) {
      throw new UnavailableError("the object store is not keeping up or unreachable; retry later", 10);
    }
    // Refused here, before the body is read and decoded: decoded rows would only add to the backlog.
    if (this.encodeBehind()) {
      throw new UnavailableError(
        `encoding is behind (${this.queuedBatches} batches, ${this.queuedBytes()} bytes waiting); retry later`,
        2,
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

  /** Whether new data can be accepted now. */
  ready(): boolean {
    return !this.stopping && this.pendingBytes <= this.maxPending && this.storeHealthy &&
      !this.encodeBehind() && !this.logFull(0);
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
    // With nothing outstanding the log drains no further: only its own bound applies, so that a request
    // larger than the limit is not refused forever.
    if (!this.outstanding.size && !this.loggingBytes) return false;
    return this.wal.stats().bytes + this.loggingBytes + bytes > this.maxLogBytes;
  }

  /**
   * Accepts a decoded request. Resolves when a 200 may be sent: after the fsync of its log record
   * (durable mode), or at once (without a log); with the records the request limits refused, for
   * `partial_success`.
   */
  async accept(
    request: { signal: Signal; format: Format; body: Uint8Array; decoded: Decoded },
  ): Promise<Rejection> {
    if (this.stopping) throw new UnavailableError("shutting down", 5);
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
    const rejection = { rejected: limited.rejected, rejectMessage: limited.rejectMessage };
    if (!limited.records) return rejection;
    let seq: number;
    if (this.wal) {
      // The record is [signal, format(, arrival time)] + the body, written from the body's own buffer.
      const windowed = this.limits.acceptPastMs !== undefined || this.limits.acceptFutureMs !== undefined;
      const head = new Uint8Array(windowed ? REQUEST_AT_HEAD : 2);
      head[0] = SIGNALS.indexOf(request.signal), head[1] = FORMATS.indexOf(request.format);
      if (windowed) new DataView(head.buffer).setFloat64(2, now, true);
      const payload = [head, request.body];
      const length = head.length + request.body.length;
      if (this.logFull(length)) {
        throw new UnavailableError("write-ahead log full (waiting for the object store); retry later", 10);
      }
      this.loggingBytes += length;
      try {
        seq = await this.wal.append(windowed ? KIND_REQUEST_AT : KIND_REQUEST, payload);
      } catch (e) {
        if (e instanceof WalFullError) {
          throw new UnavailableError(`write-ahead log full (${e.message}); retry later`, 10, { cause: e });
        }
        throw new UnavailableError(`write-ahead log write failed: ${(e as Error).message}`, 5, { cause: e });
      } finally {
        this.loggingBytes -= length;
      }
    } else {
      seq = ++this.localSeq;
    }
    this.add(seq, limited.parts);
    return rejection;
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
        if (this.batches.size >= this.maxOpen) this.flush(this.batches.values().next().value!);
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
      if (batch.rows >= this.maxRows || batch.bytes >= this.maxBytes) this.flush(batch);
    }
    if (this.wal) {
      if (count) this.outstanding.set(seq, (this.outstanding.get(seq) ?? 0) + count);
      else void this.releaseLog();
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
        if (b === largest || b.members.some((m) => shared.has(m.rows))) this.flush(b);
      }
    }
  }

  private flushAged(): void {
    const now = this.now();
    for (const b of [...this.batches.values()]) if (now - b.openedAt >= this.maxAgeMs) this.flush(b);
  }

  /** Takes a batch out of the open set and writes it in the background. */
  private flush(batch: Batch): void {
    if (this.batches.get(batch.id) !== batch) return;
    this.batches.delete(batch.id);
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
    const file = await this.encode(batch);
    const objectKey = key ?? file.key;
    const seqs = batch.members.map((m) => m.seq);
    // The decoded rows are in the file now; while the write is retried (say the store is down) only the
    // encoded bytes stay in memory, and those are what `maxPendingBytes` bounds.
    batch.members.length = 0;
    this.pendingBytes += file.bytes.length;
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
      this.log.debug("wrote object", { key: objectKey, rows: file.rows, bytes: file.bytes.length });
      if (this.wal) {
        try {
          await this.wal.append(KIND_COMMIT, encoder.encode(JSON.stringify({ key: objectKey })));
        } catch (e) {
          // Without the commit record a restart redoes the intent under the same key: an overwrite.
          this.log.warn("could not log a commit record", { key: objectKey, error: String(e) });
        }
        for (const seq of seqs) {
          const left = (this.outstanding.get(seq) ?? 1) - 1;
          if (left > 0) this.outstanding.set(seq, left);
          else this.outstanding.delete(seq);
        }
        await this.releaseLog();
      }
    } finally {
      this.pendingBytes -= file.bytes.length;
    }
  }

  /**
   * Encodes one batch at a time: encoding is CPU-bound and its wasm memory never shrinks, so concurrent
   * encodes would only raise the peak.
   */
  private encode(batch: Batch): Promise<ParquetFile> {
    // Until it is encoded, a batch's rows count against the queue's bound (`admit` refuses beyond it).
    // The callers (`flush`, the replay's redo) retained its rows as queued; released once encoded.
    const members = batch.members.slice();
    this.queuedBatches++;
    // Encoding yields to the event loop after every page, so requests keep being read and answered
    // while large batches are written (p99 under the protobuf load: ~720 ms with a yield per column
    // chunk, ~270 ms with one per page).
    const run = this.encoding.then(() => {
      // Rows leave an open batch only when it is cut, never join one again: this cannot grow meanwhile.
      this.encodingBytes = this.closedBytes(members);
      return encodeBatch(batch.members.map((m) => ({ rows: m.rows, indices: m.indices })), {
        ...this.files,
        pause: this.encodePause,
      });
    }).finally(() => {
      this.encodingBytes = 0;
      this.queuedBatches--;
      for (const m of members) this.unretain(m.rows, false);
    });
    this.encoding = run.catch(() => undefined);
    return run;
  }

  private encoding: Promise<unknown> = Promise.resolve();

  private async releaseLog(): Promise<void> {
    // While replaying, `outstanding` does not yet know the requests still to be batched again or redone:
    // releasing then would delete their only durable copy.
    if (!this.wal || this.replaying) return;
    let min = Infinity;
    for (const seq of this.outstanding.keys()) if (seq < min) min = seq;
    const upTo = min === Infinity ? this.wal.stats().nextSeq : min;
    try {
      await this.wal.releaseBefore(upTo);
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
    for (let attempt = 1;; attempt++) {
      try {
        const out = await op();
        if (store) this.markStore(true, what);
        return out;
      } catch (e) {
        if (this.abandon) throw e;
        if (attempt === 1 || attempt % 10 === 0) {
          this.log.warn("write failed; retrying", { what, attempt, error: (e as Error).message });
        }
        if (store) this.markStore(false, what);
        this.counters.writeRetries++;
        // A stop that gave up wakes the wait, so no backoff outlasts the stop timeout.
        await new Promise<void>((r) => {
          const wake = () => (clearTimeout(timer), this.retryWaits.delete(wake), r());
          const timer = setTimeout(wake, Math.random() * delay);
          this.retryWaits.add(wake);
        });
        if (this.abandon) throw e;
        delay = Math.min(this.retryMax, delay * 2);
      }
    }
  }

  private abandon = false;
  private readonly retryWaits = new Set<() => void>();
  private replaying = false;
  private lastProbe = 0;

  private markStore(healthy: boolean, what: string): void {
    if (healthy && !this.storeHealthy) this.log.info("object store reachable again", { what });
    this.storeHealthy = healthy;
  }

  /**
   * While the store is marked down and nothing is being retried against it (say it was unreachable at
   * start-up), probe it every few seconds, so `/ready` recovers without waiting for a write.
   */
  private probeStore(): void {
    const now = this.now();
    if (this.storeHealthy || this.pendingBytes > 0 || now - this.lastProbe < 5000) return;
    this.lastProbe = now;
    this.store.check().then(() => this.markStore(true, "probe"), () => {});
  }

  /** Replays the write-ahead log: see the module doc. */
  private async replay(): Promise<{ requests: number; records: number; redone: number }> {
    if (!this.wal) return { requests: 0, records: 0, redone: 0 };
    const requests = new Map<
      number,
      { signal: Signal; format: Format; body: Uint8Array; at: number | undefined }
    >();
    const intents: Intent[] = [];
    const committed = new Set<string>();
    for (const rec of this.wal.replayed()) {
      if (rec.kind === KIND_REQUEST) {
        requests.set(rec.seq, {
          signal: SIGNALS[rec.payload[0]],
          format: FORMATS[rec.payload[1]],
          body: rec.payload.subarray(2),
          at: undefined,
        });
      } else if (rec.kind === KIND_REQUEST_AT) {
        const p = rec.payload;
        requests.set(rec.seq, {
          signal: SIGNALS[p[0]],
          format: FORMATS[p[1]],
          body: p.subarray(REQUEST_AT_HEAD),
          at: new DataView(p.buffer, p.byteOffset, REQUEST_AT_HEAD).getFloat64(2, true),
        });
      } else if (rec.kind === KIND_INTENT) intents.push(JSON.parse(decoder.decode(rec.payload)));
      else if (rec.kind === KIND_COMMIT) committed.add(JSON.parse(decoder.decode(rec.payload)).key);
    }
    if (!requests.size) {
      await this.releaseLog();
      return { requests: 0, records: 0, redone: 0 };
    }
    // Each request is limited as its answer was (same partitions, same window around its arrival time),
    // so a replay stores exactly the records the client was told were accepted.
    const decoded = new Map<number, PartitionRows[]>();
    let records = 0;
    for (const [seq, r] of requests) {
      try {
        const d = decodeRequest(r.signal, r.body, { format: r.format });
        for (const rows of d.tables) rows.compact();
        const limited = limitRequest(d, this.limits, r.at);
        decoded.set(seq, limited.parts);
        records += limited.records;
      } catch (e) {
        this.log.error("a logged request no longer decodes; skipping it", { seq, error: String(e) });
      }
    }
    // Contributions already in objects (committed) or about to be redone (uncommitted intents) are not batched again.
    const skip = new Set<string>();
    const redo: Intent[] = [];
    for (const intent of intents) {
      for (const seq of intent.members) {
        skip.add(`${seq}\u0000${batchId(intent.table, { service: intent.service, hour: intent.hour })}`);
      }
      if (!committed.has(intent.key)) redo.push(intent);
    }
    this.replaying = true;
    for (const [seq, d] of decoded) this.add(seq, d, skip);
    // Redo uncommitted intents under their recorded keys, exactly as they were cut.
    for (const intent of redo) {
      const id = batchId(intent.table, { service: intent.service, hour: intent.hour });
      const members: Member[] = [];
      let table: TableDef | undefined;
      for (const seq of intent.members) {
        const found = decoded.get(seq)?.find(({ rows, part }) =>
          rows.def.name === intent.table && rows.parts[part].service === intent.service &&
          rows.parts[part].hour === intent.hour
        );
        if (!found) continue;
        table = found.rows.def;
        members.push({ seq, rows: found.rows, indices: found.indices, bytes: 0 });
      }
      if (!table || !members.length) continue;
      for (const m of members) this.outstanding.set(m.seq, (this.outstanding.get(m.seq) ?? 0) + 1);
      for (const m of members) this.retain(m.rows, false);
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
    }
    this.replaying = false;
    await this.releaseLog();
    return { requests: decoded.size, records, redone: redo.length };
  }

  /** Flushes every open batch and waits for all writes. */
  async flushAll(): Promise<void> {
    for (const b of [...this.batches.values()]) this.flush(b);
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
    await this.wal?.close();
    return { flushed };
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
    };
  }
}
