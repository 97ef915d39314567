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
      -- key's best due jobs in claim order; and the jobs without a key (concurrency_key IS NULL is
      -- an index condition here, in claim order), which a governed queue claims beside the keyed
      -- ones — without them in this index, finding them among many keyed jobs is a scan of the queue.
      CREATE INDEX concurrency_pending_idx ON ${schema}.jobs (queue, concurrency_key, priority DESC, scheduled_at, id)
        WHERE state = 'pending';
      -- Capacity in use: running jobs per queue (the global cap) and per key (per-key limits).
      -- Running rows are few (at most the workers' slots and prefetch), so counting them is cheap.
      CREATE INDEX concurrency_running_idx ON ${schema}.jobs (queue, concurrency_key) WHERE state = 'running';
      -- The claims of one queue take turns (a transaction-scoped advisory lock on a 64-bit hash of
      -- schema and queue; a collision only makes two queues' claims take turns), and each counts
      -- the running jobs in a statement that starts after the lock is granted, so it sees every
      -- claim that committed before. VOLATILE: each statement in it takes a fresh snapshot.
      CREATE FUNCTION ${schema}.concurrency_claim_usage(lock_name text, queue_name text, by_key boolean, up_to int)
      RETURNS TABLE (key text, n int) LANGUAGE plpgsql VOLATILE AS $fn$
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended(lock_name, 0));
        IF by_key THEN
          RETURN QUERY SELECT j.concurrency_key, count(*)::int FROM ${schema}.jobs j
            WHERE j.state = 'running' AND j.queue = queue_name GROUP BY j.concurrency_key;
        ELSE
          RETURN QUERY SELECT NULL::text, count(*)::int FROM (
            SELECT 1 FROM ${schema}.jobs j WHERE j.state = 'running' AND j.queue = queue_name LIMIT up_to) r;
        END IF;
      END
      $fn$;
    `,
  },
]);

function run<T>(sql: SqlClient, text: string, params: unknown[]): Promise<T[]> {
  return sql.unsafe(text, params as never[]) as unknown as Promise<T[]>;
}

export interface UsageRow {
  /** NULL for the queue's running jobs without a key (or for the whole count, when not by key). */
  key: string | null;
  n: number;
}

/**
 * In the claim's transaction: waits for the queue's claim lock, then counts its running jobs —
 * by key, or in all up to `upTo` (a cap needs no more). One round trip: the function takes the
 * lock first and counts in a statement of its own, which (a volatile function, READ COMMITTED)
 * sees every claim that committed before the lock was granted.
 */
export function claimUsageLock(sql: SqlClient, schema: string, params: { queue: string; byKey: boolean; upTo: number }): Promise<UsageRow[]> {
  return run(sql, `SELECT key, n FROM ${schema}.concurrency_claim_usage($1, $2, $3, $4)`, [
    `docket-concurrency:${schema}:${params.queue}`,
    params.queue,
    params.byKey,
    params.upTo,
  ]);
}

/** Running jobs of a queue per concurrency key (one row for the jobs without a key), without the lock. */
export function usageRead(sql: SqlClient, schema: string, params: { queue: string }): Promise<UsageRow[]> {
  return run(
    sql,
    `SELECT concurrency_key AS key, count(*)::int AS n FROM ${schema}.jobs WHERE state = 'running' AND queue = $1 GROUP BY concurrency_key`,
    [params.queue],
  );
}
