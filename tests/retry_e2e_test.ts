/**
 * A request resent with the same bytes, over HTTP, against the real server: answered alike (the same
 * `partial_success`) and stored once, whatever its compression, and after a restart too. Rows are read
 * back with DuckDB, as a consumer would.
 *
 * @module
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import zlib from "node:zlib";
import { openDuckDb } from "./support/duckdb.ts";
import { listParquet, startTestServer, type TestServer } from "./support/server.ts";

const HOUR_NS = 3_600_000_000_000n;

/** OTLP/JSON logs: `n` records in each of two hours (one partition more than the test's cap allows). */
function twoHours(tag: string, n: number): Uint8Array {
  const base = BigInt(Date.UTC(2025, 10, 26, 9)) * 1_000_000n;
  return new TextEncoder().encode(JSON.stringify({
    resourceLogs: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: "retry" } }] },
      scopeLogs: [{
        logRecords: Array.from({ length: 2 * n }, (_, i) => ({
          timeUnixNano: String(base + BigInt(i % 2) * HOUR_NS + BigInt(i)),
          body: { stringValue: `${tag} ${i}` },
        })),
      }],
    }],
  }));
}

const zstd = (zlib as unknown as { zstdCompressSync(b: Uint8Array): Uint8Array }).zstdCompressSync;

async function post(server: TestServer, body: Uint8Array, encoding: string) {
  const r = await fetch(`${server.url}/v1/logs`, {
    method: "POST",
    headers: { "content-type": "application/json", "content-encoding": encoding },
    body: body as Uint8Array<ArrayBuffer>,
  });
  return { status: r.status, text: await r.text() };
}

async function storedRows(dir: string): Promise<number> {
  const files = await listParquet(dir);
  if (!files.length) return 0;
  const db = await openDuckDb();
  try {
    const list = files.map((f) => `'${join(dir, f).replaceAll("'", "''")}'`).join(", ");
    const [row] = await db.rows(`SELECT count(*)::INTEGER AS n FROM read_parquet([${list}])`);
    return row.n as number;
  } finally {
    db.close();
  }
}

Deno.test("a request resent with the same bytes is answered alike and stored once, across a restart", async () => {
  const dir = mkdtempSync(join(tmpdir(), "o2p-retry-"));
  const env = {
    OTLP2PARQUET_STORAGE_PATH: join(dir, "data"),
    OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
    OTLP2PARQUET_BATCH_MAX_PARTITIONS_PER_REQUEST: "1",
  };
  const body = twoHours("resent", 5);
  let server = await startTestServer({ env });
  try {
    const first = await post(server, zlib.gzipSync(body), "gzip");
    assert.equal(first.status, 200);
    assert.match(first.text, /"rejectedLogRecords":"5"/, "the cap refused the second hour");
    // The same request again, in another compression: the same decompressed bytes, the same answer.
    assert.deepEqual(await post(server, zstd(body), "zstd"), first);
    assert.deepEqual(await post(server, body, "identity"), first);
    assert.equal(server.server.ingest.stats().deduplicated, 2);
    // Another request (other records) is stored.
    assert.equal((await post(server, twoHours("other", 5), "identity")).status, 200);
    await server.dispose();
    assert.equal(await storedRows(join(dir, "data")), 10);

    // After a restart the identity is still known (from the file beside the log): not stored again.
    server = await startTestServer({ env });
    const again = await post(server, zlib.gzipSync(body), "gzip");
    assert.equal(again.status, 200);
    assert.match(
      again.text,
      /"rejectedLogRecords":"5"/,
      "the original's partial_success, after a restart too",
    );
    assert.equal(server.server.ingest.stats().deduplicated, 1);
    await server.dispose();
    assert.equal(await storedRows(join(dir, "data")), 10);
  } finally {
    await server.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
