/**
 * A minimal protobuf writer and OTLP request builders for the reliability tests. Written by hand (not
 * through an SDK) so tests can also build what no SDK would: absurd lengths, wrong wire types, 100 000
 * levels of nesting.
 *
 * @module
 */

const utf8 = new TextEncoder();

/** Bytes backed by a plain ArrayBuffer (what fetch bodies want). */
export type Bytes = Uint8Array<ArrayBuffer>;

/** Wire types. */
export const VARINT = 0, I64 = 1, LEN = 2, I32 = 5;

/** A varint (unsigned; bigint for values beyond 2^53). */
export function varint(value: number | bigint): Bytes {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return new Uint8Array(out);
}

/** Concatenates byte arrays. */
export const concat = (...parts: Uint8Array[]): Bytes => concatAll(parts);

/** Concatenates an array of byte arrays (any number: no argument spreading). */
export function concatAll(parts: Uint8Array[]): Bytes {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

/** A field tag. */
export const tag = (field: number, wireType: number): Bytes => varint(field * 8 + wireType);
/** A length-delimited field. */
export const ld = (field: number, bytes: Uint8Array): Bytes =>
  concat(tag(field, LEN), varint(bytes.length), bytes);
/** A string field. */
export const str = (field: number, s: string): Bytes => ld(field, utf8.encode(s));
/** A varint field. */
export const uint = (field: number, n: number | bigint): Bytes => concat(tag(field, VARINT), varint(n));

/** A fixed64 field (little-endian u64). */
export function fixed64(field: number, value: bigint): Bytes {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
  return concat(tag(field, I64), b);
}

/** A fixed32 field. */
export function fixed32(field: number, value: number): Bytes {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, true);
  return concat(tag(field, I32), b);
}

/** A double field. */
export function double(field: number, value: number): Bytes {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, value, true);
  return concat(tag(field, I64), b);
}

/** A packed repeated fixed64 field. */
export function packedFixed64(field: number, values: bigint[]): Bytes {
  const b = new Uint8Array(values.length * 8);
  const view = new DataView(b.buffer);
  values.forEach((v, i) => view.setBigUint64(i * 8, v, true));
  return ld(field, b);
}

/** A packed repeated double field. */
export function packedDouble(field: number, values: number[]): Bytes {
  const b = new Uint8Array(values.length * 8);
  const view = new DataView(b.buffer);
  values.forEach((v, i) => view.setFloat64(i * 8, v, true));
  return ld(field, b);
}

/** A packed repeated varint field. */
export const packedVarint = (field: number, values: number[]): Bytes =>
  ld(field, concat(...values.map((v) => varint(v))));

/** AnyValue builders. */
export const anyValue = {
  string: (s: string): Bytes => str(1, s),
  bool: (b: boolean): Bytes => uint(2, b ? 1 : 0),
  int: (n: number | bigint): Bytes => uint(3, n),
  double: (x: number): Bytes => double(4, x),
  array: (values: Uint8Array[]): Bytes => ld(5, concat(...values.map((v) => ld(1, v)))),
  kvlist: (pairs: Uint8Array[]): Bytes => ld(6, concat(...pairs.map((kv) => ld(1, kv)))),
  bytes: (b: Uint8Array): Bytes => ld(7, b),
};

/** A KeyValue message. */
export const keyValue = (key: string, value: Uint8Array): Bytes => concat(str(1, key), ld(2, value));

/** A Resource message with `service.name` and extra attributes. */
export function resource(service: string, attributes: Uint8Array[] = []): Bytes {
  return concat(
    ld(1, keyValue("service.name", anyValue.string(service))),
    ...attributes.map((a) => ld(1, a)),
  );
}

/** An InstrumentationScope message. */
export const scope = (name: string, version = "1.0.0"): Bytes => concat(str(1, name), str(2, version));

const NANOS = 1_000_000n;

/** A LogRecord message. */
export function logRecord(options: {
  timeMs: number;
  body?: Uint8Array;
  attributes?: Uint8Array[];
  severity?: number;
  traceId?: Uint8Array;
  spanId?: Uint8Array;
}): Bytes {
  const parts = [fixed64(1, BigInt(options.timeMs) * NANOS), fixed64(11, BigInt(options.timeMs) * NANOS)];
  if (options.severity !== undefined) parts.push(uint(2, options.severity), str(3, "INFO"));
  if (options.body) parts.push(ld(5, options.body));
  for (const a of options.attributes ?? []) parts.push(ld(6, a));
  if (options.traceId) parts.push(ld(9, options.traceId));
  if (options.spanId) parts.push(ld(10, options.spanId));
  return concat(...parts);
}

/** An ExportLogsServiceRequest: one ResourceLogs per entry, one ScopeLogs each. */
export function logsRequest(resources: { service: string; records: Uint8Array[] }[]): Bytes {
  return concat(
    ...resources.map((r) =>
      ld(
        1,
        concat(
          ld(1, resource(r.service)),
          ld(2, concat(ld(1, scope("reliability")), ...r.records.map((rec) => ld(2, rec)))),
        ),
      )
    ),
  );
}

/** A logs request whose records carry the given ids as their bodies (and in an `rid` attribute). */
export function idLogsRequest(service: string, ids: string[], timeMs = Date.now()): Bytes {
  return logsRequest([{
    service,
    records: ids.map((id, i) =>
      logRecord({
        timeMs: timeMs + i,
        severity: 9,
        body: anyValue.string(id),
        attributes: [keyValue("rid", anyValue.string(id)), keyValue("n", anyValue.int(i))],
      })
    ),
  }]);
}

/** The OTLP/JSON twin of {@linkcode idLogsRequest}. */
export function idLogsJson(service: string, ids: string[], timeMs = Date.now()): Bytes {
  const ns = (i: number) => String(BigInt(timeMs + i) * NANOS);
  return utf8.encode(JSON.stringify({
    resourceLogs: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
      scopeLogs: [{
        scope: { name: "reliability", version: "1.0.0" },
        logRecords: ids.map((id, i) => ({
          timeUnixNano: ns(i),
          observedTimeUnixNano: ns(i),
          severityNumber: 9,
          severityText: "INFO",
          body: { stringValue: id },
          attributes: [{ key: "rid", value: { stringValue: id } }, {
            key: "n",
            value: { intValue: String(i) },
          }],
        })),
      }],
    }],
  }));
}

/** An ExportTraceServiceRequest with spans carrying events, links and a status. */
export function tracesRequest(service: string, count: number, timeMs = 1_700_000_000_000): Bytes {
  const spans: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const traceId = new Uint8Array(16).fill(i + 1);
    const spanId = new Uint8Array(8).fill(i + 2);
    const t = BigInt(timeMs + i) * NANOS;
    spans.push(concat(
      ld(1, traceId),
      ld(2, spanId),
      str(3, "k=v"),
      ld(4, new Uint8Array(8).fill(9)),
      str(5, `span ${i}`),
      uint(6, 2),
      fixed64(7, t),
      fixed64(8, t + 5_000_000n),
      ld(9, keyValue("http.method", anyValue.string("GET"))),
      ld(9, keyValue("retries", anyValue.int(i))),
      ld(11, concat(fixed64(1, t + 1000n), str(2, "event"), ld(3, keyValue("e", anyValue.bool(true))))),
      ld(13, concat(ld(1, traceId), ld(2, spanId), str(3, ""), ld(4, keyValue("l", anyValue.double(1.5))))),
      ld(15, concat(str(2, "ok"), uint(3, 1))),
      fixed32(16, 1),
    ));
  }
  return ld(
    1,
    concat(ld(1, resource(service)), ld(2, concat(ld(1, scope("tracer")), ...spans.map((s) => ld(2, s))))),
  );
}

/** An ExportMetricsServiceRequest with one metric of each of the five types. */
export function metricsRequest(service: string, timeMs = 1_700_000_000_000): Bytes {
  const t = BigInt(timeMs) * NANOS;
  const attrs = ld(7, keyValue("host", anyValue.string("a")));
  const number = (value: Uint8Array) => concat(attrs, fixed64(2, t - NANOS), fixed64(3, t), value);
  const gauge = concat(str(1, "g"), str(3, "1"), ld(5, ld(1, number(double(4, 1.5)))));
  const sum = concat(str(1, "s"), ld(7, concat(ld(1, number(fixed64(6, 42n))), uint(2, 2), uint(3, 1))));
  const histogram = concat(
    str(1, "h"),
    ld(
      9,
      concat(
        ld(
          1,
          concat(
            ld(9, keyValue("host", anyValue.string("a"))),
            fixed64(2, t - NANOS),
            fixed64(3, t),
            fixed64(4, 6n),
            double(5, 12.5),
            packedFixed64(6, [1n, 2n, 3n]),
            packedDouble(7, [1, 5]),
            double(11, 0.5),
            double(12, 9),
          ),
        ),
        uint(2, 2),
      ),
    ),
  );
  const buckets = (offset: number) =>
    concat(uint(1, (offset << 1) ^ (offset >> 31)), packedVarint(2, [1, 2]));
  const exponential = concat(
    str(1, "e"),
    ld(
      10,
      concat(
        ld(
          1,
          concat(
            ld(1, keyValue("host", anyValue.string("a"))),
            fixed64(2, t - NANOS),
            fixed64(3, t),
            fixed64(4, 7n),
            double(5, 3.5),
            uint(6, 2),
            fixed64(7, 1n),
            ld(8, buckets(1)),
            ld(9, buckets(-2)),
            double(12, 0.1),
            double(13, 4),
          ),
        ),
        uint(2, 1),
      ),
    ),
  );
  const summary = concat(
    str(1, "q"),
    ld(
      11,
      ld(
        1,
        concat(
          ld(7, keyValue("host", anyValue.string("a"))),
          fixed64(2, t - NANOS),
          fixed64(3, t),
          fixed64(4, 3n),
          double(5, 6),
          ld(6, concat(double(1, 0.5), double(2, 2))),
          ld(6, concat(double(1, 0.99), double(2, 3))),
        ),
      ),
    ),
  );
  const metrics = [gauge, sum, histogram, exponential, summary];
  return ld(
    1,
    concat(ld(1, resource(service)), ld(2, concat(ld(1, scope("meter")), ...metrics.map((m) => ld(2, m))))),
  );
}

/**
 * A logs request whose one record's body is an AnyValue nested `depth` levels deep (arrays, or kvlists
 * with `kvlist: true`). Built front to back in O(depth): a nested message is only its prefix plus its
 * content, so all the prefixes come first and the innermost value last.
 */
export function deeplyNestedLogsRequest(depth: number, options: { kvlist?: boolean } = {}): Bytes {
  const inner = anyValue.string("bottom");
  // Per level: AnyValue.array_value (5) / kvlist_value (6) → ArrayValue.values (1) / KeyValueList.values
  // (1) → [KeyValue.key + KeyValue.value (2)] → AnyValue.
  const key = options.kvlist ? str(1, "k") : new Uint8Array();
  const headers: Uint8Array[] = new Array(depth);
  let length = inner.length;
  for (let level = depth - 1; level >= 0; level--) {
    let h: Uint8Array;
    if (options.kvlist) {
      const kvLen = key.length + tag(2, LEN).length + varint(length).length + length;
      const listLen = 1 + varint(kvLen).length + kvLen;
      h = concat(tag(6, LEN), varint(listLen), tag(1, LEN), varint(kvLen), key, tag(2, LEN), varint(length));
    } else {
      const arrLen = 1 + varint(length).length + length;
      h = concat(tag(5, LEN), varint(arrLen), tag(1, LEN), varint(length));
    }
    headers[level] = h;
    length += h.length;
  }
  headers.push(inner);
  const body = concatAll(headers);
  return logsRequest([{ service: "deep", records: [logRecord({ timeMs: Date.now(), body })] }]);
}
