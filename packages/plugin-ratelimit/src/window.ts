/**
 * The sliding window log of one rate limit: the starts it let through, as (time, count) entries
 * on the database clock, epoch milliseconds. A start counts against the limit until `periodMs`
 * after its entry's time. Pure functions; the plugin reads and writes logs in the claim's
 * transaction (sql.ts) under the queue's row lock.
 *
 * Entries are recorded on a grid of a thousandth of the period (at least 1 ms), rounded up: starts
 * of claims close together share one entry, so a log holds at most ~1,001 live entries whatever
 * the rate (in practice one per claim within the period), and rounding up only makes a start
 * count a little longer (never shorter) than its period.
 */

export interface WindowLog {
  /** Entry times, epoch ms on the database clock, in the order they were recorded. */
  readonly at: readonly number[];
  /** Starts recorded at each entry's time. */
  readonly counts: readonly number[];
}

export const EMPTY_LOG: WindowLog = Object.freeze({ at: Object.freeze([]), counts: Object.freeze([]) });

/** The step of the grid entries are recorded on: a thousandth of the period, at least 1 ms. */
export function gridMs(periodMs: number): number {
  return Math.max(1, Math.floor(periodMs / 1000));
}

/** `ms` rounded up to the grid of `periodMs` (integers in, an integer out). */
export function slotOf(ms: number, periodMs: number): number {
  const step = gridMs(periodMs);
  return Math.ceil(ms / step) * step;
}

/** The entries that still count at `nowMs`: those less than `periodMs` old. */
export function liveLog(log: WindowLog, nowMs: number, periodMs: number): WindowLog {
  const at: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < log.at.length; i++) {
    if (log.at[i] > nowMs - periodMs) {
      at.push(log.at[i]);
      counts.push(log.counts[i]);
    }
  }
  return { at, counts };
}

/** Starts the log holds (call on a live log: the starts that count now). */
export function used(log: WindowLog): number {
  let sum = 0;
  for (const n of log.counts) sum += n;
  return sum;
}

/** When the oldest entry stops counting (capacity frees), or null for an empty log. */
export function firstRelease(log: WindowLog, periodMs: number): number | null {
  if (log.at.length === 0) return null;
  return Math.min(...log.at) + periodMs;
}

/** When the newest entry stops counting: after that the whole log is dead (0 for an empty log). */
export function expiresAt(log: WindowLog, periodMs: number): number {
  return log.at.length === 0 ? 0 : Math.max(...log.at) + periodMs;
}

/** The log with `count` more starts at `at` (added to an entry of the same time). */
export function withEntry(log: WindowLog, at: number, count: number): WindowLog {
  const i = log.at.indexOf(at);
  if (i >= 0) {
    const counts = [...log.counts];
    counts[i] += count;
    return { at: [...log.at], counts };
  }
  return { at: [...log.at, at], counts: [...log.counts, count] };
}
