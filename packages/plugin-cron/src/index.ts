/**
 * @docket/plugin-cron — recurring jobs on cron expressions.
 *
 *   const schedules = cron();
 *   const app = new Docket({ connection, plugins: [schedules] });
 *   await app.migrate();
 *   await schedules.schedule({ name: 'nightly-report', cron: '0 3 * * *', timezone: 'Europe/Paris', job: report.withArgs({ kind: 'daily' }) });
 *
 * Schedules live in the database (`cron_schedules`), so any worker can fire them. The firing runs
 * as a `periodicTask` with `primaryOnly` (on its own loop on each worker, asking the election just
 * before each run), so with an election plugin only the primary worker does it; without one every worker tries. Either way each scheduled time fires at most once: the
 * decision for a time is a row keyed (schedule, fire_at) in `cron_fires`, inserted in the same
 * transaction as the job it pushes, so two workers that both believe they are primary cannot both
 * push it.
 */
import {
  booleanOption,
  type Docket,
  type DocketPlugin,
  defineJob,
  InvalidOptionError,
  integerOption,
  isJobDefinition,
  JobInvocation,
  type JobLimits,
  type JobRef,
  oneOfOption,
  type PeriodicEvents,
  type PeriodicRun,
  type PeriodicTask,
  type Pushable,
  periodicTask,
  pluginBinding,
  rejectUnknownKeys,
  type SqlClient,
  toJsonText,
} from '@docket/core';

export { CRON_ERRORS, CronExpressionError, CronScheduleNotFoundError, CronTimezoneError } from './errors.js';

import { CronScheduleNotFoundError } from './errors.js';

import { type CronSpec, checkExpression, checkTimezone, timeAfter, timeBefore, timesBetween } from './expression.js';
import {
  clockNow,
  fireInsert,
  fireRead,
  fireSetJob,
  firesPrune,
  type LockedSchedule,
  MIGRATIONS,
  type ScheduleRow,
  scheduleAdvance,
  scheduleDelete,
  scheduleList,
  scheduleLock,
  scheduleLockDue,
  schedulesDue,
  scheduleUpsert,
} from './sql.js';

export const PLUGIN_NAME = 'cron';
const VERSION = '0.1.0';
/** The cursor of a schedule whose expression has no further time. */
const NEVER = new Date('9999-12-31T00:00:00Z');
const OPEN_STATES = new Set(['pending', 'running', 'waiting']);
const NAME_PATTERN = /^[A-Za-z0-9_.:/-]{1,200}$/;

/** What to do with scheduled times that passed while no worker fired them (downtime). */
export type MissedPolicy = 'skip' | 'runOnce';

export interface ScheduleOptions {
  /** Unique name of the schedule (letters, digits, `_ . : / -`). Scheduling an existing name updates it. */
  name: string;
  /** Five fields (`*\/5 * * * *`), six with a leading seconds field (`*\/10 * * * * *`), or an alias (`@daily`). */
  cron: string;
  /** The job to push at each time: a job definition, or an invocation with its arguments and options. */
  job: Pushable;
  /** IANA timezone the expression is read in. Default 'UTC'. */
  timezone?: string;
  /**
   * Times missed during downtime (more than the plugin's `graceMs` late): `'skip'` drops them,
   * `'runOnce'` runs one job for the latest of them. Default 'skip'.
   */
  missed?: MissedPolicy;
  /**
   * Whether a time fires while the previous run of this schedule is still pending or running.
   * Default false: that time is skipped (recorded with `skipped = 'overlap'`).
   */
  overlap?: boolean;
}

const SCHEDULE_KEYS = ['name', 'cron', 'job', 'timezone', 'missed', 'overlap'] as const;

export interface CronOptions {
  /** How often the primary worker looks for due times (a worker that is not primary asks again every maintenance interval). Default 500 ms. */
  intervalMs?: number;
  /**
   * Times are decided (and their jobs pushed, scheduled at the exact time) up to this long ahead,
   * so a schedule fires on time even when a firing run comes later than the schedule. Default 2000 ms.
   */
  lookaheadMs?: number;
  /** A time that no worker fired within this long after it is missed (see `missed`). Default 60000 ms. */
  graceMs?: number;
  /** Fire records (`cron_fires`) older than this are deleted. Default 7 days. */
  retainFiresMs?: number;
  /** Schedules created or updated on every `app.migrate()`. */
  schedules?: readonly ScheduleOptions[];
  /** Called on every `app.migrate()`, after `schedules`: a migration-style place to (un)schedule from code. */
  setup?: (cron: CronPlugin) => void | Promise<void>;
}

const OPTION_KEYS = ['intervalMs', 'lookaheadMs', 'graceMs', 'retainFiresMs', 'schedules', 'setup'] as const;

/** A stored schedule. */
export interface CronSchedule {
  readonly name: string;
  readonly cron: string;
  readonly timezone: string;
  readonly job: {
    readonly name: string;
    readonly queue: string;
    readonly args: unknown;
    readonly priority: number;
    readonly maxAttempts: number;
    readonly limits: JobLimits;
    readonly meta: Record<string, unknown>;
    readonly extensions: Record<string, unknown>;
  };
  readonly missed: MissedPolicy;
  readonly overlap: boolean;
  /** The first scheduled time not decided yet. */
  readonly nextFireAt: Date;
  readonly lastFireAt: Date | null;
  readonly lastJobId: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What one firing run did (the result of `nextRun()`). */
export interface CronRunResult {
  /** Jobs pushed. */
  readonly fired: number;
  /** Times skipped because the previous run was still open. */
  readonly skipped: number;
  /** Schedules found with missed times. */
  readonly missed: number;
}

/** Events (through `app.emit`, source 'cron'). */
export interface CronFiredEvent {
  readonly schedule: string;
  readonly fireAt: Date;
  readonly jobId: string;
  readonly workerId: string;
  readonly term: string | null;
}
export interface CronSkippedEvent {
  readonly schedule: string;
  readonly fireAt: Date;
  readonly reason: 'overlap';
}
export interface CronMissedEvent {
  readonly schedule: string;
  readonly policy: MissedPolicy;
  /** First and last missed time. */
  readonly first: Date;
  readonly last: Date;
  /** The time that ran once (policy 'runOnce'), or null. */
  readonly ranAt: Date | null;
}

export interface CronFireFailedEvent {
  readonly schedule: string;
  readonly error: unknown;
}

/** Payloads of the events the plugin emits (`cron.started|finished|failed` are its periodic task's). */
export interface CronEvents extends PeriodicEvents<'cron'> {
  'cron.fired': CronFiredEvent;
  'cron.skipped': CronSkippedEvent;
  'cron.missed': CronMissedEvent;
  'cron.fire_failed': CronFireFailedEvent;
}

declare module '@docket/core' {
  interface DocketEventMap extends CronEvents {}
}

export interface CronPlugin extends DocketPlugin {
  /**
   * Creates or updates a schedule (by name). Validated first: an invalid expression
   * (DOCKET_CRON_INVALID_EXPRESSION), an unknown timezone (DOCKET_CRON_UNKNOWN_TIMEZONE) or a bad
   * option (DOCKET_INVALID_OPTION) throws and nothing is stored. The schedule's cursor
   * is kept when only the job or the policies change, and restarts from now when the expression or
   * the timezone changes.
   */
  schedule(options: ScheduleOptions, pushOptions?: { tx?: SqlClient }): Promise<CronSchedule>;
  /** Deletes a schedule and its fire records (jobs already pushed stay). True when it existed. */
  unschedule(name: string, pushOptions?: { tx?: SqlClient }): Promise<boolean>;
  /** Every schedule, by name. */
  list(): Promise<CronSchedule[]>;
  /**
   * Pushes the schedule's job now, outside its times (an operator's "run now"): the same job,
   * arguments and options, with meta `cron: { schedule, fireAt, manual: true }`. It becomes the
   * schedule's latest job, so without `overlap` a time that comes while it is still open is
   * skipped, as for any run. The schedule's times are not moved. An unknown name is
   * DOCKET_CRON_SCHEDULE_NOT_FOUND.
   */
  runNow(name: string, pushOptions?: { tx?: SqlClient }): Promise<JobRef>;
  /** Resolves with the result of the next firing run in this process (for tests and tooling). */
  nextRun(options?: { timeoutMs?: number }): Promise<CronRunResult>;
}

interface Validated extends CronSpec {
  readonly name: string;
  readonly invocation: JobInvocation;
  readonly missed: MissedPolicy;
  readonly overlap: boolean;
}

function validateSchedule(options: ScheduleOptions): Validated {
  const where = `cron.schedule(${typeof options?.name === 'string' ? `'${options.name}'` : 'options'})`;
  if (options === null || typeof options !== 'object') throw new InvalidOptionError(`cron.schedule() takes an options object { name, cron, job }.`);
  rejectUnknownKeys(where, options, SCHEDULE_KEYS);
  if (typeof options.name !== 'string' || !NAME_PATTERN.test(options.name)) {
    throw new InvalidOptionError(`${where}: \`name\` must be 1–200 letters, digits or \`_ . : / -\`.`, { details: { where, option: 'name' } });
  }
  const timezone = checkTimezone(where, options.timezone ?? 'UTC');
  const expression = typeof options.cron === 'string' ? options.cron.trim() : options.cron;
  checkExpression(where, { expression, timezone });
  let invocation: JobInvocation;
  if (options.job instanceof JobInvocation) invocation = options.job;
  else if (isJobDefinition(options.job)) invocation = options.job.invocation();
  else {
    throw new InvalidOptionError(`${where}: \`job\` must be a job made with defineJob (or its withArgs(...)).`, {
      details: { where, option: 'job' },
    });
  }
  if (invocation.options.scheduledAt !== null || invocation.options.delayMs !== null) {
    throw new InvalidOptionError(`${where}: the job has a scheduledAt or delay; cron decides when it runs, so remove withScheduledAt/withDelay.`, {
      details: { where, option: 'job' },
    });
  }
  toJsonText(invocation.args, `Arguments of job '${invocation.name}' in schedule '${options.name}'`);
  toJsonText(invocation.options.extensions, `Plugin options (with()) of job '${invocation.name}' in schedule '${options.name}'`);
  return {
    name: options.name,
    expression,
    timezone,
    invocation,
    missed: oneOfOption<MissedPolicy>(where, 'missed', options.missed, ['skip', 'runOnce'], 'skip'),
    overlap: booleanOption(where, 'overlap', options.overlap, false),
  };
}

/**
 * Stored schedules hold their job's arguments as the app's payload codec encodes them (so an
 * encryption plugin leaves no plaintext in `cron_schedules`); these turn them back.
 */
async function decodeArgs(app: Docket, rows: ScheduleRow[]): Promise<void> {
  if (!app.codec.active || rows.length === 0) return;
  const args = await app.codec.decodeArgs(rows.map((row) => row.args));
  rows.forEach((row, i) => {
    row.args = args[i];
  });
}

async function storedArgs(app: Docket, invocation: JobInvocation): Promise<string> {
  const text = toJsonText(invocation.args, `Arguments of job '${invocation.name}'`);
  if (!app.codec.active) return text;
  return JSON.stringify((await app.codec.encodeArgs([invocation.args]))[0] ?? null);
}

function toSchedule(row: ScheduleRow): CronSchedule {
  return {
    name: row.name,
    cron: row.expression,
    timezone: row.timezone,
    job: {
      name: row.job_name,
      queue: row.queue,
      args: row.args,
      priority: row.priority,
      maxAttempts: row.max_attempts,
      limits: row.limits as JobLimits,
      meta: row.meta,
      extensions: row.extensions,
    },
    missed: row.missed,
    overlap: row.overlap,
    nextFireAt: row.next_fire_at,
    lastFireAt: row.last_fire_at,
    lastJobId: row.last_job_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function notRunnable(): never {
  throw new Error('cron: this stand-in definition only builds pushes; workers run the real job by name');
}

/**
 * The job to push for one time, rebuilt from the stored schedule (any worker can fire it, with or
 * without the definition); `manual` for a run now, which runs at once and says so in its meta.
 */
function invocationFor(row: LockedSchedule, fireAt: Date, manual = false): JobInvocation {
  const definition = defineJob<unknown, unknown>(
    { name: row.job_name, queue: row.queue, priority: row.priority, maxAttempts: row.max_attempts, limits: row.limits as JobLimits, meta: row.meta },
    notRunnable,
  );
  let invocation = definition.withArgs(row.args);
  for (const [key, value] of Object.entries(row.extensions)) invocation = invocation.with(key, value);
  if (manual) return invocation.withMeta({ cron: { schedule: row.name, fireAt: fireAt.toISOString(), manual: true } });
  return invocation.withMeta({ cron: { schedule: row.name, fireAt: fireAt.toISOString() } }).withScheduledAt(fireAt);
}

export function cron(options: CronOptions = {}): CronPlugin {
  const where = 'cron(options)';
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const intervalMs = integerOption(where, 'intervalMs', options.intervalMs, 500, { min: 10, max: 3_600_000 });
  const lookaheadMs = integerOption(where, 'lookaheadMs', options.lookaheadMs, 2000, { min: 0, max: 3_600_000 });
  const graceMs = integerOption(where, 'graceMs', options.graceMs, 60_000, { min: 0, max: 31 * 86_400_000 });
  const retainFiresMs = integerOption(where, 'retainFiresMs', options.retainFiresMs, 7 * 86_400_000, { min: 3_600_000 });
  if (options.schedules !== undefined && !Array.isArray(options.schedules)) {
    throw new InvalidOptionError(`${where}: \`schedules\` must be an array of { name, cron, job } objects.`, {
      details: { where, option: 'schedules' },
    });
  }
  // Declared schedules are validated now, so a typo fails at startup rather than at migrate time.
  const declared = (options.schedules ?? []).map((s) => {
    validateSchedule(s);
    return s;
  });
  const names = new Set<string>();
  for (const s of declared) {
    if (names.has(s.name))
      throw new InvalidOptionError(`${where}: two schedules are named '${s.name}'.`, { details: { where, option: 'schedules' } });
    names.add(s.name);
  }
  if (options.setup !== undefined && typeof options.setup !== 'function') {
    throw new InvalidOptionError(`${where}: \`setup\` must be a function (cron) => Promise<void>.`, { details: { where, option: 'setup' } });
  }

  const binding = pluginBinding(PLUGIN_NAME, 'cron');
  let task: PeriodicTask<CronRunResult> | null = null;
  let lastPrune = 0;
  const wakeTimers = new Set<NodeJS.Timeout>();

  async function schedule(input: ScheduleOptions, pushOptions: { tx?: SqlClient } = {}): Promise<CronSchedule> {
    const docket = binding.app('schedule');
    rejectUnknownKeys('cron.schedule(options, { tx })', pushOptions, ['tx']);
    const s = validateSchedule(input);
    const sql = pushOptions.tx ?? docket.sql;
    const now = await clockNow(sql);
    const { options: o } = s.invocation;
    const row = await scheduleUpsert(sql, docket.schema, {
      name: s.name,
      expression: s.expression,
      timezone: s.timezone,
      jobName: s.invocation.name,
      queue: o.queue,
      args: await storedArgs(docket, s.invocation),
      priority: o.priority,
      maxAttempts: o.maxAttempts,
      limits: JSON.stringify(o.limits),
      meta: toJsonText(o.meta, `Meta of job '${s.invocation.name}'`),
      extensions: toJsonText(o.extensions, `Plugin options of job '${s.invocation.name}'`),
      missed: s.missed,
      overlap: s.overlap,
      nextFireAt: timeAfter(s, now) ?? NEVER,
    });
    await decodeArgs(docket, [row]);
    return toSchedule(row);
  }

  async function unschedule(name: string, pushOptions: { tx?: SqlClient } = {}): Promise<boolean> {
    const docket = binding.app('unschedule');
    rejectUnknownKeys('cron.unschedule(name, { tx })', pushOptions, ['tx']);
    if (typeof name !== 'string' || !NAME_PATTERN.test(name))
      throw new InvalidOptionError(`cron.unschedule(): \`name\` must be a schedule name, got ${JSON.stringify(name)}.`);
    return scheduleDelete(pushOptions.tx ?? docket.sql, docket.schema, name);
  }

  async function runNow(name: string, pushOptions: { tx?: SqlClient } = {}): Promise<JobRef> {
    const docket = binding.app('runNow');
    rejectUnknownKeys('cron.runNow(name, { tx })', pushOptions, ['tx']);
    if (typeof name !== 'string' || !NAME_PATTERN.test(name))
      throw new InvalidOptionError(`cron.runNow(): \`name\` must be a schedule name, got ${JSON.stringify(name)}.`);
    const run = async (tx: SqlClient): Promise<JobRef> => {
      // Locked like a firing run locks it: the two never decide the schedule's latest job at once.
      const row = await scheduleLock(tx, docket.schema, { name });
      if (!row) throw new CronScheduleNotFoundError(`cron.runNow(): no schedule is named '${name}'.`, { details: { name } });
      await decodeArgs(docket, [row]);
      const ref = await docket.push(invocationFor(row, row.now, true), { tx });
      await scheduleAdvance(tx, docket.schema, { name, nextFireAt: row.next_fire_at, lastFireAt: null, lastJobId: ref.id });
      return ref;
    };
    return pushOptions.tx ? run(pushOptions.tx) : (docket.sql.begin((tx) => run(tx)) as Promise<JobRef>);
  }

  async function list(): Promise<CronSchedule[]> {
    const docket = binding.app('list');
    const rows = await scheduleList(docket.sql, docket.schema);
    await decodeArgs(docket, rows);
    return rows.map(toSchedule);
  }

  /** Decides every due time of one schedule in one transaction. */
  async function fireSchedule(docket: Docket, name: string, run: PeriodicRun, totals: { fired: number; skipped: number; missed: number }) {
    const workerId = run.worker.id;
    const term = run.primary.term;
    /** Emitted once the transaction has committed. */
    const events: Array<() => void> = [];
    const wakes: Array<{ queue: string; at: Date }> = [];
    let dbNow: Date | null = null;
    await docket.sql.begin(async (tx) => {
      const row = await scheduleLockDue(tx, docket.schema, { name, lookaheadMs });
      if (!row) return; // another worker holds it, or it is no longer due
      await decodeArgs(docket, [row]);
      const now = row.now;
      dbNow = now;
      const lateBound = new Date(now.getTime() - graceMs);
      const horizon = new Date(now.getTime() + lookaheadMs);
      let cursor: Date = row.next_fire_at;
      const candidates: Date[] = [];

      if (cursor < lateBound) {
        // Downtime: times from the cursor up to lateBound were never fired in time.
        const last = timeBefore(row, lateBound) ?? cursor;
        const ranAt = row.missed === 'runOnce' ? last : null;
        if (ranAt) candidates.push(ranAt);
        // The payload is built now: `cursor` moves on before the events are emitted.
        const missedEvent: CronMissedEvent = { schedule: name, policy: row.missed, first: cursor, last, ranAt };
        events.push(() => docket.emit(PLUGIN_NAME, 'cron.missed', missedEvent));
        totals.missed++;
        cursor = timeAfter(row, new Date(lateBound.getTime() - 1)) ?? NEVER;
      }
      const upcoming = cursor <= horizon ? timesBetween(row, cursor, horizon, 1000) : { times: [], next: cursor };
      candidates.push(...upcoming.times);
      let nextCursor: Date = upcoming.next ?? NEVER;

      let open = !row.overlap && row.last_job_state !== null && OPEN_STATES.has(row.last_job_state);
      let lastFireAt: Date | null = null;
      let lastJobId: string | null = null;
      for (const at of candidates) {
        if (!row.overlap && open) {
          // The previous run is still open. A future time waits (it may have finished by then); a due one is skipped.
          if (at > now) {
            nextCursor = at;
            break;
          }
          if (await fireInsert(tx, docket.schema, { schedule: name, fireAt: at, skipped: 'overlap', workerId, term })) {
            const skippedEvent: CronSkippedEvent = { schedule: name, fireAt: at, reason: 'overlap' };
            events.push(() => docket.emit(PLUGIN_NAME, 'cron.skipped', skippedEvent));
            totals.skipped++;
          }
          continue;
        }
        if (!(await fireInsert(tx, docket.schema, { schedule: name, fireAt: at, skipped: null, workerId, term }))) {
          // Already decided by another worker (the unique key): never push it again.
          const existing = await fireRead(tx, docket.schema, { schedule: name, fireAt: at });
          if (existing?.job_id) {
            lastFireAt = at;
            lastJobId = existing.job_id;
            open = existing.state !== null && OPEN_STATES.has(existing.state);
          }
          continue;
        }
        const ref = await docket.push(invocationFor(row, at), { tx });
        await fireSetJob(tx, docket.schema, { schedule: name, fireAt: at, jobId: ref.id });
        const firedEvent: CronFiredEvent = { schedule: name, fireAt: at, jobId: ref.id, workerId, term };
        events.push(() => docket.emit(PLUGIN_NAME, 'cron.fired', firedEvent));
        if (at > now) wakes.push({ queue: row.queue, at });
        totals.fired++;
        lastFireAt = at;
        lastJobId = ref.id;
        open = true;
      }
      await scheduleAdvance(tx, docket.schema, { name, nextFireAt: nextCursor, lastFireAt, lastJobId });
    });
    for (const emit of events) emit();
    // Jobs pushed ahead of their time: wake the queue's workers at that time rather than at their next poll.
    if (dbNow) {
      const offset = Date.now() - (dbNow as Date).getTime();
      for (const { queue, at } of wakes) {
        const timer = setTimeout(
          () => {
            wakeTimers.delete(timer);
            docket.wake([queue]).catch(() => undefined);
          },
          Math.max(0, at.getTime() + offset - Date.now()),
        );
        timer.unref?.();
        wakeTimers.add(timer);
      }
    }
  }

  async function fire(run: PeriodicRun): Promise<CronRunResult> {
    const docket = run.app;
    const totals = { fired: 0, skipped: 0, missed: 0 };
    for (const name of await schedulesDue(docket.sql, docket.schema, { lookaheadMs, limit: 500 })) {
      if (run.signal.aborted) break;
      try {
        await fireSchedule(docket, name, run, totals);
      } catch (error) {
        // One schedule's failure (say, a beforePush plugin refusing its job) does not hold up the others.
        docket.logger.error(`cron: firing schedule '${name}' failed; it is retried on the next run`, { error });
        docket.emit(PLUGIN_NAME, 'cron.fire_failed', { schedule: name, error });
      }
    }
    if (Date.now() - lastPrune > 60_000) {
      lastPrune = Date.now();
      await firesPrune(docket.sql, docket.schema, { retainMs: retainFiresMs, limit: 10_000 });
    }
    return totals;
  }

  const plugin: CronPlugin = {
    name: PLUGIN_NAME,
    version: VERSION,
    migrations: MIGRATIONS,

    apply(docket: Docket) {
      binding.bind(docket);
      task = periodicTask(docket, { name: PLUGIN_NAME, intervalMs, primaryOnly: true, run: fire });
      docket.hooks.afterMigrate.tapPromise(PLUGIN_NAME, async () => {
        for (const s of declared) await schedule(s);
        if (options.setup) await options.setup(plugin);
      });
      docket.hooks.workerStopping.tapPromise(PLUGIN_NAME, async () => {
        for (const timer of wakeTimers) clearTimeout(timer);
        wakeTimers.clear();
      });
    },

    schedule,
    unschedule,
    list,
    runNow,

    // The dashboard's extension point (a registered symbol: no import of the dashboard here); the
    // panel module is loaded only when a dashboard asks.
    [Symbol.for('docket.dashboard.panels')]: () => import('./dashboard.js').then((m) => m.cronPanels(plugin)),

    nextRun(opts) {
      binding.app('nextRun');
      if (!task) throw new Error(`${PLUGIN_NAME}: nextRun found no periodic task, though the plugin is applied.`);
      return task.nextRun(opts);
    },
  };
  return plugin;
}
