import { tapped } from '../hooks.js';
import type postgres from 'postgres';
import { type AppInternals } from '../app.js';
import type { Docket } from '../app.js';
import type { Outcome, Settlement, SettledJob } from '../hooks.js';
import type { CompletionInput, CompletionResult } from '../sql/jobs.js';
import type { JobContext, RunningJob } from '../types.js';

export interface Completion {
  job: RunningJob;
  outcome: Outcome;
  ctx: JobContext | null;
}

/**
 * Writes outcomes in batches. Completions that arrive while a write is in flight wait for the
 * next one (group commit): no timer, so a lone completion is written at once and a busy worker
 * writes hundreds per statement. A failed write is retried; the rows stay `running` meanwhile,
 * so nothing is lost even if the process dies (they are found by their stale heartbeat and re-run).
 */
export class Completer {
  private queue: Completion[] = [];
  private flushing: Promise<void> | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly app: Docket,
    private readonly internals: AppInternals,
    private readonly workerId: string,
    private readonly maxBatch: number,
    /** Called after each written batch: runners that paused fetching for the backlog resume. */
    private readonly afterWrite: () => void = () => {},
  ) {}

  get backlog(): number {
    return this.queue.length;
  }

  add(completion: Completion): void {
    this.queue.push(completion);
    this.flushing ??= this.flushLoop();
  }

  /** Resolves when every completion added so far is written. */
  drain(): Promise<void> {
    if (!this.flushing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async flushLoop(): Promise<void> {
    // Let completions from the same tick join the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    let failures = 0;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        await this.write(batch);
        failures = 0;
        this.afterWrite();
      } catch (error) {
        failures++;
        this.app.logger.error('writing job outcomes failed; retrying', { error, jobs: batch.length, failures });
        this.queue.unshift(...batch);
        await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** failures, 5000)));
      }
    }
    this.flushing = null;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private async write(batch: Completion[]): Promise<void> {
    const { hooks, jobs, codec } = this.internals;
    let result: CompletionResult;
    let final: Completion[] = batch;
    if (!tapped(hooks.settle)) {
      result = await jobs.complete(this.app.sql, this.workerId, codec.encodesResults ? await codec.encodeOutcomes(batch.map(toInput)) : batch.map(toInput));
    } else {
      const deferred: Array<() => unknown> = [];
      ({ result, final } = await this.app.sql.begin((tx) => this.writeWithHooks(tx, batch, deferred)));
      await this.internals.runDeferred(deferred);
    }
    const all = result.written.length === batch.length;
    const kept = all ? null : new Set(result.written);
    if (kept) {
      for (const c of batch) {
        if (!kept.has(c.job.id)) {
          this.app.logger.warn('outcome not written: the job is no longer this attempt (recovered, cancelled or released)', {
            job: c.job.id,
            attempt: c.job.attempt,
          });
        }
      }
    }
    if (tapped(hooks.afterSettle) && result.written.length > 0) {
      const { finishedAt } = result;
      const settled: SettledJob[] = [];
      for (const c of final) {
        if (kept === null || kept.has(c.job.id)) settled.push({ job: c.job, outcome: c.outcome, finishedAt });
      }
      hooks.afterSettle.promise(settled).catch((error) => this.app.logger.error('afterSettle hook failed', { error }));
    }
  }

  /** Lock (fence) → settle hook → write, in one transaction, so plugin bookkeeping commits with the outcome. */
  async writeWithHooks(tx: postgres.TransactionSql, batch: Completion[], deferred: Array<() => unknown>) {
    const locked = await this.internals.jobs.lockRunning(tx, this.workerId, batch.map((c) => c.job));
    const live = new Set(locked.map((l) => l.id));
    const current = batch.filter((c) => live.has(c.job.id));
    if (current.length === 0) return { result: { written: [], finishedAt: new Date() } as CompletionResult, final: [] as Completion[] };
    const settlements: Settlement[] = current.map((c) => ({ job: c.job, outcome: c.outcome, ctx: c.ctx }));
    const settled = await this.internals.settle(tx, settlements, this.workerId, deferred);
    const final = settled.map((s) => ({ job: s.job, outcome: s.outcome, ctx: s.ctx }));
    const { codec } = this.internals;
    const result = await this.internals.jobs.complete(tx, this.workerId, codec.encodesResults ? await codec.encodeOutcomes(final.map(toInput)) : final.map(toInput));
    return { result, final };
  }
}

function toInput(c: Completion): CompletionInput {
  return { id: c.job.id, attempt: c.job.attempt, outcome: c.outcome };
}
