/**
 * The table model: the ClickHouse tables' schema, the column buffers decoded rows live in, row
 * selection and sorting for batches, object keys, and how OTLP values are rendered as column text.
 *
 * @module
 */

export * from "./columns.ts";
export * from "./keys.ts";
export * from "./rows.ts";
export * from "./schema.ts";
export * from "./values.ts";
