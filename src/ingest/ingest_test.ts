import assert from "node:assert/strict";
import { decodeRequest } from "../core/convert.ts";
import { loadParquetWasm } from "../platforms/wasm.ts";
import { MemoryStore } from "../storage/memory_store.ts";
import { Ingest } from "./ingest.ts";

await loadParquetWasm();
const enc = new TextEncoder();

/** A logs request with `perService` records for each of two services, as the handler hands it over. */
function request(seed: number, perService: number) {
  const resource = (service: string) => ({
    resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
    scopeLogs: [{
      logRecords: Array.from({ length: perService }, (_, i) => ({
        timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(seed * 1_000_000 + i)),
        body: { stringValue: `${service} record ${seed}/${i} ${"x".repeat(200)}` },
      })),
    }],
  });
  const body = enc.encode(JSON.stringify({ resourceLogs: [resource("big"), resource("small")] }));
  const decoded = decodeRequest("logs", body, { format: "json" });
  return { signal: "logs" as const, format: "json" as const, body, decoded };
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(done(), "timed out");
}

Deno.test("Ingest writes the batches that share requests together when the byte bound is passed", async () => {
  const store = new MemoryStore();
  const first = request(1, 400);
  const bytes = first.decoded.tables[0].byteLength();
  // Room for a bit more than one request: the second passes the bound.
  const { ingest } = await Ingest.start({
    store,
    maxBytes: Math.ceil(bytes * 1.5),
    maxRows: 1_000_000,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
  });
  try {
    await ingest.accept(first);
    assert.equal(ingest.stats().openBatches, 2);
    await ingest.accept(request(2, 400));
    // Both services' batches hold rows of both requests: flushing only the largest would free nothing.
    assert.equal(ingest.stats().openBatches, 0, "both batches flushed together");
    assert.equal(ingest.stats().bufferedBytes, 0);
    await until(() => ingest.stats().objects === 2);
    const keys = await store.list("");
    assert.deepEqual(keys.map((k) => k.split("/")[1]).sort(), ["big", "small"]);
    assert.equal(ingest.stats().objectRows, 1600);
  } finally {
    await ingest.close();
  }
});

Deno.test("Ingest keeps batches of unrelated requests open when the bound is passed", async () => {
  const store = new MemoryStore();
  const one = (service: string, seed: number) => {
    const body = enc.encode(JSON.stringify({
      resourceLogs: [{
        resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
        scopeLogs: [{
          logRecords: Array.from({ length: service === "big" ? 500 : 300 }, (_, i) => ({
            timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(seed * 1_000_000 + i)),
            body: { stringValue: `${service} ${i} ${"y".repeat(200)}` },
          })),
        }],
      }],
    }));
    return {
      signal: "logs" as const,
      format: "json" as const,
      body,
      decoded: decodeRequest("logs", body, { format: "json" }),
    };
  };
  const small = one("small", 1), big = one("big", 2);
  const bound = small.decoded.tables[0].byteLength() + big.decoded.tables[0].byteLength() - 1;
  const { ingest } = await Ingest.start({
    store,
    maxBytes: bound,
    maxRows: 1_000_000,
    maxAgeMs: 3_600_000,
    files: { instanceId: "test" },
  });
  try {
    await ingest.accept(small);
    await ingest.accept(big);
    // Over the bound: the largest batch goes; the other shares no request with it and stays open.
    assert.equal(ingest.stats().openBatches, 1);
    await until(() => ingest.stats().objects === 1);
    assert.equal((await store.list(""))[0].split("/")[1], "big");
  } finally {
    await ingest.close();
  }
});
