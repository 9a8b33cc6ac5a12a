/**
 * How long `/health` waits while a server decodes a large request: sends one protobuf logs request of
 * `N` records (default 150 000, 43 MB) to a running server at `URL` (default `http://127.0.0.1:4318`) and
 * polls `/health` every 5 ms until it is answered; prints the worst `/health` latency meanwhile. Run a
 * fresh server (`deno task start`), then
 * `N=150000 node_modules/.bin/deno run -A bench/decode_health.ts`.
 *
 * @module
 */

import { encodeProtobuf, generateRequest } from "./data.ts";

const url = Deno.env.get("URL") ?? "http://127.0.0.1:4318";
const body = encodeProtobuf("logs", generateRequest("logs", Number(Deno.env.get("N") ?? 150_000)));
let done = false;
const start = performance.now();
const big = fetch(`${url}/v1/logs`, {
  method: "POST",
  body,
  headers: { "content-type": "application/x-protobuf" },
}).then(async (r) => {
  await r.arrayBuffer();
  done = true;
  return { status: r.status, ms: performance.now() - start };
});
let worst = 0, polls = 0;
while (!done) {
  const s = performance.now();
  await (await fetch(`${url}/health`)).text();
  polls++;
  if (!done) worst = Math.max(worst, performance.now() - s);
  await new Promise((r) => setTimeout(r, 5));
}
const { status, ms } = await big;
console.log(
  `${(body.length / 1e6).toFixed(1)} MB request: ${status} after ${ms.toFixed(0)} ms; ` +
    `${polls} /health answers meanwhile, the slowest in ${worst.toFixed(0)} ms`,
);
