import type postgres from 'postgres';
import type { Docket, WaitingRelease } from './app.js';
import type { Codec } from './codec.js';
import { JobNotFoundError, PluginFailedError } from './errors.js';
import { type CoreHooks, everyTapFilters, type SettleContext, tapped, wanted } from './hooks.js';
import { toJsonText } from './json.js';
import type { Logger } from './logger.js';
import { settledChannel } from './notifier.js';
import { sendNow } from './send-now.js';
import { type CompletionInput, IDS_PER_NOTIFY, type JobsSql, toJobRecord } from './sql/jobs.js';
import { FINISHED_STATES, type JobError, type JobRecord, type JobState, type Outcome, type SettledJob, type Settlement } from './types.js';
import { isShapedQueue } from './worker/claim.js';

/** Where a `settle` tap's `afterCommit` and `pipeline` go (a transaction's end, or an enclosing one's). */
type EndOfTransaction = Pick<SettleContext, 'afterCommit' | 'pipeline'>;
/** The outcomes' write, sent but not awaited: the COMMIT goes down the connection right behind it. */
interface PendingWrite {
  readonly settled: Promise<SettledJob[]>;
}
/** Attempts' last progress reports not yet stored, by job id (JSON text): written with their outcomes. */
type Progress = ReadonlyMap<string, string>;
/** How a hooked write fences its attempts (see `writeHooked`). */
type Fence = 'optimistic' | 'fenced';

/** An optimistic settle transaction found an attempt that is no longer current: it is rolled back and retried fenced. Never escapes this module. */
class StaleAttempt extends Error {}

/**
 * Every ending of a job goes through here, in one order: fence → `settle` → write → after-commit
 * callbacks → one `afterSettle` fan-out. Two kinds of ending:
 * - attempts a worker finished (`writeAttempts`, batched by the completer; `writeAttemptsIn` for an
 *   atomic job inside its own transaction): taps may still change the outcome;
 * - outcomes written by someone else's statement (`cancel`, `settleWritten` for plugins,
 *   `releaseWaiting`): the row already holds the outcome, taps observe it.
 *
 * A plugin pays only for the jobs it cares about: a `settle` tap that declares `wants` sees only
 * the settlements it wants, and a batch that no tap wants is written by the one plain statement,
 * without a transaction.
 */
export class Settlements {
  constructor(
    private readonly app: Docket,
    private readonly hooks: CoreHooks,
    private readonly codec: Codec,
    private readonly jobs: () => JobsSql,
    private readonly logger: Logger,
  ) {}

  // ---------------------------------------------------------------------------------------------
  // Attempts

  /**
   * Writes a worker's attempt outcomes. `wakeQueues`: queues whose claims plugins shape — a job of
   * one of them that settles announces freed capacity to every worker (`p:` on commit).
   */
  async writeAttempts(
    /** Where to write: the workers' pool (`AppInternals.workerSql`). */
    sql: postgres.Sql,
    batch: readonly Settlement[],
    workerId: string,
    wakeQueues: readonly string[] = [],
    progress?: Progress,
  ): Promise<void> {
    const hooked = this.needingSettle(batch);
    let settled: SettledJob[];
    if (hooked.length === 0) {
      settled = await this.writePlain(sql, batch, workerId, wakeQueues, progress);
    } else {
      try {
        settled = await this.writeHookedAlone(sql, batch, hooked, workerId, wakeQueues, progress, 'optimistic');
      } catch (error) {
        if (!(error instanceof StaleAttempt)) throw error;
        // Rare (an attempt was recovered, cancelled or released while it ran): the transaction
        // rolled back; settle again, the fence answered before any tap runs.
        settled = await this.writeHookedAlone(sql, batch, hooked, workerId, wakeQueues, progress, 'fenced');
      }
    }
    this.announce(settled);
  }

  /** The hooked write in a transaction of its own; its after-commit work runs once it committed. */
  private async writeHookedAlone(
    sql: postgres.Sql,
    batch: readonly Settlement[],
    hooked: readonly Settlement[],
    workerId: string,
    wakeQueues: readonly string[],
    progress: Progress | undefined,
    fence: Fence,
  ): Promise<SettledJob[]> {
    const end = new TransactionEnd(this.logger);
    const pending = await sql.begin((tx) => this.writeHooked(tx, batch, hooked, workerId, wakeQueues, end, progress, fence));
    // The transaction has returned; it committed only if every statement sent into it succeeded.
    const settled = await written(pending, end);
    await end.runAfterCommit();
    return settled;
  }

  /**
   * For an atomic job: the same steps inside the caller's transaction (the handler's writes commit
   * with the outcome). Returns what to run once that transaction has committed. The caller has
   * fenced the attempt already (an atomic job locks its row before the handler runs).
   */
  async writeAttemptsIn(
    tx: postgres.TransactionSql,
    batch: readonly Settlement[],
    workerId: string,
    wakeQueues: readonly string[] = [],
    progress?: Progress,
  ): Promise<() => Promise<void>> {
    const end = new TransactionEnd(this.logger);
    const hooked = this.needingSettle(batch);
    // Awaited here, before the caller's transaction commits (nothing may be left in flight behind its COMMIT).
    const settled =
      hooked.length === 0
        ? await this.writePlain(tx, batch, workerId, wakeQueues, progress)
        : await written(await this.writeHooked(tx, batch, hooked, workerId, wakeQueues, end, progress, 'fenced'), end);
    return async () => {
      await end.runAfterCommit();
      this.announce(settled);
    };
  }

  /** The settlements some `settle` tap needs (all of them when a tap declares no `wants`). */
  private needingSettle(batch: readonly Settlement[]): readonly Settlement[] {
    const { settle } = this.hooks;
    if (!tapped(settle)) return [];
    if (!everyTapFilters(settle)) return batch;
    let out: Settlement[] | null = null;
    for (const s of batch) if (wanted(settle, s)) (out ??= []).push(s);
    return out ?? [];
  }

  /** No tap involved: one fenced statement writes the batch. */
  private async writePlain(
    sql: postgres.Sql | postgres.TransactionSql,
    batch: readonly Settlement[],
    workerId: string,
    wakeQueues: readonly string[],
    progress: Progress | undefined,
  ): Promise<SettledJob[]> {
    const result = await this.jobs().complete(sql, { workerId, items: await this.encoded(batch, progress), wakeQueues });
    return this.settledOf(batch, result.written, result.finishedAt);
  }

  /**
   * Lock (fence) the settlements taps need → `settle` → write the whole batch in one statement, in
   * one transaction, so plugin bookkeeping commits with the outcomes. The write is sent, not
   * awaited: the caller returns from the transaction at once, so the COMMIT follows the write (and
   * any statements taps pipelined) in the same round trip; `written` then awaits them all.
   *
   * `optimistic`: the fence is sent and the taps fire without waiting for its answer (their
   * statements go down the connection behind it, so the rows are locked before they run), which
   * saves a round trip; if the answer shows an attempt that is no longer current, this throws
   * `StaleAttempt` and the transaction rolls back, taps' writes with it, for a `fenced` retry.
   * `fenced`: the taps fire only for the attempts the fence's answer kept.
   */
  private async writeHooked(
    tx: postgres.TransactionSql,
    batch: readonly Settlement[],
    hooked: readonly Settlement[],
    workerId: string,
    wakeQueues: readonly string[],
    end: TransactionEnd,
    progress: Progress | undefined,
    fence: Fence,
  ): Promise<PendingWrite> {
    const jobs = this.jobs();
    const lock = jobs.lockRunning(tx, { workerId, jobs: hooked.map((s) => s.job) });
    // Optimistic: sent now, and every hooked attempt taken as current until the answer says otherwise.
    const answer = fence === 'optimistic' ? sendNow(lock) : null;
    answer?.catch(() => {}); // awaited below, whatever the taps do
    const locked: ReadonlySet<string> = new Set(answer === null ? (await lock).map((l) => l.id) : hooked.map((s) => s.job.id));
    // Whether an attempt the taps were given has moved on: then nothing they did may commit.
    const stale = async () => answer !== null && (await answer).length !== hooked.length;
    const current = answer === null ? hooked.filter((s) => locked.has(s.job.id)) : hooked;
    let fired: Settlement[];
    try {
      fired =
        current.length === 0
          ? []
          : await this.fire(
              tx,
              current.map((s) => ({ ...s })),
              workerId,
              end,
            );
    } catch (error) {
      // A tap may have failed only because an attempt moved on (or on the fence's own failure).
      if (await stale()) throw new StaleAttempt();
      throw error;
    }
    if (await stale()) throw new StaleAttempt();
    // The batch in its original order, with the outcomes taps chose; stale hooked ones left out.
    const changed = new Map(fired.map((s) => [s.job.id, s]));
    const hookedIds = new Set(hooked.map((s) => s.job.id));
    const final: Settlement[] = [];
    for (const s of batch) {
      if (!hookedIds.has(s.job.id)) {
        final.push(s);
        continue;
      }
      const chosen = changed.get(s.job.id);
      if (chosen) final.push(chosen);
    }
    for (const s of hooked) if (!locked.has(s.job.id)) this.warnStale(s);
    if (final.length === 0) return { settled: Promise.resolve([]) };
    const items = await this.encoded(final, progress);
    const settled = jobs.complete(tx, { workerId, items, wakeQueues }).then((result) => this.settledOf(final, result.written, result.finishedAt));
    // Awaited by `written`; handled now so that a failure while the transaction ends is not unhandled.
    settled.catch(() => {});
    return { settled };
  }

  /** The write's input, results encoded when a codec is installed (taps saw them decoded). */
  private encoded(batch: readonly Settlement[], progress: Progress | undefined): CompletionInput[] | Promise<CompletionInput[]> {
    const inputs = progress === undefined ? batch.map(toInput) : batch.map((s) => withProgress(toInput(s), progress.get(s.job.id)));
    return this.codec.encodesResults ? this.codec.encodeOutcomes(inputs) : inputs;
  }

  private settledOf(batch: readonly Settlement[], written: readonly string[], finishedAt: Date): SettledJob[] {
    const all = written.length === batch.length;
    // Nobody listens and nothing went stale: no list to build (the plain drain's case).
    if (all && !tapped(this.hooks.afterSettle)) return [];
    const kept = all ? null : new Set(written);
    const settled: SettledJob[] = [];
    for (const s of batch) {
      if (kept === null || kept.has(s.job.id)) settled.push({ job: s.job, outcome: s.outcome, finishedAt });
      else this.warnStale(s);
    }
    return settled;
  }

  private warnStale(s: Settlement): void {
    this.logger.warn('outcome not written: the job is no longer this attempt (recovered, cancelled or released)', {
      job: s.job.id,
      attempt: s.job.attempt,
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Outcomes written by other statements: taps observe them

  /**
   * Cancels a job: a pending or waiting one ends `cancelled` at once (settled here); a running one
   * is marked, and its worker settles the aborted attempt. Finished jobs are left as they are.
   */
  async cancel(id: string): Promise<void> {
    const jobs = this.jobs();
    if (!tapped(this.hooks.settle) && !tapped(this.hooks.afterSettle)) {
      const [row] = await jobs.cancel(this.app.sql, { id });
      if (!row) throw new JobNotFoundError(`No job with id ${id} to cancel.`, { details: { id } });
      return;
    }
    const end = new TransactionEnd(this.logger);
    const settled = await this.app.sql.begin(async (tx) => {
      const [row] = await jobs.cancel(tx, { id });
      if (!row) throw new JobNotFoundError(`No job with id ${id} to cancel.`, { details: { id } });
      if (row.state !== 'cancelled' || row.previous_state === 'cancelled') return [];
      const [full] = await jobs.getOne(tx, { id });
      // This transaction just cancelled the row, so it can read it back.
      if (!full) throw new Error(`Docket: job ${id} was cancelled but its row could not be read back in the same transaction.`);
      const job = toJobRecord(full);
      if (this.codec.decodesJobs) await this.codec.decodeRecords([job]);
      return this.observe(tx, [job], null, end);
    });
    await end.sent();
    await end.runAfterCommit();
    this.announce(settled);
  }

  /** `app.settleJobs`: a plugin's own fenced statement ended jobs outside any attempt. */
  async settleWritten(write: (tx: postgres.TransactionSql) => Promise<readonly string[]>): Promise<string[]> {
    const end = new TransactionEnd(this.logger);
    const settled = await this.app.sql.begin(async (tx) => {
      const ids = [...new Set(await write(tx))];
      if (ids.length === 0) return [];
      const records = (await this.jobs().getMany(tx, { ids })).map(toJobRecord).filter((job) => isFinished(job.state));
      if (this.codec.decodesJobs) await this.codec.decodeRecords(records);
      for (let i = 0; i < records.length; i += IDS_PER_NOTIFY) {
        const chunk = records.slice(i, i + IDS_PER_NOTIFY).map((job) => job.id);
        await tx.unsafe(`SELECT pg_notify($1, $2)`, [settledChannel(this.app.channel), `s:${chunk.join(',')}`]);
      }
      // Jobs of a queue whose claims plugins shape may have held capacity (a running job a plugin
      // failed or finished): runners that a claim cut short hear it at once, as after an attempt.
      const shaped = [...new Set(records.map((job) => job.queue))].filter((queue) => isShapedQueue(this.hooks, queue));
      if (shaped.length > 0) await this.app.wake(shaped, { sql: tx });
      return this.observe(tx, records, null, end);
    });
    await end.sent();
    await end.runAfterCommit();
    this.announce(settled);
    return settled.map((s) => s.job.id);
  }

  /**
   * `app.releaseWaitingJobs`: moves held jobs to their final state inside a settle transaction,
   * fires `settle` for them (nested, so holds can nest) and, once that transaction commits, their
   * after-commit callbacks and `afterSettle`.
   */
  async releaseWaiting(ctx: SettleContext, releases: readonly WaitingRelease[]): Promise<string[]> {
    if (releases.length === 0) return [];
    if (this.codec.encodesResults) releases = await this.codec.encodeReleases(releases);
    const rows = await this.jobs().releaseWaiting(ctx.sql, {
      items: releases.map((r) => ({
        id: r.id,
        state: r.state,
        result: r.result === undefined ? null : toJsonText(r.result, () => `Result of job ${r.id}`),
        error: r.error ? JSON.stringify(r.error) : null,
      })),
    });
    if (rows.length === 0) return [];
    const records = rows.map(toJobRecord);
    if (this.codec.decodesJobs) await this.codec.decodeRecords(records);
    const end = new TransactionEnd(this.logger);
    // Statements pipelined here go to the enclosing settle's transaction, which awaits them before
    // it counts as committed; work for after the commit runs as a group once it has.
    const settled = await this.observe(ctx.sql, records, ctx.workerId, {
      afterCommit: (fn) => end.afterCommit(fn),
      pipeline: (s) => ctx.pipeline(s),
    });
    ctx.afterCommit(async () => {
      await end.runAfterCommit();
      this.announce(settled);
    });
    return settled.map((s) => s.job.id);
  }

  /** Fires `settle` (ctx null) for outcomes already written; taps observe them but cannot change them. */
  private async observe(
    tx: postgres.TransactionSql,
    records: readonly JobRecord[],
    workerId: string | null,
    end: EndOfTransaction,
  ): Promise<SettledJob[]> {
    const settled = records.map((job) => ({ job, outcome: storedOutcome(job), finishedAt: job.finishedAt ?? new Date() }));
    const watched = this.needingSettle(settled.map((s) => ({ job: s.job, outcome: { ...s.outcome }, ctx: null })));
    if (watched.length > 0) await this.fire(tx, [...watched], workerId, end);
    return settled;
  }

  // ---------------------------------------------------------------------------------------------
  // Hooks

  private async fire(tx: postgres.TransactionSql, settlements: Settlement[], workerId: string | null, end: EndOfTransaction): Promise<Settlement[]> {
    const ctx: SettleContext = {
      sql: tx,
      app: this.app,
      workerId,
      afterCommit: (fn) => end.afterCommit(fn),
      pipeline: (statement) => end.pipeline(statement),
    };
    const result = await this.hooks.settle.promise(settlements, ctx);
    if (!Array.isArray(result) || result.length !== settlements.length) {
      throw new PluginFailedError('A settle tap must return the settlements array it was given.', { details: { hook: 'settle' } });
    }
    return result;
  }

  /** The one `afterSettle` fan-out: after commit, never awaited by the writer. */
  private announce(settled: readonly SettledJob[]): void {
    if (settled.length === 0 || !tapped(this.hooks.afterSettle)) return;
    this.hooks.afterSettle.promise([...settled]).catch((error) => this.logger.error('afterSettle hook failed', { error }));
  }
}

/**
 * What one settle transaction gathers for its end, from the core and from taps: statements sent
 * into it without awaiting (`ctx.pipeline`), and work to run once it has committed (`ctx.afterCommit`).
 */
class TransactionEnd implements EndOfTransaction {
  readonly #afterCommit: Array<() => void | Promise<void>> = [];
  /** In the order they went down the connection. */
  readonly #pipelined: Array<Promise<unknown>> = [];

  constructor(private readonly logger: Logger) {}

  afterCommit(fn: () => void | Promise<void>): void {
    this.#afterCommit.push(fn);
  }

  pipeline(statement: PromiseLike<unknown>): void {
    // Sent now, before the statements the core sends after it; awaited by `sent`, and handled now
    // so that a failure while the transaction ends is not unhandled.
    const sent = sendNow(statement);
    sent.catch(() => {});
    this.#pipelined.push(sent);
  }

  /**
   * Waits for every pipelined statement, in the order they were sent. The first failure is the one
   * thrown (what follows a failed statement in a transaction fails with "transaction aborted",
   * which says less), and a failure means the transaction did not commit.
   */
  async sent(): Promise<void> {
    for (const statement of this.#pipelined) await statement;
  }

  /** Runs the after-commit work in order; a failure is logged and the rest still run. */
  async runAfterCommit(): Promise<void> {
    for (const fn of this.#afterCommit) {
      try {
        await fn();
      } catch (error) {
        this.logger.error('afterCommit callback failed', { error });
      }
    }
  }
}

/** The outcomes' write, once every statement pipelined before it has succeeded (see `TransactionEnd.sent`). */
async function written(pending: PendingWrite, end: TransactionEnd): Promise<SettledJob[]> {
  await end.sent();
  return pending.settled;
}

function toInput(s: Settlement): CompletionInput {
  return { id: s.job.id, attempt: s.job.attempt, outcome: s.outcome };
}

function withProgress(input: CompletionInput, progress: string | undefined): CompletionInput {
  if (progress !== undefined) input.progress = progress;
  return input;
}

function isFinished(state: JobState): boolean {
  return (FINISHED_STATES as readonly JobState[]).includes(state);
}

/** The outcome a finished row records (for settlements the core fires after the write). */
function storedOutcome(job: JobRecord): Outcome {
  return job.state === 'succeeded'
    ? { state: 'succeeded', result: job.result }
    : job.state === 'failed'
      ? { state: 'failed', error: job.errors[job.errors.length - 1] ?? syntheticError(job, 'failed') }
      : { state: 'cancelled', error: null };
}

function syntheticError(job: JobRecord, state: string): JobError {
  return { attempt: job.attempt, name: 'Error', message: `job ${state}`, at: new Date().toISOString() };
}
