/**
 * @docket/plugin-dead-letter — dead letters (pg-boss's dead-letter queues, River Pro's): a job that
 * failed for good is copied, once, with every attempt's error and where it came from, into a
 * dead-letter table, where it can be inspected and re-driven (pushed back to its queue as a new
 * job) from the API or the command line (`docket dead-letters`, src/cli.ts).
 *
 *   const dlq = deadLetters();                       // every queue; deadLetters({ queues: ['emails'] })
 *   const app = new Docket({ connection, plugins: [dlq] });
 *   const { deadLetters: page } = await dlq.list({ queue: 'emails' });
 *   const [again] = await dlq.redrive([page[0].id]); // again.ref: the new job
 *
 * Built on the `settle` hook: its tap, declared with `wants`, sees only settlements that end a job
 * for good, and copies them in the completion transaction, so a copy exists exactly when the
 * failure commits (never for an attempt that is retried). It runs at the LAST stage, after other
 * plugins chose the outcome.
 */
import {
  assertJobName,
  assertQueueName,
  type Docket,
  type DocketPlugin,
  defineJob,
  HOOK_STAGE,
  InvalidOptionError,
  integerOption,
  type JobError,
  type JobLimits,
  type JobRef,
  oneOfOption,
  type Pushable,
  pluginBinding,
  rejectUnknownKeys,
  type Settlement,
  type SqlClient,
} from '@docket/core';
import { DeadLetterAlreadyRedrivenError, DeadLetterNotFoundError } from './errors.js';
import {
  type DeadLetterFilter,
  type DeadLetterRow,
  deadLettersDelete,
  deadLettersGet,
  deadLettersInsert,
  deadLettersList,
  deadLettersLock,
  deadLettersMarkRedriven,
  MIGRATIONS,
} from './sql.js';

export { DEAD_LETTER_ERRORS, DeadLetterAlreadyRedrivenError, DeadLetterNotFoundError } from './errors.js';

export const PLUGIN_NAME = 'dead-letter';
export const PLUGIN_VERSION = '0.1.0';
/** The `meta` key of a re-driven job: the id of the job that failed. */
export const REDRIVE_OF_META_KEY = 'redriveOf';
/** The `meta` key of a re-driven job: the id of the dead letter it was re-driven from. */
export const DEAD_LETTER_META_KEY = 'deadLetter';
/** The final states a dead letter can record. */
export const DEAD_LETTER_STATES = ['failed', 'cancelled'] as const;
export type DeadLetterState = (typeof DEAD_LETTER_STATES)[number];

/** Dead letters re-driven per transaction by `redriveAll`. */
const REDRIVE_BATCH = 100;
const MAX_LIST_VALUES = 100;

export interface DeadLetterOptions {
  /** Only these queues' jobs are copied. Default: every queue. */
  queues?: readonly string[];
  /**
   * Which endings are copied: `['failed']` (default), or with `'cancelled'` too (cancelled jobs,
   * and jobs an expiry plugin ended as cancelled).
   */
  states?: readonly DeadLetterState[];
}

/** A job that failed for good, as its dead letter keeps it. */
export interface DeadLetter {
  /** The dead letter's own id. */
  id: string;
  /** The job that failed (it may have been deleted since: this is a copy). */
  jobId: string;
  queue: string;
  name: string;
  /** How it ended: 'failed', or 'cancelled' when the plugin keeps those. */
  state: DeadLetterState;
  /** Its arguments (decoded through the app's payload codec). */
  args: unknown;
  meta: Record<string, unknown>;
  priority: number;
  maxAttempts: number;
  limits: JobLimits;
  /** Attempts it made (the claim count when it ended). */
  attempt: number;
  /** Every attempt's error, the last one why it ended. */
  errors: JobError[];
  /** The worker that ran its last attempt. */
  workerId: string | null;
  /** When the job was pushed. */
  createdAt: Date;
  /** When it ended. */
  failedAt: Date;
  deadLetteredAt: Date;
  /** When it was re-driven (null: not yet), and as which job. */
  redrivenAt: Date | null;
  redrivenJobId: string | null;
}

export interface ListDeadLettersOptions {
  queue?: string | readonly string[];
  name?: string | readonly string[];
  /** true: only re-driven ones; false: only those waiting. Default: both. */
  redriven?: boolean;
  /** Per page, 1–1000. Default 50. */
  limit?: number;
  /** The previous page's `nextCursor`. */
  cursor?: string | null;
}

export interface DeadLetterPage {
  /** Newest first. */
  deadLetters: DeadLetter[];
  /** Pass as `cursor` for the next page; null on the last. */
  nextCursor: string | null;
}

export interface RedriveOptions {
  /** Push to this queue instead of the job's own. */
  queue?: string;
}

export interface RedriveFilter {
  queue?: string | readonly string[];
  name?: string | readonly string[];
}

/** One re-drive: the dead letter, the job that failed, and the new job pushed from it. */
export interface Redriven {
  readonly deadLetterId: string;
  readonly jobId: string;
  readonly ref: JobRef;
}

/** The events the plugin emits (`app.emit`, the `event` hook). */
export interface DeadLetterEvents {
  /** Jobs copied as dead letters, after their failure committed. */
  'dead-letter.added': { readonly deadLetters: ReadonlyArray<{ id: string; jobId: string; queue: string; name: string }> };
  /** Dead letters re-driven, after the push committed. */
  'dead-letter.redriven': { readonly redriven: readonly Redriven[] };
}

declare module '@docket/core' {
  interface DocketEventMap extends DeadLetterEvents {}
}

export interface DeadLetterPlugin extends DocketPlugin {
  readonly name: typeof PLUGIN_NAME;
  /** One page of dead letters, newest first. */
  list(options?: ListDeadLettersOptions): Promise<DeadLetterPage>;
  /** One dead letter (DOCKET_DEAD_LETTER_NOT_FOUND when there is none). */
  get(id: string): Promise<DeadLetter>;
  /**
   * Pushes these dead letters back to their queues (or `options.queue`) as new jobs — same name,
   * arguments, priority, attempts, limits and meta, plus `meta.redriveOf` and `meta.deadLetter` —
   * through `pushMany` (plugins' push hooks run), and marks them re-driven, in one transaction: all
   * or none. A missing id is DOCKET_DEAD_LETTER_NOT_FOUND, one re-driven already
   * DOCKET_DEAD_LETTER_ALREADY_REDRIVEN.
   */
  redrive(ids: string | readonly string[], options?: RedriveOptions): Promise<Redriven[]>;
  /** Re-drives every dead letter not re-driven yet that matches the filter, in batches of 100 (each committed on its own). */
  redriveAll(filter?: RedriveFilter, options?: RedriveOptions): Promise<Redriven[]>;
  /** Deletes dead letters; returns the ids deleted (missing ones are ignored). */
  delete(ids: string | readonly string[]): Promise<string[]>;
}

export function deadLetters(options: DeadLetterOptions = {}): DeadLetterPlugin {
  const where = `${PLUGIN_NAME}(options)`;
  rejectUnknownKeys(where, options, ['queues', 'states']);
  const queues = listOption(where, 'queues', options.queues, assertQueueName);
  const states = listOption(where, 'states', options.states, (s) => oneOfOption(where, 'states', s, DEAD_LETTER_STATES, 'failed')) ?? ['failed'];
  const captured = queues === null ? null : new Set(queues);
  const binding = pluginBinding(PLUGIN_NAME, 'deadLetters');

  /** Whether this ending is one the plugin keeps (cheap and sync: the settle tap's `wants`). */
  const keeps = (s: Settlement) => (states as readonly string[]).includes(s.outcome.state) && (captured === null || captured.has(s.job.queue));

  async function toDeadLetters(app: Docket, rows: readonly DeadLetterRow[]): Promise<DeadLetter[]> {
    const args = app.codec.active ? await app.codec.decodeArgs(rows.map((r) => r.args)) : rows.map((r) => r.args);
    return rows.map((r, i) => ({
      id: r.id,
      jobId: r.job_id,
      queue: r.queue,
      name: r.name,
      state: r.state,
      args: args[i],
      meta: r.meta,
      priority: r.priority,
      maxAttempts: r.max_attempts,
      limits: r.limits,
      attempt: r.attempt,
      errors: r.errors,
      workerId: r.worker_id,
      createdAt: r.created_at,
      failedAt: r.failed_at,
      deadLetteredAt: r.dead_lettered_at,
      redrivenAt: r.redriven_at,
      redrivenJobId: r.redriven_job_id,
    }));
  }

  /** Pushes the locked rows as new jobs in `tx` and marks them re-driven. */
  async function pushAgain(app: Docket, tx: SqlClient, rows: readonly DeadLetterRow[], redrive: RedriveOptions): Promise<Redriven[]> {
    if (rows.length === 0) return [];
    const letters = await toDeadLetters(app, rows);
    const invocations = letters.map((letter) =>
      defineJob<unknown>(
        {
          name: letter.name,
          queue: redrive.queue ?? letter.queue,
          priority: letter.priority,
          maxAttempts: letter.maxAttempts,
          limits: letter.limits,
          meta: { ...letter.meta, [REDRIVE_OF_META_KEY]: letter.jobId, [DEAD_LETTER_META_KEY]: letter.id },
        },
        () => {
          throw new Error('a re-driven job is pushed, not called; workers run it with their own definition');
        },
      ).withArgs(letter.args),
    );
    const refs = await app.pushMany(invocations as Pushable[], { tx });
    await deadLettersMarkRedriven(tx, app.schema, { ids: letters.map((l) => l.id), jobIds: refs.map((r) => r.id) });
    return letters.map((letter, i) => ({ deadLetterId: letter.id, jobId: letter.jobId, ref: refs[i] as JobRef }));
  }

  function checkRedrive(method: string, redrive: RedriveOptions): RedriveOptions {
    rejectUnknownKeys(`${method} options`, redrive, ['queue']);
    return redrive.queue === undefined ? {} : { queue: assertQueueName(redrive.queue) };
  }

  return {
    name: PLUGIN_NAME,
    version: PLUGIN_VERSION,
    migrations: MIGRATIONS,

    apply(app) {
      binding.bind(app);
      // LAST: other plugins' taps have chosen the outcome by then (one may have turned a retry into
      // a failure); the batch holds every settlement some tap wanted, so the tap checks each again.
      app.hooks.settle.tapPromise({ name: PLUGIN_NAME, stage: HOOK_STAGE.LAST, wants: keeps }, async (settlements, ctx) => {
        const items: Array<{ jobId: string; state: DeadLetterState; error: JobError | null }> = [];
        for (const s of settlements) {
          if (!keeps(s)) continue;
          // An attempt's outcome is written after the taps, so its error is not in the row yet; an
          // ending someone else wrote (ctx null) holds it already.
          const error = s.ctx !== null && 'error' in s.outcome ? s.outcome.error : null;
          items.push({ jobId: s.job.id, state: s.outcome.state as DeadLetterState, error });
        }
        if (items.length === 0) return settlements;
        const added = await deadLettersInsert(ctx.sql, app.schema, items);
        if (added.length > 0) {
          ctx.afterCommit(() =>
            app.emit(PLUGIN_NAME, 'dead-letter.added', {
              deadLetters: added.map((a) => ({ id: a.id, jobId: a.job_id, queue: a.queue, name: a.name })),
            }),
          );
        }
        return settlements;
      });
    },

    async list(listOptions = {}) {
      const app = binding.app('list');
      const method = 'list(options)';
      rejectUnknownKeys(method, listOptions, ['queue', 'name', 'redriven', 'limit', 'cursor']);
      const limit = integerOption(method, 'limit', listOptions.limit, 50, { min: 1, max: 1000 });
      if (listOptions.redriven !== undefined && typeof listOptions.redriven !== 'boolean') {
        throw new InvalidOptionError(`${method}: \`redriven\` must be true or false, got ${typeof listOptions.redriven}.`, {
          details: { option: 'redriven' },
        });
      }
      const cursor = listOptions.cursor === undefined || listOptions.cursor === null ? null : idOf(method, listOptions.cursor, 'cursor');
      const rows = await deadLettersList(app.sql, app.schema, {
        ...filterOf(method, listOptions),
        redriven: listOptions.redriven ?? null,
        before: cursor,
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      return { deadLetters: await toDeadLetters(app, page), nextCursor: rows.length > limit ? (page.at(-1)?.id ?? null) : null };
    },

    async get(id) {
      const app = binding.app('get');
      const [row] = await deadLettersGet(app.sql, app.schema, [idOf('get(id)', id)]);
      if (!row) throw new DeadLetterNotFoundError(`No dead letter with id ${id} (it may have been deleted).`, { details: { id } });
      const [letter] = await toDeadLetters(app, [row]);
      return letter as DeadLetter;
    },

    async redrive(ids, redriveOptions = {}) {
      const app = binding.app('redrive');
      const list = idsOf('redrive(ids, options)', ids);
      const redrive = checkRedrive('redrive(ids, options)', redriveOptions);
      const done = (await app.sql.begin(async (tx) => {
        const rows = await deadLettersLock(tx, app.schema, { ids: list });
        const found = new Set(rows.map((r) => r.id));
        const missing = list.filter((id) => !found.has(id));
        if (missing.length > 0) {
          throw new DeadLetterNotFoundError(`No dead letter with id ${missing.join(', ')} (it may have been deleted); nothing was re-driven.`, {
            details: { ids: missing },
          });
        }
        const again = rows.find((r) => r.redriven_at !== null);
        if (again) {
          throw new DeadLetterAlreadyRedrivenError(
            `Dead letter ${again.id} (job ${again.job_id}) was re-driven already, as job ${again.redriven_job_id}; nothing was re-driven.`,
            { details: { id: again.id, jobId: again.redriven_job_id } },
          );
        }
        return pushAgain(app, tx, rows, redrive);
      })) as Redriven[];
      app.emit(PLUGIN_NAME, 'dead-letter.redriven', { redriven: done });
      return done;
    },

    async redriveAll(filter = {}, redriveOptions = {}) {
      const app = binding.app('redriveAll');
      const method = 'redriveAll(filter, options)';
      rejectUnknownKeys(method, filter, ['queue', 'name']);
      const match = filterOf(method, filter);
      const redrive = checkRedrive(method, redriveOptions);
      const all: Redriven[] = [];
      for (;;) {
        const batch = (await app.sql.begin(async (tx) =>
          pushAgain(app, tx, await deadLettersLock(tx, app.schema, { ...match, redriven: false, limit: REDRIVE_BATCH }), redrive),
        )) as Redriven[];
        if (batch.length > 0) app.emit(PLUGIN_NAME, 'dead-letter.redriven', { redriven: batch });
        all.push(...batch);
        if (batch.length < REDRIVE_BATCH) return all;
      }
    },

    async delete(ids) {
      const app = binding.app('delete');
      return (await deadLettersDelete(app.sql, app.schema, idsOf('delete(ids)', ids))).map((r) => r.id);
    },
  };
}

function idOf(where: string, id: unknown, option = 'id'): string {
  if (typeof id !== 'string' || !/^[1-9]\d{0,18}$/.test(id)) {
    throw new InvalidOptionError(`${where}: \`${option}\` must be a dead letter id (a decimal string), got ${describeValue(id)}.`, {
      details: { option },
    });
  }
  return id;
}

function idsOf(where: string, ids: unknown): string[] {
  const list = typeof ids === 'string' ? [ids] : ids;
  if (!Array.isArray(list) || list.length === 0 || list.length > 1000) {
    throw new InvalidOptionError(`${where}: give a dead letter id or a list of 1 to 1000 of them, got ${describeValue(ids)}.`, {
      details: { option: 'ids' },
    });
  }
  return [...new Set(list.map((id) => idOf(where, id)))];
}

function filterOf(where: string, filter: { queue?: unknown; name?: unknown }): Omit<DeadLetterFilter, 'redriven'> {
  return { queues: listOption(where, 'queue', filter.queue, assertQueueName), names: listOption(where, 'name', filter.name, assertJobName) };
}

/** A value or a list of 1–100 values, each checked; null when unset. */
function listOption<T>(where: string, name: string, value: unknown, check: (v: unknown) => T): T[] | null {
  if (value === undefined) return null;
  const values: unknown[] = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
  if (values.length === 0 || values.length > MAX_LIST_VALUES) {
    throw new InvalidOptionError(`${where}: \`${name}\` must be a value or a list of 1 to ${MAX_LIST_VALUES} values, got ${describeValue(value)}.`, {
      details: { option: name },
    });
  }
  return [...new Set(values.map((v) => check(v)))];
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 30 ? `${value.slice(0, 30)}…` : value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  return value === null ? 'null' : typeof value;
}
