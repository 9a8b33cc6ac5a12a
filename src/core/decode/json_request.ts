/**
 * Walks the envelope of an OTLP/JSON export request (request → Resource* → Scope* → items), the JSON
 * twin of `proto_request.ts`, handing each item object to a signal-specific decoder.
 *
 * @module
 */

import { type DecodeMeter, runSteps } from "./decode_limits.ts";
import { DecodeError } from "../errors.ts";
import { arrayField, jsonEnvelope, type JsonObject, objectField, stringField } from "./json_values.ts";
import { enterResource, type EnvelopeNames, newScopeContext, type ScopeContext } from "./proto_request.ts";
import type { Envelope } from "./proto_values.ts";
import { AttrScratch } from "../table/values.ts";

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** snake_case spelling of a lowerCamelCase field name (proto3 JSON parsers accept both). */
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

function rethrow(e: unknown, segment: string): never {
  if (e instanceof DecodeError) throw e.within(segment);
  throw e;
}

/** Whether `o` has no own enumerable properties (without allocating a key list). */
function isEmptyObject(o: JsonObject): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return false;
  return true;
}

/** Decodes parsed OTLP/JSON requests of one signal one at a time into one result. */
export interface JsonDecoder<T> {
  /** Decodes one parsed request (`pos`: where it starts in the body); yields when a pause is due. */
  walk(request: unknown, pos?: number): Generator<void, void>;
  /** What all requests walked decoded to. */
  result(): T;
}

/** Decodes `requests` to the end with a decoder of `JsonDecoder`. */
export function decodeAllJson<T>(decoder: JsonDecoder<T>, requests: readonly unknown[]): T {
  for (const request of requests) runSteps(decoder.walk(request));
  return decoder.result();
}

/**
 * Walks parsed OTLP/JSON requests of one signal (a JSON body, or each line of a JSON Lines body) with
 * one scratch, one context and one empty envelope per kind for all of them: a request or an envelope
 * with nothing in it costs a few property reads, not new buffers.
 */
export class JsonRequestWalker {
  private readonly scratch = new AttrScratch();
  private emptyResource: Envelope | undefined;
  private emptyScope: Envelope | undefined;
  private readonly snakeNames: EnvelopeNames;
  private readonly ctx: ScopeContext = newScopeContext();

  /**
   * `item(obj, ctx)` decodes one item; `meter` counts envelopes and items (as records when
   * `itemsAreRecords`, as for logs and traces; metrics count their data points themselves).
   */
  constructor(
    private readonly names: EnvelopeNames,
    private readonly item: (obj: JsonObject, ctx: ScopeContext) => void,
    private readonly meter: DecodeMeter,
    private readonly itemsAreRecords: boolean,
  ) {
    this.snakeNames = {
      resources: snake(names.resources),
      scopes: snake(names.scopes),
      items: snake(names.items),
    };
  }

  private envelope(o: JsonObject | undefined, isScope: boolean, name: string): Envelope {
    if (o === undefined || isEmptyObject(o)) {
      if (isScope) return this.emptyScope ??= this.decode(undefined, true, name);
      return this.emptyResource ??= this.decode(undefined, false, name);
    }
    return this.decode(o, isScope, name);
  }

  private decode(o: JsonObject | undefined, isScope: boolean, name: string): Envelope {
    this.meter.stats.envelopesDecoded++;
    return jsonEnvelope(o, isScope, this.scratch, name);
  }

  /** Calls `item` for every item of one parsed request; yields whenever the meter says a pause is due. */
  *walk(request: unknown, pos = 0): Generator<void, void> {
    if (typeof request !== "object" || request === null || Array.isArray(request)) {
      throw new DecodeError("expected a JSON object");
    }
    const { names, snakeNames, meter, ctx } = this;
    const resources = arrayField(request as JsonObject, names.resources, snakeNames.resources);
    for (let ri = 0; ri < resources.length; ri++) {
      try {
        const rs = resources[ri];
        if (typeof rs !== "object" || rs === null || Array.isArray(rs)) {
          throw new DecodeError("expected an object");
        }
        meter.envelope();
        enterResource(ctx, this.envelope(objectField(rs, "resource"), false, "resource"));
        const rUrl = stringField(rs, "schemaUrl", "schema_url");
        ctx.resourceSchemaUrl = rUrl === "" ? EMPTY : encoder.encode(rUrl);
        const scopes = arrayField(rs, names.scopes, snakeNames.scopes);
        for (let si = 0; si < scopes.length; si++) {
          try {
            const ss = scopes[si];
            if (typeof ss !== "object" || ss === null || Array.isArray(ss)) {
              throw new DecodeError("expected an object");
            }
            meter.envelope();
            ctx.scope = this.envelope(objectField(ss, "scope"), true, "scope");
            const sUrl = stringField(ss, "schemaUrl", "schema_url");
            ctx.scopeSchemaUrl = sUrl === "" ? EMPTY : encoder.encode(sUrl);
            const items = arrayField(ss, names.items, snakeNames.items);
            for (let ii = 0; ii < items.length; ii++) {
              try {
                const it = items[ii];
                if (typeof it !== "object" || it === null || Array.isArray(it)) {
                  throw new DecodeError("expected an object");
                }
                this.item(it, ctx);
              } catch (e) {
                rethrow(e, `${names.items}[${ii}]`);
              }
              if (this.itemsAreRecords) meter.record();
              else meter.items(1);
              if (meter.pauseDue(pos)) {
                meter.paused(pos);
                yield;
              }
            }
          } catch (e) {
            rethrow(e, `${names.scopes}[${si}]`);
          }
          if (meter.pauseDue(pos)) {
            meter.paused(pos);
            yield;
          }
        }
      } catch (e) {
        rethrow(e, `${names.resources}[${ri}]`);
      }
    }
  }
}
