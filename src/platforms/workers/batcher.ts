/**
 * `OtlpBatcher`: the Durable Object that turns many small requests into few, large Parquet objects on
 * Cloudflare. Bound as `BATCHER` (SQLite storage), it receives each accepted request from the worker
 * (see `batcher_sink.ts`), stores its body and its partitions in its SQLite database, and answers once
 * that write is confirmed: its storage plays the part of the server's write-ahead log. Rows are batched
 * per (table, service, event hour) and written to R2 by an alarm when a batch reaches
 * `OTLP2PARQUET_BATCH_MAX_ROWS`, `OTLP2PARQUET_BATCH_MAX_BYTES` (decoded bytes, as on the server) or
 * `OTLP2PARQUET_BATCH_MAX_AGE_SECS`.
 *
 * Exactly once across evictions and restarts, like the server's intent and commit records: a flush is
 * first *cut* (a `flushes` row, and the covered partitions of the stored requests point at it, in one
 * transaction), then encoded; its object key (ending in a hash of the Parquet bytes) is recorded and
 * synced before the PUT (the hash also covers a random salt, so two flushes of identical rows get two
 * keys); after the PUT one transaction deletes the covered partitions, the flush, and the
 * request bodies nothing else needs. An object restarted at any point redoes the pending flush with
 * exactly the recorded members, under the recorded key: an overwrite, never a second object.
 *
 * Failures: a retryable R2 failure (outage, throttling) is retried with backoff for as long as it lasts
 * and stops new cuts meanwhile (the requests stay stored; beyond `OTLP2PARQUET_WAL_MAX_BYTES` of stored
 * bodies the worker answers 503). Anything else (a body that no longer decodes, an encoder failure, a
 * permanent refusal, or an attempt that never finished because the object died in it) counts as an
 * attempt; after {@linkcode MAX_ATTEMPTS} the covered request bodies are written as they are under
 * `dead-letter/` and the flush is closed.
 *
 * @module
 */

// @ts-ignore: a wasm import is a compiled WebAssembly.Module under wrangler/workerd; Deno never runs this file.
import parquetWasm from "parquet-wasm/esm/parquet_wasm_bg.wasm";
import type { Config } from "../../config/mod.ts";
import {
  type Decoded,
  decodeRequest,
  encodeBatch,
  type FileOptions,
  type Format,
} from "../../core/convert.ts";
import { partitionPath, serviceSegment } from "../../core/table/keys.ts";
import { initParquet } from "../../core/parquet/parquet.ts";
import type { RowSelection } from "../../core/table/rows.ts";
import { type Signal, tableDef, type TableName } from "../../core/table/schema.ts";
import type { Logger } from "../../ingest/ingest.ts";
import { limitRequest, limitsOf, type RequestLimits } from "../../ingest/request_limits.ts";
import { isRetryableStorageError } from "../../storage/object_store.ts";
import { type R2BucketLike, R2Store } from "../../storage/r2_store.ts";
import { resolvePlatformConfig } from "../direct.ts";
import { createLogger } from "../server/log.ts";
import { decodeBatcherMessage } from "./batcher_sink.ts";
import { WORKERS_DEFAULTS } from "./worker.ts";

/** A value SQLite hands back or takes. */
type SqlValue = string | number | null | ArrayBuffer | Uint8Array;

/** The part of `ctx.storage.sql` used here. */
interface SqlStorageLike {
  exec<T = Record<string, SqlValue>>(query: string, ...bindings: SqlValue[]): { toArray(): T[]; one(): T };
}

/** The part of a SQLite-backed `DurableObjectState` used here (declared: no Cloudflare types needed). */
export interface DurableObjectStateLike {
  readonly id: { toString(): string };
  readonly storage: {
    readonly sql: SqlStorageLike;
    transactionSync<T>(fn: () => T): T;
    /** Resolves once every write so far is durable. */
    sync(): Promise<void>;
    getAlarm(): Promise<number | null>;
    setAlarm(scheduledTime: number): Promise<void>;
    deleteAlarm(): Promise<void>;
  };
  blockConcurrencyWhile<T>(fn: () => Promise<T>): Promise<T>;
}

/** Request bodies are stored in chunks of this size: a SQLite value or row may not exceed 2 MB here. */
export const CHUNK_BYTES = 1024 * 1024;
/** Attempts of a flush that crashed or failed for other reasons than a retryable store error. */
export const MAX_ATTEMPTS = 5;
/** Backoff of a failing flush: first delay and cap. */
const RETRY_INITIAL_MS = 1000, RETRY_MAX_MS = 5 * 60_000;
/**
 * Request bytes one batch decodes at most (at least one request): every member's whole body is decoded
 * while the batch is encoded, and an object has 128 MB of memory.
 */
export const BATCH_BODY_BUDGET = 16 * 1024 * 1024;
/**
 * Request bytes one alarm run decodes at most: bounds its CPU time (decoding and encoding run at tens of
 * MB a second); when there is more to write, the next run starts at once.
 */
export const ALARM_BODY_BUDGET = 32 * 1024 * 1024;
/**
 * Defaults under the `OTLP2PARQUET_*` variables of the batcher: a batch of 128 MiB (the server's default)
 * would not fit in an object's memory.
 */
export const BATCHER_DEFAULTS: Readonly<Record<string, string>> = { OTLP2PARQUET_BATCH_MAX_BYTES: "16MiB" };
/** An alarm may fire this early (the runtime keeps whole milliseconds): what is due by then runs. */
const ALARM_SLACK_MS = 5;
/** Set first in every alarm run, so a run that dies (CPU or memory limit) is followed by another. */
const FALLBACK_ALARM_MS = 30_000;
/** Where flushes that exhausted their attempts put the request bodies, inside the bucket's prefix. */
export const DEAD_LETTER_PREFIX = "dead-letter/";

const EXTENSIONS: Record<Format, string> = { protobuf: "pb", json: "json", jsonl: "jsonl" };

const SCHEMA = [
  // `arrived`: when the worker received the request, for the request limits' event-time window.
  `CREATE TABLE IF NOT EXISTS requests(
    id INTEGER PRIMARY KEY, signal TEXT NOT NULL, format TEXT NOT NULL, bytes INTEGER NOT NULL,
    arrived INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS chunks(
    request INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(request, n))`,
  // One row per (request, table, service, hour): `flush` is NULL while the rows are in an open batch.
  `CREATE TABLE IF NOT EXISTS parts(
    request INTEGER NOT NULL, tbl TEXT NOT NULL, service TEXT NOT NULL, hour INTEGER NOT NULL,
    rows INTEGER NOT NULL, bytes INTEGER NOT NULL, arrived INTEGER NOT NULL, flush INTEGER,
    PRIMARY KEY(request, tbl, service, hour))`,
  `CREATE INDEX IF NOT EXISTS parts_by_batch ON parts(flush, tbl, service, hour)`,
  // The intent records: a cut batch, its object key once encoded, and its retry state.
  `CREATE TABLE IF NOT EXISTS flushes(
    id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, service TEXT NOT NULL, hour INTEGER NOT NULL, key TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
    store_down INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0, error TEXT)`,
];

interface Setup {
  config: Config;
  log: Logger;
  store: R2Store;
  files: FileOptions;
  instanceId: string;
  limits: RequestLimits;
}

interface Group {
  tbl: string;
  service: string;
  hour: number;
  rows: number;
  bytes: number;
  arrived: number;
}

interface FlushRow {
  id: number;
  tbl: string;
  service: string;
  hour: number;
  key: string | null;
  attempts: number;
  failures: number;
}

/** Counters of one object since it was (re)started, for logs and tests (`GET /stats`). */
export interface BatcherStats {
  accepted: number;
  objects: number;
  rows: number;
  redone: number;
  retries: number;
  deadLettered: number;
  storedBytes: number;
}

/** The batching Durable Object (export it from the worker module and bind it as `BATCHER`). */
export class OtlpBatcher {
  readonly #ctx: DurableObjectStateLike;
  readonly #env: Record<string, unknown>;
  #setup?: Promise<Setup>;
  /** Bytes of request bodies stored: the bound `OTLP2PARQUET_WAL_MAX_BYTES` applies to them. */
  #stored = 0;
  readonly #stats = { accepted: 0, objects: 0, rows: 0, redone: 0, retries: 0, deadLettered: 0 };

  constructor(ctx: DurableObjectStateLike, env: Record<string, unknown>) {
    this.#ctx = ctx;
    this.#env = env;
    void ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql;
      for (const statement of SCHEMA) sql.exec(statement);
      this.#stored = Number(
        sql.exec<{ n: number | null }>("SELECT sum(bytes) AS n FROM requests").one().n ?? 0,
      );
      // Whatever an earlier life left stored is written by the alarm, even if no request comes again; an
      // earlier life may have died in an alarm run, leaving only its fallback: run now instead.
      if (this.#stored > 0) await ctx.storage.setAlarm(Date.now());
    });
  }

  /** `POST /accept`: stores one request (see `batcher_sink.ts`); `GET /stats`: the counters. */
  async fetch(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (request.method === "GET" && path === "/stats") return Response.json(this.stats());
    if (request.method !== "POST" || path !== "/accept") return new Response("not found\n", { status: 404 });
    let setup: Setup;
    try {
      setup = await this.#configure();
    } catch (error) {
      // The details may quote configuration values (secrets among them): the log has them, not the answer.
      console.error(`otlp2parquet batcher is misconfigured: ${(error as Error).message}`);
      return refusal(503, "otlp2parquet is misconfigured: see its log", 30);
    }
    let meta, body;
    try {
      ({ meta, body } = decodeBatcherMessage(new Uint8Array(await request.arrayBuffer())));
    } catch (error) {
      return refusal(400, `not a batcher message: ${(error as Error).message}`, 0);
    }
    // A request without partitions would be stored with nothing to ever release it.
    if (!meta.parts.length) return refusal(400, "not a batcher message: no partitions", 0);
    const limit = setup.config.durability.walMaxBytes;
    if (this.#stored > 0 && this.#stored + body.length > limit) {
      return refusal(503, `batcher storage full (${this.#stored} bytes waiting for R2); retry later`, 10);
    }
    const now = Date.now();
    const { storage } = this.#ctx;
    const sql = storage.sql;
    // One transaction: the request is stored whole or not at all. The answer leaves this object only once
    // the write is confirmed (the runtime's output gate), so the worker's 200 follows a durable write.
    storage.transactionSync(() => {
      const id = sql.exec<{ id: number }>(
        "INSERT INTO requests(signal, format, bytes, arrived) VALUES (?, ?, ?, ?) RETURNING id",
        meta.signal,
        meta.format,
        body.length,
        meta.arrived,
      ).one().id;
      for (let n = 0, at = 0; at < body.length; n++, at += CHUNK_BYTES) {
        sql.exec(
          "INSERT INTO chunks(request, n, data) VALUES (?, ?, ?)",
          id,
          n,
          body.slice(at, at + CHUNK_BYTES),
        );
      }
      for (const [tbl, service, hour, rows, bytes] of meta.parts) {
        sql.exec(
          "INSERT INTO parts(request, tbl, service, hour, rows, bytes, arrived) VALUES (?, ?, ?, ?, ?, ?, ?)",
          id,
          tbl,
          service,
          hour,
          rows,
          bytes,
          now,
        );
      }
    });
    this.#stored += body.length;
    this.#stats.accepted++;
    // A batch that is full now is written by an alarm right away, not on this request's time.
    const { maxRows, maxBytes, maxAgeSecs } = setup.config.batch;
    let due = now + maxAgeSecs * 1000;
    for (const [tbl, service, hour] of meta.parts) {
      const g = sql.exec<{ rows: number; bytes: number }>(
        "SELECT sum(rows) AS rows, sum(bytes) AS bytes FROM parts WHERE flush IS NULL AND tbl = ? AND service = ? AND hour = ?",
        tbl,
        service,
        hour,
      ).one();
      if (g.rows >= maxRows || g.bytes >= maxBytes) due = now;
    }
    if (this.#openBytes() > maxBytes) due = now;
    const alarm = await storage.getAlarm();
    if (alarm === null || alarm > due) await storage.setAlarm(due);
    return new Response(null, { status: 204 });
  }

  /** Writes what is due: pending flushes first, then batches that are full or old enough. */
  async alarm(): Promise<void> {
    const { storage } = this.#ctx;
    await storage.setAlarm(Date.now() + FALLBACK_ALARM_MS);
    let setup: Setup;
    try {
      setup = await this.#configure();
    } catch (error) {
      // Logged at every try: the data stays stored until the configuration is fixed.
      console.error(`otlp2parquet batcher is misconfigured: ${(error as Error).message}`);
      return;
    }
    let budget = ALARM_BODY_BUDGET;
    const now = Date.now();
    setup.log.debug("batcher alarm", { stored: this.#stored });
    try {
      const pending = storage.sql.exec<{ id: number }>(
        "SELECT id FROM flushes WHERE next_at <= ? ORDER BY id",
        now + ALARM_SLACK_MS,
      ).toArray();
      for (const { id } of pending) {
        if (budget <= 0) break;
        this.#stats.redone++;
        budget -= await this.#runFlush(setup, id);
      }
      // While R2 fails with something worth retrying, cutting more batches would only add attempts.
      const storeDown = storage.sql.exec<{ n: number }>(
        "SELECT count(*) AS n FROM flushes WHERE store_down = 1",
      ).one().n > 0;
      if (!storeDown) {
        for (const group of this.#dueGroups(setup, now)) {
          if (budget <= 0) break;
          budget -= await this.#runFlush(setup, this.#cut(setup, group));
        }
      }
    } catch (error) {
      setup.log.error("batcher alarm failed; trying again", { error: String(error) });
    }
    await this.#reschedule(setup, budget <= 0);
  }

  /** The counters. */
  stats(): BatcherStats {
    return { ...this.#stats, storedBytes: this.#stored };
  }

  #configure(): Promise<Setup> {
    return this.#setup ??= (async () => {
      const instanceId = `b${this.#ctx.id.toString().replace(/[^0-9a-f]/gi, "").slice(0, 12)}`;
      const { config } = await resolvePlatformConfig({ ...BATCHER_DEFAULTS, ...this.#env }, {
        defaults: WORKERS_DEFAULTS,
        instanceId,
      });
      const bucket = this.#env.BUCKET as R2BucketLike | undefined;
      if (!bucket || typeof bucket.put !== "function") {
        throw new Error('no R2 bucket binding named "BUCKET": add [[r2_buckets]] binding = "BUCKET"');
      }
      initParquet(parquetWasm as WebAssembly.Module);
      return {
        config,
        log: createLogger({ level: config.log.level, format: config.log.format }),
        store: new R2Store(bucket, { prefix: config.storage.s3.prefix }),
        files: {
          instanceId: config.server.instanceId,
          compression: config.parquet.compression,
          rowGroupRows: config.parquet.rowGroupRows,
        },
        instanceId: config.server.instanceId,
        limits: limitsOf(config.batch),
      };
    })().catch((error) => {
      this.#setup = undefined;
      throw error;
    });
  }

  #openBytes(): number {
    return Number(
      this.#ctx.storage.sql.exec<{ n: number | null }>(
        "SELECT sum(bytes) AS n FROM parts WHERE flush IS NULL",
      )
        .one().n ?? 0,
    );
  }

  /** Open batches due now: full by rows or bytes, old enough, or the largest while all together exceed the byte limit. */
  #dueGroups(setup: Setup, now: number): Group[] {
    const { maxRows, maxBytes, maxAgeSecs } = setup.config.batch;
    const groups = this.#ctx.storage.sql.exec<Group>(
      `SELECT tbl, service, hour, sum(rows) AS rows, sum(bytes) AS bytes, min(arrived) AS arrived
       FROM parts WHERE flush IS NULL GROUP BY tbl, service, hour ORDER BY bytes DESC`,
    ).toArray();
    let open = groups.reduce((n, g) => n + g.bytes, 0);
    const due: Group[] = [];
    for (const g of groups) {
      if (
        g.rows >= maxRows || g.bytes >= maxBytes || now - g.arrived >= maxAgeSecs * 1000 || open > maxBytes
      ) {
        due.push(g);
        open -= g.bytes;
      }
    }
    return due;
  }

  /**
   * Cuts a batch: a flush row, and the group's open partitions (in arrival order, up to the row, byte and
   * body-size limits) pointing at it, in one transaction. Returns the flush id.
   */
  #cut(setup: Setup, group: Group): number {
    const { storage } = this.#ctx;
    const { maxRows, maxBytes } = setup.config.batch;
    return storage.transactionSync(() => {
      const id = storage.sql.exec<{ id: number }>(
        "INSERT INTO flushes(tbl, service, hour) VALUES (?, ?, ?) RETURNING id",
        group.tbl,
        group.service,
        group.hour,
      ).one().id;
      const members = storage.sql.exec<{ request: number; rows: number; bytes: number; body: number }>(
        `SELECT p.request AS request, p.rows AS rows, p.bytes AS bytes, r.bytes AS body
         FROM parts p JOIN requests r ON r.id = p.request
         WHERE p.flush IS NULL AND p.tbl = ? AND p.service = ? AND p.hour = ? ORDER BY p.request`,
        group.tbl,
        group.service,
        group.hour,
      ).toArray();
      let rows = 0, bytes = 0, body = 0;
      for (const m of members) {
        // Always at least one member; then stop where the batch is full or its bodies use the alarm's budget.
        if (rows > 0 && (rows >= maxRows || bytes >= maxBytes || body + m.body > BATCH_BODY_BUDGET)) break;
        storage.sql.exec(
          "UPDATE parts SET flush = ? WHERE request = ? AND tbl = ? AND service = ? AND hour = ?",
          id,
          m.request,
          group.tbl,
          group.service,
          group.hour,
        );
        rows += m.rows, bytes += m.bytes, body += m.body;
      }
      return id;
    });
  }

  /** One attempt of a flush. Returns the request bytes it decoded (for the alarm's budget). */
  async #runFlush(setup: Setup, id: number): Promise<number> {
    const { storage } = this.#ctx;
    const sql = storage.sql;
    const flush = sql.exec<FlushRow>("SELECT * FROM flushes WHERE id = ?", id).toArray()[0];
    if (!flush) return 0;
    // Counted before trying, and made durable: an attempt that kills the object still counts.
    sql.exec("UPDATE flushes SET attempts = attempts + 1 WHERE id = ?", id);
    await storage.sync();
    const members = sql.exec<
      { request: number; signal: Signal; format: Format; bytes: number; arrived: number }
    >(
      `SELECT p.request AS request, r.signal AS signal, r.format AS format, r.bytes AS bytes,
       r.arrived AS arrived FROM parts p JOIN requests r ON r.id = p.request WHERE p.flush = ? ORDER BY p.request`,
      id,
    ).toArray();
    const deadLetter = flush.attempts + 1 > MAX_ATTEMPTS;
    let decodedBytes = 0;
    let rows = 0;
    let key = "";
    try {
      if (deadLetter) {
        for (const m of members) {
          const name = `${DEAD_LETTER_PREFIX}${
            partitionPath(tableDef(flush.tbl as TableName), { service: flush.service, hour: flush.hour })
          }/${serviceSegment(setup.instanceId)}-f${id}-r${m.request}.${EXTENSIONS[m.format]}`;
          await setup.store.put(name, this.#body(m.request, m.bytes));
        }
      } else {
        const selections: RowSelection[] = [];
        for (const m of members) {
          decodedBytes += m.bytes;
          const decoded: Decoded = decodeRequest(m.signal, this.#body(m.request, m.bytes), {
            format: m.format,
          });
          // The rows the worker's request limits kept, as of the request's arrival: the same selection.
          const kept = limitRequest(decoded, setup.limits, m.arrived).parts.find(({ rows, part }) =>
            rows.def.name === flush.tbl && rows.parts[part].service === flush.service &&
            rows.parts[part].hour === flush.hour
          );
          if (!kept) throw new Error(`request ${m.request} has no rows of this batch`);
          selections.push({ rows: kept.rows, indices: kept.indices });
        }
        if (selections.length) {
          // A name of its own for this flush: two flushes of byte-identical rows (the same records in two
          // requests) must not share a key that the second PUT overwrites. Random is enough: the key is
          // recorded before the PUT, and a flush redone after a restart uses the recorded one.
          const salt = flush.key === null ? crypto.randomUUID() : "";
          const file = await encodeBatch(selections, { ...setup.files, salt });
          rows = file.rows;
          key = flush.key ?? file.key;
          if (flush.key === null) {
            // The intent's key is durable before the object exists: a restart redoes it under this name.
            sql.exec("UPDATE flushes SET key = ? WHERE id = ?", key, id);
            await storage.sync();
          }
          await setup.store.put(key, file.bytes);
        }
      }
    } catch (error) {
      const retryable = isRetryableStorageError(error);
      const failures = flush.failures + 1;
      const delay = Math.min(RETRY_MAX_MS, RETRY_INITIAL_MS * 2 ** (failures - 1));
      storage.transactionSync(() =>
        sql.exec(
          `UPDATE flushes SET attempts = attempts - ?, failures = ?, store_down = ?, next_at = ?, error = ?
           WHERE id = ?`,
          retryable ? 1 : 0,
          failures,
          retryable ? 1 : 0,
          Math.ceil(Date.now() + delay / 2 + Math.random() * delay / 2),
          String(error),
          id,
        )
      );
      this.#stats.retries++;
      setup.log.warn("batch write failed; retrying", {
        table: flush.tbl,
        service: flush.service,
        attempt: flush.attempts + 1,
        retryable,
        error: error instanceof Error ? error.message : String(error),
      });
      return decodedBytes;
    }
    this.#commit(id, members.map((m) => m.request));
    if (deadLetter) {
      this.#stats.deadLettered++;
      setup.log.error("batch given up after repeated failures: request bodies kept under dead-letter/", {
        table: flush.tbl,
        service: flush.service,
        hour: flush.hour,
        requests: members.length,
      });
    } else if (rows) {
      this.#stats.objects++;
      this.#stats.rows += rows;
      setup.log.debug("wrote object", { key, rows });
    }
    return decodedBytes;
  }

  /** Closes a written flush: its partitions, the flush, and the bodies no other partition needs. */
  #commit(id: number, requests: number[]): void {
    const { storage } = this.#ctx;
    const sql = storage.sql;
    let freed = 0;
    storage.transactionSync(() => {
      sql.exec("DELETE FROM parts WHERE flush = ?", id);
      sql.exec("DELETE FROM flushes WHERE id = ?", id);
      for (const request of new Set(requests)) {
        if (
          sql.exec<{ n: number }>("SELECT count(*) AS n FROM parts WHERE request = ?", request).one().n > 0
        ) {
          continue;
        }
        const row =
          sql.exec<{ bytes: number }>("SELECT bytes FROM requests WHERE id = ?", request).toArray()[0];
        sql.exec("DELETE FROM chunks WHERE request = ?", request);
        sql.exec("DELETE FROM requests WHERE id = ?", request);
        freed += row?.bytes ?? 0;
      }
    });
    this.#stored -= freed;
  }

  /** A stored request body, reassembled from its chunks. */
  #body(request: number, bytes: number): Uint8Array {
    const out = new Uint8Array(bytes);
    let at = 0;
    for (
      const { data } of this.#ctx.storage.sql.exec<{ data: ArrayBuffer }>(
        "SELECT data FROM chunks WHERE request = ? ORDER BY n",
        request,
      ).toArray()
    ) {
      out.set(new Uint8Array(data), at);
      at += data.byteLength;
    }
    if (at !== bytes) throw new Error(`request ${request}: stored body has ${at} of ${bytes} bytes`);
    return out;
  }

  /** Sets the alarm for the next thing due, or clears it when nothing is stored. */
  #reschedule(setup: Setup, more: boolean): Promise<void> {
    const { storage } = this.#ctx;
    const sql = storage.sql;
    // Never the millisecond of the alarm being handled: the runtime clears that one when the run ends.
    const now = Date.now() + 1;
    if (more) return storage.setAlarm(now);
    const pending = sql.exec<{ at: number | null; down: number | null }>(
      "SELECT min(next_at) AS at, max(store_down) AS down FROM flushes",
    ).one();
    let next = Infinity;
    if (pending.at !== null) next = pending.at;
    if (!pending.down) {
      const { maxAgeSecs } = setup.config.batch;
      const oldest =
        sql.exec<{ at: number | null }>("SELECT min(arrived) AS at FROM parts WHERE flush IS NULL")
          .one().at;
      if (oldest !== null) next = Math.min(next, oldest + maxAgeSecs * 1000);
      if (this.#dueGroups(setup, now).length) next = now;
    }
    if (next === Infinity) {
      if (this.#stored > 0) return storage.setAlarm(now + FALLBACK_ALARM_MS);
      return storage.deleteAlarm();
    }
    setup.log.debug("batcher alarm set", { in: Math.max(now, next) - now });
    return storage.setAlarm(Math.max(now, next));
  }
}

function refusal(status: number, message: string, retryAfterSecs: number): Response {
  return Response.json({ message, retryAfterSecs }, {
    status,
    headers: retryAfterSecs ? { "retry-after": String(retryAfterSecs) } : {},
  });
}
