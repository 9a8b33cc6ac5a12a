// PLACEHOLDER: being written (decodeMetricsJson). Replace entirely.
import type { MetricsDecoded } from "./convert.ts";
export function decodeMetricsJson(_requests: readonly unknown[]): MetricsDecoded {
  throw new Error("not implemented");
}
