import { type CoreHooks, tapped } from '../hooks.js';

/**
 * The jobs whose attempt this app's workers are settling: from the outcome's write until its
 * settlement is done (after-commit work run, `afterSettle` fired). A job retried at once can be
 * claimed again as soon as its outcome commits — by a claim whose answer comes in the same read as
 * the write's, or while the write's after-commit work is still out — so its next attempt waits here
 * for that settlement: hooks see one job's history in order (`afterSettle` of attempt n before
 * `jobStart` of attempt n + 1).
 *
 * Kept only while a `settle` or `afterSettle` tap exists: with neither, nothing runs after the
 * commit, so there is nothing to wait for and the drain pays nothing.
 */
export class SettlingJobs {
  /** Job id → the starts waiting for its settlement (null until one waits). */
  readonly #settling = new Map<string, Array<() => void> | null>();

  constructor(private readonly hooks: CoreHooks) {}

  /**
   * Runs one settlement (`run`: the write, through its after-commit work and `afterSettle`), these
   * jobs marked settling meanwhile — when some tap runs after a commit; `ids` is asked only then.
   * Unmarked when `run` ends either way: a write that failed did not commit, so no next attempt
   * waits on it (one that committed unseen is found stale by the retried write, which settles nothing).
   */
  async during<T>(ids: () => readonly string[], run: () => Promise<T>): Promise<T> {
    if (!tapped(this.hooks.settle) && !tapped(this.hooks.afterSettle)) return run();
    const marked = ids();
    for (const id of marked) if (!this.#settling.has(id)) this.#settling.set(id, null);
    try {
      return await run();
    } finally {
      for (const id of marked) {
        const waiting = this.#settling.get(id);
        this.#settling.delete(id);
        if (waiting) for (const resolve of waiting) resolve();
      }
    }
  }

  /** Resolves when this job's settlement here is done; null when none is under way (the usual case). */
  settled(id: string): Promise<void> | null {
    if (this.#settling.size === 0) return null;
    const waiting = this.#settling.get(id);
    if (waiting === undefined) return null;
    return new Promise((resolve) => {
      if (waiting) waiting.push(resolve);
      else this.#settling.set(id, [resolve]);
    });
  }
}
