/**
 * The plugin's options and their validation: what `ratelimit(options)` accepts, checked when the
 * plugin is built so a typo fails at startup, not at the first claim.
 */
import { assertQueueName, booleanOption, InvalidOptionError, integerOption, rejectUnknownKeys } from '@docket/core';

/** Largest `limit` accepted (far above any plausible rate; keeps the window arithmetic exact). */
export const MAX_LIMIT = 1_000_000_000;
/** Shortest window: below it, the 1 ms grid starts are recorded on (window.ts) would cost more than 10% of the rate. */
export const MIN_PERIOD_MS = 10;
/** Longest window (a week); a window's log keeps at most ~1,000 entries, one per thousandth of the period. */
export const MAX_PERIOD_MS = 7 * 24 * 3_600_000;

/** At most `limit` job starts in any `periodMs` milliseconds. */
export interface RateRule {
  limit: number;
  periodMs: number;
}

/** The rules of one queue: a limit for the whole queue, one for each rate-limit key, or both. */
export interface QueueRateLimit {
  /** At most this many starts of the queue's jobs per `periodMs`, across every worker (with `periodMs`). */
  limit?: number;
  /** The window of `limit`, in milliseconds (with `limit`). */
  periodMs?: number;
  /** At most `limit` starts per `periodMs` of the jobs of each key (`withRateLimitKey`). */
  perKey?: RateRule;
}

export interface RateLimitOptions {
  /** The queues the plugin limits, by name. Only their claims are shaped; the others keep the core's plain claim. */
  queues: Readonly<Record<string, QueueRateLimit>>;
  /** How often a worker deletes the windows of keys that started nothing for a whole period. Default 60000 ms. */
  cleanupIntervalMs?: number;
  /** Clean up only on the primary worker when an election plugin answers. Default true. Correct either way. */
  primaryOnly?: boolean;
}

/** One rule, validated. */
export interface ResolvedRule {
  readonly limit: number;
  readonly periodMs: number;
}

/** One queue's rules, resolved: `null` means no such limit. */
export interface QueueRules {
  readonly queue: ResolvedRule | null;
  readonly perKey: ResolvedRule | null;
}

export interface RateLimitSettings {
  readonly queues: Readonly<Record<string, QueueRules>>;
  readonly cleanupIntervalMs: number;
  readonly primaryOnly: boolean;
}

const OPTION_KEYS = ['queues', 'cleanupIntervalMs', 'primaryOnly'] as const;
const QUEUE_KEYS = ['limit', 'periodMs', 'perKey'] as const;
const RULE_KEYS = ['limit', 'periodMs'] as const;

/** Validates `ratelimit(options)`; throws DOCKET_INVALID_OPTION / DOCKET_INVALID_QUEUE_NAME. */
export function resolveSettings(options: RateLimitOptions): RateLimitSettings {
  const where = 'ratelimit(options)';
  if (!isPlainObject(options)) {
    throw new InvalidOptionError(`${where}: pass an object, e.g. ratelimit({ queues: { emails: { limit: 50, periodMs: 1000 } } }).`, {
      details: { where },
    });
  }
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const { queues } = options;
  if (!isPlainObject(queues) || Object.keys(queues).length === 0) {
    throw new InvalidOptionError(`${where}: \`queues\` must name at least one queue, e.g. { emails: { limit: 50, periodMs: 1000 } }.`, {
      details: { where, option: 'queues' },
    });
  }
  const resolved: Record<string, QueueRules> = Object.create(null);
  for (const [queue, rules] of Object.entries(queues)) {
    assertQueueName(queue);
    const at = `${where} queues['${queue}']`;
    if (!isPlainObject(rules)) {
      throw new InvalidOptionError(`${at} must be an object such as { limit: 50, periodMs: 1000 } or { perKey: { limit: 5, periodMs: 1000 } }.`, {
        details: { where: at },
      });
    }
    rejectUnknownKeys(at, rules, QUEUE_KEYS);
    const own = rules.limit === undefined && rules.periodMs === undefined ? null : rule(at, rules);
    let perKey: ResolvedRule | null = null;
    if (rules.perKey !== undefined) {
      const keyAt = `${at}.perKey`;
      if (!isPlainObject(rules.perKey)) {
        throw new InvalidOptionError(`${keyAt} must be an object such as { limit: 5, periodMs: 1000 }.`, { details: { where: keyAt } });
      }
      rejectUnknownKeys(keyAt, rules.perKey, RULE_KEYS);
      perKey = rule(keyAt, rules.perKey);
    }
    if (own === null && perKey === null) {
      throw new InvalidOptionError(`${at} limits nothing: give it { limit, periodMs }, { perKey: { limit, periodMs } }, or both.`, {
        details: { where: at },
      });
    }
    resolved[queue] = Object.freeze({ queue: own, perKey });
  }
  return Object.freeze({
    queues: Object.freeze(resolved),
    cleanupIntervalMs: integerOption(where, 'cleanupIntervalMs', options.cleanupIntervalMs, 60_000, { min: 100, max: MAX_PERIOD_MS }),
    primaryOnly: booleanOption(where, 'primaryOnly', options.primaryOnly, true),
  });
}

/** `limit` and `periodMs` of one rule: both required, integers in range. */
function rule(where: string, value: { limit?: unknown; periodMs?: unknown }): ResolvedRule {
  for (const name of RULE_KEYS) {
    if (value[name] === undefined) {
      throw new InvalidOptionError(`${where}: \`${name}\` is missing; a rate is \`limit\` starts per \`periodMs\` milliseconds, give both.`, {
        details: { where, option: name },
      });
    }
  }
  return Object.freeze({
    limit: integerOption(where, 'limit', value.limit, 1, { min: 1, max: MAX_LIMIT }),
    periodMs: integerOption(where, 'periodMs', value.periodMs, 1000, { min: MIN_PERIOD_MS, max: MAX_PERIOD_MS }),
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
