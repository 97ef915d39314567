/**
 * The plugin's options and their validation: what `concurrency(options)` accepts, checked when
 * the plugin is built so a typo fails at startup, not at the first claim.
 */
import { assertQueueName, InvalidOptionError, integerOption, rejectUnknownKeys } from '@docket/core';

/** Largest limit accepted (a cap above every plausible number of slots; keeps the arithmetic exact). */
export const MAX_LIMIT = 1_000_000;

/** The rules of one queue. */
export interface QueueConcurrency {
  /** At most this many jobs of the queue running at once, across every worker. Default: no cap. */
  max?: number;
  /**
   * At most this many jobs with one concurrency key running at once (1: a serial lane per key).
   * Overrides the plugin's `keyLimit`; `null`: no per-key limit in this queue (keys still share
   * the queue fairly). Default: the plugin's `keyLimit`.
   */
  keyLimit?: number | null;
}

export interface ConcurrencyOptions {
  /**
   * The queues the plugin governs, by name. Only their claims are shaped (the others keep the
   * core's plain claim), and only their jobs may carry a concurrency key. `{}` for a queue is
   * fairness alone: keys take turns, nothing is capped.
   */
  queues: Readonly<Record<string, QueueConcurrency>>;
  /** The per-key limit of every listed queue that does not set its own. Default: none. */
  keyLimit?: number;
}

/** One queue's rules, resolved: `null` means no limit. */
export interface QueueRules {
  readonly max: number | null;
  readonly keyLimit: number | null;
}

export interface ConcurrencySettings {
  readonly queues: Readonly<Record<string, QueueRules>>;
}

const OPTION_KEYS = ['queues', 'keyLimit'] as const;
const QUEUE_KEYS = ['max', 'keyLimit'] as const;

/** Validates `concurrency(options)`; throws DOCKET_INVALID_OPTION / DOCKET_INVALID_QUEUE_NAME. */
export function resolveSettings(options: ConcurrencyOptions): ConcurrencySettings {
  const where = 'concurrency(options)';
  if (options === undefined || options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidOptionError(`${where}: pass an object, e.g. concurrency({ queues: { emails: { max: 5 } } }).`);
  }
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const keyLimit = options.keyLimit === undefined ? null : integerOption(where, 'keyLimit', options.keyLimit, 1, { min: 1, max: MAX_LIMIT });
  const { queues } = options;
  if (queues === null || typeof queues !== 'object' || Array.isArray(queues) || Object.keys(queues).length === 0) {
    throw new InvalidOptionError(`${where}: \`queues\` must name at least one queue, e.g. { emails: { max: 5 } }.`, {
      details: { where, option: 'queues' },
    });
  }
  const resolved: Record<string, QueueRules> = Object.create(null);
  for (const [queue, rules] of Object.entries(queues)) {
    assertQueueName(queue);
    const at = `${where} queues['${queue}']`;
    if (rules === null || typeof rules !== 'object' || Array.isArray(rules)) {
      throw new InvalidOptionError(`${at} must be an object such as { max: 5 } or { keyLimit: 1 }.`, { details: { where: at } });
    }
    rejectUnknownKeys(at, rules, QUEUE_KEYS);
    resolved[queue] = Object.freeze({
      max: rules.max === undefined ? null : integerOption(at, 'max', rules.max, 1, { min: 1, max: MAX_LIMIT }),
      keyLimit:
        rules.keyLimit === undefined
          ? keyLimit
          : rules.keyLimit === null
            ? null
            : integerOption(at, 'keyLimit', rules.keyLimit, 1, { min: 1, max: MAX_LIMIT }),
    });
  }
  return Object.freeze({ queues: Object.freeze(resolved) });
}
