import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { decodeRequest, detectFormat } from "../src/core/convert.ts";
import type { MapColumn, StrColumn } from "../src/core/table/columns.ts";
import { BodySource, crc32, VARIANTS } from "./bodies.ts";
import {
  countRecords,
  encodeJson,
  encodeProtobuf,
  generateLogs,
  generateRequest,
  type Signal,
} from "./data.ts";

const SIGNALS: readonly Signal[] = ["logs", "traces", "metrics"];

Deno.test("generateRequest() is deterministic per seed", () => {
  for (const signal of SIGNALS) {
    const a = encodeProtobuf(signal, generateRequest(signal, 300, { seed: 5 }));
    const b = encodeProtobuf(signal, generateRequest(signal, 300, { seed: 5 }));
    const c = encodeProtobuf(signal, generateRequest(signal, 300, { seed: 6 }));
    assert.deepEqual(a, b, signal);
    assert.notDeepEqual(a, c, signal);
  }
});

Deno.test("generated requests decode with the core to the generated record count", () => {
  for (const signal of SIGNALS) {
    for (const records of [1, 7, 1000]) {
      const request = generateRequest(signal, records, { seed: records });
      assert.equal(countRecords(signal, request), records);
      for (
        const [format, bytes] of [["protobuf", encodeProtobuf(signal, request)], [
          "json",
          encodeJson(request),
        ]] as const
      ) {
        const decoded = decodeRequest(signal, bytes, { format });
        assert.equal(decoded.records, records, `${signal} ${format} ${records}`);
        assert.equal(decoded.rejected, 0);
      }
    }
  }
});

Deno.test("generated metrics cover gauge, sum and histogram tables", () => {
  const decoded = decodeRequest("metrics", encodeProtobuf("metrics", generateRequest("metrics", 600)), {
    format: "protobuf",
  });
  assert.deepEqual(decoded.tables.map((t) => t.def.name).sort(), [
    "otel_metrics_gauge",
    "otel_metrics_histogram",
    "otel_metrics_sum",
  ]);
});

Deno.test("generated logs are realistic: 200-300 protobuf bytes a record, 6 + 7 attributes, a few services", () => {
  const request = generateLogs(10_000, { seed: 3 });
  const bytes = encodeProtobuf("logs", request);
  const perRecord = bytes.length / 10_000;
  assert.ok(perRecord >= 200 && perRecord <= 300, `${perRecord} bytes a record`);
  const rows = decodeRequest("logs", bytes, { format: "protobuf" }).tables[0];
  const services = new Set<string>();
  const svc = rows.col<StrColumn>("ServiceName");
  for (let i = 0; i < rows.length; i++) services.add(svc.get(i));
  assert.deepEqual([...services].sort(), ["cart", "checkout", "frontend", "payment"]);
  const res = rows.col<MapColumn>("ResourceAttributes").get(0);
  assert.equal(Object.keys(res).length, 7);
  assert.equal(res["service.name"], svc.get(0));
  const attrs = rows.col<MapColumn>("LogAttributes").get(0);
  assert.equal(Object.keys(attrs).length, 6);
  assert.match(rows.col<StrColumn>("TraceId").get(0), /^([0-9a-f]{32})?$/);
  let body = 0;
  for (let i = 0; i < 100; i++) body += rows.col<StrColumn>("Body").get(i).length;
  assert.ok(body / 100 > 40, "bodies are real lines");
});

Deno.test("crc32() matches the standard check value and continues across chunks", () => {
  const bytes = new TextEncoder().encode("123456789");
  assert.equal(crc32(bytes), 0xcbf43926);
  assert.equal(crc32(bytes.subarray(4), crc32(bytes.subarray(0, 4))), 0xcbf43926);
});

Deno.test("BodySource bodies decode to the requested records, are unique, and gzip matches the plain body", () => {
  for (const signal of SIGNALS) {
    const plain = {
      protobuf: new BodySource(signal, "protobuf", { records: 50, pool: 3 }),
      json: new BodySource(signal, "json", { records: 50, pool: 3 }),
    };
    for (const variant of VARIANTS) {
      const source = new BodySource(signal, variant, { records: 50, pool: 3 });
      const seen = new Set<string>();
      for (let seq = 0; seq < 8; seq++) {
        const b = source.body(seq);
        assert.equal(b.records, 50);
        let raw = b.body;
        if (variant.endsWith("+gzip")) {
          assert.equal(b.contentEncoding, "gzip");
          raw = new Uint8Array(gunzipSync(b.body));
          const format = variant.startsWith("json") ? "json" : "protobuf";
          assert.deepEqual(raw, plain[format].body(seq).body, `${signal} ${variant} #${seq}`);
        }
        assert.equal(raw.length, b.rawBytes);
        const format = variant.startsWith("json") ? "json" : "protobuf";
        assert.equal(detectFormat(raw), format);
        assert.equal(decodeRequest(signal, raw, { format }).records, 50, `${signal} ${variant} #${seq}`);
        seen.add(Array.from(raw, (x) => x.toString(16)).join(""));
      }
      assert.equal(seen.size, 8, `${signal} ${variant} bodies are unique`);
    }
  }
});

Deno.test("BodySource gzip bodies also inflate with the web DecompressionStream", async () => {
  const source = new BodySource("logs", "protobuf+gzip", { records: 30, pool: 2 });
  const plain = new BodySource("logs", "protobuf", { records: 30, pool: 2 });
  for (const seq of [0, 3]) {
    const stream = new Blob([source.body(seq).body]).stream().pipeThrough(new DecompressionStream("gzip"));
    assert.deepEqual(new Uint8Array(await new Response(stream).arrayBuffer()), plain.body(seq).body);
  }
});

Deno.test("BodySource keeps a load's logs in one event hour, so files split by service only", () => {
  const source = new BodySource("logs", "protobuf", { records: 20, pool: 60 });
  const hours = new Set<number>();
  for (const seq of [0, 1, 59, 60, 5000, 99_999]) {
    for (const part of decodeRequest("logs", source.body(seq).body, { format: "protobuf" }).tables[0].parts) {
      hours.add(part.hour);
    }
  }
  assert.equal(hours.size, 1);
});
