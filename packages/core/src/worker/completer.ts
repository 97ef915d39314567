import type postgres from 'postgres';
import type { Logger } from '../logger.js';
import type { Settlements } from '../settlement.js';
import type { Settlement } from '../types.js';
import type { SettlingJobs } from './settling-jobs.js';

/**
 * Writes a worker's attempt outcomes in batches through the settlement module. Outcomes that
 * arrive while a write is in flight wait for the next one (group commit): no timer, so a lone
 * outcome is written at once and a busy worker writes hundreds per statement. A failed write is
 * retried; the rows stay `running` meanwhile, so nothing is lost even if the process dies (they are
 * found by their stale heartbeat and re-run).
 */
export class Completer {
  private queue: Settlement[] = [];
  /** Last progress reports not yet stored, by settlement: written with the outcome. */
  private readonly progress = new Map<Settlement, string>();
  private flushing: Promise<void> | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(
    /** Where outcomes are written: the workers' pool. */
    private readonly sql: postgres.Sql,
    private readonly settlements: Settlements,
    /** Where a batch is marked settling, from its write until `afterSettle` fired. */
    private readonly settling: SettlingJobs,
    private readonly logger: Logger,
    private readonly workerId: string,
    private readonly maxBatch: number,
    /** Queues whose claims plugins shape: their settled jobs announce freed capacity. */
    private readonly shapedQueues: () => readonly string[],
    /** Called after each written batch: runners that paused fetching for the backlog resume. */
    private readonly afterWrite: (batch: readonly Settlement[]) => void = () => {},
  ) {}

  get backlog(): number {
    return this.queue.length;
  }

  /** Queues an outcome; `progress`: the attempt's last progress report not yet stored (JSON text). */
  add(settlement: Settlement, progress?: string): void {
    this.queue.push(settlement);
    if (progress !== undefined) this.progress.set(settlement, progress);
    this.flushing ??= this.flushLoop();
  }

  /** Resolves when every outcome added so far is written. */
  drain(): Promise<void> {
    if (!this.flushing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async flushLoop(): Promise<void> {
    // Let outcomes from the same tick join the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    let failures = 0;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      let progress: Map<string, string> | undefined;
      if (this.progress.size > 0) {
        for (const s of batch) {
          const text = this.progress.get(s);
          if (text !== undefined) (progress ??= new Map()).set(s.job.id, text);
        }
      }
      try {
        await this.settling.during(
          () => batch.map((s) => s.job.id),
          () => this.settlements.writeAttempts(this.sql, batch, this.workerId, this.shapedQueues(), progress),
        );
        failures = 0;
        if (progress) for (const s of batch) this.progress.delete(s);
        this.afterWrite(batch);
      } catch (error) {
        failures++;
        this.logger.error('writing job outcomes failed; retrying', { error, jobs: batch.length, failures });
        this.queue.unshift(...batch);
        await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** failures, 5000)));
      }
    }
    this.flushing = null;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
