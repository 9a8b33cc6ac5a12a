/**
 * A program instrumented with the OpenTelemetry JS SDK and configured by nothing but the standard
 * `OTEL_EXPORTER_OTLP_*` environment variables: it emits `SDK_ENV_LOGS` log records (default 3) of
 * service `sdk-env-test` through the OTLP/HTTP protobuf exporter, flushes, and exits 0 when the export
 * succeeded, 1 otherwise. Used to check that `otlp2parquet connect sdk-env` output works as printed.
 */
import process from "node:process";
import { ExportResultCode } from "@opentelemetry/core";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  LoggerProvider,
  type LogRecordExporter,
  type ReadableLogRecord,
  SimpleLogRecordProcessor,
} from "@opentelemetry/sdk-logs";

const exporter = new OTLPLogExporter(); // endpoint, headers and compression from the environment
let failures = 0;
const watched: LogRecordExporter = {
  export(logs: ReadableLogRecord[], done) {
    exporter.export(logs, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) {
        failures++;
        console.error(`export failed: ${result.error?.message}`);
      }
      done(result);
    });
  },
  shutdown: () => exporter.shutdown(),
  forceFlush: () => exporter.forceFlush(),
};
const provider = new LoggerProvider({
  resource: resourceFromAttributes({ "service.name": "sdk-env-test" }),
  processors: [new SimpleLogRecordProcessor({ exporter: watched })],
});
const logger = provider.getLogger("connect-test");
const count = Number(process.env.SDK_ENV_LOGS ?? "3");
for (let i = 0; i < count; i++) logger.emit({ body: `record ${i}`, severityText: "INFO", severityNumber: 9 });
await provider.forceFlush();
await provider.shutdown();
process.exit(failures === 0 ? 0 : 1);
