/**
 * A real Azure Blob Storage emulator for tests: Azurite (npm `azurite`, a devDependency) on 127.0.0.1,
 * blob service only, with its well-known development account. Data lives in a folder, so a stop or a kill
 * and a restart keep the blobs, as a real outage would.
 */
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { resolve } from "node:path";
import { startPeerProcess } from "./peer_process.ts";

/** Azurite's built-in development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface AzuriteServer {
  /** The blob endpoint with the account in the path: "http://127.0.0.1:<port>/devstoreaccount1" */
  endpoint: string;
  container: string;
  account: string;
  accountKey: string;
  stop(): Promise<void>;
  kill(): void;
  restart(): Promise<void>;
}

const AZURITE_BLOB = resolve(import.meta.dirname ?? ".", "../../node_modules/azurite/dist/src/blob/main.js");

/** Starts Azurite's blob service with one container on a free loopback port; resolves once it answers. */
export async function startAzurite(options: { container?: string } = {}): Promise<AzuriteServer> {
  const container = options.container ?? "test-container";
  const peer = await startPeerProcess({
    name: "azurite",
    folderPrefix: "azurite-",
    command: (port, directory) => ({
      program: "node",
      args: [
        AZURITE_BLOB,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        String(port),
        "--location",
        directory,
        "--silent",
        "--skipApiVersionCheck",
        "--disableTelemetry",
      ],
    }),
    probePath: `/${AZURITE_ACCOUNT}?comp=list`,
    afterStart: async (port) => {
      // An existing container answers 409, which a restart meets: the container is there either way.
      const response = await sharedKeyRequest(
        "PUT",
        `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}/${container}?restype=container`,
      );
      if (!response.ok && response.status !== 409) {
        throw new Error(`azurite refused to create container ${container}: ${response.status}`);
      }
    },
  });
  return {
    endpoint: `http://127.0.0.1:${peer.port}/${AZURITE_ACCOUNT}`,
    container,
    account: AZURITE_ACCOUNT,
    accountKey: AZURITE_KEY,
    stop: () => peer.stop(),
    kill: () => peer.kill(),
    restart: () => peer.restart(),
  };
}

/** One request signed with the account key (Shared Key authorization, blob service); the body is drained. */
async function sharedKeyRequest(method: string, url: string): Promise<Response> {
  const target = new URL(url);
  const headers: Record<string, string> = {
    "x-ms-date": new Date().toUTCString(),
    "x-ms-version": "2021-10-04",
  };
  const canonicalHeaders = Object.keys(headers).sort().map((name) => `${name}:${headers[name]}\n`).join("");
  const query = [...target.searchParams].sort(([a], [b]) => a < b ? -1 : 1)
    .map(([name, value]) => `\n${name.toLowerCase()}:${value}`).join("");
  // Path-style emulator URLs carry the account in the path, and the resource names it once more.
  const resource = `/${AZURITE_ACCOUNT}${target.pathname}${query}`;
  // VERB, then eleven standard headers (all empty here), then x-ms-* headers and the resource.
  const stringToSign = `${method}\n${"\n".repeat(11)}${canonicalHeaders}${resource}`;
  const signature = createHmac("sha256", Buffer.from(AZURITE_KEY, "base64")).update(stringToSign).digest(
    "base64",
  );
  const response = await fetch(url, {
    method,
    headers: { ...headers, authorization: `SharedKey ${AZURITE_ACCOUNT}:${signature}` },
  });
  await response.body?.cancel();
  return response;
}
