/**
 * `otlp2parquet schema clickhouse|duckdb` against files the server wrote: the ClickHouse DDL runs in chDB
 * and its tables take the files as they are; the DuckDB views, run in DuckDB, return every row of them
 * (`SELECT * FROM otel_logs`), with the Hive partition columns. Remote stores get the extension and
 * secret statements DuckDB needs (checked as text: DuckDB's httpfs extension cannot be installed offline).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { TABLES } from "../src/core/table/schema.ts";
import { runCliProcess } from "./support/cli_process.ts";
import { openClickHouse } from "./support/clickhouse.ts";
import { openDuckDb } from "./support/duckdb.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const DATA = new URL("../../shared/testdata/otlp2parquet-rust/", import.meta.url);
/** Requests sent, and the rows each table must end with. */
const SENT: [path: string, file: string][] = [
  ["/v1/logs", "logs.pb"],
  ["/v1/traces", "traces.pb"],
  ["/v1/metrics", "metrics_sum.pb"],
  ["/v1/metrics", "metrics_gauge.pb"],
];
const ROWS: Record<string, number> = { otel_logs: 81, otel_traces: 19, otel_metrics_sum: 4 };

let written: Promise<TestServer> | undefined;
/** A server that received SENT and stopped (every batch flushed); its folder holds the files. */
function serverFiles(): Promise<TestServer> {
  return written ??= (async () => {
    const server = await startTestServer();
    for (const [path, file] of SENT) {
      const res = await fetch(server.url + path, {
        method: "POST",
        headers: { "content-type": "application/x-protobuf" },
        body: readFileSync(new URL(file, DATA)),
      });
      assert.equal(res.status, 200, await res.text());
    }
    await server.stop();
    return server;
  })();
}
globalThis.addEventListener("unload", () => void written?.then((s) => s.dispose()));

/** The statements of a script, comments and blank lines left out. */
function statements(sql: string): string[] {
  return sql.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("--")).join("\n")
    .split(/;\s*(?:\n|$)/).map((s) => s.trim()).filter(Boolean);
}

Deno.test("schema duckdb: the views return every row the server wrote, with partition columns; empty tables are left commented", async () => {
  const server = await serverFiles();
  const run = await runCliProcess(["schema", "duckdb", "--url", server.dir]);
  assert.equal(run.code, 0, run.stderr);
  const gauge = await (async () => {
    const duck = await openDuckDb();
    try {
      for (const s of statements(run.stdout)) await duck.rows(s);
      for (const [table, n] of Object.entries(ROWS)) {
        assert.deepEqual(await duck.rows(`SELECT count(*)::INTEGER AS n FROM ${table}`), [{ n }], table);
      }
      const columns = (await duck.rows("DESCRIBE otel_logs")).map((r) => r.column_name);
      const def = TABLES.find((t) => t.name === "otel_logs")!;
      assert.deepEqual(columns, [...def.columns.map((c) => c.name), "year", "month", "day", "hour"]);
      const all = await duck.rows("SELECT * FROM otel_logs WHERE year >= 2000");
      assert.equal(all.length, 81);
      // Partition columns agree with each row's own time.
      assert.deepEqual(
        await duck.rows(
          "SELECT count(*)::INTEGER AS n FROM otel_traces WHERE hour = hour(Timestamp) AND day = day(Timestamp)",
        ),
        [{ n: 19 }],
      );
      return (await duck.rows("SELECT count(*)::INTEGER AS n FROM otel_metrics_gauge"))[0].n;
    } finally {
      duck.close();
    }
  })();
  assert.ok((gauge as number) > 0);
  // Tables with no files: the view is printed commented out (DuckDB refuses a pattern matching nothing).
  for (const t of TABLES) {
    const created = new RegExp(`^CREATE OR REPLACE VIEW ${t.name} AS`, "m").test(run.stdout);
    const commented = new RegExp(`^-- CREATE OR REPLACE VIEW ${t.name} AS`, "m").test(run.stdout);
    const hasFiles = t.name in ROWS || t.name === "otel_metrics_gauge";
    assert.equal(created, hasFiles, t.name);
    assert.equal(commented, !hasFiles, t.name);
  }
  // Without --url: the configured fs folder, the same SQL.
  const configured = await runCliProcess(["schema", "duckdb"], {
    env: { OTLP2PARQUET_STORAGE_PATH: server.dir },
  });
  assert.equal(configured.code, 0, configured.stderr);
  assert.equal(configured.stdout, run.stdout);
});

Deno.test("schema clickhouse: the DDL runs in chDB and its tables take the server's files as they are", async () => {
  const server = await serverFiles();
  const run = await runCliProcess(["schema", "clickhouse"]);
  assert.equal(run.code, 0, run.stderr);
  const ch = openClickHouse();
  try {
    ch.exec(run.stdout);
    for (const [table, n] of Object.entries(ROWS)) {
      const path = TABLES.find((t) => t.name === table)!.path;
      ch.exec(
        `INSERT INTO ${table} SELECT * FROM file('${server.dir}/${path}/*/year=*/month=*/day=*/hour=*/*.parquet', Parquet)`,
      );
      assert.deepEqual(ch.rows(`SELECT count() AS n FROM ${table}`), [{ n }], table);
    }
  } finally {
    ch.close();
  }
});

Deno.test("schema duckdb: remote stores get httpfs, aws or azure and a secret; the URL comes from the storage settings", async () => {
  const cases: [string[], Record<string, string>, RegExp[]][] = [
    [["--url", "s3://telemetry/otel/"], {}, [
      /^INSTALL httpfs; LOAD httpfs;$/m,
      /^CREATE OR REPLACE SECRET otlp2parquet \(TYPE s3, PROVIDER credential_chain\);$/m,
      /read_parquet\('s3:\/\/telemetry\/otel\/logs\/\*\/year=\*\/month=\*\/day=\*\/hour=\*\/\*\.parquet'/,
    ]],
    [[], {
      OTLP2PARQUET_STORAGE_BACKEND: "s3",
      OTLP2PARQUET_S3_BUCKET: "tele",
      OTLP2PARQUET_S3_PREFIX: "/p/q/",
      OTLP2PARQUET_S3_REGION: "eu-west-1",
      OTLP2PARQUET_S3_ENDPOINT: "http://127.0.0.1:9000",
    }, [
      /TYPE s3, PROVIDER credential_chain, REGION 'eu-west-1', ENDPOINT '127\.0\.0\.1:9000', URL_STYLE 'path', USE_SSL false\);/,
      /read_parquet\('s3:\/\/tele\/p\/q\/traces\/\*\//,
    ]],
    [[], {
      OTLP2PARQUET_STORAGE_BACKEND: "s3",
      OTLP2PARQUET_S3_BUCKET: "tele",
      OTLP2PARQUET_S3_ENDPOINT: "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com",
    }, [/TYPE r2, .*ACCOUNT_ID '0123456789abcdef0123456789abcdef'/, /read_parquet\('r2:\/\/tele\/logs\//]],
    [["--url", "gcs://bkt"], {}, [/TYPE gcs/, /read_parquet\('gs:\/\/bkt\/metrics\/sum\//]],
    [[], {
      OTLP2PARQUET_STORAGE_BACKEND: "azblob",
      OTLP2PARQUET_AZURE_CONTAINER: "otel",
      OTLP2PARQUET_AZURE_ACCOUNT: "acct",
    }, [
      /^INSTALL azure; LOAD azure;$/m,
      /TYPE azure, PROVIDER credential_chain, ACCOUNT_NAME 'acct'/,
      /read_parquet\('az:\/\/otel\/logs\//,
    ]],
  ];
  for (const [args, env, patterns] of cases) {
    const run = await runCliProcess(["schema", "duckdb", ...args], { env });
    assert.equal(run.code, 0, run.stderr);
    for (const p of patterns) assert.match(run.stdout, p, `${JSON.stringify(env)} ${args.join(" ")}`);
    // Every table has its view, none commented out: a remote store is not listed.
    assert.equal(run.stdout.match(/^CREATE OR REPLACE VIEW /gm)?.length, TABLES.length);
  }
  const bad = await runCliProcess(["schema", "duckdb", "--url", "ftp://x/y"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /expected a folder or an s3:\/\//);
});
