import type { AppInternals, Docket } from '../app.js';
import { JobCancelledError, LimitExceededError, UnknownJobError, type WorkerShutdownError } from '../errors.js';
import type { Executor } from '../executors/executor.js';
import { type AttemptRun, tapped, wanted } from '../hooks.js';
import type { AnyJobDefinition, JobDefinition } from '../job-definition.js';
import { toClaimedJob } from '../sql/jobs.js';
import type { ExecutorKind } from '../sql/queues.js';
import type { JobContext, RunningJob, Settlement } from '../types.js';
import { AttemptAbort } from './attempt-abort.js';
import { AttemptBound } from './attempt-bound.js';
import type { AttemptContext } from './attempt-context.js';
import { claimWithHooks, isShapedQueue } from './claim.js';
import type { Completer } from './completer.js';
import { failureOutcome, successOutcome, toJobError } from './outcome.js';
import type { Worker } from './worker.js';

export interface QueueSettings {
  readonly name: string;
  readonly concurrency: number;
  readonly executor: ExecutorKind;
  readonly pollIntervalMs: number;
  /** Jobs claimed ahead of free slots, kept in a local buffer (fewer round trips under load). */
  readonly prefetch: number;
}

interface Active {
  readonly job: RunningJob;
  readonly abort: AttemptAbort;
  done: Promise<void>;
}

/**
 * Runs one queue on one worker: claims batches (FOR UPDATE SKIP LOCKED) into a local buffer,
 * starts jobs as slots free, refetches at once while batches come back full, and otherwise sleeps
 * until a notification for the queue or the poll interval.
 */
export class QueueRunner {
  private readonly active = new Map<string, Active>();
  private buffer: RunningJob[] = [];
  private fetching = false;
  /** The claim under way, if any (a stopping worker waits for it: see `fetchSettled`). */
  private inFlight: Promise<void> = Promise.resolve();
  /** Last fetch found fewer jobs than asked: wait for a wake-up before asking again. */
  private drained = false;
  private stopping = false;
  private pollTimer: NodeJS.Timeout | null = null;
  private readonly idleWaiters = new Set<() => void>();

  constructor(
    readonly settings: QueueSettings,
    private readonly worker: Worker,
    private readonly app: Docket,
    private readonly internals: AppInternals,
    private readonly definitions: ReadonlyMap<string, AnyJobDefinition>,
    private readonly executor: Executor,
    private readonly completer: Completer,
  ) {}

  get activeCount(): number {
    return this.active.size;
  }

  start(): void {
    this.schedulePoll();
    this.pump();
  }

  /** A notification said this queue has runnable jobs (or a poll fired). */
  wake(): void {
    this.wakes++;
    this.drained = false;
    this.pump();
  }
  /** Counts wake-ups: one that arrives while a claim is in flight must not be lost when it comes back short. */
  private wakes = 0;

  /**
   * Outcomes were written: if fetching paused for the completion backlog, it may go on; if a
   * plugin cut this queue's last claim short, a settled job of it freed capacity: claim again.
   */
  nudge(batch: readonly Settlement[]): void {
    if (this.cutShort && batch.some((s) => s.job.queue === this.settings.name)) this.wake();
    else this.pump();
  }

  /**
   * The queue was paused: start nothing more. Claimed jobs that have not started go back to the
   * queue (their attempt not spent); running ones finish. A resume (`p:`) wakes the runner.
   */
  pause(): void {
    this.pauses++;
    this.drained = true;
    if (this.stopping || this.buffer.length === 0) return;
    const unstarted = this.buffer.map((j) => j.id);
    this.buffer = [];
    this.worker.giveBack(unstarted, null);
  }
  /** Counts pause notifications: a claim that was in flight when one arrived gives its jobs back. */
  private pauses = 0;

  /**
   * A job of this queue becomes due at `at` (epoch ms, database clock): wake then, rather than at
   * the next poll. Only the earliest pending wake-up is kept; polling still covers clock skew.
   */
  wakeAt(at: number): void {
    if (this.stopping || !Number.isFinite(at)) return;
    if (this.dueTimer && this.dueAt <= at) return;
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.dueAt = at;
    this.dueTimer = setTimeout(
      () => {
        this.dueTimer = null;
        this.dueAt = Infinity;
        this.wake();
        // Once more shortly after, in case this clock runs a little ahead of the database's; then
        // arm the timer for the next job due (an earlier announcement replaced its timer).
        setTimeout(() => {
          this.wake();
          void this.armNextDue();
        }, 25).unref?.();
      },
      Math.max(0, at - Date.now()),
    );
    this.dueTimer.unref?.();
  }
  /** Sets the due timer for the earliest job of this queue not due yet. */
  async armNextDue(): Promise<void> {
    if (this.stopping) return;
    try {
      const at = await this.internals.jobs.nextDue(this.app.sql, { queue: this.settings.name });
      if (at) this.wakeAt(at.getTime());
    } catch (error) {
      this.app.logger.warn(`finding the next due job of queue '${this.settings.name}' failed; polling covers it`, { error });
    }
  }
  private dueTimer: NodeJS.Timeout | null = null;
  private dueAt = Infinity;

  private schedulePoll(): void {
    if (this.stopping) return;
    this.pollTimer = setTimeout(() => {
      this.wake();
      this.schedulePoll();
    }, this.settings.pollIntervalMs);
    this.pollTimer.unref?.();
  }

  private pump(): void {
    if (this.stopping) return;
    const { concurrency, prefetch } = this.settings;
    while (this.active.size < concurrency) {
      const job = this.buffer.shift();
      if (!job) break;
      this.startJob(job);
    }
    const want = concurrency + prefetch - this.active.size - this.buffer.length;
    // Refill once the buffer is down to one round of slots: batches stay large (each statement
    // costs about as much as a few dozen rows), and what is left keeps the slots busy meanwhile.
    if (!this.fetching && !this.drained && want > 0 && this.buffer.length <= concurrency) {
      // Let outcomes catch up first; the completer nudges this runner after each batch it writes.
      if (this.completer.backlog > 5 * (concurrency + prefetch) + 1000) return;
      this.inFlight = this.fetch(want);
    }
  }

  private async fetch(limit: number): Promise<void> {
    this.fetching = true;
    const pauses = this.pauses;
    const wakes = this.wakes;
    try {
      const jobs = isShapedQueue(this.internals.hooks, this.settings.name) ? await this.claimShaped(limit) : await this.claimPlain(limit);
      // Short: the queue is drained, unless a wake-up came in meanwhile (its jobs may have been
      // committed after this claim's snapshot).
      if (jobs.length < limit && wakes === this.wakes) this.drained = true;
      if (jobs.length === 0) return;
      if (jobs.length > 1) jobs.sort(byPriorityThenAge);
      if (this.stopping || pauses !== this.pauses) {
        await this.internals.jobs.release(this.app.sql, { workerId: this.worker.id, ids: jobs.map((j) => j.id), error: null });
        return;
      }
      this.buffer.push(...jobs);
      if (tapped(this.internals.hooks.jobsFetched)) {
        this.internals.hooks.jobsFetched
          .promise(jobs, this.worker.view)
          .catch((error) => this.app.logger.error('jobsFetched hook failed', { error }));
      }
    } catch (error) {
      this.app.logger.error(`fetching from queue '${this.settings.name}' failed; retrying at the next poll`, { error });
      this.drained = true;
    } finally {
      this.fetching = false;
      // Also after a short or empty claim: a wake-up that came in meanwhile claims again now.
      this.pump();
    }
  }

  /** The core's one claim statement (no plugin shapes this queue's claims). */
  private async claimPlain(limit: number): Promise<RunningJob[]> {
    const rows = await this.internals.jobs.claim(this.internals.workerSql(), {
      queue: this.settings.name,
      limit,
      workerId: this.worker.id,
      asyncCommit: this.worker.asyncClaims,
    });
    const jobs = new Array<RunningJob>(rows.length);
    for (let i = 0; i < rows.length; i++) jobs[i] = toClaimedJob(rows[i], this.settings.name, this.worker.id);
    return jobs;
  }

  /** A claim plugins shape (`beforeClaim`/`afterClaim`), in its own transaction. */
  private async claimShaped(limit: number): Promise<RunningJob[]> {
    this.worker.markShaped(this.settings.name);
    const result = await claimWithHooks(this.app, this.internals, {
      queue: this.settings.name,
      limit,
      workerId: this.worker.id,
      asyncCommit: this.worker.asyncClaims,
      keyCursor: this.keyCursor,
    });
    this.keyCursor = result.keyCursor;
    // Cut short by a plugin: wait for capacity to free (a settled job of this queue, here or on
    // any worker, wakes it) or for the time a tap named, not for the next poll.
    this.cutShort = result.shaped && result.jobs.length < limit;
    if (result.retryAt) this.wakeAt(result.retryAt.getTime());
    return result.jobs;
  }
  /** Where the next per-key (round-robin) claim starts. */
  private keyCursor: unknown = null;
  /** The last claim took fewer jobs than asked because a plugin narrowed it. */
  private cutShort = false;

  private startJob(job: RunningJob): void {
    const abort = new AttemptAbort();
    const entry: Active = { job, abort, done: Promise.resolve() };
    this.active.set(job.id, entry);
    entry.done = this.runAttempt(job, abort).finally(() => {
      this.active.delete(job.id);
      if (this.active.size === 0) for (const resolve of this.idleWaiters) resolve();
      this.pump();
    });
  }

  private async runAttempt(job: RunningJob, abort: AttemptAbort): Promise<void> {
    const definition = this.definitions.get(job.name);
    const { hooks } = this.internals;
    let timer: NodeJS.Timeout | undefined;
    let stopAt: (() => void) | null = null;
    let ctx: AttemptContext | null = null;
    try {
      // Claimed again before this process finished settling its previous attempt (a retry due at
      // once): that attempt's `afterSettle` comes first.
      const previous = this.internals.settling.settled(job.id);
      if (previous) await previous;
      if (this.internals.codec.decodesArgs) await this.internals.codec.decodeJob(job);
      if (!definition) {
        throw new UnknownJobError(
          `No handler for job '${job.name}' on worker ${this.worker.id} (queue '${job.queue}'). Add its definition to the worker's \`jobs\`, or route it to a queue a worker with that job serves.`,
        );
      }
      // An atomic job's handler runs in its completion transaction, which holds the row: only its
      // last progress report is stored, with the outcome.
      const atomic = definition.atomic && this.executor.kind === 'async';
      ctx = new this.internals.Context(job, this.app, this.worker.id, abort, this.worker.progress, !atomic);
      if (tapped(hooks.jobContext)) hooks.jobContext.call(ctx, this.worker.view);
      const timeoutMs = job.limits.timeoutMs;
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            abort.abort(
              new LimitExceededError(`Job '${job.name}' (${job.id}) exceeded its time limit of ${timeoutMs} ms and was stopped.`, {
                details: { limit: 'timeoutMs', value: timeoutMs },
              }),
            ),
          timeoutMs,
        );
      }
      if (tapped(hooks.jobStart) && wanted(hooks.jobStart, job)) {
        const bound = new AttemptBound(abort);
        await hooks.jobStart.promise(ctx, bound);
        stopAt = bound.arm();
      }
      // Stopped before it started (a tap's time already past, a cancellation): the handler never runs.
      if (abort.aborted) throw abort.reason;
      const attemptCtx = ctx;
      if (atomic) {
        await this.wrapped(attemptCtx, () => this.worker.runAtomic(definition, job, attemptCtx, abort, this.executor));
        return;
      }
      const result = await this.wrapped(attemptCtx, () => this.executor.run(definition, job, attemptCtx, abort));
      this.completer.add({ job, outcome: successOutcome(job, result), ctx }, ctx.endProgress());
    } catch (error) {
      await this.settleFailure(job, definition, ctx, abort.aborted ? abort.reason : error, ctx?.endProgress());
    } finally {
      clearTimeout(timer);
      stopAt?.();
    }
  }

  /** Runs the attempt through the `wrapAttempt` taps that want its job (directly when none does). */
  private wrapped(ctx: JobContext, run: AttemptRun): Promise<unknown> {
    const { wrapAttempt } = this.internals.hooks;
    if (!tapped(wrapAttempt) || !wanted(wrapAttempt, ctx.job)) return run();
    return wrapAttempt.call(run, ctx)();
  }

  /**
   * Records a failed attempt (or gives the job back when the worker is shutting down), with the
   * attempt's last progress report that is not stored yet.
   */
  private async settleFailure(
    job: RunningJob,
    definition: JobDefinition | undefined,
    ctx: JobContext | null,
    error: unknown,
    progress: string | undefined,
  ): Promise<void> {
    const outcome = failureOutcome(job, definition, error);
    if (outcome === null) {
      // Stored before the job goes back (the write is fenced to this attempt, which the release ends).
      if (progress !== undefined) await this.worker.storeProgress(job, progress);
      this.worker.giveBack([job.id], toJobError(error, job));
      return;
    }
    if (outcome.state === 'failed' || outcome.state === 'retry') {
      this.app.logger.debug(`job ${job.name} (${job.id}) attempt ${job.attempt} failed`, { error: outcome.error.message });
    }
    this.completer.add({ job, outcome, ctx }, progress);
  }

  /** Aborts a running job's handler, or cancels a claimed job that has not started. */
  cancel(id: string): boolean {
    const active = this.active.get(id);
    if (active) {
      active.abort.abort(new JobCancelledError(`Job '${active.job.name}' (${id}) was cancelled while running.`));
      return true;
    }
    const index = this.buffer.findIndex((j) => j.id === id);
    if (index >= 0) {
      const [job] = this.buffer.splice(index, 1);
      this.completer.add({
        job,
        outcome: { state: 'cancelled', error: toJobError(new JobCancelledError('Cancelled before it started.'), job) },
        ctx: null,
      });
      return true;
    }
    return false;
  }

  /** Stops fetching and returns the ids of claimed jobs that never started. */
  stopFetching(): string[] {
    this.stopping = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.dueTimer) clearTimeout(this.dueTimer);
    const unstarted = this.buffer.map((j) => j.id);
    this.buffer = [];
    return unstarted;
  }

  /**
   * Resolves once a claim that was under way when fetching stopped has ended. Its jobs were given
   * back (`fetch` releases what a stopping runner claimed), so a worker that waits for this before
   * it reports itself stopped leaves no job `running` under its id, even with the app closed at once.
   */
  fetchSettled(): Promise<void> {
    return this.inFlight;
  }

  /** Resolves when no job of this queue runs, or after `timeoutMs`. */
  waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.active.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  /** Aborts every running handler with `reason`; resolves when all attempts have settled. */
  async abortAll(reason: WorkerShutdownError): Promise<void> {
    const pending = [...this.active.values()];
    for (const a of pending) a.abort.abort(reason);
    await Promise.all(pending.map((a) => a.done));
  }
}

function byPriorityThenAge(a: RunningJob, b: RunningJob): number {
  // Ids are decimal strings: a shorter one is smaller, equal lengths compare as text.
  return b.priority - a.priority || a.scheduledAt.getTime() - b.scheduledAt.getTime() || a.id.length - b.id.length || (a.id < b.id ? -1 : 1);
}
