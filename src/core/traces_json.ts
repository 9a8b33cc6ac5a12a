// PLACEHOLDER: being written (decodeTracesJson). Replace entirely.
import type { Rows } from "./rows.ts";
export function decodeTracesJson(_requests: readonly unknown[]): Rows {
  throw new Error("not implemented");
}
