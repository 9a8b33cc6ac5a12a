/**
 * otlp2parquet: OpenTelemetry (OTLP/HTTP) logs, traces and metrics to Parquet files whose schema is
 * exactly what ClickHouse's OpenTelemetry tables export, on any object store.
 *
 * This module is the library API: the pure conversion core, plus the HTTP handler that every platform
 * (server, Lambda, Workers, Deno Deploy) wraps.
 *
 * @example Convert an OTLP/JSON logs request to Parquet files with their object keys
 * ```ts
 * import { readFile } from "node:fs/promises";
 * import { decodeRequest, initParquet, toParquetFiles } from "./mod.ts";
 *
 * initParquet(await readFile(new URL(import.meta.resolve("parquet-wasm/esm/parquet_wasm_bg.wasm"))));
 * const body = new TextEncoder().encode(JSON.stringify({
 *   resourceLogs: [{
 *     resource: { attributes: [{ key: "service.name", value: { stringValue: "checkout" } }] },
 *     scopeLogs: [{ logRecords: [{ timeUnixNano: "1700000000000000000", body: { stringValue: "paid" } }] }],
 *   }],
 * }));
 * const files = toParquetFiles(decodeRequest("logs", body, { format: "json" }), { instanceId: "docs" });
 * console.log(files[0].key);
 * // logs/checkout/year=2023/month=11/day=14/hour=22/20231114T221320.000000000Z-docs-….parquet
 * ```
 *
 * @module
 */

export * from "./src/core/mod.ts";
export { createHandler, failureResponse, formatOf, type HandlerOptions, ROUTES } from "./src/http/handler.ts";
export type { Sink } from "./src/ingest/sink.ts";
