/**
 * The `otlp2parquet` CLI as a user runs it: a subprocess (`deno run -A src/cli/main.ts …`) on the shared
 * test data, gzipped inputs and invalid files; exit codes, output, and the files written or not.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { clickhouseDdl, TABLES } from "../src/core/table/schema.ts";
import { type CliResult, runCliProcess } from "./support/cli_process.ts";
import { openDuckDb } from "./support/duckdb.ts";

const DATA = new URL("../../shared/testdata/otlp2parquet-rust/", import.meta.url).pathname;
const TMP = Deno.makeTempDirSync({ prefix: "otlp2parquet-cli-" });
globalThis.addEventListener("unload", () => rmSync(TMP, { recursive: true, force: true }));

/** The CLI as a subprocess, from the repository root. */
const cli = (...args: string[]): Promise<CliResult> => runCliProcess(args);

/** Every file under a folder, relative, sorted. */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort();
}

let n = 0;
const outDir = (): string => join(TMP, `out${n++}`);

Deno.test("convert: protobuf, JSON Lines and gzipped inputs; prints files and rows per table and a total", async () => {
  const gz = join(TMP, "traces.pb.gz");
  writeFileSync(gz, gzipSync(readFileSync(join(DATA, "traces.pb"))));
  const noSuffix = join(TMP, "gzipped-request-without-suffix");
  writeFileSync(noSuffix, gzipSync(readFileSync(join(DATA, "metrics_summary.jsonl"))));
  const out = outDir();
  const run = await cli("convert", "--out", out, join(DATA, "logs.pb"), gz, noSuffix);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, "");
  assert.match(
    run.stdout,
    /logs\.pb \(logs, protobuf\): 81 records, 6 files\n {2}otel_logs: 6 files, 81 rows\n/,
  );
  assert.match(
    run.stdout,
    /traces\.pb\.gz \(traces, protobuf, gzip\): 19 records, 8 files\n {2}otel_traces: 8 files, 19 rows/,
  );
  assert.match(
    run.stdout,
    /gzipped-request-without-suffix \(metrics, json, gzip\): 2 records, 1 file\n {2}otel_metrics_summary: 1 file, 2 rows/,
  );
  assert.match(run.stdout, /total: 3 inputs, 15 files, 102 rows\n$/);
  const written = files(out);
  assert.equal(written.length, 15);
  for (const f of written) {
    assert.match(
      f,
      /^(logs|traces|metrics\/summary)\/[^/]+\/year=\d{4}\/month=\d\d\/day=\d\d\/hour=\d\d\/\d{8}T\d{6}\.\d{9}Z-local-[0-9a-f]{16}\.parquet$/,
    );
  }
});

Deno.test("convert --json: a machine-readable report whose files exist at their keys", async () => {
  const out = outDir();
  const run = await cli(
    "convert",
    "--json",
    "--out",
    out,
    "--instance-id",
    "box-7",
    join(DATA, "metrics_sum.pb"),
  );
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.deepEqual(report.total, { inputs: 1, failed: 0, files: report.inputs[0].files.length, rows: 4 });
  const input = report.inputs[0];
  assert.equal(input.ok, true);
  assert.equal(input.signal, "metrics");
  assert.equal(input.format, "protobuf");
  assert.deepEqual(input.tables.map((t: { table: string }) => t.table), ["otel_metrics_sum"]);
  for (const f of input.files) {
    assert.ok(f.key.startsWith("metrics/sum/"), f.key);
    assert.ok(f.key.includes("-box-7-"), f.key);
    assert.equal(f.path, join(out, f.key));
    assert.equal(readFileSync(f.path).length, f.bytes);
  }
  assert.deepEqual(files(out), input.files.map((f: { key: string }) => f.key).sort());
});

Deno.test("convert: an invalid file is reported, nothing of it is written, the others are, exit code 1", async () => {
  const out = outDir();
  const bad = join(DATA, "invalid", "log_invalid_severity.json");
  const broken = join(TMP, "broken.json");
  writeFileSync(broken, '{"resourceLogs": [');
  const missing = join(TMP, "no-such-file.pb");
  const notGzip = join(TMP, "plain.json.gz");
  writeFileSync(notGzip, readFileSync(join(DATA, "log.json")));
  const run = await cli("convert", "--out", out, bad, join(DATA, "trace.pb"), broken, missing, notGzip);
  assert.equal(run.code, 1);
  assert.match(run.stderr, new RegExp(`${bad}: cannot decode logs request: field .*severityNumber`));
  assert.match(run.stderr, new RegExp(`${broken}: invalid JSON`));
  assert.match(run.stderr, new RegExp(`${missing}: .*no such file`, "i"));
  assert.match(run.stdout, /log_invalid_severity\.json: FAILED/);
  assert.match(run.stderr, new RegExp(`${notGzip}: invalid gzip data`));
  assert.match(run.stdout, /total: 5 inputs, 1 file, 2 rows, 4 failed/);
  // Only trace.pb's file, and no temporary file left behind.
  const written = files(out);
  assert.equal(written.length, 1);
  assert.match(written[0], /^traces\//);
});

Deno.test("convert: a file that is no OTLP request at all is refused without writing", async () => {
  const out = outDir();
  const run = await cli("convert", "--out", out, join(DATA, "README.md"));
  assert.equal(run.code, 1);
  assert.match(run.stderr, /README\.md: /);
  assert.deepEqual(files(out), []);
});

Deno.test("convert: --signal, --format and --compression are applied", async () => {
  const out = outDir();
  const input = join(TMP, "request.bin"); // no telling extension
  writeFileSync(input, readFileSync(join(DATA, "metrics_gauge.json")));
  const run = await cli(
    "convert",
    "--out",
    out,
    "--signal",
    "metrics",
    "--format",
    "json",
    "--compression",
    "snappy",
    input,
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /request\.bin \(metrics, json\): 3 records/);
  const duck = await openDuckDb();
  try {
    const rows = await duck.rows(
      `SELECT DISTINCT compression FROM parquet_metadata('${
        join(out, "metrics", "gauge", "**", "*.parquet")
      }')`,
    );
    assert.deepEqual(rows, [{ compression: "SNAPPY" }]);
  } finally {
    duck.close();
  }
  // The same input as logs does not decode: reported, exit 1.
  const wrong = await cli("convert", "--out", outDir(), "--signal", "logs", input);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /cannot decode logs request/);
});

Deno.test("convert: running twice writes the same keys (a rerun overwrites, never duplicates)", async () => {
  const out = outDir();
  assert.equal((await cli("convert", "--out", out, join(DATA, "logs.pb"))).code, 0);
  const first = files(out);
  assert.equal((await cli("convert", "--out", out, join(DATA, "logs.pb"))).code, 0);
  assert.deepEqual(files(out), first);
});

Deno.test("convert: the same records make the same file names, also within one run", async () => {
  // logs.pb and logs.jsonl hold the same 81 records: the second input rewrites the first one's files.
  const out = outDir();
  const run = await cli("convert", "--out", out, join(DATA, "logs.pb"), join(DATA, "logs.jsonl"));
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /total: 2 inputs, 12 files, 162 rows/);
  assert.equal(files(out).length, 6);
});

Deno.test("usage errors exit with 2 and say what is wrong", async () => {
  const cases: [string[], RegExp][] = [
    [["convert", join(DATA, "logs.pb")], /required option '--out <dir>'/],
    [["convert", "--out", outDir()], /missing required argument 'files'/],
    [["convert", "--out", outDir(), "--signal", "spans", join(DATA, "logs.pb")], /--signal.*spans.*invalid/i],
    [["convert", "--out", outDir(), "--compression", "brotli", join(DATA, "logs.pb")], /brotli/],
    [["schema"], /Usage: otlp2parquet schema/],
    [["schema", "sql"], /unknown command 'sql'/],
  ];
  for (const [args, message] of cases) {
    const run = await cli(...args);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message, args.join(" "));
  }
  const help = await cli("convert", "--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--instance-id <id>/);
});

Deno.test("schema clickhouse prints the tables' DDL; schema arrow every column and its Arrow type", async () => {
  const ddl = await cli("schema", "clickhouse");
  assert.equal(ddl.code, 0);
  assert.equal(ddl.stdout, clickhouseDdl());
  const arrow = await cli("schema", "arrow");
  assert.equal(arrow.code, 0);
  for (const t of TABLES) {
    assert.ok(arrow.stdout.includes(`${t.name} (${t.path}/)`), t.name);
    for (const c of t.columns) {
      assert.match(arrow.stdout, new RegExp(`\\n {2}${c.name.replace(".", "\\.")} +\\S`));
    }
  }
  assert.match(arrow.stdout, /\n {2}Timestamp +Timestamp<NANOSECOND, UTC> +not null +DateTime64\(9\)\n/);
  assert.match(
    arrow.stdout,
    /\n {2}LogAttributes +Map<Utf8, Utf8> +not null +Map\(LowCardinality\(String\), String\)\n/,
  );
  assert.match(arrow.stdout, /\n {2}Events\.Attributes +List<Map<Utf8, Utf8>> +not null/);
  const json = JSON.parse((await cli("schema", "arrow", "--json")).stdout);
  assert.deepEqual(json.map((t: { table: string }) => t.table), TABLES.map((t) => t.name));
});
