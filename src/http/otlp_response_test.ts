/**
 * OTLP/HTTP responses stay small whatever the input quotes, and building them cannot fail; a request
 * with a megabytes-long key answers 400 with a body of about a kilobyte.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { DecodeError, MAX_MESSAGE_CHARS } from "../core/errors.ts";
import { WireReader } from "../core/decode/wire.ts";
import {
  anyValue,
  concat,
  keyValue,
  ld,
  logRecord,
  logsRequest,
} from "../../tests/reliability/otlp_proto.ts";
import { createHandler, failureResponse } from "./handler.ts";
import type { Sink } from "../ingest/sink.ts";
import { exportResponse, statusResponse } from "./otlp_response.ts";

/** Room for the JSON or protobuf framing around a capped message (and its UTF-8 growth for "…"). */
const OVERHEAD = 64;

/** `google.rpc.Status { code = 1; message = 2 }` read back from protobuf. */
function readStatus(body: Uint8Array): { code: number; message: string } {
  const r = new WireReader(body);
  let code = -1, message = "";
  while (r.pos < r.end) {
    const tag = r.tag();
    if (tag === 8) code = r.uint32();
    else if (tag === 18) r.bytes(), message = new TextDecoder().decode(body.subarray(r.start, r.stop));
    else assert.fail(`unexpected tag ${tag}`);
  }
  return { code, message };
}

Deno.test("statusResponse() cuts the message at MAX_MESSAGE_CHARS in both encodings", async () => {
  const long = "x".repeat(5_000_000);
  const pb = statusResponse(400, long, { encoding: "protobuf" });
  const pbBody = new Uint8Array(await pb.arrayBuffer());
  assert.ok(pbBody.length <= MAX_MESSAGE_CHARS + OVERHEAD, `${pbBody.length} bytes`);
  const status = readStatus(pbBody);
  assert.equal(status.code, 3);
  assert.equal(status.message.length, MAX_MESSAGE_CHARS);
  assert.match(status.message, /… \(5000000 characters\)$/);
  const json = statusResponse(400, long, { encoding: "json" });
  const jsonBody = await json.text();
  assert.ok(jsonBody.length <= MAX_MESSAGE_CHARS + OVERHEAD, `${jsonBody.length} characters`);
  assert.equal(JSON.parse(jsonBody).message, status.message);
  // Short messages pass unchanged, multi-byte characters intact.
  assert.deepEqual(
    readStatus(
      new Uint8Array(await statusResponse(429, "ça déborde", { encoding: "protobuf" }).arrayBuffer()),
    ),
    {
      code: 8,
      message: "ça déborde",
    },
  );
});

Deno.test("statusResponse() and failureResponse() never throw: anything odd gets a fixed tiny 500", async () => {
  // Response() refuses a status outside 200-599; headers that cannot be set throw too.
  for (
    const response of [
      statusResponse(1000, "m"),
      statusResponse(400, "m", { headers: { "bad header\n": "x" } }),
      failureResponse({
        get message(): string {
          throw new Error("getter");
        },
      }, "json"),
      failureResponse(
        Object.create(SyntaxError.prototype, {
          message: {
            get: () => {
              throw 1;
            },
          },
        }),
        "protobuf",
      ),
    ]
  ) {
    assert.equal(response.status, 500);
    assert.ok((await response.text()).length < 64);
  }
});

Deno.test("exportResponse() cuts a partial-success message too and encodes it in one buffer", () => {
  const { body } = exportResponse("logs", "protobuf", { rejected: 300, message: "y".repeat(100_000) });
  assert.ok(body.length <= MAX_MESSAGE_CHARS + OVERHEAD);
  const outer = new WireReader(body);
  assert.equal(outer.tag(), 10);
  outer.bytes();
  const inner = readStatus(body.subarray(outer.start, outer.stop));
  assert.equal(inner.code, 300);
  assert.equal(inner.message.length, MAX_MESSAGE_CHARS);
  assert.equal(exportResponse("logs", "protobuf").body.length, 0);
});

const sink: Sink = { admit: () => () => {}, accept: () => Promise.resolve(), ready: () => true };

async function post(
  body: Uint8Array,
  contentType: string,
  gzip = false,
  handler = createHandler({ sink }),
): Promise<Response> {
  return await handler(
    new Request("http://localhost/v1/logs", {
      method: "POST",
      headers: { "content-type": contentType, ...(gzip ? { "content-encoding": "gzip" } : {}) },
      body: (gzip ? gzipSync(body) : body) as Uint8Array<ArrayBuffer>,
    }),
  );
}

Deno.test("an 8 MiB attribute key with an invalid UTF-8 value: 400 with a body of at most 1 KiB + framing", async () => {
  const key = "k".repeat(8 * 1024 * 1024);
  const badValue = ld(1, new Uint8Array([0xc3, 0x28])); // stringValue holding invalid UTF-8
  const record = logRecord({ timeMs: 1_700_000_000_000, attributes: [keyValue(key, badValue)] });
  const request = logsRequest([{ service: "s", records: [record] }]);
  const response = await post(request, "application/x-protobuf", true);
  assert.equal(response.status, 400);
  const bytes = new Uint8Array(await response.arrayBuffer());
  assert.ok(bytes.length <= 1024 + OVERHEAD, `${bytes.length} bytes`);
  const { message } = readStatus(bytes);
  assert.match(message, /invalid UTF-8/);
  assert.match(message, /"k{128}"… \(8388608 bytes\)/); // the key, cut short
  // In a kvlist body the key is quoted the same way.
  const body = anyValue.kvlist([concat(keyValue(key, badValue))]);
  const nested = await post(
    logsRequest([{ service: "s", records: [logRecord({ timeMs: 1_700_000_000_000, body })] }]),
    "application/x-protobuf",
  );
  assert.equal(nested.status, 400);
  assert.ok((await nested.arrayBuffer()).byteLength <= 1024 + OVERHEAD);
});

Deno.test("megabytes of JSON input quoted in an error: 400 with a body of at most 1 KiB + framing", async () => {
  const big = "x".repeat(4 * 1024 * 1024);
  const json = (record: unknown) =>
    new TextEncoder().encode(JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [record] }] }] }));
  const cases = [
    { severityNumber: big },
    { timeUnixNano: big },
    { timeUnixNano: "1".repeat(1_000_000) },
    { traceId: big },
    { attributes: [{ key: "a", value: { intValue: big } }] },
    { attributes: [{ key: "a", value: { doubleValue: big } }] },
    { flags: { [big]: 1 } },
  ];
  for (const record of cases) {
    const response = await post(json(record), "application/json");
    const text = await response.text();
    assert.equal(response.status, 400, text);
    assert.ok(text.length <= 1024 + OVERHEAD, `${text.length} characters`);
  }
});

Deno.test("DecodeError caps its problem, its path and its message however deep the path grows", () => {
  const e = new DecodeError("p".repeat(10_000), "q".repeat(10_000));
  for (let i = 0; i < 1000; i++) e.within(`segment${i}`);
  e.forSignal("logs");
  assert.ok(e.problem.length <= MAX_MESSAGE_CHARS);
  assert.ok(e.path.length <= MAX_MESSAGE_CHARS);
  assert.ok(e.message.length <= MAX_MESSAGE_CHARS);
});

Deno.test("prototype names as content type, content coding or path are unknown names, never a 500", async () => {
  const handler = createHandler({ sink });
  const send = (path: string, headers: Record<string, string>) =>
    handler(new Request(`http://localhost${path}`, { method: "POST", headers, body: "{}" }));
  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
    assert.equal((await send("/v1/logs", { "content-type": name })).status, 415, `content-type ${name}`);
    const coded = await send("/v1/logs", { "content-type": "application/json", "content-encoding": name });
    assert.equal(coded.status, 400, `content-encoding ${name}`); // UnsupportedEncodingError
    assert.equal(
      (await send(`/${name}`, { "content-type": "application/json" })).status,
      404,
      `path /${name}`,
    );
  }
});

Deno.test("a failure whose reporting fails still gets its 500, with a small body", async () => {
  const failing: Sink = { ...sink, accept: () => Promise.reject(new Error("x".repeat(1_000_000))) };
  const handler = createHandler({
    sink: failing,
    onError: () => {
      throw new Error("reporter down");
    },
  });
  const body = new TextEncoder().encode(JSON.stringify({
    resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: "a" } }] }] }],
  }));
  const response = await post(body, "application/json", false, handler);
  assert.equal(response.status, 500);
  assert.equal(JSON.parse(await response.text()).message, "internal error");
});
