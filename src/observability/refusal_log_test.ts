/**
 * Tests of the refusal log's rate limit, on a clock the test moves: the lines per window, the count in
 * the "suppressed" summary, windows per (path class, status), and summaries on close. Lines are counted;
 * nothing here depends on how long the test takes.
 */

import assert from "node:assert/strict";
import { newOutcome, type RequestInfo, type RequestOutcome } from "../http/handler.ts";
import { createLogger } from "../platforms/server/log.ts";
import { RefusalLog } from "./refusal_log.ts";

function outcome(path: string, status: number, message = "no such path"): RequestOutcome {
  const reason = status === 404 ? "not_found" : "too_large";
  return { ...newOutcome(), path, contentEncoding: "gzip", status, reason, message };
}

function setup(linesPerWindow = 5, windowMs = 60_000) {
  const lines: string[] = [];
  let now = 1_000_000;
  const log = new RefusalLog(createLogger({ format: "json", write: (l) => lines.push(l) }), {
    linesPerWindow,
    windowMs,
    now: () => now,
  });
  const info: RequestInfo = { remoteAddr: { hostname: "10.1.2.3", port: 5555 } };
  const send = (path: string, status: number, n = 1) => {
    for (let i = 0; i < n; i++) {
      log.observe(
        outcome(path, status),
        new Request(`http://x${path}`, {
          method: "POST",
          headers: {
            "content-type": "application/x-protobuf",
            "content-encoding": "gzip",
            "content-length": "42",
          },
        }),
        info,
      );
    }
  };
  return {
    lines,
    parsed: () => lines.map((l) => JSON.parse(l)),
    send,
    log,
    advance: (ms: number) => now += ms,
  };
}

Deno.test("a refusal is logged at warn with path, status, content type and encoding, length, client and reason", () => {
  const t = setup();
  t.send("/v1/log", 404);
  const [line] = t.parsed();
  assert.equal(line.level, "warn");
  assert.equal(line.path, "/v1/log");
  assert.equal(line.status, 404);
  assert.equal(line.refusal, "not_found");
  assert.equal(line.reason, "no such path");
  assert.equal(line.contentType, "application/x-protobuf");
  assert.equal(line.contentEncoding, "gzip");
  assert.equal(line.contentLength, "42");
  assert.equal(line.client, "10.1.2.3:5555");
});

Deno.test("answers below 400 are not logged", () => {
  const t = setup();
  const ok = { ...outcome("/v1/logs", 200), reason: undefined, message: "" };
  t.log.observe(ok, new Request("http://x/v1/logs"), undefined);
  assert.equal(t.lines.length, 0);
});

Deno.test("a burst of 1000 refusals gives the bound of lines, then one summary with the right count", () => {
  const t = setup(5);
  t.send("/nope", 404, 1000);
  assert.equal(t.lines.length, 5);
  t.advance(60_000);
  t.send("/elsewhere", 404); // the same key (other, 404): ends the window, then starts a new one
  const lines = t.parsed();
  assert.equal(lines.length, 7);
  assert.match(lines[5].message, /^suppressed 995 similar refusals in the last 60 s$/);
  assert.deepEqual([lines[5].path, lines[5].status, lines[5].suppressed], ["other", 404, 995]);
  assert.equal(lines[6].path, "/elsewhere");
});

Deno.test("keys are (path class, status): each has its own bound", () => {
  const t = setup(2);
  t.send("/v1/logs", 413, 10);
  t.send("/v1/logs", 415, 10);
  t.send("/v1/traces", 413, 10);
  t.send("/a", 404, 10);
  t.send("/b", 404, 10);
  assert.equal(t.lines.length, 8);
  t.log.close();
  const summaries = t.parsed().slice(8).map((l) => [l.path, l.status, l.suppressed]);
  assert.deepEqual(summaries, [
    ["/v1/logs", 413, 8],
    ["/v1/logs", 415, 8],
    ["/v1/traces", 413, 8],
    ["other", 404, 18],
  ]);
  t.log.close(); // idempotent: nothing is summarised twice
  assert.equal(t.lines.length, 12);
});

Deno.test("the window's timer logs the summary when no refusal follows", async () => {
  const t = setup(1, 20);
  t.send("/x", 404, 4);
  assert.equal(t.lines.length, 1);
  t.advance(20);
  // The timer runs on the real clock (20 ms); wait for its line, counted, with a generous bound.
  for (let i = 0; i < 500 && t.lines.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(t.lines.length, 2);
  assert.equal(t.parsed()[1].suppressed, 3);
});

Deno.test("client texts in a line are cut short", () => {
  const t = setup();
  t.send("/" + "a".repeat(5000), 404);
  assert.ok(t.parsed()[0].path.length <= 260);
});
