import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { deflateRawSync, deflateSync, gzipSync, zstdCompressSync } from "node:zlib";
import lz4js from "lz4js";
import { compress as snappyjsCompress } from "snappyjs";
import { BodyTooLargeError, parseContentEncoding, readBody, UnsupportedEncodingError } from "./body.ts";
import { nodeInflateSync } from "../platforms/node_codecs.ts";
import { crc32c } from "../codecs/crc32c.ts";
import { chunkedStream, randomBytes, rejects, runCli, telemetryBytes } from "../codecs/test_samples.ts";
import { frameHeader, HISTORY, longRun, rawBlock } from "../codecs/zstd_samples.ts";

const MB = 1 << 20;

async function compressWith(format: CompressionFormat, data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream(format),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function u8(buffer: Uint8Array | ArrayBuffer): Uint8Array {
  return buffer instanceof Uint8Array
    ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length)
    : new Uint8Array(buffer);
}

function snappyBlock(data: Uint8Array): Uint8Array {
  return new Uint8Array(snappyjsCompress(data) as Uint8Array);
}

/** Snappy framing format, built per its spec from snappyjs blocks and masked CRC-32C. */
function snappyFramed(data: Uint8Array): Uint8Array {
  const parts: number[] = [0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59];
  for (let at = 0; at < data.length; at += 65536) {
    const piece = data.subarray(at, at + 65536);
    const crc = crc32c(piece);
    const masked = ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
    const block = snappyBlock(piece);
    const len = block.length + 4;
    parts.push(0x00, len & 0xff, (len >>> 8) & 0xff, len >>> 16);
    parts.push(masked & 0xff, (masked >>> 8) & 0xff, (masked >>> 16) & 0xff, masked >>> 24, ...block);
  }
  return new Uint8Array(parts);
}

function lz4Block(data: Uint8Array): Uint8Array {
  const dst = new Uint8Array(lz4js.compressBound(data.length));
  return dst.subarray(0, lz4js.compressBlock(data, dst, 0, data.length, new Uint32Array(1 << 16)));
}

/** Each case: a Content-Encoding value and a real encoder for it. */
const ENCODERS: [string, string, (data: Uint8Array) => Uint8Array | Promise<Uint8Array>][] = [
  ["identity", "none", (d) => d],
  ["identity", "identity", (d) => d],
  ["CompressionStream gzip", "gzip", (d) => compressWith("gzip", d)],
  ["node:zlib gzipSync", "x-gzip", (d) => u8(gzipSync(d))],
  ["CompressionStream deflate (zlib)", "deflate", (d) => compressWith("deflate", d)],
  ["CompressionStream deflate-raw", "deflate", (d) => compressWith("deflate-raw", d)],
  ["node:zlib deflateSync", "zlib", (d) => u8(deflateSync(d))],
  ["node:zlib deflateRawSync", "Deflate", (d) => u8(deflateRawSync(d))],
  ["node:zlib zstdCompressSync", "zstd", (d) => u8(zstdCompressSync(d))],
  ["zstd CLI (content size)", "zstd", (d) => runCli("zstd", ["-q", "-c", "-3"], d)],
  [
    "zstd CLI -19, no content size, checksum",
    "zstd",
    (d) => runCli("zstd", ["-q", "-c", "-19", "--no-content-size"], d),
  ],
  ["snappyjs block", "snappy", snappyBlock],
  ["snappy framed", "snappy", snappyFramed],
  ["lz4js frame", "lz4", (d) => u8(lz4js.compress(d))],
  ["lz4 CLI frame", "lz4", (d) => runCli("lz4", ["-q", "-c", "-BX", "--content-size"], d)],
  ["lz4js raw block", "LZ4", lz4Block],
];

function encodingOf(name: string): string | null {
  return name === "none" ? null : name;
}

Deno.test("readBody() round-trips 1 MB of telemetry through every encoding's real encoder", async () => {
  const data = telemetryBytes(MB);
  for (const [label, encoding, encode] of ENCODERS) {
    const encoded = await encode(data);
    const { stream } = chunkedStream(encoded, 7919);
    const decoded = await readBody(stream, { encoding: encodingOf(encoding), maxBytes: data.length });
    deepStrictEqual(decoded, data, label);
  }
});

Deno.test("readBody() refuses, at exactly one byte over, for every encoding", async () => {
  const data = telemetryBytes(300_000, 2);
  for (const [label, encoding, encode] of ENCODERS) {
    const encoded = await encode(data);
    const error = await rejects(
      () =>
        readBody(chunkedStream(encoded).stream, {
          encoding: encodingOf(encoding),
          maxBytes: data.length - 1,
        }),
      BodyTooLargeError,
    );
    strictEqual(error.limit, data.length - 1, label);
  }
});

Deno.test("readBody() decodes bodies split into 1-byte chunks (header sniffing, partial frames)", async () => {
  const data = telemetryBytes(3000, 3);
  for (const [label, encoding, encode] of ENCODERS) {
    const { stream } = chunkedStream(await encode(data), 1);
    deepStrictEqual(await readBody(stream, { encoding: encodingOf(encoding), maxBytes: MB }), data, label);
  }
});

Deno.test("readBody() returns empty bytes for empty bodies and compressed empty payloads", async () => {
  const empty = new Uint8Array(0);
  for (const encoding of [null, "gzip", "deflate", "zstd", "snappy", "lz4"]) {
    deepStrictEqual(await readBody(null, { encoding, maxBytes: 10 }), empty);
    deepStrictEqual(await readBody(chunkedStream(empty).stream, { encoding, maxBytes: 10 }), empty);
  }
  for (const [label, encoding, encode] of ENCODERS) {
    if (label === "lz4js raw block") continue; // lz4js writes no bytes at all for empty input
    const encoded = await encode(empty);
    deepStrictEqual(
      await readBody(chunkedStream(encoded).stream, { encoding: encodingOf(encoding), maxBytes: 0 }),
      empty,
      label,
    );
  }
});

Deno.test("parseContentEncoding() is case-insensitive, takes lists with identity, refuses the rest", () => {
  strictEqual(parseContentEncoding(undefined), "identity");
  strictEqual(parseContentEncoding(""), "identity");
  strictEqual(parseContentEncoding(" GZip "), "gzip");
  strictEqual(parseContentEncoding("x-gzip"), "gzip");
  strictEqual(parseContentEncoding("identity, zstd"), "zstd");
  strictEqual(parseContentEncoding("gzip, identity"), "gzip");
  strictEqual(parseContentEncoding("zlib"), "deflate");
  strictEqual(parseContentEncoding("SNAPPY"), "snappy");
  for (const bad of ["br", "compress", "gzip, zstd", "gzip, gzip", "gzip;q=1"]) {
    let error: unknown;
    try {
      parseContentEncoding(bad);
    } catch (e) {
      error = e;
    }
    ok(error instanceof UnsupportedEncodingError, bad);
    strictEqual(error.encoding, bad);
  }
});

Deno.test("readBody() rejects an unknown encoding with UnsupportedEncodingError and cancels the body", async () => {
  const { stream, cancelled, pulled } = chunkedStream(telemetryBytes(1000), 100);
  await rejects(() => readBody(stream, { encoding: "br", maxBytes: MB }), UnsupportedEncodingError, "br");
  ok(cancelled());
  strictEqual(pulled(), 0);
});

Deno.test("readBody() stops a gzip bomb at the limit, quickly and after reading little of it", async () => {
  const bomb = u8(gzipSync(new Uint8Array(10 * MB), { level: 9 }));
  ok(bomb.length < 20_000);
  for (const encoding of ["gzip", "deflate"]) {
    const payload = encoding === "gzip" ? bomb : u8(deflateSync(new Uint8Array(10 * MB), { level: 9 }));
    const { stream, pulled, cancelled } = chunkedStream(payload, 512);
    const started = performance.now();
    const error = await rejects(() => readBody(stream, { encoding, maxBytes: MB }), BodyTooLargeError);
    ok(performance.now() - started < 2000);
    strictEqual(error.limit, MB);
    // About 1 KB of a 10 KB bomb inflates past 1 MB: the rest is never read.
    ok(pulled() < payload.length / 2, `read ${pulled()} of ${payload.length}`);
    ok(cancelled());
  }
});

Deno.test("readBody() stops zstd, snappy and lz4 bombs at the limit without reading them all", async () => {
  const zeros = new Uint8Array(10 * MB);
  const bombs: [string, Uint8Array][] = [
    ["zstd", runCli("zstd", ["-q", "-c", "-19", "--no-content-size"], zeros)],
    ["zstd", u8(zstdCompressSync(zeros))],
    ["snappy", snappyBlock(zeros)],
    ["snappy", snappyFramed(zeros)],
    ["lz4", u8(lz4js.compress(zeros))],
    ["lz4", runCli("lz4", ["-q", "-c", "--content-size"], zeros)],
  ];
  for (const [encoding, bomb] of bombs) {
    const started = performance.now();
    await rejects(
      () => readBody(chunkedStream(bomb, 512).stream, { encoding, maxBytes: MB }),
      BodyTooLargeError,
    );
    ok(performance.now() - started < 2000, encoding);
  }
  // Streaming zstd stops early; a 10 MB zstd frame of zeros is a few hundred bytes, so use random
  // blocks of a repeated 1 MB pattern to make the input long enough to see it.
  const pattern = randomBytes(200_000, 9);
  const repeated = new Uint8Array(20 * MB);
  for (let at = 0; at < repeated.length; at += pattern.length) {
    repeated.set(pattern.subarray(0, repeated.length - at), at);
  }
  const zstd = runCli("zstd", ["-q", "-c", "-1", "--no-content-size"], repeated);
  const { stream, pulled, cancelled } = chunkedStream(zstd, 4096);
  await rejects(() => readBody(stream, { encoding: "zstd", maxBytes: MB }), BodyTooLargeError);
  ok(pulled() < zstd.length / 2, `read ${pulled()} of ${zstd.length}`);
  ok(cancelled());
});

/** A zstd frame header (magic, descriptor, optional window byte and content size) with one raw block. */
function zstdFrame(descriptor: number, fields: number[], content: Uint8Array): Uint8Array {
  const size = content.length;
  const block = [1 | (size << 3) & 0xff, (size >>> 5) & 0xff, (size >>> 13) & 0xff]; // last, raw
  return new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, descriptor, ...fields, ...block, ...content]);
}

Deno.test("readBody() refuses zstd headers that claim more than the limit, before allocating", async () => {
  // Single segment, 8-byte content size of 2 GiB: fzstd alone would allocate 2 GiB.
  const claim = zstdFrame(0xe0, [0, 0, 0, 0x80, 0, 0, 0, 0], new Uint8Array([1, 2, 3]));
  const started = performance.now();
  await rejects(
    () => readBody(chunkedStream(claim).stream, { encoding: "zstd", maxBytes: MB }),
    BodyTooLargeError,
  );
  ok(performance.now() - started < 500);
});

Deno.test("readBody() decodes zstd frames whose declared window is far larger than the limit", async () => {
  const data = telemetryBytes(400_000, 4);
  // A 2 TiB window (descriptor 0xf8, windowLog 41): fzstd refuses or allocates it; we shrink it.
  const huge = zstdFrame(0x00, [0xf8], data.subarray(0, 100_000));
  deepStrictEqual(
    await readBody(chunkedStream(huge).stream, { encoding: "zstd", maxBytes: MB }),
    data.subarray(0, 100_000),
  );
  // A real frame (no content size, so it has a window descriptor) with its window inflated.
  const real = runCli("zstd", ["-q", "-c", "-19", "--no-content-size", "--no-check"], data);
  strictEqual(real[4], 0x00, "descriptor: no content size, no checksum, not single segment");
  const patched = real.slice();
  patched[5] = 0xc0; // 2^34 bytes
  deepStrictEqual(
    await readBody(chunkedStream(patched, 1000).stream, { encoding: "zstd", maxBytes: MB }),
    data,
  );
});

Deno.test("readBody() decodes zstd streams of tiny blocks in a huge window in linear time", async () => {
  // A 64 MiB window and a million 1-byte raw blocks: fzstd shifted 64 MiB per block. Our decoder keeps
  // no more window than it has output, and gathers tiny blocks into large pieces.
  const blocks = new Uint8Array(4 * 1_000_000);
  for (let at = 0; at < blocks.length; at += 4) blocks.set([1 << 3, 0, 0, 0x41], at); // raw, size 1, not last
  const frame = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x80, ...blocks, 1, 0, 0]);
  const decoded = await readBody(chunkedStream(frame, 65536).stream, {
    encoding: "zstd",
    maxBytes: 64 << 20,
  });
  strictEqual(decoded.length, 1_000_000);
  ok(decoded.every((b) => b === 0x41));
  // Ordinary streams with the largest commonly used window (8 MiB, zstd -19) decode fine.
  const data = telemetryBytes(12 * MB, 11);
  const big = runCli("zstd", ["-q", "-c", "-1", "--zstd=wlog=23", "--no-content-size"], data);
  strictEqual(big[5], 0x68, "window descriptor: 8 MiB");
  deepStrictEqual(
    await readBody(chunkedStream(big, 65536).stream, { encoding: "zstd", maxBytes: 64 * MB }),
    data,
  );
});

Deno.test("readBody() rejects truncated bodies of every compressed encoding with SyntaxError", async () => {
  const data = telemetryBytes(100_000, 5);
  for (const [label, encoding, encode] of ENCODERS) {
    // Identity and the raw LZ4 block have no end marker. Raw deflate has one, but Deno's
    // DecompressionStream does not report a stream that stops before it (Bun's does), and raw
    // deflate has no checksum we could check instead.
    if (encoding === "identity" || encoding === "none" || /raw/i.test(label)) continue;
    const encoded = await encode(data);
    for (const keep of [1, 5, 17, Math.floor(encoded.length / 2), encoded.length - 1]) {
      // Cut inside the magic, LZ4 falls back to the raw block format, where one byte is a valid block.
      if (encoding === "lz4" && keep < 4) continue;
      const { stream } = chunkedStream(encoded.subarray(0, keep), 4096);
      await rejects(
        () => readBody(stream, { encoding, maxBytes: MB }),
        SyntaxError,
        "cannot decompress",
      ).catch((e) => {
        throw new Error(`${label}, first ${keep} bytes: ${e.message}`);
      });
    }
  }
});

Deno.test("readBody() rejects corrupt bodies with SyntaxError naming the coding", async () => {
  const data = telemetryBytes(100_000, 6);
  const flip = (bytes: Uint8Array, at: number) => {
    const copy = bytes.slice();
    copy[at] ^= 0x55;
    return copy;
  };
  const cases: [string, Uint8Array][] = [
    ["gzip", flip(u8(gzipSync(data)), 0)], // magic
    ["gzip", flip(u8(gzipSync(data)), 5000)], // inside the deflate data, caught by CRC-32 at the latest
    ["gzip", new Uint8Array([...u8(gzipSync(data)), 0x00, 0x01, 0x02])], // trailing garbage
    ["deflate", flip(u8(deflateSync(data)), 3000)], // caught by Adler-32 at the latest
    ["zstd", flip(u8(zstdCompressSync(data)), 0)], // magic
    ["zstd", zstdFrame(0x20, [5], new Uint8Array(3))], // content size says 5, block has 3
    ["zstd", new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50, 0x07, 0x00, 0x00])], // reserved block type
    ["snappy", flip(snappyFramed(data), 3000)], // CRC mismatch
    ["snappy", new Uint8Array([0x05, 0x00, 0x61, 0x01, 0x00])], // copy with offset 0
    ["lz4", flip(runCli("lz4", ["-q", "-c"], data), 3000)], // content checksum
    ["gzip", randomBytes(5000)],
    ["zstd", randomBytes(5000)],
    ["lz4", randomBytes(5000)],
    ["snappy", randomBytes(5000)],
  ];
  for (const [encoding, body] of cases) {
    await rejects(
      () => readBody(chunkedStream(body, 1000).stream, { encoding, maxBytes: MB }),
      SyntaxError,
      `cannot decompress ${encoding} body: `,
    );
  }
});

Deno.test("readBody() never hangs or throws anything but SyntaxError on corrupted zstd", async () => {
  const encoded = u8(zstdCompressSync(telemetryBytes(50_000, 7)));
  for (let at = 4; at < encoded.length; at += Math.ceil(encoded.length / 60)) {
    const corrupt = encoded.slice();
    corrupt[at] ^= 0xa5;
    try {
      await readBody(chunkedStream(corrupt, 512).stream, { encoding: "zstd", maxBytes: MB });
    } catch (e) {
      // Without a verified checksum, some flips decode to other bytes; the rest must be SyntaxError.
      ok(e instanceof SyntaxError || e instanceof BodyTooLargeError, `byte ${at}: ${e}`);
    }
  }
});

Deno.test("readBody() bounds the compressed input too", async () => {
  const noise = randomBytes(2 * MB, 8);
  const gz = u8(gzipSync(noise));
  const { stream, pulled, cancelled } = chunkedStream(gz, 16384);
  await rejects(() => readBody(stream, { encoding: "gzip", maxBytes: MB }), BodyTooLargeError);
  ok(pulled() < 1.2 * MB, `read ${pulled()}`);
  ok(cancelled());
  // 2 MB of zstd skippable frame decodes to nothing: only the compressed bound stops it.
  const size = 2 * MB;
  const skippable = new Uint8Array(8 + size);
  skippable.set([
    0x50,
    0x2a,
    0x4d,
    0x18,
    size & 0xff,
    (size >>> 8) & 0xff,
    (size >>> 16) & 0xff,
    size >>> 24,
  ]);
  const padded = chunkedStream(skippable, 16384);
  const error = await rejects(
    () => readBody(padded.stream, { encoding: "zstd", maxBytes: MB }),
    BodyTooLargeError,
    "compressed",
  );
  strictEqual(error.limit, MB);
  ok(padded.pulled() < 1.2 * MB && padded.cancelled());
  const { stream: raw, pulled: rawPulled } = chunkedStream(noise, 16384);
  await rejects(() => readBody(raw, { maxBytes: MB }), BodyTooLargeError);
  ok(rawPulled() <= MB + 16384);
});

/** A body that sends `first`, then nothing more, ever (or a byte now and then with `trickle`). */
function stalledBody(
  first: Uint8Array,
  trickle = false,
): { stream: ReadableStream<Uint8Array>; cancelled: () => boolean } {
  let cancelled = false;
  let sent = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(first);
        return;
      }
      if (!trickle) return new Promise<void>(() => {});
      return new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          if (!cancelled) controller.enqueue(new Uint8Array([0x20]));
          resolve();
        }, 5);
      });
    },
    cancel() {
      cancelled = true;
      clearTimeout(timer);
    },
  }, { highWaterMark: 0 });
  return { stream, cancelled: () => cancelled };
}

Deno.test("readBody() rejects promptly with the signal's reason when a stalled upload is aborted", async () => {
  const data = telemetryBytes(20_000, 9);
  const starts: [string | null, Uint8Array][] = [
    [null, data],
    ["gzip", u8(gzipSync(data)).subarray(0, 1000)],
    ["deflate", u8(deflateSync(data)).subarray(0, 1000)],
    ["zstd", u8(zstdCompressSync(data)).subarray(0, 1000)],
    ["snappy", snappyBlock(data).subarray(0, 1000)],
    ["lz4", u8(lz4js.compress(data)).subarray(0, 1000)],
  ];
  for (const trickle of [false, true]) {
    for (const [encoding, first] of starts) {
      const { stream, cancelled } = stalledBody(first, trickle);
      const controller = new AbortController();
      const reason = new Error("upload too slow");
      setTimeout(() => controller.abort(reason), 30);
      const started = performance.now();
      let error: unknown;
      try {
        await readBody(stream, { encoding, maxBytes: MB, signal: controller.signal });
      } catch (e) {
        error = e;
      }
      strictEqual(error, reason, `${encoding} trickle=${trickle}`);
      ok(performance.now() - started < 1000);
      await new Promise((r) => setTimeout(r, 0));
      ok(cancelled(), `${encoding} cancelled`);
    }
  }
});

Deno.test("readBody() rejects at once when the signal is already aborted", async () => {
  const { stream, cancelled } = stalledBody(new Uint8Array(10));
  const reason = new DOMException("deadline", "TimeoutError");
  await rejects(
    () => readBody(stream, { maxBytes: 100, signal: AbortSignal.abort(reason) }),
    DOMException,
    "deadline",
  );
  await new Promise((r) => setTimeout(r, 0));
  ok(cancelled());
});

Deno.test("readBody() passes the stream's own error through, not as a decompression error", async () => {
  const data = u8(gzipSync(telemetryBytes(50_000, 10)));
  for (const encoding of [null, "gzip", "zstd", "lz4"]) {
    const failure = new Error("connection reset");
    let sent = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(failure);
        sent = true;
        controller.enqueue(
          encoding === "zstd" ? u8(zstdCompressSync(data)).subarray(0, 500) : data.subarray(0, 500),
        );
      },
    });
    let error: unknown;
    try {
      await readBody(stream, { encoding, maxBytes: MB });
    } catch (e) {
      error = e;
    }
    strictEqual(error, failure, String(encoding));
  }
});

Deno.test("readBody() with node:zlib's one-call inflater keeps every bound and error of the stream path", async () => {
  const { nodeInflateSync: inflateSync } = await import("../platforms/node_codecs.ts");
  const data = telemetryBytes(300_000, 9);
  const bodies: [string, Uint8Array][] = [
    ["gzip", u8(gzipSync(data))],
    ["gzip", new Uint8Array([...u8(gzipSync(data.subarray(0, 1000))), ...u8(gzipSync(data.subarray(1000)))])],
    ["deflate", u8(deflateSync(data))],
    ["deflate", u8(deflateRawSync(data))],
  ];
  const read = (encoding: string, body: Uint8Array, maxBytes: number) =>
    readBody(chunkedStream(body, 4096).stream, { encoding, maxBytes, inflateSync });
  for (const [encoding, body] of bodies) {
    deepStrictEqual(await read(encoding, body, data.length), data, `${encoding}: round trip at the limit`);
    const over = await rejects(() => read(encoding, body, data.length - 1), BodyTooLargeError);
    strictEqual(over.limit, data.length - 1);
    for (const keep of [1, 5, 17, Math.floor(body.length / 2), body.length - 1]) {
      await rejects(() => read(encoding, body.subarray(0, keep), MB), SyntaxError, "cannot decompress");
    }
  }
  const corrupt = u8(gzipSync(data)).slice();
  corrupt[5000] ^= 0x55;
  for (
    const [encoding, body] of [
      ["gzip", corrupt],
      ["gzip", new Uint8Array([...u8(gzipSync(data)), 0x00, 0x01, 0x02])], // trailing garbage
      ["deflate", new Uint8Array([...u8(deflateSync(data)), 0x07])],
      ["gzip", randomBytes(5000)],
    ] as const
  ) {
    await rejects(() => read(encoding, body, MB), SyntaxError, `cannot decompress ${encoding} body: `);
  }
  // A bomb stops at the limit: zlib is never allowed more output than that.
  const started = performance.now();
  const bomb = u8(gzipSync(new Uint8Array(200 * MB), { level: 9 }));
  const error = await rejects(() => read("gzip", bomb, MB), BodyTooLargeError);
  strictEqual(error.limit, MB);
  ok(performance.now() - started < 5000);
  deepStrictEqual(await read("gzip", new Uint8Array(0), MB), new Uint8Array(0));
});

Deno.test("readBody() reports every piece as it is read and decoded, for every encoding", async () => {
  const data = telemetryBytes(200_000, 4);
  for (const inflateSync of [undefined, nodeInflateSync]) {
    for (const [label, encoding, encode] of ENCODERS) {
      const encoded = await encode(data);
      const { stream, pulled } = chunkedStream(encoded, 5000);
      let read = 0;
      let decoded = 0;
      let readAtFirstDecode = -1;
      const body = await readBody(stream, {
        encoding: encodingOf(encoding),
        maxBytes: MB,
        inflateSync,
        onRead: (n) => {
          ok(n > 0, label);
          read += n;
          // Each piece is reported as it comes off the wire, not after the whole body.
          ok(read <= pulled(), `${label}: reported no more than was pulled`);
        },
        onDecoded: (n) => {
          if (readAtFirstDecode < 0) readAtFirstDecode = read;
          decoded += n;
        },
      });
      deepStrictEqual(body, data, label);
      strictEqual(read, encoded.length, `${label}: raw bytes reported`);
      const compressed = encoding !== "identity" && encoding !== "none";
      strictEqual(decoded, compressed ? data.length : 0, `${label}: decoded bytes reported`);
    }
  }
});

Deno.test("readBody() stops at a callback's error, cancels the stream and rejects with that error", async () => {
  class Refused extends Error {}
  const data = telemetryBytes(300_000, 5);
  for (const [label, encoding, encode] of ENCODERS) {
    for (const where of ["read", "decoded"] as const) {
      if (where === "decoded" && (encoding === "identity" || encoding === "none")) continue;
      const encoded = await encode(data);
      const { stream, pulled, cancelled } = chunkedStream(encoded, 1000);
      let seen = 0;
      const refuse = (n: number) => {
        seen += n;
        if (seen > 2000) throw new Refused(`${label} ${where}`);
      };
      await rejects(
        () =>
          readBody(stream, {
            encoding: encodingOf(encoding),
            maxBytes: MB,
            onRead: where === "read" ? refuse : undefined,
            onDecoded: where === "decoded" ? refuse : undefined,
          }),
        Refused,
      );
      if (where === "read") {
        ok(cancelled(), `${label}: the upload is cancelled`);
        ok(pulled() <= 3000 && pulled() < encoded.length, `${label}: read no further (${pulled()} bytes)`);
      }
    }
  }
});

Deno.test("readBody() lets other work run while a small zstd body decodes to many megabytes", async () => {
  // 2.4 KB of 3-byte matches that decode to 26 MiB, in one chunk: timers run between the pieces.
  const blocks: number[] = [...frameHeader({ descriptor: 0x50 }), ...rawBlock(HISTORY)];
  for (let i = 0; i < 200; i++) blocks.push(...longRun(43_690, { ml: 0, last: false }).subarray(17));
  blocks.push(...rawBlock([], true));
  const input = new Uint8Array(blocks);
  let ticks = 0;
  const tick = () => {
    ticks++;
    timer = setTimeout(tick, 0);
  };
  let timer = setTimeout(tick, 0);
  try {
    const decoded = await readBody(chunkedStream(input, input.length).stream, {
      encoding: "zstd",
      maxBytes: 64 * MB,
    });
    strictEqual(decoded.length, HISTORY.length + 200 * 131_070);
    ok(ticks >= 3, `${ticks} timer turns ran during the decode`);
  } finally {
    clearTimeout(timer);
  }
});
