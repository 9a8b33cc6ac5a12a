/**
 * The Lambda custom runtime end to end: a small fake of the Lambda Runtime API (next / response / error /
 * init error on 127.0.0.1) drives the real runtime loop in a subprocess, once run by Deno from source and
 * once as the `bootstrap` executable Bun builds, over HTTP API v2, Function URL, REST v1 and ALB events.
 * The Parquet files it writes (fs store in a temp folder) are read back with DuckDB.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { openDuckDb } from "./support/duckdb.ts";
import { FakeRuntimeApi, functionUrlEvent } from "./support/fake_runtime_api.ts";

const ROOT = new URL("../", import.meta.url);
const DATA = new URL("../../shared/testdata/otlp2parquet-rust/", import.meta.url);
const read = (name: string): Uint8Array => Deno.readFileSync(new URL(name, DATA));
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64"));

// ---- the runtime under test, as a subprocess ----

interface RuntimeProcess {
  /** Stops it (SIGKILL, as Lambda does at the end of an environment's life) and returns its output. */
  stop(): Promise<string>;
  exited: Promise<{ code: number; output: string }>;
}

function startRuntime(
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
): RuntimeProcess {
  const child = new Deno.Command(command, { args, env, cwd, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  const exited = child.output().then((o) => ({
    code: o.code,
    output: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr),
  }));
  return {
    exited,
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      return (await exited).output;
    },
  };
}

function fsEnv(api: FakeRuntimeApi, dir: string): Record<string, string> {
  return {
    AWS_LAMBDA_RUNTIME_API: api.address,
    OTLP2PARQUET_STORAGE_BACKEND: "fs",
    OTLP2PARQUET_STORAGE_PATH: dir,
    OTLP2PARQUET_LOG_LEVEL: "debug",
    // Lambda requires a token by default; the authentication tests at the end set one.
    OTLP2PARQUET_AUTH: "none",
  };
}

// ---- events ----

function httpApiEvent(
  stage: string,
  path: string,
  body: Uint8Array,
  headers: Record<string, string>,
): unknown {
  return {
    version: "2.0",
    routeKey: "POST /{proxy+}",
    rawPath: `/${stage}${path}`,
    rawQueryString: "a=1",
    headers: { host: "api.example.com", ...headers },
    requestContext: {
      domainName: "api.example.com",
      http: { method: "POST", path: `/${stage}${path}` },
      stage,
    },
    body: b64(body),
    isBase64Encoded: true,
  };
}

function restEvent(path: string, text: string, contentType: string): unknown {
  return {
    resource: "/{proxy+}",
    path,
    httpMethod: "POST",
    headers: { "Content-Type": contentType, Host: "abc.execute-api.us-east-1.amazonaws.com" },
    multiValueHeaders: {
      "Content-Type": [contentType],
      Host: ["abc.execute-api.us-east-1.amazonaws.com"],
    },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    requestContext: {
      stage: "prod",
      domainName: "abc.execute-api.us-east-1.amazonaws.com",
      path: `/prod${path}`,
    },
    body: text,
    isBase64Encoded: false,
  };
}

function albEvent(
  path: string,
  body: Uint8Array,
  headers: Record<string, string>,
  multiValue: boolean,
): unknown {
  return {
    requestContext: { elb: { targetGroupArn: "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/t/1" } },
    httpMethod: "POST",
    path,
    ...(multiValue
      ? {
        multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
        multiValueQueryStringParameters: {},
      }
      : { headers, queryStringParameters: {} }),
    body: b64(body),
    isBase64Encoded: true,
  };
}

/** `google.rpc.Status` in protobuf: field 1 (code, varint), field 2 (message, string). */
function decodeStatus(bytes: Uint8Array): { code: number; message: string } {
  assert.equal(bytes[0], 0x08);
  const code = bytes[1];
  assert.equal(bytes[2], 0x12);
  let length = 0, shift = 0, i = 3;
  for (;; i++) {
    length |= (bytes[i] & 0x7f) << shift;
    shift += 7;
    if (bytes[i] < 0x80) break;
  }
  return { code, message: new TextDecoder().decode(bytes.subarray(i + 1, i + 1 + length)) };
}

function parquetFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: false })
    .map(String)
    .filter((f) => f.endsWith(".parquet") && !f.startsWith(".otlp2parquet-staging"));
}

async function countRows(dir: string, table: string): Promise<number> {
  const db = await openDuckDb();
  try {
    const [row] = await db.rows(
      `SELECT count(*)::INTEGER AS n FROM read_parquet('${dir}/${table}/**/*.parquet')`,
    );
    return row.n as number;
  } finally {
    db.close();
  }
}

async function withRuntime(
  launch: (api: FakeRuntimeApi, dir: string) => RuntimeProcess,
  body: (api: FakeRuntimeApi, dir: string) => Promise<void>,
): Promise<void> {
  const api = new FakeRuntimeApi();
  const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-lambda-"));
  const runtime = launch(api, dir);
  let output = "";
  try {
    await body(api, dir);
  } catch (error) {
    output = await runtime.stop();
    throw new Error(`${(error as Error).message}\n--- runtime output ---\n${output}`, { cause: error });
  } finally {
    await runtime.stop();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const denoRuntime = (api: FakeRuntimeApi, dir: string) =>
  startRuntime(
    Deno.execPath(),
    ["run", "-A", "src/platforms/lambda/main.ts"],
    fsEnv(api, dir),
    ROOT.pathname,
  );

Deno.test("Lambda runtime (Deno, from source) serves HTTP API v2, Function URL, REST v1 and ALB invocations", async () => {
  await withRuntime(denoRuntime, async (api, dir) => {
    // Function URL, protobuf, base64 body: 200 with an empty ExportLogsServiceResponse, base64-encoded.
    const logs = await api.invoke(functionUrlEvent("/v1/logs", read("logs.pb"), "application/x-protobuf"));
    assert.equal(logs.kind, "response");
    assert.equal(logs.body.statusCode, 200);
    assert.equal(logs.body.isBase64Encoded, true);
    assert.equal(logs.body.body, "");
    assert.equal((logs.body.headers as Record<string, string>)["content-type"], "application/x-protobuf");
    // The files are written before the answer.
    assert.equal(await countRows(dir, "logs"), 81);

    // HTTP API with a named stage in the path, gzip-compressed protobuf.
    const traces = await api.invoke(
      httpApiEvent("prod", "/v1/traces", gzipSync(read("traces.pb")), {
        "content-type": "application/x-protobuf",
        "content-encoding": "gzip",
      }),
    );
    assert.equal(traces.body.statusCode, 200, JSON.stringify(traces.body));

    // REST API, JSON as text.
    const json = await api.invoke(
      restEvent("/v1/traces", new TextDecoder().decode(read("trace.json")), "application/json"),
    );
    assert.equal(json.body.statusCode, 200);
    assert.equal(json.body.isBase64Encoded, false);
    assert.equal(json.body.body, "{}");
    assert.deepEqual((json.body.multiValueHeaders as Record<string, string[]>)["content-type"], [
      "application/json",
    ]);

    // ALB with and without multi-value headers.
    const mixed = await api.invoke(
      albEvent("/v1/metrics", read("metrics_mixed.pb"), { "content-type": "application/x-protobuf" }, true),
    );
    assert.equal(mixed.body.statusCode, 200);
    assert.equal(mixed.body.statusDescription, "200 OK");
    assert.deepEqual((mixed.body.multiValueHeaders as Record<string, string[]>)["content-type"], [
      "application/x-protobuf",
    ]);
    assert.equal(mixed.body.headers, undefined);
    const gauge = await api.invoke(
      albEvent("/v1/metrics", read("metrics_gauge.json"), { "content-type": "application/json" }, false),
    );
    assert.equal(gauge.body.statusCode, 200);
    assert.equal((gauge.body.headers as Record<string, string>)["content-type"], "application/json");

    // An undecodable protobuf body: 400 with a google.rpc.Status in protobuf, base64-encoded.
    const bad = await api.invoke(
      functionUrlEvent("/v1/logs", new Uint8Array([0x0a, 0x05, 0x01]), "application/x-protobuf"),
    );
    assert.equal(bad.kind, "response");
    assert.equal(bad.body.statusCode, 400);
    assert.equal(bad.body.isBase64Encoded, true);
    const status = decodeStatus(unb64(bad.body.body as string));
    assert.equal(status.code, 3);
    assert.match(status.message, /cannot decode logs request/);

    // Invalid JSON through REST: 400 with a JSON status.
    const badJson = await api.invoke(restEvent("/v1/logs", "{not json", "application/json"));
    assert.equal(badJson.body.statusCode, 400);
    assert.equal(JSON.parse(badJson.body.body as string).code, 3);

    const unsupported = await api.invoke(restEvent("/v1/logs", "hello", "text/plain"));
    assert.equal(unsupported.body.statusCode, 415);

    const health = await api.invoke(functionUrlEvent("/health", new Uint8Array(), "", "GET"));
    assert.equal(health.body.statusCode, 200);
    assert.equal(health.body.body, "ok\n");
    assert.equal(health.body.isBase64Encoded, false);

    // Not an HTTP event: the invocation fails, the runtime keeps serving.
    const odd = await api.invoke({ hello: "world" });
    assert.equal(odd.kind, "error");
    assert.equal(odd.errorType, "Runtime.TypeError");
    assert.match(odd.body.errorMessage as string, /not an HTTP event/);
    const again = await api.invoke(functionUrlEvent("/v1/logs", read("log.json"), "application/json"));
    assert.equal(again.body.statusCode, 200);

    assert.equal(await countRows(dir, "traces"), 21);
    assert.equal(await countRows(dir, "metrics/gauge"), 4);
    assert.equal(await countRows(dir, "metrics/sum"), 1);
    assert.equal(await countRows(dir, "metrics/histogram"), 1);
    assert.equal(await countRows(dir, "logs"), 82);
    const files = parquetFiles(dir);
    assert.ok(files.every((f) => /-l[0-9a-f]{12}-[0-9a-f]{16}\.parquet$/.test(f)), files.join("\n"));
  });
});

Deno.test("Lambda runtime reports an invalid configuration to /runtime/init/error and exits", async () => {
  const api = new FakeRuntimeApi();
  const runtime = startRuntime(
    Deno.execPath(),
    ["run", "-A", "src/platforms/lambda/main.ts"],
    { AWS_LAMBDA_RUNTIME_API: api.address, OTLP2PARQUET_STORAGE_BACKEND: "s3" },
    ROOT.pathname,
  );
  try {
    await api.initError();
    const { code } = await runtime.exited;
    assert.equal(code, 1);
    assert.equal(api.initErrors.length, 1);
    assert.equal(api.initErrors[0].errorType, "Runtime.ConfigError");
    assert.match(api.initErrors[0].body.errorMessage as string, /no bucket is set/);
  } finally {
    await runtime.stop();
    await api.close();
  }
});

Deno.test("Lambda bootstrap built by Bun serves invocations from an empty folder", async () => {
  const build = mkdtempSync(join(tmpdir(), "otlp2parquet-bootstrap-"));
  try {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "build/compile.ts", "--lambda", "--outfile", join(build, "bootstrap"), "--no-zip"],
      cwd: ROOT.pathname,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const empty = mkdtempSync(join(tmpdir(), "otlp2parquet-cwd-"));
    try {
      await withRuntime(
        (api, dir) => startRuntime(join(build, "bootstrap"), [], fsEnv(api, dir), empty),
        async (api, dir) => {
          const ok = await api.invoke(
            functionUrlEvent("/v1/logs", read("logs.pb"), "application/x-protobuf"),
          );
          assert.equal(ok.body.statusCode, 200);
          assert.equal(ok.body.isBase64Encoded, true);
          const bad = await api.invoke(restEvent("/v1/metrics", "[1,", "application/json"));
          assert.equal(bad.body.statusCode, 400);
          assert.match(JSON.parse(bad.body.body as string).message, /cannot decode metrics request/);
          assert.equal(await countRows(dir, "logs"), 81);
        },
      );
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
});

// ---- authentication and malformed events ----

const TOKEN = "lambda-token-5e1f0c9a7b3d";
const NEXT = "lambda-token-rotated-2c8e";

/** `event` with `headers` added to its single-value headers. */
function withHeaders(event: unknown, headers: Record<string, string>): unknown {
  const e = event as { headers: Record<string, string> };
  return { ...e, headers: { ...e.headers, ...headers } };
}

Deno.test("Lambda runtime checks the token: right, rotated, wrong and missing, Bearer and Basic", async () => {
  const launch = (api: FakeRuntimeApi, dir: string) =>
    startRuntime(
      Deno.execPath(),
      ["run", "-A", "src/platforms/lambda/main.ts"],
      { ...fsEnv(api, dir), OTLP2PARQUET_AUTH: "", OTLP2PARQUET_AUTH_TOKENS: `${TOKEN},${NEXT}` },
      ROOT.pathname,
    );
  await withRuntime(launch, async (api, dir) => {
    const send = (path: string, file: string, headers: Record<string, string>) =>
      api.invoke(withHeaders(functionUrlEvent(path, read(file), "application/x-protobuf"), headers));
    const logs = (headers: Record<string, string>) => send("/v1/logs", "logs.pb", headers);
    for (
      const authorization of [
        `Bearer ${TOKEN}`,
        `Bearer ${NEXT}`,
        `Basic ${btoa(`collector:${TOKEN}`)}`,
        `Basic ${btoa(`:${NEXT}`)}`,
      ]
    ) {
      const ok = await logs({ authorization });
      assert.equal(ok.body.statusCode, 200, `${authorization}: ${JSON.stringify(ok.body)}`);
    }
    for (
      const headers of [{}, { authorization: `Bearer ${TOKEN}0` }, { authorization: `Basic ${btoa("u:x")}` }]
    ) {
      const refused = await send("/v1/metrics", "metrics_mixed.pb", headers as Record<string, string>);
      assert.equal(refused.kind, "response");
      assert.equal(refused.body.statusCode, 401, JSON.stringify(headers));
      const result = refused.body.headers as Record<string, string>;
      assert.match(result["www-authenticate"], /^Bearer realm="otlp2parquet", Basic/);
      assert.equal(decodeStatus(unb64(refused.body.body as string)).code, 16);
    }
    const health = await api.invoke(functionUrlEvent("/health", new Uint8Array(), "", "GET"));
    assert.equal(health.body.statusCode, 200);

    // A REST test invocation: `multiValueHeaders` empty, the headers in `headers` only.
    const rest = restEvent(
      "/v1/logs",
      new TextDecoder().decode(read("log.json")),
      "application/json",
    ) as Record<
      string,
      unknown
    >;
    const restOk = await api.invoke({
      ...rest,
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${TOKEN}` },
      multiValueHeaders: {},
    });
    assert.equal(restOk.body.statusCode, 200, JSON.stringify(restOk.body));
    assert.equal(restOk.body.body, "{}");

    // A malformed Host, or a header no Request can carry: 400 to the client, not a failed invocation.
    for (
      const headers of <Record<string, string>[]> [{ host: "bad host/x" }, { host: "a@b" }, {
        "x-odd": "a\nb",
      }]
    ) {
      const bad = await logs({ authorization: `Bearer ${TOKEN}`, ...headers });
      assert.equal(bad.kind, "response", JSON.stringify(headers));
      assert.equal(bad.body.statusCode, 400, JSON.stringify(headers));
      assert.match(JSON.parse(bad.body.body as string).message, /malformed (Host )?header/);
    }
    // The runtime still serves. Only accepted requests were written: the four identical ones as the same
    // objects (names end in a hash of the content), the REST one, and no metrics at all.
    assert.equal(await countRows(dir, "logs"), 81 + 1);
    assert.deepEqual(parquetFiles(dir).filter((f) => !f.startsWith("logs/")), []);
  });
});

Deno.test("Lambda runtime without a token answers 503 (misconfigured), logs why, and keeps /health open", async () => {
  const launch = (api: FakeRuntimeApi, dir: string) =>
    startRuntime(
      Deno.execPath(),
      ["run", "-A", "src/platforms/lambda/main.ts"],
      { ...fsEnv(api, dir), OTLP2PARQUET_AUTH: "" },
      ROOT.pathname,
    );
  const api = new FakeRuntimeApi();
  const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-lambda-"));
  const runtime = launch(api, dir);
  try {
    const refused = await api.invoke(
      withHeaders(functionUrlEvent("/v1/logs", read("log.json"), "application/json"), {
        authorization: "Bearer guess",
      }),
    );
    assert.equal(refused.body.statusCode, 503);
    assert.equal((refused.body.headers as Record<string, string>)["retry-after"], "30");
    assert.deepEqual(JSON.parse(refused.body.body as string), {
      code: 14,
      message: "otlp2parquet is misconfigured: see its log",
    });
    const health = await api.invoke(functionUrlEvent("/health", new Uint8Array(), "", "GET"));
    assert.equal(health.body.statusCode, 200);
    assert.deepEqual(parquetFiles(dir), []);
  } finally {
    const output = await runtime.stop();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
    assert.match(output, /no authentication token is set: every request gets 503/);
  }
});
