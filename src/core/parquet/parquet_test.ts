import { deepStrictEqual, equal } from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { tableFromIPC } from "apache-arrow";
import { readParquet } from "parquet-wasm/esm";
import { decodeRequest, encodeBatch } from "../convert.ts";
import { initParquet, rowsToParquet, STREAM_CHUNK_ROWS } from "./parquet.ts";
import { gatherSorted, type RowSelection } from "../table/rows.ts";

const wasm = fileURLToPath(import.meta.resolve("parquet-wasm/esm/parquet_wasm_bg.wasm"));
initParquet(await readFile(wasm));
const enc = new TextEncoder();

function request(seed: number, count: number): RowSelection {
  const records = Array.from({ length: count }, (_, i) => ({
    // Times of the two requests interleave, so the batch must be merged, not concatenated.
    timeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i * 2 + seed) * 1000n),
    body: { stringValue: `r${seed}-${i}` },
    attributes: [{ key: "i", value: { intValue: i } }, {
      key: "s",
      value: { stringValue: "x".repeat(i % 7) },
    }],
  }));
  const body = enc.encode(JSON.stringify({
    resourceLogs: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "svc" } }] },
      scopeLogs: [{ logRecords: records }],
    }],
  }));
  const rows = decodeRequest("logs", body, { format: "json" }).tables[0];
  return { rows, indices: Uint32Array.from({ length: rows.length }, (_, i) => i) };
}

function readBack(bytes: Uint8Array): Record<string, unknown>[] {
  const table = tableFromIPC(readParquet(bytes).intoIPCStream());
  return table.toArray().map((r) => {
    const o = r.toJSON();
    return { t: o.Timestamp, body: o.Body, attrs: JSON.stringify(o.LogAttributes) };
  });
}

Deno.test("encodeBatch() streams a batch larger than a chunk into the same rows as a whole-table write", async () => {
  const n = Math.ceil(STREAM_CHUNK_ROWS * 1.3);
  const selections = [request(0, n), request(1, n)];
  const file = await encodeBatch(selections);
  equal(file.rows, 2 * n);
  const streamed = readBack(file.bytes);
  const whole = readBack(rowsToParquet(gatherSorted(selections)));
  equal(streamed.length, 2 * n);
  deepStrictEqual(streamed, whole);
  // Sorted by time across both requests.
  deepStrictEqual(streamed.slice(0, 3).map((r) => r.body), ["r0-0", "r1-0", "r0-1"]);
  // The same batch always encodes to the same bytes (and so the same object key).
  equal((await encodeBatch(selections)).key, file.key);
});
