/**
 * A real S3 server for tests: s3rver (npm, Node) on 127.0.0.1, started, stopped, killed and restarted on the
 * same port and data folder by {@linkcode startPeerProcess}.
 */
import { resolve } from "node:path";
import { S3FetchStore } from "../../src/storage/s3_fetch_store.ts";
import { startPeerProcess } from "./peer_process.ts";

export interface S3Server {
  /** "http://127.0.0.1:<port>" */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The data folder: kept across stop()/restart(), removed when the test process exits. */
  directory: string;
  /** Graceful stop (SIGTERM, then SIGKILL after 3 s) of the whole process group. Idempotent. */
  stop(): Promise<void>;
  /** Immediate SIGKILL of the process group (a crash); the data folder stays for restart(). */
  kill(): void;
  /** Starts again on the same port and folder (stopping first if still running) and waits until it answers. */
  restart(): Promise<void>;
}

export interface S3ServerOptions {
  /** Default: "test-bucket". */
  bucket?: string;
  /** How long to wait for the server to answer. Default: 15000 ms. */
  startTimeoutMs?: number;
}

const S3RVER_BIN = resolve(import.meta.dirname ?? ".", "../../node_modules/s3rver/bin/s3rver.js");

/** The environment that points the server (or the single executable) at `s3`: credentials and storage settings. */
export function s3ServerEnv(s3: S3Server): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    OTLP2PARQUET_STORAGE_BACKEND: "s3",
    OTLP2PARQUET_S3_BUCKET: s3.bucket,
    OTLP2PARQUET_S3_ENDPOINT: s3.endpoint,
    OTLP2PARQUET_S3_REGION: "us-east-1",
  };
}

/** Starts s3rver on a free loopback port with a fresh data folder and one bucket; resolves once it answers. */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server> {
  const bucket = options.bucket ?? "test-bucket";
  const peer = await startPeerProcess({
    name: "s3rver",
    folderPrefix: "s3rver-",
    command: (port, directory) => ({
      program: "node",
      args: [
        // s3rver encrypts ListObjectsV2 continuation tokens with DES, which Node 20's OpenSSL 3 only has in
        // its legacy provider: without it every paginated listing answers 500.
        "--openssl-legacy-provider",
        S3RVER_BIN,
        "-d",
        directory,
        "-a",
        "127.0.0.1",
        "-p",
        String(port),
        "--silent",
        "--configure-bucket",
        bucket,
      ],
    }),
    portFromOutput: /listening on [\d.]+:(\d+)/,
    probePath: "/",
    startTimeoutMs: options.startTimeoutMs,
  });
  return {
    endpoint: `http://127.0.0.1:${peer.port}`,
    bucket,
    // s3rver's built-in account; it checks the key id and does not verify SigV4 signatures.
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    directory: peer.directory,
    stop: () => peer.stop(),
    kill: () => peer.kill(),
    restart: () => peer.restart(),
  };
}

/** A client of the server's bucket, to read what a test's server wrote as a consumer would. */
export function bucketOf(s3: S3Server, timeoutMs = 10_000): S3FetchStore {
  return new S3FetchStore({
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    timeoutMs,
  });
}
