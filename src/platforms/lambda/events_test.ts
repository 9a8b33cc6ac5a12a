import assert from "node:assert/strict";
import { eventKind, eventToRequest, handleEvent, type LambdaHttpEvent, toLambdaResult } from "./events.ts";

const v2 = (over: Record<string, unknown> = {}): LambdaHttpEvent => ({
  version: "2.0",
  rawPath: "/prod/v1/logs",
  rawQueryString: "a=1&b=x%20y",
  cookies: ["c=1", "d=2"],
  headers: { "content-type": "application/json", "content-length": "999", host: "api.example.com" },
  requestContext: { http: { method: "POST" }, domainName: "api.example.com", stage: "prod" },
  body: "aGk=",
  isBase64Encoded: true,
  ...over,
} as LambdaHttpEvent);

Deno.test("eventKind() tells HTTP API v2, REST v1 and ALB events apart and refuses others", () => {
  assert.equal(eventKind(v2()), "v2");
  assert.equal(eventKind({ httpMethod: "POST", path: "/", requestContext: { stage: "prod" } }), "v1");
  assert.equal(
    eventKind({ httpMethod: "POST", path: "/", requestContext: { elb: { targetGroupArn: "t" } } }),
    "alb",
  );
  for (const odd of [null, 1, "x", {}, { version: "2.0" }, { Records: [] }]) {
    assert.throws(() => eventKind(odd), TypeError);
  }
});

Deno.test("eventToRequest() rebuilds URL, headers and the decoded body of a payload 2.0 event", async () => {
  const request = eventToRequest(v2());
  assert.equal(request.method, "POST");
  // The named stage is not part of the route; the origin is fixed, whatever the Host header says.
  assert.equal(request.url, "https://lambda.invalid/v1/logs?a=1&b=x%20y");
  assert.equal(request.headers.get("host"), "api.example.com");
  assert.equal(request.headers.get("cookie"), "c=1; d=2");
  // The length of the decoded body, not the integration's claim.
  assert.equal(request.headers.get("content-length"), "2");
  assert.equal(await request.text(), "hi");
  const functionUrl = eventToRequest(v2({
    rawPath: "/v1/logs",
    requestContext: { http: { method: "GET" }, stage: "$default" },
    body: undefined,
    isBase64Encoded: false,
  }));
  assert.equal(new URL(functionUrl.url).pathname, "/v1/logs");
  assert.equal(functionUrl.body, null);
});

Deno.test("eventToRequest() reads multi-value headers and query strings of REST and ALB events", async () => {
  const rest = eventToRequest({
    httpMethod: "POST",
    path: "/v1/traces",
    headers: { "Content-Type": "ignored" },
    multiValueHeaders: { "Content-Type": ["application/json"], "X-A": ["1", "2"] },
    multiValueQueryStringParameters: { q: ["a b", "c"] },
    requestContext: { stage: "prod", domainName: "abc.execute-api.us-east-1.amazonaws.com" },
    body: "{}",
    isBase64Encoded: false,
  });
  assert.equal(rest.url, "https://lambda.invalid/v1/traces?q=a+b&q=c");
  assert.equal(rest.headers.get("content-type"), "application/json");
  assert.equal(rest.headers.get("x-a"), "1, 2");
  assert.equal(await rest.text(), "{}");
  // ALB passes the query string still encoded.
  const alb = eventToRequest({
    httpMethod: "POST",
    path: "/v1/logs",
    headers: { host: "lb.example.com", "x-forwarded-proto": "http" },
    queryStringParameters: { q: "a%20b" },
    requestContext: { elb: { targetGroupArn: "t" } },
    body: "",
    isBase64Encoded: false,
  });
  assert.equal(alb.url, "https://lambda.invalid/v1/logs?q=a%20b");
});

Deno.test("toLambdaResult() base64-encodes binary bodies and shapes headers per integration", async () => {
  const protobuf = () =>
    new Response(new Uint8Array([8, 3, 0xff]), {
      status: 400,
      headers: { "content-type": "application/x-protobuf", "set-cookie": "a=1" },
    });
  const fromV2 = await toLambdaResult(protobuf(), v2());
  assert.deepEqual(fromV2, {
    statusCode: 400,
    headers: { "content-type": "application/x-protobuf" },
    cookies: ["a=1"],
    body: "CAP/",
    isBase64Encoded: true,
  });
  const rest = { httpMethod: "POST", path: "/", requestContext: { stage: "p" } } as LambdaHttpEvent;
  const json = await toLambdaResult(Response.json({ ok: 1 }), rest);
  assert.deepEqual(json, {
    statusCode: 200,
    headers: { "content-type": "application/json" },
    multiValueHeaders: { "content-type": ["application/json"] },
    body: '{"ok":1}',
    isBase64Encoded: false,
  });
  const alb = { httpMethod: "POST", path: "/", requestContext: { elb: { targetGroupArn: "t" } } };
  const single = await toLambdaResult(protobuf(), { ...alb, headers: {} } as LambdaHttpEvent);
  assert.equal(single.statusCode, 400);
  assert.equal((single as { statusDescription: string }).statusDescription, "400 Bad Request");
  assert.deepEqual((single as { headers: unknown }).headers, {
    "content-type": "application/x-protobuf",
    "set-cookie": "a=1",
  });
  const multi = await toLambdaResult(protobuf(), { ...alb, multiValueHeaders: {} } as LambdaHttpEvent);
  assert.deepEqual((multi as { multiValueHeaders: unknown }).multiValueHeaders, {
    "content-type": ["application/x-protobuf"],
    "set-cookie": ["a=1"],
  });
  assert.equal((multi as { headers?: unknown }).headers, undefined);
});

Deno.test("eventToRequest() never takes the origin from the Host header, and refuses a malformed one", () => {
  for (const host of ["evil.example.com:8443", "[::1]:4318", "10.0.0.1"]) {
    const request = eventToRequest(v2({ headers: { host, "content-type": "application/json" } }));
    assert.equal(new URL(request.url).origin, "https://lambda.invalid");
    assert.equal(request.headers.get("host"), host);
  }
  for (const host of ["bad host", "a/b", "user@host", "[zz]", "host:port"]) {
    assert.throws(() => eventToRequest(v2({ headers: { host } })), SyntaxError, host);
  }
  assert.throws(() => eventToRequest(v2({ headers: { "x-a": "1\r\n2" } })), SyntaxError);
  assert.throws(() => eventToRequest(v2({ requestContext: { http: { method: "P O S T" } } })), SyntaxError);
});

Deno.test("eventToRequest() reads `headers` of a REST event whose `multiValueHeaders` is empty", () => {
  const request = eventToRequest({
    httpMethod: "POST",
    path: "/v1/logs",
    headers: { "Content-Type": "application/json", Authorization: "Bearer t" },
    multiValueHeaders: {},
    requestContext: { stage: "test-invoke-stage" },
    body: "{}",
  });
  assert.equal(request.headers.get("content-type"), "application/json");
  assert.equal(request.headers.get("authorization"), "Bearer t");
});

Deno.test("handleEvent() answers a malformed event with 400 and fails only for non-HTTP events", async () => {
  let called = 0;
  const handler = () => {
    called++;
    return Promise.resolve(new Response("ok"));
  };
  const bad = await handleEvent(v2({ headers: { host: "bad host" } }), handler);
  assert.equal(bad.statusCode, 400);
  assert.deepEqual(JSON.parse(bad.body), { code: 3, message: "malformed Host header" });
  assert.equal(called, 0);
  const ok = await handleEvent(v2(), handler);
  assert.equal(ok.statusCode, 200);
  assert.equal(called, 1);
  await assert.rejects(handleEvent({ hello: 1 } as unknown as LambdaHttpEvent, handler), TypeError);
});
