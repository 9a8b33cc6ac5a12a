/**
 * The CPU count the server's worker default is built on: affinity and cgroup quotas, from files as the kernel
 * writes them, and from a real `taskset` on this machine.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { availableCpus, cgroupQuota, countCpuList, type ReadText } from "./cpus.ts";

const files = (map: Record<string, string>): ReadText => (path) => map[path];

Deno.test("CPU lists count every CPU of every range", () => {
  assert.equal(countCpuList("0"), 1);
  assert.equal(countCpuList("0-1"), 2);
  assert.equal(countCpuList("0-3,8,10-11\n"), 7);
  assert.equal(countCpuList("3-1"), undefined);
  assert.equal(countCpuList("zero"), undefined);
});

Deno.test("cgroup v2 cpu.max: a quota rounds up, 'max' is no limit; the lowest of own path and root wins", () => {
  const status = "Name:\tdeno\nCpus_allowed_list:\t0-15\n";
  assert.deepEqual(
    availableCpus(
      files({
        "/proc/self/status": status,
        "/proc/self/cgroup": "0::/svc\n",
        "/sys/fs/cgroup/svc/cpu.max": "150000 100000\n",
      }),
      16,
    ),
    { count: 2, limitedBy: "cgroup quota" },
  );
  assert.equal(
    cgroupQuota(files({ "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/cpu.max": "max 100000\n" })),
    undefined,
  );
  assert.equal(
    cgroupQuota(files({
      "/proc/self/cgroup": "0::/a\n",
      "/sys/fs/cgroup/a/cpu.max": "400000 100000",
      "/sys/fs/cgroup/cpu.max": "50000 100000",
    })),
    0.5,
  );
  // Half a CPU is still one worker.
  assert.deepEqual(
    availableCpus(files({ "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/cpu.max": "50000 100000" }), 8),
    { count: 1, limitedBy: "cgroup quota" },
  );
});

Deno.test("cgroup v1 cfs quota under either mount name; -1 is no limit", () => {
  const v1 = (quota: string) =>
    files({
      "/proc/self/cgroup": "4:memory:/x\n1:cpu,cpuacct:/docker/abc\n",
      "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": quota,
      "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    });
  assert.equal(cgroupQuota(v1("300000\n")), 3);
  assert.equal(cgroupQuota(v1("-1\n")), undefined);
  assert.deepEqual(availableCpus(v1("300000"), 64), { count: 3, limitedBy: "cgroup quota" });
});

Deno.test("affinity below the hardware count limits it; nothing readable leaves the hardware count", () => {
  assert.deepEqual(
    availableCpus(files({ "/proc/self/status": "Cpus_allowed_list:\t2,5\n" }), 8),
    { count: 2, limitedBy: "affinity" },
  );
  assert.deepEqual(availableCpus(files({}), 8), { count: 8, limitedBy: "hardware" });
  assert.deepEqual(availableCpus(files({}), 0), { count: 1, limitedBy: "hardware" });
});

Deno.test({
  name: "taskset -c 0 means one CPU, on this machine's real kernel",
  ignore: Deno.build.os !== "linux" || spawnSync("taskset", ["-V"]).status !== 0,
  fn: () => {
    const script =
      `import { availableCpus } from ${JSON.stringify(new URL("./cpus.ts", import.meta.url).href)};` +
      "console.log(JSON.stringify(availableCpus()));";
    const run = spawnSync("taskset", ["-c", "0", Deno.execPath(), "eval", script], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    // (Deno's own hardwareConcurrency already follows the affinity mask; Node's os.cpus() and cgroups do not.)
    assert.equal(JSON.parse(run.stdout).count, 1);
  },
});
