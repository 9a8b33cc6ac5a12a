/**
 * The stop rule of the server: which SIGINT/SIGTERM deliveries start a graceful stop, which are the same stop
 * reaching the process again, and which force the exit.
 *
 * One stop request often arrives more than once. Ctrl-C in a terminal signals the whole foreground process
 * group, and `npx deno task start` is four processes (npm, a shell, the task runner, `deno run`): the server gets
 * the SIGINT from the terminal and again from the task runner, which forwards it, milliseconds apart. systemd's
 * default `KillMode=control-group` does the same with SIGTERM. So:
 *
 * - the first SIGINT or SIGTERM starts the graceful stop;
 * - the same signal again within {@link REPEAT_WINDOW_MS} of the first is that same stop, and is ignored;
 * - the same signal later than that, or the other signal at any time, is a second request made on purpose:
 *   the process exits at once (what is not yet in objects stays in the write-ahead log for the next start).
 *
 * @module
 */

/** Repeats of the first stop signal within this many milliseconds are the same stop. */
export const REPEAT_WINDOW_MS = 3000;

/** What a stop signal means, given the ones before it. */
export type StopDecision =
  | { kind: "stop" }
  | { kind: "repeat"; afterMs: number }
  | { kind: "force"; reason: string };

/** Judges each stop signal by the rule in the module comment. */
export class StopSignals {
  #first: { name: string; at: number } | undefined;

  constructor(private readonly windowMs = REPEAT_WINDOW_MS) {}

  /** Whether a stop has been asked for. */
  get stopping(): boolean {
    return this.#first !== undefined;
  }

  /** The meaning of signal `name` received at `now` (milliseconds on any monotonic-enough clock). */
  receive(name: string, now: number): StopDecision {
    const first = this.#first;
    if (!first) {
      this.#first = { name, at: now };
      return { kind: "stop" };
    }
    const afterMs = Math.max(0, now - first.at);
    if (name !== first.name) return { kind: "force", reason: `${name} after ${first.name}` };
    if (afterMs <= this.windowMs) return { kind: "repeat", afterMs };
    return { kind: "force", reason: `${name} again ${(afterMs / 1000).toFixed(1)} s after the first` };
  }
}
