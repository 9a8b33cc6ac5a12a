/**
 * `check`: verifies the configured object store end to end with the same client the server uses:
 * write a probe object under `otlp2parquet-check/`, read it back, find it in a listing, delete it, and
 * list again. Each step prints its result; a failure prints what to fix in plain words (missing bucket,
 * wrong credentials, no permission for one operation, clock skew, unreachable endpoint, read-only or full
 * disk) and the command exits 1.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import type { ObjectStore } from "../storage/object_store.ts";
import type { CliIo } from "./convert.ts";

/** Folder of the probe objects, inside the configured bucket and prefix. */
export const CHECK_PREFIX = "otlp2parquet-check/";

/** The steps, in order. */
export type CheckStep = "client" | "write" | "read" | "list" | "delete" | "list after delete";

/** One step's outcome. */
export interface StepResult {
  step: CheckStep;
  ok: boolean;
  /** What was done or found. */
  detail: string;
  ms: number;
  /** On failure: the error, and what to do about it. */
  error?: string;
  fix?: string;
}

/** Where the configured store is, in words. */
export function describeStorage(config: Config): string {
  const s = config.storage;
  switch (s.backend) {
    case "fs":
      return `folder ${s.path}`;
    case "s3":
      return `S3 bucket ${s.s3.bucket}${
        s.s3.prefix ? ` (prefix ${s.s3.prefix})` : ""
      }, region ${s.s3.region}` +
        (s.s3.endpoint ? `, endpoint ${s.s3.endpoint}` : "");
    case "gcs":
      return `GCS bucket ${s.gcs.bucket}`;
    case "azblob":
      return `Azure container ${s.azblob.container}` +
        (s.azblob.account ? `, account ${s.azblob.account}` : "");
  }
}

/**
 * What to fix after `step` failed with `error`, in plain words. Recognises the S3 error codes, OpenDAL's
 * error kinds and the errno codes of the fs backend; anything else points at the error itself.
 */
export function adviceFor(step: CheckStep, error: unknown, config: Config): string {
  const e = error as { message?: string; code?: string; cause?: unknown };
  const text = `${e?.code ?? ""} ${e?.message ?? String(error)} ${
    e?.cause instanceof Error ? e.cause.message : ""
  }`;
  const s = config.storage;
  const bucket = s.backend === "s3"
    ? `bucket "${s.s3.bucket}"`
    : s.backend === "gcs"
    ? `bucket "${s.gcs.bucket}"`
    : `container "${s.azblob.container}"`;
  const bucketSetting = s.backend === "s3"
    ? "OTLP2PARQUET_S3_BUCKET"
    : s.backend === "gcs"
    ? "OTLP2PARQUET_GCS_BUCKET"
    : "OTLP2PARQUET_AZURE_CONTAINER";
  const needs: Record<CheckStep, string> = {
    client: "access to the bucket",
    write: "s3:PutObject (storage.objects.create on GCS, Blob Data Contributor on Azure)",
    read: "s3:GetObject (storage.objects.get, Blob Data Reader)",
    list: "s3:ListBucket (storage.objects.list, Blob Data Reader)",
    delete: "s3:DeleteObject (storage.objects.delete, Blob Data Contributor)",
    "list after delete": "s3:ListBucket (storage.objects.list, Blob Data Reader)",
  };
  if (
    /NoSuchBucket|ContainerNotFound|bucket does not exist|The specified bucket does not exist/i.test(text)
  ) {
    return `The ${bucket} does not exist (or not in this account or region): create it, or fix ${bucketSetting}.`;
  }
  if (/InvalidAccessKeyId|InvalidClientTokenId|UnrecognizedClientException/.test(text)) {
    return "The store does not know this access key id: check AWS_ACCESS_KEY_ID (or the profile in AWS_PROFILE).";
  }
  if (/SignatureDoesNotMatch|AuthenticationFailed/.test(text)) {
    return "The secret key does not match the access key id: check AWS_SECRET_ACCESS_KEY (Azure: the account key or SAS).";
  }
  if (/ExpiredToken|TokenRefreshRequired|token.*expired/i.test(text)) {
    return "The session credentials have expired: renew them (AWS_SESSION_TOKEN, `aws sso login`, the role).";
  }
  if (/RequestTimeTooSkewed|clock skew|time.*skew/i.test(text)) {
    return "This machine's clock is too far from the store's (signatures are valid for 15 minutes): " +
      "synchronise it (NTP, `timedatectl set-ntp true`).";
  }
  if (/AccessDenied|PermissionDenied|Forbidden|\b403\b|AuthorizationFailure/i.test(text)) {
    return `The credentials were accepted but may not do this: grant ${needs[step]} on the ${bucket}` +
      (s.backend === "s3" && s.s3.prefix ? ` for the prefix ${s.s3.prefix}` : "") + ".";
  }
  if (/credential|NoCredentialProviders|no valid credential|loading credential/i.test(text)) {
    return "No credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile or " +
      "instance role; GCS: GOOGLE_APPLICATION_CREDENTIALS; Azure: the account key or SAS).";
  }
  if (/EROFS|read-only file system/i.test(text)) {
    return `The folder ${s.path} is on a read-only file system: point OTLP2PARQUET_STORAGE_PATH at a writable one.`;
  }
  if (/EACCES|EPERM|permission denied/i.test(text)) {
    return `This user may not write in ${s.path}: fix the folder's owner or mode, or choose another ` +
      "OTLP2PARQUET_STORAGE_PATH.";
  }
  if (/ENOSPC|EDQUOT|no space/i.test(text)) return "The disk is full (or the quota reached): free space.";
  if (/ENOTDIR|EEXIST/.test(text)) {
    return `${s.path} (or a folder in it) is a file, not a folder: fix OTLP2PARQUET_STORAGE_PATH.`;
  }
  if (/ENOTFOUND|EAI_AGAIN|dns|failed to lookup|resolve/i.test(text)) {
    return "The endpoint's host name does not resolve: check OTLP2PARQUET_S3_ENDPOINT (or the region) and DNS.";
  }
  if (
    /ECONNREFUSED|ConnectionRefused|connection refused|error sending request|fetch failed|connect|timed? ?out/i
      .test(text)
  ) {
    return "The endpoint does not answer: check OTLP2PARQUET_S3_ENDPOINT (or OTLP2PARQUET_AZURE_ENDPOINT), " +
      "the network, proxies and firewalls.";
  }
  if (/OpenDAL/.test(text)) return "This build cannot load the store's client: see the error above.";
  return "See the error above.";
}

/**
 * Runs the steps against `store` and returns every result (stopping at the first failing step, except
 * that a probe written is always deleted, if it can be).
 */
export async function checkStore(
  open: () => Promise<ObjectStore>,
  config: Config,
  options: { now?: () => number; probeId?: string } = {},
): Promise<StepResult[]> {
  const now = options.now ?? (() => performance.now());
  const results: StepResult[] = [];
  const id = options.probeId ??
    `${new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}-${
      crypto.randomUUID().slice(0, 8)
    }`;
  const key = `${CHECK_PREFIX}${id}.txt`;
  const body = new TextEncoder().encode(`otlp2parquet check probe ${id}: safe to delete\n`);
  const run = async (step: CheckStep, fn: () => Promise<string>): Promise<boolean> => {
    const start = now();
    try {
      const detail = await fn();
      results.push({ step, ok: true, detail, ms: now() - start });
      return true;
    } catch (error) {
      const full = error instanceof Error ? error.message : String(error);
      // OpenDAL appends the whole HTTP exchange: the start says what failed, the fix says why.
      const message = full.length > 320 ? `${full.slice(0, 320)}…` : full;
      results.push({
        step,
        ok: false,
        detail: "",
        ms: now() - start,
        error: message,
        fix: adviceFor(step, error, config),
      });
      return false;
    }
  };
  let store: ObjectStore | undefined;
  if (!await run("client", async () => (store = await open()).description)) return results;
  const s = store!;
  if (!await run("write", async () => (await s.put(key, body), `${key} (${body.length} bytes)`))) {
    return results;
  }
  const rest = async () => {
    if (
      !await run("read", async () => {
        const got = await s.get(key);
        if (got === undefined) throw new Error(`${key} is missing right after it was written`);
        if (got.length !== body.length || got.some((b, i) => b !== body[i])) {
          throw new Error(
            `${key} reads back ${got.length} bytes that differ from the ${body.length} written`,
          );
        }
        return `${got.length} bytes, identical`;
      })
    ) return;
    await run("list", async () => {
      const keys = await s.list(CHECK_PREFIX);
      if (!keys.includes(key)) throw new Error(`the listing of ${CHECK_PREFIX} does not show ${key}`);
      return `${keys.length} object(s) under ${CHECK_PREFIX}, the probe among them`;
    });
  };
  await rest();
  if (!await run("delete", async () => (await s.delete(key), key))) return results;
  await run("list after delete", async () => {
    const keys = await s.list(CHECK_PREFIX);
    if (keys.includes(key)) throw new Error(`${key} is still listed after its deletion`);
    return "the probe is gone";
  });
  return results;
}

/** Prints the results, one line a step, then the fixes; returns the exit code (0, or 1 on any failure). */
export function reportCheck(results: readonly StepResult[], config: Config, io: CliIo): number {
  io.stdout(`Checking ${describeStorage(config)}\n`);
  for (const r of results) {
    const head = `  ${r.ok ? "ok  " : "FAIL"} ${r.step.padEnd(17)}`;
    io.stdout(r.ok ? `${head} ${r.detail} (${Math.round(r.ms)} ms)\n` : `${head} ${r.error}\n`);
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length === 0) {
    io.stdout("The store works: otlp2parquet can write, read, list and delete there.\n");
    return 0;
  }
  for (const r of failed) io.stderr(`error: ${r.step} failed. ${r.fix}\n`);
  return 1;
}
