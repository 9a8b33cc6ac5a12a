/** The product version, written into every Parquet file's metadata. */
export const VERSION = "0.1.0";
