/**
 * CPU profile of the hot path: 100k log records decoded from protobuf and converted to Parquet files.
 *
 * ```sh
 * deno run -A bench/profile.ts [--records 100000] [--rounds 3] [--top 25]
 * ```
 *
 * Writes the request to `.bench/profile/`, runs this file again with `--work` under `deno run
 * --cpu-prof` (so generating the data is not in the profile), and prints the functions with the most
 * self time as a markdown table (also saved as `.bench/profile/summary.md`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { decodeRequest, toParquetFiles } from "../src/core/convert.ts";
import { initParquet } from "../src/core/parquet/parquet.ts";
import { registerNodeCompressors } from "../src/platforms/node_codecs.ts";
import { encodeProtobuf, generateLogs } from "./data.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DIR = `${ROOT}/.bench/profile`;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One function's share of a profile. */
export interface HotFunction {
  name: string;
  where: string;
  selfMs: number;
  selfPct: number;
}

/** Self time per function (name + location), most first. */
export function hotFunctions(profile: CpuProfile): HotFunction[] {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, { name: string; where: string; us: number }>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byNode.get(profile.samples[i]);
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (!node) continue;
    total += dt;
    const cf = node.callFrame;
    const file = cf.url.replace(`file://${ROOT}/`, "").replace(/^.*\/node_modules\//, "node_modules/");
    const where = file ? `${file}:${cf.lineNumber + 1}` : "";
    const name = cf.functionName || "(anonymous)";
    const key = `${name}@${where}`;
    const entry = selfUs.get(key) ?? { name, where, us: 0 };
    entry.us += dt;
    selfUs.set(key, entry);
  }
  return [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .map((e) => ({
      name: e.name,
      where: e.where,
      selfMs: Math.round(e.us / 100) / 10,
      selfPct: Math.round((e.us / (total || 1)) * 1000) / 10,
    }));
}

/** Self time per source file (wasm, GC and the like count as their own "files"), most first. */
export function hotFiles(
  functions: readonly HotFunction[],
): { file: string; selfMs: number; selfPct: number }[] {
  const by = new Map<string, { file: string; selfMs: number; selfPct: number }>();
  for (const f of functions) {
    const file = f.where.startsWith("wasm://")
      ? "parquet-wasm (wasm code)"
      : f.where.replace(/:\d+$/, "") || f.name;
    const e = by.get(file) ?? { file, selfMs: 0, selfPct: 0 };
    e.selfMs += f.selfMs, e.selfPct += f.selfPct;
    by.set(file, e);
  }
  return [...by.values()].sort((a, b) => b.selfMs - a.selfMs).map((e) => ({
    file: e.file,
    selfMs: Math.round(e.selfMs),
    selfPct: Math.round(e.selfPct * 10) / 10,
  }));
}

async function work(path: string, rounds: number): Promise<void> {
  const bytes = Deno.readFileSync(path);
  initParquet(Deno.readFileSync(`${ROOT}/node_modules/parquet-wasm/esm/parquet_wasm_bg.wasm`));
  registerNodeCompressors();
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    const decoded = decodeRequest("logs", bytes, { format: "protobuf" });
    const t1 = performance.now();
    const files = toParquetFiles(decoded);
    const t2 = performance.now();
    console.error(
      `round ${i + 1}: decode ${(t1 - t).toFixed(0)} ms, Parquet files ${
        (t2 - t1).toFixed(0)
      } ms (${files.length} files, ${files.reduce((n, f) => n + f.bytes.length, 0)} bytes)`,
    );
  }
  await Promise.resolve();
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      work: { type: "string" },
      records: { type: "string", default: "100000" },
      rounds: { type: "string", default: "3" },
      top: { type: "string", default: "25" },
    },
  });
  if (values.work) {
    await work(values.work, Number(values.rounds));
  } else {
    const records = Number(values.records);
    Deno.mkdirSync(DIR, { recursive: true });
    for (const e of Deno.readDirSync(DIR)) {
      if (e.name.endsWith(".cpuprofile")) Deno.removeSync(`${DIR}/${e.name}`);
    }
    const input = `${DIR}/logs_${records}.pb`;
    const pb = encodeProtobuf("logs", generateLogs(records, { seed: 42 }));
    Deno.writeFileSync(input, pb);
    const out = await new Deno.Command(`${ROOT}/node_modules/.bin/deno`, {
      args: [
        "run",
        "-A",
        "--cpu-prof",
        `--cpu-prof-dir=${DIR}`,
        "--cpu-prof-interval=200",
        import.meta.filename!,
        `--work=${input}`,
        `--rounds=${values.rounds}`,
      ],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!out.success) Deno.exit(out.code);
    const file = [...Deno.readDirSync(DIR)].find((e) => e.name.endsWith(".cpuprofile"));
    if (!file) throw new Error("no .cpuprofile written");
    const profile = JSON.parse(Deno.readTextFileSync(`${DIR}/${file.name}`)) as CpuProfile;
    const all = hotFunctions(profile);
    const hot = all.slice(0, Number(values.top));
    const md = [
      `Profile: ${records.toLocaleString("en-US")} log records (${
        (pb.length / 1e6).toFixed(1)
      } MB protobuf), decode + Parquet files, ${values.rounds} rounds; wall ${
        ((profile.endTime - profile.startTime) / 1000).toFixed(0)
      } ms incl. start-up.`,
      "",
      "| # | function | where | self ms | self % |",
      "| ---: | --- | --- | ---: | ---: |",
      ...hot.map((h, i) => `| ${i + 1} | \`${h.name}\` | ${h.where} | ${h.selfMs} | ${h.selfPct} |`),
      "",
      "| file | self ms | self % |",
      "| --- | ---: | ---: |",
      ...hotFiles(all).slice(0, 15).map((f) => `| ${f.file} | ${f.selfMs} | ${f.selfPct} |`),
    ].join("\n");
    Deno.writeTextFileSync(`${DIR}/summary.md`, md + "\n");
    console.log(md);
  }
}
