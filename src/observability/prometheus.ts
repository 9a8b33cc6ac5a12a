/**
 * A small writer of the Prometheus text exposition format (version 0.0.4): counters, gauges and
 * histograms with labels, rendered with `# HELP` / `# TYPE` lines and escaped label values.
 *
 * Made for a hot path: a series ("child") is resolved once from its label values and kept by the caller,
 * and recording is a number update on it (no string is built or hashed per observation). The label text
 * of a child is rendered once, when it is created. Label values must come from fixed sets the caller
 * controls, never from client input, so the number of series stays bounded; {@linkcode Family.labels}
 * therefore refuses to create more than `maxSeries` children of one family.
 *
 * Why our own and not `prom-client`: see docs/metrics.md ("Why a small writer").
 *
 * @example
 * ```ts
 * import { Counter, Histogram, Registry } from "./prometheus.ts";
 *
 * const registry = new Registry();
 * const requests = registry.add(new Counter("app_requests_total", "Requests answered.", ["status"]));
 * const ok = requests.labels("200"); // resolved once, kept
 * ok.inc();
 * const latency = registry.add(new Histogram("app_request_duration_seconds", "Time to answer.", [], [0.1, 1]));
 * latency.labels().observe(0.25);
 * registry.render(); // "# HELP app_requests_total Requests answered.\n# TYPE app_requests_total counter\n…"
 * ```
 *
 * @module
 */

/** The `Content-Type` of a rendered exposition. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Escapes a `# HELP` text: backslash and line feed. */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}

/** Escapes a label value: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : c === '"' ? '\\"' : "\\\\");
}

/** A sample value as the format writes it: `NaN`, `+Inf`, `-Inf` or a decimal/exponent number. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** `a="x",b="y"` for the names and values, escaped; "" without labels. */
function labelPairs(names: readonly string[], values: readonly string[]): string {
  let out = "";
  for (let i = 0; i < names.length; i++) {
    out += `${i ? "," : ""}${names[i]}="${escapeLabelValue(values[i])}"`;
  }
  return out;
}

/** One metric family: a name, its help text, its label names and the series created so far. */
export abstract class Family<C> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** Children refused past this many (label values must come from bounded sets). */
  readonly maxSeries: number;
  readonly #children = new Map<string, { pairs: string; child: C }>();
  abstract readonly type: "counter" | "gauge" | "histogram";

  constructor(name: string, help: string, labelNames: readonly string[] = [], maxSeries = 1000) {
    if (!METRIC_NAME.test(name)) throw new RangeError(`invalid metric name ${JSON.stringify(name)}`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith("__")) {
        throw new RangeError(`invalid label name ${JSON.stringify(label)} of ${name}`);
      }
    }
    if (new Set(labelNames).size !== labelNames.length) {
      throw new RangeError(`repeated label name in ${name}`);
    }
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.maxSeries = maxSeries;
  }

  /**
   * The series of these label values (one per label name, in order), created on first use. Resolve it
   * once and keep it: this call joins the values into a key.
   */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) {
      throw new RangeError(`${this.name} takes ${this.labelNames.length} label values, got ${values.length}`);
    }
    const key = values.join("\u0000");
    let entry = this.#children.get(key);
    if (!entry) {
      if (this.#children.size >= this.maxSeries) {
        throw new RangeError(
          `${this.name}: more than ${this.maxSeries} series (label values must be bounded)`,
        );
      }
      entry = { pairs: labelPairs(this.labelNames, values), child: this.create() };
      this.#children.set(key, entry);
    }
    return entry.child;
  }

  /** Number of series created. */
  get size(): number {
    return this.#children.size;
  }

  protected abstract create(): C;

  /** Appends the sample lines of one child. `pairs` is its `a="x",b="y"` text ("" without labels). */
  protected abstract samples(out: string[], pairs: string, child: C): void;

  /** Appends the family's lines (HELP, TYPE, samples in creation order) to `out`. */
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    for (const { pairs, child } of this.#children.values()) this.samples(out, pairs, child);
  }
}

/** A counter series: only goes up (from 0, when the process starts). */
export class CounterChild {
  value = 0;

  /** Adds `n` (default 1); a negative or non-finite `n` is a bug and throws. */
  inc(n = 1): void {
    if (!(n >= 0) || n === Infinity) throw new RangeError(`a counter increases by a finite n >= 0, got ${n}`);
    this.value += n;
  }
}

/** A family whose series are one number each (counters, gauges): one sample line per series. */
abstract class ScalarFamily<C extends { value: number }> extends Family<C> {
  protected samples(out: string[], pairs: string, child: C): void {
    out.push(`${this.name}${pairs ? `{${pairs}}` : ""} ${formatValue(child.value)}`);
  }
}

/** A counter family. Its name must end in `_total`, as Prometheus names counters. */
export class Counter extends ScalarFamily<CounterChild> {
  readonly type = "counter";

  constructor(name: string, help: string, labelNames: readonly string[] = [], maxSeries?: number) {
    super(name, help, labelNames, maxSeries);
    if (!name.endsWith("_total")) throw new RangeError(`a counter's name ends in _total: ${name}`);
    if (!labelNames.length) this.labels();
  }

  protected create(): CounterChild {
    return new CounterChild();
  }
}

/** A gauge series: any value, set directly or computed when scraped (see {@linkcode Registry.onCollect}). */
export class GaugeChild {
  value = 0;

  set(value: number): void {
    this.value = value;
  }

  inc(n = 1): void {
    this.value += n;
  }
}

/** A gauge family. */
export class Gauge extends ScalarFamily<GaugeChild> {
  readonly type = "gauge";

  constructor(name: string, help: string, labelNames: readonly string[] = [], maxSeries?: number) {
    super(name, help, labelNames, maxSeries);
    if (name.endsWith("_total")) throw new RangeError(`only counters end in _total: ${name}`);
    if (!labelNames.length) this.labels();
  }

  protected create(): GaugeChild {
    return new GaugeChild();
  }
}

/** A histogram series: a count per bucket (not cumulative here; cumulated when rendered), a sum, a count. */
export class HistogramChild {
  /** One count per upper bound, then one for values above the last (the `+Inf` bucket). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one value (NaN is ignored). */
  observe(value: number): void {
    if (Number.isNaN(value)) return;
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/** A histogram family with fixed bucket upper bounds (ascending, finite; `+Inf` is added). */
export class Histogram extends Family<HistogramChild> {
  readonly type = "histogram";
  readonly buckets: readonly number[];
  readonly #le: readonly string[];

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
    maxSeries?: number,
  ) {
    super(name, help, labelNames, maxSeries);
    if (labelNames.includes("le")) throw new RangeError(`a histogram cannot have a label named le: ${name}`);
    if (!buckets.length) throw new RangeError(`${name}: at least one bucket`);
    for (let i = 0; i < buckets.length; i++) {
      if (!Number.isFinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1]))) {
        throw new RangeError(
          `${name}: bucket bounds must be finite and ascending, got ${buckets.join(", ")}`,
        );
      }
    }
    this.buckets = [...buckets];
    this.#le = [...buckets.map(formatValue), "+Inf"];
    if (!labelNames.length) this.labels();
  }

  protected create(): HistogramChild {
    return new HistogramChild(this.buckets);
  }

  protected samples(out: string[], pairs: string, child: HistogramChild): void {
    const sep = pairs ? "," : "";
    let cumulative = 0;
    for (let i = 0; i < this.#le.length; i++) {
      cumulative += child.counts[i];
      out.push(`${this.name}_bucket{${pairs}${sep}le="${this.#le[i]}"} ${formatValue(cumulative)}`);
    }
    const braces = pairs ? `{${pairs}}` : "";
    out.push(`${this.name}_sum${braces} ${formatValue(child.sum)}`);
    out.push(`${this.name}_count${braces} ${formatValue(child.count)}`);
  }
}

/** Metric families rendered together, in the order they were added. */
export class Registry {
  readonly #families = new Map<string, Family<unknown>>();
  readonly #collectors: (() => void)[] = [];

  /** Adds a family (names are unique) and returns it. */
  add<F extends Family<unknown>>(family: F): F {
    if (this.#families.has(family.name)) throw new RangeError(`metric ${family.name} added twice`);
    this.#families.set(family.name, family);
    return family;
  }

  /**
   * Runs `collect` before every render: the place to set gauges from live objects, so that nothing has
   * to be tracked on every change.
   */
  onCollect(collect: () => void): void {
    this.#collectors.push(collect);
  }

  /** The exposition text: every family, its HELP and TYPE, and its samples; ends with a line feed. */
  render(): string {
    for (const collect of this.#collectors) collect();
    const out: string[] = [];
    for (const family of this.#families.values()) family.render(out);
    return out.join("\n") + "\n";
  }
}
