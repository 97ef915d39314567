/**
 * The plugin's options and their validation: what `priorityAging(options)` accepts, checked when
 * the plugin is built so a typo fails at startup, not at the first run.
 */
import { assertQueueName, booleanOption, InvalidOptionError, integerOption, rejectUnknownKeys } from '@docket/core';

/** The core's priority range (`withPriority`): a ceiling outside it could never be reached or passed. */
export const MIN_PRIORITY = -1_000_000;
export const MAX_PRIORITY = 1_000_000;
const DAY = 24 * 3_600_000;
/** Longest step: a year. */
export const MAX_EVERY_MS = 365 * DAY;

/** One queue's rule: a pending job gains +1 priority for every `everyMs` it has waited, up to `maxPriority`. */
export interface QueueAging {
  /** Milliseconds of waiting (since the job became due) per +1 of priority. */
  everyMs: number;
  /** The ceiling: aging never raises a job above it (jobs pushed at or above it do not age). */
  maxPriority: number;
}

export interface PriorityAgingOptions {
  /** The queues whose jobs age, by name. Pushes and claims of other queues are left as the core does them. */
  queues: Readonly<Record<string, QueueAging>>;
  /** How often a worker raises the priorities that are due. Default 1000 ms. */
  intervalMs?: number;
  /** Jobs changed per statement (one short transaction each). Default 1000. */
  batchSize?: number;
  /** Most batches per run and queue (the next run goes on). Default 100. */
  maxBatchesPerRun?: number;
  /** Run only on the primary worker when an election plugin answers. Default true. Correct either way. */
  primaryOnly?: boolean;
}

export interface PriorityAgingSettings {
  readonly queues: Readonly<Record<string, Readonly<QueueAging>>>;
  readonly intervalMs: number;
  readonly batchSize: number;
  readonly maxBatchesPerRun: number;
  readonly primaryOnly: boolean;
}

const OPTION_KEYS = ['queues', 'intervalMs', 'batchSize', 'maxBatchesPerRun', 'primaryOnly'] as const;
const QUEUE_KEYS = ['everyMs', 'maxPriority'] as const;

/** Validates `priorityAging(options)`; throws DOCKET_INVALID_OPTION / DOCKET_INVALID_QUEUE_NAME. */
export function resolveSettings(options: PriorityAgingOptions): PriorityAgingSettings {
  const where = 'priorityAging(options)';
  if (!isPlainObject(options)) {
    throw new InvalidOptionError(`${where}: pass an object, e.g. priorityAging({ queues: { reports: { everyMs: 60000, maxPriority: 10 } } }).`, {
      details: { where },
    });
  }
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const { queues } = options;
  if (!isPlainObject(queues) || Object.keys(queues).length === 0) {
    throw new InvalidOptionError(`${where}: \`queues\` must name at least one queue, e.g. { reports: { everyMs: 60000, maxPriority: 10 } }.`, {
      details: { where, option: 'queues' },
    });
  }
  const resolved: Record<string, QueueAging> = Object.create(null);
  for (const [queue, rule] of Object.entries(queues)) {
    assertQueueName(queue);
    const at = `${where} queues['${queue}']`;
    if (!isPlainObject(rule)) {
      throw new InvalidOptionError(`${at} must be an object such as { everyMs: 60000, maxPriority: 10 }.`, { details: { where: at } });
    }
    rejectUnknownKeys(at, rule, QUEUE_KEYS);
    for (const name of QUEUE_KEYS) {
      if (rule[name] === undefined) {
        throw new InvalidOptionError(`${at}: \`${name}\` is missing; a rule is +1 priority every \`everyMs\` of waiting, up to \`maxPriority\`.`, {
          details: { where: at, option: name },
        });
      }
    }
    resolved[queue] = Object.freeze({
      everyMs: integerOption(at, 'everyMs', rule.everyMs, 1000, { min: 1, max: MAX_EVERY_MS }),
      maxPriority: integerOption(at, 'maxPriority', rule.maxPriority, 0, { min: MIN_PRIORITY, max: MAX_PRIORITY }),
    });
  }
  return Object.freeze({
    queues: Object.freeze(resolved),
    intervalMs: integerOption(where, 'intervalMs', options.intervalMs, 1000, { min: 10, max: 7 * DAY }),
    batchSize: integerOption(where, 'batchSize', options.batchSize, 1000, { min: 1, max: 10_000 }),
    maxBatchesPerRun: integerOption(where, 'maxBatchesPerRun', options.maxBatchesPerRun, 100, { min: 1, max: 1_000_000 }),
    primaryOnly: booleanOption(where, 'primaryOnly', options.primaryOnly, true),
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
