/**
 * The AWS Lambda Runtime API client of a custom runtime (`provided.al2`, `provided.al2023`): fetch the
 * next invocation, answer it (or report its error), and report failures of the initialisation.
 * One invocation at a time, as Lambda runs them: the loop asks for the next event only after the
 * previous answer was posted, and Lambda may freeze the process right after that post.
 *
 * @module
 */

const API_VERSION = "2018-06-01";

/** What Lambda tells about one invocation. */
export interface InvocationContext {
  /** `Lambda-Runtime-Aws-Request-Id`. */
  readonly requestId: string;
  /** `Lambda-Runtime-Deadline-Ms`: when Lambda stops the invocation, in ms since the epoch (NaN if absent). */
  readonly deadlineMs: number;
  /** `Lambda-Runtime-Invoked-Function-Arn`. */
  readonly functionArn: string;
  /** `Lambda-Runtime-Trace-Id` (X-Ray), when tracing is on. */
  readonly traceId: string | undefined;
}

/** Handles one event; its result is serialised as JSON. A rejection is posted as the invocation's error. */
export type InvocationHandler = (event: unknown, context: InvocationContext) => Promise<unknown>;

/** Options of {@linkcode RuntimeClient}. */
export interface RuntimeClientOptions {
  /** The fetch to use. Default: globalThis.fetch. */
  fetch?: typeof fetch;
}

/** The body Lambda expects for errors. */
export interface LambdaError {
  errorType: string;
  errorMessage: string;
  stackTrace: string[];
}

/** Calls of the Runtime API at `host:port` (the `AWS_LAMBDA_RUNTIME_API` variable). */
export class RuntimeClient {
  readonly #base: string;
  readonly #fetch: typeof fetch;

  constructor(runtimeApi: string, options: RuntimeClientOptions = {}) {
    if (!runtimeApi) throw new RangeError("the Runtime API address is empty (AWS_LAMBDA_RUNTIME_API)");
    this.#base = `http://${runtimeApi}/${API_VERSION}/runtime`;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** Waits (long poll, no timeout) for the next invocation. */
  async next(): Promise<{ event: unknown; context: InvocationContext }> {
    const response = await this.#fetch(`${this.#base}/invocation/next`);
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`Runtime API answered ${response.status} to next: ${text.slice(0, 500)}`);
    }
    const requestId = response.headers.get("lambda-runtime-aws-request-id");
    if (!requestId) throw new Error("Runtime API sent an invocation without Lambda-Runtime-Aws-Request-Id");
    const context: InvocationContext = {
      requestId,
      deadlineMs: Number(response.headers.get("lambda-runtime-deadline-ms") ?? NaN),
      functionArn: response.headers.get("lambda-runtime-invoked-function-arn") ?? "",
      traceId: response.headers.get("lambda-runtime-trace-id") ?? undefined,
    };
    let event: unknown;
    try {
      event = text === "" ? undefined : JSON.parse(text);
    } catch {
      // Lambda only sends JSON, but a broken event must fail this invocation, not the runtime.
      event = text;
    }
    return { event, context };
  }

  /** Posts the invocation's result. */
  async respond(requestId: string, result: unknown): Promise<void> {
    await this.#post(`invocation/${encodeURIComponent(requestId)}/response`, JSON.stringify(result ?? null));
  }

  /** Posts the invocation's error. */
  async fail(requestId: string, error: unknown): Promise<void> {
    const body = toLambdaError(error);
    await this.#post(
      `invocation/${encodeURIComponent(requestId)}/error`,
      JSON.stringify(body),
      body.errorType,
    );
  }

  /** Reports that the runtime could not start; Lambda then fails the pending invocation and retries the init. */
  async initError(error: unknown): Promise<void> {
    const body = toLambdaError(error);
    await this.#post("init/error", JSON.stringify(body), body.errorType);
  }

  async #post(path: string, body: string, errorType?: string): Promise<void> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (errorType) headers["lambda-runtime-function-error-type"] = errorType;
    const response = await this.#fetch(`${this.#base}/${path}`, { method: "POST", headers, body });
    const text = await response.text();
    if (!response.ok) {
      throw new RuntimeApiError(`Runtime API answered ${response.status} to ${path}: ${text.slice(0, 500)}`, {
        status: response.status,
      });
    }
  }
}

/** The Runtime API refused a post (e.g. 413 for a result above Lambda's 6 MB). */
export class RuntimeApiError extends Error {
  override readonly name = "RuntimeApiError";
  readonly status: number;
  constructor(message: string, options: { status: number }) {
    super(message);
    this.status = options.status;
  }
}

/** Lambda's error body for anything thrown. */
export function toLambdaError(error: unknown): LambdaError {
  if (error instanceof Error) {
    return {
      errorType: `Runtime.${error.name || "Error"}`,
      errorMessage: error.message,
      stackTrace: (error.stack ?? "").split("\n").slice(1).map((line) => line.trim()).filter(Boolean),
    };
  }
  return { errorType: "Runtime.UnknownReason", errorMessage: String(error), stackTrace: [] };
}

/** Options of {@linkcode runRuntime}. */
export interface RunRuntimeOptions {
  /** Stops the loop after the current invocation. Default: never. */
  signal?: AbortSignal;
  /** Reports invocation failures (also posted to Lambda). Default: console.error. */
  onError?: (error: unknown, context: InvocationContext) => void;
}

/**
 * The invocation loop: next → handler → response or error, until `signal` aborts. Rejects only when the
 * Runtime API itself fails (Lambda is shutting the environment down).
 */
export async function runRuntime(
  client: RuntimeClient,
  handler: InvocationHandler,
  options: RunRuntimeOptions = {},
): Promise<void> {
  const onError = options.onError ?? ((error) => console.error(error));
  while (!options.signal?.aborted) {
    const { event, context } = await client.next();
    let result: unknown;
    try {
      result = await handler(event, context);
    } catch (error) {
      onError(error, context);
      await client.fail(context.requestId, error);
      continue;
    }
    try {
      await client.respond(context.requestId, result);
    } catch (error) {
      // The result was refused (too large), not the Runtime API broken: the invocation fails instead.
      if (!(error instanceof RuntimeApiError) || error.status >= 500) throw error;
      onError(error, context);
      await client.fail(context.requestId, error);
    }
  }
}
