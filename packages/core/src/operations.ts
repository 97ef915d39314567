/**
 * The operations API: what a command line, a dashboard and a metrics exporter need from a running
 * Docket — list jobs page by page, count them per queue and state, retry failed or cancelled jobs,
 * re-run succeeded ones, list workers. `Docket` exposes it (`app.listJobs`, …); the statements
 * are in sql/operations.ts, and docs/ARCHITECTURE.md ("Operations API") says which index serves
 * each call.
 */
import type postgres from 'postgres';
import type { Docket } from './app.js';
import { InvalidOptionError, JobNotFoundError, JobStateError } from './errors.js';
import { assertJobName, assertQueueName } from './identifiers.js';
import { defineJob, type Pushable } from './job-definition.js';
import { describe, integerOption, oneOfOption, rejectUnknownKeys } from './options.js';
import { toJobRecord } from './sql/jobs.js';
import {
  type IdBounds,
  type JobsFilter,
  jobRetry,
  jobsCount,
  jobsCreatedIdBounds,
  jobsList,
  jobsRetry,
  jobsThroughput,
  queuesLag,
  workersList,
} from './sql/operations.js';
import { JOB_STATES, type JobRecord, type JobRef, type JobState } from './types.js';

/** Which jobs: every field narrows, a list means any of its values; no field means every job. */
export interface JobFilter {
  queue?: string | readonly string[];
  name?: string | readonly string[];
  state?: JobState | readonly JobState[];
  /** Created at or after this time. */
  createdSince?: Date;
  /** Created before this time. */
  createdBefore?: Date;
}

export interface ListJobsOptions extends JobFilter {
  /** Creation (id) order: `'newest'` first (default) or `'oldest'` first. */
  order?: 'newest' | 'oldest';
  /** Jobs per page, 1–1000. Default 50. */
  limit?: number;
  /** The `nextCursor` of the previous page (with the same filter and order); omit for the first page. */
  cursor?: string | null;
}

/** One page of `app.listJobs()`. */
export interface JobPage {
  jobs: JobRecord[];
  /** Pass as `cursor` for the next page; null when this page is the last. */
  nextCursor: string | null;
}

/** Which jobs `app.countJobs()` counts: by queue and state, each one value or several. */
export interface CountJobsOptions {
  queue?: string | readonly string[];
  state?: JobState | readonly JobState[];
  /**
   * A finished (queue, state) group with more jobs than this is estimated from the table's
   * statistics instead of counted (0–1,000,000). Default 1,000.
   */
  exactLimit?: number;
}

/** The number of jobs in one (queue, state) group, one row of `app.countJobs()`. */
export interface JobCount {
  queue: string;
  state: JobState;
  count: number;
  /** False when `count` is an estimate (only for succeeded, failed or cancelled groups over `exactLimit`). */
  exact: boolean;
}

/** Which jobs `app.retryJobs()` puts back to pending; the fields given must all match. */
export interface RetryJobsFilter {
  queue?: string | readonly string[];
  name?: string | readonly string[];
  /** `'failed'` (default), `'cancelled'`, or both. */
  state?: RetryableState | readonly RetryableState[];
  createdSince?: Date;
  createdBefore?: Date;
}

/** The states a job can be retried from. */
export type RetryableState = 'failed' | 'cancelled';

/** Options of `app.rerunJob()`. */
export interface RerunOptions {
  /** Push the new job inside your postgres.js transaction. */
  tx?: postgres.TransactionSql | postgres.Sql;
}

/** Which workers `app.listWorkers()` lists. */
export interface ListWorkersOptions {
  /** Only workers that serve this queue. */
  queue?: string;
}

/** A worker with a live heartbeat, one row of `app.listWorkers()`. */
export interface WorkerInfo {
  id: string;
  hostname: string;
  pid: number;
  queues: string[];
  startedAt: Date;
  lastHeartbeatAt: Date;
  /** Milliseconds since the last heartbeat, on the database clock. */
  heartbeatAgeMs: number;
  heartbeatIntervalMs: number;
  /** Jobs in `running` state claimed by this worker now. */
  runningJobs: number;
  meta: Record<string, unknown>;
}

/** Which queues `app.queueLag()` reports. */
export interface QueueLagOptions {
  /** One queue or several; default every queue with pending jobs. */
  queue?: string | readonly string[];
}

/** How far behind a queue is, one row of `app.queueLag()`. */
export interface QueueLag {
  queue: string;
  /** The earliest due time (`scheduledAt`) among the queue's pending jobs. */
  oldestPendingAt: Date;
  /** Milliseconds since `oldestPendingAt` on the database clock; 0 when no pending job is due yet. */
  lagMs: number;
}

/** Which finished jobs `app.jobThroughput()` counts, and in which buckets. */
export interface ThroughputOptions {
  queue?: string | readonly string[];
  /** Start of the window. Default: an hour before `until`'s default (now, on the database clock). */
  since?: Date;
  /** End of the window (exclusive). Default now, on the database clock. */
  until?: Date;
  /** Bucket width in milliseconds, 1,000–86,400,000; buckets are aligned on the Unix epoch. Default 60,000. At most 1,440 buckets per window. */
  bucketMs?: number;
}

/** Jobs of one queue that finished in one bucket, by final state. */
export interface ThroughputBucket {
  queue: string;
  /** Start of the bucket. */
  start: Date;
  succeeded: number;
  failed: number;
  cancelled: number;
}

/** What `app.jobThroughput()` returns: the window it read (on the database clock when defaulted) and its non-empty buckets. */
export interface Throughput {
  since: Date;
  until: Date;
  bucketMs: number;
  /** Buckets that hold a finished job, by start then queue; a bucket without one is left out. */
  buckets: ThroughputBucket[];
}

/** The `meta` key a re-run job carries: the id of the job it re-runs. */
export const RERUN_OF_META_KEY = 'rerunOf';

const FILTER_KEYS = ['queue', 'name', 'state', 'createdSince', 'createdBefore'] as const;
const LIST_KEYS = [...FILTER_KEYS, 'order', 'limit', 'cursor'] as const;
const COUNT_KEYS = ['queue', 'state', 'exactLimit'] as const;
const THROUGHPUT_KEYS = ['queue', 'since', 'until', 'bucketMs'] as const;
const MAX_BUCKETS = 1440;
const RETRYABLE_STATES: readonly RetryableState[] = ['failed', 'cancelled'];
/** Jobs retried per statement (and per commit) by `retryJobs`. */
const RETRY_BATCH = 1000;
const MAX_LIST_VALUES = 100;

/** What the operations need of the app. */
type Host = Pick<Docket, 'sql' | 'schema' | 'schemaName' | 'channel' | 'getJob' | 'pushMany'>;

export class Operations {
  constructor(private readonly app: Host) {}

  /**
   * One page of jobs matching `options`, in creation order (id order: ids are drawn at insert, so
   * jobs pushed concurrently may be a few microseconds out of `createdAt` order); see `JobPage.nextCursor`.
   */
  async listJobs(options: ListJobsOptions = {}): Promise<JobPage> {
    const where = 'listJobs(options)';
    rejectUnknownKeys(where, options, LIST_KEYS);
    const filter = jobFilter(where, options, JOB_STATES);
    const order = oneOfOption(where, 'order', options.order, ['newest', 'oldest'] as const, 'newest');
    const limit = integerOption(where, 'limit', options.limit, 50, { min: 1, max: 1000 });
    const cursor = options.cursor === undefined || options.cursor === null ? null : decodeCursor(where, options.cursor);
    // A time range is read as the ids it holds: found on the first page, then carried by the cursor.
    let bounds: IdBounds | null = null;
    if (filter.createdSince || filter.createdBefore) {
      bounds = cursor?.bounds ?? (await jobsCreatedIdBounds(this.app.sql, this.app.schema, { schemaName: this.app.schemaName, ...filter }));
      if (!bounds) return { jobs: [], nextCursor: null };
    }
    // One row more than the page tells whether another page follows.
    const rows = await jobsList(this.app.sql, this.app.schema, { filter, order, after: cursor?.id ?? null, bounds, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      jobs: page.map(toJobRecord),
      nextCursor: rows.length > limit && last ? encodeCursor({ id: last.id, bounds }) : null,
    };
  }

  /** Jobs per (queue, state), ordered by queue then state; groups with no job are left out. */
  async countJobs(options: CountJobsOptions = {}): Promise<JobCount[]> {
    const where = 'countJobs(options)';
    rejectUnknownKeys(where, options, COUNT_KEYS);
    const queues = listOption(where, 'queue', options.queue, assertQueueName);
    const states = listOption(where, 'state', options.state, (s) => oneOfOption(where, 'state', s, JOB_STATES, 'pending')) ?? JOB_STATES;
    const exactLimit = integerOption(where, 'exactLimit', options.exactLimit, 1000, { min: 0, max: 1_000_000 });
    const rows = await jobsCount(this.app.sql, this.app.schema, { schemaName: this.app.schemaName, states, queues, exactLimit });
    return rows.map((r) => ({ queue: r.queue, state: r.state, count: Number(r.count), exact: r.exact }));
  }

  /**
   * Puts a failed or cancelled job back to `pending`, runnable now, with one more attempt allowed;
   * its attempt count and errors are kept. Workers are woken when it commits.
   */
  async retryJob(id: string): Promise<JobRecord> {
    const [row] = await jobRetry(this.app.sql, this.app.schema, { channel: this.app.channel, id });
    if (!row) throw new JobNotFoundError(`No job with id ${id} to retry (it may have been pruned).`, { details: { id } });
    if (!row.retried) {
      throw new JobStateError(
        `Job ${id} is ${row.previous_state}: only failed or cancelled jobs can be retried.` +
          (row.previous_state === 'succeeded' ? ' Use rerunJob() to run a succeeded job again as a new job.' : ' Wait until it has finished.'),
        { details: { id, state: row.previous_state, expected: RETRYABLE_STATES } },
      );
    }
    return toJobRecord(row);
  }

  /**
   * Retries every job that matches the filter (failed ones unless `state` says otherwise) and had
   * finished when the call started, in batches of 1,000 each committed on its own. Returns their ids.
   */
  async retryJobs(filter: RetryJobsFilter): Promise<string[]> {
    const where = 'retryJobs(filter)';
    if (filter === undefined || filter === null) {
      throw new InvalidOptionError(`${where} needs a filter object, e.g. { queue: 'emails' }; pass {} to retry every failed job.`);
    }
    rejectUnknownKeys(where, filter, FILTER_KEYS);
    const jobsFilter = jobFilter(where, filter, RETRYABLE_STATES, ['failed']);
    const ids: string[] = [];
    let finishedBefore: Date | null = null;
    for (;;) {
      const batch: Awaited<ReturnType<typeof jobsRetry>> = await jobsRetry(this.app.sql, this.app.schema, {
        channel: this.app.channel,
        filter: jobsFilter,
        finishedBefore,
        batchSize: RETRY_BATCH,
      });
      ids.push(...batch.ids);
      finishedBefore = batch.finishedBefore;
      if (!batch.full) return ids;
    }
  }

  /**
   * Pushes a succeeded job again as a new job (same name, queue, arguments, priority, attempts,
   * limits and meta, plus `meta.rerunOf` = the original's id) through `pushMany`, so plugins'
   * push hooks run. Plugin options given with `with(key, …)` at the first push are not stored, so
   * the new job goes without them.
   */
  async rerunJob(id: string, options: RerunOptions = {}): Promise<JobRef> {
    rejectUnknownKeys('rerunJob(ref, options)', options, ['tx']);
    const job = await this.app.getJob(id);
    if (job.state !== 'succeeded') {
      throw new JobStateError(
        `Job ${id} is ${job.state}: only succeeded jobs can be re-run.` +
          (job.state === 'failed' || job.state === 'cancelled' ? ' Use retryJob() to give it another attempt.' : ' Wait until it has finished.'),
        { details: { id, state: job.state, expected: ['succeeded'] } },
      );
    }
    const again = defineJob<unknown>(
      {
        name: job.name,
        queue: job.queue,
        priority: job.priority,
        maxAttempts: job.maxAttempts,
        limits: job.limits,
        meta: { ...job.meta, [RERUN_OF_META_KEY]: id },
      },
      () => {
        throw new Error('a re-run is pushed, not called; workers run it with their own definition');
      },
    ).withArgs(job.args);
    const [pushed] = await this.app.pushMany([again as Pushable], options);
    return pushed;
  }

  /**
   * Jobs that finished in a window (default: the last hour), per queue and bucket (default: a
   * minute), by their final state: a job retried and then succeeded counts once, as succeeded.
   */
  async jobThroughput(options: ThroughputOptions = {}): Promise<Throughput> {
    const where = 'jobThroughput(options)';
    rejectUnknownKeys(where, options, THROUGHPUT_KEYS);
    const queues = listOption(where, 'queue', options.queue, assertQueueName);
    const since = dateOption(where, 'since', options.since);
    const until = dateOption(where, 'until', options.until);
    const bucketMs = integerOption(where, 'bucketMs', options.bucketMs, 60_000, { min: 1000, max: 86_400_000 });
    const span = (until?.getTime() ?? Date.now()) - (since?.getTime() ?? (until?.getTime() ?? Date.now()) - 3_600_000);
    if (span <= 0) {
      throw new InvalidOptionError(`${where}: \`since\` must be before \`until\` (or now, when \`until\` is not given).`, {
        details: { where, option: 'since' },
      });
    }
    if (span / bucketMs > MAX_BUCKETS) {
      throw new InvalidOptionError(
        `${where}: a window of ${span} ms in buckets of ${bucketMs} ms makes more than ${MAX_BUCKETS} buckets; widen \`bucketMs\` or narrow the window.`,
        { details: { where, option: 'bucketMs' } },
      );
    }
    const result = await jobsThroughput(this.app.sql, this.app.schema, { since, until, bucketMs, queues });
    return { since: result.since, until: result.until, bucketMs, buckets: result.rows };
  }

  /** Workers with a heartbeat row, oldest first, with the age of their heartbeat and the jobs they run. */
  async listWorkers(options: ListWorkersOptions = {}): Promise<WorkerInfo[]> {
    rejectUnknownKeys('listWorkers(options)', options, ['queue']);
    const queue = options.queue === undefined ? null : assertQueueName(options.queue);
    const rows = await workersList(this.app.sql, this.app.schema, { queue });
    return rows.map((r) => ({
      id: r.id,
      hostname: r.hostname,
      pid: r.pid,
      queues: r.queues,
      startedAt: r.started_at,
      lastHeartbeatAt: r.last_heartbeat_at,
      heartbeatAgeMs: r.heartbeat_age_ms,
      heartbeatIntervalMs: r.heartbeat_interval_ms,
      runningJobs: r.running,
      meta: r.meta ?? {},
    }));
  }
}

/**
 * How long the longest-waiting due job of each queue has waited: per queue with pending jobs, the
 * earliest due time among them and its age. Served by the fetch index, one probe per (queue,
 * priority) group, whatever the backlog or the history.
 */
export async function queueLagOf(app: Host, options: QueueLagOptions = {}): Promise<QueueLag[]> {
  const where = 'queueLag(options)';
  rejectUnknownKeys(where, options, ['queue']);
  const queues = listOption(where, 'queue', options.queue, assertQueueName);
  const rows = await queuesLag(app.sql, app.schema, { queues });
  return rows.map((r) => ({ queue: r.queue, oldestPendingAt: r.oldest, lagMs: r.lag_ms }));
}

/** The filter fields, validated; `allowed` are the states this call takes, `defaults` the states of an unset `state`. */
function jobFilter(where: string, filter: JobFilter, allowed: readonly JobState[], defaults: readonly JobState[] = allowed): JobsFilter {
  const createdSince = dateOption(where, 'createdSince', filter.createdSince);
  const createdBefore = dateOption(where, 'createdBefore', filter.createdBefore);
  if (createdSince && createdBefore && createdSince.getTime() >= createdBefore.getTime()) {
    throw new InvalidOptionError(
      `${where}: \`createdSince\` (${createdSince.toISOString()}) must be before \`createdBefore\` (${createdBefore.toISOString()}).`,
      { details: { where, option: 'createdSince' } },
    );
  }
  return {
    queues: listOption(where, 'queue', filter.queue, assertQueueName),
    names: listOption(where, 'name', filter.name, assertJobName),
    states: listOption(where, 'state', filter.state, (s) => oneOfOption(where, 'state', s, allowed, allowed[0])) ?? defaults,
    createdSince,
    createdBefore,
  };
}

/** A value or a list of 1–100 values, each checked; null when unset. Duplicates are dropped. */
function listOption<T>(where: string, name: string, value: unknown, check: (v: unknown) => T): T[] | null {
  if (value === undefined) return null;
  const values: unknown[] = Array.isArray(value) ? value : [value];
  if (values.length === 0 || values.length > MAX_LIST_VALUES || values.includes(undefined)) {
    throw new InvalidOptionError(
      `${where}: \`${name}\` must be a value or a list of 1 to ${MAX_LIST_VALUES} values, got ${describe(value)}. Omit it to match every ${name}.`,
      {
        details: { where, option: name },
      },
    );
  }
  return [...new Set(values.map((v) => check(v)))];
}

function dateOption(where: string, name: string, value: unknown): Date | null {
  if (value === undefined) return null;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new InvalidOptionError(`${where}: \`${name}\` must be a valid Date, got ${describe(value)}.`, { details: { where, option: name } });
  }
  return value;
}

/** Where a listing goes on: after the job `id`, inside the time range's ids when it has one. */
interface Cursor {
  id: string;
  bounds: IdBounds | null;
}

// The cursor is the last job's id, the key pages are ordered by, and the bounds of the time range's
// ids (`lo`/`hi`, either empty when the range is open on that side) so that the next page does not
// look them up again; encoded so that callers treat it as opaque.
function encodeCursor(cursor: Cursor): string {
  const bounds = cursor.bounds ? `:${cursor.bounds.lo ?? ''}:${cursor.bounds.hi ?? ''}` : '';
  return Buffer.from(`${cursor.id}${bounds}`).toString('base64url');
}

function decodeCursor(where: string, cursor: unknown): Cursor {
  const text = typeof cursor === 'string' ? Buffer.from(cursor, 'base64url').toString() : '';
  const match = /^(\d{1,19})(?::(\d{0,19}):(\d{0,19}))?$/.exec(text);
  if (!match) {
    throw new InvalidOptionError(
      `${where}: \`cursor\` ${describe(cursor)} is not a cursor from listJobs(); pass a page's nextCursor as it is, or omit it for the first page.`,
      {
        details: { where, option: 'cursor' },
      },
    );
  }
  const bounds = match[2] === undefined ? null : { lo: match[2] || null, hi: match[3] || null };
  return { id: match[1], bounds };
}

/**
 * A `listJobs` cursor that continues after job `id` (newest first: the jobs older than it), for a
 * caller that pages by a job id it showed (the command line's `--before ID`).
 * @internal
 */
export function cursorAfter(id: string): string {
  return encodeCursor({ id, bounds: null });
}
