/**
 * Test-only sample bytes for the body decoders: deterministic, and shaped like real telemetry
 * (repetitive keys, varying ids, numbers and messages) so compressors behave as they do on OTLP.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Any error class (constructor arguments do not matter for `instanceof`). */
export type ErrorClass<E extends Error> = new (...args: never[]) => E;

/** A small deterministic PRNG (mulberry32) so failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SERVICES = ["checkout", "cart", "payment", "frontend", "shipping", "ad-service", "recommendation"];
const MESSAGES = [
  "request completed",
  "cache miss for product catalog",
  "payment authorized",
  "retrying upstream call after timeout",
  "user session refreshed",
  "inventory reservation failed: out of stock",
];

/** About `size` bytes of OTLP/JSON-like log records (exactly `size`: the tail is cut). */
export function telemetryBytes(size: number, seed = 1): Uint8Array {
  const random = prng(seed);
  const hex = (n: number) => {
    let s = "";
    for (let i = 0; i < n; i++) s += Math.floor(random() * 16).toString(16);
    return s;
  };
  const parts: string[] = [];
  let length = 0;
  let time = 1_700_000_000_000_000_000n;
  while (length < size) {
    time += BigInt(Math.floor(random() * 5_000_000));
    const service = SERVICES[Math.floor(random() * SERVICES.length)];
    const line = `{"timeUnixNano":"${time}","severityNumber":${1 + Math.floor(random() * 24)},` +
      `"body":{"stringValue":"${MESSAGES[Math.floor(random() * MESSAGES.length)]}"},` +
      `"attributes":[{"key":"service.name","value":{"stringValue":"${service}"}},` +
      `{"key":"http.status_code","value":{"intValue":${200 + Math.floor(random() * 4) * 100}}},` +
      `{"key":"duration_ms","value":{"doubleValue":${(random() * 900).toFixed(3)}}}],` +
      `"traceId":"${hex(32)}","spanId":"${hex(16)}"}\n`;
    parts.push(line);
    length += line.length;
  }
  return new TextEncoder().encode(parts.join("")).subarray(0, size);
}

/** `size` incompressible bytes. */
export function randomBytes(size: number, seed = 7): Uint8Array {
  const random = prng(seed);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = random() * 256;
  return out;
}

/** A stream serving `bytes` in pieces of `chunkSize`; `pulled()` tells how many bytes were taken. */
export function chunkedStream(
  bytes: Uint8Array,
  chunkSize = 16384,
): { stream: ReadableStream<Uint8Array>; pulled: () => number; cancelled: () => boolean } {
  let at = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        return;
      }
      const piece = bytes.slice(at, at + chunkSize);
      at += piece.length;
      controller.enqueue(piece);
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, pulled: () => at, cancelled: () => cancelled };
}

/** Asserts that `fn` rejects (or throws) with an instance of `type`; returns the error. */
export async function rejects<E extends Error>(
  fn: () => unknown,
  type: ErrorClass<E>,
  messageIncludes?: string,
): Promise<E> {
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  return checkError(error, type, messageIncludes);
}

/** Asserts that `fn` throws an instance of `type` (with `messageIncludes` in its message); returns it. */
export function throws<E extends Error>(
  fn: () => unknown,
  type: ErrorClass<E>,
  messageIncludes?: string,
): E {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  return checkError(error, type, messageIncludes);
}

function checkError<E extends Error>(
  error: unknown,
  type: ErrorClass<E>,
  messageIncludes?: string,
): E {
  if (!(error instanceof type)) {
    throw new Error(`expected ${type.name}, got ${error === undefined ? "no error" : String(error)}`, {
      cause: error,
    });
  }
  if (messageIncludes !== undefined && !error.message.includes(messageIncludes)) {
    throw new Error(`expected message containing ${JSON.stringify(messageIncludes)}, got ${error.message}`);
  }
  return error;
}

/** Runs a CLI on `input` (given as a temporary file, the last argument) and returns its stdout. The real
 * encoders (zstd, lz4) are CLIs; a file rather than stdin avoids a pipe deadlock in synchronous spawn. */
export function runCli(command: string, args: string[], input: Uint8Array): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "body-test-"));
  try {
    const file = join(dir, "input");
    writeFileSync(file, input);
    const out = execFileSync(command, [...args, file], {
      maxBuffer: 1 << 28,
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
