/**
 * Every statement of the expiry plugin, and its migrations. `schema` is the app's quoted schema
 * (`app.schema`), spliced into the text; values always travel as parameters.
 */
import type { Docket, Migration, SqlClient } from '@docket/core';

type Sql = Docket['sql'];

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'jobs.expires_at and the index of pending jobs that expire',
    up: ({ schema }) => `
      -- When the job must have started by: the earlier of its expiry and its deadline. Nullable, no
      -- default: a catalogue change, and jobs that do not expire store nothing.
      ALTER TABLE ${schema}.jobs ADD COLUMN IF NOT EXISTS expires_at timestamptz;
      -- The sweep's only index: pending jobs that expire, soonest first. A job without an expiry never
      -- enters it, nor does a job once it runs or ends.
      CREATE INDEX IF NOT EXISTS expiry_pending_idx ON ${schema}.jobs (expires_at)
        WHERE expires_at IS NOT NULL AND state = 'pending';
    `,
  },
]);

function run<T>(sql: SqlClient, text: string, params: unknown[]): Promise<T[]> {
  return (sql as Sql).unsafe(text, params as never[]) as unknown as Promise<T[]>;
}

/** The push transaction's time (`now()`, as the core measures `withDelay`), as epoch milliseconds (text: any driver parses it the same way). */
export async function clockRead(sql: SqlClient): Promise<number> {
  const [row] = await run<{ ms: string }>(sql, `SELECT (extract(epoch FROM now()) * 1000)::bigint::text AS ms`, []);
  if (!row) throw new Error('reading the database clock returned no row.');
  return Number(row.ms);
}

/** Whether some pending job has expired (one probe of expiry_pending_idx; no transaction, no lock). */
export async function expiredJobsExist(sql: SqlClient, schema: string): Promise<boolean> {
  const rows = await run<{ one: number }>(
    sql,
    `SELECT 1 AS one FROM ${schema}.jobs WHERE expires_at IS NOT NULL AND state = 'pending' AND expires_at <= now() LIMIT 1`,
    [],
  );
  return rows.length > 0;
}

export interface ExpiredJobRow {
  id: string;
  queue: string;
  name: string;
  expires_at: Date;
}

/**
 * Ends up to `limit` pending jobs whose `expires_at` has passed: `cancelled`, finished now, with a
 * DOCKET_EXPIRY_EXPIRED entry appended to their errors. Locked with SKIP LOCKED (a job a worker is
 * claiming right now is its to settle) and re-checked on the row after any wait (`state =
 * 'pending'`), so a job is ended once however many sweeps run. Found through expiry_pending_idx.
 */
export function expiredJobsCancel(
  sql: SqlClient,
  schema: string,
  params: { limit: number; code: string; errorName: string },
): Promise<ExpiredJobRow[]> {
  return run(
    sql,
    `WITH due AS (
       SELECT id FROM ${schema}.jobs
       WHERE expires_at IS NOT NULL AND state = 'pending' AND expires_at <= now()
       ORDER BY expires_at
       LIMIT $1
       FOR UPDATE SKIP LOCKED
     )
     UPDATE ${schema}.jobs j SET
       state = 'cancelled',
       finished_at = now(),
       errors = j.errors || jsonb_build_array(jsonb_build_object(
         'attempt', j.attempt,
         'name', $3::text,
         'code', $2::text,
         'message', format('Job ''%s'' (%s) did not start before it expired at %s, so it will not run%s.',
                           j.name, j.id, to_char(j.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                           CASE WHEN j.attempt > 0 THEN ' again' ELSE '' END),
         'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
     WHERE j.id = ANY(ARRAY(SELECT id FROM due)) AND j.state = 'pending'
     RETURNING j.id::text AS id, j.queue, j.name, j.expires_at`,
    [params.limit, params.code, params.errorName],
  );
}

/** Appends `error` (JSON text) to the errors of a job whose row the settle transaction holds. */
export function jobErrorAppend(sql: SqlClient, schema: string, params: { id: string; error: string }): Promise<unknown[]> {
  return run(sql, `UPDATE ${schema}.jobs SET errors = errors || jsonb_build_array($2::text::jsonb) WHERE id = $1::bigint`, [params.id, params.error]);
}
