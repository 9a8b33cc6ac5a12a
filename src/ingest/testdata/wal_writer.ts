/**
 * Child process for wal_test.ts; runs under Deno and Bun (`<runtime> wal_writer.ts MODE DIR`).
 *
 * - `loop`: 16 concurrent appenders append forever; each acknowledged append prints `seq appender index`
 *   on its own line, written synchronously so a line on stdout always means "acknowledged".
 * - `fill`: rounds of 5 concurrent 1100-byte appends until a round fails (the test sets a file size
 *   limit), then one small append; prints `ok seq appender index` or `err <class> <message>` per append.
 *
 * @module
 */

import { writeSync } from "node:fs";
import process from "node:process";
import { Wal, WalFullError } from "../wal.ts";

/** The deterministic payload of appender `k`'s `i`th append, so the test can check it byte for byte. */
export function payloadFor(k: number, i: number, length = 1 + ((k * 7919 + i * 104729) % 3000)): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let j = 0; j < length; j++) bytes[j] = (k * 31 + i * 17 + j * 7) & 0xff;
  return bytes;
}

function say(line: string): void {
  const bytes = new TextEncoder().encode(line + "\n");
  let done = 0;
  while (done < bytes.length) done += writeSync(1, bytes, done);
}

async function loop(dir: string): Promise<void> {
  const wal = await Wal.open({ dir, maxBytes: 1 << 30, segmentBytes: 64 * 1024 });
  const appender = async (k: number) => {
    for (let i = 0;; i++) {
      const seq = await wal.append(k, payloadFor(k, i));
      say(`${seq} ${k} ${i}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, (_, k) => appender(k)));
}

async function fill(dir: string): Promise<void> {
  const wal = await Wal.open({ dir, maxBytes: 1 << 30, segmentBytes: 1 << 30 });
  const report = (k: number, i: number) => (result: PromiseSettledResult<number>) => {
    if (result.status === "fulfilled") say(`ok ${result.value} ${k} ${i}`);
    else {
      const error = result.reason;
      say(`err ${error instanceof WalFullError ? "WalFullError" : "other"} ${String(error?.message)}`);
    }
  };
  for (let i = 0; i < 1000; i++) {
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, k) => wal.append(k, payloadFor(k, i, 1100))),
    );
    results.forEach((r, k) => report(k, i)(r));
    if (results.some((r) => r.status === "rejected")) break;
  }
  const [last] = await Promise.allSettled([wal.append(9, payloadFor(9, 0, 10))]);
  report(9, 0)(last);
  await wal.close();
}

if (import.meta.main) {
  const [mode, dir] = process.argv.slice(2);
  if (mode === "loop") await loop(dir);
  else if (mode === "fill") await fill(dir);
  else throw new TypeError(`unknown mode ${mode}`);
}
