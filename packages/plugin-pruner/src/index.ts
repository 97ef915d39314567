/**
 * @docket/plugin-pruner — deletes finished jobs (succeeded, failed, cancelled) by rules: an age
 * per state, per queue, and "keep the newest N". Never touches pending, running or waiting jobs.
 * Deletes in bounded batches, one transaction per batch, through `app.deleteJobs`, which fires
 * the core's `jobsDeleted` hook in that transaction: other plugins delete their own rows that hang
 * off the pruned jobs there.
 *
 *   const app = new Docket({ connection, plugins: [pruner({ maxAgeMs: { succeeded: 3_600_000 } })] });
 */
import {
  assertQueueName,
  booleanOption,
  type Docket,
  type DocketPlugin,
  InvalidOptionError,
  integerOption,
  type PeriodicEvents,
  periodicBinding,
  rejectUnknownKeys,
  type SqlClient,
} from '@docket/core';
import { type AgeRule, expiredJobsLock, type KeepRule, MIGRATIONS, PRUNABLE_STATES, type PrunableState, surplusJobsLock } from './sql.js';

export const PLUGIN_NAME = 'pruner';
export const PLUGIN_VERSION = '0.1.0';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** An age in milliseconds, or `null` to keep forever. */
export type Age = number | null;
/** One age for every finished state, or an age per state. */
export type AgeOption = Age | { succeeded?: Age; failed?: Age; cancelled?: Age };

export interface QueuePruneOptions {
  /** This queue's ages; states not given fall back to the top-level `maxAgeMs`. */
  maxAgeMs?: AgeOption;
  /** Keep at most this many finished jobs of this queue (the newest by finish time); null: no cap. */
  keepNewest?: number | null;
}

export interface PrunerOptions {
  /** How often a worker prunes. Default 60000 ms. */
  intervalMs?: number;
  /** Jobs deleted per transaction. Default 1000. */
  batchSize?: number;
  /** Most batches per run (the next run goes on). Default 1000. */
  maxBatchesPerRun?: number;
  /** Finished jobs older than this are deleted. Default: succeeded 1 day, failed 7 days, cancelled 1 day. */
  maxAgeMs?: AgeOption;
  /** Keep at most this many finished jobs, counted over every queue without its own `keepNewest`. Default: no cap. */
  keepNewest?: number | null;
  /** Rules of single queues, by queue name. */
  queues?: Record<string, QueuePruneOptions>;
  /** Prune only on the primary worker when an election plugin answers. Default true. Correct either way. */
  primaryOnly?: boolean;
}

const OPTION_KEYS = ['intervalMs', 'batchSize', 'maxBatchesPerRun', 'maxAgeMs', 'keepNewest', 'queues', 'primaryOnly'] as const;
const QUEUE_KEYS = ['maxAgeMs', 'keepNewest'] as const;
const DEFAULT_AGES: Record<PrunableState, Age> = { succeeded: DAY, failed: 7 * DAY, cancelled: DAY };

export interface PrunerSettings {
  readonly intervalMs: number;
  readonly batchSize: number;
  readonly maxBatchesPerRun: number;
  readonly primaryOnly: boolean;
  /** Ages per state, for queues without their own. */
  readonly maxAgeMs: Readonly<Record<PrunableState, Age>>;
  readonly keepNewest: number | null;
  /** Per-queue rules as given (states not given are absent). */
  readonly queues: Readonly<Record<string, { maxAgeMs: Partial<Record<PrunableState, Age>>; keepNewest?: number | null }>>;
}

export interface PruneResult {
  /** Jobs deleted in this run. */
  readonly deleted: number;
  /** Transactions (batches) that deleted at least one job. */
  readonly batches: number;
  /** Deleted per rule: `age:<state>`, `keep:<queue>`, `keep:*` (the top-level cap). */
  readonly byRule: Readonly<Record<string, number>>;
  /** True when the run stopped at `maxBatchesPerRun` (or because the worker stopped): work may be left for the next run. */
  readonly truncated: boolean;
}

/** The events of the plugin's periodic task: `pruner.started`, `pruner.finished` (with the PruneResult), `pruner.failed`. */
export type PrunerEvents = PeriodicEvents<typeof PLUGIN_NAME, PruneResult>;

declare module '@docket/core' {
  interface DocketEventMap extends PrunerEvents {}
}

export interface PrunerPlugin extends DocketPlugin {
  readonly settings: PrunerSettings;
  /** Resolves with the result of the next run that finishes on this process. */
  nextRun(options?: { timeoutMs?: number }): Promise<PruneResult>;
  /** Prunes once now from this process (whatever `primaryOnly` says). */
  runNow(options?: { signal?: AbortSignal }): Promise<PruneResult>;
}

export function pruner(options: PrunerOptions = {}): PrunerPlugin {
  const settings = validate(options);
  const binding = periodicBinding<PruneResult>('pruner', {
    name: PLUGIN_NAME,
    intervalMs: settings.intervalMs,
    primaryOnly: settings.primaryOnly,
    run: ({ app, signal }) => prune(app, settings, signal),
  });
  return {
    name: PLUGIN_NAME,
    version: PLUGIN_VERSION,
    migrations: MIGRATIONS,
    settings,
    apply(target: Docket) {
      binding.apply(target);
    },
    nextRun(opts) {
      return binding.bound().task.nextRun(opts);
    },
    runNow(opts = {}) {
      rejectUnknownKeys(`${PLUGIN_NAME}.runNow(options)`, opts, ['signal']);
      return prune(binding.bound().app, settings, opts.signal);
    },
  };
}

/** Runs every rule in batches: one transaction per batch, through app.deleteJobs. */
async function prune(app: Docket, settings: PrunerSettings, signal: AbortSignal | undefined): Promise<PruneResult> {
  const byRule: Record<string, number> = {};
  let deleted = 0;
  let batches = 0;
  let truncated = false;

  const drain = async (rule: string, select: (tx: SqlClient) => Promise<Array<{ id: string }>>) => {
    for (;;) {
      if (signal?.aborted || batches >= settings.maxBatchesPerRun) {
        truncated = true;
        return;
      }
      let found = 0;
      const gone = (await app.sql.begin(async (tx) => {
        const ids = (await select(tx)).map((r) => r.id);
        found = ids.length;
        return ids.length === 0 ? [] : app.deleteJobs(ids, { sql: tx });
      })) as string[];
      if (gone.length > 0) {
        batches++;
        deleted += gone.length;
        byRule[rule] = (byRule[rule] ?? 0) + gone.length;
      }
      if (found < settings.batchSize) return;
    }
  };

  for (const state of PRUNABLE_STATES) {
    const rule = ageRule(settings, state);
    if (rule) await drain(`age:${state}`, (tx) => expiredJobsLock(tx, app.schema, state, rule, settings.batchSize));
  }
  for (const rule of keepRules(settings)) {
    await drain(`keep:${rule.queue ?? '*'}`, (tx) => surplusJobsLock(tx, app.schema, rule, settings.batchSize));
  }
  return { deleted, batches, byRule, truncated };
}

function ageRule(settings: PrunerSettings, state: PrunableState): AgeRule | null {
  const queues: string[] = [];
  const ages: Age[] = [];
  for (const [queue, q] of Object.entries(settings.queues)) {
    if (state in q.maxAgeMs) {
      queues.push(queue);
      ages.push(q.maxAgeMs[state] ?? null);
    }
  }
  const defaultAgeMs = settings.maxAgeMs[state];
  const all = [defaultAgeMs, ...ages].filter((a): a is number => a !== null);
  if (all.length === 0) return null;
  return { minAgeMs: Math.min(...all), defaultAgeMs, queues, ages };
}

function keepRules(settings: PrunerSettings): KeepRule[] {
  const rules: KeepRule[] = [];
  const own: string[] = [];
  for (const [queue, q] of Object.entries(settings.queues)) {
    if (q.keepNewest === undefined) continue;
    own.push(queue);
    if (q.keepNewest !== null) rules.push({ queue, except: [], keep: q.keepNewest });
  }
  if (settings.keepNewest !== null) rules.push({ queue: null, except: own, keep: settings.keepNewest });
  return rules;
}

// -------------------------------------------------------------------------------------------------
// Options

function validate(options: PrunerOptions): PrunerSettings {
  const where = `${PLUGIN_NAME}(options)`;
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const maxAgeMs = { ...DEFAULT_AGES, ...ages(where, 'maxAgeMs', options.maxAgeMs) };
  const queues: Record<string, { maxAgeMs: Partial<Record<PrunableState, Age>>; keepNewest?: number | null }> = {};
  if (options.queues !== undefined) {
    if (options.queues === null || typeof options.queues !== 'object' || Array.isArray(options.queues)) {
      throw new InvalidOptionError(`${where}: \`queues\` must be an object of per-queue rules, e.g. { emails: { keepNewest: 1000 } }.`, {
        details: { where, option: 'queues' },
      });
    }
    for (const [queue, q] of Object.entries(options.queues)) {
      assertQueueName(queue);
      const qWhere = `${where}.queues.${queue}`;
      rejectUnknownKeys(qWhere, q, QUEUE_KEYS);
      if (q === undefined) throw new InvalidOptionError(`${qWhere} must be an object.`, { details: { where: qWhere } });
      queues[queue] = {
        maxAgeMs: ages(qWhere, 'maxAgeMs', q.maxAgeMs),
        ...(q.keepNewest === undefined ? {} : { keepNewest: keep(qWhere, q.keepNewest) }),
      };
    }
  }
  return Object.freeze({
    intervalMs: integerOption(where, 'intervalMs', options.intervalMs, 60_000, { min: 10, max: 7 * DAY }),
    batchSize: integerOption(where, 'batchSize', options.batchSize, 1000, { min: 1, max: 10_000 }),
    maxBatchesPerRun: integerOption(where, 'maxBatchesPerRun', options.maxBatchesPerRun, 1000, { min: 1, max: 1_000_000 }),
    primaryOnly: booleanOption(where, 'primaryOnly', options.primaryOnly, true),
    maxAgeMs: Object.freeze(maxAgeMs),
    keepNewest: options.keepNewest === undefined ? null : keep(where, options.keepNewest),
    queues: Object.freeze(queues),
  });
}

const MAX_AGE = 100 * 365 * DAY;

function age(where: string, name: string, value: unknown): Age {
  if (value === null) return null;
  return integerOption(where, name, value, 0, { min: 0, max: MAX_AGE });
}

/** Normalises an AgeOption into the states it sets. */
function ages(where: string, name: string, value: AgeOption | undefined): Partial<Record<PrunableState, Age>> {
  if (value === undefined) return {};
  if (value === null || typeof value === 'number') {
    const a = age(where, name, value);
    return { succeeded: a, failed: a, cancelled: a };
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionError(
      `${where}: \`${name}\` must be milliseconds, null (keep forever) or { succeeded, failed, cancelled }, got ${typeof value}.`,
      { details: { where, option: name } },
    );
  }
  rejectUnknownKeys(`${where}.${name}`, value, PRUNABLE_STATES);
  const out: Partial<Record<PrunableState, Age>> = {};
  for (const state of PRUNABLE_STATES) if (value[state] !== undefined) out[state] = age(where, `${name}.${state}`, value[state]);
  return out;
}

function keep(where: string, value: unknown): number | null {
  if (value === null) return null;
  return integerOption(where, 'keepNewest', value, 0, { min: 0, max: Number.MAX_SAFE_INTEGER });
}
