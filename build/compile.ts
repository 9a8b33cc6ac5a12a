/**
 * `deno task build`: the deployable artefacts, built with Bun (`node_modules/bun/bin/bun.exe`), which
 * works offline. Deno's own `deno compile` needs a runtime download that is not reachable here, and
 * Bun's executables need glibc 2.17 only, so they also run on Lambda's `provided.al2`.
 *
 * Usage:
 * - `deno task build [--target bun-linux-x64|bun-linux-arm64] [--outfile dist/otlp2parquet]`: one
 *   self-contained executable (embeds the wasm and OpenDAL's native addon, loaded only when the
 *   configuration uses them). With no arguments it serves HTTP; started by Lambda (`AWS_LAMBDA_RUNTIME_API`
 *   set) it runs the Runtime API loop, so it is also a Lambda `bootstrap`.
 * - `deno task build --lambda [--target bun-linux-arm64] [--outfile dist/lambda/bootstrap] [--with-opendal]`:
 *   the same program trimmed for Lambda (no OpenDAL: S3 over fetch), plus `function.zip` beside it when
 *   `zip` is installed. arm64 (Graviton) goes to `dist/lambda-arm64/` by default.
 * - `deno task build --workers [--outdir dist/workers]`: the Cloudflare Workers bundle: `worker.js` (ESM,
 *   browser target) and `parquet_wasm_bg.wasm` as a separate CompiledWasm module; prints raw and gzip
 *   sizes and fails above the 3 MiB gzip limit of Workers' free plan.
 *
 * @module
 */

import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";
import { gzipSync } from "node:zlib";

/** The Bun binary itself: Deno's child_process would run an npm `.bin` shim with Deno instead. */
const BUN = "node_modules/bun/bin/bun.exe";
const WASM = "node_modules/parquet-wasm/esm/parquet_wasm_bg.wasm";
const WASM_SPECIFIER = "parquet-wasm/esm/parquet_wasm_bg.wasm";
/** Workers' compressed size limit on the free plan (the paid plans allow 10 MiB). */
export const WORKERS_GZIP_LIMIT = 3 * 1024 * 1024;

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};

async function run(command: string, commandArgs: string[]): Promise<void> {
  const { code } = await new Deno.Command(command, {
    args: commandArgs,
    stdout: "inherit",
    stderr: "inherit",
  })
    .output();
  if (code !== 0) {
    console.error(`${command} ${commandArgs.join(" ")} failed with exit code ${code}`);
    process.exit(code);
  }
}

function size(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}

/** The single executable's entry: the command line, or the Lambda runtime when Lambda starts it. */
const ENTRY = "src/platforms/server/bun_entry.ts";
/**
 * The server's CPU worker thread, an entry of its own: Bun embeds a worker's module only when it is named
 * on the command line, and `new Worker(new URL("./cpu_worker.ts", import.meta.url))` (`cpu_pool.ts`) then
 * finds it inside the executable. It sits beside ENTRY, so the relative URL resolves the same bundled.
 */
const WORKER_ENTRY = "src/platforms/server/cpu_worker.ts";

/**
 * Bun's flags for the single executable. `--bytecode` ships JavaScriptCore bytecode instead of source,
 * which measured about a third less time before the first line runs (BENCHMARKS.md, "Start-up and cold
 * start"); ESM keeps the entry's top-level `await`. The executable embeds the source too, which Bun runs
 * should the bytecode not fit (the arm64 cross-build could not be run on this x86_64 machine).
 */
function compileArgs(target: string, outfile: string, defines: string[] = []): string[] {
  return [
    "build",
    "--compile",
    "--minify",
    "--bytecode",
    "--format=esm",
    ...(target ? [`--target=${target}`] : []),
    ...defines.flatMap((d) => ["--define", d]),
    ENTRY,
    WORKER_ENTRY,
    "--outfile",
    outfile,
  ];
}

async function warnWithoutOpendalAddon(target: string): Promise<void> {
  if (!target.startsWith("bun-linux-arm64")) return;
  try {
    await readFile("node_modules/@opendal/lib-linux-arm64-gnu/package.json");
  } catch {
    console.warn(
      "warning: @opendal/lib-linux-arm64-gnu is not installed: this executable writes to fs, and to S3 over " +
        "fetch with credentials in the environment (OpenDAL's gcs and azblob backends are unavailable in it)",
    );
  }
}

async function buildServer(): Promise<void> {
  const target = flag("--target", "");
  const outfile = flag(
    "--outfile",
    target ? `dist/otlp2parquet-${target.replace(/^bun-/, "")}` : "dist/otlp2parquet",
  );
  await warnWithoutOpendalAddon(target);
  await run(BUN, compileArgs(target, outfile));
  const { size: bytes } = await Deno.stat(outfile);
  console.log(
    `built ${outfile} (${size(bytes)}): run it with no arguments to serve on 0.0.0.0:4318, writing to ` +
      `./data; with AWS_LAMBDA_RUNTIME_API set it is a Lambda bootstrap`,
  );
}

/**
 * The Lambda `bootstrap`: the same entry as the server (it runs the Runtime API loop because Lambda sets
 * `AWS_LAMBDA_RUNTIME_API`), built without OpenDAL, which Lambda never loads: S3 goes over fetch with the
 * role's credentials. `--with-opendal` keeps it (for the gcs or azblob backends from Lambda).
 */
async function buildLambda(): Promise<void> {
  const target = flag("--target", "bun-linux-x64");
  if (!/^bun-linux-(x64|arm64)/.test(target)) {
    console.error(`--target ${target}: Lambda runs bun-linux-x64 or bun-linux-arm64`);
    process.exit(2);
  }
  const arm = target.startsWith("bun-linux-arm64");
  const outfile = flag("--outfile", arm ? "dist/lambda-arm64/bootstrap" : "dist/lambda/bootstrap");
  await mkdir(dirname(outfile), { recursive: true });
  const withOpendal = args.includes("--with-opendal");
  if (withOpendal) await warnWithoutOpendalAddon(target);
  await run(BUN, compileArgs(target, outfile, withOpendal ? [] : ["OTLP2PARQUET_WITHOUT_OPENDAL=true"]));
  const { size: bytes } = await Deno.stat(outfile);
  console.log(
    `built ${outfile} (${size(bytes)}): the Lambda custom runtime for provided.al2 / provided.al2023` +
      (withOpendal ? "" : " (S3 over fetch; no OpenDAL)"),
  );
  if (args.includes("--no-zip")) return;
  const zipFile = join(dirname(outfile), "function.zip");
  const hasZip = await new Deno.Command("zip", { args: ["-v"], stdout: "null", stderr: "null" }).output()
    .then((o) => o.success, () => false);
  if (!hasZip) {
    console.log(`zip not installed: package it yourself (the archive must hold "bootstrap" at its root)`);
    return;
  }
  await rm(zipFile, { force: true });
  // -j: bootstrap at the archive's root; -X: no extra attributes, so the zip depends on the bytes only.
  await run("zip", ["-q", "-j", "-X", zipFile, outfile]);
  const { size: zipped } = await Deno.stat(zipFile);
  console.log(
    `packed ${zipFile} (${size(zipped)}): above 50 MB, upload it through S3 ` +
      `(aws lambda update-function-code --s3-bucket … --s3-key …)`,
  );
}

async function buildWorkers(): Promise<void> {
  const outdir = flag("--outdir", "dist/workers");
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  await run(BUN, [
    "build",
    "src/platforms/workers/worker.ts",
    "--target=browser",
    "--format=esm",
    "--minify",
    // The wasm stays a module of its own, which wrangler uploads as CompiledWasm: workerd compiles it
    // once per isolate, and code may not compile wasm from bytes at run time on Workers.
    `--external=${WASM_SPECIFIER}`,
    "--outdir",
    outdir,
  ]);
  const jsFile = join(outdir, "worker.js");
  const js = (await readFile(jsFile, "utf8")).replaceAll(`"${WASM_SPECIFIER}"`, '"./parquet_wasm_bg.wasm"');
  if (!js.includes('"./parquet_wasm_bg.wasm"')) {
    console.error(`${jsFile} does not import the wasm module: the bundler changed its output`);
    process.exit(1);
  }
  await writeFile(jsFile, js);
  await copyFile(WASM, join(outdir, "parquet_wasm_bg.wasm"));
  const wasm = await readFile(WASM);
  const jsBytes = new TextEncoder().encode(js);
  const raw = jsBytes.length + wasm.length;
  const gzip = gzipSync(jsBytes, { level: 9 }).length + gzipSync(wasm, { level: 9 }).length;
  console.log(
    `built ${outdir}/: worker.js ${size(jsBytes.length)} + parquet_wasm_bg.wasm ${size(wasm.length)} = ` +
      `${size(raw)} raw, ${size(gzip)} gzip (limit ${size(WORKERS_GZIP_LIMIT)})`,
  );
  await writeFile(join(outdir, "size.json"), JSON.stringify({ rawBytes: raw, gzipBytes: gzip }) + "\n");
  if (gzip > WORKERS_GZIP_LIMIT) {
    console.error(`the worker is ${size(gzip)} gzip: above the ${size(WORKERS_GZIP_LIMIT)} limit`);
    process.exit(1);
  }
}

if (args.includes("--lambda")) await buildLambda();
else if (args.includes("--workers")) await buildWorkers();
else await buildServer();
