/**
 * Walks the envelope of an OTLP/JSON export request (request → Resource* → Scope* → items) in the
 * bytes of a checked body (json_scan.ts), the JSON twin of `proto_request.ts`, handing each item's
 * position to a signal-specific decoder. Fields may come in any order: each ResourceX and ScopeX object
 * is scanned for its fields first (its envelope and schema URL may follow the items), then its items are
 * walked, so nothing is collected up front and memory does not grow with envelopes or items.
 *
 * Also the body-level entry points: a JSON body, or a JSON Lines body a line at a time.
 *
 * @module
 */

import { DecodeMeter, PRESIZE_MAX_ROWS, runSteps, UNCAPPED } from "./decode_limits.ts";
import { DecodeError } from "../errors.ts";
import { checkJson, FieldNames, nextElement, pick, scanEnd, scanFields, ws } from "./json_scan.ts";
import { arrayAt, emptyObjectAt, envelopeAt, objectAt, utf8At } from "./json_values.ts";
import { enterResource, type EnvelopeNames, newScopeContext, type ScopeContext } from "./proto_request.ts";
import type { Envelope } from "./proto_values.ts";
import type { Rows } from "../table/rows.ts";
import { AttrScratch } from "../table/values.ts";
import { isUtf8 } from "./wire.ts";

function rethrow(e: unknown, segment: string): never {
  if (e instanceof DecodeError) throw e.within(segment);
  throw e;
}

/**
 * Decodes one item (a log record, span or metric) whose object starts at `buf[p]`; returns the position
 * after it.
 */
export type JsonItem = (buf: Uint8Array, p: number, ctx: ScopeContext) => number;

/** Decodes OTLP/JSON requests of one signal one at a time into one result. */
export interface JsonDecoder<T> {
  /**
   * Decodes the request whose value starts at `buf[p]` in a checked JSON body; `base` is where `buf`
   * starts in the whole body (pauses are placed by body position). Yields when a pause is due.
   */
  walk(buf: Uint8Array, p: number, base: number): Generator<void, void>;
  /** What all requests walked decoded to. */
  result(): T;
}

/** Where walkItems is in a scope's item array: the next item (-1: none left), and items done. */
interface ItemsAt {
  q: number;
  n: number;
}

/**
 * Walks OTLP/JSON requests of one signal (a JSON body, or each line of a JSON Lines body) with one
 * scratch, one context and one empty envelope per kind for all of them: a request or an envelope with
 * nothing in it costs a few byte reads, not new buffers.
 */
export class JsonRequestWalker {
  private readonly scratch = new AttrScratch();
  private emptyResource: Envelope | undefined;
  private emptyScope: Envelope | undefined;
  private readonly ctx: ScopeContext = newScopeContext();
  private readonly top: FieldNames;
  private readonly resourceFields: FieldNames;
  private readonly scopeFields: FieldNames;
  private readonly at = new Int32Array(6);

  /**
   * `item` decodes one item; `meter` counts envelopes and items (as records when `itemsAreRecords`, as
   * for logs and traces; metrics count their data points themselves).
   */
  constructor(
    private readonly names: EnvelopeNames,
    private readonly item: JsonItem,
    private readonly meter: DecodeMeter,
    private readonly itemsAreRecords: boolean,
  ) {
    this.top = new FieldNames([names.resources]);
    this.resourceFields = new FieldNames(["resource", names.scopes, "schemaUrl"]);
    this.scopeFields = new FieldNames(["scope", names.items, "schemaUrl"]);
  }

  private envelope(buf: Uint8Array, p: number, isScope: boolean, name: string): Envelope {
    if (emptyObjectAt(buf, p)) {
      if (isScope) return this.emptyScope ??= this.decode(buf, -1, true, name);
      return this.emptyResource ??= this.decode(buf, -1, false, name);
    }
    return this.decode(buf, p, isScope, name);
  }

  private decode(buf: Uint8Array, p: number, isScope: boolean, name: string): Envelope {
    this.meter.stats.envelopesDecoded++;
    return envelopeAt(buf, p, isScope, this.scratch, name, this.meter);
  }

  /** Calls `item` for every item of one request; yields whenever the meter says a pause is due. */
  *walk(buf: Uint8Array, p: number, base: number): Generator<void, void> {
    if (buf[p] !== 0x7b) throw new DecodeError("expected a JSON object");
    const { names, meter, ctx, at } = this;
    scanFields(buf, p, this.top, at, true);
    const list = pick(at, 0);
    if (!arrayAt(buf, list, names.resources)) return;
    let ri = 0;
    for (let q = nextElement(buf, list + 1); q >= 0; ri++) {
      let end = 0;
      try {
        if (buf[q] !== 0x7b) throw new DecodeError("expected an object");
        meter.envelope();
        scanFields(buf, q, this.resourceFields, at, true);
        end = scanEnd.p;
        const resource = pick(at, 0), scopes = pick(at, 1), url = pick(at, 2);
        objectAt(buf, resource, "resource");
        enterResource(ctx, this.envelope(buf, resource, false, "resource"));
        ctx.resourceSchemaUrl = utf8At(buf, url, "schemaUrl");
        if (arrayAt(buf, scopes, names.scopes)) {
          let si = 0;
          for (let s = nextElement(buf, scopes + 1); s >= 0; si++) {
            let send = 0;
            try {
              if (buf[s] !== 0x7b) throw new DecodeError("expected an object");
              meter.envelope();
              scanFields(buf, s, this.scopeFields, at, true);
              send = scanEnd.p;
              const scope = pick(at, 0), items = pick(at, 1), surl = pick(at, 2);
              objectAt(buf, scope, "scope");
              ctx.scope = this.envelope(buf, scope, true, "scope");
              ctx.scopeSchemaUrl = utf8At(buf, surl, "schemaUrl");
              if (arrayAt(buf, items, names.items)) {
                const state: ItemsAt = { q: nextElement(buf, items + 1), n: 0 };
                while (state.q >= 0) {
                  this.walkItems(buf, state, base);
                  if (state.q >= 0) {
                    meter.paused(base + state.q);
                    yield;
                  }
                }
              }
            } catch (e) {
              rethrow(e, `${names.scopes}[${si}]`);
            }
            if (meter.pauseDue(base + send)) {
              meter.paused(base + send);
              yield;
            }
            s = nextElement(buf, send);
          }
        }
      } catch (e) {
        rethrow(e, `${names.resources}[${ri}]`);
      }
      q = nextElement(buf, end);
    }
  }

  /**
   * Hands the items from `at.q` on to `item` until the array ends or a pause is due, and updates `at`.
   * A plain method rather than part of the generator, so that the hot loop is optimised like any other.
   */
  private walkItems(buf: Uint8Array, at: ItemsAt, base: number): void {
    const { meter, ctx, item } = this, records = this.itemsAreRecords;
    let q = at.q, n = at.n;
    while (q >= 0) {
      let end: number;
      try {
        if (buf[q] !== 0x7b) throw new DecodeError("expected an object");
        end = item(buf, q, ctx);
      } catch (e) {
        rethrow(e, `${this.names.items}[${n}]`);
      }
      n++;
      if (records) meter.record();
      else meter.items(1);
      q = nextElement(buf, end);
      if (meter.pauseDue(base + end)) break;
    }
    at.q = q, at.n = n;
  }
}

/**
 * A decoder of one signal's requests into the rows of `c` (its columns, which count with `meter`),
 * `item` decoding each item as one record.
 */
export function rowsJsonDecoder(
  c: { readonly rows: Rows; meter: DecodeMeter },
  names: EnvelopeNames,
  item: JsonItem,
  meter: DecodeMeter,
): JsonDecoder<Rows> {
  c.meter = meter;
  meter.measure = () => c.rows.byteLength();
  const walker = new JsonRequestWalker(names, item, meter, true);
  return { walk: (buf, p, base) => walker.walk(buf, p, base), result: () => c.rows };
}

/**
 * Rows a JSON body of `bytes` bytes is sized for up front: a record takes 600 bytes or more of OTLP/JSON
 * (ids, times, a few attributes), so this seldom reserves more than the body fills; at most
 * PRESIZE_MAX_ROWS.
 */
export function jsonRowsEstimate(bytes: number): number {
  return Math.min(PRESIZE_MAX_ROWS, Math.max(64, Math.ceil(bytes / 600)));
}

/** Where a JSON body starts: after a UTF-8 byte order mark, which decoding the text used to drop. */
function bomEnd(bytes: Uint8Array): number {
  return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
}

/**
 * Calls `each(line, base)` for every non-blank line of a JSON Lines body, checked, in order: `line` is
 * a view of the line's bytes, `base` where it starts. Whitespace between lines is skipped a byte at a
 * time; a line of other (Unicode) whitespace is blank too, as String.prototype.trim() says. Every line
 * counts as an envelope of `meter`; a line that is not JSON fails with its number.
 */
function* eachJsonLine(
  bytes: Uint8Array,
  meter: DecodeMeter,
  each: (line: Uint8Array, base: number) => Generator<void, void>,
): Generator<void, void> {
  if (!isUtf8(bytes, 0, bytes.length)) throw new DecodeError("body is not valid UTF-8");
  const n = bytes.length;
  let pos = bomEnd(bytes), line = 1;
  while (pos < n) {
    const c = bytes[pos];
    if (c === 0x0a) {
      line++, pos++;
      continue;
    }
    if (c === 0x20 || c === 0x09 || c === 0x0d) {
      pos++;
      continue;
    }
    let end = bytes.indexOf(0x0a, pos);
    if (end < 0) end = n;
    const lineBytes = bytes.subarray(pos, end);
    if (c < 0x80 || new TextDecoder().decode(lineBytes).trim() !== "") {
      meter.envelope();
      try {
        checkJson(lineBytes, false);
      } catch (e) {
        if (e instanceof DecodeError) {
          throw new DecodeError(`invalid JSON on line ${line}: ${e.problem.replace(/^invalid JSON: /, "")}`);
        }
        throw e;
      }
      yield* each(lineBytes, pos);
      if (meter.pauseDue(end)) {
        meter.paused(end);
        yield;
      }
    }
    pos = end;
  }
}

/** The decode of a JSON (`lines` false) or JSON Lines body with `decoder`, as steps. */
export function* decodeJsonBody<T>(
  decoder: JsonDecoder<T>,
  bytes: Uint8Array,
  lines: boolean,
  meter: DecodeMeter,
): Generator<void, T> {
  if (lines) yield* eachJsonLine(bytes, meter, (line, base) => decoder.walk(line, ws(line, 0), base));
  else {
    const start = bomEnd(bytes), body = start > 0 ? bytes.subarray(start) : bytes;
    checkJson(body);
    yield* decoder.walk(body, ws(body, 0), start);
  }
  return decoder.result();
}

/**
 * Checks a JSON (`lines` false) or JSON Lines body as decoding would (UTF-8, JSON's grammar, each line
 * of JSON Lines by itself): throws the DecodeError that names the problem, and its line.
 */
export function checkJsonBody(bytes: Uint8Array, lines: boolean): void {
  const none: JsonDecoder<void> = { *walk() {}, result() {} };
  runSteps(decodeJsonBody(none, bytes, lines, new DecodeMeter(UNCAPPED)));
}

/**
 * Decodes requests held as JS values (JSON made by code, tests) to the end with `decoder`: each is
 * written as JSON text and decoded as a body, so they take the same path as bytes from the wire.
 */
export function decodeAllJson<T>(
  decoder: JsonDecoder<T>,
  requests: readonly unknown[],
  meter: DecodeMeter,
): T {
  const encoder = new TextEncoder();
  for (const r of requests) {
    runSteps(decodeJsonBody(decoder, encoder.encode(JSON.stringify(r)), false, meter));
  }
  return decoder.result();
}
