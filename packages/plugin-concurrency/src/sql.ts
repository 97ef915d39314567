/**
 * Every statement plugin-concurrency runs, and its migration. `schema` is the app's quoted schema
 * (`app.schema`), spliced into the text; values always travel as parameters.
 */
import type { Migration, SqlClient } from '@docket/core';

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'concurrency key column and indexes',
    up: ({ schema }) => `
      ALTER TABLE ${schema}.jobs ADD COLUMN concurrency_key text;
      -- The per-key claim: a loose index scan over the distinct keys with pending jobs, then each
      -- key's best due jobs in claim order. Keyed rows only: jobs without a key are claimed through
      -- the core's fetch index and cost nothing here.
      CREATE INDEX concurrency_pending_idx ON ${schema}.jobs (queue, concurrency_key, priority DESC, scheduled_at, id)
        WHERE state = 'pending' AND concurrency_key IS NOT NULL;
      -- Capacity in use: running jobs per queue (the global cap) and per key (per-key limits).
      -- Running rows are few (at most the workers' slots and prefetch), so counting them is cheap.
      CREATE INDEX concurrency_running_idx ON ${schema}.jobs (queue, concurrency_key) WHERE state = 'running';
    `,
  },
]);

function run<T>(sql: SqlClient, text: string, params: unknown[]): Promise<T[]> {
  return sql.unsafe(text, params as never[]) as unknown as Promise<T[]>;
}

/**
 * Makes the claims of one queue take turns until their transaction ends (every worker, every
 * runner), so that each counts the running jobs after the previous claim committed. 64-bit hash of
 * the schema and queue: a collision only makes two queues' claims take turns.
 */
export async function queueClaimLock(sql: SqlClient, schema: string, params: { queue: string }): Promise<void> {
  await run(sql, 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`docket-concurrency:${schema}:${params.queue}`]);
}

/** Running jobs of a queue, counted up to `upTo` (a cap needs no more). */
export async function runningCount(sql: SqlClient, schema: string, params: { queue: string; upTo: number }): Promise<number> {
  const [row] = await run<{ n: number }>(
    sql,
    `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${schema}.jobs WHERE state = 'running' AND queue = $1 LIMIT $2) r`,
    [params.queue, params.upTo],
  );
  return row?.n ?? 0;
}

export interface RunningByKeyRow {
  /** NULL for the queue's running jobs without a key. */
  key: string | null;
  n: number;
}

/** Running jobs of a queue per concurrency key (one row for the jobs without a key). */
export function runningByKey(sql: SqlClient, schema: string, params: { queue: string }): Promise<RunningByKeyRow[]> {
  return run(
    sql,
    `SELECT concurrency_key AS key, count(*)::int AS n FROM ${schema}.jobs WHERE state = 'running' AND queue = $1 GROUP BY concurrency_key`,
    [params.queue],
  );
}
