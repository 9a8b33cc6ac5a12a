/**
 * `GET /metrics` against real peers: a real server on loopback receives a known mix of requests (records
 * of all three signals, a partial_success rejection of each kind, a wrong path, an oversized body, an
 * invalid body, an unsupported content type), then
 *
 * - Debian's `promtool check metrics` must parse and lint the scraped text with no problem;
 * - a real Prometheus server (Debian's `prometheus`) scrapes it on loopback, and its HTTP API must report
 *   counters equal to what the test sent and had refused.
 *
 * Also: the refused requests are logged at `warn` with their details, a burst of 1000 refusals gives a
 * bounded number of lines plus a summary with the exact count, `/metrics` stays open when a token is
 * required, and the single executable's runtime (Bun) serves the same metrics. Without the `prometheus`
 * package (installed by `.ci/run`), the tests that need it are skipped with a message.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import zlib from "node:zlib";
import { spawnServer } from "./reliability/server_process.ts";
import { startTestServer } from "./support/server.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const HOUR_NS = BigInt(Date.UTC(2025, 2, 14, 15, 0)) * 1_000_000n;

function found(command: string): boolean {
  return spawnSync(command, ["--version"], { encoding: "utf8" }).status === 0;
}
const HAVE_PROMTOOL = found("promtool");
const HAVE_PROMETHEUS = found("prometheus");
if (!HAVE_PROMTOOL || !HAVE_PROMETHEUS) {
  console.warn(
    "metrics_test: Debian's prometheus package is not installed (promtool/prometheus missing): the tests " +
      "that scrape with a real Prometheus are skipped; .ci/run installs it (apt-get install prometheus)",
  );
}

function logsJson(services: [string, number][]): Uint8Array {
  return utf8(JSON.stringify({
    resourceLogs: services.map(([service, n]) => ({
      resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
      scopeLogs: [{
        logRecords: Array.from({ length: n }, (_, i) => ({
          timeUnixNano: String(HOUR_NS + BigInt(i)),
          body: { stringValue: `${service} record ${i}` },
        })),
      }],
    })),
  }));
}

function tracesJson(n: number): Uint8Array {
  const hex = (i: number, len: number) => (i + 1).toString(16).padStart(len, "0");
  return utf8(JSON.stringify({
    resourceSpans: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "svc-t" } }] },
      scopeSpans: [{
        spans: Array.from({ length: n }, (_, i) => ({
          traceId: hex(i, 32),
          spanId: hex(i, 16),
          name: `span ${i}`,
          startTimeUnixNano: String(HOUR_NS + BigInt(i)),
          endTimeUnixNano: String(HOUR_NS + BigInt(i) + 1000n),
        })),
      }],
    }],
  }));
}

/** A gauge with one data point per value; `undefined` is a point without a value (refused as invalid). */
function gaugeJson(values: (number | undefined)[]): Uint8Array {
  return utf8(JSON.stringify({
    resourceMetrics: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "svc-m" } }] },
      scopeMetrics: [{
        metrics: [{
          name: "queue.depth",
          gauge: {
            dataPoints: values.map((v, i) => ({
              timeUnixNano: String(HOUR_NS + BigInt(i)),
              ...(v === undefined ? {} : { asDouble: v }),
            })),
          },
        }],
      }],
    }],
  }));
}

async function post(
  url: string,
  body: Uint8Array,
  headers: Record<string, string> = { "content-type": "application/json" },
): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers });
  return { status: res.status, body: await res.text() };
}

/** The samples of an exposition text, `name{labels}` → value (labels as written). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

function promtoolCheck(text: string): { status: number | null; output: string } {
  const run = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  return { status: run.status, output: (run.stdout + run.stderr).trim() };
}

/** What the test sends, and what the server must count. */
const SENT = {
  accepted: { logs: 5 + 4, traces: 3, metrics: 3 },
  rejected: { "logs/partitions_limit": 1, "metrics/invalid": 1 },
};

/** Sends the known mix; returns nothing, asserts the answers on the way. */
async function sendMix(url: string): Promise<void> {
  // 3 partitions (services) with a cap of 2: the smallest (svc-c, 1 record) is refused in partial_success.
  const capped = await post(`${url}/v1/logs`, logsJson([["svc-a", 3], ["svc-b", 2], ["svc-c", 1]]));
  assert.equal(capped.status, 200);
  assert.equal(JSON.parse(capped.body).partialSuccess.rejectedLogRecords, "1");
  const gz = await post(`${url}/v1/logs`, new Uint8Array(zlib.gzipSync(logsJson([["svc-a", 4]]))), {
    "content-type": "application/json",
    "content-encoding": "gzip",
  });
  assert.deepEqual(gz, { status: 200, body: "{}" });
  assert.deepEqual(await post(`${url}/v1/traces`, tracesJson(3)), { status: 200, body: "{}" });
  const gauge = await post(`${url}/v1/metrics`, gaugeJson([1, undefined, 3, 4]));
  assert.equal(gauge.status, 200);
  assert.equal(JSON.parse(gauge.body).partialSuccess.rejectedDataPoints, "1");
  // Refused whole: a wrong path, a body over the limit, a body that does not decode, a content type.
  assert.equal((await post(`${url}/v1/log`, logsJson([["svc-a", 2]]))).status, 404);
  assert.equal((await post(`${url}/v1/logs`, new Uint8Array(200_000))).status, 413);
  assert.equal((await post(`${url}/v1/logs`, utf8("this is not json"))).status, 400);
  assert.equal((await post(`${url}/v1/logs`, utf8("x"), { "content-type": "text/plain" })).status, 415);
}

const SERVER_ENV = {
  OTLP2PARQUET_BATCH_MAX_PARTITIONS_PER_REQUEST: "2",
  OTLP2PARQUET_MAX_PAYLOAD_BYTES: "100000",
};

Deno.test({
  name: "the metrics count exactly what was sent and refused; promtool lints them clean",
  ignore: !HAVE_PROMTOOL,
  async fn() {
    const t = await startTestServer({ env: SERVER_ENV });
    try {
      await sendMix(t.url);
      const before = await fetch(`${t.url}/metrics`);
      assert.equal(before.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
      const text = await before.text();
      assert.deepEqual(promtoolCheck(text), { status: 0, output: "" });
      const s = samples(text);
      for (const [signal, n] of Object.entries(SENT.accepted)) {
        assert.equal(s.get(`otlp2parquet_records_accepted_total{signal="${signal}"}`), n, signal);
      }
      assert.equal(s.get('otlp2parquet_records_rejected_total{signal="logs",reason="partitions_limit"}'), 1);
      assert.equal(s.get('otlp2parquet_records_rejected_total{signal="metrics",reason="invalid"}'), 1);
      assert.equal(s.get('otlp2parquet_records_rejected_total{signal="traces",reason="invalid"}'), 0);
      const requests = [...s].filter(([k]) => k.startsWith("otlp2parquet_requests_total"));
      assert.deepEqual(
        new Map(requests),
        new Map([
          ['otlp2parquet_requests_total{signal="logs",status="200",encoding="identity"}', 1],
          ['otlp2parquet_requests_total{signal="logs",status="200",encoding="gzip"}', 1],
          ['otlp2parquet_requests_total{signal="traces",status="200",encoding="identity"}', 1],
          ['otlp2parquet_requests_total{signal="metrics",status="200",encoding="identity"}', 1],
          ['otlp2parquet_requests_total{signal="none",status="404",encoding="identity"}', 1],
          ['otlp2parquet_requests_total{signal="logs",status="413",encoding="identity"}', 1],
          ['otlp2parquet_requests_total{signal="logs",status="400",encoding="identity"}', 1],
          ['otlp2parquet_requests_total{signal="logs",status="415",encoding="identity"}', 1],
        ]),
      );
      const refused = [...s].filter(([k]) => k.startsWith("otlp2parquet_requests_refused_total"));
      assert.deepEqual(
        new Map(refused),
        new Map([
          ['otlp2parquet_requests_refused_total{signal="none",reason="not_found"}', 1],
          ['otlp2parquet_requests_refused_total{signal="logs",reason="too_large"}', 1],
          ['otlp2parquet_requests_refused_total{signal="logs",reason="invalid"}', 1],
          ['otlp2parquet_requests_refused_total{signal="logs",reason="unsupported_media_type"}', 1],
        ]),
      );
      // Logs bodies read: the two accepted and the invalid one (the 413 went by its length, the 415 unread).
      assert.equal(s.get('otlp2parquet_request_body_bytes_count{signal="logs"}'), 3);
      assert.equal(s.get('otlp2parquet_request_decompressed_body_bytes_count{signal="logs"}'), 3);
      assert.equal(s.get('otlp2parquet_request_duration_seconds_count{signal="logs"}'), 5);
      // Held now: open batches per table (flushed only at stop here), the log.
      assert.equal(s.get('otlp2parquet_open_batch_rows{table="otel_logs"}'), 9);
      assert.equal(s.get('otlp2parquet_open_batches{table="otel_logs"}'), 2);
      assert.equal(s.get('otlp2parquet_open_batch_rows{table="otel_traces"}'), 3);
      assert.equal(s.get('otlp2parquet_open_batch_rows{table="otel_metrics_gauge"}'), 3);
      assert.ok(s.get("otlp2parquet_wal_bytes")! > 0 && s.get("otlp2parquet_wal_segments")! >= 1);
      assert.equal(s.get('otlp2parquet_written_objects_total{table="otel_logs"}'), 0);

      await t.server.ingest.flushAll();
      const after = samples(await (await fetch(`${t.url}/metrics`)).text());
      assert.equal(after.get('otlp2parquet_open_batch_rows{table="otel_logs"}'), 0);
      assert.equal(after.get('otlp2parquet_flushes_total{table="otel_logs",reason="shutdown"}'), 2);
      assert.equal(after.get('otlp2parquet_written_objects_total{table="otel_logs"}'), 2);
      assert.equal(after.get('otlp2parquet_written_rows_total{table="otel_logs"}'), 9);
      assert.equal(after.get('otlp2parquet_written_rows_total{table="otel_traces"}'), 3);
      assert.equal(after.get('otlp2parquet_written_rows_total{table="otel_metrics_gauge"}'), 3);
      assert.equal(after.get('otlp2parquet_flush_duration_seconds_count{table="otel_logs"}'), 2);
      assert.ok(after.get('otlp2parquet_written_bytes_total{table="otel_logs"}')! > 0);
      assert.equal(after.get("otlp2parquet_store_errors_total"), 0);
      // The first scrape is counted by the second.
      assert.equal(
        after.get('otlp2parquet_requests_total{signal="none",status="200",encoding="identity"}'),
        1,
      );

      // Every refusal is in the log, at warn, with the details an operator needs.
      const refusals = t.logs.filter((l) => l.includes("refused a request"));
      assert.equal(refusals.length, 4);
      const notFound = refusals.find((l) => l.includes("status=404"))!;
      assert.match(notFound, / WARN .*path=\/v1\/log .*refusal=not_found reason="no such path \/v1\/log:/);
      assert.match(notFound, /contentType=application\/json .*contentLength=\d+ .*client=127\.0\.0\.1:\d+/);
      const tooLarge = refusals.find((l) => l.includes("status=413"))!;
      assert.match(tooLarge, /refusal=too_large reason=".*100000.*" .*contentLength=200000/);
    } finally {
      await t.dispose();
    }
  },
});

/** A free loopback port (closed again; Prometheus takes it a moment later). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(api: string, q: string): Promise<Sample[]> {
  const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = await res.json();
  if (body.status !== "success") throw new Error(`query ${q}: ${JSON.stringify(body)}`);
  return body.data.result;
}

Deno.test({
  name: "a real Prometheus scrapes /metrics on loopback and reports the counts sent",
  ignore: !HAVE_PROMETHEUS,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = await startTestServer({ env: SERVER_ENV });
    const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-prometheus-"));
    let prometheus: Deno.ChildProcess | undefined;
    try {
      await sendMix(t.url);
      const target = new URL(t.url).host;
      const config = join(dir, "prometheus.yml");
      writeFileSync(
        config,
        [
          "global:",
          "  scrape_interval: 1s",
          "  scrape_timeout: 1s",
          "scrape_configs:",
          "  - job_name: otlp2parquet",
          "    static_configs:",
          `      - targets: ["${target}"]`,
          "",
        ].join("\n"),
      );
      const port = freePort();
      prometheus = new Deno.Command("prometheus", {
        args: [
          `--config.file=${config}`,
          `--storage.tsdb.path=${join(dir, "tsdb")}`,
          `--web.listen-address=127.0.0.1:${port}`,
          "--log.level=warn",
        ],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const stderr = (async () => {
        let text = "";
        for await (const chunk of prometheus!.stderr.pipeThrough(new TextDecoderStream())) text += chunk;
        return text;
      })();
      const api = `http://127.0.0.1:${port}`;
      // Wait (counted attempts, not a timed assertion) until a scrape of the server has been stored.
      let up: Sample[] = [];
      for (let i = 0; i < 300 && up.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 200));
        try {
          up = await query(api, 'up{job="otlp2parquet"} == 1');
        } catch {
          // not listening yet
        }
      }
      assert.equal(up.length, 1, `Prometheus never scraped the server`);

      const accepted = await query(api, "otlp2parquet_records_accepted_total");
      assert.deepEqual(
        Object.fromEntries(accepted.map((r) => [r.metric.signal, Number(r.value[1])])),
        SENT.accepted,
      );
      const rejected = await query(api, "otlp2parquet_records_rejected_total > 0");
      assert.deepEqual(
        Object.fromEntries(
          rejected.map((r) => [`${r.metric.signal}/${r.metric.reason}`, Number(r.value[1])]),
        ),
        SENT.rejected,
      );
      const refused = await query(api, 'sum by (status) (otlp2parquet_requests_total{status!~"2.."})');
      assert.deepEqual(
        Object.fromEntries(refused.map((r) => [r.metric.status, Number(r.value[1])])),
        { "400": 1, "404": 1, "413": 1, "415": 1 },
      );
      // What Prometheus scraped is exactly what the exposition holds: the labels survive escaping.
      const tables = await query(api, "otlp2parquet_open_batch_rows > 0");
      assert.deepEqual(
        Object.fromEntries(tables.map((r) => [r.metric.table, Number(r.value[1])])),
        { otel_logs: 9, otel_traces: 3, otel_metrics_gauge: 3 },
      );
      prometheus.kill("SIGTERM");
      await prometheus.status;
      const problems = (await stderr).split("\n").filter((l) =>
        /level=(error|warn)/.test(l) && /scrape/i.test(l)
      );
      assert.deepEqual(problems, []);
      prometheus = undefined;
    } finally {
      if (prometheus) {
        try {
          prometheus.kill("SIGKILL");
        } catch {
          // gone
        }
        await prometheus.status;
      }
      await t.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test("a burst of 1000 refused requests logs at most the bound, then a summary with the exact count", async () => {
  const t = await startTestServer();
  try {
    for (let i = 0; i < 1000; i++) {
      const res = await fetch(`${t.url}/wrong/path/${i}`, { method: "POST", body: "x" });
      assert.equal(res.status, 404);
      await res.body?.cancel();
    }
    await t.stop(); // ends the window: its summary is logged
    const lines = t.logs.filter((l) => l.includes("refused a request: 404"));
    const summaries = t.logs.filter((l) => /suppressed \d+ similar refusals/.test(l));
    const suppressed = summaries.reduce((n, l) => n + Number(/suppressed=(\d+)/.exec(l)![1]), 0);
    assert.ok(summaries.length >= 1, "a summary line");
    // 10 lines per 60 s window; a slow machine may see a second window, never more lines per window.
    assert.ok(lines.length <= 10 * summaries.length + 10, `${lines.length} lines`);
    assert.equal(lines.length + suppressed, 1000);
    assert.match(summaries[0], / WARN .*path=other status=404 suppressed=\d+/);
  } finally {
    await t.dispose();
  }
});

Deno.test("with a token required, /metrics stays open and refusals of credentials are counted", async () => {
  const t = await startTestServer({ env: { OTLP2PARQUET_AUTH_TOKEN: "s3cr3t-token-for-metrics" } });
  try {
    assert.equal((await post(`${t.url}/v1/logs`, logsJson([["svc", 1]]))).status, 401);
    const res = await fetch(`${t.url}/metrics`);
    assert.equal(res.status, 200);
    const s = samples(await res.text());
    assert.equal(s.get('otlp2parquet_requests_refused_total{signal="logs",reason="unauthorized"}'), 1);
    assert.match(
      t.logs.find((l) => l.includes("refused a request"))!,
      /status=401 refusal=unauthorized reason="missing credentials/,
    );
  } finally {
    await t.dispose();
  }
});

Deno.test("server.metrics=false: /metrics is 404", async () => {
  const t = await startTestServer({ env: { OTLP2PARQUET_METRICS: "false" } });
  try {
    const res = await fetch(`${t.url}/metrics`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
  } finally {
    await t.dispose();
  }
});

Deno.test({
  name: "the single executable's runtime (Bun.serve) serves the same metrics and logs the client address",
  ignore: !HAVE_PROMTOOL,
  async fn() {
    const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-metrics-bun-"));
    const server = await spawnServer({
      OTLP2PARQUET_STORAGE_PATH: dir,
      OTLP2PARQUET_WAL_DIR: join(dir, ".wal"),
      OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600",
      ...SERVER_ENV,
    }, { runtime: "bun" });
    try {
      await sendMix(server.url);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      assert.deepEqual(promtoolCheck(text), { status: 0, output: "" });
      const s = samples(text);
      for (const [signal, n] of Object.entries(SENT.accepted)) {
        assert.equal(s.get(`otlp2parquet_records_accepted_total{signal="${signal}"}`), n, signal);
      }
      assert.ok(s.get("process_resident_memory_bytes")! > 0);
      assert.match(server.output(), /WARN +refused a request: 404 POST \/v1\/log .*client=127\.0\.0\.1:\d+/);
      assert.equal(await server.stop(), 0);
    } finally {
      await server.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

/** The value of one sample of a server's metrics now. */
async function scrape(url: string, sample: string): Promise<number | undefined> {
  return samples(await (await fetch(`${url}/metrics`)).text()).get(sample);
}

Deno.test("failed object writes are counted as store errors and retries until the write succeeds", async () => {
  const t = await startTestServer();
  try {
    assert.equal((await post(`${t.url}/v1/logs`, logsJson([["svc-a", 2]]))).status, 200);
    // A file where the logs folder must be: every put of a logs object fails (even as root) until it goes.
    writeFileSync(join(t.dir, "logs"), "in the way");
    const flushed = t.server.ingest.flushAll();
    let errors = 0;
    for (let i = 0; i < 500 && errors < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      errors = (await scrape(t.url, "otlp2parquet_store_errors_total"))!;
    }
    assert.ok(errors >= 2, `${errors} store errors counted`);
    assert.equal(await scrape(t.url, 'otlp2parquet_written_objects_total{table="otel_logs"}'), 0);
    assert.equal(await scrape(t.url, "otlp2parquet_pending_bytes") as number > 0, true);
    rmSync(join(t.dir, "logs"));
    await flushed;
    const s = samples(await (await fetch(`${t.url}/metrics`)).text());
    assert.equal(s.get('otlp2parquet_written_objects_total{table="otel_logs"}'), 1);
    assert.equal(s.get('otlp2parquet_written_rows_total{table="otel_logs"}'), 2);
    // Every failure was retried (none abandoned): as many retries as errors.
    assert.equal(s.get("otlp2parquet_store_retries_total"), s.get("otlp2parquet_store_errors_total"));
    assert.ok(s.get("otlp2parquet_store_errors_total")! >= 2);
    assert.equal(s.get("otlp2parquet_pending_bytes"), 0);
  } finally {
    await t.dispose();
  }
});

Deno.test("records replayed from the write-ahead log at start are counted (killed, then restarted)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-metrics-replay-"));
  const env = {
    OTLP2PARQUET_STORAGE_PATH: dir,
    OTLP2PARQUET_WAL_DIR: join(dir, ".wal"),
    OTLP2PARQUET_BATCH_MAX_AGE_SECS: "3600",
  };
  const first = await spawnServer(env);
  try {
    assert.equal((await post(`${first.url}/v1/logs`, logsJson([["svc-a", 4], ["svc-b", 3]]))).status, 200);
    assert.equal((await post(`${first.url}/v1/traces`, tracesJson(2))).status, 200);
    await first.kill(); // SIGKILL: nothing flushed, everything still in the log
    const second = await spawnServer(env);
    try {
      const s = samples(await (await fetch(`${second.url}/metrics`)).text());
      assert.equal(s.get("otlp2parquet_replayed_requests_total"), 2);
      assert.equal(s.get("otlp2parquet_replayed_records_total"), 9);
      assert.equal(s.get('otlp2parquet_open_batch_rows{table="otel_logs"}'), 7);
      // Replayed records were accepted by the first run, not this one.
      assert.equal(s.get('otlp2parquet_records_accepted_total{signal="logs"}'), 0);
      assert.equal(await second.stop(), 0);
    } finally {
      await second.kill();
    }
  } finally {
    await first.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("without batching (each request written before its 200) objects are counted too", async () => {
  const t = await startTestServer({ env: { OTLP2PARQUET_BATCH_ENABLED: "false" } });
  try {
    assert.equal((await post(`${t.url}/v1/logs`, logsJson([["svc-a", 3], ["svc-b", 1]]))).status, 200);
    const s = samples(await (await fetch(`${t.url}/metrics`)).text());
    assert.equal(s.get('otlp2parquet_records_accepted_total{signal="logs"}'), 4);
    assert.equal(s.get('otlp2parquet_written_objects_total{table="otel_logs"}'), 2);
    assert.equal(s.get('otlp2parquet_written_rows_total{table="otel_logs"}'), 4);
    assert.equal(s.get('otlp2parquet_flush_duration_seconds_count{table="otel_logs"}'), 2);
  } finally {
    await t.dispose();
  }
});

const METRICS_DOC = new URL("../docs/metrics.md", import.meta.url);

Deno.test("docs/metrics.md lists every metric the server exposes, with its type, and nothing else", async () => {
  const { ServerMetrics } = await import("../src/observability/server_metrics.ts");
  const exposed = new Map<string, string>();
  for (const line of new ServerMetrics({ residentMemory: () => 1 }).render().split("\n")) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) exposed.set(m[1], m[2]);
  }
  const documented = new Map<string, string>();
  for (const line of Deno.readTextFileSync(METRICS_DOC).split("\n")) {
    const m = /^\| `([a-z0-9_]+)`\s*\| (counter|gauge|histogram)\s*\|/.exec(line);
    if (m) documented.set(m[1], m[2]);
  }
  assert.deepEqual(documented, exposed);
});

Deno.test({
  name: "the alerting rules in docs/metrics.md pass promtool check rules",
  ignore: !HAVE_PROMTOOL,
  fn() {
    const doc = Deno.readTextFileSync(METRICS_DOC);
    const rules = /```yaml\n(groups:[\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(rules, "a ```yaml block starting with groups:");
    const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-rules-"));
    try {
      writeFileSync(join(dir, "rules.yml"), rules);
      const run = spawnSync("promtool", ["check", "rules", join(dir, "rules.yml")], { encoding: "utf8" });
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /SUCCESS: 8 rules found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

Deno.test("records decoded and then refused with their request (write-ahead log full) are counted by reason", async () => {
  const t = await startTestServer({
    env: {
      OTLP2PARQUET_WAL_MAX_BYTES: "65536",
      OTLP2PARQUET_BATCH_MAX_BYTES: "32768",
      OTLP2PARQUET_MAX_PAYLOAD_BYTES: "32768",
    },
  });
  // The store fails every logs write (a file where the folder must be), so nothing leaves the log.
  writeFileSync(join(t.dir, "logs"), "in the way");
  try {
    let accepted = 0, refused = 0, refusedRequests = 0;
    for (let i = 0; i < 40 && refusedRequests < 2; i++) {
      // A new service each time: the same body again would be a retry, answered without being logged.
      const res = await post(`${t.url}/v1/logs`, logsJson([[`svc-${i}`, 50]]));
      if (res.status === 200) accepted += 50;
      else {
        assert.equal(res.status, 503);
        assert.match(res.body, /write-ahead log full/);
        refused += 50, refusedRequests++;
      }
    }
    assert.equal(refusedRequests, 2, "the log filled up");
    const s = samples(await (await fetch(`${t.url}/metrics`)).text());
    assert.equal(s.get('otlp2parquet_records_accepted_total{signal="logs"}'), accepted);
    assert.equal(s.get('otlp2parquet_records_rejected_total{signal="logs",reason="wal_full"}'), refused);
    assert.equal(s.get('otlp2parquet_requests_refused_total{signal="logs",reason="wal_full"}'), 2);
    assert.equal(s.get('otlp2parquet_requests_total{signal="logs",status="503",encoding="identity"}'), 2);
    assert.ok(s.get("otlp2parquet_wal_bytes")! / s.get("otlp2parquet_wal_max_bytes")! > 0.5);
    assert.ok(t.logs.some((l) => / WARN .*status=503 refusal=wal_full reason="write-ahead log full/.test(l)));
  } finally {
    rmSync(join(t.dir, "logs"), { force: true });
    await t.dispose();
  }
});

Deno.test("a resend of an accepted request is counted as deduplicated, and its rows once", async () => {
  const t = await startTestServer();
  try {
    const body = logsJson([["svc-r", 3]]);
    for (let i = 0; i < 3; i++) assert.equal((await post(`${t.url}/v1/logs`, body)).status, 200);
    const s = samples(await (await fetch(`${t.url}/metrics`)).text());
    assert.equal(s.get('otlp2parquet_requests_deduplicated_total{signal="logs"}'), 2);
    assert.equal(s.get('otlp2parquet_requests_deduplicated_total{signal="traces"}'), 0);
    assert.equal(s.get('otlp2parquet_records_accepted_total{signal="logs"}'), 9, "as the client sent them");
    await t.server.ingest.flushAll();
    assert.equal(await scrape(t.url, 'otlp2parquet_written_rows_total{table="otel_logs"}'), 3);
  } finally {
    await t.dispose();
  }
});
