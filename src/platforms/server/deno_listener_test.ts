import assert from "node:assert/strict";
import { serveConnections } from "./deno_listener.ts";

const utf8 = new TextEncoder();

async function waitFor(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Everything the server sends until it closes the connection. */
async function readAll(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return text;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
}

Deno.test("serveConnections() closes connections that send no complete headers, and kept-alive ones left idle", async () => {
  const server = serveConnections(() => Promise.resolve(new Response("ok")), {
    hostname: "127.0.0.1",
    port: 0,
    headerTimeoutMs: 100,
    idleTimeoutMs: 100,
  });
  const [hostname, port] = server.address.split(":");
  const connect = () => Deno.connect({ hostname, port: Number(port) });
  try {
    const silent = await connect();
    const partial = await connect();
    await partial.write(utf8.encode("GET / HTTP/1.1\r\nHost: x\r\n"));
    const kept = await connect();
    await kept.write(utf8.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const answers = await Promise.all([silent, partial, kept].map(readAll));
    assert.deepEqual(answers.slice(0, 2), ["", ""], "no answer without complete headers");
    assert.match(answers[2], /^HTTP\/1\.1 200 OK[\s\S]*ok$/, "the complete request is answered, once");
    for (const c of [silent, partial, kept]) c.close();
    await waitFor("the connections to be gone", () => server.stats().open === 0);
    const stats = server.stats();
    assert.equal(stats.accepted, 3);
    assert.equal(stats.timedOut, 3, "all three closed by a timeout");
  } finally {
    await server.stop();
  }
});

Deno.test("serveConnections().stop() closes idle connections and lets a request in progress finish", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  let started = false;
  const server = serveConnections(async () => {
    started = true;
    await held;
    return new Response("done");
  }, { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 60_000, idleTimeoutMs: 60_000 });
  const [hostname, port] = server.address.split(":");
  const idle = await Deno.connect({ hostname, port: Number(port) });
  const busy = await Deno.connect({ hostname, port: Number(port) });
  await busy.write(utf8.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  await waitFor("the request to start", () => started);
  let stopped = false;
  const stopping = server.stop().then(() => stopped = true);
  assert.equal(await readAll(idle), "", "the idle connection is closed unanswered");
  assert.equal(stopped, false, "stop() waits for the request in progress");
  release();
  const answer = await readAll(busy);
  assert.match(answer, /^HTTP\/1\.1 200 OK[\s\S]*done$/, "which is answered, then closed");
  await stopping;
  assert.equal(server.stats().open, 0);
  idle.close();
  busy.close();
});
