// Ad-hoc (not committed): cost of moving a decoded request and copying a batch across threads.
import { encodeProtobuf, generateLogs } from "./bench/data.ts";
import { decodeRequest, encodeBatch } from "./src/core/convert.ts";
import { Rows, rowsBuffers } from "./src/core/table/rows.ts";
import { prepareParquet } from "./src/platforms/wasm.ts";
await prepareParquet("zstd");
const body = encodeProtobuf("logs", generateLogs(5000));
const med = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
const dec: number[] = [], move: number[] = [], copy: number[] = [], enc: number[] = [];
const all = (r: Rows) => Uint32Array.from({ length: r.length }, (_, i) => i);
for (let i = 0; i < 25; i++) {
  let t = performance.now();
  const d = decodeRequest("logs", body, { format: "protobuf" });
  for (const r of d.tables) r.compact();
  dec.push(performance.now() - t);
  t = performance.now();
  const snaps = d.tables.map((r) => r.snapshot(false));
  const back = structuredClone(snaps, { transfer: rowsBuffers(snaps) }).map((s) => Rows.restore(s));
  move.push(performance.now() - t);
  // A batch: 40 such requests (200k rows), copied as an encode job, then restored.
  const reqs = Array.from({ length: 40 }, () => decodeRequest("logs", body, { format: "protobuf" }).tables[0]);
  reqs.forEach((r) => r.compact());
  t = performance.now();
  const js = reqs.map((r) => r.snapshot(true));
  const rb = structuredClone(js, { transfer: rowsBuffers(js) }).map((s) => Rows.restore(s));
  copy.push(performance.now() - t);
  if (i < 3) {
    t = performance.now();
    await encodeBatch(rb.map((r) => ({ rows: r, indices: all(r) })), { compression: "zstd" });
    enc.push(performance.now() - t);
  }
  void back;
}
console.log(JSON.stringify({
  bodyBytes: body.length,
  decodeMs: med(dec),
  moveDecodedMs: med(move),
  batch200kCopyMs: med(copy),
  batch200kEncodeMs: med(enc),
}));
