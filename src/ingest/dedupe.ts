/**
 * "A retried request is stored once": the identity of a request, the table of identities seen within the
 * retry window, and the small file that keeps that table across restarts.
 *
 * **Identity.** A request is identified by the 128-bit MurmurHash3 (x86_128, seed 0) of
 * `[signal, format] + decompressed body`. Two requests with the same identity are treated as one: a retry.
 * Two different clients that send byte-identical requests are indistinguishable from a retry (and are
 * stored once). With n identities in the window, the chance that any two different requests share one is
 * about n² / 2^129 (1.5e-27 for a million; with a 64-bit hash it would be 2.7e-8). MurmurHash3 is not a
 * cryptographic hash: someone who can already write to the server could craft a body that matches a
 * request whose bytes they know, and so have that request acknowledged without being stored; knowing its
 * bytes, they could as well have sent it. It costs about 0.3 ns a byte (BENCHMARKS.md), a twentieth of
 * decoding.
 *
 * **Window.** An identity is remembered for `windowMs` from when it was last recorded (accepted, or
 * its rows started to be written), and for as long as its request is still in the write-ahead log. The
 * window is counted on a clock that stands still while the server is down: at start-up the clock resumes
 * from the newest time in the file, so a client that retries after a long outage is still recognised. At
 * most `maxEntries` identities are kept; beyond it the oldest is forgotten first, and a retry of a request
 * older than that is stored again.
 *
 * **File.** `<wal dir>/dedupe-<first time, 15 digits>.log`, an append-only run of 32-byte entries, each
 *
 * | offset | size | field                                                   |
 * | ------ | ---- | ------------------------------------------------------- |
 * | 0      | 16   | identity: MurmurHash3's h1, h2, h3, h4 (u32 LE each)    |
 * | 16     | 8    | time on the window's clock, ms (f64 LE)                 |
 * | 24     | 4    | records the request limits refused in the answer (u32)  |
 * | 28     | 4    | CRC-32C of bytes 0..28                                  |
 *
 * An identity is appended (group-committed, fdatasynced) before the commit record of the first object that
 * holds rows of its request. Until then the request's own record is in the write-ahead log, and the replay
 * recomputes the identity from it. So after a restart every request whose rows may be in objects is known,
 * whichever requests the replay reads. A new file is started when the active one's first entry is older
 * than the window or it holds `maxEntries` entries; a file is deleted once the next one starts before the
 * window or is full. So the files hold at most about three times `maxEntries` × 32 bytes. A torn or corrupt
 * entry ends a file's valid content (the tail of the last file is cut off at open).
 *
 * Only node: modules are used so the same file runs under Deno and Bun.
 *
 * @module
 */

import { type FileHandle, open, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { crc32c } from "../codecs/crc32c.ts";
import { Murmur3x128 } from "../codecs/murmur3.ts";

/** A request's identity: four unsigned 32-bit words. */
export type RequestId = Uint32Array;

/** What the original answer said besides "accepted": records refused by the request limits (and why). */
export interface Answer {
  readonly rejected: number;
  readonly rejectMessage: string;
  readonly overCap?: number;
  readonly outsideWindow?: number;
}

const hash = new Murmur3x128();
const head = new Uint8Array(2);

/** The identity of a request: see the module doc. `signal` and `format` are small indexes. */
export function requestId(signal: number, format: number, body: Uint8Array): RequestId {
  head[0] = signal, head[1] = format;
  hash.reset();
  hash.update(head);
  hash.update(body);
  return hash.digest();
}

/** A map key for an identity (hex). */
export function idKey(id: RequestId): string {
  let s = "";
  for (const w of id) s += w.toString(16).padStart(8, "0");
  return s;
}

const EMPTY = 0;

/**
 * The identities seen within the window, oldest first in a ring (bounded by `maxEntries`, grown by
 * doubling), with an open-addressing index over it: about 45 bytes an identity (45 MiB for a million).
 */
export class SeenTable {
  readonly #max: number;
  readonly #windowMs: number;
  #cap = 0;
  #head = 0;
  /** Slots in use in the ring, live or dead (a dead one was recorded again further on). */
  #used = 0;
  #live = 0;
  #ids = new Uint32Array(0);
  #times = new Float64Array(0);
  #seqs = new Float64Array(0);
  #rejected = new Uint32Array(0);
  #alive = new Uint8Array(0);
  /** The whole answer of the (few) slots whose request had records refused: message and reasons. */
  #answers = new Map<number, Answer>();
  /** Slot + 1, or EMPTY; linear probing on the identity's last word. */
  #index = new Int32Array(0);
  #evicted = 0;

  constructor(maxEntries: number, windowMs: number) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.#max = maxEntries;
    this.#windowMs = windowMs;
    this.#grow(Math.min(maxEntries, 1024));
  }

  /** Identities remembered now. */
  get size(): number {
    return this.#live;
  }

  /** Identities forgotten before their window ended, because the table was full. */
  get evicted(): number {
    return this.#evicted;
  }

  /** The answer recorded for `id`, if it was seen within the window (as of `now`). */
  find(id: RequestId, now: number, pending?: (seq: number) => boolean): Answer | undefined {
    this.expire(now, pending);
    const slot = this.#lookup(id);
    if (slot < 0) return undefined;
    return this.#answers.get(slot) ?? { rejected: this.#rejected[slot], rejectMessage: "" };
  }

  /**
   * Records `id` at `now` (again, if it is known: its window starts over, its answer is kept unless
   * `answer` is given). `seq` is the request's log record, 0 if none: while `pending(seq)` says it is still
   * in the log, {@linkcode expire} keeps it.
   */
  add(id: RequestId, now: number, answer?: Answer, seq = 0): void {
    let pos = this.#position(id);
    const old = this.#index[pos] - 1;
    let rejected = answer?.rejected ?? 0;
    let full = answer?.rejected || answer?.rejectMessage ? answer : undefined;
    if (old >= 0) {
      if (!answer) rejected = this.#rejected[old], full = this.#answers.get(old);
      if (seq === 0) seq = this.#seqs[old];
      this.#kill(old);
    }
    if (this.#used === this.#cap) {
      if (this.#cap < this.#max) this.#grow(Math.min(this.#max, this.#cap * 2));
      else this.#evictHead();
    }
    // A deletion shifts index entries back: find the place again.
    pos = this.#position(id);
    const slot = (this.#head + this.#used) % this.#cap;
    this.#used++, this.#live++;
    this.#ids.set(id, slot * 4);
    this.#times[slot] = now;
    this.#seqs[slot] = seq;
    this.#rejected[slot] = rejected;
    this.#alive[slot] = 1;
    if (full) this.#answers.set(slot, full);
    else this.#answers.delete(slot);
    this.#index[pos] = slot + 1;
  }

  /**
   * Forgets the identities older than the window; one whose request `pending` says is still in the log
   * is recorded again instead (the window covers the log's lifetime).
   */
  expire(now: number, pending?: (seq: number) => boolean): void {
    const cutoff = now - this.#windowMs;
    while (this.#used > 0) {
      const slot = this.#head;
      if (!this.#alive[slot]) {
        this.#pop();
        continue;
      }
      if (this.#times[slot] >= cutoff) break;
      const seq = this.#seqs[slot];
      if (seq > 0 && pending?.(seq)) this.add(this.#ids.slice(slot * 4, slot * 4 + 4), now);
      else this.#kill(slot), this.#pop();
    }
  }

  /** Drops the oldest slot to make room, live or not. */
  #evictHead(): void {
    if (this.#alive[this.#head]) this.#kill(this.#head), this.#evicted++;
    this.#pop();
  }

  #pop(): void {
    this.#answers.delete(this.#head);
    this.#head = (this.#head + 1) % this.#cap;
    this.#used--;
  }

  /** Marks a live slot dead and takes it out of the index (backward-shift deletion). */
  #kill(slot: number): void {
    this.#alive[slot] = 0;
    this.#live--;
    const index = this.#index, mask = index.length - 1;
    let i = this.#position(this.#ids.subarray(slot * 4, slot * 4 + 4));
    if (index[i] !== slot + 1) return;
    for (let j = i;;) {
      j = (j + 1) & mask;
      if (index[j] === EMPTY) break;
      const k = this.#ids[(index[j] - 1) * 4 + 3] & mask;
      // Entry j stays if its home k lies cyclically in (i, j].
      if (i <= j ? i < k && k <= j : i < k || k <= j) continue;
      index[i] = index[j];
      i = j;
    }
    index[i] = EMPTY;
  }

  /** The slot holding `id`, or -1. */
  #lookup(id: RequestId): number {
    const slot = this.#index[this.#position(id)] - 1;
    return slot;
  }

  /** Where `id` is in the index, or the empty position where it would go. */
  #position(id: ArrayLike<number>): number {
    const index = this.#index, ids = this.#ids, mask = index.length - 1;
    for (let i = id[3] & mask;; i = (i + 1) & mask) {
      const v = index[i];
      if (v === EMPTY) return i;
      const o = (v - 1) * 4;
      if (ids[o + 3] === id[3] && ids[o + 2] === id[2] && ids[o + 1] === id[1] && ids[o] === id[0]) return i;
    }
  }

  /** Re-lays the ring out from slot 0 with room for `cap` slots, and rebuilds the index. */
  #grow(cap: number): void {
    const ids = new Uint32Array(cap * 4), times = new Float64Array(cap), seqs = new Float64Array(cap);
    const rejected = new Uint32Array(cap), alive = new Uint8Array(cap);
    const answers = new Map<number, Answer>();
    let n = 0;
    for (let k = 0; k < this.#used; k++) {
      const s = (this.#head + k) % this.#cap;
      if (!this.#alive[s]) continue;
      ids.set(this.#ids.subarray(s * 4, s * 4 + 4), n * 4);
      times[n] = this.#times[s], seqs[n] = this.#seqs[s], rejected[n] = this.#rejected[s], alive[n] = 1;
      const a = this.#answers.get(s);
      if (a) answers.set(n, a);
      n++;
    }
    this.#ids = ids, this.#times = times, this.#seqs = seqs, this.#rejected = rejected, this.#alive = alive;
    this.#answers = answers;
    this.#cap = cap, this.#head = 0, this.#used = n, this.#live = n;
    let size = 1;
    while (size < cap * 2) size *= 2;
    this.#index = new Int32Array(size);
    for (let slot = 0; slot < n; slot++) {
      this.#index[this.#position(ids.subarray(slot * 4, slot * 4 + 4))] = slot + 1;
    }
  }
}

/** One entry of the file. */
export interface SeenEntry {
  id: RequestId;
  time: number;
  rejected: number;
}

const ENTRY_BYTES = 32;
const FILE_NAME = /^dedupe-(\d{15})\.log$/;
const fileName = (time: number) => `dedupe-${String(Math.max(0, Math.floor(time))).padStart(15, "0")}.log`;

interface SeenFile {
  name: string;
  first: number;
  entries: number;
}

/** The file behind {@linkcode SeenTable}: see the module doc. Create with {@linkcode SeenLog.open}. */
export class SeenLog {
  readonly #dir: string;
  readonly #windowMs: number;
  readonly #max: number;
  readonly #sync: boolean;
  readonly #files: SeenFile[];
  #fh: FileHandle | undefined;
  #size = 0;
  #queue: { bytes: Uint8Array; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #busy = false;
  /** The newest time appended: the clock rotation goes by. */
  #now = -Infinity;
  #idle: Promise<void> = Promise.resolve();

  private constructor(dir: string, windowMs: number, max: number, sync: boolean, files: SeenFile[]) {
    this.#dir = dir, this.#windowMs = windowMs, this.#max = max, this.#sync = sync, this.#files = files;
  }

  /**
   * Reads the files in `dir`, oldest first, handing each valid entry to `onEntry` (its `id` is reused:
   * copy it), in pieces of 1 MiB; returns the log and the newest time read (where the window's clock
   * resumes). Cuts a torn tail off the last file.
   */
  static async open(
    options: {
      dir: string;
      windowMs: number;
      maxEntries: number;
      sync?: boolean;
      onWarning?: (m: string) => void;
      onEntry: (id: RequestId, time: number, rejected: number) => void;
    },
  ): Promise<{ log: SeenLog; newest: number | undefined }> {
    const names = (await readdir(options.dir)).filter((n) => FILE_NAME.test(n)).sort();
    const files: SeenFile[] = [];
    let newest: number | undefined;
    const chunk = new Uint8Array(32 * 1024 * ENTRY_BYTES);
    const view = new DataView(chunk.buffer);
    const id = new Uint32Array(4);
    for (let i = 0; i < names.length; i++) {
      const name = names[i], last = i === names.length - 1;
      const fh = await open(join(options.dir, name), last ? "r+" : "r");
      try {
        const size = (await fh.stat()).size;
        let n = 0, bad = false;
        for (let at = 0; !bad && at < size;) {
          const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, size - at), at);
          if (bytesRead === 0) break;
          let o = 0;
          for (; o + ENTRY_BYTES <= bytesRead; o += ENTRY_BYTES, n++) {
            if (view.getUint32(o + 28, true) !== crc32c(chunk.subarray(o, o + 28))) {
              bad = true;
              break;
            }
            for (let w = 0; w < 4; w++) id[w] = view.getUint32(o + 4 * w, true);
            const time = view.getFloat64(o + 16, true);
            options.onEntry(id, time, view.getUint32(o + 24, true));
            if (newest === undefined || time > newest) newest = time;
          }
          // A short read (or a torn entry at the end): go on from the last whole entry.
          if (o === 0) break;
          at += o;
        }
        if (n * ENTRY_BYTES < size) {
          options.onWarning?.(
            `dedupe: ${name}: ${size - n * ENTRY_BYTES} bytes after the last valid entry` +
              (last ? "; cutting them off" : "; ignoring them"),
          );
          if (last) await fh.truncate(n * ENTRY_BYTES);
        }
        files.push({ name, first: Number(FILE_NAME.exec(name)![1]), entries: n });
      } finally {
        await fh.close();
      }
    }
    const log = new SeenLog(options.dir, options.windowMs, options.maxEntries, options.sync ?? true, files);
    return { log, newest };
  }

  /** Appends entries; resolves once they are written and synced (appends meanwhile share one write). */
  append(entries: readonly SeenEntry[]): Promise<void> {
    if (!entries.length) return Promise.resolve();
    const bytes = new Uint8Array(entries.length * ENTRY_BYTES);
    const view = new DataView(bytes.buffer);
    entries.forEach((e, k) => {
      const o = k * ENTRY_BYTES;
      for (let w = 0; w < 4; w++) view.setUint32(o + 4 * w, e.id[w], true);
      view.setFloat64(o + 16, e.time, true);
      view.setUint32(o + 24, Math.min(e.rejected, 0xffffffff), true);
      view.setUint32(o + 28, crc32c(bytes.subarray(o, o + 28)), true);
    });
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ bytes, resolve, reject });
      for (const e of entries) if (e.time > this.#now) this.#now = e.time;
      if (!this.#busy) this.#busy = true, this.#idle = this.#pump();
    });
  }

  async #pump(): Promise<void> {
    // `busy` is cleared in the same turn as the queue is found empty, so no append is left waiting.
    try {
      while (this.#queue.length) await this.#write();
    } finally {
      this.#busy = false;
    }
  }

  /** Writes what is queued as one group. Never throws: a failure rejects the group's appends. */
  async #write(): Promise<void> {
    const group = this.#queue.splice(0);
    try {
      await this.#rotate(this.#now);
      const active = this.#files.at(-1)!;
      const data = group.length === 1 ? group[0].bytes : concat(group.map((g) => g.bytes));
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await this.#fh!.write(data, done, data.length - done, this.#size + done);
        done += bytesWritten;
      }
      if (this.#sync) await this.#fh!.datasync();
      this.#size += data.length;
      active.entries += data.length / ENTRY_BYTES;
      for (const g of group) g.resolve();
    } catch (e) {
      // A partial write leaves a torn entry: start a new file for the next group.
      await this.#fh?.close().catch(() => {});
      this.#fh = undefined;
      for (const g of group) g.reject(e);
    }
  }

  /** Starts a new file when due (see the module doc) and deletes the ones no longer needed. */
  async #rotate(now: number): Promise<void> {
    const cutoff = now - this.#windowMs;
    const active = this.#files.at(-1);
    if (!this.#fh || !active || active.first < cutoff || active.entries >= this.#max) {
      await this.#fh?.close().catch(() => {});
      this.#fh = undefined;
      let name = fileName(now);
      // Never reopen an older file (its tail may be torn): a new name sorts after every existing one.
      if (active && name <= active.name) name = fileName(active.first + 1);
      const fh = await open(join(this.#dir, name), "wx");
      this.#fh = fh, this.#size = 0;
      this.#files.push({ name, first: Number(FILE_NAME.exec(name)![1]), entries: 0 });
    }
    while (this.#files.length > 1) {
      const next = this.#files[1];
      if (!(next.first < cutoff || next.entries >= this.#max || this.#files.length > 3)) break;
      await unlink(join(this.#dir, this.#files[0].name)).catch(() => {});
      this.#files.shift();
    }
  }

  /** Waits for appends in progress, then closes the file. */
  async close(): Promise<void> {
    await this.#idle;
    await this.#fh?.close().catch(() => {});
    this.#fh = undefined;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), o += p.length;
  return out;
}
