/**
 * Test entry of the server: the real `main.ts`, plus a watchdog that exits when stdin closes, so a test
 * runner that dies (even by SIGKILL) leaves no server behind.
 *
 * @module
 */

(async () => {
  const buf = new Uint8Array(64);
  try {
    while ((await Deno.stdin.read(buf)) !== null) {
      // the test process never writes; EOF means it is gone
    }
  } catch {
    // closed
  }
  Deno.exit(70);
})();

await import("../../src/platforms/server/main.ts");
