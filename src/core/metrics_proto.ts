// PLACEHOLDER: being written (decodeMetricsProto). Replace entirely.
import type { MetricsDecoded } from "./convert.ts";
export function decodeMetricsProto(_buf: Uint8Array): MetricsDecoded {
  throw new Error("not implemented");
}
