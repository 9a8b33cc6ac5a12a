/**
 * How a long decode gives way to other clients: between its slices it awaits a pause that, once enough
 * time has passed, lets the event loop poll for I/O and run what is ready before it resolves.
 *
 * @module
 */

/**
 * Returns a pause for one decode: it yields to the event loop with a `setTimeout(0)` once `everyMs`
 * (default 20) have passed since the decode started or last yielded, and resolves at once otherwise.
 * A timer, because it is what makes Deno poll for I/O: a server decoding 43 MB left `/health` waiting
 * 1.9 s when pausing with `setImmediate` and 2.1 s with a `MessageChannel` message (measured), which
 * only run other callbacks. Timers are clamped to 1-2 ms once nested, so yielding at most every 20 ms
 * keeps the cost to a large request's latency below 10 %, and costs no CPU.
 */
export function pauseEvery(everyMs = 20): () => Promise<void> {
  let last = performance.now();
  const resume = (resolve: () => void) =>
    setTimeout(() => {
      last = performance.now();
      resolve();
    }, 0);
  return () => performance.now() - last < everyMs ? Promise.resolve() : new Promise<void>(resume);
}
