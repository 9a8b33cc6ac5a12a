/**
 * Bench only, never the product: the serial front of the server alone, to measure its ceiling
 * (`bench/scaling.ts`, "main-thread ceiling"). The server's own accept loop (`serveConnections`,
 * `Deno.serveHttp` per connection, as `otlp2parquet serve` runs on Deno), the route table, and the body read
 * with the server's inflater (`readBody` + `node:zlib`), then the empty OTLP success answer. The body is
 * not decoded, logged or batched: a sink that acknowledges without doing anything.
 *
 * ```sh
 * deno run -A bench/accept_server.ts --listen 127.0.0.1:4318
 * ```
 *
 * `GET /health` answers 200. Prints `listening on ADDR` once up.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { formatOf, ROUTES } from "../src/http/handler.ts";
import { readBody } from "../src/http/body.ts";
import { exportResponse } from "../src/http/otlp_response.ts";
import { nodeInflateSync } from "../src/platforms/node_codecs.ts";
import { serveConnections } from "../src/platforms/server/deno_listener.ts";

const MAX_BODY = 64 * 1024 * 1024;

/** The handler: reads every OTLP body whole (decompressed as the server does) and acknowledges it. */
export async function acceptOnly(request: Request): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (path === "/health") return new Response("ok");
  const route = Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
  if (!route || request.method !== "POST") return new Response("not found", { status: 404 });
  const format = formatOf(request.headers.get("content-type"));
  const body = await readBody(request.body, {
    encoding: request.headers.get("content-encoding"),
    maxBytes: MAX_BODY,
    inflateSync: nodeInflateSync,
  });
  if (body.length === 0) return new Response("empty body", { status: 400 });
  const answer = exportResponse(route.signal, format === "protobuf" ? "protobuf" : "json");
  return new Response(answer.body, { status: 200, headers: { "content-type": answer.contentType } });
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { listen: { type: "string" } } });
  const listen = values.listen ?? Deno.env.get("OTLP2PARQUET_LISTEN_ADDR") ?? "127.0.0.1:4318";
  const at = listen.lastIndexOf(":");
  const server = serveConnections(acceptOnly, {
    hostname: listen.slice(0, at),
    port: Number(listen.slice(at + 1)),
    headerTimeoutMs: 10_000,
    idleTimeoutMs: 60_000,
  });
  console.log(`listening on ${server.address}`);
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => server.stop().then(() => Deno.exit(0)));
  }
}
