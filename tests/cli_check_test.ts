/**
 * `otlp2parquet check` against a real S3 server (s3rver) and folders: every step passes and the probe is
 * gone afterwards; a missing bucket, an access key id the server does not know, an endpoint that does not
 * answer and a storage path that is a file each fail with exit code 1 and say what to fix. (s3rver does
 * not verify signatures, so a wrong secret key cannot be shown here; the access key id it does check.)
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCliProcess } from "./support/cli_process.ts";
import { startS3Server } from "./support/s3_server.ts";

const TMP = Deno.makeTempDirSync({ prefix: "otlp2parquet-check-" });
globalThis.addEventListener("unload", () => Deno.removeSync(TMP, { recursive: true }));

const STEPS = ["client", "write", "read", "list", "delete", "list after delete"];

Deno.test("check on S3 (s3rver): every step passes and the probe is deleted; a missing bucket, an unknown key id and a dead endpoint are explained", async () => {
  const s3 = await startS3Server();
  try {
    const env = {
      OTLP2PARQUET_STORAGE_BACKEND: "s3",
      OTLP2PARQUET_S3_BUCKET: s3.bucket,
      OTLP2PARQUET_S3_ENDPOINT: s3.endpoint,
      OTLP2PARQUET_S3_PREFIX: "tenant-a",
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    };
    const ok = await runCliProcess(["check"], { env });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^Checking S3 bucket test-bucket \(prefix tenant-a\)/);
    for (const step of STEPS) assert.match(ok.stdout, new RegExp(`^ {2}ok {3}${step} `, "m"), step);
    assert.match(ok.stdout, /ok {3}write +tenant-a\/otlp2parquet-check\/|ok {3}write +otlp2parquet-check\//);
    assert.equal(ok.stderr, "");
    const listing = await (await fetch(`${s3.endpoint}/${s3.bucket}?list-type=2&prefix=tenant-a/`)).text();
    assert.doesNotMatch(listing, /<Key>/, "the probe is left in the bucket");

    const cases: [Record<string, string>, string[], RegExp][] = [
      [
        { OTLP2PARQUET_S3_BUCKET: "no-such-bucket" },
        [],
        /write failed\. The bucket "no-such-bucket" does not exist.*OTLP2PARQUET_S3_BUCKET/,
      ],
      [
        { AWS_ACCESS_KEY_ID: "AKIAWRONGWRONGWRONG" },
        [],
        /write failed\. The store does not know this access key id: check AWS_ACCESS_KEY_ID/,
      ],
      [{}, ["--s3-endpoint", "http://127.0.0.1:1"], /write failed\. The endpoint does not answer/],
    ];
    for (const [override, flags, message] of cases) {
      const run = await runCliProcess(["check", ...flags], { env: { ...env, ...override } });
      assert.equal(run.code, 1, `${JSON.stringify(override)}: ${run.stdout}${run.stderr}`);
      assert.match(run.stderr, message);
      assert.match(run.stdout, /^ {2}FAIL write /m);
      // Nothing after the failed write was tried.
      assert.doesNotMatch(run.stdout, /^ {2}(ok|FAIL) {2,3}read/m);
    }
  } finally {
    await s3.stop();
  }
});

Deno.test("check on a folder: passes and leaves no probe; a path that is a file is explained", async () => {
  const dir = join(TMP, "store");
  const ok = await runCliProcess(["check", "--path", dir]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  for (const step of STEPS) assert.match(ok.stdout, new RegExp(`^ {2}ok {3}${step} `, "m"), step);
  const left = existsSync(dir)
    ? (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith(".txt"))
    : [];
  assert.deepEqual(left, []);

  const file = join(TMP, "a-file");
  writeFileSync(file, "not a folder");
  const bad = await runCliProcess(["check"], { env: { OTLP2PARQUET_STORAGE_PATH: file } });
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stderr, /is a file, not a folder: fix OTLP2PARQUET_STORAGE_PATH/);

  const help = await runCliProcess(["check", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Examples:/);
  assert.match(help.stdout, /--s3-bucket <bucket>/);
});
