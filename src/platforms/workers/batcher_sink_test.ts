import assert from "node:assert/strict";
import { type Decoded, decodeRequest } from "../../core/convert.ts";
import { OverloadedError, UnavailableError } from "../../ingest/errors.ts";
import { limitRequest } from "../../ingest/request_limits.ts";
import {
  type BatcherMeta,
  BatcherSink,
  decodeBatcherMessage,
  type DurableObjectNamespaceLike,
  encodeBatcherMessage,
  partsOf,
  shardOf,
} from "./batcher_sink.ts";

const T0 = 1764150000000000000n;
const HOUR_NS = 3_600_000_000_000n;

function logs(records: [service: string, time: bigint][]) {
  const body = new TextEncoder().encode(JSON.stringify({
    resourceLogs: records.map(([service, time]) => ({
      resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
      scopeLogs: [{ logRecords: [{ timeUnixNano: String(time), body: { stringValue: "x" } }] }],
    })),
  }));
  return { body, decoded: decodeRequest("logs", body, { format: "json" }) };
}

/** The partitions a request keeps under the default limits. */
const kept = (decoded: Decoded) => limitRequest(decoded, {}, undefined).parts;

/** A namespace whose objects answer with `answer` (or throw it), recording what they were sent. */
function namespace(answer: () => Response) {
  const calls: { name: string; body: Uint8Array }[] = [];
  const ns: DurableObjectNamespaceLike = {
    idFromName: (name) => name,
    get: (id) => ({
      fetch: async (_url, init) => {
        calls.push({
          name: id as string,
          body: new Uint8Array(await new Response(init?.body).arrayBuffer()),
        });
        return answer();
      },
    }),
  };
  return { ns, calls };
}

Deno.test("partsOf() lists each (table, service, hour) of a request with its rows and decoded bytes", () => {
  const { decoded } = logs([["a", T0], ["a", T0 + 1n], ["b", T0], ["a", T0 + HOUR_NS]]);
  const parts = partsOf(kept(decoded));
  assert.deepEqual(
    parts.map(([table, service, hour, rows]) => [table, service, hour, rows]),
    [["otel_logs", "a", 490041, 2], ["otel_logs", "b", 490041, 1], ["otel_logs", "a", 490042, 1]],
  );
  // The bytes add up to the decoded rows' own count, as the server's batches count them.
  const total = decoded.tables[0].byteLength();
  const sum = parts.reduce((n, p) => n + p[4], 0);
  assert.ok(sum >= total && sum <= total + parts.length, `${sum} vs ${total}`);
});

Deno.test("shardOf() is stable, in range, and follows the service with the most rows", () => {
  const a = partsOf(kept(logs([["checkout", T0], ["checkout", T0 + 1n], ["cart", T0]]).decoded));
  const b = partsOf(kept(logs([["checkout", T0]]).decoded));
  for (const shards of [1, 2, 7, 64]) {
    const s = shardOf("logs", a, shards);
    assert.ok(s >= 0 && s < shards);
    assert.equal(s, shardOf("logs", b, shards), "the main service decides");
  }
  assert.equal(shardOf("logs", a, 1), 0);
  const spread = new Set(
    Array.from({ length: 40 }, (_, i) => shardOf("logs", [["otel_logs", `s${i}`, 0, 1, 1]], 8)),
  );
  assert.ok(spread.size >= 6, `40 services over 8 shards used ${spread.size}`);
});

Deno.test("decodeBatcherMessage() reads what encodeBatcherMessage() wrote and refuses broken messages", () => {
  const body = new Uint8Array([1, 2, 3, 0, 255]);
  const meta: BatcherMeta = {
    signal: "logs",
    format: "protobuf",
    arrived: 5,
    parts: [["otel_logs", "a", 1, 2, 3]],
  };
  const message = encodeBatcherMessage(meta, body);
  const out = decodeBatcherMessage(message);
  assert.deepEqual(out.meta, meta);
  assert.deepEqual(out.body, body);
  assert.throws(() => decodeBatcherMessage(message.subarray(0, 3)), SyntaxError);
  assert.throws(() => decodeBatcherMessage(message.subarray(0, 10)), SyntaxError);
  assert.throws(() => decodeBatcherMessage(encodeBatcherMessage({} as never, body)), SyntaxError);
});

Deno.test("BatcherSink.accept() sends the body to the request's shard and resolves on the batcher's 2xx", async () => {
  const { ns, calls } = namespace(() => new Response(null, { status: 204 }));
  const sink = new BatcherSink(ns, { shards: 4 });
  const { body, decoded } = logs([["checkout", T0]]);
  await sink.accept({ signal: "logs", format: "json", body, decoded });
  assert.equal(calls.length, 1);
  assert.equal(calls[0].name, `shard-${shardOf("logs", partsOf(kept(decoded)), 4)}`);
  const sent = decodeBatcherMessage(calls[0].body);
  assert.deepEqual(sent.body, body);
  assert.deepEqual(sent.meta.parts, partsOf(kept(decoded)));
});

Deno.test("BatcherSink.accept() turns refusals and failures of the batcher into 503/429, never a 200", async () => {
  const { body, decoded } = logs([["checkout", T0]]);
  const request = { signal: "logs" as const, format: "json" as const, body, decoded };
  const full = namespace(() =>
    Response.json({ message: "batcher storage full", retryAfterSecs: 10 }, { status: 503 })
  );
  await assert.rejects(
    new BatcherSink(full.ns).accept(request),
    (e) => e instanceof UnavailableError && e.retryAfterSecs === 10 && /storage full/.test(e.message),
  );
  const busy = namespace(() => new Response("busy", { status: 429, headers: { "retry-after": "2" } }));
  await assert.rejects(
    new BatcherSink(busy.ns).accept(request),
    (e) => e instanceof OverloadedError && e.retryAfterSecs === 2,
  );
  const reset = namespace(() => {
    throw new Error("Durable Object reset because its code was updated.");
  });
  await assert.rejects(
    new BatcherSink(reset.ns).accept(request),
    (e) => e instanceof UnavailableError && /batcher unavailable: Durable Object reset/.test(e.message),
  );
});

Deno.test("BatcherSink.admit() bounds the bytes in flight and always admits one request alone", () => {
  const sink = new BatcherSink(namespace(() => new Response(null)).ns, { maxInflightBytes: 100 });
  const big = sink.admit(1000);
  assert.throws(() => sink.admit(1), OverloadedError);
  big();
  big(); // releasing twice frees once
  const a = sink.admit(60);
  assert.throws(() => sink.admit(60), OverloadedError);
  const b = sink.admit(40);
  a();
  b();
  sink.admit(100)();
});

Deno.test("BatcherSink.accept() applies the request limits: refused records are reported and never sent", async () => {
  const { ns, calls } = namespace(() => new Response(null, { status: 204 }));
  const { body, decoded } = logs([["a", T0], ["a", T0 + 1n], ["b", T0]]);
  const capped = await new BatcherSink(ns, { limits: { maxPartitions: 1 } })
    .accept({ signal: "logs", format: "json", body, decoded });
  assert.equal(capped.rejected, 1);
  assert.match(capped.rejectMessage, /max_partitions_per_request/);
  assert.deepEqual(decodeBatcherMessage(calls[0].body).meta.parts.map((p) => [p[1], p[3]]), [["a", 2]]);
  // Ten days after the records' time, with a one-day window: nothing is kept, nothing is sent.
  const late = Number(T0 / 1_000_000n) + 10 * 86_400_000;
  const windowed = await new BatcherSink(ns, { limits: { acceptPastMs: 86_400_000 }, now: () => late })
    .accept({ signal: "logs", format: "json", body, decoded });
  assert.equal(windowed.rejected, 3);
  assert.equal(calls.length, 1);
});
