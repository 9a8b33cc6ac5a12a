/**
 * `otlp2parquet connect`: the printed configuration is what the clients read. The Collector YAML parses
 * (a strict subset reader, and PyYAML where installed) and wires the `otlp_http` exporter into all three
 * pipelines with the server's address, token reference and payload limit; the `sdk-env` lines, run in a
 * shell, configure the real OpenTelemetry JS SDK, whose records land in the token-protected server's
 * files; Claude Code's variables and Codex's TOML read back as printed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { collectorBatchBytes } from "../src/cli/connect.ts";
import { runCliProcess } from "./support/cli_process.ts";
import { openDuckDb } from "./support/duckdb.ts";
import { listParquet, startTestServer } from "./support/server.ts";
import { parseYamlSubset, type YamlValue } from "./support/yaml_subset.ts";

const TOKEN = "connect-test-token-42";
const ROOT = new URL("..", import.meta.url).pathname;

type Obj = { [key: string]: YamlValue };
const obj = (v: YamlValue | undefined): Obj => {
  assert.ok(
    v !== null && typeof v === "object" && !Array.isArray(v),
    `expected a mapping, got ${JSON.stringify(v)}`,
  );
  return v as Obj;
};

/** PyYAML's reading of the text, or undefined when python3 with PyYAML is not installed. */
async function pyYaml(text: string): Promise<unknown | undefined> {
  let child;
  try {
    child = new Deno.Command("python3", {
      args: ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch {
    return undefined;
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success && /No module named .?yaml/.test(err)) return undefined;
  assert.ok(out.success, `PyYAML refused the YAML: ${err}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Runs `script` in bash with `env` and returns the environment it ends with. */
async function shellEnv(script: string, env: Record<string, string>): Promise<Record<string, string>> {
  const out = await new Deno.Command("bash", {
    args: ["-c", `set -eu\n${script}\nenv -0`],
    env: { PATH: Deno.env.get("PATH") ?? "", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const vars: Record<string, string> = {};
  for (const entry of new TextDecoder().decode(out.stdout).split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) vars[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return vars;
}

Deno.test("connect otel-collector: YAML that parses, with the otlp_http exporter in every pipeline and no secret", async () => {
  const run = await runCliProcess(
    ["connect", "otel-collector", "--endpoint", "http://otlp2parquet.internal:4318/"],
    { env: { OTLP2PARQUET_AUTH_TOKEN: TOKEN, OTLP2PARQUET_MAX_PAYLOAD_BYTES: "4MiB" } },
  );
  assert.equal(run.code, 0, run.stderr);
  assert.ok(!run.stdout.includes(TOKEN), "the token itself is printed");
  const doc = obj(parseYamlSubset(run.stdout));
  const py = await pyYaml(run.stdout);
  if (py === undefined) {
    console.warn("python3 with PyYAML not installed: YAML checked with the subset reader only");
  } else assert.deepEqual(py, doc, "PyYAML reads the YAML differently");

  const exporters = obj(doc.exporters);
  assert.deepEqual(Object.keys(exporters), ["otlp_http/otlp2parquet"]);
  const e = obj(exporters["otlp_http/otlp2parquet"]);
  assert.equal(e.endpoint, "http://otlp2parquet.internal:4318");
  assert.equal(e.encoding, "proto");
  assert.equal(e.compression, "zstd");
  assert.deepEqual(e.headers, { Authorization: "Bearer ${env:OTLP2PARQUET_AUTH_TOKEN}" });
  const retry = obj(e.retry_on_failure);
  assert.equal(retry.enabled, true);
  assert.equal(retry.max_elapsed_time, 0);
  const queue = obj(e.sending_queue);
  assert.equal(queue.enabled, true);
  const batch = obj(queue.batch);
  assert.equal(batch.sizer, "bytes");
  // 4 MiB payload limit: batches of at most half of it.
  assert.equal(batch.max_size, 2 * 1024 * 1024);
  assert.ok((batch.min_size as number) <= (batch.max_size as number));
  assert.deepEqual(collectorBatchBytes(4 * 1024 * 1024), {
    minSize: batch.min_size,
    maxSize: batch.max_size,
  });

  const receivers = Object.keys(obj(doc.receivers));
  const pipelines = obj(obj(doc.service).pipelines);
  assert.deepEqual(Object.keys(pipelines).sort(), ["logs", "metrics", "traces"]);
  for (const [name, p] of Object.entries(pipelines)) {
    assert.deepEqual(obj(p).exporters, ["otlp_http/otlp2parquet"], name);
    for (const r of obj(p).receivers as string[]) {
      assert.ok(receivers.includes(r), `${name}: receiver ${r} undefined`);
    }
  }
});

Deno.test("connect otel-collector: no token configured, no header; --show-token prints it; default endpoint from the listen address", async () => {
  const open = await runCliProcess(["connect", "otel-collector"], {
    env: { OTLP2PARQUET_LISTEN_ADDR: "10.1.2.3:5318" },
  });
  assert.equal(open.code, 0, open.stderr);
  const e = obj(obj(obj(parseYamlSubset(open.stdout)).exporters)["otlp_http/otlp2parquet"]);
  assert.equal(e.endpoint, "http://10.1.2.3:5318");
  assert.equal(e.headers, undefined);
  // The default 64 MiB payload: batches of at most 8 MiB.
  assert.equal(obj(obj(e.sending_queue).batch).max_size, 8 * 1024 * 1024);

  const shown = await runCliProcess(["connect", "otel-collector", "--show-token", "--compression", "gzip"], {
    env: { OTLP2PARQUET_AUTH_TOKEN: TOKEN },
  });
  assert.equal(shown.code, 0, shown.stderr);
  const s = obj(obj(obj(parseYamlSubset(shown.stdout)).exporters)["otlp_http/otlp2parquet"]);
  assert.deepEqual(s.headers, { Authorization: `Bearer ${TOKEN}` });
  assert.equal(s.compression, "gzip");
  // 0.0.0.0 (the default) is shown as loopback, with a note.
  assert.equal(s.endpoint, "http://127.0.0.1:4318");
  assert.match(shown.stdout, /listens on every interface/);
});

Deno.test("connect sdk-env: the printed variables configure the real OpenTelemetry SDK, whose records land in the token-protected server", async () => {
  const server = await startTestServer({ env: { OTLP2PARQUET_AUTH_TOKEN: TOKEN } });
  try {
    const run = await runCliProcess(["connect", "sdk-env", "--endpoint", server.url], {
      env: { OTLP2PARQUET_AUTH_TOKEN: TOKEN },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(!run.stdout.includes(TOKEN));
    const env = await shellEnv(run.stdout, { OTLP2PARQUET_AUTH_TOKEN: TOKEN });
    assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, server.url);
    assert.equal(env.OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf");
    assert.equal(env.OTEL_EXPORTER_OTLP_COMPRESSION, "gzip");
    assert.equal(env.OTEL_EXPORTER_OTLP_HEADERS, `Authorization=Bearer%20${TOKEN}`);
    const otel = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("OTEL_")));
    const sdk = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "tests", "support", "sdk_env_export.ts")],
      cwd: ROOT,
      env: {
        PATH: Deno.env.get("PATH") ?? "",
        HOME: Deno.env.get("HOME") ?? "/tmp",
        ...otel,
        SDK_ENV_LOGS: "3",
      },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(sdk.code, 0, new TextDecoder().decode(sdk.stderr));
    await server.stop();
    const files = await listParquet(server.dir);
    assert.ok(files.length > 0, "no Parquet written");
    const duck = await openDuckDb();
    try {
      const rows = await duck.rows(
        `SELECT ServiceName, count(*)::INTEGER AS n FROM read_parquet('${server.dir}/logs/**/*.parquet') GROUP BY ALL`,
      );
      assert.deepEqual(rows, [{ ServiceName: "sdk-env-test", n: 3 }]);
    } finally {
      duck.close();
    }
  } finally {
    await server.dispose();
  }
});

Deno.test("connect claude-code: telemetry variables and the settings.json block", async () => {
  const run = await runCliProcess(["connect", "claude-code", "--endpoint", "http://127.0.0.1:4318"], {
    env: { OTLP2PARQUET_AUTH_TOKEN: TOKEN },
  });
  assert.equal(run.code, 0, run.stderr);
  const env = await shellEnv(run.stdout, { OTLP2PARQUET_AUTH_TOKEN: TOKEN });
  assert.equal(env.CLAUDE_CODE_ENABLE_TELEMETRY, "1");
  assert.equal(env.OTEL_METRICS_EXPORTER, "otlp");
  assert.equal(env.OTEL_LOGS_EXPORTER, "otlp");
  assert.equal(env.OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf");
  assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, "http://127.0.0.1:4318");
  assert.equal(env.OTEL_EXPORTER_OTLP_HEADERS, `Authorization=Bearer%20${TOKEN}`);
  // The commented settings.json block is JSON once the comment marks are removed.
  const block = run.stdout.split("\n").filter((l) => /^# [{} ]/.test(l)).map((l) => l.slice(2)).join("\n");
  const settings = JSON.parse(block);
  assert.equal(settings.env.CLAUDE_CODE_ENABLE_TELEMETRY, "1");
  assert.equal(settings.env.OTEL_EXPORTER_OTLP_ENDPOINT, "http://127.0.0.1:4318");
});

Deno.test("connect codex: an [otel] table that parses as TOML, with the logs URL and the token only when asked", async () => {
  const shown = await runCliProcess(["connect", "codex", "--show-token", "--endpoint", "http://h:4318"], {
    env: { OTLP2PARQUET_AUTH_TOKEN: TOKEN },
  });
  assert.equal(shown.code, 0, shown.stderr);
  const toml = parseToml(shown.stdout) as { otel: { exporter: Record<string, Record<string, unknown>> } };
  const http = toml.otel.exporter["otlp-http"];
  assert.equal(http.endpoint, "http://h:4318/v1/logs");
  assert.equal(http.protocol, "binary");
  assert.deepEqual({ ...http.headers as object }, { Authorization: `Bearer ${TOKEN}` });

  const hidden = await runCliProcess(["connect", "codex", "--endpoint", "http://h:4318"], {
    env: { OTLP2PARQUET_AUTH_TOKEN: TOKEN },
  });
  assert.equal(hidden.code, 0, hidden.stderr);
  assert.ok(!hidden.stdout.includes(TOKEN));
  parseToml(hidden.stdout);
});

Deno.test("connect: bad client, bad endpoint and an unknown port are usage errors", async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["connect", "grafana"], {}, /'grafana' is invalid for argument 'client'/],
    [["connect", "sdk-env", "--endpoint", "ftp://x"], {}, /expected http:\/\/ or https:\/\//],
    [["connect", "sdk-env", "--endpoint", "http://x:4318/v1/logs"], {}, /give the base URL/],
    [["connect", "sdk-env"], { OTLP2PARQUET_LISTEN_ADDR: "127.0.0.1:0" }, /port 0.*--endpoint/],
  ];
  for (const [args, env, message] of cases) {
    const run = await runCliProcess(args, { env });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message);
    assert.equal(run.stdout, "");
  }
  const help = await runCliProcess(["connect", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Examples:/);
});
