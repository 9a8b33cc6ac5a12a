/**
 * Fills a folder with many small objects of one closed hour, as serverless writers leave them (one
 * object per request and service), for `compact` examples and its memory measurement (BENCHMARKS.md):
 *
 * ```sh
 * deno run -A bench/compact_seed.ts --out /tmp/compact-demo --requests 400 --records 2000
 * /usr/bin/time -v deno task cli compact --path /tmp/compact-demo --table logs --min-age 0
 * ```
 *
 * Requests are spread over the hour 2025-01-15T10 (`DEFAULT_START_NS`), across 4 services and 3 writer
 * instance ids; every request is distinct (its seed).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_START_NS, encodeProtobuf, generateRequest, type Signal } from "./data.ts";
import { decodeRequest, toParquetFiles } from "../src/core/convert.ts";
import { UNCAPPED } from "../src/core/decode/decode_limits.ts";
import { FsStore } from "../src/storage/fs_store.ts";
import { prepareParquet } from "../src/platforms/wasm.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    out: { type: "string" },
    signal: { type: "string", default: "logs" },
    requests: { type: "string", default: "200" },
    records: { type: "string", default: "1000" },
  },
});
if (!values.out) {
  console.error("usage: compact_seed.ts --out DIR [--signal logs] [--requests 200] [--records 1000]");
  Deno.exit(2);
}
await prepareParquet("zstd");
const store = new FsStore({ root: values.out });
const signal = values.signal as Signal;
let files = 0, bytes = 0;
for (let i = 0; i < Number(values.requests); i++) {
  const request = generateRequest(signal, Number(values.records), {
    seed: 1000 + i,
    startNs: DEFAULT_START_NS + BigInt(i % 59) * 60_000_000_000n,
  });
  const decoded = decodeRequest(signal, encodeProtobuf(signal, request), { format: "protobuf", ...UNCAPPED });
  for (const f of toParquetFiles(decoded, { instanceId: `fn${i % 3}` })) {
    await store.put(f.key, f.bytes);
    files++, bytes += f.bytes.length;
  }
}
console.log(`${files} objects, ${(bytes / 1024 / 1024).toFixed(1)} MiB under ${values.out}`);
