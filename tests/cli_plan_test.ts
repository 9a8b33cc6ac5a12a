/**
 * `otlp2parquet plan --format json`: every figure recomputed here by hand from the inputs, the measured
 * sizes (MEASURED, CPU_US_PER_RECORD) and a price file written by the test, for a server, Lambda and
 * Workers; the text output names every store; bad inputs are usage errors.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CPU_US_PER_RECORD, LAMBDA_FIXED_MS, MEASURED } from "../src/cli/plan.ts";
import { runCliProcess } from "./support/cli_process.ts";

const TMP = Deno.makeTempDirSync({ prefix: "otlp2parquet-plan-" });
globalThis.addEventListener("unload", () => Deno.removeSync(TMP, { recursive: true }));

const MiB = 1024 * 1024, GiB = 1024 * MiB;
const store = (name: string, storage: number, put: number, egress: number) => ({
  name,
  storagePerGbMonth: storage,
  putPer1000: put,
  getPer1000: 0.001,
  egressPerGb: egress,
  egressNote: `${name} egress`,
  source: `https://example.com/${name}`,
});
const PRICES = {
  taken: "test",
  storage: {
    s3: store("S3", 0.02, 0.01, 0.1),
    r2: store("R2", 0.01, 0.005, 0),
    gcs: store("GCS", 0.03, 0.02, 0.2),
    azure: store("Azure", 0.04, 0.03, 0.3),
  },
  compute: {
    lambda: {
      name: "Lambda",
      perGbSecond: 0.00001,
      perMillionRequests: 0.5,
      source: "https://example.com/l",
    },
    workers: {
      name: "Workers",
      monthly: 5,
      includedRequests: 1000,
      perMillionRequests: 0.3,
      includedCpuMs: 2000,
      perMillionCpuMs: 0.02,
      durableObjectIncludedRequests: 500,
      durableObjectPerMillionRequests: 0.15,
      durableObjectIncludedGbSeconds: 10,
      durableObjectPerMillionGbSeconds: 12.5,
      source: "https://example.com/w",
    },
  },
};
const pricesFile = join(TMP, "prices.json");
writeFileSync(pricesFile, JSON.stringify(PRICES));

const close = (actual: number, expected: number, what: string) =>
  assert.ok(
    Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} ≠ ${expected}`,
  );

async function planJson(args: string[], env: Record<string, string> = {}) {
  const run = await runCliProcess(["plan", "--format", "json", "--prices", pricesFile, ...args], { env });
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout);
}

Deno.test("plan, server: objects under the default batch settings, the recommendation, and each store's cost", async () => {
  const [r, b, ratio, services, days, readGb] = [1000, 200, 10, 2, 10, 5];
  const p = await planJson([
    "--records-per-second",
    String(r),
    "--bytes-per-record",
    String(b),
    "--ratio",
    String(ratio),
    "--services",
    String(services),
    "--retention-days",
    String(days),
    "--read-gb",
    String(readGb),
  ]);
  // Two partitions (one table, two services) of 500 records/s each.
  const perPartition = r / services;
  const decoded = b * MEASURED.logs.decodedBytesPerRecord / MEASURED.logs.protobufBytesPerRecord;
  // Defaults: 200000 rows, 128 MiB shared by both batches, 60 s: the age cuts first at 30000 rows.
  assert.ok(Math.floor(128 * MiB / (services * decoded)) > 30_000);
  assert.equal(p.current.limitedBy, "max_age");
  close(p.current.rowsPerObject, perPartition * 60, "rows per object");
  close(p.current.objectsPerHour, services * 3600 / 60, "objects per hour");
  close(p.current.objectBytes, perPartition * 60 * b / ratio, "object bytes");
  assert.equal(p.current.health, "small");

  // Recommended: 128 MiB objects need more rows than an hour holds (1.8M): the hour bounds them, then the
  // 512 MiB memory budget does.
  const hourRows = perPartition * 3600;
  assert.ok(128 * MiB * ratio / b > hourRows);
  const budgetRows = Math.floor(512 * MiB / (services * decoded));
  assert.ok(budgetRows < hourRows);
  const rec = p.recommended;
  assert.equal(rec.settings.maxRows, budgetRows);
  assert.equal(rec.settings.maxBytes, Math.ceil(budgetRows * services * decoded / MiB) * MiB);
  assert.equal(rec.settings.maxAgeSecs, Math.ceil(budgetRows / perPartition * 1.25));
  assert.equal(rec.settings.maxQueuedBytes, rec.settings.maxBytes);
  assert.equal(rec.settings.walMaxBytes, 2 * GiB);
  close(rec.result.objectBytes, budgetRows * b / ratio, "recommended object bytes");
  assert.equal(rec.notes.length, 2, rec.notes.join("\n"));

  // Costs: steady-state storage of `days` days, one PUT per object, egress of readGb.
  const storedGb = r * 86400 * days * (b / ratio) / GiB;
  const puts = services * 60 * 730;
  assert.deepEqual(p.costs.map((c: { provider: string }) => c.provider), ["s3", "r2", "gcs", "azure"]);
  for (const c of p.costs) {
    const price = PRICES.storage[c.provider as keyof typeof PRICES.storage];
    close(c.storedGb, storedGb, `${c.provider} GB`);
    close(c.storage, storedGb * price.storagePerGbMonth, `${c.provider} storage`);
    close(c.puts, puts, `${c.provider} PUTs`);
    close(c.putCost, puts / 1000 * price.putPer1000, `${c.provider} PUT cost`);
    close(c.egress, readGb * price.egressPerGb, `${c.provider} egress`);
    assert.equal(c.compute, 0);
    close(c.total, c.storage + c.putCost + c.egress, `${c.provider} total`);
  }
  close(p.parquetBytesPerMonth, r * 3600 * 730 * b / ratio, "bytes a month");
  assert.equal(p.prices.taken, "test");
});

Deno.test("plan, lambda: one object per request and partition; GB-seconds from the measured CPU per record", async () => {
  const [r, b, k, mem] = [100, 300, 1000, 1769];
  const lambdaArgs = (memory: number) =>
    `--records-per-second ${r} --bytes-per-record ${b} --signal traces --platform lambda --provider s3 ` +
    `--records-per-request ${k} --lambda-memory ${memory}`;
  const p = await planJson(lambdaArgs(mem).split(" "));
  const ratio = MEASURED.traces.ratio;
  assert.equal(p.input.ratio, ratio);
  assert.equal(p.current.limitedBy, "request");
  close(p.current.objectsPerHour, r * 3600 / k, "objects per hour");
  close(p.current.objectBytes, k * b / ratio, "object bytes");
  const requests = r * 3600 * 730 / k;
  const seconds = (LAMBDA_FIXED_MS + k * CPU_US_PER_RECORD.traces.convert / 1000) / 1000;
  const compute = requests * seconds * mem / 1024 * 0.00001 + requests / 1e6 * 0.5;
  assert.equal(p.costs.length, 1);
  close(p.costs[0].compute, compute, "Lambda compute");
  close(p.costs[0].puts, r * 3600 / k * 730, "PUTs");
  assert.equal(p.recommended.settings, null);

  // Less memory, less CPU: the per-record part stretches by 1769/memory.
  const small = await planJson(lambdaArgs(512).split(" "));
  const stretched = (LAMBDA_FIXED_MS + k * CPU_US_PER_RECORD.traces.convert / 1000 * (1769 / 512)) / 1000;
  close(
    small.costs[0].compute,
    requests * stretched * 0.5 * 0.00001 + requests / 1e6 * 0.5,
    "512 MB compute",
  );
});

Deno.test("plan, workers: R2 only; requests, CPU ms and Durable Object work beyond the included amounts", async () => {
  const [r, b, k] = [50, 250, 500];
  const p = await planJson([
    "--records-per-second",
    String(r),
    "--bytes-per-record",
    String(b),
    "--signal",
    "metrics",
    "--platform",
    "workers",
    "--records-per-request",
    String(k),
  ]);
  assert.deepEqual(p.costs.map((c: { provider: string }) => c.provider), ["r2"]);
  // Metrics: three tables, one service: 3 partitions of 50/3 records/s; the 60 s age cuts.
  assert.equal(p.input.partitions, 3);
  assert.equal(p.current.limitedBy, "max_age");
  close(p.current.objectsPerHour, 3 * 60, "objects per hour");
  const records = r * 3600 * 730;
  const requests = records / k;
  const cpu = CPU_US_PER_RECORD.metrics;
  const w = PRICES.compute.workers;
  const doGbS = records * (cpu.decode + cpu.wasmEncode) / 1e6 * 0.125;
  const expected = w.monthly + (requests - w.includedRequests) / 1e6 * w.perMillionRequests +
    (records * cpu.decode / 1000 - w.includedCpuMs) / 1e6 * w.perMillionCpuMs +
    (requests + 3 * 60 * 730 - w.durableObjectIncludedRequests) / 1e6 * w.durableObjectPerMillionRequests +
    (doGbS - w.durableObjectIncludedGbSeconds) / 1e6 * w.durableObjectPerMillionGbSeconds;
  close(p.costs[0].compute, expected, "Workers compute");
  // A Durable Object's batches get at most 64 MiB.
  assert.ok(p.recommended.settings.maxBytes <= 64 * MiB);
});

Deno.test("plan: the configured batch settings are used; text output has a row per store and the price date", async () => {
  const p = await planJson([
    "--records-per-second",
    "5000",
    "--bytes-per-record",
    "300",
    "--batch-max-rows",
    "1000",
  ]);
  assert.equal(p.current.limitedBy, "max_rows");
  assert.equal(p.current.rowsPerObject, 1000);
  const env = await planJson(["--records-per-second", "5000", "--bytes-per-record", "300"], {
    OTLP2PARQUET_BATCH_MAX_ROWS: "2000",
  });
  assert.equal(env.current.rowsPerObject, 2000);
  const noBatch = await planJson(["--records-per-second", "5000", "--bytes-per-record", "300", "--no-batch"]);
  assert.equal(noBatch.current.limitedBy, "request");

  const text = await runCliProcess(["plan", "--records-per-second", "5000", "--bytes-per-record", "300"]);
  assert.equal(text.code, 0, text.stderr);
  for (const name of ["Amazon S3", "Cloudflare R2", "Google Cloud Storage", "Azure Blob Storage"]) {
    assert.match(text.stdout, new RegExp(`^  ${name}.*\\$`, "m"), name);
  }
  assert.match(text.stdout, /prices of 2025, check them/);
  assert.match(text.stdout, /Healthy objects: 16\.0 MiB to 512 MiB/);
  assert.match(text.stdout, /OTLP2PARQUET_BATCH_MAX_ROWS=\d+/);
});

Deno.test("plan: bad inputs are usage errors that say what is wrong", async () => {
  const broken = join(TMP, "broken.json");
  writeFileSync(broken, JSON.stringify({ ...PRICES, storage: { ...PRICES.storage, r2: { name: "R2" } } }));
  const cases: [string[], RegExp][] = [
    [["--bytes-per-record", "300"], /required option '--records-per-second <n>'/],
    [
      ["--records-per-second", "0", "--bytes-per-record", "300"],
      /--records-per-second must be a positive number/,
    ],
    [["--records-per-second", "x", "--bytes-per-record", "300"], /--records-per-second "x": not a number/],
    [
      ["--records-per-second", "1", "--bytes-per-record", "300", "--platform", "workers", "--provider", "s3"],
      /writes to R2/,
    ],
    [
      ["--records-per-second", "1", "--bytes-per-record", "300", "--prices", broken],
      /broken\.json: storage\.r2\.storagePerGbMonth/,
    ],
    [["--records-per-second", "1", "--bytes-per-record", "300", "--provider", "b2"], /'b2' is invalid/],
  ];
  for (const [args, message] of cases) {
    const run = await runCliProcess(["plan", ...args]);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message, args.join(" "));
  }
});

Deno.test("plan's measured sizes are what bench/plan_sizes.ts measures today (the generator and encoder are deterministic)", async () => {
  const { measure } = await import("../bench/plan_sizes.ts");
  for (const signal of ["logs", "traces", "metrics"] as const) {
    const m = measure(signal, 100_000);
    assert.deepEqual(
      {
        protobufBytesPerRecord: m.protobufBytesPerRecord,
        decodedBytesPerRecord: m.decodedBytesPerRecord,
        ratio: m.ratio,
      },
      MEASURED[signal],
      `${signal}: update MEASURED in src/cli/plan.ts (and docs/cli.md) from deno run -A bench/plan_sizes.ts`,
    );
  }
});
