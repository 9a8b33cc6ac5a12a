/**
 * `deno task build`: the single self-contained executable, compiled by Bun (`bun build --compile`,
 * which works offline and embeds the wasm and OpenDAL's native addon). Deno's own `deno compile`
 * needs a runtime download that is not reachable here.
 *
 * Usage: `deno task build [--target bun-linux-x64|bun-linux-arm64] [--outfile dist/otlp2parquet]`
 *
 * @module
 */

import process from "node:process";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const target = flag("--target", "");
const outfile = flag("--outfile", target ? `dist/otlp2parquet-${target.replace(/^bun-/, "")}` : "dist/otlp2parquet");
const cmd = [
  "build",
  "--compile",
  "--minify",
  ...(target ? [`--target=${target}`] : []),
  "src/platforms/server/bun_entry.ts",
  "--outfile",
  outfile,
];
// The Bun binary itself: Deno's child_process would run an npm `.bin` shim with Deno instead.
const { code } = await new Deno.Command("node_modules/bun/bin/bun.exe", { args: cmd, stdout: "inherit", stderr: "inherit" })
  .output();
if (code !== 0) process.exit(code);
console.log(`built ${outfile}: run it with no arguments to serve on 0.0.0.0:4318, writing to ./data`);
