/**
 * OTLP decoding: request bodies (protobuf wire format and OTLP/JSON) to table rows, under the
 * decode limits. What a request's bytes cost is bounded here.
 *
 * @module
 */

export * from "./decode_limits.ts";
export * from "./json_request.ts";
export * from "./json_scan.ts";
export * from "./json_values.ts";
export * from "./logs_json.ts";
export * from "./logs_proto.ts";
export * from "./metrics_json.ts";
export * from "./metrics_proto.ts";
export * from "./proto_attrs.ts";
export * from "./proto_request.ts";
export * from "./proto_values.ts";
export * from "./traces_json.ts";
export * from "./traces_proto.ts";
export * from "./wire.ts";
