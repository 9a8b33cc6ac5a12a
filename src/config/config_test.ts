import assert from "node:assert/strict";
import {
  type Config,
  CONFIG_ENV,
  CONFIG_FLAG,
  ConfigError,
  type ConfigSources,
  describeConfig,
  formatSize,
  parseSize,
  resolveConfig,
  SETTINGS,
} from "./config.ts";

/** Resolves with `toml` as the file `./x.toml` (named by `--config`). */
function withFile(toml: string, sources: ConfigSources = {}): ConfigSources {
  return {
    ...sources,
    flags: { config: "./x.toml", ...sources.flags },
    readTextFile: (path) =>
      path === "./x.toml" ? Promise.resolve(toml) : Promise.reject(new Error(`no ${path}`)),
  };
}

/** The problems a resolution throws, asserting it throws a ConfigError. */
async function problemsOf(sources: ConfigSources): Promise<string[]> {
  try {
    await resolveConfig(sources);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e.problems;
  }
  assert.fail("expected resolveConfig to throw");
}

async function oneProblem(sources: ConfigSources): Promise<string> {
  const problems = await problemsOf(sources);
  assert.equal(problems.length, 1, problems.join("\n"));
  return problems[0];
}

const camel = (snake: string) => snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** The Config value a TOML key maps to. */
function at(config: Config, key: string): unknown {
  let node: unknown = config;
  for (const part of key.split(".")) {
    assert.ok(typeof node === "object" && node !== null && camel(part) in node, `Config has no ${key}`);
    node = (node as Record<string, unknown>)[camel(part)];
  }
  return node;
}

Deno.test("resolveConfig() gives the documented defaults", async () => {
  const { config, warnings } = await resolveConfig({});
  assert.deepEqual(warnings, []);
  assert.deepEqual(config, {
    server: {
      listenAddr: "0.0.0.0:4318",
      hostname: "0.0.0.0",
      port: 4318,
      maxPayloadBytes: 67108864,
      maxInflightBytes: 268435456,
      requestTimeoutSecs: 30,
      minBodyRateBytesPerSec: 1024,
      bodyRateGraceSecs: 5,
      headerTimeoutSecs: 10,
      idleTimeoutSecs: 60,
      stopTimeoutSecs: 30,
      instanceId: "",
      workers: "auto",
      metrics: true,
    },
    auth: { mode: "none", token: undefined, tokens: [] },
    storage: {
      backend: "fs",
      path: "./data",
      probeIntervalSecs: 10,
      s3: { bucket: undefined, region: "us-east-1", endpoint: undefined, prefix: "", forcePathStyle: false },
      gcs: { bucket: undefined, endpoint: undefined, prefix: "", anonymous: false },
      azblob: { container: undefined, account: undefined, endpoint: undefined, prefix: "" },
    },
    batch: {
      enabled: true,
      maxRows: 200000,
      maxBytes: 134217728,
      maxAgeSecs: 60,
      maxPartitionsPerRequest: 128,
      maxOpenBatches: 1024,
      maxQueuedBytes: 134217728,
      maxPendingBytes: 268435456,
      acceptPastSecs: undefined,
      acceptFutureSecs: undefined,
    },
    batcher: { shards: 1 },
    durability: {
      mode: "wal",
      walDir: "./data/.wal",
      walMaxBytes: 2147483648,
      dedupeWindowSecs: 600,
      dedupeMaxEntries: 1_000_000,
    },
    log: { level: "info", format: "text" },
    parquet: { compression: "zstd", rowGroupRows: 131072 },
  });
});

Deno.test("SETTINGS maps every key onto the Config and documents its actual default", async () => {
  const { config } = await resolveConfig({});
  const derived = new Set([
    "server.instance_id",
    "auth.mode",
    "auth.tokens",
    "storage.s3.region",
    "storage.s3.force_path_style",
    "storage.azblob.endpoint",
    "durability.wal_dir",
  ]);
  for (const s of SETTINGS) {
    const value = at(config, s.key);
    if (derived.has(s.key) || value === undefined) continue;
    if (typeof value === "number") {
      assert.equal(s.default.split(" ")[0], String(value), s.key);
      if (value >= 1024 * 1024) assert.equal(s.default, `${value} (${formatSize(value)})`, s.key);
    } else assert.equal(s.default, value === "" ? '""' : String(value), s.key);
  }
  const unique = (f: (s: (typeof SETTINGS)[number]) => string | undefined) => {
    const names = SETTINGS.map(f).filter((n) => n !== undefined);
    assert.equal(new Set(names).size, names.length);
  };
  unique((s) => s.key);
  unique((s) => s.env);
  unique((s) => s.flag);
  for (const s of SETTINGS) {
    assert.match(s.env, /^OTLP2PARQUET_[A-Z0-9_]+$/);
    if (s.flag) assert.match(s.flag, /^--[a-z0-9-]+$/);
    assert.equal(s.flagArg === undefined, s.flag === undefined || s.type === "boolean", s.key);
  }
});

Deno.test("resolveConfig() lets each layer override the one before it", async () => {
  const toml = `
[batch]
max_rows = 1
[log]
level = "warn"
format = "json"
[parquet]
compression = "snappy"
`;
  const env = { OTLP2PARQUET_BATCH_MAX_ROWS: "2", OTLP2PARQUET_LOG_LEVEL: "error" };
  const flags = { "batch-max-rows": "3" };

  const all = (await resolveConfig(withFile(toml, { env, flags }))).config;
  assert.equal(all.batch.maxRows, 3); // flag over env
  assert.equal(all.log.level, "error"); // env over file
  assert.equal(all.log.format, "json"); // file over default
  assert.equal(all.parquet.compression, "snappy");
  assert.equal(all.parquet.rowGroupRows, 131072); // default

  assert.equal((await resolveConfig(withFile(toml, { env }))).config.batch.maxRows, 2);
  assert.equal((await resolveConfig(withFile(toml))).config.batch.maxRows, 1);
  assert.equal((await resolveConfig({})).config.batch.maxRows, 200000);
});

Deno.test("resolveConfig() takes the file from --config over OTLP2PARQUET_CONFIG", async () => {
  const files: Record<string, string> = {
    "a.toml": "[batch]\nmax_rows = 10",
    "b.toml": "[batch]\nmax_rows = 20",
  };
  const readTextFile = (path: string) => Promise.resolve(files[path]);
  const env = { [CONFIG_ENV]: "a.toml" };
  assert.equal((await resolveConfig({ env, readTextFile })).config.batch.maxRows, 10);
  assert.equal(
    (await resolveConfig({ env, flags: { config: "b.toml" }, readTextFile })).config.batch.maxRows,
    20,
  );
});

Deno.test("resolveConfig() reads a real file through the given readTextFile", async () => {
  const path = await Deno.makeTempFile({ suffix: ".toml" });
  try {
    await Deno.writeTextFile(path, '[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "telemetry"\n');
    const { config } = await resolveConfig({ flags: { config: path }, readTextFile: Deno.readTextFile });
    assert.equal(config.storage.backend, "s3");
    assert.equal(config.storage.s3.bucket, "telemetry");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("resolveConfig() accepts dotted keys and inline tables in TOML", async () => {
  const toml = 'batch.max_rows = 7\nstorage = { backend = "gcs", gcs = { bucket = "g" } }\n';
  const { config } = await resolveConfig(withFile(toml));
  assert.equal(config.batch.maxRows, 7);
  assert.equal(config.storage.backend, "gcs");
  assert.equal(config.storage.gcs.bucket, "g");
});

Deno.test("resolveConfig() fails when a file is named but readTextFile is missing", async () => {
  await assert.rejects(resolveConfig({ flags: { config: "x.toml" } }), TypeError);
});

Deno.test("resolveConfig() reads flags in kebab-case and camelCase, ignoring undefined ones", async () => {
  const { config } = await resolveConfig({
    env: { OTLP2PARQUET_LOG_LEVEL: "debug" },
    flags: { batchMaxBytes: "1MiB", "log-format": "json", logLevel: undefined, somethingElse: 1 },
  });
  assert.equal(config.batch.maxBytes, 1048576);
  assert.equal(config.log.format, "json");
  assert.equal(config.log.level, "debug");
});

Deno.test("resolveConfig() turns batching off with --no-batch in every spelling", async () => {
  for (const flags of [{ "no-batch": true }, { noBatch: true }, { batch: false }]) {
    const { config } = await resolveConfig({ flags });
    assert.equal(config.batch.enabled, false, JSON.stringify(flags));
  }
  // commander defaults `batch` to true when --no-batch is defined: that must not override the env.
  const { config } = await resolveConfig({
    env: { OTLP2PARQUET_BATCH_ENABLED: "no" },
    flags: { batch: true },
  });
  assert.equal(config.batch.enabled, false);
  assert.equal(
    await oneProblem({ flags: { "no-batch": "maybe" } }),
    'invalid --no-batch "maybe": expected true/false, 1/0 or yes/no',
  );
});

Deno.test("resolveConfig() treats empty environment variables as unset", async () => {
  const { config } = await resolveConfig(
    withFile("[log]\nlevel = 'warn'", {
      env: { OTLP2PARQUET_LOG_LEVEL: "", OTLP2PARQUET_BATCH_MAX_ROWS: "  " },
    }),
  );
  assert.equal(config.log.level, "warn");
  assert.equal(config.batch.maxRows, 200000);
});

Deno.test("resolveConfig() takes the S3 region from AWS_REGION below every own source", async () => {
  assert.equal(
    (await resolveConfig({ env: { AWS_REGION: "eu-west-1" } })).config.storage.s3.region,
    "eu-west-1",
  );
  const file = withFile('[storage.s3]\nregion = "ap-south-1"', { env: { AWS_REGION: "eu-west-1" } });
  assert.equal((await resolveConfig(file)).config.storage.s3.region, "ap-south-1");
  const env = { AWS_REGION: "eu-west-1", OTLP2PARQUET_S3_REGION: "us-west-2" };
  assert.equal((await resolveConfig({ env })).config.storage.s3.region, "us-west-2");
  assert.equal(
    (await resolveConfig({ env, flags: { "s3-region": "sa-east-1" } })).config.storage.s3.region,
    "sa-east-1",
  );
});

Deno.test("resolveConfig() defaults the WAL dir under the fs root, else ./data/.wal", async () => {
  const walDir = async (sources: ConfigSources) => (await resolveConfig(sources)).config.durability.walDir;
  assert.equal(await walDir({}), "./data/.wal");
  assert.equal(await walDir({ flags: { path: "/var/otel" } }), "/var/otel/.wal");
  assert.equal(await walDir({ env: { OTLP2PARQUET_STORAGE_PATH: "/var/otel//" } }), "/var/otel/.wal");
  assert.equal(await walDir({ flags: { path: "/" } }), "/.wal");
  const s3 = {
    OTLP2PARQUET_STORAGE_BACKEND: "s3",
    OTLP2PARQUET_S3_BUCKET: "b",
    OTLP2PARQUET_STORAGE_PATH: "/x",
  };
  assert.equal(await walDir({ env: s3 }), "./data/.wal");
  assert.equal(await walDir({ env: s3, flags: { "wal-dir": "/wal" } }), "/wal");
  assert.equal(await walDir({ flags: { path: "/var/otel", walDir: "/elsewhere" } }), "/elsewhere");
});

Deno.test("resolveConfig() uses path-style S3 addressing when an endpoint is set, unless told otherwise", async () => {
  const style = async (env: Record<string, string>) =>
    (await resolveConfig({ env })).config.storage.s3.forcePathStyle;
  assert.equal(await style({}), false);
  assert.equal(await style({ OTLP2PARQUET_S3_ENDPOINT: "http://127.0.0.1:9000" }), true);
  assert.equal(
    await style({
      OTLP2PARQUET_S3_ENDPOINT: "http://127.0.0.1:9000",
      OTLP2PARQUET_S3_FORCE_PATH_STYLE: "false",
    }),
    false,
  );
  assert.equal(await style({ OTLP2PARQUET_S3_FORCE_PATH_STYLE: "yes" }), true);
});

Deno.test("resolveConfig() derives the Azure endpoint from the account", async () => {
  const env = { OTLP2PARQUET_STORAGE_BACKEND: "azblob", OTLP2PARQUET_AZURE_CONTAINER: "c" };
  const derived = await resolveConfig({ env: { ...env, OTLP2PARQUET_AZURE_ACCOUNT: "acct" } });
  assert.equal(derived.config.storage.azblob.endpoint, "https://acct.blob.core.windows.net");
  const own = await resolveConfig({
    env: {
      ...env,
      OTLP2PARQUET_AZURE_ACCOUNT: "devstoreaccount1",
      OTLP2PARQUET_AZURE_ENDPOINT: "http://127.0.0.1:10000",
    },
  });
  assert.equal(own.config.storage.azblob.endpoint, "http://127.0.0.1:10000");
});

Deno.test("resolveConfig() uses the entry's instance id unless a source sets one", async () => {
  assert.equal((await resolveConfig({ instanceId: "gen-1" })).config.server.instanceId, "gen-1");
  const env = { OTLP2PARQUET_INSTANCE_ID: "pod_7" };
  assert.equal((await resolveConfig({ env, instanceId: "gen-1" })).config.server.instanceId, "pod_7");
  assert.equal(
    await oneProblem({ instanceId: "a/b" }),
    `invalid instanceId option "a/b": expected at most 64 letters, digits, '_' or '-'`,
  );
  assert.equal(
    await oneProblem({ env: { OTLP2PARQUET_INSTANCE_ID: "x".repeat(65) } }),
    `invalid OTLP2PARQUET_INSTANCE_ID "${"x".repeat(65)}": expected at most 64 letters, digits, '_' or '-'`,
  );
});

Deno.test("parseSize() reads plain integers and decimal and binary units, case-insensitive", () => {
  const cases: [string | number, number][] = [
    [134217728, 134217728],
    ["134217728", 134217728],
    ["128MiB", 134217728],
    ["128mib", 134217728],
    ["64MB", 64_000_000],
    ["64 mb", 64_000_000],
    ["2GiB", 2147483648],
    ["512KiB", 524288],
    ["512kb", 512_000],
    ["1TiB", 2 ** 40],
    ["3TB", 3e12],
    ["1.5GiB", 1610612736],
    ["100B", 100],
    [" 7 ", 7],
  ];
  for (const [input, bytes] of cases) assert.equal(parseSize(input), bytes, String(input));
  for (
    const bad of [
      "",
      "abc",
      "0",
      0,
      -1,
      1.5,
      "1.5",
      "-5MiB",
      "5 MiBs",
      "5M",
      "0.1B",
      "5e3",
      "9007199254740993",
    ]
  ) {
    assert.throws(() => parseSize(bad), RangeError, String(bad));
  }
});

Deno.test("formatSize() picks the largest unit that divides the size", () => {
  assert.equal(formatSize(134217728), "128MiB");
  assert.equal(formatSize(64_000_000), "64MB");
  assert.equal(formatSize(2147483648), "2GiB");
  assert.equal(formatSize(1000), "1kB");
  assert.equal(formatSize(1536), "1536B");
  assert.equal(formatSize(1023), "1023B");
});

Deno.test("resolveConfig() reads sizes with units from every source", async () => {
  const { config } = await resolveConfig(
    withFile('[durability]\nwal_max_bytes = "4GiB"\n[server]\nmax_inflight_bytes = 1073741824', {
      env: { OTLP2PARQUET_BATCH_MAX_BYTES: "64MB" },
      flags: { "max-payload": "32MiB" },
    }),
  );
  assert.equal(config.durability.walMaxBytes, 4 * 2 ** 30);
  assert.equal(config.server.maxInflightBytes, 2 ** 30);
  assert.equal(config.batch.maxBytes, 64_000_000);
  assert.equal(config.server.maxPayloadBytes, 32 * 2 ** 20);
});

Deno.test("resolveConfig() reads booleans as true/false, 1/0 and yes/no", async () => {
  const enabled = async (raw: string) =>
    (await resolveConfig({ env: { OTLP2PARQUET_BATCH_ENABLED: raw } })).config.batch.enabled;
  for (const raw of ["true", "TRUE", "1", "yes", "Yes"]) assert.equal(await enabled(raw), true, raw);
  for (const raw of ["false", "False", "0", "no", "NO"]) assert.equal(await enabled(raw), false, raw);
  assert.equal((await resolveConfig(withFile("batch.enabled = false"))).config.batch.enabled, false);
  assert.equal((await resolveConfig(withFile('batch.enabled = "no"'))).config.batch.enabled, false);
});

Deno.test("resolveConfig() reads enums case-insensitively and fractional seconds", async () => {
  const { config } = await resolveConfig({
    env: {
      OTLP2PARQUET_STORAGE_BACKEND: "S3",
      OTLP2PARQUET_S3_BUCKET: "b",
      OTLP2PARQUET_PARQUET_COMPRESSION: "LZ4_RAW",
      OTLP2PARQUET_BATCH_MAX_AGE_SECS: "0.5",
    },
  });
  assert.equal(config.storage.backend, "s3");
  assert.equal(config.parquet.compression, "lz4_raw");
  assert.equal(config.batch.maxAgeSecs, 0.5);
});

Deno.test("resolveConfig() parses listen addresses, IPv6 in brackets included", async () => {
  const listen = async (addr: string) => {
    const { server } = (await resolveConfig({ flags: { listen: addr } })).config;
    return [server.listenAddr, server.hostname, server.port];
  };
  assert.deepEqual(await listen("127.0.0.1:8080"), ["127.0.0.1:8080", "127.0.0.1", 8080]);
  assert.deepEqual(await listen("localhost:4318"), ["localhost:4318", "localhost", 4318]);
  assert.deepEqual(await listen("[::1]:4318"), ["[::1]:4318", "::1", 4318]);
  assert.deepEqual(await listen("[::]:0"), ["[::]:0", "::", 0]);
  assert.deepEqual(await listen("[0:0:0:0:0:0:0:1]:65535"), ["[::1]:65535", "::1", 65535]);
  assert.deepEqual(await listen(":4318"), ["0.0.0.0:4318", "0.0.0.0", 4318]);

  const problem = async (addr: string) => await oneProblem({ env: { OTLP2PARQUET_LISTEN_ADDR: addr } });
  const usage = "expected host:port, e.g. 0.0.0.0:4318 or [::1]:4318";
  assert.equal(await problem("localhost"), `invalid OTLP2PARQUET_LISTEN_ADDR "localhost": ${usage}`);
  assert.equal(await problem("bad_host:1"), `invalid OTLP2PARQUET_LISTEN_ADDR "bad_host:1": ${usage}`);
  assert.equal(await problem("300.1.1.1:1"), `invalid OTLP2PARQUET_LISTEN_ADDR "300.1.1.1:1": ${usage}`);
  assert.equal(
    await problem("::1:4318"),
    'invalid OTLP2PARQUET_LISTEN_ADDR "::1:4318": expected an IPv6 host in brackets, e.g. [::1]:4318',
  );
  assert.equal(
    await problem("[::g]:4318"),
    'invalid OTLP2PARQUET_LISTEN_ADDR "[::g]:4318": expected a valid IPv6 address in brackets, e.g. [::1]:4318',
  );
  for (const addr of ["host:65536", "host:", "host:-1", "host:http", "[::1]:"]) {
    assert.equal(
      await problem(addr),
      `invalid OTLP2PARQUET_LISTEN_ADDR ${
        JSON.stringify(addr)
      }: expected a port from 0 to 65535 (0 = any free port)`,
    );
  }
});

Deno.test("resolveConfig() names source and key in every value error", async () => {
  const env = (name: string, raw: string) => oneProblem({ env: { [name]: raw } });
  assert.equal(
    await env("OTLP2PARQUET_BATCH_MAX_ROWS", "abc"),
    'invalid OTLP2PARQUET_BATCH_MAX_ROWS "abc": expected a positive integer',
  );
  assert.equal(
    await env("OTLP2PARQUET_PARQUET_ROW_GROUP_ROWS", "0"),
    'invalid OTLP2PARQUET_PARQUET_ROW_GROUP_ROWS "0": expected a positive integer',
  );
  assert.equal(
    await env("OTLP2PARQUET_BATCH_MAX_BYTES", "lots"),
    'invalid OTLP2PARQUET_BATCH_MAX_BYTES "lots": expected a positive size in bytes, e.g. 134217728, "128MiB" or "64MB"',
  );
  assert.equal(
    await env("OTLP2PARQUET_REQUEST_TIMEOUT_SECS", "0"),
    'invalid OTLP2PARQUET_REQUEST_TIMEOUT_SECS "0": expected a positive number of seconds up to 2147483',
  );
  assert.equal(
    await env("OTLP2PARQUET_BATCH_MAX_AGE_SECS", "3000000"),
    'invalid OTLP2PARQUET_BATCH_MAX_AGE_SECS "3000000": expected a positive number of seconds up to 2147483',
  );
  assert.equal(
    await env("OTLP2PARQUET_S3_FORCE_PATH_STYLE", "maybe"),
    'invalid OTLP2PARQUET_S3_FORCE_PATH_STYLE "maybe": expected true/false, 1/0 or yes/no',
  );
  assert.equal(
    await env("OTLP2PARQUET_STORAGE_BACKEND", "ftp"),
    'invalid OTLP2PARQUET_STORAGE_BACKEND "ftp": expected one of fs, s3, gcs, azblob',
  );
  assert.equal(
    await env("OTLP2PARQUET_DURABILITY", "fsync"),
    'invalid OTLP2PARQUET_DURABILITY "fsync": expected one of wal, none',
  );
  assert.equal(
    await env("OTLP2PARQUET_LOG_LEVEL", "trace"),
    'invalid OTLP2PARQUET_LOG_LEVEL "trace": expected one of error, warn, info, debug',
  );
  assert.equal(
    await env("OTLP2PARQUET_LOG_FORMAT", "xml"),
    'invalid OTLP2PARQUET_LOG_FORMAT "xml": expected one of text, json',
  );
  assert.equal(
    await env("OTLP2PARQUET_PARQUET_COMPRESSION", "lz4"),
    'invalid OTLP2PARQUET_PARQUET_COMPRESSION "lz4": expected one of zstd, snappy, gzip, lz4_raw, none',
  );
  assert.equal(
    await env("OTLP2PARQUET_S3_ENDPOINT", "ftp://x"),
    'invalid OTLP2PARQUET_S3_ENDPOINT "ftp://x": expected an http:// or https:// URL',
  );
  assert.equal(
    await env("OTLP2PARQUET_AZURE_ENDPOINT", "not a url"),
    'invalid OTLP2PARQUET_AZURE_ENDPOINT "not a url": expected an http:// or https:// URL',
  );

  assert.equal(
    await oneProblem({ flags: { "batch-max-rows": "abc" } }),
    'invalid --batch-max-rows "abc": expected a positive integer',
  );
  assert.equal(
    await oneProblem({ flags: { batchMaxAge: -1 } }),
    "invalid --batch-max-age -1: expected a positive number of seconds up to 2147483",
  );
  assert.equal(
    await oneProblem({ flags: { config: "" } }),
    `invalid ${CONFIG_FLAG} "": expected a file path`,
  );

  const file = (toml: string) => oneProblem(withFile(toml));
  assert.equal(
    await file("[batch]\nmax_rows = -5"),
    "config file ./x.toml: invalid batch.max_rows -5: expected a positive integer",
  );
  assert.equal(
    await file("[batch]\nmax_rows = 1.5"),
    "config file ./x.toml: invalid batch.max_rows 1.5: expected a positive integer",
  );
  assert.equal(
    await file("[batch]\nmax_bytes = 2.5"),
    'config file ./x.toml: invalid batch.max_bytes 2.5: expected a positive size in bytes, e.g. 134217728, "128MiB" or "64MB"',
  );
  assert.equal(
    await file('[storage]\npath = ""'),
    'config file ./x.toml: invalid storage.path "": expected a non-empty string',
  );
  assert.equal(
    await file("[storage.s3]\nprefix = 5"),
    "config file ./x.toml: invalid storage.s3.prefix 5: expected a string",
  );
  assert.equal(
    await file("[storage.s3]\nbucket = [1]"),
    "config file ./x.toml: invalid storage.s3.bucket an array: expected a non-empty string",
  );
  assert.equal(
    await file("[server]\nlisten_addr = 4318"),
    "config file ./x.toml: invalid server.listen_addr 4318: expected a string host:port",
  );
  assert.equal(
    await file("[server]\nlisten_addr = 1979-05-27"),
    "config file ./x.toml: invalid server.listen_addr a date: expected a string host:port",
  );
  assert.equal(
    await file("[batch]\nenabled = 2"),
    "config file ./x.toml: invalid batch.enabled 2: expected true/false, 1/0 or yes/no",
  );
});

Deno.test("resolveConfig() rejects unknown and misplaced TOML keys, suggesting the right one", async () => {
  const file = (toml: string) => oneProblem(withFile(toml));
  assert.equal(
    await file("[batch]\nmax_rowz = 5"),
    'config file ./x.toml: unknown key "batch.max_rowz" (did you mean "batch.max_rows"?)',
  );
  assert.equal(await file("[batch]\nflavour = 5"), 'config file ./x.toml: unknown key "batch.flavour"');
  assert.equal(await file("[metrics]\nenabled = true"), 'config file ./x.toml: unknown key "metrics"');
  assert.equal(await file("listen_addr = ':1'"), 'config file ./x.toml: unknown key "listen_addr"');
  assert.equal(
    await file('storage = "fs"'),
    'config file ./x.toml: "storage" must be a table ([storage]), not "fs"',
  );
  assert.equal(
    await file("[storage]\ns3 = 5"),
    'config file ./x.toml: "storage.s3" must be a table ([storage.s3]), not 5',
  );
  assert.equal(
    await file("[storage.s3.bucket]\nname = 'x'"),
    "config file ./x.toml: invalid storage.s3.bucket a table: expected a non-empty string",
  );
});

Deno.test("resolveConfig() reports unreadable and malformed files", async () => {
  assert.equal(
    await oneProblem({
      flags: { config: "./missing.toml" },
      readTextFile: () => Promise.reject(new Error("not found")),
    }),
    "config file ./missing.toml: cannot read: not found",
  );
  assert.equal(
    await oneProblem(withFile("[batch]\nmax_rows = = 1")),
    "config file ./x.toml: invalid TOML at line 2, column 12: Invalid TOML document: invalid value",
  );
});

Deno.test("resolveConfig() checks settings against each other", async () => {
  assert.equal(
    await oneProblem({ flags: { storage: "s3" } }),
    'storage.backend is "s3" but no bucket is set (storage.s3.bucket / OTLP2PARQUET_S3_BUCKET / --s3-bucket)',
  );
  assert.equal(
    await oneProblem({ env: { OTLP2PARQUET_STORAGE_BACKEND: "gcs" } }),
    'storage.backend is "gcs" but no bucket is set (storage.gcs.bucket / OTLP2PARQUET_GCS_BUCKET)',
  );
  assert.deepEqual(await problemsOf({ env: { OTLP2PARQUET_STORAGE_BACKEND: "azblob" } }), [
    'storage.backend is "azblob" but no container is set (storage.azblob.container / OTLP2PARQUET_AZURE_CONTAINER)',
    'storage.backend is "azblob" but neither an account (storage.azblob.account / OTLP2PARQUET_AZURE_ACCOUNT) ' +
    "nor an endpoint (storage.azblob.endpoint / OTLP2PARQUET_AZURE_ENDPOINT) is set",
  ]);
  assert.equal(
    await oneProblem(withFile("[batch]\nmax_bytes = '4GiB'")),
    "batch.max_bytes 4GiB (from config file ./x.toml) exceeds durability.wal_max_bytes 2GiB (default)",
  );
  assert.equal(
    await oneProblem({ env: { OTLP2PARQUET_WAL_MAX_BYTES: "32MiB" }, flags: { batchMaxBytes: "16MiB" } }),
    "server.max_payload_bytes 64MiB (default) exceeds the 28MiB of durability.wal_max_bytes 32MiB (from " +
      "OTLP2PARQUET_WAL_MAX_BYTES) that requests may use (an eighth of it, at most 64MiB, is kept for the " +
      "records that let batches be written)",
  );
  // Larger than the room for requests, if smaller than the log: refused too (it could only be taken by an
  // empty log).
  assert.match(
    await oneProblem({
      env: {
        OTLP2PARQUET_WAL_MAX_BYTES: "4MiB",
        OTLP2PARQUET_BATCH_MAX_BYTES: "1MiB",
        OTLP2PARQUET_MAX_PAYLOAD_BYTES: "3900KiB",
      },
    }),
    /^server\.max_payload_bytes 3900KiB .* exceeds the 3584KiB of durability\.wal_max_bytes 4MiB/,
  );
  assert.equal(
    await oneProblem({ env: { OTLP2PARQUET_MAX_INFLIGHT_BYTES: "1MiB" } }),
    "server.max_payload_bytes 64MiB (default) exceeds server.max_inflight_bytes 1MiB (from OTLP2PARQUET_MAX_INFLIGHT_BYTES)",
  );
  // Without a WAL, its size does not constrain anything.
  const { config } = await resolveConfig({
    env: { OTLP2PARQUET_WAL_MAX_BYTES: "1MiB" },
    flags: { durability: "none" },
  });
  assert.equal(config.durability.mode, "none");
});

Deno.test("resolveConfig() warns when OTLP/JSON would fill the log before a batch, and takes the setting", async () => {
  // The setting of issue 15: accepted (a full log writes its batches early), with a warning that says so.
  const { config, warnings } = await resolveConfig({
    env: {
      OTLP2PARQUET_WAL_MAX_BYTES: "4MiB",
      OTLP2PARQUET_BATCH_MAX_BYTES: "4MiB",
      OTLP2PARQUET_MAX_PAYLOAD_BYTES: "1MiB",
    },
  });
  assert.equal(config.durability.walMaxBytes, 4 * 2 ** 20);
  assert.equal(config.batch.maxBytes, 4 * 2 ** 20);
  assert.deepEqual(warnings, [
    "durability.wal_max_bytes 4MiB (from OTLP2PARQUET_WAL_MAX_BYTES) holds 3584KiB of requests, less than 2 × " +
    "batch.max_bytes 4MiB (from OTLP2PARQUET_BATCH_MAX_BYTES) + server.max_payload_bytes 1MiB (from " +
    "OTLP2PARQUET_MAX_PAYLOAD_BYTES): OTLP/JSON bodies fill the log before their rows fill a batch, so " +
    "batches are written when the log fills, as smaller objects (nothing is refused for it); for full " +
    "batches set durability.wal_max_bytes to at least 11MiB",
  ]);
  // At the size it names, no warning; nor with the defaults.
  const enough = await resolveConfig({
    env: {
      OTLP2PARQUET_WAL_MAX_BYTES: "11MiB",
      OTLP2PARQUET_BATCH_MAX_BYTES: "4MiB",
      OTLP2PARQUET_MAX_PAYLOAD_BYTES: "1MiB",
    },
  });
  assert.deepEqual(enough.warnings, []);
  assert.deepEqual((await resolveConfig({})).warnings, []);
});

Deno.test("resolveConfig() throws one ConfigError listing every problem", async () => {
  const sources = withFile("[batch]\nmax_rowz = 1\n[storage]\nbackend = 's3'", {
    env: { OTLP2PARQUET_LOG_LEVEL: "loud", OTLP2PARQUET_BATCH_MAX_ROWS: "x" },
    // A valid flag does not hide an invalid value in a lower layer.
    flags: { "batch-max-rows": "10", listen: "nowhere" },
  });
  const error = await resolveConfig(sources).then(() => undefined, (e) => e);
  assert.ok(error instanceof ConfigError && error instanceof Error);
  assert.equal(error.name, "ConfigError");
  assert.deepEqual(error.problems, [
    'config file ./x.toml: unknown key "batch.max_rowz" (did you mean "batch.max_rows"?)',
    'invalid OTLP2PARQUET_BATCH_MAX_ROWS "x": expected a positive integer',
    'invalid OTLP2PARQUET_LOG_LEVEL "loud": expected one of error, warn, info, debug',
    'invalid --listen "nowhere": expected host:port, e.g. 0.0.0.0:4318 or [::1]:4318',
    'storage.backend is "s3" but no bucket is set (storage.s3.bucket / OTLP2PARQUET_S3_BUCKET / --s3-bucket)',
  ]);
  assert.equal(
    error.message,
    "invalid configuration (5 problems):\n" + error.problems.map((p: string) => `  - ${p}`).join("\n"),
  );
  const single = await resolveConfig({ env: { OTLP2PARQUET_LOG_LEVEL: "loud" } }).catch((e) => e);
  assert.equal(
    single.message,
    'invalid configuration: invalid OTLP2PARQUET_LOG_LEVEL "loud": expected one of error, warn, info, debug',
  );
});

Deno.test("resolveConfig() warns about unknown OTLP2PARQUET_* variables and ignores others", async () => {
  const { warnings, config } = await resolveConfig({
    env: {
      OTLP2PARQUET_BATCH_MAX_ROW: "5",
      OTLP2PARQUET_FROBNICATE: "1",
      OTLP2PARQUET_CONFIG: "",
      PATH: "/usr/bin",
      AWS_PROFILE: "x",
    },
  });
  assert.deepEqual(warnings, [
    'unknown environment variable OTLP2PARQUET_BATCH_MAX_ROW (ignored) (did you mean "OTLP2PARQUET_BATCH_MAX_ROWS"?)',
    "unknown environment variable OTLP2PARQUET_FROBNICATE (ignored)",
  ]);
  assert.equal(config.batch.maxRows, 200000);
});

Deno.test("resolveConfig() freezes the result deeply", async () => {
  const { config } = await resolveConfig({});
  const visit = (node: unknown, path: string) => {
    if (typeof node !== "object" || node === null) return;
    assert.ok(Object.isFrozen(node), `${path} is not frozen`);
    for (const [k, v] of Object.entries(node)) visit(v, `${path}.${k}`);
  };
  visit(config, "config");
  assert.throws(() => {
    (config.batch as { maxRows: number }).maxRows = 1;
  }, TypeError);
  assert.throws(() => {
    (config.storage.s3 as { bucket?: string }).bucket = "x";
  }, TypeError);
  visit(SETTINGS, "SETTINGS");
});

Deno.test("describeConfig() summarises the configuration without secrets", async () => {
  const { config } = await resolveConfig({
    env: {
      OTLP2PARQUET_STORAGE_BACKEND: "s3",
      OTLP2PARQUET_S3_BUCKET: "telemetry",
      OTLP2PARQUET_S3_ENDPOINT: "http://minio:s3cr3t@127.0.0.1:9000",
      OTLP2PARQUET_S3_PREFIX: "otel/",
    },
    flags: { listen: "[::1]:4318", "no-batch": true },
    instanceId: "i-1",
  });
  const text = describeConfig(config);
  assert.ok(!text.includes("s3cr3t") && !text.includes("minio"), text);
  for (
    const part of [
      "[::1]:4318",
      "i-1",
      "s3 bucket telemetry, region us-east-1, endpoint http://127.0.0.1:9000/ (credentials hidden), path-style",
      '"otel/"',
      "batching   off",
      "wal in ./data/.wal (at most 2GiB)",
      "zstd, row groups of 131072 rows",
    ]
  ) assert.ok(text.includes(part), `missing ${part} in\n${text}`);

  const azure = await resolveConfig({
    env: {
      OTLP2PARQUET_STORAGE_BACKEND: "azblob",
      OTLP2PARQUET_AZURE_CONTAINER: "c",
      OTLP2PARQUET_AZURE_ENDPOINT: "https://acct.blob.core.windows.net/?sv=2024&sig=SECRET",
    },
  });
  const azureText = describeConfig(azure.config);
  assert.ok(!azureText.includes("SECRET"), azureText);
  assert.ok(
    azureText.includes(
      "azblob container c, endpoint https://acct.blob.core.windows.net/ (credentials hidden)",
    ),
  );
  const fs = describeConfig((await resolveConfig({ env: { OTLP2PARQUET_DURABILITY: "none" } })).config);
  assert.ok(fs.includes("fs at ./data") && fs.includes("none: unflushed batches are lost on a crash"), fs);
  assert.ok(fs.includes("on: 200000 rows, 128MiB or 60s"), fs);
});

// ---------------------------------------------------------------------------------------------------
// docs/configuration.md must list exactly the settings above. Regenerate with UPDATE_DOCS=1.

const DOC = new URL("../../docs/configuration.md", import.meta.url);
const START = "<!-- settings:start (generated from SETTINGS by src/config/config_test.ts) -->";
const END = "<!-- settings:end -->";

/** The table's cells, unescaped and trimmed, so `deno fmt`'s column alignment does not matter. */
function cellsOf(table: string): string[][] {
  return table.split("\n").filter((line) => line.startsWith("|") && !/^\|[\s|:-]+\|$/.test(line)).map((
    line,
  ) => line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim().replaceAll("\\|", "|")));
}

function settingsTable(): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  const code = (text: string | undefined) => text ? `\`${text}\`` : "";
  const plain = (text: string) => text.replaceAll("<", "&lt;").replaceAll(">", "&gt;");
  const rows = SETTINGS.map((s) =>
    [
      code(s.key),
      code(s.env),
      code(s.flag && (s.flagArg ? `${s.flag} ${s.flagArg}` : s.flag)),
      plain(s.default),
      s.description,
    ].map(cell).join(" | ")
  );
  return [
    "| Setting (TOML key) | Environment variable | Flag | Default | Meaning |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r} |`),
  ].join("\n");
}

Deno.test("docs/configuration.md documents every setting as the code defines it", async () => {
  const doc = await Deno.readTextFile(DOC);
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  assert.ok(start >= 0 && end > start, `docs/configuration.md lacks the ${START} … ${END} markers`);
  const expected = settingsTable();
  const actual = doc.slice(start + START.length, end);
  const stale = JSON.stringify(cellsOf(actual)) !== JSON.stringify(cellsOf(expected));
  if (stale && Deno.env.get("UPDATE_DOCS") === "1") {
    await Deno.writeTextFile(
      DOC,
      `${doc.slice(0, start + START.length)}\n\n${expected}\n\n${doc.slice(end)}`,
    );
    return;
  }
  // Cell by cell, so the failure names the row that differs.
  assert.deepEqual(
    cellsOf(actual),
    cellsOf(expected),
    "the settings table is stale: run the tests with UPDATE_DOCS=1",
  );
  assert.equal(cellsOf(actual).length, SETTINGS.length + 1);
  assert.ok(doc.includes(`\`${CONFIG_ENV}\``) && doc.includes(`\`${CONFIG_FLAG}`), "the config file options");
});

Deno.test("server.workers is auto or a positive count, from the file, OTLP2PARQUET_WORKERS or --workers", async () => {
  assert.equal(
    (await resolveConfig({ env: { OTLP2PARQUET_WORKERS: "AUTO" } })).config.server.workers,
    "auto",
  );
  assert.equal((await resolveConfig({ env: { OTLP2PARQUET_WORKERS: "3" } })).config.server.workers, 3);
  assert.equal(
    (await resolveConfig({ env: { OTLP2PARQUET_WORKERS: "3" }, flags: { workers: "1" } })).config.server
      .workers,
    1,
  );
  for (const bad of ["0", "-1", "two", "1.5"]) {
    await assert.rejects(
      resolveConfig({ env: { OTLP2PARQUET_WORKERS: bad } }),
      (e) => e instanceof ConfigError && /OTLP2PARQUET_WORKERS.*positive integer or auto/s.test(e.message),
    );
  }
});
