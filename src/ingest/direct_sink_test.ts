import assert from "node:assert/strict";
import { decodeRequest } from "../core/convert.ts";
import { createHandler } from "../http/handler.ts";
import { loadParquetWasm } from "../platforms/wasm.ts";
import { MemoryStore } from "../storage/memory_store.ts";
import { StorageError } from "../storage/object_store.ts";
import { DirectSink } from "./direct_sink.ts";
import { OverloadedError, UnavailableError } from "./errors.ts";
import { BASE_HOUR, consecutiveHours, hoursRequest } from "./testdata/spread_requests.ts";

await loadParquetWasm();

const encoder = new TextEncoder();
const HOUR_NS = 3_600_000_000_000n;
const T0 = 1_700_000_000_000_000_000n;

/** An OTLP/JSON logs request: `perService` records for each service, spread over two event hours. */
function logsBody(services: string[], perService: number): Uint8Array<ArrayBuffer> {
  return encoder.encode(JSON.stringify({
    resourceLogs: services.map((service) => ({
      resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
      scopeLogs: [{
        logRecords: Array.from({ length: perService }, (_, i) => ({
          timeUnixNano: String(T0 + BigInt(i % 2) * HOUR_NS + BigInt(i)),
          body: { stringValue: `${service} record ${i}` },
        })),
      }],
    })),
  }));
}

function request(services: string[], perService: number) {
  const body = logsBody(services, perService);
  return {
    signal: "logs" as const,
    format: "json" as const,
    body,
    decoded: decodeRequest("logs", body, { format: "json" }),
  };
}

const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" });

Deno.test("DirectSink.accept() writes every file of the request before it resolves", async () => {
  const store = new MemoryStore();
  const sink = new DirectSink(store, { files: { instanceId: "fn-1" } });
  await sink.accept(request(["api", "db", "web"], 6));
  // 3 services x 2 event hours.
  const keys = await store.list("");
  assert.equal(keys.length, 6);
  for (const key of keys) {
    assert.match(
      key,
      /^logs\/(api|db|web)\/year=2023\/month=11\/day=14\/hour=2[23]\/.*-fn-1-[0-9a-f]{16}\.parquet$/,
    );
    const bytes = (await store.get(key))!;
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "PAR1");
    assert.equal(new TextDecoder().decode(bytes.subarray(bytes.length - 4)), "PAR1");
  }
  assert.deepEqual(sink.stats(), {
    requests: 1,
    objects: 6,
    rows: 18,
    retries: 0,
    failures: 0,
    inflightBytes: 0,
    rejected: 0,
  });
  assert.equal(sink.ready(), true);
});

Deno.test("DirectSink.admit() refuses beyond the in-flight budget with OverloadedError and frees on release", () => {
  const sink = new DirectSink(new MemoryStore(), { maxInflightBytes: 1000 });
  const first = sink.admit(600);
  assert.throws(
    () => sink.admit(600),
    (e: unknown) => e instanceof OverloadedError && e.retryAfterSecs === 1,
  );
  const second = sink.admit(400);
  assert.equal(sink.stats().inflightBytes, 1000);
  first();
  first(); // releasing twice frees once
  assert.equal(sink.stats().inflightBytes, 400);
  second();
  // A request larger than the whole budget is still admitted alone (clamped), so it can never starve.
  const big = sink.admit(1_000_000);
  assert.equal(sink.stats().inflightBytes, 1000);
  assert.throws(() => sink.admit(1), OverloadedError);
  big();
  assert.equal(sink.stats().inflightBytes, 0);
});

Deno.test("DirectSink.accept() retries a retryable failure a few times, then throws UnavailableError in bounded time", async () => {
  const store = new MemoryStore();
  store.failWith(refused());
  const sink = new DirectSink(store, { retries: 3, retryInitialMs: 20, retryAfterSecs: 7 });
  const started = performance.now();
  await assert.rejects(sink.accept(request(["api"], 1)), (e: unknown) => {
    assert.ok(e instanceof UnavailableError);
    assert.equal(e.retryAfterSecs, 7);
    assert.match(e.message, /object store unavailable: .*ECONNREFUSED.*retry later/);
    assert.ok(e.cause instanceof StorageError);
    return true;
  });
  // Delays of at most 20 + 40 + 80 ms.
  assert.ok(performance.now() - started < 1000);
  assert.equal(sink.stats().retries, 3);
  assert.equal(sink.stats().failures, 1);
  assert.equal(sink.stats().requests, 0);
});

Deno.test("DirectSink.accept() stops retrying at the retry budget", async () => {
  const store = new MemoryStore();
  store.failWith(refused());
  const sink = new DirectSink(store, { retries: 100, retryInitialMs: 50, retryBudgetMs: 300 });
  const started = performance.now();
  await assert.rejects(sink.accept(request(["api"], 1)), UnavailableError);
  const took = performance.now() - started;
  assert.ok(took < 600, `took ${took} ms`);
  assert.ok(sink.stats().retries >= 2 && sink.stats().retries <= 5, `retries ${sink.stats().retries}`);
});

Deno.test("DirectSink.accept() succeeds when the store recovers during the retries", async () => {
  const store = new MemoryStore();
  store.failWith(refused());
  const sink = new DirectSink(store, { retries: 5, retryInitialMs: 40 });
  const healed = setTimeout(() => store.failWith(undefined), 30);
  try {
    await sink.accept(request(["api", "db"], 2));
  } finally {
    clearTimeout(healed);
  }
  assert.equal(store.size, 4);
  assert.ok(sink.stats().retries >= 1);
  assert.equal(sink.stats().requests, 1);
});

Deno.test("DirectSink.accept() does not retry a permanent failure and still throws UnavailableError", async () => {
  const store = new MemoryStore();
  store.failWith(
    new StorageError("NoSuchBucket: the bucket does not exist", { retryable: false, code: "NoSuchBucket" }),
  );
  const sink = new DirectSink(store, { retries: 3, retryInitialMs: 1000 });
  const started = performance.now();
  await assert.rejects(sink.accept(request(["api", "db", "web"], 2)), (e: unknown) => {
    assert.ok(e instanceof UnavailableError);
    assert.match(e.message, /refused the write: .*NoSuchBucket/);
    return true;
  });
  assert.ok(performance.now() - started < 500);
  assert.equal(sink.stats().retries, 0);
});

Deno.test("DirectSink behind createHandler(): 200 after the write, 503 with Retry-After when the store is down", async () => {
  const store = new MemoryStore();
  const handler = createHandler({ sink: new DirectSink(store, { retries: 1, retryInitialMs: 10 }) });
  const post = (body: Uint8Array<ArrayBuffer>) =>
    handler(
      new Request("http://localhost/v1/logs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      }),
    );
  const ok = await post(logsBody(["api"], 3));
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), {});
  assert.equal(store.size, 2);

  store.failWith(refused());
  const down = await post(logsBody(["web"], 1));
  assert.equal(down.status, 503);
  assert.equal(down.headers.get("retry-after"), "5");
  assert.match((await down.json()).message, /object store unavailable/);

  store.failWith(new StorageError("AccessDenied", { retryable: false }));
  const denied = await post(logsBody(["web"], 1));
  assert.equal(denied.status, 503);
  await denied.body?.cancel();
  assert.equal(store.size, 2);
});

Deno.test("DirectSink.accept() writes at most maxPartitions objects for 20,000 records in 20,000 hours", async () => {
  const store = new MemoryStore();
  const sink = new DirectSink(store, { files: { instanceId: "fn-1" } });
  const out = await sink.accept(hoursRequest(consecutiveHours(20_000)));
  // The default cap (128): one object per partition kept, the other 19,872 records refused, not dropped silently.
  assert.equal(store.size, 128);
  assert.equal(sink.stats().objects, 128);
  assert.equal(out.rejected, 20_000 - 128);
  assert.match(out.rejectMessage, /19872 records refused: the request spans 20000 partitions .* at most 128/);
  assert.equal(sink.stats().rejected, 20_000 - 128);
});

Deno.test("DirectSink behind createHandler() reports refused records in partial_success", async () => {
  const store = new MemoryStore();
  const now = (BASE_HOUR + 10) * 3_600_000;
  const sink = new DirectSink(store, {
    limits: { maxPartitions: 5, acceptPastMs: 3 * 3_600_000 },
    now: () => now,
  });
  const handler = createHandler({ sink });
  // Records at :30 of hours 0..9 and 8..15: those of hours 0..6 are more than 3 h before `now`. Of the 9
  // partitions left (hours 7..15), the 5 largest are kept: hours 8 and 9 (two records each), then 7, 10, 11.
  const { body } = hoursRequest([...consecutiveHours(10), ...consecutiveHours(8, BASE_HOUR + 8)]);
  const response = await handler(
    new Request("http://x/v1/logs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    }),
  );
  assert.equal(response.status, 200);
  const answer = await response.json();
  assert.equal(answer.partialSuccess.rejectedLogRecords, String(7 + 4));
  assert.match(
    answer.partialSuccess.errorMessage,
    /^7 records refused: event time outside the accepted window \(at most 10800 s in the past;/,
  );
  assert.match(answer.partialSuccess.errorMessage, /; 4 records refused: the request spans 9 partitions/);
  const hours = (await store.list("")).map((k) => /day=(\d+)\/hour=(\d+)/.exec(k)!.slice(1).join(":")).sort();
  // BASE_HOUR is 2023-11-14T22:00Z: hours 7..11 after it are 05:00..09:00 on the 15th.
  assert.deepEqual(hours, ["15:05", "15:06", "15:07", "15:08", "15:09"]);
  assert.equal(sink.stats().rows, 7);
});
