/**
 * Every statement of the recovery plugin, and its migrations. `schema` is the app's quoted schema
 * (`app.schema`), spliced into the text; values always travel as parameters.
 */
import type { Docket, Migration, SqlClient } from '@docket/core';

type Sql = Docket['sql'];

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'jobs.recovery_count',
    // Adding a NOT NULL column with a constant default is a catalogue-only change (no rewrite).
    up: ({ schema }) => `ALTER TABLE ${schema}.jobs ADD COLUMN IF NOT EXISTS recovery_count integer NOT NULL DEFAULT 0`,
  },
];

export type LossReason = 'worker-missing' | 'worker-dead' | 'timeout' | 'max-runtime';

export interface LostJobRow {
  id: string;
  queue: string;
  name: string;
  attempt: number;
  worker_id: string | null;
  recovery_count: number;
  cancel_requested: boolean;
  reason: LossReason;
  /** Seconds since the worker's last heartbeat (null when it has no row). */
  heartbeat_age_s: number | null;
  /** Seconds since the attempt started. */
  runtime_s: number;
  timeout_ms: number | null;
}

export interface LostJobsParams {
  /** The floor of the dead-worker margin, in ms (see README). */
  deadAfterMs: number;
  /** How far past `limits.timeoutMs` a running attempt may go before it counts as stuck. */
  stuckMarginMs: number;
  /** Any attempt older than this counts as stuck; null turns the rule off. */
  maxRuntimeMs: number | null;
  limit: number;
  /**
   * Silence before this time (database clock) does not count: the sweeper could not reach the
   * database until then, so it cannot tell who else could. Null: every second of silence counts.
   */
  reachableSince: Date | null;
}

/**
 * Locks (FOR UPDATE SKIP LOCKED) up to `limit` running jobs that are lost: their worker has no
 * heartbeat row, or its last heartbeat is older than max(3 × its heartbeat interval, deadAfterMs);
 * or the attempt runs longer than its time limit plus the margin, or than maxRuntimeMs.
 *
 * Every predicate is on the job row itself or a subquery correlated with it, never a join: when a
 * concurrent sweep (or a completion, or a new fetch) changed a row after this statement's snapshot,
 * PostgreSQL re-checks these predicates against the new row version before locking it, so a job is
 * recovered once. The orphan rule also asks the attempt to be older than `deadAfterMs`, so an
 * attempt that a worker started just after coming back from a pause (before its next heartbeat)
 * is not taken. Silence is counted from `reachableSince` at the earliest (GREATEST ignores a NULL).
 */
export function lostJobsLock(sql: SqlClient, schema: string, p: LostJobsParams): Promise<LostJobRow[]> {
  return (sql as Sql).unsafe(
    `SELECT j.id::text AS id, j.queue, j.name, j.attempt, j.worker_id, j.recovery_count,
       j.cancel_requested_at IS NOT NULL AS cancel_requested,
       CASE
         WHEN NOT EXISTS (SELECT 1 FROM ${schema}.workers w WHERE w.id = j.worker_id) THEN 'worker-missing'
         WHEN NOT ${liveWorker(schema)} THEN 'worker-dead'
         WHEN ${TIMED_OUT} THEN 'timeout'
         ELSE 'max-runtime'
       END AS reason,
       (SELECT extract(epoch FROM now() - w.last_heartbeat_at)::float8 FROM ${schema}.workers w WHERE w.id = j.worker_id) AS heartbeat_age_s,
       extract(epoch FROM now() - j.started_at)::float8 AS runtime_s,
       CASE WHEN jsonb_typeof(j.limits->'timeoutMs') = 'number' THEN (j.limits->>'timeoutMs')::float8 END AS timeout_ms
     FROM ${schema}.jobs j
     WHERE j.state = 'running'
       AND (
         (GREATEST(j.started_at, $5::timestamptz) < now() - $1::float8 * interval '1 millisecond' AND NOT ${liveWorker(schema)})
         OR ${TIMED_OUT}
         OR ($3::float8 IS NOT NULL AND j.started_at < now() - $3::float8 * interval '1 millisecond')
       )
     ORDER BY j.id
     LIMIT $4
     FOR UPDATE OF j SKIP LOCKED`,
    [p.deadAfterMs, p.stuckMarginMs, p.maxRuntimeMs, p.limit, p.reachableSince],
  ) as unknown as Promise<LostJobRow[]>;
}

/** A heartbeat row for the job's worker that is recent enough ($1 = deadAfterMs, $5 = reachableSince). */
const liveWorker = (schema: string) => `EXISTS (
  SELECT 1 FROM ${schema}.workers w WHERE w.id = j.worker_id
    AND GREATEST(w.last_heartbeat_at, $5::timestamptz) >= now() - GREATEST(3 * w.heartbeat_interval_ms, $1::float8) * interval '1 millisecond')`;
/** Over its own time limit plus the margin ($2 = stuckMarginMs). */
const TIMED_OUT = `(jsonb_typeof(j.limits->'timeoutMs') = 'number'
  AND j.started_at < now() - ((j.limits->>'timeoutMs')::float8 + $2::float8) * interval '1 millisecond')`;

export interface LostJobUpdate {
  id: string;
  attempt: number;
  workerId: string | null;
  state: 'pending' | 'failed' | 'cancelled';
  /** A JobError as JSON text, appended to `errors`. */
  error: string;
}

/**
 * Writes the decisions for rows locked by `lostJobsLock` in the same transaction: back to
 * `pending` (worker and start cleared, the attempt number kept, so the next fetch takes the next
 * one and the lost attempt's late completion is fenced out), or `failed`/`cancelled` (finished
 * now). Counts the recovery either way. Fenced again on state, attempt and worker.
 */
export function lostJobsUpdate(
  sql: SqlClient,
  schema: string,
  rows: readonly LostJobUpdate[],
): Promise<Array<{ id: string; state: string; queue: string; recovery_count: number }>> {
  return (sql as Sql).unsafe(
    `UPDATE ${schema}.jobs j SET
       state = u.state,
       recovery_count = j.recovery_count + 1,
       worker_id = CASE WHEN u.state = 'pending' THEN NULL ELSE j.worker_id END,
       started_at = CASE WHEN u.state = 'pending' THEN NULL ELSE j.started_at END,
       finished_at = CASE WHEN u.state = 'pending' THEN NULL ELSE now() END,
       errors = j.errors || jsonb_build_array(u.error::jsonb)
     FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[]) AS u(id, attempt, worker_id, state, error)
     WHERE j.id = u.id AND j.state = 'running' AND j.attempt = u.attempt AND j.worker_id IS NOT DISTINCT FROM u.worker_id
     RETURNING j.id::text AS id, j.state, j.queue, j.recovery_count`,
    [rows.map((r) => r.id), rows.map((r) => r.attempt), rows.map((r) => r.workerId), rows.map((r) => r.state), rows.map((r) => r.error)] as never[],
  ) as unknown as Promise<Array<{ id: string; state: string; queue: string; recovery_count: number }>>;
}

/** Deletes heartbeat rows of dead workers (the margin and `reachableSince` as in `lostJobsLock`); returns their ids. */
export function deadWorkersDelete(sql: SqlClient, schema: string, deadAfterMs: number, reachableSince: Date | null): Promise<Array<{ id: string }>> {
  return (sql as Sql).unsafe(
    `DELETE FROM ${schema}.workers w
     WHERE GREATEST(w.last_heartbeat_at, $2::timestamptz) < now() - GREATEST(3 * w.heartbeat_interval_ms, $1::float8) * interval '1 millisecond'
     RETURNING w.id`,
    [deadAfterMs, reachableSince] as never[],
  ) as unknown as Promise<Array<{ id: string }>>;
}

/** How many times each job was recovered (for tooling and tests). */
export function recoveryCountsGet(sql: SqlClient, schema: string, ids: readonly string[]): Promise<Array<{ id: string; recovery_count: number }>> {
  return (sql as Sql).unsafe(`SELECT id::text AS id, recovery_count FROM ${schema}.jobs WHERE id = ANY($1::bigint[])`, [
    ids as string[],
  ]) as unknown as Promise<Array<{ id: string; recovery_count: number }>>;
}
