import assert from "node:assert/strict";

/** Runs `prepareParquet` for each codec in turn in a fresh Deno, and reports whether the wasm was loaded after each. */
async function wasmLoadedAfter(codecs: string[]): Promise<boolean[]> {
  const wasm = new URL("./wasm.ts", import.meta.url).href;
  const parquet = new URL("../core/parquet/parquet.ts", import.meta.url).href;
  const script = `
    const { prepareParquet } = await import(${JSON.stringify(wasm)});
    const { parquetReady } = await import(${JSON.stringify(parquet)});
    const seen = [];
    for (const codec of ${JSON.stringify(codecs)}) { await prepareParquet(codec); seen.push(parquetReady()); }
    console.log(JSON.stringify(seen));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("prepareParquet() loads the wasm only for codecs the TypeScript writer cannot write", async () => {
  // zstd, gzip and none come from node:zlib and the TypeScript writer: start-up skips the ~45 MB wasm.
  assert.deepEqual(await wasmLoadedAfter(["zstd", "gzip", "none", "snappy", "zstd"]), [
    false,
    false,
    false,
    true,
    true,
  ]);
  assert.deepEqual(await wasmLoadedAfter(["lz4_raw"]), [true]);
});
