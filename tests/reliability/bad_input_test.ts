/**
 * Bad input of many shapes against one server process: none may crash it, hang it or leak from it, and
 * after each the server still answers a valid request with 200. Plus a property test mutating valid
 * requests: 10 000+ cases straight into `decodeRequest` (DecodeError or a result, nothing else, never a
 * hang) and 500 through HTTP (200 or 400, never 500).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { deflateSync, gzipSync } from "node:zlib";
import fc from "fast-check";
import { runCli } from "../../src/codecs/test_samples.ts";
import { sizedFrame, zerosBlock } from "../../src/codecs/lz4_samples.ts";
import { longRun } from "../../src/codecs/zstd_samples.ts";
import { corpus, describeCase, mutate, mutationsArb } from "./fuzz_cases.ts";
import type { FuzzStats } from "./fuzz_worker.ts";
import { FuzzFiles, type FuzzFilesSnapshot } from "./fuzz_readback.ts";

/** What the fuzz worker reports. */
type Outcome = { stats: FuzzStats; failure?: string; files: FuzzFilesSnapshot };
import { prng, seedFor } from "./load.ts";
import {
  anyValue,
  type Bytes,
  concat,
  concatAll,
  deeplyNestedLogsRequest,
  fixed64,
  I32,
  I64,
  idLogsRequest,
  keyValue,
  ld,
  logRecord,
  logsRequest,
  str,
  tag,
  varint,
} from "./otlp_proto.ts";
import { problems, type ServerProcess, spawnServer } from "./server_process.ts";

const DECODE_CASES = Number(Deno.env.get("RELIABILITY_FUZZ_CASES") ?? 10_000);
const HTTP_CASES = Number(Deno.env.get("RELIABILITY_HTTP_FUZZ_CASES") ?? 500);
const MiB = 1024 * 1024;
const MAX_PAYLOAD = 16 * MiB;
const MAX_INFLIGHT = 20 * MiB;
const utf8 = new TextEncoder();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name:
    "decodeRequest on 10 000+ mutated requests: a result or a DecodeError, never anything else, never a hang",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const seed = seedFor("decode fuzz");
    const worker = new Worker(new URL("./fuzz_worker.ts", import.meta.url), { type: "module" });
    let last: { bytes: Uint8Array; signal: string; format: string } | undefined;
    let lastAt = Date.now();
    try {
      const outcome = await new Promise<Outcome>((resolve, reject) => {
        const watchdog = setInterval(() => {
          // No case finished for this long: one hangs.
          if (Date.now() - lastAt > 20_000) {
            clearInterval(watchdog);
            const hex = last
              ? [...last.bytes.subarray(0, 512)].map((x) => x.toString(16).padStart(2, "0")).join("")
              : "";
            reject(
              new Error(
                `a case hangs (${last?.signal} ${last?.format}, ${last?.bytes.length} bytes): ${hex}`,
              ),
            );
          }
        }, 500);
        worker.onmessage = (e) => {
          lastAt = Date.now();
          if (e.data.type === "case") last = e.data;
          else {
            clearInterval(watchdog);
            resolve(e.data);
          }
        };
        worker.onerror = (e) => {
          clearInterval(watchdog);
          e.preventDefault();
          reject(new Error(`fuzz worker failed: ${e.message}`));
        };
        worker.postMessage({ seed, runs: DECODE_CASES });
      });
      console.log(
        `decode fuzz: ${outcome.stats.runs} cases, ${outcome.stats.decoded} still decoded (and encoded), ` +
          `${outcome.stats.refused} refused with DecodeError; slowest ${
            outcome.stats.slowestMs.toFixed(1)
          } ms`,
      );
      assert.equal(outcome.failure, undefined, outcome.failure);
      assert.ok(outcome.stats.runs >= DECODE_CASES);
      assert.ok(
        outcome.stats.decoded > 0 && outcome.stats.refused > 0,
        "the mutations are not varied enough",
      );
      // What was accepted would be stored: every file must read back whole in DuckDB and ClickHouse.
      const files = new FuzzFiles(outcome.files);
      try {
        await files.readBack();
        console.log(`decode fuzz: ${files.count} files read back by DuckDB and chDB`);
      } finally {
        files.remove();
      }
    } finally {
      worker.terminate();
    }
  },
});

/**
 * A POST of `body` (to `/v1/logs` unless `options.path`); resolves with the status, 0 when the connection
 * failed or no answer came within `options.timeoutMs` (default 15 000).
 */
async function post(
  server: ServerProcess,
  body: BodyInit,
  headers: Record<string, string> = {},
  options: { path?: string; timeoutMs?: number } = {},
): Promise<number> {
  try {
    const r = await fetch(`${server.url}${options.path ?? "/v1/logs"}`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf", ...headers },
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return 0;
  }
}

/** Writes raw bytes on a fresh TCP connection, then runs `then` with it; closes it at the end. */
async function raw(
  server: ServerProcess,
  head: string,
  then: (c: Deno.TcpConn) => Promise<void>,
): Promise<void> {
  const { port } = new URL(server.url);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
  try {
    await conn.write(utf8.encode(head));
    await then(conn);
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

/** Reads what the server sends on `conn` until it closes or `ms` pass; returns it as text. */
async function readFor(conn: Deno.TcpConn, ms: number): Promise<string> {
  const buf = new Uint8Array(65536);
  let out = "";
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const n = await Promise.race([conn.read(buf), sleep(Math.max(1, deadline - Date.now())).then(() => -1)]);
    if (n === null || n === -1) break;
    out += new TextDecoder().decode(buf.subarray(0, n as number));
    if (/\r\n\r\n/.test(out) && /content-length: 0|\r\n\r\n.+/is.test(out)) break;
  }
  return out;
}

const headOf = (length: number, type = "application/x-protobuf") =>
  `POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\n\r\n`;

function randomBytes(n: number, random: () => number): Bytes {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = random() * 256;
  return b;
}

/** A logs request with one record carrying `attributes` string attributes. */
function manyAttributes(count: number): Bytes {
  const attrs: Uint8Array[] = new Array(count);
  for (let i = 0; i < count; i++) attrs[i] = ld(6, keyValue(`k${i}`, anyValue.string("v")));
  const rec = concatAll([fixed64(1, BigInt(Date.now()) * 1_000_000n), ...attrs]);
  return ld(1, concat(ld(1, ld(1, keyValue("service.name", anyValue.string("attrs")))), ld(2, ld(2, rec))));
}

/** A zstd frame of `n` zero bytes, made by the zstd CLI (the real encoder). */
function zstdZeros(n: number): Bytes {
  return runCli("zstd", ["-q", "-c", "-19"], new Uint8Array(n)).slice();
}

Deno.test({
  name: "bad input of many shapes: no crash, no hang, no leak; a valid request gets 200 after each",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const seed = seedFor("bad input");
    const random = prng(seed);
    const dir = Deno.makeTempDirSync({ prefix: "o2p-badinput-" });
    const server = await spawnServer({
      OTLP2PARQUET_STORAGE_PATH: join(dir, "data"),
      OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
      OTLP2PARQUET_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD),
      OTLP2PARQUET_MAX_INFLIGHT_BYTES: String(MAX_INFLIGHT),
      OTLP2PARQUET_REQUEST_TIMEOUT_SECS: "2",
      OTLP2PARQUET_BATCH_MAX_AGE_SECS: "0.5",
    });
    let valid = 0;
    const checkAlive = async (what: string) => {
      const status = await post(server, idLogsRequest("valid", [`valid-${valid++}`]));
      assert.equal(status, 200, `after ${what}: a valid request got ${status}\n${problems(server.output())}`);
    };
    const expect = async (what: string, statuses: number[], send: () => Promise<number>) => {
      await t.step(what, async () => {
        const status = await send();
        assert.ok(statuses.includes(status), `${what}: got ${status}, expected ${statuses.join(" or ")}`);
        await checkAlive(what);
      });
    };
    try {
      await checkAlive("start");
      const baseFiles = server.openFiles();
      const valid3 = idLogsRequest("svc", ["a", "b", "c"]);

      for (const n of [1, 100, 4096, 1 * MiB]) {
        await expect(`${n} random bytes as protobuf`, [200, 400], () => post(server, randomBytes(n, random)));
      }
      await expect(
        "random bytes as JSON",
        [400],
        () => post(server, randomBytes(10_000, random), { "content-type": "application/json" }),
      );
      await expect(
        "random bytes as JSON Lines",
        [400],
        () => post(server, randomBytes(10_000, random), { "content-type": "application/x-ndjson" }),
      );
      for (const cut of [1, 2, 5, 17, valid3.length - 1]) {
        await expect(
          `protobuf truncated to ${cut} bytes`,
          [200, 400],
          () => post(server, valid3.subarray(0, cut)),
        );
      }
      for (const wireType of [0, 1, 3, 4, 5, 6, 7]) {
        await expect(
          `resourceLogs with wire type ${wireType}`,
          [400],
          () => post(server, concat(tag(1, wireType), new Uint8Array(16).fill(1))),
        );
      }
      await expect(
        "timeUnixNano as fixed32",
        [400],
        () =>
          post(server, logsRequest([{ service: "s", records: [concat(tag(1, I32), new Uint8Array(4))] }])),
      );
      await expect(
        "body as fixed64",
        [400],
        () =>
          post(server, logsRequest([{ service: "s", records: [concat(tag(5, I64), new Uint8Array(8))] }])),
      );
      await expect("field number 0", [400], () => post(server, new Uint8Array([0, 0, 0, 0])));
      // Lengths past 32 bits must not wrap around to small ones (2^32 + 5 read as 5).
      for (const length of [2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 2n ** 63n, 2n ** 64n - 1n]) {
        await expect(
          `length prefix ${length}`,
          [400],
          () => post(server, concat(tag(1, 2), varint(length), new Uint8Array(32))),
        );
      }
      await expect(
        "varint of 11 bytes",
        [400],
        () => post(server, concat(tag(1, 2), new Uint8Array(10).fill(0xff), new Uint8Array([1, 0]))),
      );
      await expect(
        "inner length beyond its parent",
        [400],
        () => post(server, ld(1, concat(tag(2, 2), varint(1000), new Uint8Array(10)))),
      );
      for (const kvlist of [false, true]) {
        await expect(
          `AnyValue nested 100 000 levels (${kvlist ? "kvlist" : "array"})`,
          [400],
          () => post(server, deeplyNestedLogsRequest(100_000, { kvlist })),
        );
      }
      await expect("OTLP/JSON nested 100 000 levels", [400], () => {
        const depth = 100_000;
        const open = '{"arrayValue":{"values":['.repeat(depth);
        const close = "]}}".repeat(depth);
        const json =
          `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":${open}{"stringValue":"x"}${close}}]}]}]}`;
        return post(server, json, { "content-type": "application/json" });
      });
      await expect("a string body of 15 MiB", [200], () =>
        post(
          server,
          logsRequest([{
            service: "big",
            records: [logRecord({ timeMs: Date.now(), body: anyValue.string("x".repeat(15 * MiB)) })],
          }]),
        ));
      await expect(
        "100 000 records",
        [200],
        () => post(server, idLogsRequest("many", Array.from({ length: 100_000 }, (_, i) => `m${i}`))),
      );
      const badUtf8 = new Uint8Array([0x61, 0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80]);
      await expect(
        "invalid UTF-8 in a protobuf string body",
        [200, 400],
        () =>
          post(
            server,
            logsRequest([{
              service: "s",
              records: [logRecord({ timeMs: Date.now(), body: ld(1, badUtf8) })],
            }]),
          ),
      );
      await expect("invalid UTF-8 in an attribute key", [200, 400], () =>
        post(
          server,
          logsRequest([{
            service: "s",
            records: [
              logRecord({ timeMs: Date.now(), attributes: [concat(ld(1, badUtf8), ld(2, anyValue.int(1)))] }),
            ],
          }]),
        ));
      await expect("invalid UTF-8 in the service name", [200, 400], () =>
        post(
          server,
          ld(
            1,
            concat(
              ld(1, ld(1, concat(str(1, "service.name"), ld(2, ld(1, badUtf8))))),
              ld(2, ld(2, logRecord({ timeMs: Date.now() }))),
            ),
          ),
        ));
      await expect(
        "invalid UTF-8 in OTLP/JSON",
        [400],
        () =>
          post(
            server,
            concat(
              utf8.encode('{"resourceLogs":[{"resource":{"attributes":[{"key":"'),
              badUtf8,
              utf8.encode('"}]}}]}'),
            ),
            {
              "content-type": "application/json",
            },
          ),
      );

      // Bombs: small on the wire, far beyond the payload limit once inflated.
      const zeros = new Uint8Array(4 * MAX_PAYLOAD);
      await expect(
        "gzip bomb (64 MiB of zeros)",
        [413],
        () => post(server, gzipSync(zeros), { "content-encoding": "gzip" }),
      );
      await expect(
        "deflate bomb",
        [413],
        () => post(server, deflateSync(zeros), { "content-encoding": "deflate" }),
      );
      await expect(
        "zstd bomb",
        [413],
        () => post(server, zstdZeros(4 * MAX_PAYLOAD), { "content-encoding": "zstd" }),
      );
      // zstd built to cost: 98,047 long matches declared in 18 bytes (fzstd ran them all: 454 s), and
      // a valid request whose checksum no longer matches its content (it must not be stored).
      await expect(
        "zstd: 98,047 long RLE-coded matches in one block",
        [400],
        () => post(server, longRun(98_047, { ml: 52 }).slice(), { "content-encoding": "zstd" }),
      );
      const checked = runCli("zstd", ["-q", "-c", "--check"], valid3).slice();
      checked[checked.length - 1] ^= 0xff;
      await expect(
        "zstd with a wrong content checksum",
        [400],
        () => post(server, checked, { "content-encoding": "zstd" }),
      );
      // lz4 built to cost: a 4 MiB frame, then 1,000 frames each declaring one byte (an exact
      // reallocation per declared size made this quadratic: 36 s at 32 MiB).
      const lz4Frames = [sizedFrame(4 * MiB, [zerosBlock(4 * MiB)])];
      for (let i = 0; i < 1000; i++) lz4Frames.push(sizedFrame(1, [new Uint8Array([0x61])], true));
      await expect(
        "lz4: a 4 MiB frame, then 1,000 one-byte frames",
        [400],
        () => post(server, concatAll(lz4Frames), { "content-encoding": "lz4" }),
      );
      await expect(
        "gzip bomb as JSON",
        [413],
        () =>
          post(server, gzipSync(zeros), { "content-encoding": "gzip", "content-type": "application/json" }),
      );
      await expect(
        "gzip inside gzip",
        [400],
        () => post(server, gzipSync(gzipSync(zeros)), { "content-encoding": "gzip" }),
      );
      await expect(
        "truncated gzip",
        [400],
        () => post(server, gzipSync(valid3).subarray(0, 20), { "content-encoding": "gzip" }),
      );
      await expect(
        "garbage after gzip",
        [200, 400],
        () => post(server, concat(gzipSync(valid3), randomBytes(50, random)), { "content-encoding": "gzip" }),
      );
      await expect(
        "gzip header on plain bytes",
        [400],
        () => post(server, valid3, { "content-encoding": "gzip" }),
      );
      await expect(
        "unknown content encoding",
        [400],
        () => post(server, valid3, { "content-encoding": "br2" }),
      );
      await expect("declared length over the limit", [413], () =>
        new Promise<number>((resolve) => {
          raw(server, headOf(MAX_PAYLOAD + 1), async (conn) => {
            const answer = await readFor(conn, 5000);
            resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1] ?? 0));
          }).catch(() => resolve(0));
        }));

      await t.step("a client trickling its body is cut off (408) and blocks nobody", async () => {
        const body = valid3;
        let status = 0;
        let othersOk = 0;
        await raw(server, headOf(body.length), async (conn) => {
          const trickle = (async () => {
            try {
              for (let i = 0; i < body.length; i++) {
                await conn.write(body.subarray(i, i + 1));
                await sleep(300);
              }
            } catch {
              // the server hung up: expected
            }
          })();
          const answer = readFor(conn, 8000);
          for (let i = 0; i < 5; i++) {
            if ((await post(server, idLogsRequest("v", [`during-trickle-${i}`]))) === 200) othersOk++;
          }
          status = Number(/^HTTP\/1\.1 (\d+)/.exec(await answer)?.[1] ?? 0);
          conn.close();
          await trickle;
        });
        assert.equal(othersOk, 5, "valid requests failed while a client trickled");
        assert.equal(status, 408, `a trickling client got ${status}`);
        await checkAlive("a trickling client");
      });

      await t.step("a client that never finishes its headers blocks nobody", async () => {
        await raw(server, "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty", async () => {
          for (let i = 0; i < 3; i++) await checkAlive("half-sent headers");
          await sleep(500);
        });
      });

      await t.step("clients disconnecting mid-body leave nothing behind", async () => {
        for (let i = 0; i < 25; i++) {
          await raw(server, headOf(MiB), async (conn) => {
            await conn.write(valid3);
            await conn.write(new Uint8Array(64 * 1024));
          });
        }
        // 25 MiB of declared bodies would have exhausted the 20 MiB in-flight budget had any leaked.
        await sleep(500);
        await checkAlive("disconnects");
      });

      await t.step("garbage instead of HTTP", async () => {
        for (
          const junk of [
            "\x00\x01\x02\x03\r\n\r\n",
            "GET / HTTP/9.9\r\n\r\n",
            "POST /v1/logs HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
          ]
        ) {
          await raw(server, junk, async (conn) => void await readFor(conn, 1000));
        }
        await checkAlive("garbage");
      });

      await t.step("a request body shorter than its Content-Length, then a hang-up", async () => {
        await raw(server, headOf(10_000), async (conn) => {
          await conn.write(valid3);
          await sleep(200);
        });
        await checkAlive("short body");
      });

      await t.step("twenty more bombs and broken uploads do not grow memory", async () => {
        await sleep(1000);
        const before = server.memory().rssKiB;
        const bomb = gzipSync(zeros);
        for (let i = 0; i < 20; i++) {
          assert.equal(await post(server, bomb, { "content-encoding": "gzip" }), 413);
          await raw(server, headOf(MiB), async (conn) => {
            await conn.write(valid3);
          });
        }
        await sleep(1000);
        const grownMiB = (server.memory().rssKiB - before) / 1024;
        // Each bomb fills a 16 MiB buffer before it is refused: twenty kept would be 320 MiB.
        assert.ok(grownMiB < 64, `RSS grew by ${grownMiB.toFixed(0)} MiB over twenty bombs`);
        await checkAlive("repeated bombs");
      });

      await t.step(
        "the in-flight budget is whole again: a request of almost all of it is accepted",
        async () => {
          const status = await post(
            server,
            logsRequest([{
              service: "budget",
              records: [
                logRecord({ timeMs: Date.now(), body: anyValue.string("y".repeat(MAX_PAYLOAD - 4096)) }),
              ],
            }]),
          );
          assert.equal(status, 200, `a request within the budget got ${status}: budget leaked?`);
        },
      );

      await t.step("no file descriptors leaked; the server logged no unexpected error", async () => {
        await sleep(1500);
        const files = server.openFiles();
        assert.ok(files <= baseFiles + 8, `open files grew from ${baseFiles} to ${files}`);
        assert.ok(!/unexpected error/.test(server.output()), problems(server.output()));
        console.log(
          `bad input: open files ${baseFiles} → ${files}; memory ${JSON.stringify(server.memory())} KiB`,
        );
      });
      assert.equal(await server.stop(), 0);
    } finally {
      await server.kill();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "500 mutated requests through HTTP: 200 or 400, never 500",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const seed = seedFor("http fuzz");
    const dir = Deno.makeTempDirSync({ prefix: "o2p-httpfuzz-" });
    const server = await spawnServer({
      OTLP2PARQUET_STORAGE_PATH: join(dir, "data"),
      OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
      OTLP2PARQUET_BATCH_MAX_AGE_SECS: "0.5",
    });
    const seeds = corpus();
    const paths = { logs: "/v1/logs", traces: "/v1/traces", metrics: "/v1/metrics" };
    const counts = new Map<number, number>();
    try {
      await fc.assert(
        fc.asyncProperty(fc.nat(seeds.length - 1), mutationsArb, async (index, mutations) => {
          const s = seeds[index];
          const bytes = mutate(s, mutations);
          const status = await post(
            server,
            bytes,
            { "content-type": s.format === "json" ? "application/json" : "application/x-protobuf" },
            { path: paths[s.signal] },
          );
          counts.set(status, (counts.get(status) ?? 0) + 1);
          assert.ok(
            status === 200 || status === 400,
            `got ${status} for ${describeCase(s, mutations, bytes)}\n${problems(server.output())}`,
          );
        }),
        { seed, numRuns: HTTP_CASES },
      );
      console.log(`http fuzz: ${[...counts].map(([s, n]) => `${s}: ${n}`).join(", ")}`);
      assert.equal(await server.stop(), 0);
      // The server wrote what it accepted when it stopped: every file must read back whole.
      const files = FuzzFiles.inFolder(join(dir, "data"));
      await files.readBack();
      console.log(`http fuzz: ${files.count} stored files read back by DuckDB and chDB`);
      assert.ok(!/unexpected error/.test(server.output()), problems(server.output()));
    } finally {
      await server.kill();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "200 000 attributes on one record (2.9 MB) are answered within 5 s, and the server stays responsive",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // On its own server: a request that takes minutes of CPU would stall every case after it.
    const dir = Deno.makeTempDirSync({ prefix: "o2p-attrs-" });
    const server = await spawnServer({
      OTLP2PARQUET_STORAGE_PATH: join(dir, "data"),
      OTLP2PARQUET_WAL_DIR: join(dir, "wal"),
      OTLP2PARQUET_BATCH_MAX_AGE_SECS: "0.5",
    });
    try {
      const t0 = Date.now();
      const status = await post(server, manyAttributes(200_000), {}, { timeoutMs: 5000 });
      assert.ok(
        // 413: beyond MAX_ITEMS_PER_RECORD (65 536 attributes), refused after decoding that many.
        [200, 400, 413].includes(status),
        `got ${status === 0 ? "no answer" : status} after ${Date.now() - t0} ms ` +
          "(sorting attribute keys is quadratic: AttrScratch.flushTo in src/core/table/values.ts)",
      );
      assert.equal(await post(server, idLogsRequest("valid", ["after-attrs"]), {}, { timeoutMs: 5000 }), 200);
    } finally {
      await server.kill();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
