/**
 * `deno task bench`: the stage benches (`deno bench`), then the end-to-end load runs (ours, and the Rust
 * otlp2parquet when it is installed or `--compare-rust` is given), as one markdown report printed and
 * written to `.bench/results.md`.
 *
 * ```sh
 * deno task bench                      # everything
 * deno task bench --quick              # 1k/10k stages, 5 s e2e runs
 * deno task bench --stages-only        # or --e2e-only
 * deno task bench --startup            # start-up, idle memory, Lambda cold start (bench/startup.ts) only
 * deno task bench --scaling            # 1 vs 2 workers vs Rust, pinned and not, ceilings (bench/scaling.ts)
 * deno task bench --compare-rust --variants protobuf --duration 30
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type E2eResult, e2eTable, RUST_BIN } from "./e2e.ts";
import { machineMarkdown } from "./machine.ts";
import type { StageMeta } from "./stages_bench.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DENO = `${ROOT}/node_modules/.bin/deno`;
const OUT = `${ROOT}/.bench`;

interface BenchJson {
  benches: { name: string; group: string | null; results: { ok?: { avg: number; n: number } }[] }[];
}

/** Stage timings joined with their input sizes. */
export interface StageRow {
  group: string;
  stage: string;
  records: number;
  bytes: number;
  /** Mean time per iteration, ms. */
  ms: number;
}

/** Joins `deno bench --json` output with the meta file of `stages_bench.ts`. */
export function stageRows(bench: BenchJson, meta: StageMeta): StageRow[] {
  const rows: StageRow[] = [];
  for (const b of bench.benches) {
    const m = meta.benches[b.name];
    const ok = b.results[0]?.ok;
    if (!m || !ok) continue;
    rows.push({ group: b.group ?? "", stage: m.stage, records: m.records, bytes: m.bytes, ms: ok.avg / 1e6 });
  }
  return rows;
}

const num = (x: number, digits = 0): string =>
  x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/**
 * One table per signal: a row per stage, a column per size; each cell "ms · MB/s · records/s". MB/s is
 * the stage's input (the protobuf request; the JSON body for JSON decode) per second, 10^6 bytes.
 */
export function stageTables(rows: readonly StageRow[]): string {
  const out: string[] = [];
  for (const signal of ["logs", "traces", "metrics"]) {
    const mine = rows.filter((r) => r.group.startsWith(`${signal} `));
    if (!mine.length) continue;
    const groups = [...new Set(mine.map((r) => r.group))];
    const stages = [...new Set(mine.map((r) => r.stage))];
    out.push(
      `#### ${signal}`,
      "",
      `| stage | ${groups.map((g) => g.slice(signal.length + 1)).join(" | ")} |`,
      `| --- | ${groups.map(() => "---:").join(" | ")} |`,
    );
    for (const stage of stages) {
      const cells = groups.map((g) => {
        const r = mine.find((x) => x.group === g && x.stage === stage);
        if (!r) return "";
        const s = r.ms / 1000;
        return `${num(r.ms, r.ms < 10 ? 2 : 0)} ms · ${num(r.bytes / 1e6 / s)} MB/s · ${
          num(r.records / s / 1e6, 2)
        } M/s`;
      });
      out.push(`| ${stage} | ${cells.join(" | ")} |`);
    }
    out.push("");
  }
  return out.join("\n");
}

/** Input and Parquet sizes with the protobuf/Parquet ratio. */
export function sizeTable(meta: StageMeta): string {
  const lines = [
    "| request | protobuf bytes | bytes/record | JSON bytes | Parquet (zstd) bytes | protobuf ÷ Parquet |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const [group, s] of Object.entries(meta.sizes)) {
    lines.push(
      `| ${group} | ${num(s.protobuf)} | ${num(s.protobuf / s.records)} | ${num(s.json)} | ${
        num(s.parquet)
      } | ${num(s.protobuf / s.parquet, 1)}x |`,
    );
  }
  return lines.join("\n");
}

/** `taskset -c CORE` when taskset works and there is more than one core, else nothing. */
async function pinTo(core: number): Promise<string[]> {
  if (navigator.hardwareConcurrency < 2) return [];
  try {
    const ok = (await new Deno.Command("taskset", { args: ["-c", String(core), "true"] }).output()).success;
    return ok ? ["taskset", "-c", String(core)] : [];
  } catch {
    return [];
  }
}

async function runStages(quick: boolean): Promise<string> {
  const metaPath = `${OUT}/stages_meta.json`;
  const env: Record<string, string> = { BENCH_META: metaPath };
  if (quick) env.BENCH_SIZES = "1000,10000";
  console.error("bench: stage benches (deno bench) …");
  // Pinned like the server in the e2e runs: the numbers are for one core (GC threads included).
  const argv = [...await pinTo(0), DENO, "bench", "-A", "--json", `${ROOT}/bench/stages_bench.ts`];
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) return `Stage benches failed (exit ${out.code}).\n`;
  const bench = JSON.parse(text.slice(text.indexOf("{"))) as BenchJson;
  Deno.writeTextFileSync(`${OUT}/stages.json`, text);
  const meta = JSON.parse(Deno.readTextFileSync(metaPath)) as StageMeta;
  return [
    "### Stages (in-process, pinned to one core)",
    "",
    "Cells: mean time per request · MB/s of the request's protobuf bytes (JSON decode: of its JSON bytes) · million records/s.",
    "",
    stageTables(stageRows(bench, meta)),
    "### Sizes",
    "",
    sizeTable(meta),
    ...(meta.skipped.length ? ["", "Skipped:", ...meta.skipped.map((s) => `- ${s}`)] : []),
    "",
  ].join("\n");
}

async function runE2e(args: string[]): Promise<string> {
  const jsonOut = `${OUT}/e2e.json`;
  console.error("bench: end-to-end runs …");
  const out = await new Deno.Command(DENO, {
    args: ["run", "-A", `${ROOT}/bench/e2e.ts`, `--json-out=${jsonOut}`, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) return `End-to-end runs failed (exit ${out.code}).\n`;
  const results = JSON.parse(Deno.readTextFileSync(jsonOut)) as E2eResult[];
  return [
    "### End to end (server on core 0, load generator on core 1, 5,000-record requests (JSON: 3,000), 4 in flight)",
    "",
    e2eTable(results),
    "",
  ].join("\n");
}

if (import.meta.main && Deno.args.includes("--scaling")) {
  // Its own report (bench/scaling.ts: issue #12's side-by-side matrix, ceilings and Amdahl estimate).
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/bench/scaling.ts`, ...Deno.args],
  }).spawn().status;
  Deno.exit(code);
}

if (import.meta.main && Deno.args.includes("--startup")) {
  // Its own report (bench/startup.ts takes --runs, --warm, --exe, --bootstrap, --modes).
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/bench/startup.ts`, ...Deno.args.filter((a) => a !== "--startup")],
  }).spawn().status;
  Deno.exit(code);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      "stages-only": { type: "boolean", default: false },
      "e2e-only": { type: "boolean", default: false },
      "compare-rust": { type: "boolean", default: false },
      "no-rust": { type: "boolean", default: false },
      variants: { type: "string" },
      duration: { type: "string" },
    },
  });
  Deno.mkdirSync(OUT, { recursive: true });
  const parts = [
    `## Benchmark results (${new Date().toISOString().slice(0, 16)}Z)`,
    "",
    machineMarkdown(),
    "",
  ];
  if (!values["e2e-only"]) parts.push(await runStages(values.quick));
  if (!values["stages-only"]) {
    const args: string[] = [];
    if (values["compare-rust"]) args.push("--compare-rust");
    if (values["no-rust"]) args.push("--no-rust");
    if (values.variants) args.push(`--variants=${values.variants}`);
    const duration = values.duration ?? (values.quick ? "5" : undefined);
    if (duration) args.push(`--duration=${duration}`);
    parts.push(await runE2e(args));
    if (values["compare-rust"]) {
      try {
        Deno.statSync(RUST_BIN);
      } catch {
        parts.push(
          `Rust reference not installed at ${RUST_BIN}: run \`bash bench/install_rust_reference.sh\`.\n`,
        );
      }
    }
  }
  const md = parts.join("\n");
  Deno.writeTextFileSync(`${OUT}/results.md`, md);
  console.log(md);
  console.error(`bench: written to ${OUT}/results.md`);
}
