/**
 * Every statement of the pruner, and its migration. `schema` is the app's quoted schema
 * (`app.schema`); values travel as parameters. Job states are spliced in as literals (they come
 * from the fixed list below, never from users) so the partial index's predicate is provable from
 * the query text even under a generic prepared plan.
 */
import type { Docket, Migration, SqlClient } from '@docket/core';

type Sql = Docket['sql'];

export const PRUNABLE_STATES = ['succeeded', 'failed', 'cancelled'] as const;
export type PrunableState = (typeof PRUNABLE_STATES)[number];

const FINISHED = `('succeeded', 'failed', 'cancelled')`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'index on finished jobs by finish time',
    // Only finished rows are indexed, so the index costs nothing for pending/running rows and
    // candidate selection walks the oldest finished jobs first. IF NOT EXISTS: on a big table,
    // create it yourself first with CREATE INDEX CONCURRENTLY (see the README).
    up: ({ schema }) => `CREATE INDEX IF NOT EXISTS pruner_jobs_finished_idx ON ${schema}.jobs (finished_at, id) WHERE state IN ${FINISHED}`,
  },
];

export interface AgeRule {
  /** Lower bound of every age in the rule, in ms: lets the index scan start at the right place. */
  minAgeMs: number;
  /** Age for queues without their own (null: keep forever). */
  defaultAgeMs: number | null;
  /** Queues with their own age for this state (null: keep forever). */
  queues: readonly string[];
  ages: ReadonlyArray<number | null>;
}

/**
 * Locks (SKIP LOCKED, so two pruners split the work) up to `limit` jobs in `state` older than
 * their queue's age for that state, oldest first.
 */
export function expiredJobsLock(sql: SqlClient, schema: string, state: PrunableState, rule: AgeRule, limit: number): Promise<Array<{ id: string }>> {
  if (!PRUNABLE_STATES.includes(state)) throw new Error(`not a prunable state: ${state}`);
  return (sql as Sql).unsafe(
    `SELECT j.id::text AS id FROM ${schema}.jobs j
     WHERE j.state = '${state}'
       AND j.finished_at < now() - $1::float8 * interval '1 millisecond'
       AND CASE WHEN j.queue = ANY($2::text[])
             THEN j.finished_at < now() - (SELECT o.age FROM unnest($2::text[], $3::float8[]) AS o(queue, age) WHERE o.queue = j.queue) * interval '1 millisecond'
             ELSE $4::float8 IS NOT NULL AND j.finished_at < now() - $4::float8 * interval '1 millisecond'
           END
     ORDER BY j.finished_at, j.id
     LIMIT $5
     FOR UPDATE SKIP LOCKED`,
    [rule.minAgeMs, rule.queues as string[], rule.ages as number[], rule.defaultAgeMs, limit] as never[],
  ) as unknown as Promise<Array<{ id: string }>>;
}

export interface KeepRule {
  /** Count the finished jobs of this queue; null: of every queue not in `except`. */
  queue: string | null;
  except: readonly string[];
  keep: number;
}

/**
 * Locks up to `limit` finished jobs beyond the newest `keep` of the rule's queue(s), oldest
 * first. The cutoff (the newest job that goes) is found in the same statement, without locks.
 */
export function surplusJobsLock(sql: SqlClient, schema: string, rule: KeepRule, limit: number): Promise<Array<{ id: string }>> {
  const scope = rule.queue === null ? `NOT (queue = ANY($1::text[]))` : `queue = $1::text`;
  return (sql as Sql).unsafe(
    `WITH cutoff AS (
       SELECT finished_at, id FROM ${schema}.jobs
       WHERE ${scope} AND state IN ${FINISHED}
       ORDER BY finished_at DESC, id DESC
       OFFSET $2 LIMIT 1
     )
     SELECT j.id::text AS id FROM ${schema}.jobs j, cutoff c
     WHERE ${scope.replace('queue', 'j.queue')} AND j.state IN ${FINISHED}
       AND j.finished_at <= c.finished_at AND (j.finished_at, j.id) <= (c.finished_at, c.id)
     ORDER BY j.finished_at, j.id
     LIMIT $3
     FOR UPDATE OF j SKIP LOCKED`,
    [rule.queue ?? (rule.except as string[]), rule.keep, limit] as never[],
  ) as unknown as Promise<Array<{ id: string }>>;
}
