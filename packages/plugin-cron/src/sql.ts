/**
 * Every statement of the cron plugin. Two tables in the app's schema:
 *   cron_schedules  one row per schedule, with `next_fire_at`: the first scheduled time not yet decided
 *   cron_fires      one row per decided scheduled time, keyed (schedule, fire_at): the unique key that
 *                   makes each time fire once, however many workers believe they are primary
 */
import type { Migration, SqlClient } from '@docket/core';

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'cron schedules and fires',
    up: ({ schema }) => `
      CREATE TABLE ${schema}.cron_schedules (
        name          text PRIMARY KEY,
        expression    text NOT NULL,
        timezone      text NOT NULL,
        job_name      text NOT NULL,
        queue         text NOT NULL,
        args          jsonb NOT NULL,
        priority      integer NOT NULL,
        max_attempts  integer NOT NULL,
        limits        jsonb NOT NULL,
        meta          jsonb NOT NULL,
        extensions    jsonb NOT NULL,
        missed        text NOT NULL CHECK (missed IN ('skip', 'runOnce')),
        overlap       boolean NOT NULL,
        next_fire_at  timestamptz NOT NULL,
        last_fire_at  timestamptz,
        last_job_id   bigint,
        created_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX cron_schedules_due_idx ON ${schema}.cron_schedules (next_fire_at);

      CREATE TABLE ${schema}.cron_fires (
        schedule    text NOT NULL REFERENCES ${schema}.cron_schedules (name) ON DELETE CASCADE,
        fire_at     timestamptz NOT NULL,
        -- The job pushed for this time (NULL when the time was skipped).
        job_id      bigint,
        skipped     text CHECK (skipped IN ('overlap')),
        worker_id   text,
        -- The primary term of the worker that decided (NULL when nothing elects).
        term        text,
        created_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (schedule, fire_at)
      );
      CREATE INDEX cron_fires_fire_at_idx ON ${schema}.cron_fires (fire_at);
    `,
  },
]);

export interface ScheduleRow {
  name: string;
  expression: string;
  timezone: string;
  job_name: string;
  queue: string;
  args: unknown;
  priority: number;
  max_attempts: number;
  limits: Record<string, unknown>;
  meta: Record<string, unknown>;
  extensions: Record<string, unknown>;
  missed: 'skip' | 'runOnce';
  overlap: boolean;
  next_fire_at: Date;
  last_fire_at: Date | null;
  last_job_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface ScheduleWrite {
  name: string;
  expression: string;
  timezone: string;
  jobName: string;
  queue: string;
  /** JSON text. */
  args: string;
  priority: number;
  maxAttempts: number;
  limits: string;
  meta: string;
  extensions: string;
  missed: 'skip' | 'runOnce';
  overlap: boolean;
  /** Used when the schedule is new or its expression or timezone changed; otherwise the cursor is kept. */
  nextFireAt: Date;
}

const columns = (p = '') =>
  `${p}name, ${p}expression, ${p}timezone, ${p}job_name, ${p}queue, ${p}args, ${p}priority, ${p}max_attempts, ${p}limits, ` +
  `${p}meta, ${p}extensions, ${p}missed, ${p}overlap, ${p}next_fire_at, ${p}last_fire_at, ${p}last_job_id::text AS last_job_id, ` +
  `${p}created_at, ${p}updated_at`;
const COLUMNS = columns();

/** The database clock. */
export async function clockNow(sql: SqlClient): Promise<Date> {
  const [row] = await sql.unsafe<Array<{ now: Date }>>(`SELECT now() AS now`);
  if (!row) throw new Error('SELECT now() returned no row.');
  return row.now;
}

/** Creates or updates a schedule; its cursor moves only when the expression or timezone changed. */
export async function scheduleUpsert(sql: SqlClient, schema: string, s: ScheduleWrite): Promise<ScheduleRow> {
  const rows = await sql.unsafe<ScheduleRow[]>(
    `INSERT INTO ${schema}.cron_schedules AS s
       (name, expression, timezone, job_name, queue, args, priority, max_attempts, limits, meta, extensions, missed, overlap, next_fire_at)
     VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9::text::jsonb, $10::text::jsonb, $11::text::jsonb, $12, $13, $14)
     ON CONFLICT (name) DO UPDATE SET
       expression   = excluded.expression,
       timezone     = excluded.timezone,
       job_name     = excluded.job_name,
       queue        = excluded.queue,
       args         = excluded.args,
       priority     = excluded.priority,
       max_attempts = excluded.max_attempts,
       limits       = excluded.limits,
       meta         = excluded.meta,
       extensions   = excluded.extensions,
       missed       = excluded.missed,
       overlap      = excluded.overlap,
       next_fire_at = CASE WHEN (s.expression, s.timezone) = (excluded.expression, excluded.timezone)
                           THEN s.next_fire_at ELSE excluded.next_fire_at END,
       updated_at   = CASE WHEN (s.expression, s.timezone, s.job_name, s.queue, s.args, s.priority, s.max_attempts,
                                 s.limits, s.meta, s.extensions, s.missed, s.overlap)
                             IS DISTINCT FROM
                                (excluded.expression, excluded.timezone, excluded.job_name, excluded.queue, excluded.args,
                                 excluded.priority, excluded.max_attempts, excluded.limits, excluded.meta, excluded.extensions,
                                 excluded.missed, excluded.overlap)
                           THEN now() ELSE s.updated_at END
     RETURNING ${COLUMNS}`,
    [
      s.name,
      s.expression,
      s.timezone,
      s.jobName,
      s.queue,
      s.args,
      s.priority,
      s.maxAttempts,
      s.limits,
      s.meta,
      s.extensions,
      s.missed,
      s.overlap,
      s.nextFireAt,
    ],
  );
  const [row] = rows;
  if (!row) throw new Error(`Upserting cron schedule '${s.name}' returned no row.`);
  return row;
}

/** Deletes a schedule and its fire history; true when it existed. */
export async function scheduleDelete(sql: SqlClient, schema: string, name: string): Promise<boolean> {
  const rows = await sql.unsafe(`DELETE FROM ${schema}.cron_schedules WHERE name = $1 RETURNING name`, [name]);
  return rows.length > 0;
}

export async function scheduleList(sql: SqlClient, schema: string): Promise<ScheduleRow[]> {
  return sql.unsafe<ScheduleRow[]>(`SELECT ${COLUMNS} FROM ${schema}.cron_schedules ORDER BY name`);
}

/** Names of schedules with a time to decide before `now() + lookaheadMs`, soonest first. */
export async function schedulesDue(sql: SqlClient, schema: string, params: { lookaheadMs: number; limit: number }): Promise<string[]> {
  const rows = await sql.unsafe<Array<{ name: string }>>(
    `SELECT name FROM ${schema}.cron_schedules
      WHERE next_fire_at <= now() + $1::int * interval '1 millisecond'
      ORDER BY next_fire_at LIMIT $2`,
    [params.lookaheadMs, params.limit],
  );
  return rows.map((r) => r.name);
}

export type LockedSchedule = ScheduleRow & {
  /** The transaction's database time. */
  now: Date;
  /** State of the job of the latest fire (null when none, or when it was deleted). */
  last_job_state: string | null;
};

/**
 * Locks a due schedule for this transaction (skipping it when another worker holds it), with the
 * state of its latest job and the database time.
 */
export async function scheduleLockDue(sql: SqlClient, schema: string, params: { name: string; lookaheadMs: number }): Promise<LockedSchedule | null> {
  const rows = await sql.unsafe<LockedSchedule[]>(
    `SELECT ${columns('s.')}, now() AS now,
            (SELECT j.state FROM ${schema}.jobs j WHERE j.id = s.last_job_id) AS last_job_state
       FROM ${schema}.cron_schedules s
      WHERE s.name = $1 AND s.next_fire_at <= now() + $2::int * interval '1 millisecond'
      FOR UPDATE OF s SKIP LOCKED`,
    [params.name, params.lookaheadMs],
  );
  return rows[0] ?? null;
}

/** Locks a schedule for this transaction (waiting for a firing run that holds it), with its latest job's state and the database time; null when there is none. */
export async function scheduleLock(sql: SqlClient, schema: string, params: { name: string }): Promise<LockedSchedule | null> {
  const rows = await sql.unsafe<LockedSchedule[]>(
    `SELECT ${columns('s.')}, now() AS now,
            (SELECT j.state FROM ${schema}.jobs j WHERE j.id = s.last_job_id) AS last_job_state
       FROM ${schema}.cron_schedules s
      WHERE s.name = $1
      FOR UPDATE OF s`,
    [params.name],
  );
  return rows[0] ?? null;
}

/**
 * Records the decision for one scheduled time. Answers false when the time was already decided
 * (the unique key (schedule, fire_at)): the caller must then not push.
 */
export async function fireInsert(
  sql: SqlClient,
  schema: string,
  params: { schedule: string; fireAt: Date; skipped: 'overlap' | null; workerId: string; term: string | null },
): Promise<boolean> {
  const rows = await sql.unsafe(
    `INSERT INTO ${schema}.cron_fires (schedule, fire_at, skipped, worker_id, term)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (schedule, fire_at) DO NOTHING
     RETURNING fire_at`,
    [params.schedule, params.fireAt, params.skipped, params.workerId, params.term],
  );
  return rows.length > 0;
}

/** The job and its state of an already decided time (after fireInsert answered false). */
export async function fireRead(
  sql: SqlClient,
  schema: string,
  params: { schedule: string; fireAt: Date },
): Promise<{ job_id: string | null; state: string | null } | null> {
  const rows = await sql.unsafe<Array<{ job_id: string | null; state: string | null }>>(
    `SELECT f.job_id::text AS job_id, j.state
       FROM ${schema}.cron_fires f LEFT JOIN ${schema}.jobs j ON j.id = f.job_id
      WHERE f.schedule = $1 AND f.fire_at = $2`,
    [params.schedule, params.fireAt],
  );
  return rows[0] ?? null;
}

export async function fireSetJob(sql: SqlClient, schema: string, params: { schedule: string; fireAt: Date; jobId: string }): Promise<void> {
  await sql.unsafe(`UPDATE ${schema}.cron_fires SET job_id = $3 WHERE schedule = $1 AND fire_at = $2`, [
    params.schedule,
    params.fireAt,
    params.jobId,
  ]);
}

/** Moves the schedule's cursor forward (never back) and records its latest job. */
export async function scheduleAdvance(
  sql: SqlClient,
  schema: string,
  params: { name: string; nextFireAt: Date; lastFireAt: Date | null; lastJobId: string | null },
): Promise<void> {
  await sql.unsafe(
    `UPDATE ${schema}.cron_schedules
        SET next_fire_at = greatest(next_fire_at, $2),
            last_fire_at = CASE WHEN $3::timestamptz IS NULL THEN last_fire_at ELSE greatest(last_fire_at, $3::timestamptz) END,
            last_job_id  = coalesce($4::bigint, last_job_id)
      WHERE name = $1`,
    [params.name, params.nextFireAt, params.lastFireAt, params.lastJobId],
  );
}

/** Deletes fire records of times older than `retainMs`, at most `limit` of them. */
export async function firesPrune(sql: SqlClient, schema: string, params: { retainMs: number; limit: number }): Promise<number> {
  const rows = await sql.unsafe(
    `DELETE FROM ${schema}.cron_fires f
      USING (SELECT schedule, fire_at FROM ${schema}.cron_fires
              WHERE fire_at < now() - $1::bigint * interval '1 millisecond'
              LIMIT $2) old
      WHERE f.schedule = old.schedule AND f.fire_at = old.fire_at
      RETURNING 1`,
    [params.retainMs, params.limit],
  );
  return rows.length;
}
