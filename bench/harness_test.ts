import assert from "node:assert/strict";
import { decodeRequest } from "../src/core/convert.ts";
import { initParquet, rowsToParquet } from "../src/core/parquet/parquet.ts";
import { encodeProtobuf, generateLogs } from "./data.ts";
import { countRows, type E2eResult, e2eTable, processTree, statusKb } from "./e2e.ts";
import { quantile, runLoad } from "./loadgen.ts";
import { sizeTable, stageRows, stageTables } from "./main.ts";
import { hotFiles, hotFunctions } from "./profile.ts";
import { gzipSync } from "node:zlib";
import { prepareParquet } from "../src/platforms/wasm.ts";
import { acceptOnly } from "./accept_server.ts";
import { parallelCost } from "./parallel_cost.ts";
import { cpuSplit, statCpuSeconds } from "./proc_stat.ts";
import {
  amdahl,
  amdahlRows,
  amdahlTable,
  fmt,
  fullTable,
  latencyTable,
  runScaling,
  scalingMarkdown,
  type ScalingReport,
  scalingTable,
  windowCpu,
} from "./scaling.ts";
import { walCeiling } from "./wal_ceiling.ts";

/** A loopback OTLP endpoint that decodes every body with the core; every `failEvery`-th request gets 503. */
function decodingServer(failEvery = 0) {
  let seen = 0, records = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    seen++;
    let bytes = new Uint8Array(await req.arrayBuffer());
    if (req.headers.get("content-encoding") === "gzip") {
      const inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      bytes = new Uint8Array(await new Response(inflated).arrayBuffer());
    }
    if (failEvery && seen % failEvery === 0) return new Response("busy", { status: 503 });
    const json = req.headers.get("content-type") === "application/json";
    records += decodeRequest("logs", bytes, { format: json ? "json" : "protobuf" }).records;
    return new Response(new Uint8Array(0), { status: 200 });
  });
  return { server, url: `http://127.0.0.1:${server.addr.port}/v1/logs`, stats: () => ({ seen, records }) };
}

Deno.test("runLoad() sends bounded, decodable requests and counts acknowledged records", async () => {
  for (const variant of ["protobuf", "json", "protobuf+gzip"] as const) {
    const s = decodingServer();
    try {
      const r = await runLoad({
        url: s.url,
        variant,
        records: 40,
        concurrency: 2,
        maxRequests: 6,
        duration: 30,
        pool: 2,
      });
      assert.equal(r.requests, 6);
      assert.deepEqual(r.statuses, { "200": 6 });
      assert.equal(r.ackedRecords, 240);
      assert.equal(s.stats().records, 240, "the server decoded every record sent");
      assert.ok(r.latencyMs.p50 > 0 && r.latencyMs.p99 >= r.latencyMs.p50);
      assert.ok(r.rawBytes >= r.wireBytes, variant);
    } finally {
      await s.server.shutdown();
    }
  }
});

Deno.test("runLoad() counts refusals by status and leaves them out of the acknowledged records", async () => {
  const s = decodingServer(3);
  try {
    const r = await runLoad({
      url: s.url,
      records: 10,
      concurrency: 1,
      maxRequests: 9,
      duration: 30,
      pool: 1,
    });
    assert.deepEqual(r.statuses, { "200": 6, "503": 3 });
    assert.equal(r.ackedRecords, 60);
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("runLoad() stops at the duration", async () => {
  const s = decodingServer();
  try {
    const r = await runLoad({
      url: s.url,
      records: 10,
      concurrency: 1,
      maxRequests: 100_000,
      duration: 0.3,
      pool: 1,
    });
    assert.ok(r.seconds < 5, `${r.seconds} s`);
    assert.ok(r.requests < 100_000);
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("runLoad() refuses targets off the loopback interface", async () => {
  await assert.rejects(runLoad({ url: "http://192.0.2.1:4318/v1/logs", maxRequests: 1 }), RangeError);
});

Deno.test("quantile() takes the nearest rank", () => {
  const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  assert.equal(quantile(xs, 0.5), 5);
  assert.equal(quantile(xs, 0.99), 10);
  assert.equal(quantile([], 0.5), 0);
});

Deno.test("processTree() and statusKb() see a child process and its memory", async () => {
  const child = new Deno.Command("sleep", { args: ["5"] }).spawn();
  try {
    assert.ok(processTree(Deno.pid).includes(child.pid));
    assert.ok(statusKb(Deno.pid, "VmRSS") > 1000);
    assert.ok(statusKb(Deno.pid, "VmHWM") >= statusKb(Deno.pid, "VmRSS"));
  } finally {
    child.kill();
    await child.status;
  }
});

Deno.test("countRows() counts the rows of Parquet files with DuckDB", async () => {
  initParquet(
    Deno.readFileSync(new URL("../node_modules/parquet-wasm/esm/parquet_wasm_bg.wasm", import.meta.url)),
  );
  const dir = await Deno.makeTempDir();
  try {
    const files = [];
    for (const n of [120, 35]) {
      const rows = decodeRequest("logs", encodeProtobuf("logs", generateLogs(n, { seed: n })), {
        format: "protobuf",
      });
      const path = `${dir}/f${n}.parquet`;
      Deno.writeFileSync(path, rowsToParquet(rows.tables[0]));
      files.push(path);
    }
    assert.equal(await countRows(files), 155);
    assert.equal(await countRows([]), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2eTable() shows ratios only where both servers acknowledged records", () => {
  const load = (rps: number) => ({
    recordsPerSecond: rps,
    ackedRecords: rps * 10,
    recordsPerRequest: 5000,
    statuses: { "200": 10 },
    rawMBps: 1,
    latencyMs: { p50: 1, p90: 1, p99: 2, max: 3, mean: 1 },
  });
  const r = (server: string, variant: string, rps: number): E2eResult =>
    ({
      server,
      variant,
      status: "ok",
      load: load(rps),
      e2eRecordsPerSecond: rps,
      peakRssMB: 100,
    }) as unknown as E2eResult;
  const md = e2eTable([
    r("ours", "protobuf", 200),
    r("rust", "protobuf", 100),
    r("ours", "json", 5),
    r("rust", "json", 0),
  ]);
  assert.match(md, /\| protobuf \| 2\.00 \| 2\.00 \| 1\.00 \|/);
  assert.doesNotMatch(md, /\| json \| [\d.]+ \|/);
  assert.match(e2eTable([{ server: "ours", variant: "json", status: "pending server" }]), /pending server/);
});

Deno.test("stageTables() and sizeTable() turn timings into MB/s and ratios", () => {
  const meta = {
    benches: {
      "logs 1k: protobuf decode": {
        signal: "logs" as const,
        records: 1000,
        stage: "protobuf decode",
        bytes: 2_000_000,
      },
    },
    sizes: {
      "logs 1k": {
        signal: "logs" as const,
        records: 1000,
        protobuf: 300_000,
        json: 600_000,
        parquet: 30_000,
      },
    },
    skipped: [],
  };
  const bench = {
    benches: [{ name: "logs 1k: protobuf decode", group: "logs 1k", results: [{ ok: { avg: 10e6, n: 5 } }] }],
  };
  const md = stageTables(stageRows(bench, meta));
  assert.match(md, /\| protobuf decode \| 10 ms · 200 MB\/s · 0\.10 M\/s \|/);
  assert.match(sizeTable(meta), /\| logs 1k \| 300,000 \| 300 \| 600,000 \| 30,000 \| 10\.0x \|/);
});

Deno.test("hotFunctions() sums self time per function from CPU profile samples", () => {
  const node = (id: number, name: string, url: string) => ({
    id,
    callFrame: { functionName: name, url, lineNumber: 9 },
  });
  const profile = {
    nodes: [
      node(1, "decode", "file:///x/a.ts"),
      node(2, "", "wasm://wasm/1"),
      node(3, "decode", "file:///x/a.ts"),
    ],
    startTime: 0,
    endTime: 4000,
    samples: [1, 2, 3, 1],
    timeDeltas: [0, 1000, 1000, 1000],
  };
  const hot = hotFunctions(profile);
  assert.equal(hot[0].name, "decode");
  assert.equal(hot[0].selfMs, 2);
  assert.equal(hot[0].where, "file:///x/a.ts:10");
  assert.deepEqual(hotFiles(hot).map((f) => f.file), ["file:///x/a.ts", "parquet-wasm (wasm code)"]);
});

Deno.test("runScaling() runs one cell closed and open against our server and reports it in every table", async () => {
  const workDir = await Deno.makeTempDir({ prefix: "scaling_test_" });
  try {
    const lines: string[] = [];
    const report = await runScaling({
      servers: ["ours-w1"],
      signals: ["logs"],
      variants: ["protobuf"],
      duration: 1,
      records: 200,
      concurrency: 2,
      openConcurrency: 4,
      openWarmup: 1,
      closedWarmup: 1,
      openWarmupMax: 3,
      ceilings: false,
      workDir,
      progress: (l) => lines.push(l),
    });
    assert.equal(report.runs.length, 2);
    assert.equal(lines.length, 2, "a progress line per run");
    const [closed, open] = report.runs;
    assert.equal(closed.mode, "closed");
    assert.equal(open.mode, "open");
    for (const r of report.runs) {
      assert.equal(r.status, "ok", r.status);
      assert.ok(r.load!.acknowledgedRecords > 0);
      // The warm-ups are acknowledged too: their records are in Parquet as well.
      const warm = r.warmup?.acknowledgedRecords ?? 0;
      assert.equal(
        r.rowsWritten,
        r.load!.acknowledgedRecords + warm,
        "every acknowledged record is in Parquet",
      );
      assert.ok(r.peakRssMB! > 10 && r.peakRssMB! < 4000, `${r.peakRssMB} MB`);
      assert.ok(r.cpu && r.cpu.window > 0 && r.cpu.total >= r.cpu.main, JSON.stringify(r.cpu));
    }
    assert.equal(closed.warmup?.seconds, 1);
    assert.ok(closed.warmup!.acknowledgedRecords > 0, "the closed loop ran its warm-up first");
    assert.equal(closed.warmup!.statuses?.["200"], closed.warmup!.acknowledgedRecords / 200);
    assert.ok(closed.warmup!.recordsPerSecond! > 0);
    // 200-record requests for 3 s cut no batch: the warm-up went on (2 s more) looking for a Parquet file.
    assert.equal(open.warmup?.seconds, 3);
    // Its answers and rate cover all of it, the 2 s it went on included.
    assert.equal(open.warmup!.statuses?.["200"], open.warmup!.acknowledgedRecords / 200);
    assert.equal(open.warmup!.recordsPerSecond, open.warmup!.acknowledgedRecords / 3);
    assert.ok(open.warmup!.acknowledgedRecords > 0, "the open loop ran its warm-up first");
    // The open loop offers 70 % of the closed-loop rate.
    assert.equal(open.targetRate, Math.round(closed.load!.recordsPerSecond * 0.7));
    const full = fullTable(report).split("\n");
    assert.equal(full.length, 3, "header, rule, one row");
    assert.equal(full[2].split(" | ").length, full[0].split(" | ").length, "the row has every column");
    assert.match(full[2], /^\| logs \| protobuf \| ours, 1 worker \| [\d,]+ \|/);
    assert.match(full[2], / ✓ \|/);
    const scaling = scalingTable(report).split("\n");
    assert.equal(scaling.length, 3);
    assert.match(scaling[2], /^\| logs \| protobuf \| – \| – \| – \| [\d,]+ \| – \| – \| – \| – \|$/);
    assert.match(latencyTable(report), /\| logs \| protobuf \| – \|/);
    const warm = scalingTable(report, "warmup").split("\n");
    assert.equal(warm[2], scaling[2].replace(/[\d,]{2,}/, fmt(closed.warmup!.recordsPerSecond!)));
    const md = scalingMarkdown(report, "test");
    assert.match(md, /### Every run/);
    assert.match(md, /1 s after 1 s of the same load not measured/);
    assert.match(md, /first 1 s \(the closed loop's warm-up\)/);
  } finally {
    await Deno.remove(workDir, { recursive: true });
  }
});

Deno.test("windowCpu() takes the samples around the load window", () => {
  const split = (total: number, main: number) => ({ total, main, workers: 0, other: total - main });
  const samples = [0, 1, 2, 3, 4].map((i) => ({
    t: 1000 + i * 100,
    server: split(i * 0.1, i * 0.05),
    loadgen: i,
  }));
  const w = windowCpu(samples, 1150, 1250)!;
  assert.equal(w.server.window, 0.2);
  assert.ok(Math.abs(w.server.total - 0.2) < 1e-9);
  assert.ok(Math.abs(w.server.main - 0.1) < 1e-9);
  assert.equal(w.loadgen, 2);
  assert.equal(windowCpu(samples.slice(0, 1), 0, 1), undefined);
});

Deno.test("statCpuSeconds() reads utime + stime after a command name with spaces and parentheses", () => {
  const stat = "4242 (V8 Default (x)) S 1 2 3 0 -1 4194368 10 0 0 0 250 37 0 0 20 0 9 0 100 1000 50";
  assert.equal(statCpuSeconds(stat), 2.87);
  assert.equal(statCpuSeconds(""), 0);
  const me = cpuSplit(Deno.pid);
  assert.ok(me.total >= me.main && me.main > 0);
});

Deno.test("amdahl() and amdahlTable(): serial and parallel parts give the speedup and the estimate", () => {
  assert.equal(amdahl(1, 3, 1), 1);
  assert.ok(Math.abs(amdahl(1, 3, 8) - 1 / (0.25 + 0.75 / 8)) < 1e-12);
  assert.ok(amdahl(1, 3, 1e9) < 4.0001, "bounded by 1/f");
  const report = {
    options: { signals: ["logs"], variants: ["protobuf"], records: 5000, jsonRecords: 3000, concurrency: 8 },
    runs: [{
      server: "ours-w2",
      signal: "logs",
      variant: "protobuf",
      mode: "closed",
      status: "ok",
      load: { acknowledgedRecords: 1_000_000, recordsPerSecond: 100_000, seconds: 10 },
      cpu: { total: 15, main: 5, workers: 8, other: 2, window: 10 },
    }, {
      server: "ours-w1-pinned",
      signal: "logs",
      variant: "protobuf",
      mode: "closed",
      status: "ok",
      load: { acknowledgedRecords: 800_000, recordsPerSecond: 80_000, seconds: 10 },
    }],
    accept: [],
    wal: [],
    parallel: [{ signal: "logs", format: "protobuf", recordsPerRequest: 5000, decodeUs: 5, encodeUs: 10 }],
  } as unknown as ScalingReport;
  const [row] = amdahlRows(report);
  assert.equal(row.serialUs, 5, "5 s of main thread for 1M records");
  assert.equal(row.parallelUs, 15);
  assert.equal(row.ceiling, 200_000);
  assert.match(
    amdahlTable(report),
    /\| logs \| protobuf \| 5\.00 \| – \| – \| – \| 15\.00 \| 0\.25 \| 80,000 \| 2\.91 \| 200,000 \|/,
  );
  // Without worker threads at work, s is the sum of the ceilings: accept + body read and the WAL.
  const noWorkers = {
    ...report,
    runs: report.runs.map((r) => ({ ...r, cpu: r.cpu && { ...r.cpu, main: 13, workers: 0 } })),
    accept: [{
      server: "accept-only",
      signal: "logs",
      variant: "protobuf",
      mode: "closed",
      status: "ok",
      recordsPerRequest: 5000,
      load: { statuses: { "200": 100 }, seconds: 10, acknowledgedRecords: 500_000 },
      cpu: { total: 1, main: 1, workers: 0, other: 0, window: 10 },
    }],
    wal: [{ label: "logs protobuf", appenders: 8, records: 5000, mainMsPerAppend: 5 }],
  } as unknown as ScalingReport;
  const [sum] = amdahlRows(noWorkers);
  assert.equal(sum.acceptUs, 2, "1 s of CPU for 100 requests of 5,000 records");
  assert.equal(sum.walUs, 1);
  assert.equal(sum.serialUs, 3);
  assert.match(sum.serialSource, /accept \+ body read \+ WAL/);
  assert.match(
    amdahlTable(noWorkers),
    /\| logs \| protobuf \| 3\.00 \| 2\.00 \| 1\.00 \| – \|/,
    "no rest when s is their sum",
  );
});

Deno.test("the accept-only server reads bodies as the server does and answers OTLP success", async () => {
  const body = new Uint8Array(gzipSync(new Uint8Array(100_000).fill(7)));
  const ok = await acceptOnly(
    new Request("http://x/v1/logs", {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
    }),
  );
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), "{}");
  const bad = await acceptOnly(
    new Request("http://x/v1/logs", {
      method: "POST",
      body: body.subarray(0, 50),
      headers: { "content-encoding": "gzip" },
    }),
  ).catch((e) => e);
  assert.ok(bad instanceof SyntaxError, "a truncated gzip body is refused");
  assert.equal((await acceptOnly(new Request("http://x/v1/nope", { method: "POST", body }))).status, 404);
});

Deno.test("walCeiling() appends with group commit and counts what it wrote", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wal_ceiling_test_" });
  try {
    const r = await walCeiling(dir, { label: "t", bytes: 10_000, records: 7 }, 4, 0.3);
    assert.ok(r.appends > 0);
    assert.ok(r.groups >= 1 && r.groups <= r.appends);
    assert.ok(Math.abs(r.recordsPerSecond - r.appendsPerSecond * 7) <= r.recordsPerSecond * 0.01 + 1);
    assert.ok(r.mbPerSecond > 0);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "the log is removed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parallelCost() decodes and encodes every record of its requests", async () => {
  await prepareParquet("zstd");
  const r = await parallelCost("logs", "protobuf", { records: 300, requests: 3, rounds: 1 });
  assert.equal(r.recordsPerRequest, 300);
  assert.ok(r.batchRecords > 0 && r.batchRecords <= 900, `${r.batchRecords}`);
  assert.ok(r.decodeUs >= 0 && r.encodeUs >= 0 && Number.isFinite(r.decodeUs + r.encodeUs));
});
