/**
 * Entry of the single executable built by `bun build --compile` (`deno task build`, and the trimmed Lambda
 * `bootstrap` of `deno task build --lambda`): embeds the parquet-wasm module as a file, which is read only
 * when the configured codec needs it, and runs `cli/main.ts`: the command line (default command `serve`),
 * or the Lambda Runtime API loop when Lambda started it.
 *
 * @module
 */

// @ts-ignore: Bun's file import attribute; this entry is only ever bundled by Bun.
import wasmPath from "parquet-wasm/esm/parquet_wasm_bg.wasm" with { type: "file" };
import { useWasmPath } from "../wasm.ts";

useWasmPath(wasmPath as unknown as string);
await import("../../cli/main.ts");
