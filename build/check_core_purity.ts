/**
 * The core purity gate (part of `deno task check`): `src/core` must not reach the outside world. It
 * type-checks the core against a lib without the Deno namespace, and scans its sources for imports
 * other than its own files, apache-arrow and parquet-wasm, and for clocks, randomness, I/O and globals
 * of a runtime.
 *
 * @module
 */

import { readdir, readFile } from "node:fs/promises";
import { posix } from "node:path";
import process from "node:process";

/** Imports a core file may have besides its own folder's and sibling folders' files (checked below). */
const ALLOWED_PACKAGES = [/^apache-arrow$/, /^parquet-wasm\/esm$/];
const FORBIDDEN: [RegExp, string][] = [
  [/\bDeno\./, "the Deno namespace"],
  [/\bprocess\./, "process"],
  [/\bBun\./, "Bun"],
  [/\bfetch\(/, "fetch"],
  [/Date\.now\(/, "the clock"],
  [/new Date\(\)/, "the clock"],
  [/performance\.now\(/, "the clock"],
  [/Math\.random\(/, "randomness"],
  [/\bcrypto\./, "crypto (randomness)"],
  [/\bset(Timeout|Interval)\(/, "timers"],
  [/\brequire\(/, "require"],
  [/\bimport\(/, "dynamic import"],
];

const problems: string[] = [];
const root = "src/core";
/** The core's sources, its folders included (tests and benchmarks aside). */
async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (
    const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name < b.name ? -1 : 1)
  ) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...await sources(path));
    else if (entry.name.endsWith(".ts") && !/_(test|bench)\.ts$/.test(entry.name)) out.push(path);
  }
  return out;
}
for (const path of await sources(root)) {
  const text = await readFile(path, "utf8");
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  for (const m of code.matchAll(/\bfrom\s+"([^"]+)"/g)) {
    const spec = m[1];
    // A relative import must stay inside src/core.
    const inside = spec.startsWith(".") && /\.ts$/.test(spec) &&
      posix.normalize(posix.join(posix.dirname(path), spec)).startsWith(`${root}/`);
    if (!inside && !ALLOWED_PACKAGES.some((re) => re.test(spec))) problems.push(`${path}: imports ${spec}`);
  }
  for (const [re, what] of FORBIDDEN) if (re.test(code)) problems.push(`${path}: uses ${what}`);
}

// Type-check with the ES and web libs only: any use of the Deno namespace fails to compile.
const check = new Deno.Command(Deno.execPath(), {
  args: ["check", "--config", "build/core_purity.json", "src/core/mod.ts"],
  stdout: "piped",
  stderr: "piped",
});
const out = await check.output();
if (out.code !== 0) {
  problems.push(`type-check without the Deno namespace failed:\n${new TextDecoder().decode(out.stderr)}`);
}

if (problems.length) {
  console.error(`src/core is not pure:\n- ${problems.join("\n- ")}`);
  process.exit(1);
}
console.log("src/core is pure: no I/O, clock, randomness or runtime globals; type-checks without Deno");
