/**
 * @docket/plugin-expiry — jobs that must start by a time (Celery's `expires`, pg-boss's
 * expiration), and deadlines over all of a job's attempts.
 *
 *   const app = new Docket({ connection, plugins: [expiry()] });
 *   await app.push(sendCode.withArgs({ to }).withExpiresIn(60_000));   // start within a minute, or never
 *   await app.push(report.withDeadline(new Date('2030-01-01T06:00Z'))); // stopped if still running then
 *
 * Never started late: a worker checks a claimed job's expiry right before its handler would run
 * (`jobStart`) and ends it `cancelled` with DOCKET_EXPIRY_EXPIRED instead; a periodic sweep ends the
 * pending jobs nobody claimed once they expire (through `app.settleJobs`, so `settle` and
 * `afterSettle` taps and `waitForJob` see them); a failed attempt whose retry would start after the
 * expiry ends the same way (`settle`). A deadline also stops a running attempt at that time
 * (`attempt.abortAt`), and the job ends `failed` with DOCKET_EXPIRY_DEADLINE_EXCEEDED. Jobs without
 * an expiry pay nothing: every tap declares `wants`, and the sweep's index holds only expiring
 * pending jobs. README.md states the exact rules and how a deadline combines with time limits.
 */
import {
  booleanOption,
  type Docket,
  type DocketPlugin,
  InvalidJobOptionError,
  integerOption,
  type JobContext,
  type JobError,
  type JobInsert,
  JobInvocation,
  type JobRecord,
  type PeriodicEvents,
  periodicBinding,
  type RunningJob,
  rejectUnknownKeys,
  type Settlement,
} from '@docket/core';
import { DeadlineExceededError, JobExpiredError } from './errors.js';
import { clockRead, type ExpiredJobRow, expiredJobsCancel, expiredJobsExist, jobErrorAppend, MIGRATIONS } from './sql.js';

export { DeadlineExceededError, EXPIRY_ERRORS, JobExpiredError } from './errors.js';

export const PLUGIN_NAME = 'expiry';
export const PLUGIN_VERSION = '0.1.0';
/** The invocation option the builders set and `beforePush` reads. */
export const EXPIRY_OPTION = 'expiry.times';
/** The `meta` key a pushed job carries its times in (ISO strings), for the worker that runs it. */
export const EXPIRY_META_KEY = 'expiry.times';
/** The longest duration a builder takes (about 4,400 years: exact in a double, and in timestamptz). */
const MAX_MS = 2 ** 47;

/** What the builders record on an invocation (each pair: an absolute time or a duration after the push). */
export interface ExpirySpec {
  readonly expiresAt: Date | null;
  readonly expiresInMs: number | null;
  readonly deadline: Date | null;
  readonly deadlineInMs: number | null;
}

/** A pushed job's times, as its `meta[EXPIRY_META_KEY]` holds them. */
export interface ExpiryTimes {
  /** No attempt starts at or after this time: the earlier of the expiry and the deadline. */
  readonly startBy: Date;
  /** A running attempt is stopped at this time (null: no deadline). */
  readonly deadline: Date | null;
}

declare module '@docket/core' {
  interface JobInvocation<A, R> {
    /** No attempt of the job starts at or after `at`; it ends `cancelled` (DOCKET_EXPIRY_EXPIRED) instead (plugin-expiry). */
    withExpiresAt(at: Date): this;
    /** As `withExpiresAt`, `ms` milliseconds after the push (database clock, as `withDelay`). */
    withExpiresIn(ms: number): this;
    /**
     * A deadline over all attempts (plugin-expiry): an attempt still running at `at` is stopped and
     * the job ends `failed` (DOCKET_EXPIRY_DEADLINE_EXCEEDED); none starts after it.
     */
    withDeadline(at: Date): this;
    /** As `withDeadline`, `ms` milliseconds after the push (database clock). */
    withDeadlineIn(ms: number): this;
  }
}

function checkDate(builder: string, at: unknown): Date {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) {
    throw new InvalidJobOptionError(`${builder}(at): at must be a valid Date, got ${describeValue(at)}.`, { details: { option: builder } });
  }
  return at;
}

function checkMs(builder: string, ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0 || ms > MAX_MS) {
    throw new InvalidJobOptionError(`${builder}(ms): ms must be a number of milliseconds above 0 (at most 2^47), got ${describeValue(ms)}.`, {
      details: { option: builder },
    });
  }
  return ms;
}

function describeValue(value: unknown): string {
  if (value instanceof Date) return 'an invalid Date';
  if (typeof value === 'string') return `a string (${JSON.stringify(value.length > 30 ? `${value.slice(0, 30)}…` : value)})`;
  return value === null ? 'null' : typeof value === 'number' ? String(value) : typeof value;
}

const NO_SPEC: ExpirySpec = Object.freeze({ expiresAt: null, expiresInMs: null, deadline: null, deadlineInMs: null });

function specOf(invocation: JobInvocation): ExpirySpec {
  return (invocation.options.extensions[EXPIRY_OPTION] as ExpirySpec | undefined) ?? NO_SPEC;
}

// The builders, on every invocation (the module augmentation above gives them their types). A later
// call replaces the same kind of time, as withDelay replaces withScheduledAt.
for (const [builder, make] of [
  ['withExpiresAt', (spec: ExpirySpec, v: unknown) => ({ ...spec, expiresAt: checkDate('withExpiresAt', v), expiresInMs: null })],
  ['withExpiresIn', (spec: ExpirySpec, v: unknown) => ({ ...spec, expiresInMs: checkMs('withExpiresIn', v), expiresAt: null })],
  ['withDeadline', (spec: ExpirySpec, v: unknown) => ({ ...spec, deadline: checkDate('withDeadline', v), deadlineInMs: null })],
  ['withDeadlineIn', (spec: ExpirySpec, v: unknown) => ({ ...spec, deadlineInMs: checkMs('withDeadlineIn', v), deadline: null })],
] as const) {
  Object.defineProperty(JobInvocation.prototype, builder, {
    configurable: true,
    writable: true,
    value: function (this: JobInvocation, value: unknown) {
      return this.with(EXPIRY_OPTION, Object.freeze(make(specOf(this), value)));
    },
  });
}

/** The times a job carries (from `job.meta`), or null when it has none or they are malformed. */
export function expiryOf(job: Pick<RunningJob, 'meta'>): ExpiryTimes | null {
  const raw = job.meta[EXPIRY_META_KEY] as { startBy?: unknown; deadline?: unknown } | undefined;
  if (raw === undefined || raw === null || typeof raw !== 'object' || typeof raw.startBy !== 'string') return null;
  const startBy = new Date(raw.startBy);
  const deadline = typeof raw.deadline === 'string' ? new Date(raw.deadline) : null;
  if (Number.isNaN(startBy.getTime()) || (deadline !== null && Number.isNaN(deadline.getTime()))) return null;
  return { startBy, deadline };
}

/** Whether a job ended because it expired before it (re)started: `cancelled`, its last error DOCKET_EXPIRY_EXPIRED. */
export function isExpired(job: Pick<JobRecord, 'state' | 'errors'>): boolean {
  return job.state === 'cancelled' && job.errors.at(-1)?.code === 'DOCKET_EXPIRY_EXPIRED';
}

export interface ExpiryOptions {
  /** How often a worker ends the pending jobs that expired. Default 1000 ms. */
  intervalMs?: number;
  /** Most jobs ended per transaction (a sweep loops until none is left). Default 500. */
  batchSize?: number;
  /** Sweep only on the primary worker when an election plugin answers. Default true. Correct either way. */
  primaryOnly?: boolean;
}

const OPTION_KEYS = ['intervalMs', 'batchSize', 'primaryOnly'] as const;

/** A job a sweep ended. */
export interface ExpiredJob {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  readonly expiresAt: Date;
}

/** What one sweep did. */
export interface ExpirySweep {
  readonly expired: readonly ExpiredJob[];
}

/** The events the plugin emits (the `event` hook), with its periodic task's. */
export interface ExpiryEvents extends PeriodicEvents<'expiry', ExpirySweep> {
  /** Jobs ended because they expired: by a sweep, or by a worker that claimed them too late. */
  'expiry.expired': { readonly jobs: readonly ExpiredJob[] };
}

declare module '@docket/core' {
  interface DocketEventMap extends ExpiryEvents {}
}

export interface ExpiryPlugin extends DocketPlugin {
  readonly name: typeof PLUGIN_NAME;
  readonly settings: Readonly<Required<ExpiryOptions>>;
  /** Resolves with the result of the next sweep that finishes on this process. */
  nextRun(options?: { timeoutMs?: number }): Promise<ExpirySweep>;
  /** Sweeps once now, from this process (whatever `primaryOnly` says). */
  runNow(): Promise<ExpirySweep>;
}

export function expiry(options: ExpiryOptions = {}): ExpiryPlugin {
  const where = `${PLUGIN_NAME}(options)`;
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const settings = Object.freeze({
    intervalMs: integerOption(where, 'intervalMs', options.intervalMs, 1000, { min: 10, max: 86_400_000 }),
    batchSize: integerOption(where, 'batchSize', options.batchSize, 500, { min: 1, max: 10_000 }),
    primaryOnly: booleanOption(where, 'primaryOnly', options.primaryOnly, true),
  });
  const binding = periodicBinding<ExpirySweep>('expiry', {
    name: PLUGIN_NAME,
    intervalMs: settings.intervalMs,
    primaryOnly: settings.primaryOnly,
    run: ({ app, signal }) => sweep(app, settings.batchSize, signal),
  });
  /** Attempts a worker refused to start because they had expired, with why (their settle ends them `cancelled`). */
  const refused = new WeakMap<JobContext, string>();

  return {
    name: PLUGIN_NAME,
    version: PLUGIN_VERSION,
    migrations: MIGRATIONS,
    settings,
    nextRun: (opts) => binding.bound().task.nextRun(opts),
    runNow: () => sweep(binding.bound().app, settings.batchSize, undefined),

    apply(app) {
      binding.apply(app);
      app.defineJobOption(EXPIRY_OPTION);
      app.defineJobColumn({ name: 'expires_at', type: 'timestamptz' });

      // Push: the times, absolute, into the column (for the sweep) and into meta (for the worker).
      // Also rows that carry the meta key without the option (copied by a re-run or a re-drive):
      // a new run goes without the old one's plugin options, so the stale times are dropped.
      const carries = (row: JobInsert) => row.extensions[EXPIRY_OPTION] !== undefined || row.meta[EXPIRY_META_KEY] !== undefined;
      app.hooks.beforePush.tapPromise({ name: PLUGIN_NAME, wants: carries }, async (rows, ctx) => {
        let clock: number | null = null;
        for (const row of rows) {
          if (!carries(row)) continue;
          const spec = row.extensions[EXPIRY_OPTION] as ExpirySpec | undefined;
          if (spec === undefined) {
            const { [EXPIRY_META_KEY]: _stale, ...meta } = row.meta;
            row.meta = meta;
            continue;
          }
          // The database clock (read once per push) unless every time involved is absolute.
          const absolute = row.scheduledAt !== null && spec.expiresInMs === null && spec.deadlineInMs === null;
          if (!absolute) clock ??= await clockRead(ctx.sql);
          const times = resolveTimes(row, checkedSpec(spec), clock);
          row.columns.expires_at = times.startBy;
          row.meta = { ...row.meta, [EXPIRY_META_KEY]: { startBy: times.startBy.toISOString(), deadline: times.deadline?.toISOString() ?? null } };
        }
        return rows;
      });

      // Start: never run an attempt after the job's expiry; bound the run by its deadline.
      const expiring = (job: RunningJob) => job.meta[EXPIRY_META_KEY] !== undefined;
      app.hooks.jobStart.tapPromise({ name: PLUGIN_NAME, wants: expiring }, async (ctx, attempt) => {
        const times = expiryOf(ctx.job);
        if (times === null) return;
        const now = new Date();
        if (now >= times.startBy) {
          const why = notStarted(
            ctx.job,
            times.startBy,
            `attempt ${ctx.job.attempt} was claimed at ${now.toISOString()}, after that, and was not started`,
          );
          refused.set(ctx, why);
          throw new JobExpiredError(why);
        }
        const { deadline } = times;
        if (deadline !== null) {
          attempt.abortAt(
            deadline,
            () =>
              new DeadlineExceededError(
                `Job '${ctx.job.name}' (${ctx.job.id}) was still running at its deadline ${deadline.toISOString()}; attempt ${ctx.job.attempt} was stopped and the job is not retried.`,
                { details: { deadline: deadline.toISOString() } },
              ),
          );
        }
      });

      // Outcome: an attempt refused at start, a deadline passed, or a retry that would start too late.
      const concerned = (s: Settlement) => (s.ctx !== null && refused.has(s.ctx)) || (s.outcome.state === 'retry' && expiring(s.job));
      app.hooks.settle.tapPromise({ name: PLUGIN_NAME, wants: concerned }, async (settlements, ctx) => {
        const ended: ExpiredJob[] = [];
        for (const s of settlements) {
          if (!concerned(s)) continue;
          const times = expiryOf(s.job);
          if (times === null) continue;
          const { job, outcome } = s;
          const refusal = s.ctx === null ? undefined : refused.get(s.ctx);
          if (refusal !== undefined) {
            s.outcome = { state: 'cancelled', error: expiredError(job, refusal) };
            ended.push({ id: job.id, queue: job.queue, name: job.name, expiresAt: times.startBy });
          } else if (outcome.state === 'retry' && outcome.error.code === 'DOCKET_EXPIRY_DEADLINE_EXCEEDED') {
            s.outcome = { state: 'failed', error: outcome.error };
          } else if (outcome.state === 'retry' && outcome.retryAt >= times.startBy) {
            // Both stay on record: the attempt's own error, then why it is not retried.
            await jobErrorAppend(ctx.sql, app.schema, { id: job.id, error: JSON.stringify(outcome.error) });
            const why = `its retry (attempt ${job.attempt + 1}) would start at ${outcome.retryAt.toISOString()}, after that`;
            s.outcome = { state: 'cancelled', error: expiredError(job, notStarted(job, times.startBy, why)) };
            ended.push({ id: job.id, queue: job.queue, name: job.name, expiresAt: times.startBy });
          }
        }
        if (ended.length > 0) ctx.afterCommit(() => app.emit(PLUGIN_NAME, 'expiry.expired', { jobs: ended }));
        return settlements;
      });
    },
  };
}

/** A spec as stored by the builders, checked again (anyone can call `with(EXPIRY_OPTION, …)` directly). */
function checkedSpec(raw: unknown): ExpirySpec {
  if (raw === null || typeof raw !== 'object') {
    throw new InvalidJobOptionError(`The '${EXPIRY_OPTION}' option must come from withExpiresAt/withExpiresIn/withDeadline/withDeadlineIn.`);
  }
  const spec = raw as Partial<ExpirySpec>;
  rejectUnknownKeys(`the '${EXPIRY_OPTION}' option`, spec, ['expiresAt', 'expiresInMs', 'deadline', 'deadlineInMs']);
  return {
    expiresAt: spec.expiresAt == null ? null : checkDate('withExpiresAt', spec.expiresAt),
    expiresInMs: spec.expiresInMs == null ? null : checkMs('withExpiresIn', spec.expiresInMs),
    deadline: spec.deadline == null ? null : checkDate('withDeadline', spec.deadline),
    deadlineInMs: spec.deadlineInMs == null ? null : checkMs('withDeadlineIn', spec.deadlineInMs),
  };
}

/**
 * A row's absolute times, `clock` being the push transaction's time when a duration needs it.
 * Refuses a job that could never start: one that expires at or before the time it may first run.
 */
function resolveTimes(row: JobInsert, spec: ExpirySpec, clock: number | null): ExpiryTimes {
  const at = (absolute: Date | null, inMs: number | null): number | null =>
    absolute !== null ? absolute.getTime() : inMs !== null ? (clock as number) + inMs : null;
  const expiresAt = at(spec.expiresAt, spec.expiresInMs);
  const deadline = at(spec.deadline, spec.deadlineInMs);
  const startBy = Math.min(expiresAt ?? Infinity, deadline ?? Infinity);
  const runsAt = row.scheduledAt !== null ? row.scheduledAt.getTime() : (clock as number) + (row.delayMs ?? 0);
  if (startBy <= runsAt) {
    throw new InvalidJobOptionError(
      `Job '${row.name}' expires at ${new Date(startBy).toISOString()}, not after the time it may first run (${new Date(runsAt).toISOString()}), so it could never start. Give it a later expiry or deadline, or an earlier run time.`,
      { details: { option: EXPIRY_OPTION } },
    );
  }
  return { startBy: new Date(startBy), deadline: deadline === null ? null : new Date(deadline) };
}

function notStarted(job: RunningJob, startBy: Date, why: string): string {
  return `Job '${job.name}' (${job.id}) did not start before it expired at ${startBy.toISOString()}: ${why}.`;
}

function expiredError(job: RunningJob, message: string): JobError {
  const error: JobError = { attempt: job.attempt, name: JobExpiredError.name, code: 'DOCKET_EXPIRY_EXPIRED', message, at: new Date().toISOString() };
  if (job.startedAt) error.startedAt = job.startedAt.toISOString();
  return error;
}

/**
 * One sweep: ends expired pending jobs in batches, each batch in one transaction through
 * `app.settleJobs` (so `settle` taps observe them and `waitForJob` wakes), until none is left.
 */
async function sweep(app: Docket, batchSize: number, signal: AbortSignal | undefined): Promise<ExpirySweep> {
  const expired: ExpiredJob[] = [];
  // Most sweeps find nothing: one probe of the index then, not a transaction.
  if (!(await expiredJobsExist(app.sql, app.schema))) return { expired };
  for (;;) {
    if (signal?.aborted) break;
    let batch: ExpiredJobRow[] = [];
    await app.settleJobs(async (tx) => {
      batch = await expiredJobsCancel(tx, app.schema, { limit: batchSize, code: 'DOCKET_EXPIRY_EXPIRED', errorName: JobExpiredError.name });
      return batch.map((row) => row.id);
    });
    const jobs = batch.map((row) => ({ id: row.id, queue: row.queue, name: row.name, expiresAt: row.expires_at }));
    if (jobs.length > 0) app.emit(PLUGIN_NAME, 'expiry.expired', { jobs });
    expired.push(...jobs);
    if (batch.length < batchSize) break;
  }
  return { expired };
}
