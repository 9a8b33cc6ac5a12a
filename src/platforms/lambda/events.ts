/**
 * Lambda HTTP events to `Request` and `Response` back to the result shape of the same integration:
 * API Gateway HTTP API and Function URLs (payload format 2.0), API Gateway REST APIs (1.0) and
 * Application Load Balancer target groups. Bodies arrive as strings, base64 when `isBase64Encoded`;
 * binary response bodies (OTLP protobuf) go back base64-encoded.
 *
 * The request URL is a fixed origin plus the event's path and query: the handler routes by path only,
 * and a Host header (the client's to choose) must not decide whether a URL can be built at all.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { statusResponse } from "../../http/otlp_response.ts";

/** The origin of every request built from an event (`.invalid` never resolves: RFC 2606). */
export const EVENT_ORIGIN = "https://lambda.invalid";

/** RFC 3986 host (reg-name, IPv4 or bracketed IPv6) with an optional port, as a Host header carries it. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::\d{1,5})?$/;

/** API Gateway HTTP API or Lambda Function URL event, payload format 2.0. */
export interface HttpApiV2Event {
  version: "2.0";
  rawPath: string;
  rawQueryString?: string;
  cookies?: string[];
  /** Lower-case names; repeated headers joined with commas. */
  headers?: Record<string, string | undefined>;
  requestContext: {
    http: { method: string; path?: string };
    domainName?: string;
    /** `$default` for Function URLs and default stages; a named stage is part of `rawPath`. */
    stage?: string;
  };
  body?: string;
  isBase64Encoded?: boolean;
}

/** API Gateway REST API proxy event, payload format 1.0. */
export interface RestApiV1Event {
  version?: "1.0";
  httpMethod: string;
  /** The resource path, without the stage. */
  path: string;
  headers?: Record<string, string | undefined> | null;
  multiValueHeaders?: Record<string, string[] | undefined> | null;
  queryStringParameters?: Record<string, string | undefined> | null;
  multiValueQueryStringParameters?: Record<string, string[] | undefined> | null;
  requestContext?: { stage?: string; domainName?: string; elb?: undefined };
  body?: string | null;
  isBase64Encoded?: boolean;
}

/** Application Load Balancer event (multi-value headers on or off for the target group). */
export interface AlbEvent {
  httpMethod: string;
  path: string;
  headers?: Record<string, string | undefined>;
  multiValueHeaders?: Record<string, string[] | undefined>;
  /** Still percent-encoded as the client sent them. */
  queryStringParameters?: Record<string, string | undefined>;
  multiValueQueryStringParameters?: Record<string, string[] | undefined>;
  requestContext: { elb: { targetGroupArn: string } };
  body?: string | null;
  isBase64Encoded?: boolean;
}

/** Any HTTP event this runtime understands. */
export type LambdaHttpEvent = HttpApiV2Event | RestApiV1Event | AlbEvent;

/** Which integration an event came from. */
export type EventKind = "v2" | "v1" | "alb";

/** The result of a payload 2.0 integration. */
export interface HttpApiV2Result {
  statusCode: number;
  headers: Record<string, string>;
  cookies?: string[];
  body: string;
  isBase64Encoded: boolean;
}

/** The result of a REST API proxy integration. */
export interface RestApiV1Result {
  statusCode: number;
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
  body: string;
  isBase64Encoded: boolean;
}

/** The result for a load balancer: multi-value headers exactly when the event had them. */
export interface AlbResult {
  statusCode: number;
  statusDescription: string;
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  body: string;
  isBase64Encoded: boolean;
}

/** Tells the integration of an event; throws TypeError for anything that is not an HTTP event. */
export function eventKind(event: unknown): EventKind {
  if (typeof event === "object" && event !== null) {
    const e = event as Record<string, unknown>;
    const context = e.requestContext as Record<string, unknown> | undefined;
    if (e.version === "2.0" && typeof e.rawPath === "string" && typeof context?.http === "object") {
      return "v2";
    }
    if (typeof e.httpMethod === "string" && typeof e.path === "string") {
      return typeof context?.elb === "object" && context.elb !== null ? "alb" : "v1";
    }
  }
  throw new TypeError(
    "not an HTTP event: expected API Gateway (HTTP API or REST), a Function URL or an ALB target group event",
  );
}

/**
 * The `Request` an HTTP event describes, at {@linkcode EVENT_ORIGIN} plus the event's path and query.
 *
 * @throws {TypeError} when the event is not an HTTP event (the invocation fails).
 * @throws {SyntaxError} when it is one, but malformed: a bad Host header, or a header name or value no
 * `Request` can carry (the client gets 400, see {@linkcode handleEvent}).
 */
export function eventToRequest(event: LambdaHttpEvent): Request {
  const kind = eventKind(event);
  const headers = new Headers();
  const add = (name: string, value: string, append: boolean) => {
    try {
      if (append) headers.append(name, value);
      else headers.set(name, value);
    } catch {
      throw new SyntaxError(`malformed header ${JSON.stringify(name.slice(0, 64))}`);
    }
  };
  let method: string;
  let path: string;
  let query: string;
  if (kind === "v2") {
    const e = event as HttpApiV2Event;
    method = e.requestContext.http.method;
    path = stripStage(e.rawPath, e.requestContext.stage);
    query = e.rawQueryString ?? "";
    for (const [name, value] of Object.entries(e.headers ?? {})) {
      if (value !== undefined) add(name, value, false);
    }
    if (e.cookies?.length) add("cookie", e.cookies.join("; "), false);
  } else {
    const e = event as RestApiV1Event | AlbEvent;
    method = e.httpMethod;
    path = e.path;
    // A REST API test invocation (and some proxies) sends `multiValueHeaders: {}` beside full `headers`.
    if (e.multiValueHeaders && Object.keys(e.multiValueHeaders).length > 0) {
      for (const [name, values] of Object.entries(e.multiValueHeaders)) {
        for (const value of values ?? []) add(name, value, true);
      }
    } else {
      for (const [name, value] of Object.entries(e.headers ?? {})) {
        if (value !== undefined) add(name, value, false);
      }
    }
    query = queryOf(e, kind === "alb");
  }
  const host = headers.get("host");
  if (host !== null && !HOST.test(host)) throw new SyntaxError("malformed Host header");
  const url = `${EVENT_ORIGIN}${path.startsWith("/") ? "" : "/"}${path}${query ? `?${query}` : ""}`;

  const hasBody = method !== "GET" && method !== "HEAD";
  let body: Uint8Array<ArrayBuffer> | undefined;
  if (hasBody && typeof event.body === "string") {
    body = event.isBase64Encoded
      ? new Uint8Array(Buffer.from(event.body, "base64"))
      : encoder.encode(event.body);
  }
  // The decoded length, whatever the integration claimed: the handler trusts it for its early 413.
  headers.delete("content-length");
  if (body) headers.set("content-length", String(body.byteLength));
  try {
    return new Request(url, { method, headers, body: body ?? (hasBody ? new Uint8Array(0) : undefined) });
  } catch (error) {
    // An invalid method or a path no URL can hold: the event's fault, not the runtime's.
    throw new SyntaxError(`malformed request: ${(error as Error).message}`.slice(0, 200));
  }
}

/**
 * Answers one HTTP event with `handler`, in the result shape of its integration. A malformed event gets
 * 400 with a `google.rpc.Status`; only an event that is not HTTP at all fails the invocation (TypeError).
 */
export async function handleEvent(
  event: LambdaHttpEvent,
  handler: (request: Request) => Promise<Response>,
): Promise<HttpApiV2Result | RestApiV1Result | AlbResult> {
  let request: Request;
  try {
    request = eventToRequest(event);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    return await toLambdaResult(statusResponse(400, error.message), event);
  }
  return await toLambdaResult(await handler(request), event);
}

/** The result for `event`'s integration carrying `response`. */
export async function toLambdaResult(
  response: Response,
  event: LambdaHttpEvent,
): Promise<HttpApiV2Result | RestApiV1Result | AlbResult> {
  const kind = eventKind(event);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const contentType = response.headers.get("content-type");
  // Binary by its type even when empty, so the integration never re-encodes a protobuf body as text.
  const binary = contentType === null ? bytes.length > 0 : !isText(contentType);
  const body = binary ? Buffer.from(bytes).toString("base64") : decoder.decode(bytes);
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  const cookies = response.headers.getSetCookie();
  response.headers.forEach((value, name) => {
    if (name === "set-cookie") return;
    single[name] = value;
    multi[name] = [value];
  });
  if (cookies.length) multi["set-cookie"] = cookies;
  if (kind === "v2") {
    return {
      statusCode: response.status,
      headers: single,
      ...(cookies.length ? { cookies } : {}),
      body,
      isBase64Encoded: binary,
    };
  }
  if (kind === "v1") {
    return {
      statusCode: response.status,
      headers: single,
      multiValueHeaders: multi,
      body,
      isBase64Encoded: binary,
    };
  }
  const statusDescription = `${response.status} ${response.statusText || REASONS[response.status] || ""}`
    .trim();
  // A target group with multi-value headers on ignores `headers`, and the other way round.
  const multiValue = (event as AlbEvent).multiValueHeaders !== undefined;
  if (!multiValue && cookies.length) single["set-cookie"] = cookies[cookies.length - 1];
  return {
    statusCode: response.status,
    statusDescription,
    ...(multiValue ? { multiValueHeaders: multi } : { headers: single }),
    body,
    isBase64Encoded: binary,
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  204: "No Content",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

function isText(contentType: string | null): boolean {
  if (!contentType) return false;
  const type = contentType.split(";")[0].trim().toLowerCase();
  return type.startsWith("text/") ||
    /^application\/(?:json|x-ndjson|xml|javascript)$|\+(?:json|xml)$/.test(type);
}

/** A named stage appears in an HTTP API's `rawPath` (`/prod/v1/logs`); the routes do not know it. */
function stripStage(rawPath: string, stage: string | undefined): string {
  if (!stage || stage === "$default") return rawPath;
  const prefix = `/${stage}`;
  if (rawPath === prefix) return "/";
  return rawPath.startsWith(`${prefix}/`) ? rawPath.slice(prefix.length) : rawPath;
}

function queryOf(event: RestApiV1Event | AlbEvent, alreadyEncoded: boolean): string {
  const pairs: [string, string][] = [];
  if (event.multiValueQueryStringParameters) {
    for (const [name, values] of Object.entries(event.multiValueQueryStringParameters)) {
      for (const value of values ?? []) pairs.push([name, value]);
    }
  } else {
    for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
      if (value !== undefined) pairs.push([name, value]);
    }
  }
  if (alreadyEncoded) return pairs.map(([name, value]) => `${name}=${value}`).join("&");
  return new URLSearchParams(pairs).toString();
}
