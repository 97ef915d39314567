/**
 * @docket/plugin-priority-aging — pending jobs gain priority with their wait: in each queue with a
 * rule, +1 for every `everyMs` a job has waited since it became due, up to `maxPriority`. The core
 * claims by `priority DESC, scheduled_at, id`, so a job aged to the priority of a steady stream of
 * newer work goes before all of it: it can be delayed, not starved.
 *
 *   const app = new Docket({ connection, plugins: [priorityAging({ queues: { reports: { everyMs: 60_000, maxPriority: 10 } } })] });
 *
 * Jobs of aging queues are pushed with a marker column (`aging_from`); a periodic task raises the
 * jobs whose next step is due, in bounded batches read from a partial index that holds only
 * pending jobs of aging queues. Other queues pay nothing: their pushes run no hook of the plugin
 * and their jobs are in none of its indexes; claims are never touched. README.md states the rules.
 */
import { type Docket, type DocketPlugin, type PeriodicEvents, periodicBinding, rejectUnknownKeys } from '@docket/core';
import { type PriorityAgingOptions, type PriorityAgingSettings, type QueueAging, resolveSettings } from './options.js';
import { AGING_COLUMN, COUNT_FROM_RUN_TIME, dueJobsRaise, MIGRATIONS } from './sql.js';

export {
  MAX_EVERY_MS,
  MAX_PRIORITY,
  MIN_PRIORITY,
  type PriorityAgingOptions,
  type PriorityAgingSettings,
  type QueueAging,
} from './options.js';
export { AGING_COLUMN };

export const PLUGIN_NAME = 'priority-aging';
const VERSION = '0.0.0';

/** What one run did. */
export interface AgingResult {
  /** Jobs whose priority was raised, per queue (queues with none are left out). */
  readonly raised: Readonly<Record<string, number>>;
  /** A queue hit `maxBatchesPerRun` (or the worker stopped): jobs may be left for the next run. */
  readonly truncated: boolean;
}

/** The events of the task: `priority-aging.started`, `priority-aging.finished` (with the AgingResult), `priority-aging.failed`. */
export type PriorityAgingEvents = PeriodicEvents<typeof PLUGIN_NAME, AgingResult>;

declare module '@docket/core' {
  interface DocketEventMap extends PriorityAgingEvents {}
}

export interface PriorityAgingPlugin extends DocketPlugin {
  readonly name: typeof PLUGIN_NAME;
  readonly settings: PriorityAgingSettings;
  /** Raises the priorities that are due now, from this process (whatever `primaryOnly` says). */
  runNow(options?: { signal?: AbortSignal }): Promise<AgingResult>;
  /** Resolves with the result of the next run that finishes on this process. */
  nextRun(options?: { timeoutMs?: number }): Promise<AgingResult>;
}

export function priorityAging(options: PriorityAgingOptions): PriorityAgingPlugin {
  const settings = resolveSettings(options);
  const ruleOf = (queue: string): QueueAging | undefined => (Object.hasOwn(settings.queues, queue) ? settings.queues[queue] : undefined);
  const binding = periodicBinding<AgingResult>('priorityAging', {
    name: PLUGIN_NAME,
    intervalMs: settings.intervalMs,
    primaryOnly: settings.primaryOnly,
    run: ({ app, signal }) => raise(app, settings, signal),
  });
  return {
    name: PLUGIN_NAME,
    version: VERSION,
    migrations: MIGRATIONS,
    settings,
    apply(app) {
      binding.apply(app);
      app.defineJobColumn({ name: AGING_COLUMN, type: 'timestamptz' });
      // Only rows that can age are marked (only pushes with one run this tap, and it sets a column
      // in memory: no transaction, transaction: false); a job pushed at or above its ceiling never
      // ages, so it is left out of the index.
      const ages = (row: { queue: string; priority: number }) => {
        const rule = ruleOf(row.queue);
        return rule !== undefined && row.priority < rule.maxPriority;
      };
      app.hooks.beforePush.tapPromise({ name: PLUGIN_NAME, wants: ages, transaction: false }, async (rows) => {
        for (const row of rows) if (ages(row)) row.columns[AGING_COLUMN] = COUNT_FROM_RUN_TIME;
        return rows;
      });
    },
    runNow(opts = {}) {
      rejectUnknownKeys(`${PLUGIN_NAME}.runNow(options)`, opts, ['signal']);
      return raise(binding.bound().app, settings, opts.signal);
    },
    nextRun(opts) {
      return binding.bound().task.nextRun(opts);
    },
  };
}

/** One run: every aging queue's due jobs, in batches of `batchSize` (one statement, one transaction each). */
async function raise(app: Docket, settings: PriorityAgingSettings, signal: AbortSignal | undefined): Promise<AgingResult> {
  const raised: Record<string, number> = {};
  let truncated = false;
  for (const [queue, rule] of Object.entries(settings.queues)) {
    for (let batch = 0; ; batch++) {
      if (signal?.aborted) return { raised, truncated: true };
      if (batch === settings.maxBatchesPerRun) {
        truncated = true;
        break;
      }
      const n = await dueJobsRaise(app.sql, app.schema, { queue, ...rule, limit: settings.batchSize });
      if (n > 0) raised[queue] = (raised[queue] ?? 0) + n;
      if (n < settings.batchSize) break;
    }
  }
  return { raised, truncated };
}
