/**
 * @docket/plugin-concurrency — flow control on the claim hooks: a global cap per queue across
 * every worker, per-key concurrency limits (limit 1: a serial lane per key), and fair turns across
 * keys, so one key's backlog does not delay another key's first job.
 *
 *   const app = new Docket({ connection, plugins: [concurrency({ queues: { emails: { max: 5 }, sync: { keyLimit: 1 } } })] });
 *   await app.push(syncAccount.withArgs({ account: 42 }).withConcurrencyKey('account:42'));
 *
 * Capacity is never stored: it is the count of the queue's `running` rows (per key too), read in
 * the claim's transaction after an advisory lock that makes the queue's claims take turns. A job
 * stops holding capacity the moment its row stops being `running` — completed, failed, retried,
 * released, or reset by recovery after its worker died — so there is no counter to drift or leak.
 * README.md states the guarantees and their limits.
 */
import { assertQueueName, type DocketPlugin, type JobInsert, pluginBinding } from '@docket/core';
import { ConcurrencyQueueNotConfiguredError } from './errors.js';
import { concurrencyKey, KEY_EXTENSION } from './key.js';
import { type ConcurrencyOptions, type ConcurrencySettings, type QueueRules, resolveSettings } from './options.js';
import { claimUsageLock, MIGRATIONS, usageRead } from './sql.js';

export { CONCURRENCY_ERRORS, ConcurrencyQueueNotConfiguredError } from './errors.js';
export { concurrencyKey, KEY_EXTENSION, MAX_KEY_LENGTH } from './key.js';
export { type ConcurrencyOptions, type ConcurrencySettings, MAX_LIMIT, type QueueConcurrency, type QueueRules } from './options.js';

export const PLUGIN_NAME = 'concurrency';
const VERSION = '0.1.0';
/** The `jobs` column that holds a job's concurrency key. */
export const KEY_COLUMN = 'concurrency_key';

/** Capacity in use in one queue, as the next claim will count it. */
export interface ConcurrencyUsage {
  /** Jobs of the queue in state `running` (claimed by a worker, including its prefetch buffer). */
  readonly running: number;
  /** Running jobs per concurrency key (keys with none are left out). */
  readonly keys: Readonly<Record<string, number>>;
}

export interface ConcurrencyPlugin extends DocketPlugin {
  readonly name: typeof PLUGIN_NAME;
  /** The validated rules per queue. */
  readonly settings: ConcurrencySettings;
  /** Capacity in use in `queue` now (from the rows: what any worker's next claim would count). */
  usage(queue: string): Promise<ConcurrencyUsage>;
}

export function concurrency(options: ConcurrencyOptions): ConcurrencyPlugin {
  const settings = resolveSettings(options);
  const binding = pluginBinding(PLUGIN_NAME, 'concurrency');
  const rulesOf = (queue: string): QueueRules | undefined => (Object.hasOwn(settings.queues, queue) ? settings.queues[queue] : undefined);

  return {
    name: PLUGIN_NAME,
    version: VERSION,
    migrations: MIGRATIONS,
    settings,

    apply(app) {
      binding.bind(app);
      app.defineJobOption(KEY_EXTENSION);
      app.defineJobColumn({ name: KEY_COLUMN, type: 'text' });

      // Only pushes with a keyed row run the tap: a plain push stays the core's one statement.
      const keyed = (row: JobInsert) => row.extensions[KEY_EXTENSION] !== undefined && row.extensions[KEY_EXTENSION] !== null;
      app.hooks.beforePush.tapPromise({ name: PLUGIN_NAME, wants: keyed }, async (rows) => {
        // Validate the whole batch before changing any row: a bad row fails the push, nothing is stored.
        for (const row of rows) {
          if (!keyed(row)) continue;
          const key = concurrencyKey(row.extensions[KEY_EXTENSION]);
          if (rulesOf(row.queue) === undefined) {
            throw new ConcurrencyQueueNotConfiguredError(
              `job '${row.name}' has concurrency key '${key.length > 40 ? `${key.slice(0, 40)}…` : key}' but its queue '${row.queue}' is not governed by the concurrency plugin, so the key would limit nothing. ` +
                `Add the queue to concurrency({ queues: { '${row.queue}': { keyLimit: 1 } } }) (the same options on every app that pushes or works), or push it without the key.`,
              { details: { queue: row.queue, job: row.name } },
            );
          }
        }
        for (const row of rows) if (keyed(row)) row.columns[KEY_COLUMN] = row.extensions[KEY_EXTENSION];
        return rows;
      });

      app.hooks.beforeClaim.tapPromise({ name: PLUGIN_NAME, wants: (queue) => rulesOf(queue) !== undefined }, async (claim) => {
        const rules = rulesOf(claim.queue);
        if (rules === undefined) return;
        const { max, keyLimit } = rules;
        if (max === null && keyLimit === null) {
          // Fairness alone: no capacity to count, so no lock; keys take turns within the claim.
          claim.perKey(KEY_COLUMN, Math.max(1, claim.limit));
          return;
        }
        // From here to the claim's commit, this queue's other claims wait: what is counted cannot
        // change under this claim except by jobs ending (which only frees capacity).
        const counts = await claimUsageLock(claim.sql, app.schema, { queue: claim.queue, byKey: keyLimit !== null, upTo: max ?? 0 });
        if (max !== null) {
          const running = counts.reduce((sum, row) => sum + row.n, 0);
          claim.limitTo(max - running);
          if (claim.limit === 0) return;
        }
        if (keyLimit === null) {
          claim.perKey(KEY_COLUMN, claim.limit);
          return;
        }
        const budgets: Array<[string, number]> = [];
        for (const { key, n } of counts) if (key !== null) budgets.push([key, Math.max(0, keyLimit - n)]);
        claim.perKey(KEY_COLUMN, keyLimit, budgets);
      });
    },

    async usage(queue) {
      const app = binding.app('usage');
      assertQueueName(queue);
      const counts = await usageRead(app.sql, app.schema, { queue });
      const keys: Record<string, number> = {};
      let running = 0;
      for (const { key, n } of counts) {
        running += n;
        if (key !== null) keys[key] = n;
      }
      return { running, keys };
    },
  };
}
