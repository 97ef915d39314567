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

  /** Whether settlements are tracked now (some tap runs after a commit). */
  get tracked(): boolean {
    return tapped(this.hooks.settle) || tapped(this.hooks.afterSettle);
  }

  /** The settlement of these jobs' attempts begins. */
  begin(ids: Iterable<string>): void {
    for (const id of ids) if (!this.#settling.has(id)) this.#settling.set(id, null);
  }

  /** Their settlement is done (or gave up): the next attempts may start. */
  end(ids: Iterable<string>): void {
    if (this.#settling.size === 0) return;
    for (const id of ids) {
      const waiting = this.#settling.get(id);
      if (waiting === undefined) continue;
      this.#settling.delete(id);
      if (waiting) for (const resolve of waiting) resolve();
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
