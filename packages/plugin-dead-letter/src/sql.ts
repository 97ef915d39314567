/**
 * Every statement of the dead-letter plugin, and its migrations. `schema` is the app's quoted
 * schema (`app.schema`), spliced into the text; values always travel as parameters.
 */
import type { Docket, JobError, JobLimits, Migration, SqlClient } from '@docket/core';

type Sql = Docket['sql'];

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'dead letters',
    up: ({ schema }) => `
      -- One row per job that failed for good: a copy of the job as it ended (arguments as stored, so
      -- still encrypted under a payload codec), every attempt's error, and where it came from. A copy,
      -- not a reference: it outlives the job when a pruner deletes finished jobs.
      CREATE TABLE ${schema}.dead_letters (
        id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id           bigint NOT NULL,
        attempt          integer NOT NULL,
        queue            text NOT NULL,
        name             text NOT NULL,
        state            text NOT NULL CHECK (state IN ('failed', 'cancelled')),
        args             jsonb NOT NULL,
        meta             jsonb NOT NULL,
        priority         integer NOT NULL,
        max_attempts     integer NOT NULL,
        limits           jsonb NOT NULL,
        errors           jsonb NOT NULL,
        worker_id        text,
        created_at       timestamptz NOT NULL,
        failed_at        timestamptz NOT NULL,
        dead_lettered_at timestamptz NOT NULL DEFAULT now(),
        redriven_at      timestamptz,
        redriven_job_id  bigint,
        -- Once per ending: a job retried by hand that fails for good again is a second dead letter.
        UNIQUE (job_id, attempt)
      );
      CREATE INDEX dead_letters_queue_idx ON ${schema}.dead_letters (queue, name, id);
      CREATE INDEX dead_letters_waiting_idx ON ${schema}.dead_letters (id) WHERE redriven_at IS NULL;
    `,
  },
]);

function run<T>(sql: SqlClient, text: string, params: unknown[]): Promise<T[]> {
  return (sql as Sql).unsafe(text, params as never[]) as unknown as Promise<T[]>;
}

/** A `dead_letters` row as read (ids as text). */
export interface DeadLetterRow {
  id: string;
  job_id: string;
  attempt: number;
  queue: string;
  name: string;
  state: 'failed' | 'cancelled';
  args: unknown;
  meta: Record<string, unknown>;
  priority: number;
  max_attempts: number;
  limits: JobLimits;
  errors: JobError[];
  worker_id: string | null;
  created_at: Date;
  failed_at: Date;
  dead_lettered_at: Date;
  redriven_at: Date | null;
  redriven_job_id: string | null;
}

const COLUMNS = `id::text AS id, job_id::text AS job_id, attempt, queue, name, state, args, meta, priority, max_attempts, limits, errors,
  worker_id, created_at, failed_at, dead_lettered_at, redriven_at, redriven_job_id::text AS redriven_job_id`;

/**
 * Copies jobs ending now into `dead_letters`, in the transaction that settles them: each job's row
 * as this transaction sees it (locked by the settlement), with `error` — the attempt's final error
 * that the completion statement is about to append, null when the row already holds it — after
 * its errors. A job's ending is copied once (`ON CONFLICT` on job and attempt). Rows are found by
 * primary key, each one's state and error looked up by id in JSON (no join a plan could turn into a
 * pass over the table). Returns the copies.
 */
export function deadLettersInsert(
  sql: SqlClient,
  schema: string,
  items: ReadonlyArray<{ jobId: string; state: 'failed' | 'cancelled'; error: JobError | null }>,
): Promise<Array<{ id: string; job_id: string; queue: string; name: string }>> {
  const byId: Record<string, [string, JobError | null]> = {};
  for (const item of items) byId[item.jobId] = [item.state, item.error];
  const u = `((SELECT items FROM batch) -> j.id::text)`;
  return run(
    sql,
    `WITH batch AS (SELECT $2::text::jsonb AS items)
     INSERT INTO ${schema}.dead_letters (job_id, attempt, queue, name, state, args, meta, priority, max_attempts, limits, errors, worker_id, created_at, failed_at)
     SELECT j.id, j.attempt, j.queue, j.name, ${u} ->> 0, j.args, j.meta, j.priority, j.max_attempts, j.limits,
            CASE WHEN jsonb_typeof(${u} -> 1) = 'object' THEN j.errors || jsonb_build_array(${u} -> 1) ELSE j.errors END,
            j.worker_id, j.created_at, COALESCE(j.finished_at, now())
     FROM ${schema}.jobs j
     WHERE j.id = ANY($1::bigint[])
     ON CONFLICT (job_id, attempt) DO NOTHING
     RETURNING id::text AS id, job_id::text AS job_id, queue, name`,
    [items.map((i) => i.jobId), JSON.stringify(byId)],
  );
}

export interface DeadLetterFilter {
  queues: readonly string[] | null;
  names: readonly string[] | null;
  /** true: only re-driven ones; false: only those not re-driven yet; null: both. */
  redriven: boolean | null;
}

/** A page of dead letters, newest first, after the cursor id (exclusive). */
export function deadLettersList(
  sql: SqlClient,
  schema: string,
  params: DeadLetterFilter & { before: string | null; limit: number },
): Promise<DeadLetterRow[]> {
  return run(
    sql,
    `SELECT ${COLUMNS} FROM ${schema}.dead_letters
     WHERE ($1::text[] IS NULL OR queue = ANY($1::text[]))
       AND ($2::text[] IS NULL OR name = ANY($2::text[]))
       AND ($3::boolean IS NULL OR (redriven_at IS NOT NULL) = $3::boolean)
       AND ($4::bigint IS NULL OR id < $4::bigint)
     ORDER BY id DESC
     LIMIT $5`,
    [params.queues, params.names, params.redriven, params.before, params.limit],
  );
}

export function deadLettersGet(sql: SqlClient, schema: string, ids: readonly string[]): Promise<DeadLetterRow[]> {
  return run(sql, `SELECT ${COLUMNS} FROM ${schema}.dead_letters WHERE id = ANY($1::bigint[]) ORDER BY id`, [ids]);
}

/**
 * Locks dead letters to re-drive, in the re-drive's transaction: by id (every given one, re-driven
 * or not, so the caller can say which), or the next `limit` not yet re-driven that match a filter.
 */
export function deadLettersLock(
  sql: SqlClient,
  schema: string,
  params: { ids: readonly string[] } | (DeadLetterFilter & { limit: number }),
): Promise<DeadLetterRow[]> {
  if ('ids' in params) {
    return run(sql, `SELECT ${COLUMNS} FROM ${schema}.dead_letters WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`, [params.ids]);
  }
  return run(
    sql,
    `SELECT ${COLUMNS} FROM ${schema}.dead_letters
     WHERE redriven_at IS NULL
       AND ($1::text[] IS NULL OR queue = ANY($1::text[]))
       AND ($2::text[] IS NULL OR name = ANY($2::text[]))
     ORDER BY id
     LIMIT $3
     FOR UPDATE SKIP LOCKED`,
    [params.queues, params.names, params.limit],
  );
}

/** Marks dead letters re-driven as the jobs `jobIds` (same order as `ids`). */
export function deadLettersMarkRedriven(
  sql: SqlClient,
  schema: string,
  params: { ids: readonly string[]; jobIds: readonly string[] },
): Promise<unknown[]> {
  return run(
    sql,
    `UPDATE ${schema}.dead_letters d SET redriven_at = now(), redriven_job_id = u.job_id
     FROM unnest($1::bigint[], $2::bigint[]) AS u(id, job_id) WHERE d.id = u.id`,
    [params.ids, params.jobIds],
  );
}

export function deadLettersDelete(sql: SqlClient, schema: string, ids: readonly string[]): Promise<Array<{ id: string }>> {
  return run(sql, `DELETE FROM ${schema}.dead_letters WHERE id = ANY($1::bigint[]) RETURNING id::text AS id`, [ids]);
}
