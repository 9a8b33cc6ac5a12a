/**
 * Walks the envelope of an OTLP/JSON export request (request → Resource* → Scope* → items), the JSON
 * twin of `proto_request.ts`, handing each item object to a signal-specific decoder.
 *
 * @module
 */

import { DecodeError } from "./errors.ts";
import { arrayField, jsonEnvelope, type JsonObject, objectField, stringField } from "./json_values.ts";
import type { EnvelopeNames, ScopeContext } from "./proto_request.ts";
import { AttrScratch } from "./values.ts";

const encoder = new TextEncoder();

/** snake_case spelling of a lowerCamelCase field name (proto3 JSON parsers accept both). */
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

function rethrow(e: unknown, segment: string): never {
  if (e instanceof DecodeError) throw e.within(segment);
  throw e;
}

/** Calls `item(obj, ctx)` for every item of a parsed OTLP/JSON request. */
export function walkJsonRequest(
  request: unknown,
  names: EnvelopeNames,
  item: (obj: JsonObject, ctx: ScopeContext) => void,
): void {
  if (typeof request !== "object" || request === null || Array.isArray(request)) {
    throw new DecodeError("expected a JSON object");
  }
  const scratch = new AttrScratch();
  const resources = arrayField(request as JsonObject, names.resources, snake(names.resources));
  for (let ri = 0; ri < resources.length; ri++) {
    try {
      const rs = resources[ri];
      if (typeof rs !== "object" || rs === null || Array.isArray(rs)) {
        throw new DecodeError("expected an object");
      }
      const resource = jsonEnvelope(objectField(rs, "resource"), false, scratch, "resource");
      const service = resource.attributes.lookup("service.name") ?? "";
      const ctx: ScopeContext = {
        resource,
        resourceSchemaUrl: encoder.encode(stringField(rs, "schemaUrl", "schema_url")),
        service,
        serviceBytes: encoder.encode(service),
        scope: resource,
        scopeSchemaUrl: new Uint8Array(0),
      };
      const scopes = arrayField(rs, names.scopes, snake(names.scopes));
      for (let si = 0; si < scopes.length; si++) {
        try {
          const ss = scopes[si];
          if (typeof ss !== "object" || ss === null || Array.isArray(ss)) {
            throw new DecodeError("expected an object");
          }
          ctx.scope = jsonEnvelope(objectField(ss, "scope"), true, scratch, "scope");
          ctx.scopeSchemaUrl = encoder.encode(stringField(ss, "schemaUrl", "schema_url"));
          const items = arrayField(ss, names.items, snake(names.items));
          for (let ii = 0; ii < items.length; ii++) {
            try {
              const it = items[ii];
              if (typeof it !== "object" || it === null || Array.isArray(it)) {
                throw new DecodeError("expected an object");
              }
              item(it, ctx);
            } catch (e) {
              rethrow(e, `${names.items}[${ii}]`);
            }
          }
        } catch (e) {
          rethrow(e, `${names.scopes}[${si}]`);
        }
      }
    } catch (e) {
      rethrow(e, `${names.resources}[${ri}]`);
    }
  }
}
