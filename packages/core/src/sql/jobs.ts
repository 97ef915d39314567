import type postgres from 'postgres';
import { isEmptyObject } from '../json.js';
import { progressChannel, settledChannel } from '../notifier.js';
import { toJobProgress } from '../progress.js';
import type { JobError, JobInsert, JobLimits, JobRecord, JobState, Outcome, RunningJob, SqlClient } from '../types.js';

/** An extra `jobs` column a plugin added in its migration and fills in `beforePush`. */
export interface JobColumn {
  readonly name: string;
  /** The column's SQL type, used to cast the pushed values (e.g. 'text', 'timestamptz'). */
  readonly type: string;
}

const RUNNING_COLUMNS = `id::text AS id, name, queue, args, errors, attempt, max_attempts, priority, limits, meta,
  scheduled_at, created_at, started_at, worker_id`;
export const ALL_COLUMNS = `${RUNNING_COLUMNS}, state, result, finished_at, progress`;

/**
 * "Still running, for this worker" for statements that find their rows by primary key. Written so
 * the planner cannot use the partial running-jobs index instead: the collation keeps the state test
 * from proving that index's predicate, and IS NOT DISTINCT FROM is not indexable. That index's
 * statistics are often "nearly empty" (analysed while nothing ran), and scanning it means every
 * running row of every worker, tested against the whole batch; the primary key reads only the batch.
 */
const FENCE = (workerParam: string) => `j.state = 'running' COLLATE "C" AND j.worker_id IS NOT DISTINCT FROM ${workerParam}`;

/**
 * Makes the statement's own transaction commit without waiting for the WAL flush (an InitPlan, run
 * once; `set_config(..., true)` lasts until that commit, so the session keeps its setting). Only
 * for claims: see `claimCommit` in the worker options for what that trades.
 */
const ASYNC_COMMIT = `
        AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL`;

/** A claim as `beforeClaim` taps shaped it (see ClaimContext). */
export interface ShapedClaim {
  queue: string;
  limit: number;
  workerId: string;
  asyncCommit: boolean;
  exclude: ReadonlyArray<{ column: string; values: readonly unknown[] }>;
  /** `budgets`: keys that may take fewer than `max` jobs in this claim (each remaining >= 1). */
  perKey: { column: string; max: number; after: unknown; budgets: ReadonlyArray<{ value: unknown; remaining: number }> } | null;
}

/** One per pushed row, in push order. */
export interface InsertResultRow {
  id: string;
  inserted: boolean;
  scheduled_at: Date;
}

export interface CompletionResult {
  /** Ids whose outcome was written, in no particular order. */
  written: string[];
  finishedAt: Date;
}

export interface CompletionInput {
  id: string;
  attempt: number;
  outcome: Outcome;
  /** The attempt's last progress report not yet stored (`jobs.progress` JSON text), written with the outcome. */
  progress?: string;
}

/** The columns of a job's row that both row shapes below carry (a claim returns empty JSON as NULL). */
interface JobRowCommon {
  id: string;
  name: string;
  args: unknown;
  errors: JobError[] | null;
  attempt: number;
  max_attempts: number;
  priority: number;
  limits: JobLimits | null;
  meta: Record<string, unknown> | null;
}

/** A `jobs` row as `ALL_COLUMNS` selects it (ids as text, timestamps as Date). */
export interface JobRow extends JobRowCommon {
  queue: string;
  worker_id: string | null;
  scheduled_at: Date;
  created_at: Date;
  started_at: Date | null;
  state: JobState;
  result: unknown;
  finished_at: Date | null;
  /** Absent from rows of statements that do not read it. */
  progress?: unknown;
}

/** A row of `fetch` (see its RETURNING list): times as epoch milliseconds, and the plugin columns a shaped claim adds. */
export interface ClaimedRow extends JobRowCommon {
  scheduled_ms: number;
  created_ms: number;
  started_ms: number;
  [column: string]: unknown;
}

function runningJob(
  row: JobRowCommon,
  queue: string,
  workerId: string | null,
  scheduledAt: Date,
  createdAt: Date,
  startedAt: Date | null,
): RunningJob {
  return {
    id: row.id,
    name: row.name,
    queue,
    args: row.args,
    errors: row.errors ?? [],
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    meta: row.meta ?? {},
    limits: row.limits ?? {},
    scheduledAt,
    createdAt,
    startedAt,
    workerId,
  };
}

export function toRunningJob(row: JobRow): RunningJob {
  return runningJob(row, row.queue, row.worker_id, row.scheduled_at, row.created_at, row.started_at);
}

/** A row of `fetch` (see its RETURNING list) as the job its worker runs. */
export function toClaimedJob(row: ClaimedRow, queue: string, workerId: string): RunningJob {
  return runningJob(row, queue, workerId, new Date(row.scheduled_ms), new Date(row.created_ms), new Date(row.started_ms));
}

export function toJobRecord(row: JobRow): JobRecord {
  return { ...toRunningJob(row), state: row.state, result: row.result ?? null, finishedAt: row.finished_at, progress: toJobProgress(row.progress) };
}

/**
 * Every statement the core runs against `jobs`, each a verb on the noun taking `(sql, params)` —
 * the shape of the plugins' `sql.ts` functions. A class rather than free functions because the
 * text is built once per app (schema and plugin columns are fixed after construction), so
 * postgres.js prepares each statement once.
 */
export class JobsSql {
  private readonly insertText: string;
  private readonly insertOneText: string;
  private readonly fetchText: string;
  private readonly fetchAsyncText: string;
  private readonly completeText: string;
  private readonly completeFreeingText: string;

  constructor(
    private readonly schema: string,
    private readonly channel: string,
    private readonly prepare: boolean,
    private readonly columns: readonly JobColumn[],
    /** A plugin resolves push conflicts: inserts skip rows its unique index refuses. */
    skipConflicts: boolean,
  ) {
    // Jobs due later: one 't:<queue>@<epoch ms>,…' notification with each queue's earliest run time,
    // so idle workers set a timer instead of finding them on their next poll.
    const laterNotify = (rows: string) =>
      notifyChunks(
        channel,
        't:',
        `SELECT queue || '@' || (extract(epoch FROM min(scheduled_at)) * 1000)::bigint AS v FROM ${rows} r
              WHERE scheduled_at > now() GROUP BY queue`,
        QUEUES_PER_NOTIFY,
      );
    const extraNames = columns.map((c) => `, ${c.name}`).join('');
    const extraParams = columns.map((c, i) => `, unnest($${10 + i}::${c.type}[])`).join('');
    const extraSelect = columns.map((c) => `, u.${c.name}`).join('');
    // Without a plugin that resolves conflicts (a unique index of its own), a conflict cannot
    // happen, and ON CONFLICT's speculative insertion costs ~15% of a bulk insert.
    const onConflict = skipConflicts ? 'ON CONFLICT DO NOTHING' : '';
    // Ids are drawn in the first CTE so each input row knows its id, whether or not a plugin's
    // unique index makes ON CONFLICT skip it; one pg_notify per statement wakes idle workers.
    // ROWS FROM zips the columns: JSON columns arrive as one JSON array each (parsed once, no
    // per-element quoting on either side), and a column sent empty (every row has the default)
    // comes out as NULLs.
    this.insertText = `
      WITH input AS (
        SELECT nextval('${schema}.jobs_id_seq'::regclass) AS id, u.*
        FROM ROWS FROM (unnest($1::text[]), unnest($2::text[]), jsonb_array_elements($3::text::jsonb), unnest($4::int[]), unnest($5::int[]),
                        unnest($6::timestamptz[]), unnest($7::float8[]), jsonb_array_elements($8::text::jsonb), jsonb_array_elements($9::text::jsonb)${extraParams})
          WITH ORDINALITY AS u(queue, name, args, priority, max_attempts, scheduled_at, delay_ms, limits, meta${extraNames}, ord)
      ),
      ins AS (
        INSERT INTO ${schema}.jobs (id, queue, name, args, priority, max_attempts, scheduled_at, limits, meta${extraNames})
        SELECT u.id, u.queue, u.name, u.args, u.priority, u.max_attempts,
               COALESCE(u.scheduled_at, now() + COALESCE(u.delay_ms, 0) * interval '1 millisecond'),
               COALESCE(u.limits, '{}'), COALESCE(u.meta, '{}')${extraSelect}
        FROM input u
        ${onConflict}
        RETURNING id, queue, scheduled_at
      ),
      wake AS (${notifyChunks(channel, 'p:', 'SELECT DISTINCT queue AS v FROM ins WHERE scheduled_at <= now()', QUEUES_PER_NOTIFY)}),
      later AS (${laterNotify('ins')}),
      counted AS (SELECT count(*) AS n FROM ins)
      -- One row of comma-separated lists, not a row per job: ids in input order; the inserted ones
      -- (ascending, which is input order too since ids are drawn in that order) only when some were
      -- skipped; their run times (epoch ms) only when a hook wants them ($${10 + columns.length}).
      -- Text only, so the answer reads the same through every driver a caller's transaction may
      -- use (their own parsers of arrays, int8 and timestamps never apply).
      SELECT (SELECT string_agg(id::text, ',' ORDER BY ord) FROM input) AS ids,
             CASE WHEN (SELECT n FROM counted) < cardinality($1::text[])
                  THEN (SELECT COALESCE(string_agg(id::text, ',' ORDER BY id), '') FROM ins) END AS inserted,
             CASE WHEN $${10 + columns.length}::boolean
                  THEN (SELECT string_agg(floor(extract(epoch FROM scheduled_at) * 1000)::bigint::text, ',' ORDER BY id) FROM ins) END AS scheduled,
             ((SELECT count(*) FROM wake) + (SELECT count(*) FROM later))::text AS woke`;

    // One job: plain VALUES, cheaper to plan and run than unnest (single pushes are commit-bound).
    const oneExtra = columns.map((c, i) => `, $${10 + i}::${c.type}`).join('');
    this.insertOneText = `
      WITH ins AS (
        INSERT INTO ${schema}.jobs (queue, name, args, priority, max_attempts, scheduled_at, limits, meta${extraNames})
        VALUES ($1::text, $2::text, $3::text::jsonb, $4::int, $5::int, COALESCE($6::timestamptz, now() + COALESCE($7::float8, 0) * interval '1 millisecond'),
                $8::text::jsonb, $9::text::jsonb${oneExtra})
        ${onConflict}
        RETURNING id, queue, scheduled_at
      ),
      -- One row: p: when due now, else t: with its run time (no aggregate, ~10% of a single push).
      wake AS (
        SELECT pg_notify('${channel}', CASE WHEN scheduled_at <= now() THEN 'p:' || queue
                                        ELSE 't:' || queue || '@' || (extract(epoch FROM scheduled_at) * 1000)::bigint END)
        FROM ins
      )
      -- Text only, as the bulk statement's answer.
      SELECT ins.id::text AS id, floor(extract(epoch FROM ins.scheduled_at) * 1000)::bigint::text AS scheduled_ms
      FROM ins CROSS JOIN (SELECT count(*) FROM wake) w`;

    const fetchText = (asyncClaims: boolean) => `
      WITH next AS (
        SELECT id FROM ${schema}.jobs
        WHERE state = 'pending' AND queue = $1 AND scheduled_at <= now()
          AND NOT EXISTS (SELECT 1 FROM ${schema}.queues q WHERE q.name = $1 AND q.paused)
        ORDER BY priority DESC, scheduled_at, id
        LIMIT $2
        FOR UPDATE SKIP LOCKED
      )
      UPDATE ${schema}.jobs j
      SET state = 'running', attempt = j.attempt + 1, started_at = now(), worker_id = $3, cancel_requested_at = NULL
      -- = ANY(ARRAY(...)) probes the primary key; a join lets the generic plan hash the whole table.
      WHERE j.id = ANY(ARRAY(SELECT id FROM next))${asyncClaims ? ASYNC_COMMIT : ''}
      -- Lean rows (the worker parses thousands a second): times as epoch milliseconds, empty JSON
      -- as NULL, and no queue or worker id (the caller knows both).
      RETURNING j.id::text AS id, j.name, j.args, NULLIF(j.errors, '[]'::jsonb) AS errors, j.attempt, j.max_attempts, j.priority,
        NULLIF(j.limits, '{}'::jsonb) AS limits, NULLIF(j.meta, '{}'::jsonb) AS meta,
        floor(extract(epoch FROM j.scheduled_at) * 1000)::float8 AS scheduled_ms,
        floor(extract(epoch FROM j.created_at) * 1000)::float8 AS created_ms,
        floor(extract(epoch FROM j.started_at) * 1000)::float8 AS started_ms`;
    this.fetchText = fetchText(false);
    this.fetchAsyncText = fetchText(true);

    // Fenced: a row is written only while it is still this worker's same attempt, so a late
    // completion after the job was requeued, cancelled or released can never overwrite a newer state.
    //
    // No join: the rows are found by primary key, and each row's attempt and outcome are looked up
    // by id in JSON objects ($3, $4). A join with the batch left the planner free to loop over one
    // side for every row of the other when statistics were off (a table analysed while no job ran
    // estimates "no running rows"): 0.5 s per batch of 500 in one measured case. Every plan of this
    // statement reads the batch's rows by primary key (see FENCE; test/plans.test.ts checks it).
    // $4 holds only the outcomes that are not a plain success without a result or progress (null
    // when there are none): {"<id>": [state, result, error, retryAt, progress]}.
    // The JSON is parsed once per statement (an InitPlan), not once per row as a cast of a
    // parameter would be in a generic plan.
    const o = `((SELECT outcomes FROM batch) -> j.id::text)`;
    const completeText = (freeing: boolean) => `
      WITH batch AS (SELECT $3::text::jsonb AS attempts, $4::text::jsonb AS outcomes),
      done AS (
        UPDATE ${schema}.jobs j SET
          state = COALESCE(${o} ->> 0, 'succeeded'),
          result = CASE WHEN ${o} ->> 0 IN ('succeeded', 'waiting') THEN ${o} -> 1 ELSE j.result END,
          errors = CASE WHEN jsonb_typeof(${o} -> 2) = 'object' THEN j.errors || jsonb_build_array(${o} -> 2) ELSE j.errors END,
          scheduled_at = CASE WHEN ${o} ->> 0 = 'pending' THEN (${o} ->> 3)::timestamptz ELSE j.scheduled_at END,
          finished_at = CASE WHEN COALESCE(${o} ->> 0, 'succeeded') IN ('succeeded', 'failed', 'cancelled') THEN now() END,
          worker_id = CASE WHEN ${o} ->> 0 = 'pending' THEN NULL ELSE j.worker_id END,
          progress = CASE WHEN jsonb_typeof(${o} -> 4) = 'object' THEN ${o} -> 4 ELSE j.progress END
        WHERE j.id = ANY($1::bigint[]) AND ${FENCE('$2')}
          AND j.attempt = ((SELECT attempts FROM batch) ->> j.id::text)::int
        RETURNING j.id, j.state, j.queue, j.scheduled_at
      ),
      settled AS (${notifyChunks(settledChannel(channel), 's:', "SELECT id::text AS v FROM done WHERE state IN ('succeeded', 'failed', 'cancelled')", IDS_PER_NOTIFY)}),
      retried AS (${notifyChunks(channel, 'p:', "SELECT DISTINCT queue AS v FROM done WHERE state = 'pending' AND scheduled_at <= now()", QUEUES_PER_NOTIFY)}),
      later AS (${laterNotify("(SELECT * FROM done WHERE state = 'pending')")})${
        freeing
          ? `,
      -- Queues whose claims plugins shape (a cap, a limit): a job of one that ended or went back to
      -- waiting frees capacity, so runners that a cut-short claim left waiting claim again.
      freed AS (${notifyChunks(channel, 'p:', 'SELECT DISTINCT queue AS v FROM done WHERE queue = ANY($5::text[])', QUEUES_PER_NOTIFY)})`
          : ''
      }
      -- One row: how many were written, their ids only when some were not, and the finish time
      -- (now(), the same for every row of the statement).
      SELECT count(*)::int AS n, CASE WHEN count(*) < cardinality($1::bigint[]) THEN COALESCE(array_agg(id::text), '{}') END AS ids, now() AS finished_at
      FROM done CROSS JOIN (SELECT count(*) FROM later) l CROSS JOIN (SELECT count(*) FROM settled) s CROSS JOIN (SELECT count(*) FROM retried) r${freeing ? ' CROSS JOIN (SELECT count(*) FROM freed) f' : ''}`;
    this.completeText = completeText(false);
    this.completeFreeingText = completeText(true);
  }

  private run<T>(sql: SqlClient, text: string, params: unknown[]): Promise<T[]> {
    return (sql as postgres.Sql).unsafe(text, params as never[], { prepare: this.prepare }) as unknown as Promise<T[]>;
  }

  /**
   * Inserts rows (already validated; args as JSON text) in one statement. `withTimes`: report each
   * inserted job's run time (hooks want it); otherwise `scheduled_at` in the result is approximate.
   */
  async insert(sql: SqlClient, params: { rows: readonly JobInsert[]; argsText: readonly string[]; withTimes: boolean }): Promise<InsertResultRow[]> {
    const { rows, argsText: jsonArgs, withTimes } = params;
    if (rows.length === 1) return this.insertOne(sql, rows[0], jsonArgs[0]);
    const n = rows.length;
    // Array literals and JSON arrays built here: queue and job names are validated (letters, digits
    // and _ - . : /), so quoting them needs no escaping; JSON texts are joined as they are.
    const queue = new Array<string>(n),
      name = new Array<string>(n),
      priority = new Array<number>(n);
    const maxAttempts = new Array<number>(n);
    let scheduledAt: Array<string> | null = null,
      delay: Array<string> | null = null;
    let limits: string[] | null = null,
      meta: string[] | null = null;
    const extra = this.columns.map(() => new Array<unknown>(n));
    for (let i = 0; i < n; i++) {
      const row = rows[i];
      queue[i] = row.queue;
      name[i] = row.name;
      priority[i] = row.priority;
      maxAttempts[i] = row.maxAttempts;
      if (row.scheduledAt) (scheduledAt ??= new Array<string>(n).fill('NULL'))[i] = `"${row.scheduledAt.toISOString()}"`;
      if (row.delayMs !== null && row.delayMs !== undefined) (delay ??= new Array<string>(n).fill('NULL'))[i] = String(row.delayMs);
      if (!isEmptyObject(row.limits)) (limits ??= new Array<string>(n).fill('{}'))[i] = JSON.stringify(row.limits);
      if (!isEmptyObject(row.meta)) (meta ??= new Array<string>(n).fill('{}'))[i] = JSON.stringify(row.meta);
      for (let c = 0; c < this.columns.length; c++) {
        extra[c][i] = columnValue(row.columns[this.columns[c].name]);
      }
    }
    const values = [
      quotedArray(queue),
      quotedArray(name),
      `[${jsonArgs.join(',')}]`,
      `{${priority.join(',')}}`,
      `{${maxAttempts.join(',')}}`,
      scheduledAt ? `{${scheduledAt.join(',')}}` : '{}',
      delay ? `{${delay.join(',')}}` : '{}',
      limits ? `[${limits.join(',')}]` : '[]',
      meta ? `[${meta.join(',')}]` : '[]',
      ...extra,
      withTimes,
    ];
    const [result] = await this.run<{ ids: string; inserted: string | null; scheduled: string | null }>(sql, this.insertText, values);
    const ids = result.ids.split(',');
    const inserted = result.inserted === null ? null : result.inserted === '' ? [] : result.inserted.split(',');
    const scheduled = result.scheduled === null ? null : result.scheduled.split(',');
    const out: InsertResultRow[] = new Array(n);
    const now = new Date();
    let k = 0;
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      const hit = inserted === null || inserted[k] === id;
      out[i] = { id, inserted: hit, scheduled_at: hit && scheduled ? new Date(Number(scheduled[k])) : now };
      if (hit) k++;
    }
    return out;
  }

  private async insertOne(sql: SqlClient, row: JobInsert, jsonArgs: string): Promise<InsertResultRow[]> {
    const params: unknown[] = [
      row.queue,
      row.name,
      jsonArgs,
      row.priority,
      row.maxAttempts,
      row.scheduledAt ? row.scheduledAt.toISOString() : null,
      row.delayMs,
      JSON.stringify(row.limits),
      JSON.stringify(row.meta),
    ];
    for (const column of this.columns) params.push(columnValue(row.columns[column.name]));
    const [done] = await this.run<{ id: string; scheduled_ms: string }>(sql, this.insertOneText, params);
    // No row back: a plugin's unique index skipped it (ON CONFLICT DO NOTHING).
    return done
      ? [{ id: done.id, inserted: true, scheduled_at: new Date(Number(done.scheduled_ms)) }]
      : [{ id: '', inserted: false, scheduled_at: new Date() }];
  }

  /**
   * Claims up to `limit` runnable jobs of one queue for `workerId`. `asyncCommit`: the claim's
   * commit does not wait for the WAL flush (see ASYNC_COMMIT).
   */
  claim(sql: SqlClient, params: { queue: string; limit: number; workerId: string; asyncCommit: boolean }): Promise<ClaimedRow[]> {
    return this.run(sql, params.asyncCommit ? this.fetchAsyncText : this.fetchText, [params.queue, params.limit, params.workerId]);
  }

  /**
   * A claim shaped by `beforeClaim` taps (inside their transaction): like `fetch`, but leaving out
   * jobs whose plugin column holds an excluded value, and, with `perKey`, taking at most `max` jobs
   * per value of a plugin column, round-robin from `perKey.after`. Returns the plugin columns too.
   */
  claimShaped(sql: SqlClient, params: ShapedClaim): Promise<ClaimedRow[]> {
    const { exclude, perKey } = params;
    const shape = `${params.asyncCommit}|${exclude.map((e) => e.column).join(',')}|${perKey ? perKey.column : ''}`;
    let text = this.shapedTexts.get(shape);
    if (text === undefined) {
      text = this.shapedFetchText(
        params.asyncCommit,
        exclude.map((e) => e.column),
        perKey?.column ?? null,
      );
      this.shapedTexts.set(shape, text);
    }
    const values: unknown[] = [params.queue, params.limit, params.workerId];
    for (const e of exclude) values.push(e.values.map(columnValue));
    if (perKey) {
      values.push(
        perKey.max,
        perKey.after === null ? null : columnValue(perKey.after),
        perKey.budgets.map((b) => columnValue(b.value)),
        perKey.budgets.map((b) => b.remaining),
      );
    }
    return this.run(sql, text, values);
  }
  private readonly shapedTexts = new Map<string, string>();

  private shapedFetchText(asyncCommit: boolean, excluded: readonly string[], keyColumn: string | null): string {
    const schema = this.schema;
    const type = (name: string) => {
      const column = this.columns.find((c) => c.name === name);
      if (!column) throw new Error(`job column '${name}' is not declared`);
      return column.type;
    };
    // $1 queue, $2 limit, $3 worker, then one array per excluded column, then per-key max, cursor,
    // and the budgets' keys and counts.
    const excludeSql = excluded.map((name, i) => `AND (j.${name} IS NULL OR j.${name} <> ALL($${4 + i}::${type(name)}[]))`).join(' ');
    // statement_timestamp(), not now(): this statement runs in a transaction that taps began
    // earlier, and jobs that became due since then are due now.
    const runnable = `j.state = 'pending' AND j.queue = $1 AND j.scheduled_at <= statement_timestamp() ${excludeSql}`;
    const pausedTest = `NOT EXISTS (SELECT 1 FROM ${schema}.queues q WHERE q.name = $1 AND q.paused)`;
    let candidates: string;
    if (keyColumn === null) {
      candidates = `
        SELECT j.id FROM ${schema}.jobs j
        WHERE ${runnable} AND ${pausedTest}
        ORDER BY j.priority DESC, j.scheduled_at, j.id
        LIMIT $2
        FOR UPDATE SKIP LOCKED`;
    } else {
      const k = keyColumn;
      const max = `$${4 + excluded.length}`;
      const cursor = `$${5 + excluded.length}::${type(k)}`;
      const budgetKeys = `$${6 + excluded.length}::${type(k)}[]`;
      const budgetCounts = `$${7 + excluded.length}::int[]`;
      // Values of the key column that are left out are tested once per key (a hashed NOT IN), not
      // once per pending row: a key at its cap may have a long backlog, and skipping it must not
      // cost a walk through that backlog. Other columns' exclusions are tested per job as usual.
      const keyExcluded = excluded.indexOf(k);
      const otherExcludeSql = excluded
        .map((name, i) => (name === k ? '' : `AND (j.${name} IS NULL OR j.${name} <> ALL($${4 + i}::${type(name)}[]))`))
        .join(' ');
      const runnableJob = `j.state = 'pending' AND j.queue = $1 AND j.scheduled_at <= statement_timestamp() ${otherExcludeSql}`;
      // Round-robin over the keys that have pending jobs: a loose index scan (one probe per distinct
      // key) from the key after this runner's previous claim, wrapping to the first key. A key takes
      // a lane when it is not left out and has a job that can run now (one scheduled later, e.g. a
      // retry, must not hold a lane that a due key needs); at most `max` (or its budget) due jobs of
      // each lane, best first, and no more than its share of the claim (limit ÷ lanes, rounded up:
      // reading `max` jobs of each of hundreds of lanes to keep `limit` of them made the claim read
      // many times what it takes); then one job per lane and round (every lane's best, then every
      // lane's second, …), plus jobs without a key, each its own lane. A lane with fewer due jobs
      // than its share leaves the claim short; the runner claims again when its jobs settle.
      const nextKey = (after: string) =>
        `(SELECT j.${k} FROM ${schema}.jobs j WHERE j.state = 'pending' AND j.queue = $1 AND j.${k} > ${after} ORDER BY j.${k} LIMIT 1)`;
      const firstKey = `(SELECT j.${k} FROM ${schema}.jobs j WHERE j.state = 'pending' AND j.queue = $1 AND j.${k} IS NOT NULL ORDER BY j.${k} LIMIT 1)`;
      const notExcludedKey = keyExcluded < 0 ? '' : `AND ks.k NOT IN (SELECT v FROM unnest($${4 + keyExcluded}::${type(k)}[]) v WHERE v IS NOT NULL)`;
      candidates = `
        WITH RECURSIVE after_cursor(k) AS (
          SELECT CASE WHEN ${cursor} IS NULL THEN ${firstKey} ELSE ${nextKey(cursor)} END
          UNION ALL
          SELECT ${nextKey('a.k')} FROM after_cursor a WHERE a.k IS NOT NULL
        ),
        wrapped(k) AS (
          SELECT CASE WHEN ${cursor} IS NULL THEN NULL ELSE ${firstKey} END
          UNION ALL
          SELECT ${nextKey('w.k')} FROM wrapped w WHERE w.k IS NOT NULL AND w.k <= ${cursor}
        ),
        lanes AS (
          SELECT ks.k FROM (SELECT k, 0 AS pass FROM after_cursor WHERE k IS NOT NULL
                            UNION ALL SELECT k, 1 FROM wrapped WHERE k IS NOT NULL AND k <= ${cursor}) ks
          WHERE true ${notExcludedKey}
            AND EXISTS (SELECT 1 FROM ${schema}.jobs j WHERE ${runnableJob} AND j.${k} = ks.k)
          LIMIT $2
        ),
        picked AS (
          SELECT c.id, c.priority, c.scheduled_at, c.round
          FROM lanes l LEFT JOIN unnest(${budgetKeys}, ${budgetCounts}) AS b(k, n) ON b.k = l.k
          CROSS JOIN LATERAL (
            SELECT j.id, j.priority, j.scheduled_at, row_number() OVER (ORDER BY j.priority DESC, j.scheduled_at, j.id) AS round
            FROM ${schema}.jobs j WHERE ${runnableJob} AND j.${k} = l.k
            ORDER BY j.priority DESC, j.scheduled_at, j.id
            LIMIT LEAST(COALESCE(b.n, ${max}), ceil($2::float8 / (SELECT count(*) FROM lanes))::int)
          ) c
          UNION ALL
          (SELECT j.id, j.priority, j.scheduled_at, 1 FROM ${schema}.jobs j WHERE ${runnableJob} AND j.${k} IS NULL
           ORDER BY j.priority DESC, j.scheduled_at, j.id LIMIT $2)
        )
        SELECT j.id FROM ${schema}.jobs j
        WHERE j.id = ANY(ARRAY(SELECT p.id FROM picked p ORDER BY p.round, p.priority DESC, p.scheduled_at, p.id LIMIT $2))
          AND j.state = 'pending' AND ${pausedTest}
        FOR UPDATE SKIP LOCKED`;
    }
    const extra = this.columns.map((c) => `, j.${c.name}`).join('');
    return `
      WITH next AS (${candidates})
      UPDATE ${schema}.jobs j
      SET state = 'running', attempt = j.attempt + 1, started_at = statement_timestamp(), worker_id = $3, cancel_requested_at = NULL
      WHERE j.id = ANY(ARRAY(SELECT id FROM next))${asyncCommit ? ASYNC_COMMIT : ''}
      RETURNING j.id::text AS id, j.name, j.args, NULLIF(j.errors, '[]'::jsonb) AS errors, j.attempt, j.max_attempts, j.priority,
        NULLIF(j.limits, '{}'::jsonb) AS limits, NULLIF(j.meta, '{}'::jsonb) AS meta,
        floor(extract(epoch FROM j.scheduled_at) * 1000)::float8 AS scheduled_ms,
        floor(extract(epoch FROM j.created_at) * 1000)::float8 AS created_ms,
        floor(extract(epoch FROM j.started_at) * 1000)::float8 AS started_ms${extra}`;
  }

  /**
   * Writes many outcomes in one statement. Returns the ids that were still this worker's attempt
   * (all of them unless some were recovered, cancelled or released meanwhile) and the finish time.
   * The statement is sent at once, on the call (a settle transaction's COMMIT may go right behind it).
   */
  complete(
    sql: SqlClient,
    params: { workerId: string; items: readonly CompletionInput[]; wakeQueues?: readonly string[] },
  ): Promise<CompletionResult> {
    const { workerId, items, wakeQueues = [] } = params;
    const fence = fenceParams(items);
    let outcomes: string | null = null;
    for (const { id, outcome, progress } of items) {
      if (outcome.state === 'succeeded' && (outcome.result === null || outcome.result === undefined) && progress === undefined) continue;
      let entry = JSON.stringify([
        outcome.state === 'retry' ? 'pending' : outcome.state,
        outcome.state === 'succeeded' || outcome.state === 'waiting' ? (outcome.result ?? null) : null,
        'error' in outcome && outcome.error ? outcome.error : null,
        outcome.state === 'retry' ? outcome.retryAt.toISOString() : null,
      ]);
      // Already JSON text (made when the handler reported it): spliced in, not encoded again.
      if (progress !== undefined) entry = `${entry.slice(0, -1)},${progress}]`;
      outcomes = `${outcomes === null ? '{' : `${outcomes},`}"${id}":${entry}`;
    }
    if (outcomes !== null) outcomes += '}';
    // `.then` now, not `await`: sent on the call (see sendNow).
    return this.run<{ n: number; ids: string[] | null; finished_at: Date }>(
      sql,
      wakeQueues.length === 0 ? this.completeText : this.completeFreeingText,
      wakeQueues.length === 0 ? [fence.ids, workerId, fence.attempts, outcomes] : [fence.ids, workerId, fence.attempts, outcomes, wakeQueues],
    ).then(([row]) => {
      // One aggregate row, always.
      if (row === undefined) throw new Error('Docket: the completion statement answered no row.');
      return { written: row.ids ?? items.map((item) => item.id), finishedAt: row.finished_at };
    });
  }

  /** Locks this worker's running rows for a settle transaction; returns the ids still fenced to it. */
  lockRunning(sql: SqlClient, params: { workerId: string; jobs: readonly Attempted[] }): Promise<Array<{ id: string }>> {
    const { workerId, jobs } = params;
    const fence = fenceParams(jobs);
    return this.run(
      sql,
      // No join with the batch, for the reason given at completeText.
      `SELECT j.id::text AS id FROM ${this.schema}.jobs j
       WHERE j.id = ANY($1::bigint[]) AND ${FENCE('$3')}
         AND j.attempt = ((SELECT $2::text::jsonb) ->> j.id::text)::int
       ORDER BY j.id FOR UPDATE OF j`,
      [fence.ids, fence.attempts, workerId],
    );
  }

  /**
   * Stores the latest progress reports of this worker's running attempts (fenced like a completion:
   * a report of an attempt that is no longer this worker's is dropped) and announces the jobs on the
   * progress channel (`g:<ids>`) for `app.onProgress` listeners. Rows found by primary key, each
   * row's attempt and report looked up by id in JSON (see completeText). Returns the ids written.
   */
  progressWrite(
    sql: SqlClient,
    params: { workerId: string; items: ReadonlyArray<{ id: string; attempt: number; progress: string }> },
  ): Promise<Array<{ n: number }>> {
    const { workerId, items } = params;
    const fence = fenceParams(items);
    let reports = '';
    for (let i = 0; i < items.length; i++) reports += `${i === 0 ? '' : ','}"${items[i].id}":${items[i].progress}`;
    return this.run(
      sql,
      `WITH batch AS (SELECT $2::text::jsonb AS attempts, $4::text::jsonb AS reports),
       written AS (
         UPDATE ${this.schema}.jobs j SET progress = (SELECT reports FROM batch) -> j.id::text
         WHERE j.id = ANY($1::bigint[]) AND ${FENCE('$3')}
           AND j.attempt = ((SELECT attempts FROM batch) ->> j.id::text)::int
         RETURNING j.id
       ),
       note AS (${notifyChunks(progressChannel(this.channel), 'g:', 'SELECT id::text AS v FROM written', IDS_PER_NOTIFY)})
       SELECT (SELECT count(*) FROM written)::int AS n, (SELECT count(*) FROM note) AS notes`,
      [fence.ids, fence.attempts, workerId, `{${reports}}`],
    );
  }

  /** The stored progress (and state) of these jobs, for `app.onProgress` listeners. */
  progressRead(sql: SqlClient, params: { ids: readonly string[] }): Promise<Array<{ id: string; state: JobState; progress: unknown }>> {
    return this.run(sql, `SELECT id::text AS id, state, progress FROM ${this.schema}.jobs WHERE id = ANY($1::bigint[])`, [params.ids]);
  }

  getOne(sql: SqlClient, params: { id: string }): Promise<JobRow[]> {
    return this.run(sql, `SELECT ${ALL_COLUMNS} FROM ${this.schema}.jobs WHERE id = $1`, [params.id]);
  }

  getMany(sql: SqlClient, params: { ids: readonly string[] }): Promise<JobRow[]> {
    return this.run(sql, `SELECT ${ALL_COLUMNS} FROM ${this.schema}.jobs WHERE id = ANY($1::bigint[])`, [params.ids]);
  }

  /**
   * Cancels a job: pending and waiting jobs end `cancelled` at once; a running job is marked so its
   * worker aborts the handler. Returns the job's state before and after.
   */
  cancel(sql: SqlClient, params: { id: string }): Promise<Array<{ previous_state: JobState; state: JobState }>> {
    const { id } = params;
    return this.run(
      sql,
      `WITH target AS (SELECT id, state AS previous_state FROM ${this.schema}.jobs WHERE id = $1 FOR UPDATE),
       upd AS (
         UPDATE ${this.schema}.jobs j SET
           state = CASE WHEN j.state IN ('pending', 'waiting') THEN 'cancelled' ELSE j.state END,
           finished_at = CASE WHEN j.state IN ('pending', 'waiting') THEN now() ELSE j.finished_at END,
           cancel_requested_at = CASE WHEN j.state = 'running' THEN now() ELSE j.cancel_requested_at END
         FROM target t WHERE j.id = t.id AND j.state IN ('pending', 'waiting', 'running')
         RETURNING j.id, j.state
       ),
       note AS (
         SELECT CASE WHEN u.state = 'running' THEN pg_notify('${this.channel}', 'c:' || u.id::text)
                     ELSE pg_notify('${settledChannel(this.channel)}', 's:' || u.id::text) END
         FROM upd u
       )
       SELECT t.previous_state, COALESCE(u.state, t.previous_state) AS state
       FROM target t LEFT JOIN upd u ON u.id = t.id CROSS JOIN (SELECT count(*) FROM note) n`,
      [id],
    );
  }

  /** The earliest run time of a pending job of `queue` that is not due yet (null when none). */
  async nextDue(sql: SqlClient, params: { queue: string }): Promise<Date | null> {
    const { queue } = params;
    const [row] = await this.run<{ at: Date | null }>(
      sql,
      `SELECT min(scheduled_at) AS at FROM ${this.schema}.jobs WHERE state = 'pending' AND queue = $1 AND scheduled_at > now()`,
      [queue],
    );
    return row?.at ?? null;
  }

  /** Running jobs of this worker whose cancellation was requested (for workers that do not LISTEN). */
  listCancelRequested(sql: SqlClient, params: { workerId: string }): Promise<Array<{ id: string }>> {
    const { workerId } = params;
    return this.run(
      sql,
      `SELECT id::text AS id FROM ${this.schema}.jobs WHERE state = 'running' AND worker_id = $1 AND cancel_requested_at IS NOT NULL`,
      [workerId],
    );
  }

  /**
   * Gives claimed-but-unfinished jobs back (worker shutdown): they return to `pending` without
   * spending the attempt; `error`, when given, records why the attempt was interrupted.
   */
  release(sql: SqlClient, params: { workerId: string; ids: readonly string[]; error: JobError | null }): Promise<unknown[]> {
    const { workerId, ids, error } = params;
    return this.run(
      sql,
      `WITH upd AS (
         UPDATE ${this.schema}.jobs SET state = 'pending', attempt = attempt - 1, worker_id = NULL, started_at = NULL,
           errors = CASE WHEN $3::text IS NULL THEN errors ELSE errors || jsonb_build_array($3::jsonb) END
         WHERE id = ANY($1::bigint[]) AND state = 'running' AND worker_id IS NOT DISTINCT FROM $2
         RETURNING queue
       )
       ${notifyChunks(this.channel, 'p:', 'SELECT DISTINCT queue AS v FROM upd', QUEUES_PER_NOTIFY)}`,
      [ids, workerId, error ? JSON.stringify(error) : null],
    );
  }

  deleteFinished(sql: SqlClient, params: { ids: readonly string[] }): Promise<Array<{ id: string }>> {
    const { ids } = params;
    return this.run(
      sql,
      `DELETE FROM ${this.schema}.jobs WHERE id = ANY($1::bigint[]) AND state IN ('succeeded', 'failed', 'cancelled') RETURNING id::text AS id`,
      [ids],
    );
  }

  /** Moves held (`waiting`) jobs to their final state; returns the rows it changed. */
  releaseWaiting(
    sql: SqlClient,
    params: { items: ReadonlyArray<{ id: string; state: 'succeeded' | 'failed' | 'cancelled'; result: string | null; error: string | null }> },
  ): Promise<JobRow[]> {
    const { items } = params;
    return this.run(
      sql,
      `WITH input AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(id, state, result, error)),
       done AS (
         UPDATE ${this.schema}.jobs j SET state = u.state, finished_at = now(),
           result = COALESCE(u.result::jsonb, j.result),
           errors = CASE WHEN u.error IS NULL THEN j.errors ELSE j.errors || jsonb_build_array(u.error::jsonb) END
         FROM input u WHERE j.id = ANY($1::bigint[]) AND j.id = u.id AND j.state = 'waiting'
         RETURNING j.*
       ),
       note AS (${notifyChunks(settledChannel(this.channel), 's:', 'SELECT id::text AS v FROM done', IDS_PER_NOTIFY)})
       SELECT ${ALL_COLUMNS} FROM done CROSS JOIN (SELECT count(*) FROM note) n`,
      [items.map((i) => i.id), items.map((i) => i.state), items.map((i) => i.result), items.map((i) => i.error)],
    );
  }
}

/**
 * NOTIFY payloads must stay under 8,000 bytes, so a list goes out in chunks, one pg_notify per
 * chunk. `items` is a SELECT of one text column `v`; `per` items fit whatever their length
 * (ids: at most 20 characters; queue names: at most 128, plus '@' and a time for t:).
 */
export function notifyChunks(channel: string, prefix: string, items: string, per: number): string {
  return `SELECT pg_notify('${channel}', '${prefix}' || string_agg(v, ','))
        FROM (SELECT v, (row_number() OVER () - 1) / ${per} AS chunk FROM (${items}) i) c GROUP BY chunk`;
}
export const IDS_PER_NOTIFY = 300;
export const QUEUES_PER_NOTIFY = 45;

/** A plugin column's value as sent to PostgreSQL (dates as ISO text, missing as NULL). */
function columnValue(value: unknown): unknown {
  return value instanceof Date ? value.toISOString() : (value ?? null);
}

/**
 * Validated names (letters, digits, _ - . : /) as an array literal: each is quoted (so 'null' stays
 * a name) and needs no escaping. The literal of a run of equal names is built once.
 */
function quotedArray(values: readonly string[]): string {
  let out = '{';
  let last = '';
  let lastQuoted = '';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== last || i === 0) {
      last = v;
      lastQuoted = `"${v}"`;
    }
    out += i === 0 ? lastQuoted : `,${lastQuoted}`;
  }
  return `${out}}`;
}

/** A job and the attempt a worker holds: what the fence of a completion or a lock compares. */
interface Attempted {
  readonly id: string;
  readonly attempt: number;
}

/**
 * The fence's parameters: the ids as an array literal (decimal strings from the database: no
 * per-element escaping) and each id's attempt as a JSON object, looked up per row by the statement.
 */
function fenceParams(jobs: readonly Attempted[]): { ids: string; attempts: string } {
  let ids = '';
  let attempts = '';
  for (let i = 0; i < jobs.length; i++) {
    const { id, attempt } = jobs[i];
    const sep = i === 0 ? '' : ',';
    ids += `${sep}${id}`;
    attempts += `${sep}"${id}":${attempt}`;
  }
  return { ids: `{${ids}}`, attempts: `{${attempts}}` };
}
