/**
 * The OTLP/JSON byte scanner: the same verdicts as JSON.parse (grammar, strings, UTF-8), the same rows
 * whatever the field order, the last of repeated keys wins, and hostile bodies (deep nesting, floods
 * of whitespace or keys, long strings, huge numbers, truncation) cost work linear in their size, counted
 * by `jsonWork` (bytes checked and skipped), never timed.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Decoded, decodeRequest, encodeFile, type Format } from "../convert.ts";
import { DecodeError } from "../errors.ts";
import type { Signal } from "../table/schema.ts";
import type { StrColumn } from "../table/columns.ts";
import { checkJson, jsonWork } from "./json_scan.ts";

/** The DecodeError `fn` throws (anything else, or nothing, fails the test). */
function refusal(fn: () => unknown): DecodeError {
  let error: unknown;
  assert.throws(fn, (e) => (error = e) instanceof DecodeError);
  return error as DecodeError;
}

const utf8 = new TextEncoder();
const DATA = new URL("../../../../shared/testdata/otlp2parquet-rust/", import.meta.url).pathname;

function decodeJson(signal: Signal, body: string | Uint8Array, format: Format = "json"): Decoded {
  return decodeRequest(signal, typeof body === "string" ? utf8.encode(body) : body, { format });
}

/** Whether JSON.parse takes `text`, and whether checkJson takes its UTF-8. */
function verdicts(text: string): [boolean, boolean] {
  let parsed = true, checked = true;
  try {
    JSON.parse(text);
  } catch {
    parsed = false;
  }
  try {
    checkJson(utf8.encode(text));
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    checked = false;
  }
  return [parsed, checked];
}

/** The Parquet files of a decode, as bytes: equal when the rows are. */
function files(d: Decoded): Uint8Array[] {
  return d.tables.map((t) => encodeFile(t, { compression: "none" }).bytes);
}

/** Logs body of one record `record` (JSON text) under an empty resource and scope. */
const oneLog = (record: string) => `{"resourceLogs":[{"scopeLogs":[{"logRecords":[${record}]}]}]}`;

/** Runs `fn` and returns the bytes it checked and skipped. */
function work(fn: () => unknown): { checked: number; skipped: number } {
  jsonWork.checked = jsonWork.skipped = 0;
  fn();
  return { ...jsonWork };
}

Deno.test("checkJson() takes exactly what JSON.parse takes", () => {
  const cases = [
    "",
    " ",
    "{}",
    "[]",
    "{",
    "}",
    "[1,]",
    "[,1]",
    '{"a":1,}',
    '{"a" 1}',
    '{"a":1 "b":2}',
    "{'a':1}",
    '{"a":01}',
    '{"a":-}',
    '{"a":-0}',
    '{"a":1.}',
    '{"a":.5}',
    '{"a":1e}',
    '{"a":1e+}',
    '{"a":1E-5}',
    '{"a":+1}',
    '{"a":0x10}',
    '{"a":Infinity}',
    '{"a":NaN}',
    '{"a":tru}',
    '{"a":true}',
    '{"a":nul}',
    '{"a":null}',
    '{"a":falsey}',
    '"\\u00e9"',
    '"\\u00g9"',
    '"\\x"',
    '"\\/"',
    '"a\tb"',
    '"a\u0001b"',
    '"a\u007fb"',
    '"\\ud800"',
    '"unterminated',
    "1 2",
    " [1] ",
    "\u00a0[1]",
    "[1]\u00a0",
    "\ufeff[1]",
    "[\f1]",
    "[\v1]",
    "[1\r\n]",
    "[[[[]]]]",
    "[[[[]]]",
    '{"a":[}',
    '{"a":{]}',
    "1e999",
    "-",
    "true false",
  ];
  for (const text of cases) {
    const [parsed, checked] = verdicts(text);
    assert.equal(checked, parsed, `${JSON.stringify(text)}: JSON.parse ${parsed}, checkJson ${checked}`);
  }
  // Random texts over JSON's own characters.
  const alphabet = fc.constantFrom(...'{}[]",:0123456789.eE+- tfnrulasx\\u\n'.split(""));
  fc.assert(
    fc.property(fc.array(alphabet, { maxLength: 24 }), (chars) => {
      const [parsed, checked] = verdicts(chars.join(""));
      assert.equal(checked, parsed, JSON.stringify(chars.join("")));
    }),
    { numRuns: 20_000, seed: 12 },
  );
});

Deno.test("strings decode as JSON.parse reads them: escapes, surrogate pairs, lone surrogates as U+FFFD", () => {
  const texts = [
    "plain",
    "é€😀",
    "\\u00e9\\u20AC",
    "\\ud83d\\ude00",
    "\\ud83d",
    "\\ude00x",
    "x\\ud83d\\u0041",
    '\\"\\\\\\/\\b\\f\\n\\r\\t',
    "\\u0000",
  ];
  for (const t of texts) {
    const d = decodeJson(
      "logs",
      oneLog(`{"body":{"stringValue":"${t}"},"attributes":[{"key":"${t}","value":{"stringValue":"${t}"}}]}`),
    );
    const want = new TextDecoder().decode(utf8.encode(JSON.parse(`"${t}"`)));
    assert.equal((d.tables[0].col("Body") as StrColumn).get(0), want, t);
    const attrs = d.tables[0].col("LogAttributes") as unknown as { get(i: number): Record<string, string> };
    assert.deepEqual(attrs.get(0), { [want]: want }, t);
  }
});

Deno.test("fields in any order give the same rows; the last of a repeated key wins, camelCase over snake_case", () => {
  const resource = '"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]}';
  const scope = '"scope":{"name":"lib","version":"1"}';
  const record =
    '{"timeUnixNano":"5","body":{"stringValue":"b"},"traceId":"0102030405060708090a0b0c0d0e0f10"}';
  const canonical =
    `{"resourceLogs":[{${resource},"scopeLogs":[{${scope},"logRecords":[${record}],"schemaUrl":"s"}],"schemaUrl":"r"}]}`;
  const want = files(decodeJson("logs", canonical));
  const reordered = [
    `{"resourceLogs":[{"schemaUrl":"r","scopeLogs":[{"logRecords":[${record}],"schemaUrl":"s",${scope}}],${resource}}]}`,
    `{"resourceLogs":[{"scopeLogs":[{"schemaUrl":"s","logRecords":[${record}],${scope}}],"schemaUrl":"r",${resource}}]}`,
    // Repeated keys: the last wins, as with JSON.parse (the first values are valid, but others).
    `{"resourceLogs":[{"schemaUrl":"x",${
      resource.replace("svc", "other")
    },${resource},"scopeLogs":[{"scopeLogs":1,${scope},"logRecords":[${
      record.replace('{"timeUnixNano":"5"', '{"timeUnixNano":"7","body":{"intValue":"1"},"timeUnixNano":"5"')
    }],"schemaUrl":"s"}],"schemaUrl":"r"}]}`,
    // snake_case names, and camelCase winning over them wherever they stand.
    `{"resource_logs":[{${resource},"scope_logs":[{${scope},"log_records":[${
      record.replace('"timeUnixNano":"5"', '"time_unix_nano":"9","timeUnixNano":"5","time_unix_nano":"8"')
    }],"schema_url":"s"}],"schema_url":"r"}]}`,
  ];
  for (const body of reordered) assert.deepEqual(files(decodeJson("logs", body)), want, body);
  // Records' fields in reverse order, for every signal's sample.
  for (
    const [signal, name] of [["logs", "log.json"], ["traces", "trace.json"], [
      "metrics",
      "metrics_mixed.json",
    ]] as const
  ) {
    const text = Deno.readTextFileSync(DATA + name);
    const reverse = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reverse)
        : v && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverse(x)]))
        : v;
    const reversed = JSON.stringify(reverse(JSON.parse(text)));
    assert.deepEqual(files(decodeJson(signal, reversed)), files(decodeJson(signal, text)), name);
  }
});

Deno.test("keys like the last object's names but not them (prefix, longer, escaped) are read by what they are", () => {
  // The scanner first tries the name the same key position had in the last object, byte for byte.
  const logs = (records: string[]) =>
    `{"resourceLogs":[{"scopeLogs":[{"logRecords":[${records.join(",")}]}]}]}`;
  const first = '{"timeUnixNano":"5","severityText":"a","body":{"stringValue":"x"}}';
  const tricky = [
    first,
    // Shorter and longer than the names at their positions: unknown fields, ignored.
    '{"timeUnixNan":"6","severityTexts":"b","bod":{"stringValue":"y"}}',
    // A name spelled with escapes is the name; one with an escaped quote inside is another key.
    '{"time\\u0055nixNano":"7","severityText\\"":"c","body":{"stringValue":"z"}}',
    // A known name where another one stood before.
    '{"severityText":"d","timeUnixNano":"8","body":{"stringValue":"w"}}',
  ];
  const plain = [
    first,
    "{}",
    '{"timeUnixNano":"7","body":{"stringValue":"z"}}',
    '{"timeUnixNano":"8","severityText":"d","body":{"stringValue":"w"}}',
  ];
  assert.deepEqual(files(decodeJson("logs", logs(tricky))), files(decodeJson("logs", logs(plain))));
});

Deno.test("errors: invalid UTF-8 anywhere comes first, then JSON's grammar, then the fields", () => {
  const bad = new Uint8Array([...utf8.encode(oneLog('{"x":"')), 0xff, ...utf8.encode('"}')]);
  assert.match(refusal(() => decodeJson("logs", bad)).message, /body is not valid UTF-8/);
  // Invalid UTF-8 after a syntax error, and after a bad field: still the UTF-8 error, as before.
  const late = new Uint8Array([...utf8.encode('{"resourceLogs":[{]'), 0xc3, 0x28]);
  assert.match(refusal(() => decodeJson("logs", late)).message, /body is not valid UTF-8/);
  // A bad field before a syntax error: the syntax error (the body was parsed before it was read).
  const broken = oneLog('{"traceId":"zz"},{"a":tru}');
  assert.match(
    refusal(() => decodeJson("logs", broken)).message,
    /^cannot decode logs request: invalid JSON: /,
  );
  // The field error, with its path, when the body is JSON.
  assert.equal(
    refusal(() => decodeJson("logs", oneLog('{},{"traceId":"zz"}'))).message,
    'cannot decode logs request: field resourceLogs[0].scopeLogs[0].logRecords[1].traceId: "zz" is neither ' +
      "32 hex digits nor base64 of 16 bytes",
  );
  // A byte order mark is dropped, as decoding the text did.
  assert.equal(
    decodeJson("logs", new Uint8Array([0xef, 0xbb, 0xbf, ...utf8.encode(oneLog("{}"))])).records,
    1,
  );
});

Deno.test("every truncation of the sample bodies decodes or is refused as invalid JSON, as JSON.parse says", () => {
  for (
    const [signal, name] of [["logs", "log.json"], ["traces", "trace.json"], [
      "metrics",
      "metrics_gauge.json",
    ]] as const
  ) {
    const text = Deno.readTextFileSync(DATA + name).trim();
    for (let n = 0; n < text.length; n++) {
      const prefix = text.slice(0, n);
      let parsed = true;
      try {
        JSON.parse(prefix);
      } catch {
        parsed = false;
      }
      if (parsed) continue;
      const e = refusal(() => decodeJson(signal, prefix));
      assert.match(e.message, /invalid JSON: /, `${name} cut at ${n}`);
    }
  }
});

Deno.test("hostile nesting costs a bit of memory per level and linear work, never the stack", () => {
  const n = 1_000_000;
  // Legal, in an unknown field: read over, one record stored.
  for (const deep of ["[".repeat(n) + "]".repeat(n), '{"a":'.repeat(n) + "1" + "}".repeat(n)]) {
    const body = utf8.encode(oneLog(`{"x":${deep},"body":{"stringValue":"kept"}}`));
    const w = work(() => assert.equal(decodeJson("logs", body).records, 1));
    assert.equal(w.checked, body.length);
    assert.ok(w.skipped <= 2 * body.length, `${w.skipped} bytes skipped for ${body.length}`);
  }
  // Unbalanced: refused after one pass.
  for (const open of ["[".repeat(n), '{"a":'.repeat(n), oneLog('{"x":' + "[".repeat(n))]) {
    const body = utf8.encode(open);
    const w = work(() =>
      assert.match(refusal(() => decodeJson("logs", body)).message, /invalid JSON: unexpected /)
    );
    assert.ok(w.checked <= body.length && w.skipped === 0);
  }
  // Deep AnyValues are refused at MAX_ANY_VALUE_DEPTH (64): a level's fields are found by skipping its
  // members, so what is nested d deep is skipped about twice per enclosing array level (three times per
  // kvlist level), at most 2 * 64 times here (the tree-based decoder copied each level's text into the
  // next as often).
  const any = '{"arrayValue":{"values":['.repeat(200) + "]}}".repeat(200);
  const body = utf8.encode(oneLog(`{"body":${any}}`));
  const w = work(() =>
    assert.match(refusal(() => decodeJson("logs", body)).message, /nested deeper than 64/)
  );
  assert.ok(w.skipped <= (2 * 64 + 8) * body.length, `${w.skipped} for ${body.length}`);
});

Deno.test("floods of whitespace, keys and elements, and long strings, cost linear work", () => {
  const cases: [string, string][] = [
    [
      "whitespace",
      oneLog(`{${" \n\t\r".repeat(500_000)}"body" : { "stringValue" : "x" }${" ".repeat(1_000_000)}}`),
    ],
    [
      "unknown keys",
      oneLog(
        `{${Array.from({ length: 100_000 }, (_, i) => `"k${i}":${i}`).join(",")},"body":{"stringValue":"x"}}`,
      ),
    ],
    ["escaped keys", oneLog(`{${'"\\u0062ody":{"stringValue":"x"},'.repeat(50_000)}"flags":1}`)],
    ["long string", oneLog(`{"body":{"stringValue":"${"a".repeat(8_000_000)}"}}`)],
    ["long escaped string", oneLog(`{"body":{"stringValue":"${"\\n".repeat(2_000_000)}"}}`)],
    ["many records", oneLog(Array(200_000).fill("{}").join(","))],
    [
      "many attributes",
      oneLog(`{"attributes":[${Array(50_000).fill('{"key":"k","value":{"intValue":1}}').join(",")}]}`),
    ],
    ["empty envelopes", `{"resourceLogs":[${Array(50_000).fill('{"scopeLogs":[{},{}]}').join(",")}]}`],
  ];
  for (const [what, text] of cases) {
    const body = utf8.encode(text);
    const w = work(() => decodeJson("logs", body));
    assert.equal(w.checked, body.length, what);
    assert.ok(w.skipped <= 3 * body.length, `${what}: ${w.skipped} bytes skipped for ${body.length}`);
  }
});

Deno.test("huge numbers are refused as before, with short messages; long digit strings are not read", () => {
  const digits = "9".repeat(1_000_000);
  const cases: [string, RegExp][] = [
    [`{"timeUnixNano":${digits}}`, /timeUnixNano: expected a non-negative integer, got Infinity$/],
    [`{"timeUnixNano":1e400}`, /timeUnixNano: expected a non-negative integer, got Infinity$/],
    [`{"timeUnixNano":"${digits}"}`, /timeUnixNano: number text of 1000000 characters \(at most 64\)$/],
    [`{"timeUnixNano":18446744073709551616}`, /timeUnixNano: 18446744073709552000 does not fit in 64 bits$/],
    [
      `{"timeUnixNano":"18446744073709551616"}`,
      /timeUnixNano: 18446744073709551616 does not fit in 64 bits$/,
    ],
    [
      `{"body":{"intValue":"9223372036854775808"}}`,
      /body.intValue: 9223372036854775808 does not fit in 64 bits$/,
    ],
    [`{"body":{"doubleValue":1e309}}`, /body.doubleValue: Infinity is out of range for a double$/],
    [`{"flags":4294967296}`, /flags: 4294967296 is out of range$/],
  ];
  for (const [record, want] of cases) {
    const e = refusal(() => decodeJson("logs", oneLog(record)));
    assert.match(e.message, want);
    assert.ok(e.message.length < 300);
  }
  // In range: exact, whichever form.
  const d = decodeJson(
    "logs",
    oneLog(
      '{"timeUnixNano":"9223372036854775807","body":{"intValue":-9223372036854775808}},{"timeUnixNano":1e3}',
    ),
  );
  assert.equal(d.records, 2);
  assert.equal((d.tables[0].col("Body") as StrColumn).get(0), "-9223372036854775808");
  assert.deepEqual([...d.tables[0].time.words.subarray(0, 4)], [0xffffffff, 0x7fffffff, 1000, 0]);
});

Deno.test("JSON Lines: each line by itself, errors name the line, blank lines of any whitespace skipped", () => {
  const line = oneLog('{"body":{"stringValue":"x"}}');
  const body = `\ufeff${line}\n\u00a0\u2003\n\n  ${line}\r\n`;
  assert.equal(decodeJson("logs", body, "jsonl").records, 2);
  assert.match(
    refusal(() => decodeJson("logs", `${line}\n{"a":\n`, "jsonl")).message,
    /invalid JSON on line 2: /,
  );
  assert.match(
    refusal(() => decodeJson("logs", `${line}\n[1]\n`, "jsonl")).message,
    /expected a JSON object/,
  );
});
