/**
 * CPU time of processes and threads from `/proc` (Linux): utime + stime of `/proc/PID/stat` (the whole
 * process, every thread, exited ones included) and of `/proc/PID/task/TID/stat` (one thread), in seconds.
 * Elsewhere every reading is 0.
 *
 * @module
 */

import { readProc } from "./e2e.ts";

/** Clock ticks per second of `/proc/.../stat` (`getconf CLK_TCK`): 100 on every Linux this runs on. */
export const CLK_TCK = 100;

/** utime + stime of a `stat` line, seconds (0 when unreadable). */
export function statCpuSeconds(stat: string): number {
  const close = stat.lastIndexOf(")");
  if (close < 0) return 0;
  // After "pid (comm) ": state is field 3, utime 14, stime 15.
  const fields = stat.slice(close + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK || 0;
}

/** CPU seconds of a whole process (all its threads, living or exited). */
export function processCpuSeconds(pid: number): number {
  return statCpuSeconds(readProc(`/proc/${pid}/stat`));
}

/** One thread's name (`comm`, e.g. `worker-1`, `tokio-runtime-w`) and CPU seconds. */
export interface ThreadCpu {
  tid: number;
  name: string;
  seconds: number;
}

/** The living threads of a process with their CPU seconds. */
export function threadCpu(pid: number): ThreadCpu[] {
  const out: ThreadCpu[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`/proc/${pid}/task`)];
  } catch {
    return out;
  }
  for (const e of entries) {
    const stat = readProc(`/proc/${pid}/task/${e.name}/stat`);
    if (!stat) continue;
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    out.push({ tid: Number(e.name), name, seconds: statCpuSeconds(stat) });
  }
  return out;
}

/**
 * A process's CPU seconds split the way the worker design splits work: its main (JavaScript) thread, its
 * worker threads (Web Workers are named `worker-N`), and the rest (V8 helpers, the runtime's I/O threads,
 * threads that exited: `total` minus the living main and worker threads).
 */
export interface CpuSplit {
  total: number;
  main: number;
  workers: number;
  other: number;
}

/** The CPU split of `pid` now. */
export function cpuSplit(pid: number): CpuSplit {
  const total = processCpuSeconds(pid);
  let main = 0, workers = 0;
  for (const t of threadCpu(pid)) {
    if (t.tid === pid) main = t.seconds;
    else if (/^worker-\d+$/.test(t.name)) workers += t.seconds;
  }
  return { total, main, workers, other: Math.max(0, total - main - workers) };
}

/** `b - a`, field by field. */
export function cpuDelta(a: CpuSplit, b: CpuSplit): CpuSplit {
  return {
    total: b.total - a.total,
    main: b.main - a.main,
    workers: b.workers - a.workers,
    other: Math.max(0, b.other - a.other),
  };
}
