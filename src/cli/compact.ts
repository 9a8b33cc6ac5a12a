/**
 * `compact`: merges the small objects of closed partitions into sorted objects of about a target size,
 * written by the server's own writer (`encodeBatch`: same Parquet schema, key-value metadata, row
 * order by event time, and key layout `…/hour=HH/{first time}-compact-{hash of the bytes}.parquet`).
 *
 * Exactly once, even when interrupted at any point, without a lock or journal object:
 * 1. each output's key-value metadata lists its inputs (`otlp2parquet.compacted_from`, a JSON array of
 *    keys as the store lists them) and their row count (`otlp2parquet.compacted_rows`);
 * 2. the output is written, read back and its footer's row count checked, and only then are the inputs
 *    deleted;
 * 3. a later run first looks at the outputs (objects named `…-compact-…`) of every partition that still
 *    holds other objects: an output whose listed inputs still exist is a compaction that stopped after
 *    its write; it is verified again and those inputs are deleted (never merged a second time).
 *
 * Until step 2 deletes the inputs (normally milliseconds to seconds after the write), a reader that
 * lists the partition sees the rows twice; readers that must never see that skip objects whose keys an
 * output lists in `compacted_from`.
 *
 * Safe beside running writers: the current hour is never touched, nor any object modified less than
 * `minAgeMs` ago (batch age plus a margin), so a writer's retried or replayed write of the same object
 * cannot land after its rows were merged. Run one `compact` per table at a time.
 *
 * Memory: one output at a time; its inputs are decoded into column buffers (16 times their Parquet size
 * on bench's synthetic logs, see docs/cli.md) and encoded straight from them; `maxMemoryBytes` closes an
 * output early when they reach it.
 *
 * @module
 */

import { encodeBatch, type FileOptions } from "../core/convert.ts";
import { parquetToRows, readFooter } from "../core/parquet/parquet_read.ts";
import type { Rows } from "../core/table/rows.ts";
import { serviceSegment } from "../core/table/keys.ts";
import type { TableDef } from "../core/table/schema.ts";
import type { ObjectInfo, ObjectStore } from "../storage/object_store.ts";

/** The instance id in the names of compacted objects (server instance ids cannot be told apart from it). */
export const COMPACT_INSTANCE = "compact";
/** Key-value metadata key listing an output's inputs. */
export const COMPACTED_FROM = "otlp2parquet.compacted_from";
/** Key-value metadata key with the inputs' total rows. */
export const COMPACTED_ROWS = "otlp2parquet.compacted_rows";

const HOUR_MS = 3_600_000;
/** Default memory budget of one output's decoded inputs. */
export const DEFAULT_MAX_MEMORY = 512 * 1024 * 1024;

/** Steps a compaction goes through for one output (hooks see each, in order). */
export type CompactStep = "written" | "verified" | "deleted";

/** Options of a compaction run. */
export interface CompactOptions {
  table: TableDef;
  /** Only this service (as sent; its key segment is derived). Default: every service. */
  service?: string;
  /** Only partitions whose hour overlaps [fromMs, toMs). Default: all. */
  fromMs?: number;
  toMs?: number;
  /** Output size aimed at, bytes (inputs are packed until their sizes add up to it). Default 128 MiB. */
  targetBytes?: number;
  /** Objects at least this large are left alone (they are not small). Default targetBytes / 2. */
  smallBytes?: number;
  /** Objects modified less than this long ago are left alone. Required: batch age plus a margin. */
  minAgeMs: number;
  /**
   * An output is closed early when its inputs, decoded, hold this many bytes (`Rows.byteLength`: about
   * what they take in memory). Default 512 MiB.
   */
  maxMemoryBytes?: number;
  /** Plan only: read outputs to find unfinished work, change nothing. */
  dryRun?: boolean;
  /** Parquet settings of the outputs (compression, row group size), as the server's. */
  files?: FileOptions;
  /** Now, ms since the epoch; default Date.now(). */
  nowMs?: number;
  /** Called after each step of each output (tests use it to stop a run at that point). */
  onStep?: (step: CompactStep, detail: { output: string; input?: string }) => void | Promise<void>;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** One planned or done output. */
export interface OutputPlan {
  readonly inputs: readonly string[];
  readonly inputBytes: number;
  /** Set once written. */
  key?: string;
  bytes?: number;
  rows?: number;
}

/** What happened (or would happen) in one partition. */
export interface PartitionReport {
  /** The partition folder, e.g. `logs/api/year=2025/month=01/day=15/hour=10`. */
  readonly partition: string;
  /** Objects listed in it (all sizes and ages). */
  readonly objects: number;
  /** Small objects old enough to merge. */
  readonly candidates: number;
  readonly candidateBytes: number;
  /** Objects left alone for being too young. */
  readonly young: number;
  /** Interrupted compactions finished: their outputs and the inputs deleted now. */
  readonly finished: { output: string; deleted: string[] }[];
  readonly outputs: OutputPlan[];
}

/** The whole run. */
export interface CompactReport {
  readonly table: string;
  readonly dryRun: boolean;
  /** Partitions skipped as not closed (the current hour or later). */
  readonly openPartitions: number;
  readonly partitions: PartitionReport[];
}

/** A key of the table parsed into its partition folder, hour and file name. */
interface ParsedKey {
  info: ObjectInfo;
  folder: string;
  service: string;
  hourMs: number;
  name: string;
  instance: string;
}

/** Parses `{path}/{service}/year=…/month=…/day=…/hour=…/{name}.parquet`; undefined for other keys. */
export function parseKey(def: TableDef, info: ObjectInfo): ParsedKey | undefined {
  const rest = info.key.startsWith(def.path + "/") ? info.key.slice(def.path.length + 1) : undefined;
  const m = rest &&
    /^([^/]+)\/year=(\d{4})\/month=(\d\d)\/day=(\d\d)\/hour=(\d\d)\/([^/]+)\.parquet$/.exec(rest);
  if (!m) return undefined;
  const hourMs = Date.UTC(+m[2], +m[3] - 1, +m[4], +m[5]);
  // `{26-character time}-{instance}-{16 hex digits}`
  const nm = /^\d{8}T\d{6}\.\d{9}Z-(.+)-[0-9a-f]{16}$/.exec(m[6]);
  return {
    info,
    folder: info.key.slice(0, info.key.lastIndexOf("/")),
    service: m[1],
    hourMs,
    name: m[6],
    instance: nm ? nm[1] : "",
  };
}

/**
 * Packs objects (in key order, i.e. time order) into groups whose column data (size less `overhead`,
 * the bytes of a file that are footer: the schema, the Arrow schema, statistics) adds up to at most
 * `target`. Groups of one object are dropped: they would merge nothing.
 */
export function packGroups(objects: readonly ObjectInfo[], target: number, overhead = 0): ObjectInfo[][] {
  const weight = (o: ObjectInfo) => Math.max(1, o.size - overhead);
  const groups: ObjectInfo[][] = [];
  let current: ObjectInfo[] = [], size = 0;
  for (const o of objects) {
    if (current.length && size + weight(o) > target) groups.push(current), current = [], size = 0;
    current.push(o), size += weight(o);
  }
  if (current.length) groups.push(current);
  // A last group of one merges nothing: join it to the one before when that stays within 1.5 × target.
  const last = groups.at(-1);
  if (last && last.length === 1 && groups.length > 1) {
    const prev = groups[groups.length - 2];
    if (prev.reduce((n, o) => n + weight(o), 0) + weight(last[0]) <= target * 1.5) {
      prev.push(...groups.pop()!);
    }
  }
  return groups.filter((g) => g.length > 1);
}

/** The inputs an output lists and their rows, from its footer; undefined when it lists none. */
function listedInputs(file: Uint8Array): { inputs: string[]; rows: number; numRows: number } | undefined {
  const footer = readFooter(file);
  const from = footer.keyValue.get(COMPACTED_FROM);
  if (from === undefined) return undefined;
  const inputs = JSON.parse(from);
  if (!Array.isArray(inputs) || !inputs.every((k) => typeof k === "string")) {
    throw new RangeError(`${COMPACTED_FROM} is not a list of keys`);
  }
  return { inputs, rows: Number(footer.keyValue.get(COMPACTED_ROWS)), numRows: footer.numRows };
}

/** Runs (or with `dryRun` plans) a compaction of one table. */
export async function compact(store: ObjectStore, options: CompactOptions): Promise<CompactReport> {
  if (!store.listInfo) {
    throw new Error(`${store.description} cannot list object sizes and times, which compact needs`);
  }
  const def = options.table;
  const now = options.nowMs ?? Date.now();
  const target = options.targetBytes ?? 128 * 1024 * 1024;
  const small = options.smallBytes ?? target / 2;
  const log = options.log ?? (() => {});
  const dry = options.dryRun ?? false;
  const service = options.service === undefined ? undefined : serviceSegment(options.service);
  const from = options.fromMs === undefined ? -Infinity : Math.floor(options.fromMs / HOUR_MS) * HOUR_MS;
  const to = options.toMs ?? Infinity;
  // The hour in progress (and any later one) is open: writers are still adding to it.
  const openFrom = Math.floor(now / HOUR_MS) * HOUR_MS;

  const listed = await store.listInfo(service ? `${def.path}/${service}/` : `${def.path}/`);
  const byFolder = new Map<string, ParsedKey[]>();
  let openPartitions = 0;
  const openSeen = new Set<string>();
  for (const info of listed) {
    const k = parseKey(def, info);
    if (!k || (service !== undefined && k.service !== service)) continue;
    if (k.hourMs < from || k.hourMs >= to) continue;
    if (k.hourMs >= openFrom) {
      if (!openSeen.has(k.folder)) openSeen.add(k.folder), openPartitions++;
      continue;
    }
    const list = byFolder.get(k.folder) ?? [];
    list.push(k);
    byFolder.set(k.folder, list);
  }

  const partitions: PartitionReport[] = [];
  let overhead: number | undefined;
  for (const [folder, objects] of [...byFolder].sort(([a], [b]) => a < b ? -1 : 1)) {
    const present = new Set(objects.map((o) => o.info.key));
    const finished: { output: string; deleted: string[] }[] = [];
    const outputs = objects.filter((o) => o.instance === COMPACT_INSTANCE);
    // Only a partition holding objects besides outputs can have an unfinished compaction.
    if (outputs.length && outputs.length < objects.length) {
      for (const out of outputs) {
        if (!present.has(out.info.key)) continue; // an input of another output, deleted just now
        const bytes = await store.get(out.info.key);
        if (!bytes) continue;
        const listedIn = listedInputs(bytes);
        if (!listedIn) continue;
        const left = listedIn.inputs.filter((k) => k !== out.info.key && present.has(k));
        if (!left.length) continue;
        if (listedIn.numRows !== listedIn.rows) {
          throw new Error(
            `${out.info.key} lists inputs of ${listedIn.rows} rows but holds ${listedIn.numRows}: ` +
              `left as it is; delete it to merge its inputs again`,
          );
        }
        log(`${out.info.key}: finishing an interrupted compaction (${left.length} inputs left to delete)`);
        if (!dry) {
          for (const key of left) {
            await store.delete(key);
            await options.onStep?.("deleted", { output: out.info.key, input: key });
          }
        }
        for (const key of left) present.delete(key);
        finished.push({ output: out.info.key, deleted: left });
      }
    }
    const minModified = now - options.minAgeMs;
    let young = 0;
    const candidates: ObjectInfo[] = [];
    for (const o of objects) {
      if (!present.has(o.info.key) || o.info.size >= small) continue;
      // An unknown modification time counts as young: nothing proves a writer is done with it.
      if (!(o.info.modifiedMs <= minModified)) {
        young++;
        continue;
      }
      candidates.push(o.info);
    }
    // The footer of one small object stands for all (same schema, one row group): merged, it is written once.
    if (overhead === undefined && candidates.length > 1) {
      const sample = await store.get(candidates[0].key);
      overhead = sample ? readFooter(sample).overheadBytes : 0;
    }
    const plans: OutputPlan[] = packGroups(candidates, target, overhead).map((g) => ({
      inputs: g.map((o) => o.key),
      inputBytes: g.reduce((n, o) => n + o.size, 0),
    }));
    const report: PartitionReport = {
      partition: folder,
      objects: objects.length,
      candidates: candidates.length,
      candidateBytes: candidates.reduce((n, o) => n + o.size, 0),
      young,
      finished,
      outputs: plans,
    };
    partitions.push(report);
    if (dry) continue;
    const written: OutputPlan[] = [];
    for (const plan of plans) written.push(...await merge(store, def, plan, options, folder, log));
    plans.splice(0, plans.length, ...written);
  }
  return { table: def.name, dryRun: dry, openPartitions, partitions };
}

/**
 * Merges one planned group: reads its inputs in turn, and writes an output (sorted, read back and
 * checked, then its inputs deleted) when all are read or when their decoded rows reach the memory
 * budget. Returns the outputs written.
 */
async function merge(
  store: ObjectStore,
  def: TableDef,
  plan: OutputPlan,
  options: CompactOptions,
  folder: string,
  log: (line: string) => void,
): Promise<OutputPlan[]> {
  const budget = options.maxMemoryBytes ?? DEFAULT_MAX_MEMORY;
  const done: OutputPlan[] = [];
  let at = 0;
  while (at < plan.inputs.length) {
    const keys: string[] = [], inputs: Rows[] = [];
    let rows = 0, decoded = 0, inputBytes = 0;
    while (at < plan.inputs.length && (keys.length < 2 || decoded < budget)) {
      const key = plan.inputs[at++];
      const bytes = await store.get(key);
      if (!bytes) throw new Error(`${key} disappeared while compacting: is another compact running?`);
      let r: Rows;
      try {
        r = parquetToRows(bytes, def);
      } catch (e) {
        throw new Error(`${key}: ${(e as Error).message}: nothing merged from it`);
      }
      keys.push(key), inputBytes += bytes.length, rows += r.length, decoded += r.byteLength();
      if (r.length) inputs.push(r);
    }
    // A last input left over by the budget merges with nothing, and files without rows (never written by
    // the server) are left as they are.
    if (keys.length < 2 || !inputs.length) break;
    done.push(await writeOutput(store, { inputs: keys, inputBytes }, inputs, rows, options, folder));
    const out = done.at(-1)!;
    log(`${out.key}: ${keys.length} objects, ${rows} rows, ${inputBytes} -> ${out.bytes} bytes`);
  }
  return done;
}

/** Writes the merged rows of `plan.inputs`, reads the output back and checks it, deletes the inputs. */
async function writeOutput(
  store: ObjectStore,
  plan: OutputPlan,
  inputs: Rows[],
  rows: number,
  options: CompactOptions,
  folder: string,
): Promise<OutputPlan> {
  const file = await encodeBatch(
    inputs.map((r) => ({ rows: r, indices: Uint32Array.from({ length: r.length }, (_, i) => i) })),
    {
      ...options.files,
      instanceId: COMPACT_INSTANCE,
      metadata: [[COMPACTED_FROM, JSON.stringify(plan.inputs)], [COMPACTED_ROWS, String(rows)]],
    },
  );
  // The key's partition comes from the rows (service and hour of the first): it must be the inputs'.
  if (file.key.slice(0, file.key.lastIndexOf("/")) !== folder) {
    throw new Error(`merged rows of ${folder} would go to ${file.key}: nothing written`);
  }
  if (file.rows !== rows) throw new Error(`merged ${file.rows} rows of ${rows}: nothing written`);
  await store.put(file.key, file.bytes);
  await options.onStep?.("written", { output: file.key });
  const back = await store.get(file.key);
  const check = back && listedInputs(back);
  if (!check || check.numRows !== rows || check.inputs.length !== plan.inputs.length) {
    throw new Error(`${file.key} does not read back with ${rows} rows: inputs kept`);
  }
  await options.onStep?.("verified", { output: file.key });
  for (const key of plan.inputs) {
    await store.delete(key);
    await options.onStep?.("deleted", { output: file.key, input: key });
  }
  return { ...plan, key: file.key, bytes: file.bytes.length, rows };
}

const MiB = 1024 * 1024;
const size = (n: number): string => n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;

/** The human-readable report. */
export function formatCompact(r: CompactReport): string {
  const lines: string[] = [];
  let inputs = 0, inBytes = 0, outputs = 0, outBytes = 0, finished = 0;
  for (const p of r.partitions) {
    if (!p.outputs.length && !p.finished.length && !p.young) continue;
    const planned = p.outputs.reduce((n, o) => n + o.inputs.length, 0);
    const pb = p.outputs.reduce((n, o) => n + o.inputBytes, 0);
    const written = p.outputs.reduce((n, o) => n + (o.bytes ?? 0), 0);
    inputs += planned, inBytes += pb, outputs += p.outputs.length, outBytes += written;
    finished += p.finished.length;
    let line = `${p.partition}: ${planned} objects (${size(pb)}) -> ${p.outputs.length} object` +
      `${p.outputs.length === 1 ? "" : "s"}`;
    if (!r.dryRun && p.outputs.length) line += ` (${size(written)})`;
    if (p.young) line += `; ${p.young} too young, left alone`;
    for (const f of p.finished) {
      line += r.dryRun
        ? `\n  would finish an interrupted compaction: ${f.output} (delete ${f.deleted.length} inputs)`
        : `\n  finished an interrupted compaction: ${f.output} (deleted ${f.deleted.length} inputs)`;
    }
    lines.push(line);
  }
  const verb = r.dryRun ? "would merge" : "merged";
  const what = inputs === 0
    ? `nothing to merge in ${r.partitions.length} closed partitions`
    : `${verb} ${inputs} objects (${size(inBytes)}) into ${outputs}` +
      (r.dryRun ? "" : ` (${size(outBytes)})`) +
      ` in ${r.partitions.filter((p) => p.outputs.length).length} partitions`;
  lines.push(
    `${r.table}: ${what}` +
      (finished ? `; finished ${finished} interrupted` : "") +
      (r.openPartitions ? `; ${r.openPartitions} partitions of the current hour left alone` : "") +
      (r.dryRun ? " (dry run: nothing changed)" : ""),
  );
  return lines.join("\n") + "\n";
}
