/**
 * Batching on Cloudflare Workers, in real workerd (Miniflare): the bundle's `OtlpBatcher` Durable Object
 * (SQLite storage) bound as `BATCHER`, R2 persisted to disk so that Miniflare can be stopped and started
 * again over the same bucket and the same Durable Object storage (an eviction or a redeploy), and a
 * fault-injecting R2 bucket (a worker in front of the real one) to fail or stall writes mid-flush.
 *
 * Every test sends requests of distinct records (log bodies `rec-<n>`), reads all objects back with DuckDB
 * and checks that every record is there exactly once, in few objects.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import type { BatcherStats } from "../src/platforms/workers/batcher.ts";
import { type DurableObjectNamespaceLike, shardOf } from "../src/platforms/workers/batcher_sink.ts";
import type { R2BucketLike } from "../src/storage/r2_store.ts";
import { openDuckDb } from "./support/duckdb.ts";
import {
  buildWorkersBundle,
  bundleModules,
  COMPATIBILITY_DATE,
  download,
  GZIP_LIMIT,
  listKeys,
  r2,
} from "./support/workers.ts";

/** 2025-11-26T09:40:00Z: all records in one hour, so one (table, service, hour) batch per service. */
const T0 = 1764150000000000000n;

const TOKEN = "batcher-test-token";

/** A JSON logs request of one record per body, all from `service`. */
function logsRequest(service: string, bodies: string[], time = T0): string {
  return JSON.stringify({
    resourceLogs: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
      scopeLogs: [{
        logRecords: bodies.map((body, i) => ({
          timeUnixNano: String(time + BigInt(i)),
          body: { stringValue: body },
        })),
      }],
    }],
  });
}

/**
 * A worker in front of the real bucket `REAL`: `fetch /?mode=…` sets what the next data writes do.
 * `fail-once`: the next PUT fails with R2's retryable internal error; `denied`: every PUT outside
 * `dead-letter/` fails with a permanent error; `down`: every PUT fails with the retryable error;
 * `stall-after-put`: the next PUT is stored, then its answer never comes (the batcher is stopped while
 * waiting).
 */
const FAULTY_BUCKET = `
import { WorkerEntrypoint } from "cloudflare:workers";
let mode = "ok";
let puts = 0;
const meta = (o) => o && { key: o.key, size: o.size };
export class FaultyBucket extends WorkerEntrypoint {
  async put(key, value) {
    puts++;
    if (mode === "fail-once") {
      mode = "ok";
      throw new Error("put: We encountered an internal error. Please try again. (10001)");
    }
    if (mode === "denied" && !key.startsWith("dead-letter/")) throw new Error("put: Access denied. (10003)");
    if (mode === "down") throw new Error("put: We encountered an internal error. Please try again. (10001)");
    const written = await this.env.REAL.put(key, value);
    if (mode === "stall-after-put") await scheduler.wait(600000);
    return meta(written);
  }
  async head(key) { return meta(await this.env.REAL.head(key)); }
  async delete(keys) { await this.env.REAL.delete(keys); }
  async list(options) {
    const page = await this.env.REAL.list(options);
    return { objects: page.objects.map(meta), truncated: page.truncated, cursor: page.cursor };
  }
}
export default {
  async fetch(request) {
    const set = new URL(request.url).searchParams.get("mode");
    if (set) mode = set;
    return Response.json({ mode, puts });
  },
};
`;

/** Miniflare's binding types do not resolve under Deno: the parts used here. */
interface Fetcher {
  fetch(input: string): Promise<Response>;
}

interface Setup {
  outdir: string;
  persist: string;
  bindings: Record<string, string>;
}

/** Miniflare over the persisted storage of `setup`; `faulty` puts the fault-injecting bucket in front of R2. */
function start(setup: Setup, faulty = false): Miniflare {
  const main = {
    name: "otlp2parquet",
    ...bundleModules(setup.outdir),
    durableObjects: { BATCHER: { className: "OtlpBatcher", useSQLite: true } },
    bindings: setup.bindings,
    ...(faulty
      ? { serviceBindings: { BUCKET: { name: "faulty", entrypoint: "FaultyBucket" } } }
      : { r2Buckets: { BUCKET: "otel" } }),
  };
  const workers = faulty
    ? [main, {
      name: "faulty",
      modules: true,
      script: FAULTY_BUCKET,
      compatibilityDate: COMPATIBILITY_DATE,
      r2Buckets: { REAL: "otel" },
    }]
    : [main];
  return new Miniflare({
    workers,
    r2Persist: join(setup.persist, "r2"),
    durableObjectsPersist: join(setup.persist, "do"),
  });
}

/** The real bucket, whichever way the worker reaches it. */
function bucket(mf: Miniflare, faulty: boolean): Promise<R2BucketLike> {
  return faulty ? r2(mf, "REAL", "faulty") : r2(mf);
}

async function setMode(mf: Miniflare, mode: string): Promise<void> {
  const worker = (await mf.getWorker("faulty")) as unknown as Fetcher;
  const response = await worker.fetch(`http://faulty/?mode=${mode}`);
  assert.equal(((await response.json()) as { mode: string }).mode, mode);
}

async function send(mf: Miniflare, body: string): Promise<void> {
  const response = await mf.dispatchFetch("http://otlp.example.com/v1/logs", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body,
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.deepEqual(JSON.parse(text), {});
}

async function stats(mf: Miniflare, shard = 0): Promise<BatcherStats> {
  const namespace = (await mf.getDurableObjectNamespace("BATCHER")) as unknown as DurableObjectNamespaceLike;
  const stub = namespace.get(namespace.idFromName(`shard-${shard}`));
  return (await (await stub.fetch("http://batcher/stats")).json()) as BatcherStats;
}

/** Waits (bounded) until `done` holds; the bound only keeps a broken build from hanging the suite. */
async function until(what: string, done: () => Promise<boolean>, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Rows per log body over every Parquet object in the bucket, and the object keys. */
async function bodies(r2Bucket: R2BucketLike): Promise<{ keys: string[]; counts: Map<string, number> }> {
  const keys = (await listKeys(r2Bucket)).filter((k) => k.endsWith(".parquet"));
  const dir = await download(r2Bucket);
  const db = await openDuckDb();
  try {
    const rows = keys.length
      ? await db.rows(
        `SELECT Body AS body, count(*)::INTEGER AS n FROM read_parquet('${dir}/logs/**/*.parquet') GROUP BY Body`,
      )
      : [];
    return { keys, counts: new Map(rows.map((r) => [r.body as string, r.n as number])) };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function assertExactlyOnce(counts: Map<string, number>, expected: string[]): void {
  const twice = [...counts].filter(([, n]) => n !== 1);
  assert.deepEqual(twice, [], "records stored more than once");
  assert.deepEqual([...counts.keys()].sort(), [...expected].sort(), "records stored");
}

const range = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `rec-${from + i}`);

/** A test over a fresh bundle and fresh persisted storage. */
function batcherTest(name: string, fn: (setup: Setup) => Promise<void>): void {
  Deno.test({
    name,
    // Miniflare keeps sockets and timers of its own beyond dispose().
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const outdir = await buildWorkersBundle();
      const persist = mkdtempSync(join(tmpdir(), "otlp2parquet-batcher-"));
      try {
        // A token as a deployment has one (Workers refuse to serve without); `LOG=debug` shows the batcher's log.
        const bindings = {
          OTLP2PARQUET_AUTH_TOKEN: TOKEN,
          OTLP2PARQUET_LOG_LEVEL: Deno.env.get("LOG") ?? "warn",
        };
        await fn({ outdir, persist, bindings });
      } finally {
        rmSync(outdir, { recursive: true, force: true });
        rmSync(persist, { recursive: true, force: true });
      }
    },
  });
}

batcherTest(
  "Workers batcher writes 30 small requests as one object per service, every record once",
  async (setup) => {
    // The bundle with the Durable Object stays within the Free plan's 3 MiB (gzip).
    const size = JSON.parse(readFileSync(join(setup.outdir, "size.json"), "utf8")) as { gzipBytes: number };
    assert.ok(size.gzipBytes < GZIP_LIMIT, `bundle is ${size.gzipBytes} bytes gzip`);
    // Written when a service's batch holds 15 rows: the count, not the clock, decides.
    setup.bindings.OTLP2PARQUET_BATCH_MAX_ROWS = "15";
    setup.bindings.OTLP2PARQUET_BATCH_MAX_AGE_SECS = "3600";
    const mf = start(setup);
    try {
      const all = range(0, 30);
      // Two services, one record each a request: the direct mode would make 30 objects.
      for (const [i, body] of all.entries()) await send(mf, logsRequest(i % 2 ? "checkout" : "cart", [body]));
      // The token is checked before anything reaches the batcher.
      const denied = await mf.dispatchFetch("http://otlp.example.com/v1/logs", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer wrong" },
        body: logsRequest("cart", ["rec-denied"]),
      });
      assert.equal(denied.status, 401);
      await denied.arrayBuffer();
      await until("every request written", async () => (await stats(mf)).storedBytes === 0);
      const { keys, counts } = await bodies(await bucket(mf, false));
      assert.equal(keys.length, 2, keys.join("\n"));
      assert.ok(
        keys.some((k) => k.startsWith("logs/checkout/year=2025/month=11/day=26/hour=09/")),
        keys.join("\n"),
      );
      assert.ok(keys.every((k) => /-b[0-9a-f]{12}-[0-9a-f]{16}\.parquet$/.test(k)), keys.join("\n"));
      assertExactlyOnce(counts, all);
      const s = await stats(mf);
      assert.deepEqual([s.accepted, s.objects, s.rows, s.deadLettered], [30, 2, 30, 0]);
    } finally {
      await mf.dispose();
    }
  },
);

batcherTest("Workers batcher writes two flushes of identical rows as two objects", async (setup) => {
  // The same 3 records sent twice (two requests differing in another service's record, so neither is a
  // retry of the other): each "cart" flush holds byte-identical rows, and both must be kept.
  setup.bindings.OTLP2PARQUET_BATCH_MAX_ROWS = "3";
  setup.bindings.OTLP2PARQUET_BATCH_MAX_AGE_SECS = "3600";
  const mf = start(setup);
  try {
    const same = JSON.parse(logsRequest("cart", ["twin-0", "twin-1", "twin-2"]));
    for (const other of ["one", "two"]) {
      const body = structuredClone(same);
      body.resourceLogs.push(
        JSON.parse(logsRequest(other, [`${other}-0`, `${other}-1`, `${other}-2`])).resourceLogs[0],
      );
      await send(mf, JSON.stringify(body));
      await until("the flush written", async () => (await stats(mf)).storedBytes === 0);
    }
    const { keys, counts } = await bodies(await bucket(mf, false));
    assert.equal(keys.filter((k) => k.startsWith("logs/cart/")).length, 2, keys.join("\n"));
    assert.deepEqual([0, 1, 2].map((i) => counts.get(`twin-${i}`)), [2, 2, 2]);
    assert.equal((await stats(mf)).rows, 12);
  } finally {
    await mf.dispose();
  }
});

batcherTest("Workers batcher keeps what it stored across restarts between requests", async (setup) => {
  // Written only when a batch holds 30 rows: the first 20 live through two restarts in SQLite alone.
  setup.bindings.OTLP2PARQUET_BATCH_MAX_ROWS = "30";
  setup.bindings.OTLP2PARQUET_BATCH_MAX_AGE_SECS = "3600";
  const all = range(0, 30);
  for (let life = 0; life < 3; life++) {
    const mf = start(setup);
    try {
      for (const body of all.slice(life * 10, life * 10 + 10)) {
        await send(mf, logsRequest("checkout", [body]));
      }
      if (life < 2) {
        assert.deepEqual(
          await listKeys(await bucket(mf, false)),
          [],
          "nothing written before the batch is full",
        );
        assert.ok((await stats(mf)).storedBytes > 0);
      }
    } finally {
      await mf.dispose();
    }
  }
  const mf = start(setup);
  try {
    await until("the full batch written", async () => (await stats(mf)).storedBytes === 0);
    const { keys, counts } = await bodies(await bucket(mf, false));
    assert.equal(keys.length, 1, keys.join("\n"));
    assertExactlyOnce(counts, all);
  } finally {
    await mf.dispose();
  }
});

batcherTest("Workers batcher retries a failed R2 write and stores every record once", async (setup) => {
  setup.bindings.OTLP2PARQUET_BATCH_MAX_AGE_SECS = "1";
  const mf = start(setup, true);
  try {
    await setMode(mf, "fail-once");
    const all = range(0, 30);
    for (const body of all) await send(mf, logsRequest("checkout", [body]));
    await until("every request written", async () => (await stats(mf)).storedBytes === 0);
    const s = await stats(mf);
    assert.ok(s.retries >= 1, JSON.stringify(s));
    const { keys, counts } = await bodies(await bucket(mf, true));
    // Batches are cut by age while requests arrive: a few objects, never one per request.
    assert.ok(keys.length <= 3, keys.join("\n"));
    assertExactlyOnce(counts, all);
  } finally {
    await mf.dispose();
  }
});

batcherTest(
  "Workers batcher restarted mid-flush (object stored, answer lost) redoes it under the same key",
  async (setup) => {
    setup.bindings.OTLP2PARQUET_BATCH_MAX_AGE_SECS = "1";
    const all = range(0, 30);
    let first: string[];
    let mf = start(setup, true);
    try {
      await setMode(mf, "stall-after-put");
      for (const body of all.slice(0, 20)) await send(mf, logsRequest("checkout", [body]));
      const real = await bucket(mf, true);
      // The object is in R2, but the batcher never learns it: it is stopped while it waits.
      await until("the stalled write stored", async () => (await listKeys(real)).length === 1);
      first = await listKeys(real);
      assert.ok((await stats(mf)).storedBytes > 0, "the flush is not committed");
    } finally {
      await mf.dispose();
    }
    mf = start(setup);
    try {
      for (const body of all.slice(20)) await send(mf, logsRequest("checkout", [body]));
      await until("everything written", async () => (await stats(mf)).storedBytes === 0);
      const s = await stats(mf);
      assert.ok(s.redone >= 1, JSON.stringify(s));
      const { keys, counts } = await bodies(await bucket(mf, false));
      // The interrupted flush overwrote its own object instead of adding one; the rest made one or two more.
      assert.ok(keys.includes(first[0]), `${first[0]} not in\n${keys.join("\n")}`);
      assert.ok(keys.length <= 3, keys.join("\n"));
      assertExactlyOnce(counts, all);
    } finally {
      await mf.dispose();
    }
  },
);

batcherTest("Workers batcher gives a batch up to dead-letter/ only after bounded attempts", async (setup) => {
  setup.bindings.OTLP2PARQUET_BATCH_MAX_AGE_SECS = "0.5";
  const mf = start(setup, true);
  try {
    await setMode(mf, "denied");
    const all = range(0, 4);
    for (const body of all) await send(mf, logsRequest("checkout", [body]));
    await until("the batch given up", async () => (await stats(mf)).storedBytes === 0, 120_000);
    const s = await stats(mf);
    assert.equal(s.deadLettered, 1, JSON.stringify(s));
    // Five attempts failed (MAX_ATTEMPTS), then the bodies were kept as they came, one object each.
    assert.equal(s.retries, 5, JSON.stringify(s));
    const real = await bucket(mf, true);
    const keys = await listKeys(real);
    assert.equal(keys.length, 4, keys.join("\n"));
    const texts: string[] = [];
    for (const key of keys) {
      assert.match(
        key,
        /^dead-letter\/logs\/checkout\/year=2025\/month=11\/day=26\/hour=09\/b[0-9a-f]{12}-f1-r\d+\.json$/,
      );
      texts.push(await (await real.get(key))!.arrayBuffer().then((b) => new TextDecoder().decode(b)));
    }
    assert.deepEqual(
      texts.map((t) => JSON.parse(t).resourceLogs[0].scopeLogs[0].logRecords[0].body.stringValue).sort(),
      all,
    );
  } finally {
    await mf.dispose();
  }
});

batcherTest(
  "Workers batcher refuses with 503 at its storage bound while R2 is down, then drains",
  async (setup) => {
    // 64 KiB of stored bodies at most; batches of 32 KiB; requests of one 10 kB record.
    Object.assign(setup.bindings, {
      OTLP2PARQUET_WAL_MAX_BYTES: "64KiB",
      OTLP2PARQUET_BATCH_MAX_BYTES: "32KiB",
      OTLP2PARQUET_MAX_PAYLOAD_BYTES: "32KiB",
      OTLP2PARQUET_BATCH_MAX_AGE_SECS: "2",
    });
    const mf = start(setup, true);
    try {
      await setMode(mf, "down");
      const pad = "x".repeat(10_000);
      const accepted: string[] = [];
      let refused: Response | undefined;
      for (let i = 0; i < 20 && !refused; i++) {
        const body = `rec-${i}-${pad}`;
        const response = await mf.dispatchFetch("http://otlp.example.com/v1/logs", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
          body: logsRequest("checkout", [body]),
        });
        if (response.status === 200) accepted.push(body), await response.arrayBuffer();
        else refused = response as unknown as Response;
      }
      assert.ok(refused, "never refused");
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get("retry-after"), "10");
      assert.match(((await refused.json()) as { message: string }).message, /batcher storage full/);
      // Refused at the bound: what is stored stays within it, and nothing reached R2.
      const held = await stats(mf);
      assert.ok(
        held.storedBytes <= 64 * 1024 && held.storedBytes + 10_000 > 64 * 1024 - 1024,
        JSON.stringify(held),
      );
      assert.ok(accepted.length >= 5, String(accepted.length));
      await setMode(mf, "ok");
      // Back below the bound once R2 takes writes again: accepted again, and everything drains.
      await until("the stored requests written", async () => (await stats(mf)).storedBytes === 0);
      accepted.push("rec-after");
      await send(mf, logsRequest("checkout", ["rec-after"]));
      await until("the last request written", async () => (await stats(mf)).storedBytes === 0);
      const { counts } = await bodies(await bucket(mf, true));
      assertExactlyOnce(counts, accepted);
      assert.ok((await stats(mf)).retries >= 1);
    } finally {
      await mf.dispose();
    }
  },
);

batcherTest(
  "Workers batcher shards by signal and main service; a request spanning services stays whole",
  async (setup) => {
    setup.bindings.OTLP2PARQUET_BATCHER_SHARDS = "4";
    setup.bindings.OTLP2PARQUET_BATCH_MAX_AGE_SECS = "1";
    const mf = start(setup);
    try {
      const services = ["s0", "s1", "s2", "s3", "s4", "s5"];
      const all: string[] = [];
      for (let round = 0; round < 3; round++) {
        for (const service of services) {
          const body = `rec-${all.length}`;
          all.push(body);
          await send(mf, logsRequest(service, [body]));
        }
      }
      // "side" comes only within requests whose main service is s0: its rows go where s0's go.
      const spanning = JSON.parse(logsRequest("s0", ["rec-span-0", "rec-span-1"]));
      spanning.resourceLogs.push(JSON.parse(logsRequest("side", ["rec-span-2"])).resourceLogs[0]);
      await send(mf, JSON.stringify(spanning));
      all.push("rec-span-0", "rec-span-1", "rec-span-2");
      for (let shard = 0; shard < 4; shard++) {
        await until(`shard ${shard} written`, async () => (await stats(mf, shard)).storedBytes === 0);
      }
      const { keys, counts } = await bodies(await bucket(mf, false));
      assertExactlyOnce(counts, all);
      // Which batcher wrote each service: one per service, the same for services of one shard.
      const writer = new Map<string, Set<string>>();
      for (const key of keys) {
        const [, service, instance] = /^logs\/([^/]+)\/.*-(b[0-9a-f]{12})-[0-9a-f]{16}\.parquet$/.exec(key)!;
        writer.set(service, (writer.get(service) ?? new Set()).add(instance));
      }
      const shardOfService = (service: string) => shardOf("logs", [["otel_logs", service, 0, 1, 1]], 4);
      for (const a of services) {
        assert.equal(writer.get(a)?.size, 1, `${a}: ${[...writer.get(a) ?? []]}`);
        for (const b of services) {
          const same = [...writer.get(a)!][0] === [...writer.get(b)!][0];
          assert.equal(same, shardOfService(a) === shardOfService(b), `${a} and ${b}`);
        }
      }
      assert.deepEqual(writer.get("side"), writer.get("s0"));
      assert.ok(new Set(services.map(shardOfService)).size >= 2, "the services use more than one shard");
    } finally {
      await mf.dispose();
    }
  },
);

Deno.test({
  name:
    "deploy/cloudflare/wrangler.toml passes wrangler deploy --dry-run with the bucket, the batcher and its migration",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // `npm ci` installs the pinned wrangler; WRANGLER names another one.
    const wrangler = Deno.env.get("WRANGLER") ??
      new URL("../node_modules/.bin/wrangler", import.meta.url).pathname;
    assert.ok(
      existsSync(wrangler),
      `${wrangler} is missing: run npm ci (wrangler is a pinned devDependency)`,
    );
    const outdir = await buildWorkersBundle();
    // The template's own layout: deploy/cloudflare/wrangler.toml uploads ../../dist/workers/.
    const root = mkdtempSync(join(tmpdir(), "otlp2parquet-wrangler-"));
    try {
      mkdirSync(join(root, "deploy/cloudflare"), { recursive: true });
      mkdirSync(join(root, "dist"));
      cpSync(outdir, join(root, "dist/workers"), { recursive: true });
      const toml = readFileSync(new URL("../deploy/cloudflare/wrangler.toml", import.meta.url), "utf8");
      writeFileSync(join(root, "deploy/cloudflare/wrangler.toml"), toml);
      const { code, stdout, stderr } = await new Deno.Command(wrangler, {
        args: [
          "deploy",
          "--dry-run",
          "--outdir",
          join(root, "out"),
          "--config",
          "deploy/cloudflare/wrangler.toml",
        ],
        cwd: root,
        env: { WRANGLER_SEND_METRICS: "false", CI: "true", HOME: root, XDG_CONFIG_HOME: root },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
      assert.equal(code, 0, text);
      assert.match(text, /parquet_wasm_bg\.wasm\s*│\s*compiled-wasm/);
      assert.match(text, /env\.BATCHER \(OtlpBatcher\)\s+Durable Object/);
      assert.match(text, /env\.BUCKET \(otel-parquet\)\s+R2 Bucket/);
      assert.match(text, /--dry-run: exiting now/);
      // The token is a secret, never a plain var of the template; the class the binding names is exported.
      assert.doesNotMatch(toml, /^\s*OTLP2PARQUET_AUTH_TOKENS?\s*=/m);
      assert.match(toml, /new_sqlite_classes = \["OtlpBatcher"\]/);
      assert.match(
        readFileSync(join(root, "out/worker.js"), "utf8"),
        /export\{[^}]*\bas OtlpBatcher\b|export\{[^}]*\bOtlpBatcher\b/,
      );
    } finally {
      rmSync(outdir, { recursive: true, force: true });
      rmSync(root, { recursive: true, force: true });
    }
  },
});
