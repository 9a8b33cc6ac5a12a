import assert from "node:assert/strict";
import { Operator } from "opendal";
import {
  amzDate,
  canonicalRequest,
  deriveSigningKey,
  EMPTY_SHA256,
  sha256Hex,
  signV4,
  uriEncode,
} from "./aws_sigv4.ts";

// The worked examples of "Signature Calculations for the Authorization Header" in the Amazon S3 API
// reference (example credentials, 2013-05-24, us-east-1, bucket "examplebucket").
const EXAMPLE_CREDENTIALS = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const EXAMPLE_DATE = new Date("2013-05-24T00:00:00Z");
const EXAMPLE_HOST = "https://examplebucket.s3.amazonaws.com";

function signatureOf(headers: Record<string, string>): string {
  return /Signature=([0-9a-f]{64})$/.exec(headers.authorization)![1];
}

Deno.test("signV4() matches the AWS example for GET Object with a Range header", async () => {
  const headers = await signV4(
    {
      method: "GET",
      url: new URL(`${EXAMPLE_HOST}/test.txt`),
      headers: { Range: "bytes=0-9" },
      payloadHash: EMPTY_SHA256,
    },
    EXAMPLE_CREDENTIALS,
    { region: "us-east-1", date: EXAMPLE_DATE },
  );
  assert.equal(
    headers.authorization,
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " +
      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
  );
  assert.equal(headers["x-amz-date"], "20130524T000000Z");
  assert.equal(headers["x-amz-content-sha256"], EMPTY_SHA256);
});

Deno.test("signV4() matches the AWS example for PUT Object (a '$' in the key, extra headers)", async () => {
  const body = new TextEncoder().encode("Welcome to Amazon S3.");
  const payloadHash = await sha256Hex(body);
  assert.equal(payloadHash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  const headers = await signV4(
    {
      method: "PUT",
      url: new URL(`${EXAMPLE_HOST}/${uriEncode("test$file.text")}`),
      headers: { Date: "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY" },
      payloadHash,
    },
    EXAMPLE_CREDENTIALS,
    { region: "us-east-1", date: EXAMPLE_DATE },
  );
  assert.match(
    headers.authorization,
    /SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,/,
  );
  assert.equal(signatureOf(headers), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
});

Deno.test("signV4() matches the AWS example for GET Bucket lifecycle (a value-less query)", async () => {
  const headers = await signV4(
    { method: "GET", url: new URL(`${EXAMPLE_HOST}/?lifecycle`), payloadHash: EMPTY_SHA256 },
    EXAMPLE_CREDENTIALS,
    { region: "us-east-1", date: EXAMPLE_DATE },
  );
  assert.equal(signatureOf(headers), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
});

Deno.test("signV4() matches the AWS example for GET Bucket (list) with a sorted query", async () => {
  const headers = await signV4(
    { method: "GET", url: new URL(`${EXAMPLE_HOST}/?max-keys=2&prefix=J`), payloadHash: EMPTY_SHA256 },
    EXAMPLE_CREDENTIALS,
    { region: "us-east-1", date: EXAMPLE_DATE },
  );
  assert.equal(signatureOf(headers), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
});

Deno.test("signV4() signs a session token as x-amz-security-token", async () => {
  const plain = await signV4(
    { method: "GET", url: new URL(`${EXAMPLE_HOST}/test.txt`), payloadHash: EMPTY_SHA256 },
    EXAMPLE_CREDENTIALS,
    { region: "us-east-1", date: EXAMPLE_DATE },
  );
  const withToken = await signV4(
    { method: "GET", url: new URL(`${EXAMPLE_HOST}/test.txt`), payloadHash: EMPTY_SHA256 },
    { ...EXAMPLE_CREDENTIALS, sessionToken: "token/with+chars=" },
    { region: "us-east-1", date: EXAMPLE_DATE },
  );
  assert.equal(plain["x-amz-security-token"], undefined);
  assert.equal(withToken["x-amz-security-token"], "token/with+chars=");
  assert.match(
    withToken.authorization,
    /SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,/,
  );
  assert.notEqual(signatureOf(withToken), signatureOf(plain));
});

Deno.test("uriEncode() leaves only RFC 3986 unreserved characters", () => {
  assert.equal(uriEncode("AZaz09-._~"), "AZaz09-._~");
  assert.equal(uriEncode("a b/c+d$e!'()*=&"), "a%20b%2Fc%2Bd%24e%21%27%28%29%2A%3D%26");
  assert.equal(uriEncode("ü"), "%C3%BC");
  assert.equal(amzDate(new Date("2026-11-26T10:44:27.123Z")), "20261126T104427Z");
});

// OpenDAL signs with its own SigV4 implementation (reqsign). A presigned URL carries every input of its
// signature in the query, so recomputing it with our canonicalisation and key derivation cross-checks
// both on keys full of characters that need encoding.
Deno.test("canonicalRequest() and deriveSigningKey() reproduce OpenDAL's presigned signatures", async () => {
  const operator = new Operator("s3", {
    bucket: "my-bucket",
    endpoint: "http://127.0.0.1:9",
    region: "eu-west-3",
    access_key_id: "AKIDEXAMPLE",
    secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    disable_config_load: "true",
  });
  const keys = [
    "logs/service.name=my svc/2026-11-26/part 0.parquet",
    "a+b&c=d(1)~'!*$,;@ü%20.parquet",
    "plain/key.parquet",
  ];
  for (const key of keys) {
    const presigned = await operator.presignRead(key, 3600);
    const url = new URL(presigned.url);
    const signature = url.searchParams.get("X-Amz-Signature")!;
    const date = url.searchParams.get("X-Amz-Date")!;
    const [, ...scopeParts] = url.searchParams.get("X-Amz-Credential")!.split("/");
    const signedHeaderNames = url.searchParams.get("X-Amz-SignedHeaders")!.split(";");
    const unsigned = new URL(url);
    unsigned.searchParams.delete("X-Amz-Signature");
    // Re-serialise the remaining query with SigV4 encoding so the URL carries exactly those pairs.
    unsigned.search = [...unsigned.searchParams].map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join("&");
    const headers: Record<string, string> = {};
    for (const name of signedHeaderNames) {
      assert.equal(name, "host", "OpenDAL presigns only the host header");
      headers.host = url.host;
    }
    const { canonical } = canonicalRequest({
      method: presigned.method,
      url: unsigned,
      headers,
      payloadHash: "UNSIGNED-PAYLOAD",
    });
    const scope = scopeParts.join("/");
    const stringToSign = ["AWS4-HMAC-SHA256", date, scope, await sha256Hex(canonical)].join("\n");
    const signingKey = await deriveSigningKey(
      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      date.slice(0, 8),
      "eu-west-3",
      "s3",
    );
    const mac = await crypto.subtle.sign(
      "HMAC",
      await crypto.subtle.importKey("raw", signingKey, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
      new TextEncoder().encode(stringToSign),
    );
    const ours = [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
    assert.equal(ours, signature, `signature for ${JSON.stringify(key)}`);
  }
});
