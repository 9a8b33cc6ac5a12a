import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { formatFromName, gunzip, isGzip, signalFromName } from "./convert.ts";

Deno.test("gunzip() inflates, and refuses output beyond its bound with a RangeError", async () => {
  const text = new TextEncoder().encode("x".repeat(100_000));
  const gz = new Uint8Array(gzipSync(text));
  assert.ok(isGzip(gz));
  assert.ok(!isGzip(text));
  assert.deepEqual(await gunzip(gz), text);
  await assert.rejects(gunzip(gz, { maxBytes: 99_999 }), RangeError);
  await assert.rejects(gunzip(text.subarray(0, 10)), SyntaxError);
});

Deno.test("formatFromName() and signalFromName() read hints from file names", () => {
  assert.equal(formatFromName("a/logs.JSONL.gz"), "jsonl");
  assert.equal(formatFromName("x.ndjson"), "jsonl");
  assert.equal(formatFromName("trace.json"), "json");
  assert.equal(formatFromName("m.pb.gz"), "protobuf");
  assert.equal(formatFromName("request.bin"), undefined);
  assert.equal(signalFromName("metrics_sum.pb"), "metrics");
  assert.equal(signalFromName("trace.json"), "traces");
  assert.equal(signalFromName("logs-from-traces.pb"), undefined);
  assert.equal(signalFromName("data.pb"), undefined);
});
