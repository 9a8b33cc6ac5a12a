/**
 * A description of the machine a benchmark ran on, for result files.
 *
 * @module
 */

/** Facts about this machine and toolchain. */
export interface Machine {
  cores: number;
  cpu: string;
  memoryGiB: number;
  os: string;
  deno: string;
  v8: string;
}

function read(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** Reads the machine facts from /proc and /etc/os-release (Linux). */
export function machine(): Machine {
  const cpu = read("/proc/cpuinfo").match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown";
  const memKb = Number(read("/proc/meminfo").match(/^MemTotal:\s+(\d+) kB/m)?.[1] ?? 0);
  const os = read("/etc/os-release").match(/^PRETTY_NAME="?([^"\n]+)"?$/m)?.[1] ?? Deno.build.os;
  return {
    cores: navigator.hardwareConcurrency,
    cpu,
    memoryGiB: Math.round(memKb / 1024 / 1024),
    os: `${os}, kernel ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
  };
}

/** The machine as a markdown bullet list. */
export function machineMarkdown(m: Machine = machine()): string {
  return [
    `- CPU: ${m.cpu}, ${m.cores} cores (nproc)`,
    `- Memory: ${m.memoryGiB} GiB`,
    `- OS: ${m.os}`,
    `- Deno ${m.deno} (V8 ${m.v8})`,
  ].join("\n");
}
