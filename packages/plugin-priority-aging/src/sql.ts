/**
 * Every statement plugin-priority-aging runs, and its migration. `schema` is the app's quoted
 * schema (`app.schema`), spliced into the text; values always travel as parameters.
 */
import type { Docket, Migration, SqlClient } from '@docket/core';

type Sql = Docket['sql'];

/** The `jobs` column that marks a job as aging and holds where its next step is counted from. */
export const AGING_COLUMN = 'aging_from';
/**
 * What a job of an aging queue is pushed with: "count from its run time" — a time before any run
 * time, so GREATEST below takes the run time. (Not '-infinity': the driver sends timestamps as
 * JavaScript Dates, which have no infinity.)
 */
export const COUNT_FROM_RUN_TIME = new Date('0001-01-01T00:00:00.000Z');

/**
 * When a job's next step is due, less one step: the later of its `aging_from` and its run time
 * (`scheduled_at`). A retry moves the run time on, so its wait starts over from there (keeping the
 * priority it gained); a job at its ceiling has `aging_from` 'infinity' and is never due again.
 */
const SINCE = `GREATEST(j.${AGING_COLUMN}, j.scheduled_at)`;

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'aging column and the index of jobs by when they age',
    up: ({ schema }) => `
      ALTER TABLE ${schema}.jobs ADD COLUMN ${AGING_COLUMN} timestamptz;
      -- Only pending jobs of aging queues are in it (others have ${AGING_COLUMN} NULL), in the order
      -- their next step comes due: a run reads just the jobs it raises.
      CREATE INDEX priority_aging_due_idx ON ${schema}.jobs (queue, (GREATEST(${AGING_COLUMN}, scheduled_at)))
        WHERE state = 'pending' AND ${AGING_COLUMN} IS NOT NULL;
    `,
  },
]);

function run<T>(sql: SqlClient, text: string, params: unknown[]): Promise<T[]> {
  return (sql as Sql).unsafe(text, params as never[]) as unknown as Promise<T[]>;
}

/**
 * Raises up to `limit` pending jobs of `queue` whose next step is due, oldest first: each gets
 * +1 per whole `everyMs` waited since its step was last counted, never above `maxPriority` and
 * never lowered, and the remainder is kept (its next step counts from the last whole step). Jobs
 * another transaction holds (a claim) are skipped. Idempotent: a job raised here is not due again
 * until another `everyMs` has passed. Returns how many jobs it raised.
 */
export async function dueJobsRaise(
  sql: SqlClient,
  schema: string,
  params: { queue: string; everyMs: number; maxPriority: number; limit: number },
): Promise<number> {
  const [row] = await run<{ n: number }>(
    sql,
    `WITH due AS (
       SELECT j.id, ${SINCE} AS since,
              floor(extract(epoch FROM now() - ${SINCE}) * 1000 / $2::float8)::bigint AS steps
       FROM ${schema}.jobs j
       WHERE j.queue = $1 AND j.state = 'pending' AND j.${AGING_COLUMN} IS NOT NULL
         AND ${SINCE} <= now() - $2::float8 * interval '1 millisecond'
       ORDER BY ${SINCE}
       LIMIT $4
       FOR UPDATE OF j SKIP LOCKED
     ),
     raised AS (
       UPDATE ${schema}.jobs j SET
         priority = GREATEST(j.priority, LEAST($3::bigint, j.priority + d.steps))::int,
         ${AGING_COLUMN} = CASE WHEN j.priority + d.steps >= $3::bigint THEN 'infinity'::timestamptz
                                ELSE d.since + d.steps * $2::float8 * interval '1 millisecond' END
       FROM due d
       WHERE j.id = d.id
       RETURNING 1
     )
     SELECT count(*)::int AS n FROM raised`,
    [params.queue, params.everyMs, params.maxPriority, params.limit],
  );
  return row?.n ?? 0;
}
