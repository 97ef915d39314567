/**
 * Abort state of one running attempt (timeout, cancellation, worker shutdown).
 *
 * Why not a plain AbortController per attempt: most handlers never read `ctx.signal`, and a
 * controller with its EventTarget and listeners costs a few microseconds and several objects per
 * job, which at tens of thousands of jobs a second is a fifth of the worker's CPU (measured with
 * `pnpm --filter @docket/bench profile-drain --cpu-prof`). The controller is made when
 * `signal` is first read, already aborted if the attempt was; the executor that runs the handler
 * registers a single plain callback instead of an event listener.
 */
export class AttemptAbort {
  private controller: AbortController | null = null;
  private listener: ((reason: unknown) => void) | null = null;
  aborted = false;
  reason: unknown = undefined;

  get signal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    const listener = this.listener;
    this.listener = null;
    listener?.(reason);
  }

  /** Sets (or, with null, clears) the one callback run on abort. Runs it now if already aborted. */
  onAbort(listener: ((reason: unknown) => void) | null): void {
    if (listener && this.aborted) {
      listener(this.reason);
      return;
    }
    this.listener = listener;
  }
}
