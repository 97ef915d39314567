/**
 * The statements of the operations API (../operations.ts): listing and counting jobs, retrying
 * failed or cancelled jobs, listing workers. Values travel as parameters; job states are spliced in
 * as literals (callers pass only members of JOB_STATES) so that the planner can prove a partial
 * index's predicate from the statement text. Every statement runs unprepared: it is planned for the
 * values given (a page's best plan depends on which filters are set), and operations are rare next
 * to pushes and claims.
 */
import type postgres from 'postgres';
import type { JobState, SqlClient } from '../types.js';
import { ALL_COLUMNS, notifyChunks, QUEUES_PER_NOTIFY } from './jobs.js';

/** The states `jobs_listing_idx` holds (its predicate, core migration 2). */
export const LISTING_INDEX_STATES: readonly JobState[] = ['waiting', 'succeeded', 'failed', 'cancelled'];
/** `state IN (…)`: with it, a statement whose state is a parameter can still use the index. */
const LISTING_PREDICATE = `state IN (${LISTING_INDEX_STATES.map((s) => `'${s}'`).join(', ')})`;

export interface JobsFilter {
  /** Non-empty; members of JOB_STATES only (spliced into the text). */
  states: readonly JobState[];
  queues: readonly string[] | null;
  names: readonly string[] | null;
  createdSince: Date | null;
  createdBefore: Date | null;
}

/** A position in a listing: the creation time (microseconds since the epoch) and id of the last job shown. */
export interface ListingKey {
  createdUs: string;
  id: string;
}

/** Collects parameter values and hands out their placeholders. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown, cast: string): string {
    this.values.push(value);
    return `$${this.values.length}::${cast}`;
  }
}

function run<T>(sql: SqlClient, text: string, params: readonly unknown[]): Promise<T[]> {
  return (sql as postgres.Sql).unsafe(text, params as never[], { prepare: false }) as unknown as Promise<T[]>;
}

const state = (s: JobState) => `'${s}'`;

/** The time-range conditions on `j.created_at`, for the filters that are set. */
function createdRange(p: Params, filter: JobsFilter): string {
  let text = '';
  if (filter.createdSince) text += ` AND j.created_at >= ${p.add(filter.createdSince, 'timestamptz')}`;
  if (filter.createdBefore) text += ` AND j.created_at < ${p.add(filter.createdBefore, 'timestamptz')}`;
  return text;
}

/**
 * The distinct (queue, name) keys of one state in `jobs_listing_idx`, each found with one index
 * probe (a loose index scan: the step jumps past every row of the previous key), so the cost grows
 * with the number of keys, not of jobs. With queues given, names are looked up inside each queue;
 * with queues and names given, the keys are their product and no probe is needed.
 */
function listingKeys(p: Params, schema: string, s: JobState, queues: string | null, names: string | null): string {
  if (queues && names) return `SELECT q.queue, n.name FROM unnest(${queues}) q(queue) CROSS JOIN unnest(${names}) n(name)`;
  const jobs = `${schema}.jobs`;
  if (queues) {
    return `SELECT q.queue, f.name FROM unnest(${queues}) q(queue) CROSS JOIN LATERAL
              (SELECT j.name FROM ${jobs} j WHERE j.state = ${state(s)} AND j.queue = q.queue ORDER BY j.name LIMIT 1) f
            UNION ALL
            SELECT k.queue, f.name FROM keys_${s} k CROSS JOIN LATERAL
              (SELECT j.name FROM ${jobs} j WHERE j.state = ${state(s)} AND j.queue = k.queue AND j.name > k.name ORDER BY j.name LIMIT 1) f`;
  }
  return `(SELECT j.queue, j.name FROM ${jobs} j WHERE j.state = ${state(s)} ORDER BY j.queue, j.name LIMIT 1)
          UNION ALL
          SELECT f.queue, f.name FROM keys_${s} k CROSS JOIN LATERAL
            (SELECT j.queue, j.name FROM ${jobs} j WHERE j.state = ${state(s)} AND (j.queue, j.name) > (k.queue, k.name)
             ORDER BY j.queue, j.name LIMIT 1) f`;
}

/**
 * One page of jobs in creation order ((created_at, id), newest or oldest first), after `after`.
 * States held by `jobs_listing_idx` are read as one short index range per (state, queue, name)
 * key, each already in page order; `pending` and `running` come from the fetch and running
 * indexes (their size is the backlog, not the history) and are sorted. The page is the first
 * `limit` keys of all of these, then its rows are read by primary key.
 */
export function jobsList(
  sql: SqlClient,
  schema: string,
  params: { filter: JobsFilter; order: 'newest' | 'oldest'; after: ListingKey | null; limit: number },
): Promise<Array<Record<string, any>>> {
  const { filter, order, after, limit } = params;
  const p = new Params();
  const dir = order === 'newest' ? 'DESC' : 'ASC';
  const queues = filter.queues ? p.add(filter.queues, 'text[]') : null;
  const names = filter.names ? p.add(filter.names, 'text[]') : null;
  const range = createdRange(p, filter);
  const position = after
    ? ` AND (j.created_at, j.id) ${order === 'newest' ? '<' : '>'} ` +
      `(timestamptz 'epoch' + ${p.add(after.createdUs, 'bigint')} * interval '1 microsecond', ${p.add(after.id, 'bigint')})`
    : '';
  const n = p.add(limit, 'int');
  const sortKey = `j.created_at ${dir}, j.id ${dir}`;
  const indexed = filter.states.filter((s) => LISTING_INDEX_STATES.includes(s));
  const others = filter.states.filter((s) => !LISTING_INDEX_STATES.includes(s));
  const recursive = !(queues && names);
  const ctes = indexed.map((s) => `keys_${s} AS (${listingKeys(p, schema, s, queues, names)})`);
  const streams = [
    ...indexed.map(
      (s) => `SELECT r.created_at, r.id FROM keys_${s} k CROSS JOIN LATERAL
                (SELECT j.created_at, j.id FROM ${schema}.jobs j
                 WHERE j.state = ${state(s)} AND j.queue = k.queue AND j.name = k.name${range}${position}
                 ORDER BY ${sortKey} LIMIT ${n}) r
              ${names && !queues ? `WHERE k.name = ANY(${names})` : ''}`,
    ),
    ...others.map(
      (s) => `(SELECT j.created_at, j.id FROM ${schema}.jobs j
               WHERE j.state = ${state(s)}${queues ? ` AND j.queue = ANY(${queues})` : ''}${names ? ` AND j.name = ANY(${names})` : ''}${range}${position}
               ORDER BY ${sortKey} LIMIT ${n})`,
    ),
  ];
  const text = `
    WITH ${recursive && ctes.length > 0 ? 'RECURSIVE ' : ''}${[...ctes, `streams AS (${streams.join('\n UNION ALL\n ')})`].join(',\n')},
    page AS (SELECT j.id FROM streams j ORDER BY ${sortKey} LIMIT ${n})
    SELECT ${ALL_COLUMNS}, (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us
    FROM ${schema}.jobs j WHERE j.id = ANY(ARRAY(SELECT id FROM page))
    ORDER BY ${sortKey}`;
  return run(sql, text, p.values);
}

export interface JobsCountRow {
  queue: string;
  state: JobState;
  count: string;
  exact: boolean;
}

/**
 * Jobs per (queue, state). `pending`, `running` and `waiting` are counted (their partial indexes
 * hold only them). A finished (state, queue) group is counted up to `exactLimit` rows in
 * `jobs_listing_idx`; past that it is estimated from the (queue, state) statistics ANALYZE keeps
 * (`jobs_queue_state_stats`), never below what was counted, or counted in full when the statistics
 * do not know the pair (the table was never analysed, or the pair is too rare for the sample).
 * Groups without a job are left out.
 */
export function jobsCount(
  sql: SqlClient,
  schema: string,
  params: { schemaName: string; states: readonly JobState[]; queues: readonly string[] | null; exactLimit: number },
): Promise<JobsCountRow[]> {
  const p = new Params();
  const queues = params.queues ? p.add(params.queues, 'text[]') : null;
  const jobs = `${schema}.jobs`;
  const finished: JobState[] = params.states.filter((s) => s === 'succeeded' || s === 'failed' || s === 'cancelled');
  const counted = params.states.filter((s) => !finished.includes(s));
  const ctes: string[] = [];
  const parts: string[] = [];
  const cap = finished.length > 0 ? p.add(params.exactLimit, 'bigint') : '';
  if (finished.length > 0) {
    for (const s of finished) {
      // The queues of this state: given, or found by a loose index scan (one probe per queue).
      ctes.push(
        queues
          ? `queues_${s} AS (SELECT unnest(${queues}) AS queue)`
          : `queues_${s} AS (
               (SELECT j.queue FROM ${jobs} j WHERE j.state = ${state(s)} ORDER BY j.queue LIMIT 1)
               UNION ALL
               SELECT f.queue FROM queues_${s} k CROSS JOIN LATERAL
                 (SELECT j.queue FROM ${jobs} j WHERE j.state = ${state(s)} AND j.queue > k.queue ORDER BY j.queue LIMIT 1) f)`,
      );
      parts.push(
        `SELECT g.queue, ${state(s)} AS state,
                (SELECT count(*) FROM (SELECT 1 FROM ${jobs} j WHERE j.state = ${state(s)} AND j.queue = g.queue LIMIT ${cap} + 1) c) AS capped
         FROM queues_${s} g`,
      );
    }
    // The statistics' row count scaled to the table's current size, as the planner does.
    ctes.push(`estimates AS (
      SELECT e.most_common_vals[i][array_position(e.attnames, 'queue')] AS queue,
             e.most_common_vals[i][array_position(e.attnames, 'state')] AS state,
             e.most_common_freqs[i] * (
               SELECT CASE WHEN c.reltuples < 0 THEN NULL
                           WHEN c.relpages = 0 THEN c.reltuples
                           ELSE c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::float8) END
               FROM pg_class c WHERE c.oid = '${jobs}'::regclass) AS n
      FROM pg_stats_ext e CROSS JOIN LATERAL generate_subscripts(e.most_common_vals, 1) AS i
      WHERE e.statistics_schemaname = ${p.add(params.schemaName, 'text')} AND e.statistics_name = 'jobs_queue_state_stats' AND NOT e.inherited)`);
    // Materialized: each capped count runs once (the filter on it below would otherwise run it again).
    ctes.push(`finished AS MATERIALIZED (${parts.join('\n UNION ALL\n ')})`);
  }
  const selects: string[] = [];
  if (finished.length > 0) {
    selects.push(`SELECT f.queue, f.state,
        (CASE WHEN f.capped <= ${cap} THEN f.capped
              WHEN e.n IS NOT NULL THEN greatest(round(e.n)::bigint, f.capped)
              ELSE (SELECT count(*) FROM ${jobs} j WHERE j.${LISTING_PREDICATE} AND j.state = f.state AND j.queue = f.queue) END)::text AS count,
        (f.capped <= ${cap} OR e.n IS NULL) AS exact
      FROM finished f LEFT JOIN estimates e ON e.queue = f.queue AND e.state = f.state
      WHERE f.capped > 0`);
  }
  for (const s of counted) {
    selects.push(`SELECT j.queue, ${state(s)} AS state, count(*)::text AS count, true AS exact FROM ${jobs} j
      WHERE j.state = ${state(s)}${queues ? ` AND j.queue = ANY(${queues})` : ''} GROUP BY j.queue`);
  }
  const order = `ARRAY[${['pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'].map((s) => `'${s}'`).join(', ')}]`;
  const text = `
    ${ctes.length > 0 ? `WITH RECURSIVE ${ctes.join(',\n')}` : ''}
    SELECT * FROM (${selects.join('\n UNION ALL\n ')}) r ORDER BY r.queue, array_position(${order}, r.state)`;
  return run(sql, text, p.values);
}

/**
 * Puts one failed or cancelled job back to `pending`, runnable now, with at least one more attempt
 * allowed (`max_attempts` is raised to `attempt + 1` when spent); its attempt count and error
 * history stay. Wakes workers with `p:<queue>` on commit. Returns the job's state before the call
 * and, when it was retried, the job as the retry left it (no row: no such job). The row is
 * returned by the statement itself: a notified worker may claim the job before a second read.
 */
export function jobRetry(
  sql: SqlClient,
  schema: string,
  params: { channel: string; id: string },
): Promise<Array<{ previous_state: JobState; retried: boolean } & Record<string, any>>> {
  return run(
    sql,
    `WITH target AS (SELECT id, state AS previous_state FROM ${schema}.jobs WHERE id = $1::bigint FOR UPDATE),
     upd AS (
       UPDATE ${schema}.jobs j SET ${RETRY_SET}
       FROM target t WHERE j.id = t.id AND j.state IN ('failed', 'cancelled')
       RETURNING j.*
     ),
     note AS (SELECT pg_notify('${params.channel}', 'p:' || u.queue) FROM upd u)
     SELECT t.previous_state, (r.id IS NOT NULL) AS retried, r.*
     FROM target t LEFT JOIN (SELECT ${ALL_COLUMNS} FROM upd) r ON r.id = t.id::text CROSS JOIN (SELECT count(*) FROM note) n`,
    [params.id],
  );
}

const RETRY_SET = `state = 'pending', max_attempts = greatest(j.max_attempts, j.attempt + 1), scheduled_at = now(),
  result = NULL, started_at = NULL, finished_at = NULL, worker_id = NULL, cancel_requested_at = NULL`;

/**
 * Retries up to `batchSize` jobs that match the filter (states: failed and/or cancelled) and
 * finished before `finishedBefore` (null: the statement's own start, which it returns for the next
 * batches, so a job that fails again while the caller loops is not retried twice by one call).
 */
export async function jobsRetry(
  sql: SqlClient,
  schema: string,
  params: { channel: string; filter: JobsFilter; finishedBefore: Date | null; batchSize: number },
): Promise<{ ids: string[]; finishedBefore: Date; full: boolean }> {
  const { filter } = params;
  const p = new Params();
  const conditions =
    `j.state IN (${filter.states.map(state).join(', ')})` +
    (filter.queues ? ` AND j.queue = ANY(${p.add(filter.queues, 'text[]')})` : '') +
    (filter.names ? ` AND j.name = ANY(${p.add(filter.names, 'text[]')})` : '') +
    createdRange(p, filter);
  const before = p.add(params.finishedBefore, 'timestamptz');
  const limit = p.add(params.batchSize, 'int');
  const [row] = await run<{ ids: string[]; picked: number; before: Date }>(
    sql,
    `WITH picked AS (
       SELECT j.id FROM ${schema}.jobs j
       WHERE ${conditions} AND j.finished_at < COALESCE(${before}, statement_timestamp())
       LIMIT ${limit} FOR UPDATE SKIP LOCKED
     ),
     upd AS (
       UPDATE ${schema}.jobs j SET ${RETRY_SET}
       WHERE j.id = ANY(ARRAY(SELECT id FROM picked)) AND j.state IN ('failed', 'cancelled')
       RETURNING j.id, j.queue
     ),
     note AS (${notifyChunks(params.channel, 'p:', 'SELECT DISTINCT queue AS v FROM upd', QUEUES_PER_NOTIFY)})
     SELECT COALESCE((SELECT array_agg(id::text ORDER BY id) FROM upd), '{}') AS ids,
            (SELECT count(*) FROM picked)::int AS picked,
            COALESCE(${before}, statement_timestamp()) AS before
     FROM (SELECT count(*) FROM note) n`,
    p.values,
  );
  return { ids: row!.ids, finishedBefore: row!.before, full: row!.picked === params.batchSize };
}

export interface WorkerListRow {
  id: string;
  hostname: string;
  pid: number;
  queues: string[];
  heartbeat_interval_ms: number;
  started_at: Date;
  last_heartbeat_at: Date;
  heartbeat_age_ms: number;
  meta: Record<string, unknown>;
  running: number;
}

/** Every worker's heartbeat row (those serving `queue` when given) with the jobs it runs now (running index). */
export function workersList(sql: SqlClient, schema: string, params: { queue: string | null }): Promise<WorkerListRow[]> {
  return run(
    sql,
    `SELECT w.id, w.hostname, w.pid, w.queues, w.heartbeat_interval_ms, w.started_at, w.last_heartbeat_at, w.meta,
            greatest(extract(epoch FROM clock_timestamp() - w.last_heartbeat_at) * 1000, 0)::float8 AS heartbeat_age_ms,
            (SELECT count(*) FROM ${schema}.jobs j WHERE j.state = 'running' AND j.worker_id = w.id)::int AS running
     FROM ${schema}.workers w
     WHERE $1::text IS NULL OR $1::text = ANY(w.queues)
     ORDER BY w.started_at, w.id`,
    [params.queue],
  );
}
