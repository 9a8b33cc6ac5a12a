/**
 * The Deno Deploy entry end to end: `src/platforms/deploy/main.ts` runs as a subprocess (Deno.serve on a
 * free loopback port) writing to s3rver over fetch with SigV4; every 200 means the objects are already in
 * the bucket, and a store outage is a 503 the client can retry.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { openDuckDb } from "./support/duckdb.ts";
import { bucketOf, type S3Server, startS3Server } from "./support/s3_server.ts";

const ROOT = new URL("../", import.meta.url);
const DATA = new URL("../../shared/testdata/otlp2parquet-rust/", import.meta.url);
const read = (name: string): Uint8Array<ArrayBuffer> =>
  new Uint8Array(Deno.readFileSync(new URL(name, DATA)));

interface DeployProcess {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

async function startDeploy(env: Record<string, string>): Promise<DeployProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/platforms/deploy/main.ts"],
    cwd: ROOT.pathname,
    // Deploy requires a token by default: the tests that are not about authentication opt out.
    env: {
      OTLP2PARQUET_LISTEN_ADDR: "127.0.0.1:0",
      OTLP2PARQUET_LOG_LEVEL: "debug",
      OTLP2PARQUET_AUTH: "none",
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output += decoder.decode(chunk, { stream: true });
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const deadline = Date.now() + 20_000;
  let url: string | undefined;
  while (url === undefined) {
    url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
    if (url) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await drained;
      throw new Error(`the Deploy entry did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  let stopped: Promise<void> | undefined;
  return {
    url,
    output: () => output,
    stop: () =>
      stopped ??= (async () => {
        try {
          child.kill("SIGTERM");
        } catch {
          // already exited
        }
        await child.status;
        await drained;
      })(),
  };
}

function s3Env(s3: S3Server): Record<string, string> {
  return {
    OTLP2PARQUET_S3_BUCKET: s3.bucket,
    OTLP2PARQUET_S3_ENDPOINT: s3.endpoint,
    OTLP2PARQUET_S3_PREFIX: "otel",
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

Deno.test("Deploy entry writes every request to S3 before answering, and answers 503 while S3 is down", async () => {
  const s3 = await startS3Server();
  const bucket = bucketOf(s3);
  const scratch = mkdtempSync(join(tmpdir(), "otlp2parquet-deploy-"));
  let deploy: DeployProcess | undefined;
  try {
    deploy = await startDeploy(s3Env(s3));
    const post = (path: string, body: Uint8Array<ArrayBuffer>, headers: Record<string, string>) =>
      fetch(`${deploy!.url}${path}`, { method: "POST", headers, body });

    const logs = await post("/v1/logs", read("logs.pb"), { "content-type": "application/x-protobuf" });
    assert.equal(logs.status, 200, await logs.clone().text());
    assert.equal((await logs.arrayBuffer()).byteLength, 0);
    // Already in the bucket when the 200 arrives.
    assert.equal((await bucket.list("otel/logs/")).length, 6);

    const traces = await post("/v1/traces", gzipSync(read("traces.pb")), {
      "content-type": "application/x-protobuf",
      "content-encoding": "gzip",
    });
    assert.equal(traces.status, 200);
    await traces.body?.cancel();
    const metrics = await post("/v1/metrics", read("metrics_mixed.json"), {
      "content-type": "application/json",
    });
    assert.equal(metrics.status, 200);
    assert.deepEqual(await metrics.json(), {});
    const bad = await post("/v1/metrics", new TextEncoder().encode("{"), {
      "content-type": "application/json",
    });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();

    const keys = await bucket.list("");
    assert.ok(keys.every((k) => /^otel\/.+-d[0-9a-f]{12}-[0-9a-f]{16}\.parquet$/.test(k)), keys.join("\n"));
    for (const key of keys) {
      const local = join(scratch, key);
      Deno.mkdirSync(join(local, ".."), { recursive: true });
      writeFileSync(local, (await bucket.get(key))!);
    }
    const db = await openDuckDb();
    try {
      const count = async (table: string) =>
        (await db.rows(
          `SELECT count(*)::INTEGER AS n FROM read_parquet('${scratch}/otel/${table}/**/*.parquet')`,
        ))[0]
          .n;
      assert.equal(await count("logs"), 81);
      assert.equal(await count("traces"), 19);
      assert.equal(await count("metrics/gauge"), 1);
      assert.equal(await count("metrics/sum"), 1);
      assert.equal(await count("metrics/histogram"), 1);
    } finally {
      db.close();
    }

    // S3 down: 503 with Retry-After (OTLP clients retry it), never 500; back up: 200 again.
    s3.kill();
    const down = await post("/v1/logs", read("log.json"), { "content-type": "application/json" });
    assert.equal(down.status, 503);
    assert.equal(down.headers.get("retry-after"), "5");
    assert.match(((await down.json()) as { message: string }).message, /object store unavailable/);
    await s3.restart();
    const again = await post("/v1/logs", read("log.json"), { "content-type": "application/json" });
    assert.equal(again.status, 200, deploy.output());
    await again.body?.cancel();
    assert.equal((await bucket.list("otel/logs/frontend-proxy/")).length, 2);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- deploy output ---\n${deploy?.output()}`, {
      cause: error,
    });
  } finally {
    await deploy?.stop();
    await s3.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
});

Deno.test("Deploy entry refuses to start without S3 credentials", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/platforms/deploy/main.ts"],
    cwd: ROOT.pathname,
    env: { OTLP2PARQUET_S3_BUCKET: "b", AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 2);
  assert.match(new TextDecoder().decode(stderr), /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set/);
});

const TOKEN = "deploy-token-4b5c6d7e8f90";
const NEXT = "deploy-token-next-a1b2c3d4";
const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

Deno.test("Deploy entry reads the token: right, rotated, wrong and missing, Bearer and Basic; none is a 503", async () => {
  const s3 = await startS3Server();
  const bucket = bucketOf(s3);
  let deploy: DeployProcess | undefined;
  let bare: DeployProcess | undefined;
  try {
    deploy = await startDeploy({
      ...s3Env(s3),
      OTLP2PARQUET_AUTH: "",
      OTLP2PARQUET_AUTH_TOKEN: TOKEN,
      OTLP2PARQUET_AUTH_TOKENS: NEXT,
    });
    const post = (url: string, path: string, file: string, headers: Record<string, string>) =>
      fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: read(file),
      });
    for (
      const authorization of [`Bearer ${TOKEN}`, `Bearer ${NEXT}`, basic("otel", TOKEN), basic("", NEXT)]
    ) {
      const ok = await post(deploy.url, "/v1/logs", "log.json", { authorization });
      assert.equal(ok.status, 200, authorization);
      await ok.body?.cancel();
    }
    for (
      const headers of [{}, { authorization: `Bearer ${TOKEN}x` }, {
        authorization: basic("otel", "x"),
      }] as Record<
        string,
        string
      >[]
    ) {
      const refused = await post(deploy.url, "/v1/traces", "trace.json", headers);
      assert.equal(refused.status, 401, JSON.stringify(headers));
      assert.match(refused.headers.get("www-authenticate") ?? "", /^Bearer realm="otlp2parquet", Basic/);
      assert.equal(((await refused.json()) as { code: number }).code, 16);
    }
    // Only the accepted logs reached the bucket.
    const keys = await bucket.list("otel/");
    assert.ok(keys.length > 0 && keys.every((k) => k.startsWith("otel/logs/")), keys.join("\n"));
    assert.ok(!deploy.output().includes(TOKEN), "a token in the log");

    bare = await startDeploy({ ...s3Env(s3), OTLP2PARQUET_AUTH: "" });
    const misconfigured = await post(bare.url, "/v1/logs", "log.json", { authorization: `Bearer ${TOKEN}` });
    assert.equal(misconfigured.status, 503);
    assert.deepEqual(await misconfigured.json(), {
      code: 14,
      message: "otlp2parquet is misconfigured: see its log",
    });
    const health = await fetch(`${bare.url}/health`);
    assert.equal(await health.text(), "ok\n");
    // Liveness stays, readiness does not: a load balancer should not send it traffic.
    const ready = await fetch(`${bare.url}/ready`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /misconfigured/);
    assert.match(bare.output(), /no authentication token is set/);
    assert.deepEqual(await bucket.list("otel/"), keys);
  } catch (error) {
    throw new Error(
      `${(error as Error).message}\n--- deploy output ---\n${deploy?.output()}\n${bare?.output() ?? ""}`,
      { cause: error },
    );
  } finally {
    await deploy?.stop();
    await bare?.stop();
    await s3.stop();
  }
});
