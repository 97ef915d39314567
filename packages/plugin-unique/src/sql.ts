/**
 * Every statement plugin-unique runs, and its migrations. `schema` is the app's quoted schema
 * (`app.schema`), spliced into the text; values always travel as parameters.
 */
import type { Migration, SqlClient } from '@docket/core';

/** The states in which a job holds its key. Keep in sync with the index below. */
export const HOLDING_STATES = ['pending', 'running', 'waiting'] as const;
const holding = HOLDING_STATES.map((s) => `'${s}'`).join(', ');

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'unique key columns and indexes',
    up: ({ schema }) => `
      ALTER TABLE ${schema}.jobs ADD COLUMN unique_key text, ADD COLUMN unique_window timestamptz;
      -- The rule itself: at most one job per key that has not finished (pending, running or waiting).
      CREATE UNIQUE INDEX unique_jobs_live_idx ON ${schema}.jobs (unique_key)
        WHERE unique_key IS NOT NULL AND state IN (${holding});
      -- Throttle: at most one job per key and window, whatever its state (cancelled jobs excepted).
      CREATE UNIQUE INDEX unique_jobs_window_idx ON ${schema}.jobs (unique_key, unique_window)
        WHERE unique_window IS NOT NULL AND state <> 'cancelled';
      -- Naming the job a push collided with after it finished, and listing a key's jobs.
      CREATE INDEX unique_jobs_key_idx ON ${schema}.jobs (unique_key, id) WHERE unique_key IS NOT NULL;
    `,
  },
]);

function run<T>(sql: SqlClient, text: string, params: unknown[]): Promise<T[]> {
  return sql.unsafe(text, params as never[]) as unknown as Promise<T[]>;
}

/**
 * The database clock (the push transaction's `now()`, which is also the new jobs' `created_at`).
 * Read as epoch milliseconds in text: the push may run in a transaction another library owns,
 * whose driver parses a timestamptz its own way (a Date, a string).
 */
export async function clockRead(sql: SqlClient): Promise<Date> {
  const [row] = await run<{ now_ms: string }>(sql, 'SELECT floor(extract(epoch FROM now()) * 1000)::bigint::text AS now_ms', []);
  if (!row) throw new Error('SELECT now() returned no row.');
  return new Date(Number(row.now_ms));
}

export interface HolderRow {
  /** 1-based position in the input. */
  ord: string;
  id: string | null;
  state: string | null;
}

/**
 * For each (key, window) a push collided on, the job it collided with: the job that holds the key
 * now; else (throttled pushes) the job of the same window; else the newest job with the key — the
 * holder that finished between the skipped insert and this lookup. One row per input, in order.
 */
export function holdersFind(
  sql: SqlClient,
  schema: string,
  params: { keys: readonly string[]; windows: ReadonlyArray<string | null> },
): Promise<HolderRow[]> {
  return run(
    sql,
    `SELECT k.ord::text AS ord,
            COALESCE(live.id, win.id, last.id)::text AS id,
            COALESCE(live.state, win.state, last.state) AS state
     FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS k(key, win, ord)
     LEFT JOIN LATERAL (
       SELECT j.id, j.state FROM ${schema}.jobs j
       WHERE j.unique_key = k.key AND j.state IN (${holding}) LIMIT 1
     ) live ON true
     LEFT JOIN LATERAL (
       SELECT j.id, j.state FROM ${schema}.jobs j
       WHERE live.id IS NULL AND k.win IS NOT NULL AND j.unique_key = k.key AND j.unique_window = k.win AND j.state <> 'cancelled'
       LIMIT 1
     ) win ON true
     LEFT JOIN LATERAL (
       SELECT j.id, j.state FROM ${schema}.jobs j
       WHERE live.id IS NULL AND win.id IS NULL AND j.unique_key = k.key
       ORDER BY j.id DESC LIMIT 1
     ) last ON true
     ORDER BY k.ord`,
    [params.keys, params.windows],
  );
}

/**
 * Debounce: gives pending jobs new arguments and a new run time (`now() + delay`). A job that
 * started meanwhile is left as it is (the `state = 'pending'` check is re-evaluated after any lock
 * wait). Returns the ids it changed.
 */
export function pendingJobsDebounce(
  sql: SqlClient,
  schema: string,
  params: { ids: readonly string[]; args: readonly string[]; delaysMs: readonly number[] },
): Promise<Array<{ id: string }>> {
  return run(
    sql,
    `UPDATE ${schema}.jobs j
     SET args = u.args::jsonb, scheduled_at = now() + u.delay_ms * interval '1 millisecond'
     FROM unnest($1::bigint[], $2::text[], $3::float8[]) AS u(id, args, delay_ms)
     WHERE j.id = u.id AND j.state = 'pending'
     RETURNING j.id::text AS id`,
    [params.ids, params.args, params.delaysMs],
  );
}
