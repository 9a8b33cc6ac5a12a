/**
 * The one error the core raises for bad input: it names the signal, the field path and the problem,
 * so a client can find what to fix ("cannot decode logs request: field
 * resourceLogs[0].scopeLogs[1].logRecords[3].traceId: must be 16 bytes, got 5").
 *
 * @module
 */

/** Undecodable or invalid OTLP input. A `SyntaxError`, so callers map it to 400 without guessing. */
export class DecodeError extends SyntaxError {
  /** Field path from the request root, e.g. `resourceLogs[0].scopeLogs[1].logRecords[3].traceId`. */
  path: string;
  /** What is wrong, without the path. */
  readonly problem: string;
  signal = "";

  constructor(problem: string, path = "") {
    super(problem);
    this.name = "DecodeError";
    this.problem = problem;
    this.path = path;
    this.refresh();
  }

  /** Adds an outer path segment (decoders rethrow through each level). */
  within(segment: string): this {
    this.path = this.path
      ? (this.path.startsWith("[") ? segment + this.path : `${segment}.${this.path}`)
      : segment;
    this.refresh();
    return this;
  }

  /** Names the signal: the message becomes "cannot decode logs request: …". */
  forSignal(signal: string): this {
    this.signal = signal;
    this.refresh();
    return this;
  }

  private refresh(): void {
    const where = this.path ? `field ${this.path}: ` : "";
    this.message = this.signal
      ? `cannot decode ${this.signal} request: ${where}${this.problem}`
      : `${where}${this.problem}`;
  }
}

/** Runs `fn`, prefixing any DecodeError's path with `segment`. */
export function within<T>(segment: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DecodeError) throw e.within(segment);
    throw e;
  }
}
