/**
 * Tests of the Prometheus text writer: the exact lines it renders (escaping, HELP/TYPE, cumulative
 * histogram buckets with `+Inf`, `_sum` and `_count`), the names and bounds it refuses, and, when
 * Debian's `promtool` is installed, that promtool parses and lints what it renders.
 */

import assert from "node:assert/strict";

const assertEquals = (actual: unknown, expected: unknown): void => assert.deepStrictEqual(actual, expected);
const assertThrows = (fn: () => unknown, type: new (...a: never[]) => Error, includes = "") =>
  assert.throws(fn, (e: unknown) => e instanceof type && (e as Error).message.includes(includes));
import { spawnSync } from "node:child_process";
import {
  Counter,
  escapeHelp,
  escapeLabelValue,
  formatValue,
  Gauge,
  Histogram,
  Registry,
} from "./prometheus.ts";

Deno.test("label values and help texts are escaped as the format says", () => {
  assertEquals(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assertEquals(escapeHelp('back\\slash "quoted"\nnext'), 'back\\\\slash "quoted"\\nnext');
  const registry = new Registry();
  registry.add(new Counter("x_total", "Help with \\ and\nnewline.", ["k"])).labels('v"1\\\n').inc(2);
  assertEquals(registry.render().split("\n"), [
    "# HELP x_total Help with \\\\ and\\nnewline.",
    "# TYPE x_total counter",
    'x_total{k="v\\"1\\\\\\n"} 2',
    "",
  ]);
});

Deno.test("special values are written as NaN, +Inf and -Inf", () => {
  assertEquals([NaN, Infinity, -Infinity, 0, 1.5, 1e21].map(formatValue), [
    "NaN",
    "+Inf",
    "-Inf",
    "0",
    "1.5",
    "1e+21",
  ]);
});

Deno.test("histogram buckets are cumulative, end with +Inf, and _sum/_count follow", () => {
  const registry = new Registry();
  const h = registry.add(new Histogram("d_seconds", "Durations.", ["signal"], [0.1, 1, 10]));
  const logs = h.labels("logs");
  for (const v of [0.05, 0.1, 0.5, 2, 2, 100, NaN]) logs.observe(v);
  h.labels("traces");
  assertEquals(registry.render().split("\n"), [
    "# HELP d_seconds Durations.",
    "# TYPE d_seconds histogram",
    'd_seconds_bucket{signal="logs",le="0.1"} 2',
    'd_seconds_bucket{signal="logs",le="1"} 3',
    'd_seconds_bucket{signal="logs",le="10"} 5',
    'd_seconds_bucket{signal="logs",le="+Inf"} 6',
    'd_seconds_sum{signal="logs"} 104.65',
    'd_seconds_count{signal="logs"} 6',
    'd_seconds_bucket{signal="traces",le="0.1"} 0',
    'd_seconds_bucket{signal="traces",le="1"} 0',
    'd_seconds_bucket{signal="traces",le="10"} 0',
    'd_seconds_bucket{signal="traces",le="+Inf"} 0',
    'd_seconds_sum{signal="traces"} 0',
    'd_seconds_count{signal="traces"} 0',
    "",
  ]);
});

Deno.test("a family without labels has its one series from the start; collectors run before rendering", () => {
  const registry = new Registry();
  const g = registry.add(new Gauge("queue_bytes", "Bytes queued."));
  const c = registry.add(new Counter("events_total", "Events."));
  let live = 7;
  registry.onCollect(() => g.labels().set(live));
  assertEquals(
    registry.render(),
    [
      "# HELP queue_bytes Bytes queued.",
      "# TYPE queue_bytes gauge",
      "queue_bytes 7",
      "# HELP events_total Events.",
      "# TYPE events_total counter",
      "events_total 0",
      "",
    ].join("\n"),
  );
  live = 9;
  c.labels().inc();
  const text = registry.render();
  assertEquals(text.includes("queue_bytes 9\n") && text.includes("events_total 1\n"), true);
});

Deno.test("a resolved child is the same object each time, and series are bounded", () => {
  const c = new Counter("r_total", "R.", ["a", "b"], 2);
  assertEquals(c.labels("x", "y") === c.labels("x", "y"), true);
  c.labels("x", "z");
  assertThrows(() => c.labels("y", "y"), RangeError, "more than 2 series");
  assertThrows(() => c.labels("x"), RangeError, "takes 2 label values");
  assertEquals(c.size, 2);
});

Deno.test("names, labels, buckets and increments the format forbids are refused", () => {
  assertThrows(() => new Counter("requests", "no _total"), RangeError, "_total");
  assertThrows(() => new Gauge("things_total", "a gauge"), RangeError, "only counters");
  assertThrows(() => new Counter("1bad_total", "x"), RangeError, "invalid metric name");
  assertThrows(() => new Counter("ok_total", "x", ["bad-label"]), RangeError, "invalid label name");
  assertThrows(() => new Counter("ok_total", "x", ["__reserved"]), RangeError, "invalid label name");
  assertThrows(() => new Counter("ok_total", "x", ["a", "a"]), RangeError, "repeated");
  assertThrows(() => new Histogram("h_seconds", "x", ["le"], [1]), RangeError, "le");
  assertThrows(() => new Histogram("h_seconds", "x", [], [1, 1]), RangeError, "ascending");
  assertThrows(() => new Histogram("h_seconds", "x", [], [1, Infinity]), RangeError, "finite");
  const registry = new Registry();
  registry.add(new Gauge("g", "x"));
  assertThrows(() => registry.add(new Gauge("g", "y")), RangeError, "twice");
  assertThrows(() => new Counter("c_total", "x").labels().inc(-1), RangeError);
});

function promtool(): string | undefined {
  const found = spawnSync("promtool", ["--version"], { encoding: "utf8" });
  return found.status === 0 ? "promtool" : undefined;
}

Deno.test({
  name: "promtool parses and lints the rendered text (Debian's prometheus package)",
  ignore: !promtool(),
  fn() {
    const registry = new Registry();
    registry.add(new Counter("demo_records_total", "Records, \\ and\nlines.", ["signal"]))
      .labels('we"ird\\\nvalue').inc(3);
    registry.add(new Gauge("demo_queue_bytes", "Bytes.")).labels().set(NaN);
    registry.add(new Histogram("demo_request_duration_seconds", "Time.", ["signal"], [0.01, 0.1, 1]))
      .labels("logs").observe(0.05);
    const run = spawnSync("promtool", ["check", "metrics"], { input: registry.render(), encoding: "utf8" });
    assertEquals({ status: run.status, out: (run.stdout + run.stderr).trim() }, { status: 0, out: "" });
  },
});
