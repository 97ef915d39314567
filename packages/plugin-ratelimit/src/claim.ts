/**
 * One claim of a rate-limited queue, in the claim's transaction: `shapeClaim` (beforeClaim) locks
 * the queue's window row, reads the windows and narrows the claim to what they allow; the core
 * claims; `recordClaim` (afterClaim) adds the jobs it took to the windows. The lock is held to the
 * claim's commit, so the queue's claims take turns and each one sees every start before it.
 */
import type { ClaimContext, ClaimedJob } from '@docket/core';
import type { QueueRules } from './options.js';
import { KEY_COLUMN, keyWindowsRead, QUEUE_ROW, queueWindowLock, type WindowWrite, windowsWrite } from './sql.js';
import { EMPTY_LOG, expiresAt, firstRelease, liveLog, slotOf, used, type WindowLog, withEntry } from './window.js';

/**
 * How long before a queue's window opens its runners come to claim: a claim that finds the window
 * opening within this waits for it with the lock held. A twentieth of the period, at most 50 ms.
 */
export function leadMs(periodMs: number): number {
  return Math.min(50, Math.floor(periodMs / 20));
}

/** What `shapeClaim` read, for `recordClaim` to write back with the claim's starts. */
export interface ClaimWindows {
  /** The queue's live log (its own limit), or null without one. */
  readonly queue: WindowLog | null;
  /** Live logs of the keys that have one (per-key limit), or null without one. */
  readonly keys: ReadonlyMap<string, WindowLog> | null;
}

/**
 * Narrows `claim` to the starts the windows allow now: `limitTo` what the queue's window has left,
 * and to each key what its window has left (the core's perKey budgets: a key with nothing left is
 * left out); asks to claim again when a window opens.
 */
export async function shapeClaim(claim: ClaimContext, schema: string, rules: QueueRules): Promise<ClaimWindows> {
  const row = await queueWindowLock(claim.sql, schema, { queue: claim.queue });
  // The clock was read as the lock was taken: it is no later than any start this claim makes, so
  // every start less than a period before one of those is counted below (a clock read before a
  // lock wait only counts more, never less).
  let nowMs = row.now_ms;
  let queue: WindowLog | null = null;
  if (rules.queue) {
    const { limit, periodMs } = rules.queue;
    queue = liveLog({ at: row.at_ms, counts: row.counts }, nowMs, periodMs);
    let left = limit - used(queue);
    const release = firstRelease(queue, periodMs);
    if (left < 1 && release !== null && release - nowMs <= leadMs(periodMs)) {
      // The window opens within the lead: wait for it here, holding the lock (the queue's other
      // claims could take nothing meanwhile either), so the claim follows the opening at once
      // instead of a timer, a transaction and a lock later. The clock moves on by the time waited
      // here, which the database's can only have exceeded.
      const started = performance.now();
      // (+1 ms: a Node timer may fire up to a millisecond early.)
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(release - nowMs) + 1));
      nowMs += performance.now() - started;
      queue = liveLog(queue, nowMs, periodMs);
      left = limit - used(queue);
    }
    if (left < claim.limit) {
      // Asked a little early: the claim then finds the window about to open and waits as above.
      const next = firstRelease(queue, periodMs);
      if (next !== null) claim.retryAt(new Date(next - leadMs(periodMs)));
    }
    claim.limitTo(Math.max(0, left));
    if (claim.limit === 0) return { queue, keys: null };
  }
  if (!rules.perKey) return { queue, keys: null };

  const { limit, periodMs } = rules.perKey;
  const keys = new Map<string, WindowLog>();
  // What each key that started jobs within the period has left (0 leaves it out of the claim);
  // a key without such starts has the whole limit.
  const budgets: Array<[string, number]> = [];
  let release = Infinity;
  for (const window of await keyWindowsRead(claim.sql, schema, { queue: claim.queue, nowMs })) {
    const log = liveLog({ at: window.at_ms, counts: window.counts }, nowMs, periodMs);
    keys.set(window.key, log);
    const left = Math.max(0, limit - used(log));
    budgets.push([window.key, left]);
    // A key with a job due now may be held back (all of it, or past its budget): claim again when
    // its window frees a start, whether or not a job of the queue settles before then.
    if (window.waiting) release = Math.min(release, firstRelease(log, periodMs) ?? Infinity);
  }
  claim.perKey(KEY_COLUMN, limit, budgets);
  if (release !== Infinity) claim.retryAt(new Date(release));
  return { queue, keys };
}

/** Adds the claim's starts to the windows `shapeClaim` read, in the claim's transaction. */
export async function recordClaim(
  claimed: readonly ClaimedJob[],
  claim: ClaimContext,
  schema: string,
  rules: QueueRules,
  windows: ClaimWindows,
): Promise<void> {
  // Each start is recorded at a time no earlier than its `started_at` (claimed rows carry it
  // rounded down to the millisecond), so it counts for at least a full period after it started.
  let startedMs = 0;
  for (const { job } of claimed) startedMs = Math.max(startedMs, job.startedAt?.getTime() ?? 0);
  const writes: WindowWrite[] = [];
  if (rules.queue && windows.queue) {
    const { periodMs } = rules.queue;
    const log = withEntry(windows.queue, slotOf(startedMs + 1, periodMs), claimed.length);
    writes.push({ key: QUEUE_ROW, ...log, expiresMs: expiresAt(log, periodMs) });
  }
  if (rules.perKey && windows.keys) {
    const { periodMs } = rules.perKey;
    const at = slotOf(startedMs + 1, periodMs);
    const perKey = new Map<string, number>();
    for (const { columns } of claimed) {
      const key = columns[KEY_COLUMN];
      if (typeof key === 'string') perKey.set(key, (perKey.get(key) ?? 0) + 1);
    }
    for (const [key, count] of perKey) {
      const log = withEntry(windows.keys.get(key) ?? EMPTY_LOG, at, count);
      writes.push({ key, ...log, expiresMs: expiresAt(log, periodMs) });
    }
  }
  await windowsWrite(claim.sql, schema, { queue: claim.queue, windows: writes });
}
