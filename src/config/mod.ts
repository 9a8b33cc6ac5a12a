/**
 * Start-up configuration: defaults → TOML file → `OTLP2PARQUET_*` environment → flags, resolved once
 * into a deeply frozen, validated {@link Config}. Platform entry points pass the environment and the
 * flags in; nothing here reads the process environment. Every setting is listed as data in
 * {@link SETTINGS} (the CLI builds its flags from it; `docs/configuration.md` documents it).
 *
 * @example
 * ```ts
 * import { ConfigError, describeConfig, resolveConfig } from "./mod.ts";
 *
 * try {
 *   const { config, warnings } = await resolveConfig({
 *     env: { OTLP2PARQUET_BATCH_MAX_BYTES: "64MiB" },
 *     flags: { listen: "127.0.0.1:0" },
 *     readTextFile: (path) => Deno.readTextFile(path),
 *     instanceId: crypto.randomUUID().slice(0, 8),
 *   });
 *   for (const warning of warnings) console.warn(warning);
 *   console.log(describeConfig(config));
 * } catch (e) {
 *   if (!(e instanceof ConfigError)) throw e;
 *   console.error(e.message); // every problem, one a line
 * }
 * ```
 *
 * @module
 */

export {
  type Config,
  CONFIG_ENV,
  CONFIG_FLAG,
  ConfigError,
  type ConfigSources,
  describeConfig,
  type DurabilityMode,
  formatSize,
  type LogFormat,
  type LogLevel,
  type ParquetCompression,
  parseSize,
  resolveConfig,
  type ResolvedConfig,
  type Setting,
  SETTINGS,
  type SettingType,
  type StorageBackend,
  walRequestBytes,
} from "./config.ts";
