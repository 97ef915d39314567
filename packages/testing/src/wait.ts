/**
 * Polls a condition until it yields a value, for tests that must wait for state that another
 * process or worker produces (a job finishing, a row appearing).
 */
import { inspect } from 'node:util';

export interface WaitForOptions {
  /** Give up after this long (default 5000 ms). */
  timeoutMs?: number;
  /** Pause between attempts (default 25 ms). */
  intervalMs?: number;
  /** What was awaited, for the timeout error: 'job 42 to complete'. */
  message?: string;
}

export class WaitForTimeoutError extends Error {
  readonly code = 'WAIT_FOR_TIMEOUT';
  override name = 'WaitForTimeoutError';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `fn` until it returns something other than `undefined`, `null` or `false`, and returns
 * that. An error thrown by `fn` is not retried: it rejects at once (it is a bug, not "not yet").
 * Rejects with a WaitForTimeoutError naming the condition, the time waited and the last value.
 */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitForOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 25;
  const started = Date.now();
  let attempts = 0;
  for (;;) {
    attempts++;
    const value = await fn();
    if (value !== undefined && value !== null && value !== false) return value as T;
    const elapsed = Date.now() - started;
    if (elapsed >= timeoutMs) {
      throw new WaitForTimeoutError(
        `waitFor timed out after ${timeoutMs} ms (${attempts} attempts): ` +
          `${opts.message ?? 'condition was not met'}; last value: ${inspect(value)}`,
      );
    }
    await sleep(Math.min(intervalMs, timeoutMs - elapsed));
  }
}
