/** The stop rule: repeats of the first signal within the window are one stop; later or other signals force. */
import assert from "node:assert/strict";
import { REPEAT_WINDOW_MS, StopSignals } from "./stop_signals.ts";

Deno.test("a signal delivered several times at once (process group + forwarding) is one graceful stop", () => {
  const s = new StopSignals();
  assert.equal(s.stopping, false);
  assert.deepEqual(s.receive("SIGINT", 1000), { kind: "stop" });
  assert.equal(s.stopping, true);
  assert.deepEqual(s.receive("SIGINT", 1001), { kind: "repeat", afterMs: 1 });
  assert.deepEqual(s.receive("SIGINT", 1000 + REPEAT_WINDOW_MS), {
    kind: "repeat",
    afterMs: REPEAT_WINDOW_MS,
  });
});

Deno.test("the same signal after the window forces the exit", () => {
  const s = new StopSignals(3000);
  s.receive("SIGTERM", 0);
  s.receive("SIGTERM", 10);
  const d = s.receive("SIGTERM", 3001);
  assert.equal(d.kind, "force");
  assert.match((d as { reason: string }).reason, /SIGTERM again 3\.0 s after the first/);
});

Deno.test("the other signal forces the exit at once, whichever came first", () => {
  for (const [first, second] of [["SIGINT", "SIGTERM"], ["SIGTERM", "SIGINT"]]) {
    const s = new StopSignals();
    s.receive(first, 0);
    assert.deepEqual(s.receive(second, 5), { kind: "force", reason: `${second} after ${first}` });
  }
});
