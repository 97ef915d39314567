/**
 * The statements of the operations API (../operations.ts): listing and counting jobs, retrying
 * failed or cancelled jobs, listing workers. Values travel as parameters; job states are spliced in
 * as literals (callers pass only members of JOB_STATES) so that the planner can prove a partial
 * index's predicate from the statement text. Every statement runs unprepared: it is planned for the
 * values given (a page's best plan depends on which filters are set), and operations are rare next
 * to pushes and claims.
 */
import type postgres from 'postgres';
import { JOB_STATES, type JobState, type SqlClient } from '../types.js';
import { ALL_COLUMNS, type JobRow, notifyChunks, QUEUES_PER_NOTIFY } from './jobs.js';

/**
 * The states `jobs_attention_idx` holds (its predicate, core migration 2): the ones operators look
 * at, rare next to `succeeded`, which no index of the operations API holds.
 */
export const ATTENTION_STATES: readonly JobState[] = ['waiting', 'failed', 'cancelled'];
/** `state IN (…)`: with it, a statement whose state is a parameter can still use the index. */
const ATTENTION_PREDICATE = `state IN (${ATTENTION_STATES.map((s) => `'${s}'`).join(', ')})`;

export interface JobsFilter {
  /** Non-empty; members of JOB_STATES only (spliced into the text). */
  states: readonly JobState[];
  queues: readonly string[] | null;
  names: readonly string[] | null;
  createdSince: Date | null;
  createdBefore: Date | null;
}

/**
 * The ids a time range can hold: the lowest id of a job created at or after `createdSince` (null:
 * no lower bound) and the highest of one created before `createdBefore` (null: no upper bound).
 */
export interface IdBounds {
  lo: string | null;
  hi: string | null;
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
function createdRange(p: Params, filter: Pick<JobsFilter, 'createdSince' | 'createdBefore'>): string {
  let text = '';
  if (filter.createdSince) text += ` AND j.created_at >= ${p.add(filter.createdSince, 'timestamptz')}`;
  if (filter.createdBefore) text += ` AND j.created_at < ${p.add(filter.createdBefore, 'timestamptz')}`;
  return text;
}

/**
 * The ids of the jobs created in the filter's time range, for `jobsList` to read that range of the
 * primary key alone; null when no job was created in it. Exact: the bounds are the lowest and
 * highest id among the jobs whose `created_at` is in range (ids are not in `created_at` order across
 * concurrent pushes, so a bound found by bisection could cut one off). Read the cheaper way:
 * through `jobs_created_brin` (only the block ranges whose creation times overlap the range) when
 * the column's statistics say the range holds less than half the jobs, or else by walking the
 * primary key from either end to the first job inside it (which reads only the jobs outside it).
 */
export async function jobsCreatedIdBounds(
  sql: SqlClient,
  schema: string,
  params: { schemaName: string; createdSince: Date | null; createdBefore: Date | null },
): Promise<IdBounds | null> {
  const { createdSince, createdBefore } = params;
  const p = new Params();
  const inRange = `true${createdRange(p, { createdSince, createdBefore })}`;
  const below = (t: Date | null) => (t ? `(SELECT count(*) FROM unnest(h.b) t WHERE t < ${p.add(t, 'timestamptz')})` : null);
  const jobs = `${schema}.jobs`;
  const [row] = await run<{ lo: string | null; hi: string | null }>(
    sql,
    `WITH histogram AS (
       SELECT s.histogram_bounds::text::timestamptz[] AS b FROM pg_stats s
       WHERE s.schemaname = ${p.add(params.schemaName, 'text')} AND s.tablename = 'jobs' AND s.attname = 'created_at'
     ),
     share AS (  -- the share of jobs in range by the histogram (null without statistics)
       SELECT (${below(createdBefore) ?? 'cardinality(h.b) - 1'} - ${below(createdSince) ?? '0'})::float8
              / greatest(cardinality(h.b) - 1, 1) AS inside
       FROM histogram h
     ),
     brin AS MATERIALIZED (
       -- id + 0: min() and max() of the bare column would walk the primary key instead.
       SELECT min(j.id + 0) AS lo, max(j.id + 0) AS hi FROM ${jobs} j WHERE ${inRange}
     )
     SELECT lo::text, hi::text FROM brin WHERE coalesce((SELECT inside FROM share), 0) < 0.5
     UNION ALL
     SELECT (SELECT j.id FROM ${jobs} j WHERE ${inRange} ORDER BY j.id LIMIT 1)::text,
            (SELECT j.id FROM ${jobs} j WHERE ${inRange} ORDER BY j.id DESC LIMIT 1)::text
     WHERE coalesce((SELECT inside FROM share), 0) >= 0.5`,
    p.values,
  );
  if (!row || row.lo === null) return null;
  return { lo: createdSince ? row.lo : null, hi: createdBefore ? row.hi : null };
}

/**
 * The distinct (queue, name) keys of one state in `jobs_attention_idx`, each found with one index
 * probe (a loose index scan: the step jumps past every row of the previous key), so the cost grows
 * with the number of keys, not of jobs. With queues given, names are looked up inside each queue;
 * with queues and names given, the keys are their product and no probe is needed.
 */
function attentionKeys(schema: string, s: JobState, queues: string | null, names: string | null): string {
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
 * One page of jobs in id order (the order they were created in; newest first is id descending),
 * after the id `after`, inside `bounds` (from `jobsCreatedIdBounds` when the filter has a time
 * range; the `created_at` test stays, since ids and creation times can disagree at the edges).
 *
 * With `succeeded` among the states, the page is one walk of the primary key that tests every
 * filter on each row until the page is full: no index holds succeeded jobs, and they are most of
 * what the walk meets, so it reads about `limit` divided by the share of jobs that match. Without
 * it, every state comes from its own index: the attention states as one short range of
 * `jobs_attention_idx` per (state, queue, name) key, already in id order, `pending` and `running`
 * from the fetch and running indexes (their size is the backlog, not the history), sorted; the page
 * is the first `limit` ids of all of these, then its rows are read by primary key.
 */
export function jobsList(
  sql: SqlClient,
  schema: string,
  params: { filter: JobsFilter; order: 'newest' | 'oldest'; after: string | null; bounds: IdBounds | null; limit: number },
): Promise<JobRow[]> {
  const { filter, order, after, bounds, limit } = params;
  const p = new Params();
  const jobs = `${schema}.jobs`;
  const dir = order === 'newest' ? 'DESC' : 'ASC';
  const queues = filter.queues ? p.add(filter.queues, 'text[]') : null;
  const names = filter.names ? p.add(filter.names, 'text[]') : null;
  const n = p.add(limit, 'int');
  const range =
    createdRange(p, filter) +
    (bounds?.lo ? ` AND j.id >= ${p.add(bounds.lo, 'bigint')}` : '') +
    (bounds?.hi ? ` AND j.id <= ${p.add(bounds.hi, 'bigint')}` : '') +
    (after ? ` AND j.id ${order === 'newest' ? '<' : '>'} ${p.add(after, 'bigint')}` : '');
  const byName = names ? ` AND j.name = ANY(${names})` : '';
  const byQueue = queues ? ` AND j.queue = ANY(${queues})` : '';

  if (filter.states.includes('succeeded')) {
    const every = JOB_STATES.every((s) => filter.states.includes(s));
    const text = `
      SELECT ${ALL_COLUMNS} FROM ${jobs} j
      WHERE ${every ? 'true' : `j.state IN (${filter.states.map(state).join(', ')})`}${byQueue}${byName}${range}
      ORDER BY j.id ${dir} LIMIT ${n}`;
    return run(sql, text, p.values);
  }

  const attention = filter.states.filter((s) => ATTENTION_STATES.includes(s));
  const others = filter.states.filter((s) => !ATTENTION_STATES.includes(s));
  const recursive = !(queues && names);
  const ctes = attention.map((s) => `keys_${s} AS (${attentionKeys(schema, s, queues, names)})`);
  const streams = [
    ...attention.map(
      (s) => `SELECT r.id FROM keys_${s} k CROSS JOIN LATERAL
                (SELECT j.id FROM ${jobs} j
                 WHERE j.state = ${state(s)} AND j.queue = k.queue AND j.name = k.name${range}
                 ORDER BY j.id ${dir} LIMIT ${n}) r
              ${names && !queues ? `WHERE k.name = ANY(${names})` : ''}`,
    ),
    ...others.map((s) => `(SELECT j.id FROM ${jobs} j WHERE j.state = ${state(s)}${byQueue}${byName}${range} ORDER BY j.id ${dir} LIMIT ${n})`),
  ];
  const text = `
    WITH ${recursive && ctes.length > 0 ? 'RECURSIVE ' : ''}${[...ctes, `streams AS (${streams.join('\n UNION ALL\n ')})`].join(',\n')},
    page AS (SELECT j.id FROM streams j ORDER BY j.id ${dir} LIMIT ${n})
    SELECT ${ALL_COLUMNS} FROM ${jobs} j WHERE j.id = ANY(ARRAY(SELECT id FROM page))
    ORDER BY j.id ${dir}`;
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
 * hold only them). A failed or cancelled (state, queue) group is counted up to `exactLimit` rows in
 * `jobs_attention_idx`; past that it is estimated from the (queue, state) statistics ANALYZE keeps
 * (`jobs_queue_state_stats`), never below what was counted, or counted in full when the statistics
 * do not know the pair (the table was never analysed, or the pair is too rare for the sample).
 * Succeeded jobs are in no index: a group the statistics put over `exactLimit` is estimated without
 * reading it, and every other succeeded group (small, too rare for the sample, or the table not
 * analysed) is counted by one pass over the table shared by all of them, which is skipped when
 * queues are given and the statistics put each of them over `exactLimit`. Groups without a job
 * are left out.
 */
/** Above this many rows (as the statistics last saw the table), an unfiltered count makes no full pass. */
export const EXACT_PASS_MAX_ROWS = 100_000;

export function jobsCount(
  sql: SqlClient,
  schema: string,
  params: { schemaName: string; states: readonly JobState[]; queues: readonly string[] | null; exactLimit: number },
): Promise<JobsCountRow[]> {
  const p = new Params();
  const queues = params.queues ? p.add(params.queues, 'text[]') : null;
  const jobs = `${schema}.jobs`;
  const capped: JobState[] = params.states.filter((s) => s === 'failed' || s === 'cancelled');
  const succeeded = params.states.includes('succeeded');
  const counted = params.states.filter((s) => s === 'pending' || s === 'running' || s === 'waiting');
  const ctes: string[] = [];
  const selects: string[] = [];
  const cap = capped.length > 0 || succeeded ? p.add(params.exactLimit, 'bigint') : '';
  if (capped.length > 0 || succeeded) {
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
  }
  if (capped.length > 0) {
    const parts: string[] = [];
    for (const s of capped) {
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
    // Materialized: each capped count runs once (the filter on it below would otherwise run it again).
    ctes.push(`finished AS MATERIALIZED (${parts.join('\n UNION ALL\n ')})`);
    selects.push(`SELECT f.queue, f.state,
        (CASE WHEN f.capped <= ${cap} THEN f.capped
              WHEN e.n IS NOT NULL THEN greatest(round(e.n)::bigint, f.capped)
              ELSE (SELECT count(*) FROM ${jobs} j WHERE j.${ATTENTION_PREDICATE} AND j.state = f.state AND j.queue = f.queue) END)::text AS count,
        (f.capped <= ${cap} OR e.n IS NULL) AS exact
      FROM finished f LEFT JOIN estimates e ON e.queue = f.queue AND e.state = f.state
      WHERE f.capped > 0`);
  }
  if (succeeded) {
    ctes.push(`succeeded_estimated AS MATERIALIZED (
      SELECT e.queue, greatest(round(e.n)::bigint, ${cap} + 1) AS n FROM estimates e
      WHERE e.state = 'succeeded' AND e.n > ${cap}${queues ? ` AND e.queue = ANY(${queues})` : ''})`);
    const rest = `<> ALL(ARRAY(SELECT queue FROM succeeded_estimated))`;
    ctes.push(`succeeded_counted AS MATERIALIZED (
      SELECT j.queue, count(*) AS n FROM ${jobs} j
      WHERE j.state = 'succeeded' AND j.queue ${rest}${queues ? ` AND j.queue = ANY(${queues})` : ''}
      GROUP BY j.queue)`);
    selects.push(`SELECT s.queue, 'succeeded' AS state, s.n::text AS count, false AS exact FROM succeeded_estimated s`);
    // With queues given, the pass runs only if one of them is not estimated: a condition without a
    // column is tested once, above the scan of the materialized pass, which then never starts (not
    // even its parallel workers).
    // Without queues named, the pass runs only on a small table: on a long history an unfiltered
    // count (a dashboard's refresh) must not read every row, so succeeded groups too small for the
    // statistics are left out there (named queues are always counted).
    selects.push(
      `SELECT c.queue, 'succeeded' AS state, c.n::text AS count, true AS exact FROM succeeded_counted c${
        queues
          ? ` WHERE EXISTS (SELECT 1 FROM unnest(${queues}) q(queue) WHERE q.queue ${rest})`
          : ` WHERE (SELECT pc.reltuples FROM pg_class pc WHERE pc.oid = '${jobs}'::regclass) < ${EXACT_PASS_MAX_ROWS}`
      }`,
    );
  }
  for (const s of counted) {
    selects.push(`SELECT j.queue, ${state(s)} AS state, count(*)::text AS count, true AS exact FROM ${jobs} j
      WHERE j.state = ${state(s)}${queues ? ` AND j.queue = ANY(${queues})` : ''} GROUP BY j.queue`);
  }
  const order = `ARRAY[${JOB_STATES.map((s) => `'${s}'`).join(', ')}]`;
  const text = `
    ${ctes.length > 0 ? `WITH RECURSIVE ${ctes.join(',\n')}` : ''}
    SELECT * FROM (${selects.join('\n UNION ALL\n ')}) r ORDER BY r.queue, array_position(${order}, r.state)`;
  return run(sql, text, p.values);
}

/** A row of `jobRetry`: the job's state before the call and, when it was retried, the job's columns (all NULL otherwise). */
export type JobRetryRow = { previous_state: JobState } & ((JobRow & { retried: true }) | { retried: false });

/**
 * Puts one failed or cancelled job back to `pending`, runnable now, with at least one more attempt
 * allowed (`max_attempts` is raised to `attempt + 1` when spent); its attempt count and error
 * history stay. Wakes workers with `p:<queue>` on commit. Returns the job's state before the call
 * and, when it was retried, the job as the retry left it (no row: no such job). The row is
 * returned by the statement itself: a notified worker may claim the job before a second read.
 */
export function jobRetry(sql: SqlClient, schema: string, params: { channel: string; id: string }): Promise<JobRetryRow[]> {
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
 * Served by `jobs_attention_idx`.
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
  return { ids: row.ids, finishedBefore: row.before, full: row.picked === params.batchSize };
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

export interface QueueLagRow {
  queue: string;
  oldest: Date;
  lag_ms: number;
}

/**
 * Per queue with pending jobs: the earliest `scheduled_at` among them and how long ago that was
 * (0 when not due yet), on the database clock. A loose index scan of `jobs_fetch_idx`: one probe
 * per (queue, priority) group to find the groups, one per group for its earliest due time — cost
 * follows the number of groups, not of pending jobs.
 */
export function queuesLag(sql: SqlClient, schema: string, params: { queues: readonly string[] | null }): Promise<QueueLagRow[]> {
  const only = params.queues ? ' AND queue = ANY($1::text[])' : '';
  const pending = `FROM ${schema}.jobs WHERE state = 'pending'${only}`;
  return run(
    sql,
    `WITH RECURSIVE grp AS (
       (SELECT queue, priority ${pending} ORDER BY queue, priority DESC LIMIT 1)
       UNION ALL
       SELECT n.queue, n.priority
       FROM grp g CROSS JOIN LATERAL (
         (SELECT queue, priority ${pending} AND queue = g.queue AND priority < g.priority ORDER BY queue, priority DESC LIMIT 1)
         UNION ALL
         (SELECT queue, priority ${pending} AND queue > g.queue ORDER BY queue, priority DESC LIMIT 1)
         LIMIT 1
       ) n
     )
     SELECT g.queue, min(o.scheduled_at) AS oldest,
            greatest(extract(epoch FROM statement_timestamp() - min(o.scheduled_at)) * 1000, 0)::float8 AS lag_ms
     FROM grp g CROSS JOIN LATERAL (
       SELECT scheduled_at ${pending} AND queue = g.queue AND priority = g.priority ORDER BY scheduled_at LIMIT 1
     ) o
     GROUP BY g.queue
     ORDER BY g.queue`,
    params.queues ? [params.queues] : [],
  );
}

export interface ThroughputRow {
  queue: string;
  start: Date;
  succeeded: number;
  failed: number;
  cancelled: number;
}

/**
 * Jobs that finished in [since, until) per queue and per bucket of `bucketMs` (aligned on the Unix
 * epoch), by final state. `since`/`until` null: the last hour up to now, on the database clock,
 * which the first row returns as `window_since`/`window_until` (also when no job finished).
 * Served by `jobs_finished_brin`: only the block ranges whose finish times overlap the window.
 */
export async function jobsThroughput(
  sql: SqlClient,
  schema: string,
  params: { since: Date | null; until: Date | null; bucketMs: number; queues: readonly string[] | null },
): Promise<{ since: Date; until: Date; rows: ThroughputRow[] }> {
  const p = new Params();
  const since = p.add(params.since, 'timestamptz');
  const until = p.add(params.until, 'timestamptz');
  const bucket = p.add(params.bucketMs, 'float8');
  const byQueue = params.queues ? ` AND j.queue = ANY(${p.add(params.queues, 'text[]')})` : '';
  // The window's ends as expressions (no CTE to join): constants for the statement, so the planner
  // turns them into `jobs_finished_brin` conditions.
  const lo = `COALESCE(${since}, statement_timestamp() - interval '1 hour')`;
  const hi = `COALESCE(${until}, statement_timestamp())`;
  const rows = await run<ThroughputRow & { window_since: Date; window_until: Date; has: boolean }>(
    sql,
    `WITH b AS (
       SELECT j.queue, to_timestamp(floor(extract(epoch FROM j.finished_at) * 1000 / ${bucket}) * ${bucket} / 1000) AS start,
              count(*) FILTER (WHERE j.state = 'succeeded')::int AS succeeded,
              count(*) FILTER (WHERE j.state = 'failed')::int AS failed,
              count(*) FILTER (WHERE j.state = 'cancelled')::int AS cancelled
       FROM ${schema}.jobs j
       WHERE j.finished_at >= ${lo} AND j.finished_at < ${hi} AND j.state IN ('succeeded', 'failed', 'cancelled')${byQueue}
       GROUP BY 1, 2
     )
     SELECT ${lo} AS window_since, ${hi} AS window_until, b.queue IS NOT NULL AS has, b.*
     FROM (SELECT 1) one LEFT JOIN b ON true ORDER BY b.start, b.queue`,
    p.values,
  );
  const first = rows[0];
  if (!first) throw new Error('jobsThroughput: the window row is missing');
  return {
    since: first.window_since,
    until: first.window_until,
    rows: rows.filter((r) => r.has).map(({ queue, start, succeeded, failed, cancelled }) => ({ queue, start, succeeded, failed, cancelled })),
  };
}
