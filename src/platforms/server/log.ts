/**
 * The server's logger: one line per event, as text (`2026-11-26T10:00:00.000Z INFO message key=value`)
 * or JSON, filtered by level.
 *
 * @module
 */

import type { Logger } from "../../ingest/ingest.ts";

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;

/** Creates a logger writing lines through `write` (default: console.log). */
export function createLogger(
  options: { level?: keyof typeof LEVELS; format?: "text" | "json"; write?: (line: string) => void } = {},
): Logger {
  const min = LEVELS[options.level ?? "info"];
  const write = options.write ?? ((line: string) => console.log(line));
  const json = options.format === "json";
  const emit = (level: keyof typeof LEVELS) => (message: string, fields: Record<string, unknown> = {}) => {
    if (LEVELS[level] < min) return;
    const time = new Date().toISOString();
    if (json) write(JSON.stringify({ time, level, message, ...fields }));
    else {
      const kv = Object.entries(fields).map(([k, v]) =>
        `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`
      );
      write(`${time} ${level.toUpperCase().padEnd(5)} ${message}${kv.length ? " " + kv.join(" ") : ""}`);
    }
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}
