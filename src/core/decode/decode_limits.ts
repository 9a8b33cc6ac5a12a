/**
 * What one decode may cost: caps on envelopes and records per request, a bound on the decoded bytes it
 * holds (counted as batches count them, `Rows.byteLength()`), and the slices a long decode is cut into so
 * that a caller can yield to its event loop between them. The core stays pure: the caller passes the
 * limits, a callback that charges the decoded bytes to its own budget, and decides how to pause.
 *
 * A decoder owns one `DecodeMeter` and tells it about every envelope, record and nested item (events,
 * links, exemplars, data points) it decodes. The meter counts them against the caps and, every
 * `CHECK_EVERY` units of work, measures the decoded bytes: so the bytes held never exceed the bound by
 * more than what `CHECK_EVERY` units can add, and no single check costs more than a walk over the columns.
 *
 * @module
 */

/** Resource and scope envelopes (and JSON Lines lines) one request may hold. */
export const MAX_ENVELOPES = 1 << 21;
/** Records (log records, spans, metric data points) one request may hold. */
export const MAX_RECORDS = 1 << 23;
/**
 * Attributes, events, links, exemplars or quantiles one record (span, log record, data point, event,
 * link) may hold. SDKs keep 128 of each by default; this is checked every 1024, so a record is refused
 * at the first multiple of 1024 beyond it. It bounds the work between two pauses: a record is decoded
 * without pausing.
 */
export const MAX_ITEMS_PER_RECORD = 1 << 16;
/** Work units (envelopes, records, nested items) between two measurements of the decoded bytes. */
export const CHECK_EVERY = 1024;
/** Bytes an attribute scratch holds per entry (ranges, kind, key prefix, order), counted as decoded. */
export const SCRATCH_ENTRY_BYTES = 32;
/** Rows whose fixed-width buffers a decoder sizes up front at most (it grows them past that as needed). */
export const PRESIZE_MAX_ROWS = 1 << 20;

/** Caps and budget of one decode (all optional). */
export interface DecodeLimits {
  /** Resource and scope envelopes, and JSON Lines lines, per request. Default `MAX_ENVELOPES` (2 Mi). */
  maxEnvelopes?: number;
  /** Records (log records, spans, data points) per request. Default `MAX_RECORDS` (8 Mi). */
  maxRecords?: number;
  /** Attributes, events, links, exemplars or quantiles per record. Default `MAX_ITEMS_PER_RECORD` (64 Ki). */
  maxItemsPerRecord?: number;
  /**
   * Decoded bytes (as `Rows.byteLength()` counts them, which is what batches are charged) per request;
   * beyond it the decode stops with a DecodeLimitError. Default: no bound.
   */
  maxDecodedBytes?: number;
  /**
   * Called with the decoded bytes held so far whenever they are measured (and once before buffers are
   * sized up front, with what that sizing holds). It may throw (e.g. the caller's "too much in flight")
   * to stop the decode; the error is passed through as is. Default: none.
   */
  onDecodedBytes?: (bytes: number) => void;
  /**
   * Work units (envelopes, records, nested items) after which an async decode pauses (see
   * `decodeRequestAsync`). Default 16384.
   */
  sliceUnits?: number;
  /** Input bytes after which an async decode pauses, whatever the units. Default 1 MiB. */
  sliceBytes?: number;
}

/**
 * No caps on envelopes, records or nested items (the decoded bytes stay unbounded unless given): for
 * trusted local input such as the CLI's files, which may hold far more than one request should.
 */
export const UNCAPPED: Readonly<DecodeLimits> = {
  maxEnvelopes: Infinity,
  maxRecords: Infinity,
  maxItemsPerRecord: Infinity,
};

/** What a decode did (filled in when passed in the options): work counters for tests and benchmarks. */
export interface DecodeStats {
  /** Resource and scope envelopes (and JSON Lines lines) walked. */
  envelopes: number;
  /** Envelopes actually decoded (others were empty or repeated the previous one, and reused it). */
  envelopesDecoded: number;
  /** Records (rows) decoded. */
  records: number;
  /** Nested items decoded (events, links, exemplars, quantiles, metrics). */
  items: number;
  /** Decoded bytes at the last measurement (the largest: they only grow during a decode). */
  decodedBytes: number;
  /** Times the decode paused (async decodes). */
  slices: number;
}

/** A decode went past one of its limits: 413 over HTTP (the request is too large, not malformed). */
export class DecodeLimitError extends RangeError {
  signal = "";
  constructor(readonly problem: string, readonly limit: "envelopes" | "records" | "items" | "decodedBytes") {
    super(problem);
    this.name = "DecodeLimitError";
  }
  /** Names the signal: the message becomes "cannot decode logs request: …". */
  forSignal(signal: string): this {
    this.signal = signal;
    this.message = `cannot decode ${signal} request: ${this.problem}`;
    return this;
  }
}

/** Counts the work of one decode against its limits; see the module doc. */
export class DecodeMeter {
  readonly stats: DecodeStats;
  private readonly maxEnvelopes: number;
  private readonly maxRecords: number;
  private readonly maxItems: number;
  private readonly maxBytes: number;
  /** The bound on decoded bytes (Infinity when none). */
  get maxDecodedBytes(): number {
    return this.maxBytes;
  }
  private readonly onBytes: ((bytes: number) => void) | undefined;
  private readonly sliceUnits: number;
  private readonly sliceBytes: number;
  /** Units left until the next measurement. */
  private untilCheck = CHECK_EVERY;
  /** Units done since the last pause. */
  private sliceDone = 0;
  /** Input position at the last pause. */
  private sliceFrom = 0;
  /** Bytes held by buffers sized up front: decoded bytes are at least this much. */
  private floor = 0;
  /** Measures the decoded bytes held (set by the decoder once its columns exist). */
  measure: () => number = () => 0;

  /** `pausing`: whether the caller pauses between slices (else `pauseDue` is never true). */
  constructor(limits: DecodeLimits = {}, pausing = false, stats?: DecodeStats) {
    this.maxEnvelopes = limits.maxEnvelopes ?? MAX_ENVELOPES;
    this.maxRecords = limits.maxRecords ?? MAX_RECORDS;
    this.maxItems = limits.maxItemsPerRecord ?? MAX_ITEMS_PER_RECORD;
    this.maxBytes = limits.maxDecodedBytes ?? Infinity;
    this.onBytes = limits.onDecodedBytes;
    this.sliceUnits = pausing ? limits.sliceUnits ?? 16384 : Infinity;
    this.sliceBytes = pausing ? limits.sliceBytes ?? 1 << 20 : Infinity;
    this.stats = Object.assign(stats ?? {} as DecodeStats, {
      envelopes: 0,
      envelopesDecoded: 0,
      records: 0,
      items: 0,
      decodedBytes: 0,
      slices: 0,
    });
  }

  /** Counts one resource or scope envelope (or JSON Lines line). */
  envelope(): void {
    if (++this.stats.envelopes > this.maxEnvelopes) {
      throw new DecodeLimitError(
        `more than ${this.maxEnvelopes} resource and scope envelopes in one request; send fewer, larger ones`,
        "envelopes",
      );
    }
    this.work(1);
  }

  /** Counts one record (a row). */
  record(): void {
    if (++this.stats.records > this.maxRecords) this.tooManyRecords(this.stats.records);
    this.work(1);
  }

  /**
   * Units that can be done before the meter must look (a measurement, a pause by units or the record
   * cap is due): a loop counts down from it locally and calls `add` at zero, instead of a call a unit.
   */
  budget(): number {
    return Math.max(
      1,
      Math.min(this.untilCheck, this.sliceUnits - this.sliceDone, this.maxRecords - this.stats.records + 1),
    );
  }

  /** Counts `n` records (`records`) or nested items at once; see `budget`. */
  add(records: boolean, n: number): void {
    if (!records) return this.items(n);
    if ((this.stats.records += n) > this.maxRecords) this.tooManyRecords(this.stats.records);
    this.work(n);
  }

  /** The input position at which a pause is due by bytes (Infinity when the caller does not pause). */
  get pauseAt(): number {
    return this.sliceFrom + this.sliceBytes;
  }

  /** Fails before decoding when a request is known to hold more than `maxRecords` records. */
  expectRecords(n: number): void {
    if (n > this.maxRecords) this.tooManyRecords(n);
  }

  private tooManyRecords(n: number): never {
    throw new DecodeLimitError(
      `${
        n > this.stats.records ? n : "more than " + this.maxRecords
      } records in one request, more than the ${this.maxRecords} allowed; split it`,
      "records",
    );
  }

  /** Counts `n` nested items (events, links, exemplars, data point values). */
  items(n: number): void {
    this.stats.items += n;
    this.work(n);
  }

  /**
   * Counts 1024 more nested items of one kind (`what`) in one record (or `where`: a resource's or
   * scope's attributes), `count` so far: beyond `maxItemsPerRecord`, a DecodeLimitError.
   */
  nested(count: number, what: string, where = "record"): void {
    if (count > this.maxItems) {
      throw new DecodeLimitError(`more than ${this.maxItems} ${what} in one ${where}`, "items");
    }
    this.items(1024);
  }

  /** Adds `n` units of work; measures the decoded bytes when a check is due. */
  work(n: number): void {
    this.sliceDone += n;
    if ((this.untilCheck -= n) <= 0) this.check();
  }

  /**
   * Charges `bytes` that buffers sized up front hold, before they are allocated: the decoded bytes
   * reported are at least this from now on.
   */
  reserve(bytes: number): void {
    if (bytes > this.maxBytes) this.tooManyBytes("would hold");
    if (bytes <= this.floor) return;
    this.floor = bytes;
    this.check();
  }

  private tooManyBytes(holds = "holds"): never {
    throw new DecodeLimitError(
      `the decoded request ${holds} more than ${this.maxBytes} bytes; send smaller requests`,
      "decodedBytes",
    );
  }

  /** Measures the decoded bytes now; throws DecodeLimitError beyond the bound. */
  check(): void {
    this.untilCheck = CHECK_EVERY;
    const bytes = Math.max(this.measure(), this.floor);
    this.stats.decodedBytes = bytes;
    if (bytes > this.maxBytes) this.tooManyBytes();
    this.onBytes?.(bytes);
  }

  /** Whether a pause is due at input position `pos` (a slice's units or bytes are used up). */
  pauseDue(pos: number): boolean {
    return this.sliceDone >= this.sliceUnits || pos - this.sliceFrom >= this.sliceBytes;
  }

  /** Starts a new slice at input position `pos` (the caller pauses now). */
  paused(pos: number): void {
    this.sliceDone = 0;
    this.sliceFrom = pos;
    this.stats.slices++;
  }
}

/**
 * `holder.meter.nested(count, what)` as a plain function of the decoder's columns: decoders call it every
 * 1024th item from their hot loops, where reading the meter at the call site made the logs decode 8-10%
 * slower (measured; V8 then optimises the loop less well).
 */
export function countNested(holder: { readonly meter: DecodeMeter }, count: number, what: string): void {
  holder.meter.nested(count, what);
}

/** Runs a decode's steps to the end without pausing (they only pause when a meter asks them to). */
export function runSteps<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}
