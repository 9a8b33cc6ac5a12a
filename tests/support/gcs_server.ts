/**
 * A real Google Cloud Storage emulator for tests: fake-gcs-server (Go module proxy:
 * `go install github.com/fsouza/fake-gcs-server@v1.56.1`, which `.ci/run` does) on 127.0.0.1 with a
 * filesystem backend, so a stop or a kill and a restart keep the objects, as a real outage would.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { startPeerProcess } from "./peer_process.ts";

export interface GcsServer {
  /** "http://127.0.0.1:<port>" */
  endpoint: string;
  bucket: string;
  stop(): Promise<void>;
  kill(): void;
  restart(): Promise<void>;
}

/** Where fake-gcs-server is: `$FAKE_GCS_SERVER`, Go's bin folder, or the PATH; undefined when not installed. */
export function fakeGcsServerPath(): string | undefined {
  const candidates = [process.env.FAKE_GCS_SERVER];
  try {
    const gobin = execFileSync("go", ["env", "GOBIN", "GOPATH"], { encoding: "utf8" }).split("\n");
    if (gobin[0]) candidates.push(join(gobin[0], "fake-gcs-server"));
    if (gobin[1]) candidates.push(join(gobin[1], "bin", "fake-gcs-server"));
  } catch {
    // No Go toolchain: only the other places.
  }
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir) candidates.push(join(dir, "fake-gcs-server"));
  }
  return candidates.find((path) => path !== undefined && existsSync(path));
}

/** Why GCS tests are skipped here, or undefined when they can run. */
export const GCS_SKIP_REASON = fakeGcsServerPath() === undefined
  ? "fake-gcs-server is not installed (go install github.com/fsouza/fake-gcs-server@v1.56.1; .ci/run does it)"
  : undefined;

/** Starts fake-gcs-server with one bucket on a free loopback port; resolves once it answers. */
export async function startGcsServer(options: { bucket?: string } = {}): Promise<GcsServer> {
  const program = fakeGcsServerPath();
  if (program === undefined) throw new Error(GCS_SKIP_REASON);
  const bucket = options.bucket ?? "test-bucket";
  const peer = await startPeerProcess({
    name: "fake-gcs-server",
    folderPrefix: "fake-gcs-",
    command: (port, directory) => ({
      program,
      args: [
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        String(port),
        "-public-host",
        `127.0.0.1:${port}`,
        "-external-url",
        `http://127.0.0.1:${port}`,
        "-backend",
        "filesystem",
        "-filesystem-root",
        directory,
        "-log-level",
        "error",
      ],
    }),
    probePath: "/storage/v1/b",
    afterStart: async (port) => {
      // Creating an existing bucket answers 409, which a restart meets: the bucket is there either way.
      const response = await fetch(`http://127.0.0.1:${port}/storage/v1/b`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: bucket }),
      });
      await response.body?.cancel();
      if (!response.ok && response.status !== 409) {
        throw new Error(`fake-gcs-server refused to create bucket ${bucket}: ${response.status}`);
      }
    },
  });
  return {
    endpoint: `http://127.0.0.1:${peer.port}`,
    bucket,
    stop: () => peer.stop(),
    kill: () => peer.kill(),
    restart: () => peer.restart(),
  };
}
