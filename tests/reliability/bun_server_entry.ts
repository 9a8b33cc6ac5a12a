/**
 * Test entry of the server under Bun (the runtime of the single executable, `Bun.serve`): the executable's
 * own entry, plus the watchdog of `server_entry.ts` (exit when stdin closes, so a test runner that dies
 * leaves no server behind).
 *
 * @module
 */

import process from "node:process";

process.stdin.on("data", () => {});
process.stdin.on("end", () => process.exit(70));
process.stdin.on("error", () => process.exit(70));
process.stdin.resume();

await import("../../src/platforms/server/bun_entry.ts");
