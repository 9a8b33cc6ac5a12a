/**
 * A small fake of the AWS Lambda Runtime API (next / response / error / init error) on 127.0.0.1, for
 * tests that run a custom runtime as a subprocess: `invoke` queues an event and resolves with what the
 * runtime posted for it.
 */
import { Buffer } from "node:buffer";

/** What the runtime posted for an invocation. */
export interface Outcome {
  kind: "response" | "error";
  body: Record<string, unknown>;
  errorType: string | null;
}

interface Pending {
  id: string;
  event: unknown;
  done: (outcome: Outcome) => void;
}

/** The Runtime API on 127.0.0.1 (Deno.serve): queue invocations with `invoke`, read what was posted. */
export class FakeRuntimeApi {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #queue: Pending[] = [];
  readonly #waiting: ((next: Pending | undefined) => void)[] = [];
  readonly #pending = new Map<string, Pending>();
  readonly initErrors: { body: Record<string, unknown>; errorType: string | null }[] = [];
  #onInitError: (() => void) | undefined;
  #seq = 0;

  constructor() {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (r) => this.#route(r));
  }

  /** `host:port`, as in AWS_LAMBDA_RUNTIME_API. */
  get address(): string {
    return `127.0.0.1:${this.#server.addr.port}`;
  }

  /** Queues one invocation and waits for the runtime's response or error. */
  invoke(event: unknown, timeoutMs = 30_000): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no answer to invocation within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const pending: Pending = {
        id: `req-${++this.#seq}`,
        event,
        done: (outcome) => {
          clearTimeout(timer);
          resolve(outcome);
        },
      };
      this.#pending.set(pending.id, pending);
      const waiter = this.#waiting.shift();
      if (waiter) waiter(pending);
      else this.#queue.push(pending);
    });
  }

  /** Resolves at the first POST to /runtime/init/error. */
  initError(timeoutMs = 30_000): Promise<void> {
    if (this.initErrors.length) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no init error reported")), timeoutMs);
      this.#onInitError = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async close(): Promise<void> {
    for (const waiter of this.#waiting.splice(0)) waiter(undefined);
    await this.#server.shutdown();
  }

  async #route(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (request.method === "GET" && path === "/2018-06-01/runtime/invocation/next") {
      const next = this.#queue.shift() ??
        await new Promise<Pending | undefined>((r) => this.#waiting.push(r));
      if (!next) return new Response("shutting down", { status: 500 });
      return Response.json(next.event, {
        headers: {
          "lambda-runtime-aws-request-id": next.id,
          "lambda-runtime-deadline-ms": String(Date.now() + 30_000),
          "lambda-runtime-invoked-function-arn":
            "arn:aws:lambda:us-east-1:123456789012:function:otlp2parquet",
          "lambda-runtime-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
        },
      });
    }
    const match = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(path);
    if (request.method === "POST" && match) {
      const pending = this.#pending.get(decodeURIComponent(match[1]));
      if (!pending) return Response.json({ errorMessage: "unknown request id" }, { status: 400 });
      this.#pending.delete(pending.id);
      pending.done({
        kind: match[2] as Outcome["kind"],
        body: await request.json(),
        errorType: request.headers.get("lambda-runtime-function-error-type"),
      });
      return Response.json({ status: "OK" }, { status: 202 });
    }
    if (request.method === "POST" && path === "/2018-06-01/runtime/init/error") {
      this.initErrors.push({
        body: await request.json(),
        errorType: request.headers.get("lambda-runtime-function-error-type"),
      });
      this.#onInitError?.();
      return Response.json({ status: "OK" }, { status: 202 });
    }
    return new Response("not found", { status: 404 });
  }
}

/**
 * A Function URL event (payload format 2.0) for `path`: the body base64-encoded, except for `GET`.
 * `headers` are added to the event's (e.g. `authorization`).
 */
export function functionUrlEvent(
  path: string,
  body: Uint8Array,
  contentType: string,
  method = "POST",
  headers: Record<string, string> = {},
): unknown {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers: {
      "content-type": contentType,
      host: "abc123.lambda-url.us-east-1.on.aws",
      "x-forwarded-proto": "https",
      ...headers,
    },
    requestContext: {
      domainName: "abc123.lambda-url.us-east-1.on.aws",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" },
      requestId: "r",
      routeKey: "$default",
      stage: "$default",
      timeEpoch: Date.now(),
    },
    body: method === "GET" ? undefined : Buffer.from(body).toString("base64"),
    isBase64Encoded: method !== "GET",
  };
}
