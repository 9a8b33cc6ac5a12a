/**
 * How many CPUs this process may really use: the CPUs of its affinity mask (`taskset -c 0` means one), capped
 * by a cgroup CPU quota (a container's `--cpus 1.5` counts as two: work spread over two threads still gets
 * 1.5 CPUs of time), never below one. `navigator.hardwareConcurrency` counts the machine's CPUs and ignores
 * both. Linux only; elsewhere the runtime's count is all there is.
 *
 * The default of the server's worker count (issue #12) is built on this.
 *
 * @module
 */

import { readFileSync } from "node:fs";

/** What the count is and which limit set it, for the start-up banner. */
export interface CpuCount {
  count: number;
  /** "affinity", "cgroup quota" or "hardware". */
  limitedBy: "affinity" | "cgroup quota" | "hardware";
}

/** Reads a file as text, or undefined when it cannot be read. */
export type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
};

/** The CPUs this process may use (see the module doc). */
export function availableCpus(
  read: ReadText = readText,
  hardware = navigator.hardwareConcurrency || 1,
): CpuCount {
  let best: CpuCount = { count: Math.max(1, hardware), limitedBy: "hardware" };
  const allowed = /^Cpus_allowed_list:\s*(\S+)\s*$/m.exec(read("/proc/self/status") ?? "")?.[1];
  const affinity = allowed === undefined ? undefined : countCpuList(allowed);
  if (affinity !== undefined && affinity >= 1 && affinity < best.count) {
    best = { count: affinity, limitedBy: "affinity" };
  }
  const quota = cgroupQuota(read);
  if (quota !== undefined && Math.ceil(quota) < best.count) {
    best = { count: Math.max(1, Math.ceil(quota)), limitedBy: "cgroup quota" };
  }
  return best;
}

/** CPUs in a kernel CPU list such as "0-3,8,10-11"; undefined when it is not one. */
export function countCpuList(list: string): number | undefined {
  let count = 0;
  for (const part of list.trim().split(",")) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (range === null) return undefined;
    const from = Number(range[1]), to = range[2] === undefined ? from : Number(range[2]);
    if (to < from) return undefined;
    count += to - from + 1;
  }
  return count;
}

/**
 * The CPU quota of this process's cgroup in CPUs (quota ÷ period), or undefined without one: cgroup v2's
 * `cpu.max`, or v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us`. Looked up at the process's own cgroup path
 * and at the mount root (inside a container the root is the container's own cgroup).
 */
export function cgroupQuota(read: ReadText = readText): number | undefined {
  const cgroups = read("/proc/self/cgroup") ?? "";
  let lowest: number | undefined;
  const consider = (quota: number | undefined) => {
    if (quota !== undefined && quota > 0 && (lowest === undefined || quota < lowest)) lowest = quota;
  };
  for (const line of cgroups.split("\n")) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line.trim()) ?? [];
    if (path === undefined) continue;
    const dirs = path === "/" ? [""] : [path, ""];
    if (controllers === "") {
      for (const dir of dirs) consider(parseCpuMax(read(`/sys/fs/cgroup${dir}/cpu.max`)));
    } else if (controllers.split(",").includes("cpu")) {
      for (
        const mount of ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct,cpu"]
      ) {
        for (const dir of dirs) {
          const quota = Number(read(`${mount}${dir}/cpu.cfs_quota_us`)?.trim());
          const period = Number(read(`${mount}${dir}/cpu.cfs_period_us`)?.trim());
          if (quota > 0 && period > 0) consider(quota / period);
        }
      }
    }
  }
  return lowest;
}

/** cgroup v2 `cpu.max`: "max 100000" (no limit) or "150000 100000" (1.5 CPUs). */
function parseCpuMax(text: string | undefined): number | undefined {
  const [quota, period] = (text ?? "").trim().split(/\s+/);
  if (quota === undefined || quota === "max" || quota === "") return undefined;
  const q = Number(quota), p = Number(period ?? "100000");
  return q > 0 && p > 0 ? q / p : undefined;
}
