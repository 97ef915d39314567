/**
 * @docket/plugin-ratelimit — rate limits on the claim hooks: at most N job starts per window in a
 * queue, or per key within a queue (`withRateLimitKey`), across every worker.
 *
 *   const app = new Docket({ connection, plugins: [ratelimit({ queues: { emails: { limit: 50, periodMs: 1000 } } })] });
 *   await app.push(callApi.withArgs({ tenant: 7 }).withRateLimitKey('tenant:7'));
 *
 * The state is a sliding window log per queue and per key in the database (`ratelimit_windows`),
 * read and written in each claim's transaction under a row lock on the queue's window, so workers
 * never spend the same starts twice. A job held back is simply not claimed: it stays pending with
 * its attempt count untouched, and the runner is told when the window opens (`claim.retryAt`).
 * README.md states the guarantees and their limits.
 */
import {
  assertQueueName,
  type ClaimContext,
  type Docket,
  type DocketPlugin,
  type PeriodicEvents,
  periodicBinding,
  rejectUnknownKeys,
} from '@docket/core';
import { type ClaimWindows, recordClaim, shapeClaim } from './claim.js';
import { RateLimitNoKeyRuleError } from './errors.js';
import { KEY_EXTENSION, rateLimitKey } from './key.js';
import { type QueueRules, type RateLimitOptions, type RateLimitSettings, resolveSettings } from './options.js';
import { deadWindowsDelete, KEY_COLUMN, MIGRATIONS, QUEUE_ROW, queueWindowsRead } from './sql.js';
import { liveLog, used } from './window.js';

export { RATELIMIT_ERRORS, RateLimitNoKeyRuleError } from './errors.js';
export { KEY_EXTENSION, MAX_KEY_LENGTH, rateLimitKey } from './key.js';
export {
  MAX_LIMIT,
  MAX_PERIOD_MS,
  MIN_PERIOD_MS,
  type QueueRateLimit,
  type QueueRules,
  type RateLimitOptions,
  type RateLimitSettings,
  type RateRule,
  type ResolvedRule,
} from './options.js';
export { KEY_COLUMN };

export const PLUGIN_NAME = 'ratelimit';
const VERSION = '0.0.0';
/** Dead key windows deleted per statement by the cleanup. */
const CLEANUP_BATCH = 1000;

/** Starts that count against a queue's limits now. */
export interface RateLimitUsage {
  /** Starts of the queue's jobs within its period (null: the queue has no limit of its own). */
  readonly queue: number | null;
  /** Starts within the per-key period, per key that has any (keys with none are left out). */
  readonly keys: Readonly<Record<string, number>>;
}

/** What one cleanup run did: dead key windows deleted. */
export interface RateLimitCleanup {
  readonly deleted: number;
}

/** The events of the cleanup task: `ratelimit.started`, `ratelimit.finished` (with RateLimitCleanup), `ratelimit.failed`. */
export type RateLimitEvents = PeriodicEvents<typeof PLUGIN_NAME, RateLimitCleanup>;

declare module '@docket/core' {
  interface DocketEventMap extends RateLimitEvents {}
}

export interface RateLimitPlugin extends DocketPlugin {
  readonly name: typeof PLUGIN_NAME;
  /** The validated rules per queue. */
  readonly settings: RateLimitSettings;
  /** Starts counting against `queue`'s limits now (what any worker's next claim would count). */
  usage(queue: string): Promise<RateLimitUsage>;
  /** Deletes dead key windows now, from this process. */
  runNow(options?: { signal?: AbortSignal }): Promise<RateLimitCleanup>;
  /** Resolves with the result of the next cleanup run that finishes on this process. */
  nextRun(options?: { timeoutMs?: number }): Promise<RateLimitCleanup>;
}

export function ratelimit(options: RateLimitOptions): RateLimitPlugin {
  const settings = resolveSettings(options);
  const rulesOf = (queue: string): QueueRules | undefined => (Object.hasOwn(settings.queues, queue) ? settings.queues[queue] : undefined);
  const binding = periodicBinding<RateLimitCleanup>('ratelimit', {
    name: PLUGIN_NAME,
    intervalMs: settings.cleanupIntervalMs,
    primaryOnly: settings.primaryOnly,
    run: ({ app, signal }) => cleanup(app, settings, signal),
  });

  return {
    name: PLUGIN_NAME,
    version: VERSION,
    migrations: MIGRATIONS,
    settings,

    apply(app) {
      binding.apply(app);
      app.defineJobOption(KEY_EXTENSION);
      app.defineJobColumn({ name: KEY_COLUMN, type: 'text' });

      // Only pushes with a keyed job run this; every other push runs no hook of the plugin.
      const keyed = (row: { extensions: Record<string, unknown> }) => row.extensions[KEY_EXTENSION] !== undefined;
      // It only reads and sets rows in memory: no transaction either (transaction: false).
      app.hooks.beforePush.tapPromise({ name: PLUGIN_NAME, wants: keyed, transaction: false }, async (rows) => {
        // Every row is checked before any is changed: a bad row fails the push, nothing is stored.
        const keys = rows.map((row) => {
          if (!keyed(row)) return null;
          const key = rateLimitKey(row.extensions[KEY_EXTENSION]);
          if (!rulesOf(row.queue)?.perKey) {
            throw new RateLimitNoKeyRuleError(
              `job '${row.name}' has rate-limit key '${key.length > 40 ? `${key.slice(0, 40)}…` : key}' but its queue '${row.queue}' has no perKey rule, so the key would limit nothing. ` +
                `Add one: ratelimit({ queues: { '${row.queue}': { perKey: { limit, periodMs } } } }) (the same options on every app that pushes or works), or push the job without the key.`,
              { details: { queue: row.queue, job: row.name } },
            );
          }
          return key;
        });
        rows.forEach((row, i) => {
          if (keys[i] !== null) row.columns[KEY_COLUMN] = keys[i];
        });
        return rows;
      });

      // The windows a claim read, for the same claim's afterClaim (the two hooks get one context).
      const read = new WeakMap<ClaimContext, ClaimWindows>();
      const wants = (queue: string) => rulesOf(queue) !== undefined;
      app.hooks.beforeClaim.tapPromise({ name: PLUGIN_NAME, wants }, async (claim) => {
        const rules = rulesOf(claim.queue);
        if (rules) read.set(claim, await shapeClaim(claim, app.schema, rules));
      });
      app.hooks.afterClaim.tapPromise({ name: PLUGIN_NAME, wants }, async (claimed, claim) => {
        const rules = rulesOf(claim.queue);
        const windows = read.get(claim);
        if (rules && windows) await recordClaim(claimed, claim, app.schema, rules, windows);
      });
    },

    async usage(queue) {
      assertQueueName(queue);
      const { app } = binding.bound();
      const rules = rulesOf(queue);
      const keys: Record<string, number> = {};
      let own: number | null = rules?.queue ? 0 : null;
      for (const row of await queueWindowsRead(app.sql, app.schema, { queue })) {
        const rule = row.key === QUEUE_ROW ? rules?.queue : rules?.perKey;
        if (!rule) continue;
        const n = used(liveLog({ at: row.at_ms, counts: row.counts }, row.now_ms, rule.periodMs));
        if (row.key === QUEUE_ROW) own = n;
        else if (n > 0) keys[row.key] = n;
      }
      return { queue: own, keys };
    },

    runNow(opts = {}) {
      rejectUnknownKeys(`${PLUGIN_NAME}.runNow(options)`, opts, ['signal']);
      return cleanup(binding.bound().app, settings, opts.signal);
    },

    nextRun(opts) {
      return binding.bound().task.nextRun(opts);
    },
  };
}

/** Deletes the dead key windows of every limited queue, in batches (one statement each). */
async function cleanup(app: Docket, settings: RateLimitSettings, signal: AbortSignal | undefined): Promise<RateLimitCleanup> {
  let deleted = 0;
  for (const [queue, rules] of Object.entries(settings.queues)) {
    if (!rules.perKey) continue;
    for (;;) {
      if (signal?.aborted) return { deleted };
      const gone = await deadWindowsDelete(app.sql, app.schema, { queue, limit: CLEANUP_BATCH });
      deleted += gone.length;
      if (gone.length < CLEANUP_BATCH) break;
    }
  }
  return { deleted };
}
