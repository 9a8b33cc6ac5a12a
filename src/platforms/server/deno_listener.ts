/**
 * HTTP on Deno from our own accept loop, because `Deno.serve` (2.9) can neither survive an accept error
 * nor time out a connection:
 *
 * - when `accept` fails with EMFILE ("Too many open files"), `Deno.serve` rejects its `finished` promise
 *   (the process exits on the unhandled rejection) and drops its listener and every open connection; the
 *   `node:http` and `node:net` servers of Deno stop accepting for good, silently;
 * - it has no idle, header or keep-alive timeout: an idle or half-sent connection stays open forever
 *   (measured: 70 s and counting), so a thousand idle clients exhaust `ulimit -n 1024`.
 *
 * Here `Deno.listen` accepts (an accept error is logged, the oldest idle connection is closed to free a
 * descriptor, and accepting resumes after a short back-off), and each connection is served by
 * `Deno.serveHttp`, the connection-level HTTP server Deno still ships (deprecated and left out of its
 * types, hence the cast; where it is missing we fall back to `Deno.serve` and warn). Each connection is
 * either busy (a request in progress, bounded by the handler's own body timeout and minimum rate) or
 * waiting for the next request's headers, which must be complete within `headerTimeoutMs` after accept
 * and within `idleTimeoutMs` after each response; otherwise it is closed.
 *
 * @module
 */

/** The part of `Deno.HttpConn` used here. */
interface HttpConn extends AsyncIterable<RequestEvent> {
  nextRequest(): Promise<RequestEvent | null>;
  close(): void;
}

interface RequestEvent {
  readonly request: Request;
  respondWith(response: Response | Promise<Response>): Promise<void>;
}

/**
 * How long the rest of a body the handler did not read (an early 413, 429 or 404) is read and discarded before
 * the answer goes out. hyper closes a connection whose request body is left unread when the answer is sent,
 * and a client still writing that body then gets EPIPE instead of the answer (measured: 1 to 4 in ~250
 * refused 4 MiB uploads under load). A body still arriving after this is cut, and so is one whose answer says
 * `connection: close` (a trickler's 408). The discarded bytes are never held: no budget is charged for them.
 */
const LINGER_MS = 2000;
/** Bytes read off a request body at a time. */
const PIECE = 64 * 1024;

/** Options of {@link serveConnections}. */
export interface ConnectionServerOptions {
  hostname: string;
  /** 0 means any free port. */
  port: number;
  /** Time from accept until the first request's headers are complete; then the connection is closed. */
  headerTimeoutMs: number;
  /** Time from a response until the next request's headers are complete; then the connection is closed. */
  idleTimeoutMs: number;
  /** Called for each failed accept (EMFILE, ENFILE, ENOBUFS, …), before the back-off. Default: none. */
  onAcceptError?: (error: unknown, stats: ConnectionStats) => void;
}

/** Counters of a {@link ConnectionServer}. */
export interface ConnectionStats {
  /** Connections open now. */
  open: number;
  /** Of those, waiting for a request's headers. */
  idle: number;
  accepted: number;
  /** Connections closed for taking longer than the header or idle timeout. */
  timedOut: number;
  /** Idle connections closed early to free a descriptor after an accept error. */
  evicted: number;
  acceptErrors: number;
}

/** A running server. */
export interface ConnectionServer {
  /** `host:port` it listens on (IPv6 in brackets). */
  readonly address: string;
  stats(): ConnectionStats;
  /**
   * Stops accepting, waits for requests in progress (each answer then closes its connection) and closes
   * idle connections. Idempotent.
   */
  stop(): Promise<void>;
}

type ServeHttp = (conn: Deno.Conn) => HttpConn;

/** `Deno.serveHttp` when this Deno still has it. */
export function denoServeHttp(): ServeHttp | undefined {
  const f = (globalThis as unknown as { Deno?: { serveHttp?: unknown } }).Deno?.serveHttp;
  return typeof f === "function" ? f as ServeHttp : undefined;
}

const BACKOFF_MIN_MS = 10;
const BACKOFF_MAX_MS = 1000;
/**
 * While stopping, how long a waiting connection is kept. `respondWith` resolves once hyper has the response,
 * not once it is written; the write happens while the connection is polled for the next request, so closing a
 * connection the moment its response is handed over could lose the response.
 */
const DRAIN_MS = 250;

interface Connection {
  readonly http: HttpConn;
  timer: ReturnType<typeof setTimeout> | undefined;
  closed: boolean;
}

/** Serves `handler` on `hostname:port`; see the module comment. Requires `Deno.serveHttp` ({@link denoServeHttp}). */
export function serveConnections(
  handler: (request: Request, info: { remoteAddr: { hostname: string; port: number } }) => Promise<Response>,
  options: ConnectionServerOptions,
): ConnectionServer {
  const serveHttp = denoServeHttp();
  if (!serveHttp) throw new Error("Deno.serveHttp is not available in this Deno");
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const addr = listener.addr as Deno.NetAddr;
  const open = new Set<Connection>();
  // Waiting connections in the order they started to wait: the first is the one idle the longest.
  const idle = new Set<Connection>();
  const running = new Set<Promise<void>>();
  const counts = { accepted: 0, timedOut: 0, evicted: 0, acceptErrors: 0 };
  let stopping = false;

  const stats = (): ConnectionStats => ({ open: open.size, idle: idle.size, ...counts });

  const close = (c: Connection) => {
    if (c.closed) return;
    c.closed = true;
    clearTimeout(c.timer);
    idle.delete(c);
    try {
      c.http.close();
    } catch {
      // already closed by the peer
    }
  };

  const wait = (c: Connection, ms: number) => {
    idle.add(c);
    clearTimeout(c.timer);
    c.timer = setTimeout(() => {
      if (!stopping) counts.timedOut++;
      close(c);
    }, ms);
  };

  const busy = (c: Connection) => {
    clearTimeout(c.timer);
    idle.delete(c);
  };

  // Once stopping, each answer ends its connection (hyper closes it after writing the response).
  const closeIfStopping = (response: Response) => {
    if (stopping) {
      try {
        response.headers.set("connection", "close");
      } catch {
        // immutable headers: the drain timer closes the connection instead
      }
    }
    return response;
  };

  const serve = async (conn: Deno.Conn) => {
    let http: HttpConn;
    try {
      http = serveHttp(conn);
    } catch {
      try {
        conn.close();
      } catch {
        // gone
      }
      return;
    }
    const c: Connection = { http, timer: undefined, closed: false };
    // The client's address, for the log of refused requests (the shape `Deno.serve` passes).
    const info = { remoteAddr: conn.remoteAddr as Deno.NetAddr };
    open.add(c);
    try {
      for (let first = true;; first = false) {
        wait(c, stopping ? DRAIN_MS : first ? options.headerTimeoutMs : options.idleTimeoutMs);
        let event: RequestEvent | null;
        try {
          event = await http.nextRequest();
        } catch {
          break; // closed by a timeout, by stop(), or the client sent garbage
        }
        busy(c);
        if (event === null || c.closed) break;
        const { request, finish } = lingering(event.request);
        // The handler answers every failure itself.
        const response = await handler(request, info);
        const closing = response.headers.get("connection")?.toLowerCase() === "close";
        await finish(closing || stopping ? 0 : LINGER_MS);
        // A rejection here means the client went away.
        await event.respondWith(closeIfStopping(response)).catch(() => {});
      }
    } finally {
      close(c);
      open.delete(c);
    }
  };

  const acceptLoop = async () => {
    let backoff = BACKOFF_MIN_MS;
    while (!stopping) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (stopping || e instanceof Deno.errors.BadResource) break;
        counts.acceptErrors++;
        // Out of descriptors: the client idle the longest gives its one up, so a working client gets in.
        const oldest = idle.values().next();
        if (!oldest.done) {
          counts.evicted++;
          close(oldest.value);
        }
        options.onAcceptError?.(e, stats());
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
        continue;
      }
      backoff = BACKOFF_MIN_MS;
      counts.accepted++;
      const p = serve(conn).finally(() => running.delete(p));
      running.add(p);
    }
  };
  const accepting = acceptLoop();

  let stopped: Promise<void> | undefined;
  return {
    address: `${addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname}:${addr.port}`,
    stats,
    stop: () =>
      stopped ??= (async () => {
        stopping = true;
        try {
          listener.close();
        } catch {
          // already closed
        }
        await accepting;
        for (const c of [...idle]) wait(c, DRAIN_MS);
        // Requests in progress finish (their reads are bounded by the handler's timeouts); their
        // connections then close instead of waiting for another request.
        while (running.size) await Promise.allSettled([...running]);
      })(),
  };
}

/**
 * The request as the handler sees it, whose body, when cancelled, stops only the handler's view of it;
 * `finish` then reads the rest of the body off the wire and discards it for at most `ms`, and cuts it after
 * (at once for `ms` 0).
 */
function lingering(original: Request): { request: Request; finish(ms: number): Promise<void> } {
  if (original.body === null) return { request: original, finish: () => Promise.resolve() };
  // A BYOB reader, so the discarded rest is read into one reused buffer: draining allocates nothing.
  const reader = original.body.getReader({ mode: "byob" });
  let ended = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read(new Uint8Array(PIECE));
      try {
        if (done || value === undefined) {
          ended = true;
          controller.close();
        } else {
          // A short read is copied out, so a trickled byte does not pin a whole piece.
          controller.enqueue(value.length === PIECE ? value : value.slice());
        }
      } catch {
        // the handler cancelled its view meanwhile: this piece is discarded, as `finish` would
      }
    },
  }, { highWaterMark: 0 });
  const request = new Request(original.url, {
    method: original.method,
    headers: original.headers,
    body,
    duplex: "half",
  } as RequestInit);
  const finish = async (ms: number) => {
    if (ended) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cut = new Promise<"cut">((r) => timer = setTimeout(() => r("cut"), ms));
    let scratch = new Uint8Array(PIECE);
    try {
      while (ms > 0) {
        const next = await Promise.race([reader.read(scratch), cut]).catch(() => "cut" as const);
        if (next === "cut" || next.done || next.value === undefined) break;
        scratch = new Uint8Array(next.value.buffer);
      }
    } finally {
      clearTimeout(timer);
      reader.cancel().catch(() => {});
    }
  };
  return { request, finish };
}
