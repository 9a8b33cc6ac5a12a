/**
 * `bench` against the real server (in this process, on loopback): the records it reports acknowledged
 * are the rows the server stored (counted by DuckDB after the server stopped), in both modes, with every
 * encoding and compression, and when the server refuses part of the records in `partial_success`. Also
 * the command itself as a user runs it (`deno run src/cli/main.ts bench --json`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type BenchResult, formatBench, rejectedOf, runBench, signalUrl } from "../src/cli/bench.ts";
import { exportResponse } from "../src/http/otlp_response.ts";
import { openDuckDb } from "./support/duckdb.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DENO = join(ROOT, "node_modules", ".bin", "deno");

const TABLE_GLOB: Record<string, string> = { logs: "logs", traces: "traces", metrics: "metrics" };

/** Rows stored under the server's folder for a signal (after it stopped and flushed). */
async function storedRows(server: TestServer, signal: string): Promise<number> {
  await server.stop();
  const db = await openDuckDb();
  try {
    const [{ n }] = await db.rows(
      `SELECT count(*)::INTEGER AS n FROM read_parquet('${server.dir}/${TABLE_GLOB[signal]}/**/*.parquet')`,
    );
    return Number(n);
  } finally {
    db.close();
  }
}

Deno.test("bench --max: acknowledged records equal the rows stored (protobuf+zstd, JSON+gzip, none)", async () => {
  for (
    const [signal, encoding, compression] of [
      ["logs", "protobuf", "zstd"],
      ["traces", "json", "gzip"],
      ["metrics", "protobuf", "none"],
    ] as const
  ) {
    const server = await startTestServer();
    try {
      const r = await runBench({
        endpoint: server.url,
        signal,
        encoding,
        compression,
        recordsPerRequest: 200,
        concurrency: 4,
        durationSecs: 1,
      });
      assert.equal(r.mode, "max");
      assert.ok(r.requests > 0 && r.statuses["200"] === r.requests, JSON.stringify(r.statuses));
      assert.equal(r.records, r.requests * 200);
      assert.equal(r.acknowledgedRecords, r.records);
      assert.equal(
        await storedRows(server, signal),
        r.acknowledgedRecords,
        `${signal} ${encoding} ${compression}`,
      );
    } finally {
      await server.dispose();
    }
  }
});

Deno.test("bench --rate: open loop sends the scheduled requests; partial_success rejections are not counted", async () => {
  // Records from 56 minutes ago up to now; the server refuses those older than 30 minutes.
  const server = await startTestServer({ env: { OTLP2PARQUET_BATCH_ACCEPT_PAST_SECS: "1800" } });
  try {
    const r = await runBench({
      endpoint: `${server.url}/v1/logs`,
      rate: 2000,
      recordsPerRequest: 100,
      concurrency: 16,
      durationSecs: 2,
    });
    assert.equal(r.mode, "rate");
    // 20 requests/s for 2 s: scheduled at 0, 50, …, 1950 ms.
    assert.equal(r.requests, 40);
    assert.ok(r.rejectedRecords > 0, "some records refused");
    assert.equal(r.acknowledgedRecords, r.records - r.rejectedRecords);
    assert.equal(await storedRows(server, "logs"), r.acknowledgedRecords);
    const text = formatBench(r);
    assert.match(
      text,
      /acked: +[\d,]+ records \(HTTP 200: 40 requests; rejected in partial_success: [\d,]+\)/,
    );
    assert.match(text, /from each request's scheduled send time/);
  } finally {
    await server.dispose();
  }
});

Deno.test("bench: errors by status, and a rate the server cannot take is reported as not reached", async () => {
  // Every request refused: the server wants a token.
  const server = await startTestServer({ env: { OTLP2PARQUET_AUTH_TOKEN: "secret" } });
  try {
    const r = await runBench({
      endpoint: server.url,
      recordsPerRequest: 10,
      durationSecs: 0.5,
      concurrency: 2,
    });
    assert.equal(r.acknowledgedRecords, 0);
    assert.equal(r.statuses["401"], r.requests);
    assert.match(formatBench(r), /errors: +401: \d/);
    const ok = await runBench({
      endpoint: server.url,
      token: "secret",
      recordsPerRequest: 10,
      durationSecs: 0.5,
      concurrency: 2,
    });
    assert.equal(ok.statuses["200"], ok.requests);
  } finally {
    await server.dispose();
  }
  // A server answering after 200 ms, with 1 request in flight allowed: 1000 requests/s cannot be sent.
  const slow = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 200));
    return new Response(null, { status: 503 });
  });
  try {
    const r = await runBench({
      endpoint: `http://127.0.0.1:${slow.addr.port}`,
      rate: 10_000,
      recordsPerRequest: 10,
      concurrency: 1,
      durationSecs: 0.3,
    });
    assert.equal(r.statuses["503"], r.requests);
    assert.ok(r.requests <= 4, `${r.requests} requests: at most one every 200 ms for 0.6 s`);
    assert.equal(r.targetReached, false);
    assert.ok(r.unsentRequests! > 0);
    assert.match(formatBench(r), /target rate: NOT reached: .* never sent/);
  } finally {
    await slow.shutdown();
  }
});

Deno.test("bench: the command prints a JSON summary whose counts match the rows stored", async () => {
  const server = await startTestServer();
  try {
    const out = await new Deno.Command(DENO, {
      args: [
        "run",
        "-A",
        join(ROOT, "src/cli/main.ts"),
        "bench",
        "--endpoint",
        server.url,
        "--signal",
        "traces",
        "--rate",
        "1000",
        "--records-per-request",
        "50",
        "--duration",
        "1",
        "--json",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const r: BenchResult = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(r.requests, 20);
    assert.equal(await storedRows(server, "traces"), r.acknowledgedRecords);
    // Not a terminal: progress comes as plain lines (no carriage returns).
    assert.ok(!new TextDecoder().decode(out.stderr).includes("\r"));
  } finally {
    await server.dispose();
  }
});

Deno.test("bench: URLs and partial_success bodies", () => {
  assert.equal(signalUrl("http://h:4318", "logs").href, "http://h:4318/v1/logs");
  assert.equal(signalUrl("http://h:4318/otlp/", "traces").href, "http://h:4318/otlp/v1/traces");
  assert.equal(signalUrl("http://h/v1/metrics", "logs").href, "http://h/v1/metrics");
  assert.throws(() => signalUrl("h:4318", "logs"), RangeError);
  for (const signal of ["logs", "traces", "metrics"] as const) {
    for (const enc of ["protobuf", "json"] as const) {
      const r = exportResponse(signal, enc, { rejected: 300, message: "too old" });
      assert.equal(rejectedOf(r.body, r.contentType), 300, `${signal} ${enc}`);
      const none = exportResponse(signal, enc);
      assert.equal(rejectedOf(none.body, none.contentType), 0);
    }
  }
});
