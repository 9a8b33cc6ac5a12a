/**
 * `compact` on real stores (a folder, and S3 through s3rver): many small objects of the server's making
 * become fewer sorted objects; DuckDB sees every row exactly once and the same schema; chDB reads the
 * result; a run stopped after the write, after the check or between deletes (in process, and by ending
 * the process) is finished by the next run without merging twice; the current hour and young objects are
 * left alone.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_START_NS, encodeProtobuf, generateRequest } from "../bench/data.ts";
import { compact, COMPACT_INSTANCE, COMPACTED_FROM, type CompactStep } from "../src/cli/compact.ts";
import { decodeRequest, toParquetFiles } from "../src/core/convert.ts";
import { UNCAPPED } from "../src/core/decode/decode_limits.ts";
import { readFooter } from "../src/core/parquet/parquet_read.ts";
import { LOGS, type Signal, type TableDef, tableDef, TRACES } from "../src/core/table/schema.ts";
import { loadParquetWasm } from "../src/platforms/wasm.ts";
import { FsStore } from "../src/storage/fs_store.ts";
import type { ObjectStore } from "../src/storage/object_store.ts";
import { S3FetchStore } from "../src/storage/s3_fetch_store.ts";
import { openDuckDb } from "./support/duckdb.ts";
import { openClickHouse, sqlString } from "./support/clickhouse.ts";
import { startS3Server } from "./support/s3_server.ts";

await loadParquetWasm();

const ROOT = new URL("..", import.meta.url).pathname;
const DENO = join(ROOT, "node_modules", ".bin", "deno");
const TMP = mkdtempSync(join(tmpdir(), "otlp2parquet-compact-"));
globalThis.addEventListener("unload", () => rmSync(TMP, { recursive: true, force: true }));
let dirs = 0;
const newDir = () => join(TMP, `d${dirs++}`);

/** Puts `requests` small requests' files (as the server names them) into the store; returns their keys. */
async function seed(
  store: ObjectStore,
  signal: Signal,
  requests: number,
  options: { startNs?: bigint; records?: number; seed?: number } = {},
): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < requests; i++) {
    const request = generateRequest(signal, options.records ?? 40, {
      seed: (options.seed ?? 1) * 1000 + i,
      services: 2,
      // Every request within the same hour, some minutes apart (not in order, like concurrent writers).
      startNs: (options.startNs ?? DEFAULT_START_NS) + BigInt((i * 7) % 50) * 60_000_000_000n,
    });
    const decoded = decodeRequest(signal, encodeProtobuf(signal, request), {
      format: "protobuf",
      ...UNCAPPED,
    });
    for (const f of toParquetFiles(decoded, { instanceId: `w${i % 3}` })) {
      await store.put(f.key, f.bytes);
      keys.push(f.key);
    }
  }
  return keys.sort();
}

/** Copies every object of a store into a fresh folder (DuckDB reads S3 only with an extension it would download). */
async function mirror(store: ObjectStore): Promise<string> {
  const dir = newDir();
  for (const key of await store.list("")) {
    await Deno.mkdir(join(dir, key, ".."), { recursive: true });
    await Deno.writeFile(join(dir, key), (await store.get(key))!);
  }
  return dir;
}

/** Every row of a table's objects under a folder, as sorted JSON lines. */
async function rowsOf(source: string, def: TableDef): Promise<string[]> {
  const db = await openDuckDb();
  try {
    const rows = await db.rows(
      `SELECT * EXCLUDE (filename) FROM read_parquet(${sqlString(`${source}/${def.path}/**/*.parquet`)},
         filename = true) ORDER BY ALL`,
    );
    return rows.map((r) => JSON.stringify(r));
  } finally {
    db.close();
  }
}

/** The rows as a reader that skips the inputs outputs list in `compacted_from` sees them (docs/cli.md). */
async function dedupedRowsOf(dir: string, def: TableDef): Promise<string[]> {
  const db = await openDuckDb();
  try {
    const glob = sqlString(`${dir}/${def.path}/**/*.parquet`);
    const rows = await db.rows(`
      WITH listed AS (
        SELECT unnest(from_json(decode(value), '["VARCHAR"]')) AS key
        FROM parquet_kv_metadata(${glob})
        WHERE decode(key) = '${COMPACTED_FROM}')
      SELECT * EXCLUDE (filename) FROM read_parquet(${glob}, filename = true)
      WHERE filename NOT IN (SELECT ${sqlString(dir + "/")} || key FROM listed)
      ORDER BY ALL`);
    return rows.map((r) => JSON.stringify(r));
  } finally {
    db.close();
  }
}

/** DESCRIBE of every object of the table, deduplicated: one entry when all share a schema. */
async function schemasOf(root: string, def: TableDef, keys: string[]): Promise<Set<string>> {
  const db = await openDuckDb();
  try {
    const out = new Set<string>();
    for (const k of keys.filter((k) => k.startsWith(def.path + "/"))) {
      out.add(
        JSON.stringify(await db.rows(`DESCRIBE SELECT * FROM read_parquet(${sqlString(join(root, k))})`)),
      );
    }
    return out;
  } finally {
    db.close();
  }
}

const now = Date.now();
const base = { minAgeMs: 0 };

Deno.test("compact (fs): small objects become sorted objects; every row once, same schema, chDB reads them", async () => {
  const dir = newDir();
  const store = new FsStore({ root: dir });
  const inputs = await seed(store, "logs", 30);
  const logsBefore = await rowsOf(dir, LOGS);
  const schemaBefore = await schemasOf(dir, LOGS, inputs);
  assert.equal(schemaBefore.size, 1);
  const partitions = new Set(inputs.map((k) => k.slice(0, k.lastIndexOf("/")))).size;
  // One input kept aside (at the same key under another folder) for chDB's view of the schema before.
  const probe = join(newDir(), inputs[0]);
  await Deno.mkdir(join(probe, ".."), { recursive: true });
  await Deno.copyFile(join(dir, inputs[0]), probe);

  const dry = await compact(store, { ...base, table: LOGS, dryRun: true });
  assert.deepEqual(await store.list(""), inputs, "a dry run changes nothing");
  assert.equal(dry.partitions.reduce((n, p) => n + p.outputs.length, 0), partitions);

  const report = await compact(store, { ...base, table: LOGS });
  const after = await store.list("logs/");
  assert.equal(after.length, partitions, "one object per partition");
  assert.ok(after.every((k) => k.includes(`-${COMPACT_INSTANCE}-`)));
  assert.deepEqual(await rowsOf(dir, LOGS), logsBefore, "every row exactly once");
  assert.deepEqual(await schemasOf(dir, LOGS, after), schemaBefore, "the same schema");
  assert.equal(report.partitions.reduce((n, p) => n + p.outputs.length, 0), partitions);

  // Sorted by event time, named like the server's objects, listing their inputs.
  const db = await openDuckDb();
  for (const key of after) {
    const [{ sorted }] = await db.rows(
      `SELECT bool_and(d >= 0) AS sorted FROM (SELECT epoch_ns(Timestamp) - lag(epoch_ns(Timestamp))
         OVER (ORDER BY file_row_number) AS d FROM read_parquet(${
        sqlString(join(dir, key))
      }, file_row_number = true))
       WHERE d IS NOT NULL`,
    );
    assert.equal(sorted, true, key);
    const [{ first }] = await db.rows(
      `SELECT strftime(min(Timestamp), '%Y%m%dT%H%M%S') AS first FROM read_parquet(${
        sqlString(join(dir, key))
      })`,
    );
    assert.ok(key.split("/").at(-1)!.startsWith(String(first)), `${key} starts with ${first}`);
    const meta = readFooter(await Deno.readFile(join(dir, key))).keyValue;
    // The server's own metadata, byte for byte: its version entry and the Arrow schema.
    const server = readFooter(await Deno.readFile(probe)).keyValue;
    assert.equal(meta.get("otlp2parquet"), server.get("otlp2parquet"));
    assert.equal(meta.get("ARROW:schema"), server.get("ARROW:schema"));
    const listed: string[] = JSON.parse(meta.get(COMPACTED_FROM)!);
    assert.ok(listed.length > 1 && listed.every((k) => inputs.includes(k)));
  }
  db.close();

  // The traces table is left alone; and a second run has nothing to do.
  const again = await compact(store, { ...base, table: LOGS });
  assert.equal(again.partitions.reduce((n, p) => n + p.outputs.length + p.finished.length, 0), 0);

  const ch = openClickHouse();
  try {
    const [{ n }] = ch.rows<{ n: number }>(
      `SELECT count() AS n FROM file(${sqlString(join(dir, "logs/**/*.parquet"))}, Parquet)`,
    );
    assert.equal(String(n), String(logsBefore.length));
    const types = ch.describe(`file(${sqlString(join(dir, after[0]))}, Parquet)`);
    assert.deepEqual(types, ch.describe(`file(${sqlString(probe)}, Parquet)`));
  } finally {
    ch.close();
  }
});

/** Runs compact and stops it (throws) right after the `n`-th `step`; returns whether it was stopped. */
async function stopAt(store: ObjectStore, table: TableDef, step: CompactStep, n: number): Promise<boolean> {
  let seen = 0;
  try {
    await compact(store, {
      ...base,
      table,
      targetBytes: 1 << 30,
      onStep: (s) => {
        if (s === step && ++seen === n) throw new Error("stopped");
      },
    });
    return false;
  } catch (e) {
    if ((e as Error).message !== "stopped") throw e;
    return true;
  }
}

for (const [step, n] of [["written", 1], ["verified", 1], ["deleted", 1], ["deleted", 5]] as const) {
  Deno.test(`compact (fs): stopped after ${step} #${n}, a rerun leaves every row exactly once`, async () => {
    const dir = newDir();
    const store = new FsStore({ root: dir });
    await seed(store, "traces", 12, { seed: 7 });
    const before = await rowsOf(dir, TRACES);
    assert.ok(await stopAt(store, TRACES, step, n));
    const mid = await store.list("traces/");
    assert.ok(mid.some((k) => k.includes(`-${COMPACT_INSTANCE}-`)), "the output was written");
    // Meanwhile a reader sees rows twice, unless it skips the objects an output lists (docs/cli.md).
    assert.ok((await rowsOf(dir, TRACES)).length > before.length, "duplicates are visible meanwhile");
    assert.deepEqual(await dedupedRowsOf(dir, TRACES), before);
    const rerun = await compact(store, { ...base, table: TRACES, targetBytes: 1 << 30 });
    assert.equal(
      rerun.partitions.reduce((n, p) => n + p.finished.length, 0),
      1,
      "finished, not merged again",
    );
    assert.deepEqual(await rowsOf(dir, TRACES), before);
    const after = await store.list("traces/");
    assert.ok(after.every((k) => k.includes(`-${COMPACT_INSTANCE}-`)), after.join("\n"));
  });
}

Deno.test("compact (fs, process): ended by exit after each step, the next run finishes it", async () => {
  for (const at of ["written:1", "verified:1", "deleted:3"]) {
    const dir = newDir();
    const store = new FsStore({ root: dir });
    await seed(store, "logs", 10, { seed: 11 });
    const before = await rowsOf(dir, LOGS);
    const cli = (env: Record<string, string>) =>
      new Deno.Command(DENO, {
        args: [
          "run",
          "-A",
          join(ROOT, "src/cli/main.ts"),
          "compact",
          "--path",
          dir,
          "--table",
          "logs",
          "--min-age",
          "0",
        ],
        env: { OTLP2PARQUET_STORAGE_BACKEND: "fs", ...env },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const killed = await cli({ OTLP2PARQUET_COMPACT_EXIT_AFTER: at });
    assert.equal(killed.code, 137, at);
    const rerun = await cli({});
    const out = new TextDecoder().decode(rerun.stdout);
    assert.equal(rerun.code, 0, new TextDecoder().decode(rerun.stderr));
    assert.match(out, /finished an interrupted compaction/);
    assert.deepEqual(await rowsOf(dir, LOGS), before, at);
  }
});

Deno.test("compact (fs): the current hour and young objects are left alone", async () => {
  const dir = newDir();
  const store = new FsStore({ root: dir });
  const hourNs = BigInt(Math.floor(now / 3_600_000) * 3_600_000) * 1_000_000n;
  const current = await seed(store, "logs", 4, { startNs: hourNs, records: 5 });
  const old = await seed(store, "logs", 6, { seed: 3 });
  // Half of the old-hour objects were modified just now (a writer may still retry them); the rest long ago.
  const young = old.filter((_, i) => i % 2 === 0);
  const aged = old.filter((_, i) => i % 2 === 1);
  const past = new Date(now - 2 * 3_600_000);
  for (const k of aged) utimesSync(join(dir, k), past, past);
  for (const k of current) utimesSync(join(dir, k), past, past);
  const report = await compact(store, { table: LOGS, minAgeMs: 3_600_000, nowMs: now });
  const after = await store.list("logs/");
  for (const k of [...current, ...young]) assert.ok(after.includes(k), `${k} kept`);
  assert.ok(aged.every((k) => !after.includes(k)), "old objects merged");
  assert.ok(report.openPartitions > 0);
  assert.equal(report.partitions.reduce((n, p) => n + p.young, 0), young.length);
});

Deno.test("compact (S3, s3rver): merged, exactly once after a stop mid-delete", async () => {
  const s3 = await startS3Server();
  try {
    const store = new S3FetchStore({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
    });
    const inputs = await seed(store, "logs", 16, { seed: 5 });
    const before = await rowsOf(await mirror(store), LOGS);
    assert.ok(await stopAt(store, LOGS, "deleted", 2));
    await compact(store, { ...base, table: LOGS, targetBytes: 1 << 30 });
    assert.deepEqual(await rowsOf(await mirror(store), LOGS), before);
    const after = await store.list("logs/");
    assert.ok(after.length < inputs.length);
    assert.ok(after.every((k) => k.includes(`-${COMPACT_INSTANCE}-`)));
  } finally {
    await s3.stop();
  }
});

Deno.test("compact (fs): metrics tables (lists of numbers, maps) keep every row and their schema", async () => {
  const dir = newDir();
  const store = new FsStore({ root: dir });
  const inputs = await seed(store, "metrics", 8, { seed: 17, records: 300 });
  for (const name of ["otel_metrics_gauge", "otel_metrics_sum", "otel_metrics_histogram"] as const) {
    const def = tableDef(name);
    const before = await rowsOf(dir, def);
    assert.ok(before.length > 0, name);
    const schema = await schemasOf(dir, def, inputs);
    const report = await compact(store, { ...base, table: def });
    assert.ok(report.partitions.some((p) => p.outputs.length), name);
    assert.deepEqual(await rowsOf(dir, def), before, name);
    assert.deepEqual(await schemasOf(dir, def, await store.list(def.path + "/")), schema, name);
  }
});

Deno.test("compact (fs): the memory budget closes outputs early; every row still exactly once", async () => {
  const dir = newDir();
  const store = new FsStore({ root: dir });
  const inputs = await seed(store, "logs", 20, { seed: 13, records: 200 });
  const before = await rowsOf(dir, LOGS);
  const partitions = new Set(inputs.map((k) => k.slice(0, k.lastIndexOf("/")))).size;
  const report = await compact(store, { ...base, table: LOGS, maxMemoryBytes: 64 * 1024 });
  const outputs = report.partitions.flatMap((p) => p.outputs);
  assert.ok(outputs.length > partitions, `${outputs.length} outputs for ${partitions} partitions`);
  assert.ok(outputs.every((o) => o.inputs.length >= 2 && o.key));
  assert.deepEqual(await rowsOf(dir, LOGS), before);
});
