/**
 * Server entry without the CLI: configuration from `OTLP2PARQUET_*` env and an optional config file
 * (`OTLP2PARQUET_CONFIG`). `deno task start` and the `serve` command end up in the same `serveMain`.
 *
 * @module
 */

import { serveMain } from "./serve.ts";

await serveMain({});
