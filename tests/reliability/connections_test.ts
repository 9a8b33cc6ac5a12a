/**
 * Connections cannot take the server down, and slow clients cannot hold its budget: on both runtimes (Deno,
 * as `deno task start`, and Bun, as the single executable) the server survives running out of descriptors
 * (EMFILE) and serves again, closes idle and slow-header connections by itself, and closes uploads that
 * trickle in below the minimum rate with 408; the in-flight budget is charged by the bytes that arrived, so
 * four uploads that declare 64 MiB and send a byte now and then do not make anyone else wait.
 *
 * Bounds are asserted by counting (connections the server closed, descriptors it holds, budget it charged,
 * bytes sent before a close), never by timing; the deadlines below only stop a broken server from hanging
 * the test.
 */

import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUDGET_STEP_BYTES } from "../../src/http/handler.ts";
import { startTestServer } from "../support/server.ts";
import { idLogsRequest } from "./otlp_proto.ts";
import { type ServerProcess, spawnServer, waitForStatus } from "./server_process.ts";

const utf8 = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LOGS = idLogsRequest("conn", ["a", "b", "c"], 1_700_000_000_000);
/** The descriptor limit the flooded server runs with. */
const FD_LIMIT = 256;
/** More connections than the server has descriptors for. */
const FLOOD = 400;

/** Polls `check` until it holds; fails after `ms` (a liveness guard, not a measured bound). */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function hostPort(url: string): { hostname: string; port: number } {
  const u = new URL(url);
  return { hostname: u.hostname, port: Number(u.port) };
}

/** Resolves with everything the server sent until it closed the connection (`closed`), or what came before `ms`. */
async function readUntilClosed(conn: Deno.Conn, ms = 30_000): Promise<{ text: string; closed: boolean }> {
  const decoder = new TextDecoder();
  let text = "";
  const buf = new Uint8Array(4096);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
  try {
    for (;;) {
      const n = await Promise.race([conn.read(buf).catch(() => null), timeout]);
      if (n === "timeout") return { text, closed: false };
      if (n === null) return { text, closed: true };
      text += decoder.decode(buf.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
}

async function post(url: string, body: Uint8Array = LOGS): Promise<number> {
  const r = await fetch(`${url}/v1/logs`, {
    method: "POST",
    body: body as Uint8Array<ArrayBuffer>,
    headers: { "content-type": "application/x-protobuf" },
  });
  await r.body?.cancel();
  return r.status;
}

const TRICKLE_HEAD = "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n" +
  `Content-Length: ${64 * 1024 * 1024}\r\n\r\n`;

/** An upload declaring 64 MiB that sends one byte every `everyMs` until the server answers or closes. */
function trickle(url: string, everyMs: number) {
  let sent = 0;
  const done = (async () => {
    const conn = await Deno.connect(hostPort(url));
    try {
      await conn.write(utf8.encode(TRICKLE_HEAD));
      const answer = readUntilClosed(conn, 60_000);
      let over = false;
      void answer.then(() => over = true);
      while (!over) {
        try {
          await conn.write(new Uint8Array(1));
          sent++;
        } catch {
          break; // closed by the server
        }
        await sleep(everyMs);
      }
      return await answer;
    } finally {
      try {
        conn.close();
      } catch {
        // closed
      }
    }
  })();
  return { sent: () => sent, done };
}

function connectionEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OTLP2PARQUET_STORAGE_PATH: dir,
    OTLP2PARQUET_WAL_DIR: join(dir, ".wal"),
    OTLP2PARQUET_HEADER_TIMEOUT_SECS: "1",
    OTLP2PARQUET_IDLE_TIMEOUT_SECS: "1",
    OTLP2PARQUET_BODY_RATE_GRACE_SECS: "1",
    ...extra,
  };
}

for (const runtime of ["deno", "bun"] as const) {
  Deno.test({
    name: `${runtime}: ${FLOOD} idle connections at ulimit -n ${FD_LIMIT} do not stop the server; ` +
      "idle, slow-header and trickling connections are closed by the server",
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async (t) => {
      const dir = mkdtempSync(join(tmpdir(), "otlp2parquet-conn-"));
      let server: ServerProcess | undefined;
      try {
        server = await spawnServer(connectionEnv(dir), { runtime, fdLimit: FD_LIMIT });
        const url = server.url;
        let exited = false;
        void server.exited.then(() => exited = true);
        const baseline = server.openFiles();

        await t.step(
          "the flood runs the server out of descriptors; it survives and closes them all",
          async () => {
            const conns: Deno.Conn[] = [];
            let peak = 0;
            const sampler = setInterval(() => peak = Math.max(peak, server!.openFiles() || 0), 20);
            try {
              for (let i = 0; i < FLOOD; i++) conns.push(await Deno.connect(hostPort(url)));
              // Every connection is left idle; the server must close each one itself.
              const results = await Promise.all(conns.map((c) => readUntilClosed(c, 60_000)));
              const closed = results.filter((r) => r.closed).length;
              assert.equal(closed, FLOOD, `connections closed by the server: ${closed} of ${FLOOD}`);
              assert.ok(
                results.every((r) => r.text === ""),
                "an idle connection gets no answer, only a close",
              );
            } finally {
              clearInterval(sampler);
              for (const c of conns) {
                try {
                  c.close();
                } catch {
                  // closed
                }
              }
            }
            assert.ok(
              peak >= FD_LIMIT - 8,
              `the flood reached the descriptor limit: peak ${peak} of ${FD_LIMIT}`,
            );
            assert.equal(exited, false, `the server is still running:\n${server!.output().slice(-2000)}`);
            assert.ok(await waitForStatus(`${url}/health`), "/health answers again");
            assert.equal(await post(url), 200, "a valid request is accepted again");
            await waitFor("descriptors to return to the baseline", () => server!.openFiles() <= baseline + 4);
            if (runtime === "deno") {
              assert.match(server!.output(), /cannot accept connections/, "the accept error was logged");
            }
          },
        );

        await t.step("slow headers: closed before they are complete, unanswered", async () => {
          const conn = await Deno.connect(hostPort(url));
          const head = utf8.encode(`GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ${"a".repeat(400)}\r\n\r\n`);
          const answer = readUntilClosed(conn, 60_000);
          let over = false;
          void answer.then(() => over = true);
          let sent = 0;
          // One byte every 100 ms: the whole header would take 40 s, past either runtime's header timeout.
          while (!over && sent < head.length) {
            try {
              await conn.write(head.subarray(sent, sent + 1));
              sent++;
            } catch {
              break;
            }
            await sleep(100);
          }
          const { text, closed } = await answer;
          conn.close();
          assert.ok(closed, "the server closed the connection");
          assert.ok(
            sent < head.length,
            `closed before the headers were complete (${sent} of ${head.length} bytes)`,
          );
          assert.equal(text, "", "no answer to a request whose headers never completed");
        });

        await t.step("a kept-alive connection is closed after the idle timeout", async () => {
          const conn = await Deno.connect(hostPort(url));
          await conn.write(utf8.encode("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
          const { text, closed } = await readUntilClosed(conn, 60_000);
          conn.close();
          assert.match(text, /^HTTP\/1\.1 200/, "the request was answered");
          assert.equal((text.match(/HTTP\/1\.1/g) ?? []).length, 1, "one answer, then nothing");
          assert.ok(closed, "then the server closed the idle connection");
        });

        await t.step("a trickling upload gets 408 and its connection is closed; others get 200", async () => {
          const trickler = trickle(url, 100);
          await waitFor("the trickler to start", () => trickler.sent() > 2);
          assert.equal(await post(url), 200, "a normal client is served meanwhile");
          const { text, closed } = await trickler.done;
          assert.match(text, /^HTTP\/1\.1 408/, `408 for the trickler: ${text.slice(0, 200)}`);
          assert.ok(closed, "and the connection closed");
          assert.ok(trickler.sent() < 1000, `refused long before 64 MiB: after ${trickler.sent()} bytes`);
        });
      } finally {
        await server?.kill();
        await rm(dir, { recursive: true, force: true });
      }
    },
  });
}

Deno.test({
  name: "four uploads declaring 64 MiB and trickling hold only what they sent; a fifth client gets 200s",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // The defaults (64 MiB payload, 256 MiB in flight): reserving the declared sizes would take it all.
    const server = await startTestServer({
      env: { OTLP2PARQUET_BODY_RATE_GRACE_SECS: "3", OTLP2PARQUET_MIN_BODY_RATE_BYTES_PER_SEC: "1024" },
    });
    const ingest = server.server.ingest;
    try {
      const tricklers = Array.from({ length: 4 }, () => trickle(server.url, 100));
      await waitFor("the tricklers to be admitted", () => tricklers.every((t) => t.sent() > 0));
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) {
        statuses.push(await post(server.url));
        // Between two requests of the fifth client only the tricklers hold budget.
        const sent = tricklers.reduce((n, t) => n + t.sent(), 0);
        const held = ingest.stats().inflightBytes;
        assert.ok(
          held <= sent + 4 * BUDGET_STEP_BYTES,
          `the tricklers hold ${held} bytes of budget for ${sent} bytes sent (+ ${BUDGET_STEP_BYTES} each)`,
        );
      }
      assert.deepEqual(statuses, Array(10).fill(200), "the fifth client is never refused");
      const answers = await Promise.all(tricklers.map((t) => t.done));
      for (const { text, closed } of answers) {
        assert.match(text, /^HTTP\/1\.1 408/, `408: ${text.slice(0, 120)}`);
        assert.match(text, /slower than 1024 bytes\/s/, "refused for its rate, not the 30 s timeout");
        assert.ok(closed, "the trickler's connection is closed");
      }
      await waitFor("the budget to be whole again", () => ingest.stats().inflightBytes === 0);
    } finally {
      await server.dispose();
    }
  },
});
