/**
 * `plan`: what a given load turns into. Batch tuning (rows and bytes per object, objects per hour under
 * the current batch settings, and settings that keep objects in a healthy range for query engines) and a
 * monthly cost per object store (storage, PUTs, egress) plus compute on the chosen platform.
 *
 * Everything here is arithmetic on the inputs, on sizes measured with the benchmark generator (see
 * {@link MEASURED}) and on a price list (`prices.json`, overridable): no I/O, so the test recomputes the
 * same figures by hand.
 *
 * @module
 */

import type { Signal } from "../core/table/schema.ts";
import DEFAULT_PRICES from "./prices.json" with { type: "json" };

/** Object stores `plan` prices. */
export const PROVIDERS = ["s3", "r2", "gcs", "azure"] as const;
export type Provider = typeof PROVIDERS[number];
/** Where the receiver runs. */
export const PLATFORMS = ["server", "lambda", "workers"] as const;
export type Platform = typeof PLATFORMS[number];

/** The price list: `src/cli/prices.json`, or a file of the same shape given with `--prices`. */
export interface Prices {
  /** When the prices were taken, e.g. "2025". */
  taken: string;
  note?: string;
  storage: Record<Provider, StoragePrices>;
  compute: {
    lambda: { name: string; perGbSecond: number; perMillionRequests: number; source: string };
    workers: {
      name: string;
      monthly: number;
      includedRequests: number;
      perMillionRequests: number;
      includedCpuMs: number;
      perMillionCpuMs: number;
      durableObjectIncludedRequests: number;
      durableObjectPerMillionRequests: number;
      durableObjectIncludedGbSeconds: number;
      durableObjectPerMillionGbSeconds: number;
      source: string;
    };
  };
}

/** One object store's prices (USD). */
export interface StoragePrices {
  name: string;
  storagePerGbMonth: number;
  putPer1000: number;
  getPer1000: number;
  egressPerGb: number;
  egressNote: string;
  source: string;
}

/** The default price list (bundled into the executable). */
export const BUNDLED_PRICES: Prices = DEFAULT_PRICES as Prices;

/**
 * Sizes measured with `deno run -A bench/plan_sizes.ts` (2026-12-03) on the benchmark generator's
 * records (bench/data.ts), one service, files of 100k rows, zstd: bytes of OTLP protobuf per record,
 * decoded bytes per record (what a batch counts against `batch.max_bytes`), and protobuf ÷ Parquet.
 * Metrics split over three tables (gauge, sum, histogram) in the generator.
 */
export const MEASURED: Readonly<
  Record<Signal, { protobufBytesPerRecord: number; decodedBytesPerRecord: number; ratio: number }>
> = {
  logs: { protobufBytesPerRecord: 286.8, decodedBytesPerRecord: 652.5, ratio: 8.2 },
  traces: { protobufBytesPerRecord: 274.0, decodedBytesPerRecord: 685.9, ratio: 8.3 },
  metrics: { protobufBytesPerRecord: 220.1, decodedBytesPerRecord: 643.8, ratio: 18.0 },
};

/**
 * CPU per record, in microseconds, from BENCHMARKS.md ("Stages", 10k-record requests, one core):
 * `convert` is protobuf → Parquet files (what a Lambda invocation does), `decode` the protobuf decode
 * alone (what a Worker does before handing a request to its batcher), `wasmEncode` the parquet-wasm
 * encode (what the Workers batcher does at a flush).
 */
export const CPU_US_PER_RECORD: Readonly<
  Record<Signal, { convert: number; decode: number; wasmEncode: number }>
> = {
  logs: { convert: 4.2, decode: 0.905, wasmEncode: 4.0 },
  traces: { convert: 4.2, decode: 1.1, wasmEncode: 4.2 },
  metrics: { convert: 5.2, decode: 1.4, wasmEncode: 3.9 },
};

/**
 * Fixed time of one Lambda invocation besides the per-record work, in ms: the warm invocation of
 * BENCHMARKS.md ("Start-up and cold start": 39-43 ms median for 81 records, written to a folder with two
 * fsyncs; on Lambda the S3 PUT takes their place).
 */
export const LAMBDA_FIXED_MS = 40;
/** Memory at which Lambda gives a function one full vCPU; below it the per-record work stretches. */
export const LAMBDA_FULL_VCPU_MB = 1769;
/** Durable Objects are billed at 128 MB while active. */
export const DURABLE_OBJECT_GB = 0.125;
/** Hours in a billing month, as AWS, Google and Azure count them. */
export const HOURS_PER_MONTH = 730;
/** Largest request body each platform takes (Lambda's synchronous payload; Workers' default setting). */
export const PLATFORM_MAX_BODY: Readonly<Record<Platform, number | undefined>> = {
  server: undefined,
  lambda: 6 * 1000 * 1000,
  workers: 8 * 1024 * 1024,
};

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Objects smaller than this cost query engines more per byte than they return (see {@link HEALTHY}). */
export const HEALTHY = { minBytes: 16 * MiB, maxBytes: 512 * MiB, targetBytes: 128 * MiB } as const;

/** Batch settings `plan` works with (the server's, from the configuration or flags). */
export interface BatchSettings {
  enabled: boolean;
  maxRows: number;
  maxBytes: number;
  maxAgeSecs: number;
  maxOpenBatches: number;
  maxQueuedBytes: number;
  rowGroupRows: number;
  walMaxBytes: number;
}

/** Inputs of {@link plan}. */
export interface PlanInput {
  recordsPerSecond: number;
  /** OTLP protobuf bytes per record, as sent. */
  bytesPerRecord: number;
  signal: Signal;
  platform: Platform;
  /** Only this store; default all four. */
  provider?: Provider;
  /** protobuf ÷ Parquet; default {@link MEASURED}. */
  ratio?: number;
  /** Services sending (each is a partition per table and hour). Default 1. */
  services?: number;
  /** Days the objects are kept (storage billed at steady state). Default 30. */
  retentionDays?: number;
  /** Records per request the clients send. Default 8192 (the Collector batch processor's default). */
  recordsPerRequest?: number;
  /** GB read a month from outside the store's network (egress). Default 0. */
  readGbPerMonth?: number;
  /** Lambda memory size. Default 1024 MB. */
  lambdaMemoryMb?: number;
  /**
   * Decoded bytes the open batches may hold on the server (for the recommendation). Default 512 MiB:
   * the server's peak memory is about twice `batch.max_bytes` plus 150 MB (BENCHMARKS.md).
   */
  memoryBudgetBytes?: number;
  batch: BatchSettings;
  prices: Prices;
}

/** How objects come out under some batch settings. */
export interface Batching {
  /** Rows in one object. */
  rowsPerObject: number;
  /** Which limit cuts the objects. */
  limitedBy: "max_rows" | "max_bytes" | "max_age" | "hour" | "request";
  objectsPerHour: number;
  /** Compressed (Parquet) bytes of one object. */
  objectBytes: number;
  health: "small" | "healthy" | "large";
  /** Row groups per object (the last one may be partial). */
  rowGroups: number;
}

/** Settings that bring objects into the healthy range, and what they cost in memory and log space. */
export interface Recommendation {
  settings:
    | { maxRows: number; maxBytes: number; maxAgeSecs: number; maxQueuedBytes: number; walMaxBytes: number }
    | null;
  result: Batching;
  /** Decoded bytes the open batches hold at those settings. */
  memoryBytes: number;
  notes: string[];
}

/** Cost of one store (USD a month). */
export interface CostRow {
  provider: Provider;
  name: string;
  storedGb: number;
  storage: number;
  puts: number;
  putCost: number;
  egress: number;
  compute: number;
  total: number;
  egressNote: string;
}

/** What {@link plan} works out. */
export interface Plan {
  input: {
    recordsPerSecond: number;
    bytesPerRecord: number;
    signal: Signal;
    platform: Platform;
    ratio: number;
    ratioSource: string;
    services: number;
    partitions: number;
    retentionDays: number;
    recordsPerRequest: number;
  };
  /** Compressed bytes written a month. */
  parquetBytesPerMonth: number;
  current: Batching;
  recommended: Recommendation;
  compute: { platform: Platform; monthly: number; detail: string };
  costs: CostRow[];
  prices: { taken: string; sources: string[]; note?: string };
  notes: string[];
}

/** Tables a signal writes in this model: metrics split by type (gauge, sum, histogram). */
export function tablesOf(signal: Signal): number {
  return signal === "metrics" ? 3 : 1;
}

function health(bytes: number): Batching["health"] {
  return bytes < HEALTHY.minBytes ? "small" : bytes > HEALTHY.maxBytes ? "large" : "healthy";
}

/**
 * Objects under batch settings, for a load spread evenly over `partitions` (service × table): a batch
 * is cut at `max_rows`, at its share of `max_bytes` (the bound holds for all open batches together, so
 * each of P gets at least 1/P of it), at `max_age_secs`, or at the end of its event hour.
 */
export function batched(
  recordsPerSecond: number,
  bytesPerRecord: number,
  decodedPerRecord: number,
  ratio: number,
  partitions: number,
  b: Pick<BatchSettings, "maxRows" | "maxBytes" | "maxAgeSecs" | "rowGroupRows">,
): Batching {
  const perPartition = recordsPerSecond / partitions;
  const limits: [Batching["limitedBy"], number][] = [
    ["max_rows", b.maxRows],
    ["max_bytes", Math.floor(b.maxBytes / (partitions * decodedPerRecord))],
    ["max_age", perPartition * b.maxAgeSecs],
    ["hour", perPartition * 3600],
  ];
  let [limitedBy, rows] = limits[0];
  for (const [name, n] of limits) if (n < rows) [limitedBy, rows] = [name, n];
  rows = Math.max(rows, Math.min(1, perPartition * 3600));
  const objectsPerHour = partitions * Math.max(1, (perPartition * 3600) / rows);
  const objectBytes = rows * bytesPerRecord / ratio;
  return {
    rowsPerObject: rows,
    limitedBy,
    objectsPerHour,
    objectBytes,
    health: health(objectBytes),
    rowGroups: Math.max(1, Math.ceil(rows / b.rowGroupRows)),
  };
}

/** Objects when every request is written as it comes (Lambda, Workers without a batcher, `--no-batch`). */
export function perRequest(
  recordsPerSecond: number,
  bytesPerRecord: number,
  ratio: number,
  partitions: number,
  recordsPerRequest: number,
  rowGroupRows: number,
): Batching {
  const touched = Math.min(partitions, recordsPerRequest);
  const rows = recordsPerRequest / touched;
  const objectBytes = rows * bytesPerRecord / ratio;
  return {
    rowsPerObject: rows,
    limitedBy: "request",
    objectsPerHour: (recordsPerSecond * 3600 / recordsPerRequest) * touched,
    objectBytes,
    health: health(objectBytes),
    rowGroups: Math.max(1, Math.ceil(rows / rowGroupRows)),
  };
}

function recommend(
  input: PlanInput,
  ratio: number,
  decoded: number,
  partitions: number,
): Recommendation {
  const { recordsPerSecond: r, bytesPerRecord: bytes, batch } = input;
  const notes: string[] = [];
  if (input.platform === "lambda") {
    const k = input.recordsPerRequest ?? 8192;
    return {
      settings: null,
      result: perRequest(r, bytes, ratio, partitions, k, batch.rowGroupRows),
      memoryBytes: 0,
      notes: [
        "Lambda writes each request as it comes (nothing outlives an invocation): objects are as large as " +
        "one request's rows of one partition. Send the largest requests the function takes (6 MB), and " +
        "merge the small objects of closed hours with `otlp2parquet compact`, or put a server or the " +
        "Workers batcher in front.",
      ],
    };
  }
  const perPartition = r / partitions;
  // A Durable Object has 128 MB of memory: its batches get half of it, whatever the server's budget.
  const budget = input.platform === "workers"
    ? Math.min(input.memoryBudgetBytes ?? 64 * MiB, 64 * MiB)
    : input.memoryBudgetBytes ?? 512 * MiB;
  let rows = Math.ceil(HEALTHY.targetBytes * ratio / bytes);
  const hourRows = perPartition * 3600;
  if (rows > hourRows) {
    rows = Math.max(1, Math.floor(hourRows));
    notes.push(
      `At ${fmtNum(perPartition)} records/s per partition an hour holds ${
        fmtBytes(hourRows * bytes / ratio)
      } ` +
        `of Parquet, below the ${fmtBytes(HEALTHY.targetBytes)} target: one object per partition and hour ` +
        "is the fewest the hourly layout allows.",
    );
  }
  let memory = rows * partitions * decoded;
  if (memory > budget) {
    notes.push(
      `The open batches would hold ${fmtBytes(memory)} of decoded rows, beyond the ` +
        `${fmtBytes(budget)} memory budget (--memory): objects stay smaller; give the server more memory, ` +
        "or merge closed hours with `otlp2parquet compact`.",
    );
    rows = Math.max(1, Math.floor(budget / (partitions * decoded)));
    memory = rows * partitions * decoded;
  }
  const ageSecs = Math.min(3600, Math.max(1, Math.ceil((rows / perPartition) * 1.25)));
  const maxBytes = Math.ceil(memory / MiB) * MiB;
  // The write-ahead log holds every request body until its rows are in objects: a whole batch age of them.
  const walNeeded = Math.ceil((r * bytes * ageSecs * 1.5) / GiB) * GiB;
  const settings = {
    maxRows: rows,
    maxBytes: Math.max(maxBytes, MiB),
    maxAgeSecs: ageSecs,
    // A cut batch waits in the encode queue: a queue smaller than one batch answers 503 while it waits.
    maxQueuedBytes: Math.max(maxBytes, batch.maxQueuedBytes),
    walMaxBytes: Math.max(walNeeded, batch.walMaxBytes, maxBytes),
  };
  const result = batched(r, bytes, decoded, ratio, partitions, {
    ...settings,
    rowGroupRows: batch.rowGroupRows,
  });
  if (input.platform === "workers") {
    notes.push(
      "On Workers these are the OTLP2PARQUET_BATCH_* variables of the batcher Durable Object; its memory is " +
        "128 MB, so its batches get at most 64 MiB; more shards (OTLP2PARQUET_BATCHER_SHARDS) split the " +
        "services over more objects, each with its own 64 MiB.",
    );
  }
  return { settings, result, memoryBytes: memory, notes };
}

/** Monthly compute on the platform, and how it was worked out. */
function computeCost(
  input: PlanInput,
  k: number,
  objectsPerMonth: number,
): { monthly: number; detail: string } {
  const records = input.recordsPerSecond * 3600 * HOURS_PER_MONTH;
  const requests = records / k;
  const cpu = CPU_US_PER_RECORD[input.signal];
  if (input.platform === "server") {
    const cores = input.recordsPerSecond * cpu.convert / 1e6;
    return {
      monthly: 0,
      detail: `your own machine (not priced): about ${fmtNum(cores, 2)} core(s) busy converting ` +
        `(${cpu.convert} µs a record, BENCHMARKS.md) plus request handling; give it 1.5 GiB of memory`,
    };
  }
  if (input.platform === "lambda") {
    const p = input.prices.compute.lambda;
    const mem = input.lambdaMemoryMb ?? 1024;
    const stretch = Math.max(1, LAMBDA_FULL_VCPU_MB / mem);
    const seconds = (LAMBDA_FIXED_MS + k * cpu.convert / 1000 * stretch) / 1000;
    const gbSeconds = requests * seconds * mem / 1024;
    const monthly = gbSeconds * p.perGbSecond + requests / 1e6 * p.perMillionRequests;
    return {
      monthly,
      detail: `${fmtNum(requests)} invocations × ${fmtNum(seconds * 1000, 1)} ms at ${mem} MB = ` +
        `${fmtNum(gbSeconds)} GB-s (${LAMBDA_FIXED_MS} ms fixed + ${cpu.convert} µs a record` +
        `${stretch > 1 ? ` × ${fmtNum(stretch, 2)} below ${LAMBDA_FULL_VCPU_MB} MB` : ""}, BENCHMARKS.md)`,
    };
  }
  const w = input.prices.compute.workers;
  const cpuMs = records * cpu.decode / 1000;
  const doRequests = requests + objectsPerMonth;
  const doGbSeconds = records * (cpu.decode + cpu.wasmEncode) / 1e6 * DURABLE_OBJECT_GB;
  const monthly = w.monthly +
    Math.max(0, requests - w.includedRequests) / 1e6 * w.perMillionRequests +
    Math.max(0, cpuMs - w.includedCpuMs) / 1e6 * w.perMillionCpuMs +
    Math.max(0, doRequests - w.durableObjectIncludedRequests) / 1e6 * w.durableObjectPerMillionRequests +
    Math.max(0, doGbSeconds - w.durableObjectIncludedGbSeconds) / 1e6 * w.durableObjectPerMillionGbSeconds;
  return {
    monthly,
    detail: `$${w.monthly} plan + ${fmtNum(requests)} requests, ${fmtNum(cpuMs)} CPU ms decoding, ` +
      `${fmtNum(doRequests)} Durable Object requests, ${fmtNum(doGbSeconds)} GB-s batching (decode + ` +
      "parquet-wasm encode; wall time waiting on R2 and SQLite storage are not included)",
  };
}

/**
 * Works out the plan.
 *
 * @throws {RangeError} on inputs that are not positive numbers, or a store the platform cannot use.
 */
export function plan(input: PlanInput): Plan {
  const positive = (name: string, n: number | undefined) => {
    if (n !== undefined && !(Number.isFinite(n) && n > 0)) {
      throw new RangeError(`${name} must be a positive number, not ${n}`);
    }
  };
  positive("--records-per-second", input.recordsPerSecond);
  positive("--bytes-per-record", input.bytesPerRecord);
  positive("--ratio", input.ratio);
  positive("--services", input.services);
  positive("--retention-days", input.retentionDays);
  positive("--records-per-request", input.recordsPerRequest);
  positive("--lambda-memory", input.lambdaMemoryMb);
  if (input.readGbPerMonth !== undefined && !(input.readGbPerMonth >= 0)) {
    throw new RangeError(`--read-gb must be 0 or more, not ${input.readGbPerMonth}`);
  }
  if (input.platform === "workers" && input.provider !== undefined && input.provider !== "r2") {
    throw new RangeError(`--platform workers writes to R2 (its bucket binding), not ${input.provider}`);
  }
  const m = MEASURED[input.signal];
  const ratio = input.ratio ?? m.ratio;
  const decoded = input.bytesPerRecord * (m.decodedBytesPerRecord / m.protobufBytesPerRecord);
  const services = input.services ?? 1;
  const partitions = services * tablesOf(input.signal);
  const retentionDays = input.retentionDays ?? 30;
  let k = input.recordsPerRequest ?? 8192;
  const notes: string[] = [];
  const maxBody = PLATFORM_MAX_BODY[input.platform];
  if (maxBody !== undefined && k * input.bytesPerRecord > maxBody) {
    const fit = Math.max(1, Math.floor(maxBody / input.bytesPerRecord));
    if (input.recordsPerRequest !== undefined) {
      notes.push(
        `${k} records of ${input.bytesPerRecord} bytes exceed ${input.platform}'s ${fmtBytes(maxBody)} ` +
          `request limit: counted as ${fit} records a request`,
      );
    }
    k = fit;
  }
  const { batch } = input;
  const writesPerRequest = input.platform === "lambda" || !batch.enabled;
  const current = writesPerRequest
    ? perRequest(input.recordsPerSecond, input.bytesPerRecord, ratio, partitions, k, batch.rowGroupRows)
    : batched(input.recordsPerSecond, input.bytesPerRecord, decoded, ratio, partitions, batch);
  if (!writesPerRequest && partitions > batch.maxOpenBatches) {
    notes.push(
      `${partitions} partitions exceed batch.max_open_batches (${batch.maxOpenBatches}): batches are cut ` +
        "early, so objects are smaller than shown; raise it",
    );
  }
  const recommended = recommend({ ...input, recordsPerRequest: k }, ratio, decoded, partitions);
  const parquetPerRecord = input.bytesPerRecord / ratio;
  const parquetBytesPerMonth = input.recordsPerSecond * 3600 * HOURS_PER_MONTH * parquetPerRecord;
  const storedGb = input.recordsPerSecond * 86400 * retentionDays * parquetPerRecord / GiB;
  const objectsPerMonth = current.objectsPerHour * HOURS_PER_MONTH;
  const compute = computeCost(input, k, objectsPerMonth);
  const providers: readonly Provider[] = input.provider
    ? [input.provider]
    : input.platform === "workers"
    ? ["r2"]
    : PROVIDERS;
  const readGb = input.readGbPerMonth ?? 0;
  const costs = providers.map((provider): CostRow => {
    const p = input.prices.storage[provider];
    const storage = storedGb * p.storagePerGbMonth;
    const putCost = objectsPerMonth / 1000 * p.putPer1000;
    const egress = readGb * p.egressPerGb;
    return {
      provider,
      name: p.name,
      storedGb,
      storage,
      puts: objectsPerMonth,
      putCost,
      egress,
      compute: compute.monthly,
      total: storage + putCost + egress + compute.monthly,
      egressNote: p.egressNote,
    };
  });
  const sources = [
    ...providers.map((p) => input.prices.storage[p].source),
    ...(input.platform === "lambda"
      ? [input.prices.compute.lambda.source]
      : input.platform === "workers"
      ? [input.prices.compute.workers.source]
      : []),
  ];
  return {
    input: {
      recordsPerSecond: input.recordsPerSecond,
      bytesPerRecord: input.bytesPerRecord,
      signal: input.signal,
      platform: input.platform,
      ratio,
      ratioSource: input.ratio !== undefined
        ? "--ratio"
        : `measured for ${input.signal} by bench/plan_sizes.ts`,
      services,
      partitions,
      retentionDays,
      recordsPerRequest: k,
    },
    parquetBytesPerMonth,
    current,
    recommended,
    compute: { platform: input.platform, ...compute },
    costs,
    prices: { taken: input.prices.taken, sources, note: input.prices.note },
    notes,
  };
}

/**
 * Checks a price file's shape (every number present and not negative), so a typo fails with its path
 * instead of printing NaN.
 */
export function parsePrices(text: string, name: string): Prices {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new RangeError(`${name}: invalid JSON: ${(e as Error).message}`);
  }
  const problems: string[] = [];
  const walk = (want: unknown, have: unknown, path: string) => {
    if (typeof want === "number") {
      if (typeof have !== "number" || !(have >= 0)) problems.push(`${path}: expected a number ≥ 0`);
    } else if (typeof want === "string") {
      if (typeof have !== "string") problems.push(`${path}: expected a string`);
    } else if (typeof want === "object" && want !== null) {
      if (typeof have !== "object" || have === null) {
        problems.push(`${path || "(top)"}: expected an object`);
        return;
      }
      for (const [k, v] of Object.entries(want)) {
        if (k === "note" || k === "egressNote") continue;
        walk(v, (have as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      }
    }
  };
  walk(BUNDLED_PRICES, value, "");
  if (problems.length) throw new RangeError(`${name}: ${problems.join("; ")}`);
  const prices = value as Prices;
  for (const p of PROVIDERS) prices.storage[p].egressNote ??= "";
  return prices;
}

// ---- text ----

/** A number with thousands separators and at most `digits` decimals. */
export function fmtNum(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** Bytes in binary units with three significant figures: `1.50 GiB`, `312 KiB`. */
export function fmtBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) n /= 1024, i++;
  return `${n >= 100 || i === 0 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)} ${units[i]}`;
}

const usd = (n: number): string => `$${n < 10 ? n.toFixed(2) : fmtNum(n, 0)}`;

function batchingLine(b: Batching): string {
  const why = {
    max_rows: "batch.max_rows",
    max_bytes: "its share of batch.max_bytes",
    max_age: "batch.max_age_secs",
    hour: "the end of the event hour",
    request: "one request",
  }[b.limitedBy];
  return `${fmtNum(b.objectsPerHour, 1)} objects/hour of ${fmtNum(b.rowsPerObject)} rows, ` +
    `${fmtBytes(b.objectBytes)} each (${b.health}; cut by ${why})`;
}

/** The human-readable plan. */
export function formatPlan(p: Plan): string {
  const i = p.input;
  const out: string[] = [];
  out.push(
    `Load: ${fmtNum(i.recordsPerSecond)} ${i.signal} records/s × ${i.bytesPerRecord} B (OTLP protobuf) = ` +
      `${fmtBytes(i.recordsPerSecond * i.bytesPerRecord)}/s; Parquet ${fmtNum(i.ratio, 1)}x smaller ` +
      `(${i.ratioSource}) = ${fmtBytes(p.parquetBytesPerMonth)} a month`,
    `Partitions: ${i.services} service(s) × ${
      tablesOf(i.signal)
    } table(s) = ${i.partitions} partition(s) written ` +
      "every hour (one folder per table, service and hour)",
    "",
    `Batching on ${i.platform}:`,
    `  now:         ${batchingLine(p.current)}`,
    `  recommended: ${batchingLine(p.recommended.result)}`,
  );
  const s = p.recommended.settings;
  if (s) {
    out.push(
      `               OTLP2PARQUET_BATCH_MAX_ROWS=${s.maxRows} OTLP2PARQUET_BATCH_MAX_BYTES=${s.maxBytes} ` +
        `OTLP2PARQUET_BATCH_MAX_AGE_SECS=${s.maxAgeSecs}`,
      `               OTLP2PARQUET_BATCH_MAX_QUEUED_BYTES=${s.maxQueuedBytes} OTLP2PARQUET_WAL_MAX_BYTES=${s.walMaxBytes}`,
      `               (open batches hold up to ${
        fmtBytes(p.recommended.memoryBytes)
      } of decoded rows: peak ` +
        `memory about ${
          fmtBytes(2 * s.maxBytes + 150e6)
        }; the write-ahead log keeps requests until their rows are written)`,
    );
  }
  for (const n of p.recommended.notes) out.push(`  note: ${n}`);
  out.push(
    `  Healthy objects: ${fmtBytes(HEALTHY.minBytes)} to ${fmtBytes(HEALTHY.maxBytes)} of Parquet. Below, ` +
      "every object costs a GET for its footer, a LIST entry and a request per row group whatever its size, " +
      "and the rows per row group are too few for statistics to skip data; above, one object is one unit of " +
      "work for a reader and the writer holds it all in memory. Row groups are " +
      "parquet.row_group_rows (131072 by default).",
    "",
    `Monthly cost (${i.retentionDays} days kept, ${fmtNum(p.costs[0]?.puts ?? 0)} PUTs; prices of ` +
      `${p.prices.taken}, check them: --prices FILE to use your own):`,
  );
  const rows = [["store", "stored", "storage", "PUTs", "egress", "compute", "total"]];
  for (const c of p.costs) {
    rows.push([
      c.name,
      `${fmtNum(c.storedGb, 1)} GiB`,
      usd(c.storage),
      usd(c.putCost),
      usd(c.egress),
      usd(c.compute),
      usd(c.total),
    ]);
  }
  const widths = rows[0].map((_, col) => Math.max(...rows.map((r) => r[col].length)));
  for (const r of rows) {
    out.push(
      "  " +
        r.map((cell, col) => col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col])).join("  "),
    );
  }
  out.push(`  compute (${p.compute.platform}): ${p.compute.detail}`);
  for (const c of p.costs) out.push(`  egress, ${c.provider}: ${c.egressNote}`);
  out.push("  Reads (GET, LIST) by query engines are not counted: a few cents per million on every store.");
  for (const n of p.notes) out.push(`note: ${n}`);
  out.push(`Prices: ${[...new Set(p.prices.sources)].join(", ")}`);
  return out.join("\n") + "\n";
}
