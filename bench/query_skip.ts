/**
 * How much of the files DuckDB and ClickHouse (chDB) read for the common lookups: "trace X", "logs of
 * trace X" and a 5-minute time window, on a day of generated spans and logs written by the server's own
 * pipeline (decode, `Ingest` batching with its defaults, the Parquet writer, `FsStore`), so the objects
 * are the ones a server writes. Run it once per source tree (e.g. main's, unpacked with `git archive`,
 * and this one) to compare writers:
 *
 * ```sh
 * deno run -A bench/query_skip.ts generate --tree /tmp/before --out /tmp/qs/before --spans 1000000 --logs 1000000
 * deno run -A bench/query_skip.ts generate --tree . --out /tmp/qs/after --spans 1000000 --logs 1000000
 * deno run -A bench/query_skip.ts query /tmp/qs/before /tmp/qs/after
 * ```
 *
 * Requests of 1,000 records arrive evenly over `--hours` (default 24) of simulated time; the clock the
 * batcher sees is that simulated time, so batches close by age (`--batch-age`, default the server's 60 s)
 * or size (200,000 rows) as they would live. Bytes read are the process' `rchar` (/proc/self/io: bytes
 * returned by read calls, from the page cache or not; DuckDB reads with pread, its own file cache off) and,
 * for ClickHouse, its ProfileEvents, reading with pread instead of mmap. ClickHouse keeps the footers it
 * parsed in its metadata cache across runs (as a long-lived server does), so its bytes are mostly the
 * data, bloom filters and page indexes it read. Times are medians of 3 runs on a shared machine: noisy.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { encodeProtobuf, generateLogs, generateTraces } from "./data.ts";
import { openDuckDb } from "../tests/support/duckdb.ts";
import { openClickHouse } from "../tests/support/clickhouse.ts";

const args = Deno.args;
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};

/** 2025-01-15T00:00:00Z in milliseconds. */
const DAY_START_MS = 1_736_899_200_000;

async function generate(): Promise<void> {
  const tree = resolve(flag("tree", "."));
  const out = resolve(flag("out", "/tmp/query_skip"));
  const spans = Number(flag("spans", "200000")), logs = Number(flag("logs", "200000"));
  const hours = Number(flag("hours", "24")), batchAgeS = Number(flag("batch-age", "60"));
  const per = 1000;
  const { Ingest } = await import(`${tree}/src/ingest/ingest.ts`);
  const { FsStore } = await import(`${tree}/src/storage/fs_store.ts`);
  const { decodeRequest } = await import(`${tree}/src/core/convert.ts`);
  const { registerNodeCompressors } = await import(`${tree}/src/platforms/node_codecs.ts`);
  registerNodeCompressors();
  let clock = DAY_START_MS;
  const { ingest } = await Ingest.start({
    store: new FsStore({ root: out }),
    now: () => clock,
    maxAgeMs: batchAgeS * 1000,
  });
  // Both signals' requests, in arrival order.
  const requests: { at: number; signal: "traces" | "logs"; k: number }[] = [];
  for (const [signal, n] of [["traces", spans], ["logs", logs]] as const) {
    const count = Math.ceil(n / per);
    for (let k = 0; k < count; k++) {
      requests.push({ at: DAY_START_MS + (k + 0.5) * hours * 3_600_000 / count, signal, k });
    }
  }
  requests.sort((a, b) => a.at - b.at);
  const started = performance.now();
  let encodeMs = 0;
  // The server's age timer runs on the wall clock; here the batcher's own age check is called after each
  // request on the simulated clock, and its writes are awaited before the next (private members: a bench).
  const internals = ingest as unknown as { flushAged(): void; inflightFlushes: Set<Promise<void>> };
  for (const { at, signal, k } of requests) {
    clock = at;
    const startNs = BigInt(Math.round(at)) * 1_000_000n;
    const request = signal === "traces"
      ? generateTraces(per, { seed: k + 1, startNs })
      : generateLogs(per, { seed: 100_000 + k, startNs });
    const body = encodeProtobuf(signal, request);
    const decoded = decodeRequest(signal, body, { format: "protobuf" });
    await ingest.accept({ signal, format: "protobuf", body, decoded });
    const t = performance.now();
    internals.flushAged();
    while (internals.inflightFlushes.size) await Promise.allSettled([...internals.inflightFlushes]);
    encodeMs += performance.now() - t;
  }
  const t = performance.now();
  await ingest.close();
  encodeMs += performance.now() - t;
  console.log(
    `${requests.length} requests into ${out} in ${((performance.now() - started) / 1000).toFixed(1)} s ` +
      `(flushes: ${(encodeMs / 1000).toFixed(1)} s)`,
  );
}

function rchar(): number {
  return Number(/rchar: (\d+)/.exec(readFileSync("/proc/self/io", "utf8"))![1]);
}

/** Bytes of the files under `dir`. */
function diskBytes(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    n += e.isDirectory ? diskBytes(path) : Deno.statSync(path).size;
  }
  return n;
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const mb = (n: number) => (n / 1e6).toFixed(2);

async function query(dirs: string[]): Promise<void> {
  const db = await openDuckDb();
  // DuckDB keeps file blocks it read in memory (its external file cache): off, so every run reads.
  await db.rows("SET enable_external_file_cache = false");
  const ch = openClickHouse();
  const glob = (dir: string, table: string) => `${resolve(dir)}/${table}/**/*.parquet`;
  const last = dirs[dirs.length - 1];
  // Lookups chosen from the data itself (the same in every tree: the generator is seeded).
  const [span] = await db.rows(
    `SELECT TraceId FROM read_parquet('${glob(last, "traces")}') WHERE hash(TraceId) % 1000 = 7 LIMIT 1`,
  );
  const [log] = await db.rows(
    `SELECT TraceId FROM read_parquet('${
      glob(last, "logs")
    }') WHERE TraceId <> '' AND hash(TraceId) % 1000 = 7 LIMIT 1`,
  );
  const [mid] = await db.rows(
    `SELECT (to_timestamp(((epoch(min(Timestamp)) + epoch(max(Timestamp))) / 2)::BIGINT))::VARCHAR AS t FROM read_parquet('${
      glob(last, "traces")
    }')`,
  );
  const t0 = (mid.t as string).slice(0, 19);
  const queries = [
    ["trace X", "traces", `SELECT * FROM {src} WHERE TraceId = '${span.TraceId}'`],
    ["logs of trace X", "logs", `SELECT * FROM {src} WHERE TraceId = '${log.TraceId}'`],
    [
      "5-minute window",
      "traces",
      `SELECT ServiceName, count(*) AS n, avg(Duration) AS d, max(TraceId) AS t FROM {src} WHERE Timestamp >= {t0} AND Timestamp < {t1} GROUP BY ServiceName`,
    ],
  ] as const;
  const t1 = new Date(Date.parse(`${t0}Z`) + 300_000).toISOString().slice(0, 19).replace("T", " ");
  console.log(`trace X = ${span.TraceId}, logs of trace ${log.TraceId}, window [${t0}, ${t1}) UTC`);
  const events = () =>
    new Map(
      ch.rows<{ event: string; value: string }>("SELECT event, value FROM system.events").map((
        r,
      ) => [r.event, Number(r.value)]),
    );
  console.log(
    "| query | files | files / row groups / MB | DuckDB rows | DuckDB MB read | DuckDB ms | ClickHouse rows | " +
      "row groups pruned by min/max | rows filtered (decoded) | ClickHouse MB read | ClickHouse ms |",
  );
  console.log("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const [name, table, sql] of queries) {
    for (const dir of dirs) {
      const files = await db.rows(
        `SELECT count(DISTINCT file_name)::INT AS f, count(DISTINCT (file_name, row_group_id))::INT AS g, sum(total_compressed_size)::BIGINT AS b FROM parquet_metadata('${
          glob(dir, table)
        }')`,
      );
      // DuckDB
      const duckSql = sql.replace("{src}", `read_parquet('${glob(dir, table)}')`)
        .replace("{t0}", `TIMESTAMPTZ '${t0}+00'`).replace("{t1}", `TIMESTAMPTZ '${t1}+00'`);
      const dTimes: number[] = [], dBytes: number[] = [];
      let dRows = 0;
      for (let i = 0; i < 3; i++) {
        const r0 = rchar(), s = performance.now();
        dRows = (await db.rows(duckSql)).length;
        dTimes.push(performance.now() - s), dBytes.push(rchar() - r0);
      }
      // ClickHouse
      const chSql = sql.replace("{src}", `file('${glob(dir, table)}', Parquet)`)
        .replace("{t0}", `toDateTime64('${t0}', 9, 'UTC')`).replace(
          "{t1}",
          `toDateTime64('${t1}', 9, 'UTC')`,
        ) +
        " SETTINGS storage_file_read_method = 'pread' FORMAT TSV";
      const cTimes: number[] = [];
      let cRows = 0, delta = new Map<string, number>();
      for (let i = 0; i < 3; i++) {
        const e0 = events(), s = performance.now();
        cRows = ch.exec(chSql).split("\n").filter((l) => l).length;
        cTimes.push(performance.now() - s);
        const e1 = events();
        delta = new Map([...e1].map(([k, v]) => [k, v - (e0.get(k) ?? 0)]));
      }
      const ev = (k: string) => delta.get(k) ?? 0;
      const line = [
        name,
        dir,
        `${files[0].f} / ${files[0].g} / ${mb(diskBytes(resolve(dir, table)))}`,
        `${dRows}`,
        mb(median(dBytes)),
        median(dTimes).toFixed(0),
        `${cRows}`,
        `${ev("ParquetPrunedRowGroups")}`,
        `${ev("ParquetRowsFilterExpression")}`,
        mb(ev("ReadBufferFromFileDescriptorReadBytes")),
        median(cTimes).toFixed(0),
      ].join(" | ");
      console.log(`| ${line} |`);
      const parquetEvents = [...delta].filter(([k, v]) => v && /Parquet/.test(k)).map(([k, v]) =>
        `${k}=${v}`
      );
      console.error(`  ClickHouse events: ${parquetEvents.join(" ")}`);
    }
  }
  db.close();
  ch.close();
}

/**
 * Long strings: 30,000 log records whose 170-byte bodies sort with time, in row groups of 10,000; an
 * equality filter on one body. With bounds left out (main before truncation) every row group is read;
 * with truncated bounds the readers skip the other two.
 */
async function longBodies(): Promise<void> {
  const tree = resolve(flag("tree", "."));
  const { decodeRequest } = await import(`${tree}/src/core/convert.ts`);
  const { writeParquetFile } = await import(`${tree}/src/core/parquet/parquet_writer.ts`);
  const records = Array.from({ length: 30_000 }, (_, i) => ({
    timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n),
    body: {
      stringValue: `${String.fromCharCode(65 + Math.floor(i / 10_000))}${"x".repeat(80)}${
        String(i).padStart(6, "0")
      }${"payload ".repeat(10)}`,
    },
  }));
  const body = new TextEncoder().encode(
    JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: records }] }] }),
  );
  const rows = decodeRequest("logs", body, { format: "json" }).tables[0];
  const path = `${Deno.makeTempDirSync()}/bodies.parquet`;
  Deno.writeFileSync(path, writeParquetFile(rows, { rowGroupRows: 10_000 }));
  const target = records[25_000].body.stringValue;
  const db = await openDuckDb(), ch = openClickHouse();
  const r0 = rchar();
  const [d] = await db.rows(
    `SELECT count(*)::INT AS n FROM read_parquet('${path}') WHERE Body = '${target}'`,
  );
  const duckBytes = rchar() - r0;
  const e0 = new Map(
    ch.rows<{ event: string; value: string }>("SELECT event, value FROM system.events").map((
      r,
    ) => [r.event, Number(r.value)]),
  );
  const c = ch.exec(
    `SELECT count() FROM file('${path}', Parquet) WHERE Body = '${target}' SETTINGS storage_file_read_method = 'pread'`,
  ).trim();
  const e1 = new Map(
    ch.rows<{ event: string; value: string }>("SELECT event, value FROM system.events").map((
      r,
    ) => [r.event, Number(r.value)]),
  );
  const ev = (k: string) => (e1.get(k) ?? 0) - (e0.get(k) ?? 0);
  console.log(
    `${tree}: file ${
      Deno.statSync(path).size
    } B, 3 row groups | DuckDB: ${d.n} row, ${duckBytes} B read | ClickHouse: ${c} row, ` +
      `row groups read ${ev("ParquetReadRowGroups")} (pruned ${ev("ParquetPrunedRowGroups")}), ${
        ev("ReadBufferFromFileDescriptorReadBytes")
      } B read`,
  );
  db.close(), ch.close();
  Deno.removeSync(path);
}

if (args[0] === "generate") await generate();
else if (args[0] === "long-bodies") await longBodies();
else if (args[0] === "query") await query(args.slice(1).filter((a) => !a.startsWith("--")));
else {console.error(
    "usage: query_skip.ts generate --tree DIR --out DIR [--spans N --logs N --hours H] | query DIR...",
  );}
