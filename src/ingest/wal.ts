/**
 * Write-ahead log: the local, fsynced store behind "a 200 means the request will reach the object store".
 *
 * On disk: a directory of segment files named by the seq of their first record
 * (`00000000000000000001.wal`, 20 digits so a plain name sort is seq order). A segment is a plain
 * sequence of records, each a 24-byte little-endian header followed by the payload:
 *
 * | offset | size | field                                                        |
 * | ------ | ---- | ------------------------------------------------------------ |
 * | 0      | 4    | magic, the bytes `O2PW`                                      |
 * | 4      | 4    | payload length (u32)                                         |
 * | 8      | 4    | kind (u32, chosen by the caller)                             |
 * | 12     | 8    | seq (u64; always a safe integer)                             |
 * | 20     | 4    | CRC-32C over bytes 0..20 of the header, then the payload     |
 *
 * Reading back is streamed: {@linkcode Wal.open} checks only the last segment (to cut a torn tail);
 * {@linkcode Wal.records} reads the segments found at open one record at a time, in bounded chunks, and
 * skips the payloads its caller does not want (without reading them, once a segment has been checked).
 * A segment all of whose records are released is deleted; the active one too, by starting a new one,
 * once it has grown past `rollReleasedBytes` (see {@linkcode Wal.releaseBefore}).
 *
 * Only node: modules are used so the same file runs under Deno and Bun.
 *
 * @module
 */

import { type FileHandle, mkdir, open, readdir, stat, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { crc32c, crc32cCombine } from "../codecs/crc32c.ts";

/** One logged request. `seq` is strictly increasing across the life of the log, restarts included. */
export interface WalRecord {
  seq: number;
  kind: number;
  payload: Uint8Array;
}

/** The log's size bound was reached or the disk is full: the caller should answer 503 and let the client retry. */
export class WalFullError extends RangeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WalFullError";
  }
}

/** Options of {@linkcode Wal.open}. */
export interface WalOptions {
  /** Directory holding the segment files; created (with its parents) if missing. */
  dir: string;
  /**
   * Bound on the sum of all segment file sizes, counting appends not yet written. An append that would
   * go beyond it rejects at once with {@linkcode WalFullError}.
   */
  maxBytes: number;
  /**
   * A new segment is started before a write that would take the active one past this size; a single
   * record larger than this gets a segment of its own. Defaults to 64 MiB.
   */
  segmentBytes?: number;
  /**
   * Defaults to true: every group is fdatasynced (and the directory fsynced when a segment is created)
   * before its appends resolve. `false` skips all syncs; it is UNSAFE: an acknowledged record can be
   * lost on power loss or an OS crash (a kill -9 of the process alone loses nothing). Use it for tests
   * and benchmarks only.
   */
  sync?: boolean;
  /**
   * When a release finds every record of the active segment released and the segment at least this
   * large, a new segment is started and the old one deleted, so a restart has nothing to read back.
   * Bounds the cost: at most one new file and two directory fsyncs per this many bytes logged.
   * Defaults to an eighth of `segmentBytes` (at least 4 KiB).
   */
  rollReleasedBytes?: number;
  /**
   * Receives reports of torn tails and corrupt records found by `open` (the last segment) and by
   * `records` (the others). Defaults to `console.warn`.
   */
  onWarning?: (message: string) => void;
}

/** Options of {@linkcode Wal.records}. */
export interface WalReadOptions {
  /**
   * Whether to hand over the record of `kind` and `seq`; records it declines are not yielded, and their
   * payloads are not read where the segment has already been checked (at open, or by an earlier read).
   * Default: every record.
   */
  want?: (kind: number, seq: number) => boolean;
}

/** Counters for logs and metrics, from {@linkcode Wal.stats}. */
export interface WalStats {
  /** Sum of the segment file sizes. */
  bytes: number;
  /** Number of segment files, the active one included. */
  segments: number;
  /** Appends made durable since open. */
  appends: number;
  /** Group commits (one write each) since open. */
  groups: number;
  /** fdatasync calls made for group commits since open (0 with `sync: false`). */
  syncs: number;
  /** The seq the next append will get. */
  nextSeq: number;
  /** The seq of the oldest segment's first record (or the seq the next append will get if it is empty). */
  firstSeq: number;
  /** Active segments started because every record in them was released (see `rollReleasedBytes`). */
  releaseRolls: number;
  /** Bytes read back by {@linkcode Wal.records} (headers and the payloads read) since open. */
  readBytes: number;
}

const HEADER_BYTES = 24;
const MAGIC = [0x4f, 0x32, 0x50, 0x57]; // "O2PW"
const MAX_PAYLOAD_BYTES = 0xffffffff;
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Bounds on one group commit, so one write never gathers an unbounded amount of memory. */
const MAX_GROUP_BYTES = 16 * 1024 * 1024;
/** Also keeps a group's iovec count within IOV_MAX (1024 on Linux). */
const MAX_GROUP_RECORDS = 1024;
const SEGMENT_NAME = /^(\d{20})\.wal$/;
/** Read size of {@linkcode Wal.records}: records are read in chunks of this much (or one record, if larger). */
const READ_CHUNK_BYTES = 1024 * 1024;
/**
 * Read size in a segment already checked, where unwanted payloads are skipped: small, so that skipping a
 * record does not read it anyway as part of the chunk that holds its header.
 */
const SKIM_CHUNK_BYTES = 64 * 1024;

interface Segment {
  name: string;
  firstSeq: number;
  /**
   * Highest valid seq in the segment; 0 when it holds none. For a segment not yet read back, the seq
   * before the next segment's first: an upper bound, which is all that releasing needs.
   */
  lastSeq: number;
  bytes: number;
  /**
   * How far the segment is known to hold valid records (checksums verified, seqs in order): set when the
   * last segment is checked at open, or when `records` first reads an older one. Undefined until then.
   */
  checked?: number;
  /** Whether the segment existed at open (only those are read back; later ones hold no old records). */
  old: boolean;
}

interface Pending {
  seq: number;
  /** The record header; the payload's parts are written after it straight from the caller's buffers. */
  frame: Uint8Array;
  parts: Uint8Array[];
  /** Header + payload bytes. */
  size: number;
  resolve: (seq: number) => void;
  reject: (error: unknown) => void;
}

interface ScanResult {
  /** Offset just past the last valid record. */
  end: number;
  lastSeq: number;
  /** Why the scan stopped before the end of the file, if it did. */
  problem?: string;
}

/** A write-ahead log with group commit. Create one with {@linkcode Wal.open}. */
export class Wal {
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #segmentBytes: number;
  readonly #sync: boolean;
  #fh: FileHandle;
  /** Oldest first; the last one is the active segment, the only one written to. */
  readonly #segments: Segment[];
  readonly #rollReleasedBytes: number;
  readonly #warn: (message: string) => void;
  #nextSeq: number;
  #bytes: number;
  /** Bytes of appends accepted but not yet written, counted against maxBytes. */
  #reserved = 0;
  #queue: Pending[] = [];
  #pumping = false;
  #idleWaiters: (() => void)[] = [];
  /** Set when a failed group could not be truncated away: the next group starts a new segment. */
  #mustRoll = false;
  #releasing: Promise<void> = Promise.resolve();
  #closing = false;
  #closed: Promise<void> | undefined;
  #appends = 0;
  #groups = 0;
  #syncs = 0;
  #releaseRolls = 0;
  #readBytes = 0;

  private constructor(
    options: Required<WalOptions>,
    state: { fh: FileHandle; segments: Segment[]; nextSeq: number },
  ) {
    this.#dir = options.dir;
    this.#maxBytes = options.maxBytes;
    this.#segmentBytes = options.segmentBytes;
    this.#sync = options.sync;
    this.#rollReleasedBytes = options.rollReleasedBytes;
    this.#warn = options.onWarning;
    this.#fh = state.fh;
    this.#segments = state.segments;
    this.#nextSeq = state.nextSeq;
    this.#bytes = state.segments.reduce((sum, s) => sum + s.bytes, 0);
  }

  /**
   * Opens the log: lists the segments and checks the last one (the only one a crash can have left torn),
   * verifying every record's checksum in bounded chunks; older segments are checked when
   * {@linkcode Wal.records} reads them. Never throws for corrupt or torn content: it warns, truncates a
   * torn or corrupt tail of the last segment, skips the rest of an earlier segment after a bad record
   * (when read), and carries on. It does throw for I/O errors (permissions, a missing disk).
   */
  static async open(options: WalOptions): Promise<Wal> {
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    const sync = options.sync ?? true;
    const warn = options.onWarning ?? ((message: string) => console.warn(message));
    const rollReleasedBytes = options.rollReleasedBytes ?? Math.max(4096, Math.floor(segmentBytes / 8));
    if (!(options.maxBytes > 0)) throw new RangeError(`maxBytes must be positive, got ${options.maxBytes}`);
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes <= 0) {
      throw new RangeError(`segmentBytes must be a positive integer, got ${segmentBytes}`);
    }
    if (!(rollReleasedBytes >= 0)) {
      throw new RangeError(`rollReleasedBytes must not be negative, got ${rollReleasedBytes}`);
    }
    const dir = resolve(options.dir);
    const created = await mkdir(dir, { recursive: true });
    if (created !== undefined && sync) {
      // Each new directory's entry lives in its parent.
      for (let d = dir;; d = dirname(d)) {
        await syncDir(dirname(d));
        if (d === resolve(created) || dirname(d) === d) break;
      }
    }

    const names: string[] = [];
    for (const name of (await readdir(dir)).sort()) {
      const match = SEGMENT_NAME.exec(name);
      if (match === null) continue;
      if (!Number.isSafeInteger(Number(match[1]))) {
        warn(`wal: ignoring ${name}: its seq is beyond 2^53`);
        continue;
      }
      names.push(name);
    }

    const segments: Segment[] = [];
    let fh: FileHandle | undefined;
    try {
      for (let i = 0; i < names.length - 1; i++) {
        const name = names[i];
        const firstSeq = Number(SEGMENT_NAME.exec(name)![1]);
        const nextFirst = Number(SEGMENT_NAME.exec(names[i + 1])![1]);
        const { size } = await stat(join(dir, name));
        segments.push({ name, firstSeq, lastSeq: Math.max(0, nextFirst - 1), bytes: size, old: true });
      }
      if (names.length > 0) {
        const name = names[names.length - 1];
        const firstSeq = Number(SEGMENT_NAME.exec(name)![1]);
        const file = fh = await open(join(dir, name), "r+");
        // Read by the stat size rather than to EOF: only what is on disk now counts.
        const size = (await file.stat()).size;
        const scan = await drain(
          scanSegment(new ChunkReader(file, size, READ_CHUNK_BYTES), firstSeq, () => false, false),
        );
        if (scan.problem !== undefined) {
          warn(
            `wal: ${name}: ${scan.problem} at offset ${scan.end}; ` +
              `truncating the segment to its last valid record (dropping ${size - scan.end} bytes)`,
          );
        }
        if (scan.end < size) {
          await file.truncate(scan.end);
          if (sync) await file.datasync();
        }
        segments.push({
          name,
          firstSeq,
          lastSeq: scan.lastSeq,
          bytes: scan.end,
          checked: scan.end,
          old: true,
        });
      }
      const last = segments.at(-1);
      const nextSeq = last === undefined ? 1 : Math.max(last.lastSeq + 1, last.firstSeq);
      if (fh === undefined) {
        const name = segmentName(nextSeq);
        fh = await open(join(dir, name), "wx");
        if (sync) await syncDir(dir);
        segments.push({ name, firstSeq: nextSeq, lastSeq: 0, bytes: 0, checked: 0, old: false });
      }
      return new Wal({
        dir,
        maxBytes: options.maxBytes,
        segmentBytes,
        sync,
        rollReleasedBytes,
        onWarning: warn,
      }, {
        fh,
        segments,
        nextSeq,
      });
    } catch (error) {
      await fh?.close().catch(() => {});
      throw error;
    }
  }

  /**
   * Reads back the records of the segments that existed at open, in seq order, one at a time: at most
   * one chunk (1 MiB, or one record if larger) of the log is in memory at once, whatever its size. Each
   * yielded payload is a copy of its own. A segment is checked (checksums, seq order) the first time it
   * is read; after a bad record the rest of that segment is skipped with a warning. Segments deleted
   * meanwhile are skipped. Can be called more than once, e.g. first for the small records, then for the
   * ones still needed; records appended since open are not included.
   */
  async *records(options: WalReadOptions = {}): AsyncGenerator<WalRecord> {
    const want = options.want ?? (() => true);
    let lastSeq = 0;
    for (const segment of this.#segments.slice()) {
      if (!segment.old) break;
      let file: FileHandle;
      try {
        file = await open(join(this.#dir, segment.name), "r");
      } catch (error) {
        if (errorCode(error) === "ENOENT") continue;
        throw error;
      }
      try {
        const checked = segment.checked;
        const end = checked ?? (await file.stat()).size;
        const reader = new ChunkReader(
          file,
          end,
          checked === undefined ? READ_CHUNK_BYTES : SKIM_CHUNK_BYTES,
        );
        const scan = scanSegment(
          reader,
          Math.max(segment.firstSeq, lastSeq + 1),
          want,
          checked !== undefined,
        );
        let result: ScanResult;
        for (;;) {
          const next = await scan.next();
          if (next.done) {
            result = next.value;
            break;
          }
          yield next.value;
        }
        this.#readBytes += reader.read;
        if (result.problem !== undefined) {
          this.#warn(
            `wal: ${segment.name}: ${result.problem} at offset ${result.end}; ` +
              `skipping the rest of this segment (${end - result.end} bytes)`,
          );
        }
        if (checked === undefined || result.problem !== undefined) {
          segment.checked = result.end;
          if (result.lastSeq > 0) segment.lastSeq = Math.min(segment.lastSeq || Infinity, result.lastSeq);
        }
        if (result.lastSeq > 0) lastSeq = result.lastSeq;
      } finally {
        await file.close();
      }
    }
  }

  /**
   * Appends one record; resolves with its seq once it is written (and synced, unless `sync: false`).
   * Appends made while a group is being written share the next group's single write and fdatasync.
   * The payload (one buffer, or parts written back to back as one payload) is written from the caller's
   * buffers, not copied: they must not change until the promise settles.
   *
   * Rejects with {@linkcode WalFullError} at once when the record would take the log past `maxBytes`
   * (nothing is written), or when the disk is full during its group; with the I/O error for any other
   * write failure (the group's bytes are truncated away, so later appends are unaffected); with a
   * RangeError for a kind outside u32; with an Error after {@linkcode Wal.close}.
   *
   * `partCrcs` may give the CRC-32C of some parts, computed elsewhere (a worker thread that had the same
   * bytes): those parts are not read again here, their CRC is joined in (`crc32cCombine`). A wrong value
   * makes the record fail its checksum at replay, so pass only CRCs of exactly these bytes.
   */
  // deno-lint-ignore require-await -- async so argument checks surface as rejections, not throws
  async append(
    kind: number,
    payload: Uint8Array | readonly Uint8Array[],
    partCrcs?: readonly (number | undefined)[],
  ): Promise<number> {
    const parts = payload instanceof Uint8Array ? [payload] : [...payload];
    const length = parts.reduce((n, p) => n + p.length, 0);
    if (this.#closing) throw new Error("wal: append after close");
    if (!Number.isInteger(kind) || kind < 0 || kind > 0xffffffff) {
      throw new RangeError(`wal: kind must be a u32, got ${kind}`);
    }
    if (length > MAX_PAYLOAD_BYTES) {
      throw new WalFullError(`wal: payload of ${length} bytes exceeds the record limit`);
    }
    const size = HEADER_BYTES + length;
    if (this.#bytes + this.#reserved + size > this.#maxBytes) {
      throw new WalFullError(
        `wal: full: ${this.#bytes} bytes on disk + ${this.#reserved} pending + ${size} > maxBytes ${this.#maxBytes}`,
      );
    }
    const seq = this.#nextSeq++;
    const frame = recordHeader(seq, kind, parts, length, partCrcs);
    this.#reserved += size;
    return new Promise<number>((resolve, reject) => {
      this.#queue.push({ seq, frame, parts, size, resolve, reject });
      if (!this.#pumping) {
        this.#pumping = true;
        // A microtask later, so appends made in the same tick join the first group.
        queueMicrotask(() => void this.#pump());
      }
    });
  }

  /**
   * Deletes the segments all of whose records have a seq below `seq`, oldest first. The active segment
   * too when `roll` is set, no append is waiting or being written, it has reached `rollReleasedBytes`
   * and all its records are below `seq`: a new segment is started first (so a restart reads nothing
   * back). `roll` says that no record below `seq` is still to be accounted for by the caller (say an
   * append that resolved but whose request is not yet batched): set it only then. Calls are serialized.
   */
  releaseBefore(seq: number, options: { roll?: boolean } = {}): Promise<void> {
    const run = this.#releasing.then(() => this.#release(seq, options.roll ?? false));
    this.#releasing = run.catch(() => {});
    return run;
  }

  /**
   * The segments, oldest first (the last is the active one): the highest seq each holds (0 for none) and
   * its size. The ingest reads it to find which requests pin the oldest bytes of a full log.
   */
  segmentList(): { lastSeq: number; bytes: number }[] {
    return this.#segments.map((s) => ({ lastSeq: s.lastSeq, bytes: s.bytes }));
  }

  /**
   * Starts a new segment now, if the active one holds anything, so that the records written so far can be
   * released ({@linkcode Wal.releaseBefore} never deletes the active segment). Waits for the group being
   * written; appends made meanwhile wait for the new segment. Calls are serialized with the writes.
   */
  async rotate(): Promise<void> {
    while (this.#pumping) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    if (this.#closing || this.#segments.at(-1)!.bytes === 0) return;
    // Holding the pump keeps groups out of the old segment while the file handle changes.
    this.#pumping = true;
    try {
      await this.#roll(this.#nextSeq);
    } finally {
      this.#pumping = false;
      if (this.#queue.length > 0) {
        this.#pumping = true;
        queueMicrotask(() => void this.#pump());
      } else {
        for (const wake of this.#idleWaiters.splice(0)) wake();
      }
    }
  }

  /** Current size on disk and counters since open. */
  stats(): WalStats {
    return {
      bytes: this.#bytes,
      segments: this.#segments.length,
      appends: this.#appends,
      groups: this.#groups,
      syncs: this.#syncs,
      nextSeq: this.#nextSeq,
      firstSeq: this.#segments[0]?.firstSeq ?? this.#nextSeq,
      releaseRolls: this.#releaseRolls,
      readBytes: this.#readBytes,
    };
  }

  /** Waits for appends already made to settle, then closes the active segment. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      if (this.#pumping) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      await this.#releasing;
      await this.#fh.close();
    })();
    return this.#closed;
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length > 0) await this.#commit();
    } finally {
      this.#pumping = false;
      for (const wake of this.#idleWaiters.splice(0)) wake();
    }
  }

  /** Writes the next group from the queue. Never throws: failures reject the group's appends. */
  async #commit(): Promise<void> {
    const active = this.#segments.at(-1)!;
    const first = this.#queue[0].size;
    const roll = this.#mustRoll || (active.bytes > 0 && active.bytes + first > this.#segmentBytes);
    const room = roll ? this.#segmentBytes : this.#segmentBytes - active.bytes;
    let n = 0;
    let bytes = 0;
    while (n < this.#queue.length && n < MAX_GROUP_RECORDS) {
      const len = this.#queue[n].size;
      if (n > 0 && (bytes + len > MAX_GROUP_BYTES || bytes + len > room)) break;
      bytes += len;
      n++;
    }
    const group = this.#queue.splice(0, n);
    let start = -1;
    try {
      if (roll) await this.#roll(group[0].seq);
      const segment = this.#segments.at(-1)!;
      start = segment.bytes;
      await writeAll(this.#fh, group.flatMap((p) => [p.frame, ...p.parts]), start);
      if (this.#sync) {
        await this.#fh.datasync();
        this.#syncs++;
      }
      segment.bytes += bytes;
      segment.lastSeq = group[group.length - 1].seq;
      this.#bytes += bytes;
      this.#reserved -= bytes;
      this.#groups++;
      this.#appends += group.length;
      for (const p of group) p.resolve(p.seq);
    } catch (cause) {
      this.#reserved -= bytes;
      if (start >= 0) await this.#rewind(start);
      const error = isDiskFull(cause) ? new WalFullError("wal: disk full", { cause }) : cause;
      for (const p of group) p.reject(error);
    }
  }

  /** Cuts a failed group's bytes off the active segment so the log ends at a valid record again. */
  async #rewind(start: number): Promise<void> {
    const segment = this.#segments.at(-1)!;
    try {
      await this.#fh.truncate(start);
      if (this.#sync) await this.#fh.datasync();
    } catch {
      // Unknown tail: leave it to open's scan (it is then in a non-last segment and gets skipped).
      this.#mustRoll = true;
      const size = await this.#fh.stat().then((s) => s.size, () => segment.bytes);
      this.#bytes += size - segment.bytes;
      segment.bytes = size;
    }
  }

  async #roll(firstSeq: number): Promise<void> {
    const name = segmentName(firstSeq);
    const path = join(this.#dir, name);
    const fh = await open(path, "wx");
    try {
      if (this.#sync) await syncDir(this.#dir);
    } catch (error) {
      await fh.close().catch(() => {});
      await unlink(path).catch(() => {});
      throw error;
    }
    const old = this.#fh;
    this.#fh = fh;
    this.#segments.push({ name, firstSeq, lastSeq: 0, bytes: 0, checked: 0, old: false });
    this.#mustRoll = false;
    // Already synced (or sync is off); a failing close loses nothing.
    await old.close().catch(() => {});
  }

  async #release(seq: number, roll: boolean): Promise<void> {
    const active = this.#segments.at(-1)!;
    if (
      roll && !this.#closing && !this.#pumping && this.#queue.length === 0 && active.bytes > 0 &&
      active.bytes >= this.#rollReleasedBytes && active.lastSeq < seq && this.#nextSeq <= seq
    ) {
      // Appends made meanwhile wait in the queue (they see #pumping) and go to the new segment.
      this.#pumping = true;
      try {
        await this.#roll(this.#nextSeq);
        this.#releaseRolls++;
      } finally {
        this.#pumping = false;
        if (this.#queue.length) this.#pumping = true, queueMicrotask(() => void this.#pump());
        else for (const wake of this.#idleWaiters.splice(0)) wake();
      }
    }
    let removed = false;
    while (this.#segments.length > 1 && this.#segments[0].lastSeq < seq) {
      const segment = this.#segments[0];
      try {
        await unlink(join(this.#dir, segment.name));
      } catch (error) {
        if (errorCode(error) !== "ENOENT") throw error;
      }
      this.#segments.shift();
      this.#bytes -= segment.bytes;
      removed = true;
    }
    // Not needed for safety (a resurrected segment only replays twice), but keeps the disk bound honest.
    if (removed && this.#sync) await syncDir(this.#dir);
  }
}

function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, "0")}.wal`;
}

/** The header of a record (the payload follows it as is: written from the caller's buffers, not copied). */
function recordHeader(
  seq: number,
  kind: number,
  parts: readonly Uint8Array[],
  length: number,
  partCrcs?: readonly (number | undefined)[],
): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(MAGIC, 0);
  view.setUint32(4, length, true);
  view.setUint32(8, kind, true);
  view.setUint32(12, seq % 0x1_0000_0000, true);
  view.setUint32(16, Math.floor(seq / 0x1_0000_0000), true);
  let crc = crc32c(header.subarray(0, 20));
  for (let i = 0; i < parts.length; i++) {
    const known = partCrcs?.[i];
    crc = known === undefined ? crc32c(parts[i], crc) : crc32cCombine(crc, known, parts[i].length);
  }
  view.setUint32(20, crc, true);
  return header;
}

/**
 * Scans one segment, yielding the valid records `want` asks for (with a copy of their payload), and
 * returns where it stopped: at the end, or at the first record that is cut short, fails its checksum or
 * breaks seq order (nothing after a bad record can be trusted to be framed right). With `trusted` (the
 * segment was checked before, up to the reader's end), the payloads of unwanted records are neither
 * read nor checked: they are skipped by their length.
 */
async function* scanSegment(
  reader: ChunkReader,
  minSeq: number,
  want: (kind: number, seq: number) => boolean,
  trusted: boolean,
): AsyncGenerator<WalRecord, ScanResult> {
  let offset = 0;
  let lastSeq = 0;
  const stop = (problem: string): ScanResult => ({ end: offset, lastSeq, problem });
  while (offset < reader.size) {
    const rest = reader.size - offset;
    const header = await reader.bytes(offset, Math.min(rest, HEADER_BYTES));
    if (header[0] === 0) {
      // Not a record (the magic starts with "O"): a preallocated or zero-filled tail, or garbage.
      if (await reader.isZeroFrom(offset)) return stop(`zero-filled tail of ${rest} bytes`);
      return stop("bad record magic (garbage or a corrupt record)");
    }
    if (rest < HEADER_BYTES) return stop(`record header cut short (${rest} of ${HEADER_BYTES} bytes)`);
    for (let i = 0; i < 4; i++) {
      if (header[i] !== MAGIC[i]) return stop("bad record magic (garbage or a corrupt record)");
    }
    const view = new DataView(header.buffer, header.byteOffset, HEADER_BYTES);
    const length = view.getUint32(4, true);
    if (length > rest - HEADER_BYTES) {
      return stop(`record cut short (${rest - HEADER_BYTES} of ${length} payload bytes)`);
    }
    const kind = view.getUint32(8, true);
    const stored = view.getUint32(20, true);
    const hi = view.getUint32(16, true);
    const seq = hi * 0x1_0000_0000 + view.getUint32(12, true);
    if (!trusted) {
      // Before the payload is read: the read may reuse the buffer `header` views.
      const headerCrc = crc32c(header.subarray(0, 20));
      const payload = await reader.bytes(offset + HEADER_BYTES, length);
      if (stored !== crc32c(payload, headerCrc)) return stop("record checksum mismatch");
      if (hi > 0x1fffff || seq < minSeq || seq <= lastSeq) return stop(`record seq ${seq} out of order`);
      if (want(kind, seq)) yield { seq, kind, payload: payload.slice() };
    } else {
      // Checked before (checksums and order) up to the reader's end: only what is wanted is read.
      if (hi > 0x1fffff || seq < minSeq || seq <= lastSeq) return stop(`record seq ${seq} out of order`);
      if (want(kind, seq)) {
        yield { seq, kind, payload: (await reader.bytes(offset + HEADER_BYTES, length)).slice() };
      }
    }
    lastSeq = seq;
    offset += HEADER_BYTES + length;
  }
  return { end: offset, lastSeq };
}

/** Runs a scan to its end, for its result. */
async function drain(scan: AsyncGenerator<WalRecord, ScanResult>): Promise<ScanResult> {
  for (;;) {
    const next = await scan.next();
    if (next.done) return next.value;
  }
}

/**
 * Positional reads of a segment's first `size` bytes, `chunk` bytes at a time (or one record, if larger),
 * through one buffer: a view it returns is valid until the next call.
 */
class ChunkReader {
  #buffer = new Uint8Array(0);
  /** File offset of `#buffer[0]`. */
  #start = 0;
  /** Bytes read from the file so far. */
  read = 0;
  constructor(readonly fh: FileHandle, readonly size: number, readonly chunk: number) {}

  /** `n` bytes at `offset` (fewer only if the file is shorter than `size` says). */
  async bytes(offset: number, n: number): Promise<Uint8Array> {
    if (offset >= this.#start && offset + n <= this.#start + this.#buffer.length) {
      return this.#buffer.subarray(offset - this.#start, offset - this.#start + n);
    }
    const want = Math.min(this.size - offset, Math.max(n, this.chunk));
    // A fresh buffer only when the old one is too small: views handed out are used before the next call.
    if (this.#buffer.buffer.byteLength < want) {
      this.#buffer = new Uint8Array(Math.max(want, this.chunk));
    }
    const target = new Uint8Array(this.#buffer.buffer, 0, want);
    let filled = 0;
    while (filled < want) {
      const { bytesRead } = await this.fh.read(target, filled, want - filled, offset + filled);
      if (bytesRead === 0) break; // shrank since stat: scan what is there
      filled += bytesRead;
    }
    this.read += filled;
    this.#buffer = target.subarray(0, filled);
    this.#start = offset;
    return this.#buffer.subarray(0, Math.min(n, filled));
  }

  /** Whether every byte from `offset` to the end is zero (a preallocated or zero-filled tail). */
  async isZeroFrom(offset: number): Promise<boolean> {
    for (let at = offset; at < this.size; at += this.chunk) {
      const chunk = await this.bytes(at, Math.min(this.chunk, this.size - at));
      if (chunk.length === 0) return true;
      if (!isZero(chunk, 0)) return false;
    }
    return true;
  }
}

function isZero(data: Uint8Array, from: number): boolean {
  for (let i = from; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

/**
 * Writes all of `buffers` at `position`, one `write` per buffer, resuming after short writes (Bun reports
 * them; Deno retries). Not `writev`: Deno's `FileHandle.writev` copies every buffer twice (`Buffer.from`
 * then `Buffer.concat`) before its one syscall, which was 7 % of the server's CPU under protobuf load; a
 * write per buffer costs a syscall each (a group holds two per request) and copies nothing. Crash safety
 * is the same: nothing is acknowledged before the group's fdatasync, and replay checks every record's CRC.
 */
async function writeAll(fh: FileHandle, buffers: Uint8Array[], position: number): Promise<void> {
  for (const buffer of buffers) {
    let done = 0;
    while (done < buffer.length) {
      const { bytesWritten } = await fh.write(buffer, done, buffer.length - done, position);
      if (bytesWritten <= 0) throw new Error(`wal: write made no progress at offset ${position}`);
      done += bytesWritten;
      position += bytesWritten;
    }
  }
}

async function syncDir(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } catch (error) {
    // Some filesystems cannot fsync a directory; there is nothing better to do there.
    if (errorCode(error) !== "EINVAL" && errorCode(error) !== "ENOTSUP") throw error;
  } finally {
    await fh.close();
  }
}

/** Deno's node:fs leaves `code` unset for some errnos; fall back to the "(os error N)" in the message. */
function errorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") return code;
  const errno = /\(os error (\d+)\)/.exec(String((error as { message?: unknown }).message))?.[1];
  return errno === undefined ? undefined : LINUX_ERRNO_NAMES[Number(errno)];
}

const LINUX_ERRNO_NAMES: Record<number, string> = {
  2: "ENOENT",
  22: "EINVAL",
  27: "EFBIG",
  28: "ENOSPC",
  95: "ENOTSUP",
  122: "EDQUOT",
};

function isDiskFull(error: unknown): boolean {
  const code = errorCode(error);
  return code === "ENOSPC" || code === "EDQUOT";
}
