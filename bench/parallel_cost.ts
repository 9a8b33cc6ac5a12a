/**
 * The parallel part of the worker design, in process: CPU per record of decoding a request into rows
 * (what a worker does per request) and of encoding batches into Parquet (what a worker does per batch),
 * on the request bodies of the load runs (`BodySource`: 5,000 records, JSON 3,000). Encoding is measured
 * the way the server cuts batches: the rows of `requests` (default 40: 200k records, the server's batch
 * bound) decoded requests, per (table, service, hour),
 * sorted and encoded by `encodeBatch` (zstd from `node:zlib`, as `otlp2parquet serve` writes). Run pinned
 * to one core by `bench/scaling.ts`; prints one JSON array.
 *
 * ```sh
 * taskset -c 0 deno run -A bench/parallel_cost.ts --signals logs,traces,metrics --formats protobuf,json
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Decoded, decodeRequest, encodeBatch, type Format } from "../src/core/convert.ts";
import type { RowSelection } from "../src/core/table/rows.ts";
import { prepareParquet } from "../src/platforms/wasm.ts";
import { BodySource } from "./bodies.ts";
import type { Signal } from "./data.ts";
import { cpuDelta, cpuSplit } from "./proc_stat.ts";

/** CPU per record of one signal and format. */
export interface ParallelCost {
  signal: Signal;
  format: Format;
  recordsPerRequest: number;
  /** Decode (body → rows), µs of CPU per record (the main thread; the process's other threads apart). */
  decodeUs: number;
  /** Sort + Parquet encode of batches of `batchRecords` rows, µs per record. */
  encodeUs: number;
  batchRecords: number;
}

/** Decodes `requests` bodies `rounds` times, then encodes their rows as the server's batches. */
export async function parallelCost(
  signal: Signal,
  format: "protobuf" | "json",
  options: { records: number; requests?: number; rounds?: number },
): Promise<ParallelCost> {
  const requests = options.requests ?? 40, rounds = options.rounds ?? 2;
  const source = new BodySource(signal, format, { records: options.records, pool: requests });
  const bodies = Array.from({ length: requests }, (_, i) => source.body(i).body);
  let decoded: Decoded[] = bodies.map((b) => decodeRequest(signal, b, { format })); // warm-up
  let records = 0;
  const d0 = cpuSplit(Deno.pid);
  for (let r = 0; r < rounds; r++) {
    decoded = bodies.map((b) => decodeRequest(signal, b, { format }));
    records += decoded.reduce((n, d) => n + d.records, 0);
  }
  const decodeCpu = cpuDelta(d0, cpuSplit(Deno.pid)).main;
  // The server's batches: every request's rows of one (table, service, hour) together.
  const batches = new Map<string, RowSelection[]>();
  for (const d of decoded) {
    for (const rows of d.tables) {
      rows.rowsByPartition().forEach((indices, p) => {
        if (!indices.length) return;
        const part = rows.parts[p];
        const key = `${rows.def.name}|${part.service}|${part.hour}`;
        if (!batches.has(key)) batches.set(key, []);
        batches.get(key)!.push({ rows, indices });
      });
    }
  }
  const encodeAll = async (): Promise<number> => {
    let n = 0;
    for (const selections of batches.values()) {
      n += (await encodeBatch(selections, { compression: "zstd" })).rows;
    }
    return n;
  };
  await encodeAll(); // warm-up
  const e0 = cpuSplit(Deno.pid);
  let encoded = 0;
  for (let r = 0; r < rounds; r++) encoded += await encodeAll();
  const encodeCpu = cpuDelta(e0, cpuSplit(Deno.pid)).main;
  const perBatch = decoded.reduce((n, d) => n + d.records, 0) / Math.max(1, batches.size);
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    signal,
    format,
    recordsPerRequest: options.records,
    decodeUs: round((decodeCpu * 1e6) / Math.max(1, records)),
    encodeUs: round((encodeCpu * 1e6) / Math.max(1, encoded)),
    batchRecords: Math.round(perBatch),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      signals: { type: "string", default: "logs,traces,metrics" },
      formats: { type: "string", default: "protobuf,json" },
      records: { type: "string", default: "5000" },
      "json-records": { type: "string", default: "3000" },
      requests: { type: "string", default: "40" },
      rounds: { type: "string", default: "2" },
    },
  });
  await prepareParquet("zstd");
  const out: ParallelCost[] = [];
  for (const signal of values.signals.split(",") as Signal[]) {
    for (const format of values.formats.split(",") as ("protobuf" | "json")[]) {
      const records = Number(format === "json" ? values["json-records"] : values.records);
      const r = await parallelCost(signal, format, {
        records,
        requests: Number(values.requests),
        rounds: Number(values.rounds),
      });
      console.error(
        `parallel: ${signal} ${format}: decode ${r.decodeUs} µs/record, encode ${r.encodeUs} µs/record`,
      );
      out.push(r);
    }
  }
  console.log(JSON.stringify(out));
}
