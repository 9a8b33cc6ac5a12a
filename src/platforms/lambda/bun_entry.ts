/**
 * Entry of the Lambda `bootstrap` built by `bun build --compile` (`deno task build --lambda`): embeds
 * the parquet-wasm module as a file and runs the custom runtime.
 *
 * @module
 */

// @ts-ignore: Bun's file import attribute; this entry is only ever bundled by Bun.
import wasmPath from "parquet-wasm/esm/parquet_wasm_bg.wasm" with { type: "file" };
import { useWasmPath } from "../wasm.ts";

useWasmPath(wasmPath as unknown as string);
await import("./main.ts");
