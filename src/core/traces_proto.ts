// PLACEHOLDER: being written (decodeTracesProto). Replace entirely.
import type { Rows } from "./rows.ts";
export function decodeTracesProto(_buf: Uint8Array): Rows {
  throw new Error("not implemented");
}
