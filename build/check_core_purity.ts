/**
 * The core purity gate (part of `deno task check`): `src/core` must not reach the outside world. It
 * type-checks the core against a lib without the Deno namespace, and scans its sources for imports
 * other than its own files, apache-arrow and parquet-wasm, and for clocks, randomness, I/O and globals
 * of a runtime.
 *
 * @module
 */

import { readdir, readFile } from "node:fs/promises";
import process from "node:process";

const ALLOWED_IMPORTS = [/^\.\/[a-z0-9_]+\.ts$/, /^apache-arrow$/, /^parquet-wasm\/esm$/];
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
const dir = "src/core";
for (const name of (await readdir(dir)).sort()) {
  if (!name.endsWith(".ts") || name.endsWith("_test.ts") || name.endsWith("_bench.ts")) continue;
  const text = await readFile(`${dir}/${name}`, "utf8");
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  for (const m of code.matchAll(/\bfrom\s+"([^"]+)"/g)) {
    if (!ALLOWED_IMPORTS.some((re) => re.test(m[1]))) problems.push(`${dir}/${name}: imports ${m[1]}`);
  }
  for (const [re, what] of FORBIDDEN) if (re.test(code)) problems.push(`${dir}/${name}: uses ${what}`);
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
