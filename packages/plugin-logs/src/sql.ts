/**
 * Every statement plugin-logs runs, and its migrations. `schema` is the app's quoted schema
 * (`app.schema`); values always travel as parameters.
 */
import type { Migration, SqlClient } from '@docket/core';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'log lines',
    up: ({ schema }) => `
      CREATE TABLE ${schema}.logs_lines (
        job_id     bigint NOT NULL,
        attempt    integer NOT NULL,
        seq        integer NOT NULL,
        -- The top-level job (meta.rootId) and the parent (meta.parentId, only when it is not the
        -- root) whose views also show this line; NULL for a job's own top-level lines.
        root_id    bigint,
        parent_id  bigint,
        at         timestamptz NOT NULL,
        level      text NOT NULL CHECK (level IN (${LOG_LEVELS.map((l) => `'${l}'`).join(', ')})),
        message    text NOT NULL,
        PRIMARY KEY (job_id, attempt, seq)
      ) WITH (autovacuum_vacuum_scale_factor = 0.05);
      CREATE INDEX logs_lines_root_idx ON ${schema}.logs_lines (root_id) WHERE root_id IS NOT NULL;
      CREATE INDEX logs_lines_parent_idx ON ${schema}.logs_lines (parent_id) WHERE parent_id IS NOT NULL;
    `,
  },
]);

function run<T>(sql: SqlClient, text: string, params: unknown[]): Promise<T[]> {
  return sql.unsafe(text, params as never[]) as unknown as Promise<T[]>;
}

export interface LineRow {
  jobId: string;
  attempt: number;
  seq: number;
  rootId: string | null;
  parentId: string | null;
  at: Date;
  level: LogLevel;
  message: string;
}

const COLUMNS = `job_id::text AS "jobId", attempt, seq, root_id::text AS "rootId", parent_id::text AS "parentId", at, level, message`;

/**
 * Inserts lines in one statement (a line already stored — a retried write — is skipped) and
 * returns the keys of the lines it inserted.
 */
export function linesInsert(sql: SqlClient, schema: string, lines: readonly LineRow[]): Promise<Array<{ i: number }>> {
  return run(
    sql,
    `INSERT INTO ${schema}.logs_lines (job_id, attempt, seq, root_id, parent_id, at, level, message)
     SELECT u.job_id, u.attempt, u.seq, u.root_id, u.parent_id, u.at, u.level, u.message
     FROM unnest($1::bigint[], $2::int[], $3::int[], $4::bigint[], $5::bigint[], $6::timestamptz[], $7::text[], $8::text[])
       AS u(job_id, attempt, seq, root_id, parent_id, at, level, message)
     ON CONFLICT (job_id, attempt, seq) DO NOTHING
     RETURNING job_id::text AS job_id, attempt, seq`,
    [
      lines.map((l) => l.jobId),
      lines.map((l) => l.attempt),
      lines.map((l) => l.seq),
      lines.map((l) => l.rootId),
      lines.map((l) => l.parentId),
      lines.map((l) => l.at.toISOString()),
      lines.map((l) => l.level),
      lines.map((l) => l.message),
    ],
  ).then((rows) => {
    // RETURNING gives keys; map them back to input positions.
    const index = new Map(lines.map((l, i) => [`${l.jobId}:${l.attempt}:${l.seq}`, i]));
    return (rows as unknown as Array<{ job_id: string; attempt: number; seq: number }>).map((r) => {
      const key = `${r.job_id}:${r.attempt}:${r.seq}`;
      const i = index.get(key);
      if (i === undefined) throw new Error(`logs: the insert returned line ${key}, which it was not given.`);
      return { i };
    });
  });
}

/**
 * Keeps the newest `limit` lines (by attempt, then seq) of each job in `jobIds`; run after the
 * insert, in the same transaction, so the new lines count.
 */
export function linesTrim(sql: SqlClient, schema: string, params: { jobIds: readonly string[]; limit: number }): Promise<unknown[]> {
  return run(
    sql,
    `DELETE FROM ${schema}.logs_lines l
     USING unnest($1::bigint[]) AS k(job_id)
     WHERE l.job_id = k.job_id
       AND (l.attempt, l.seq) <= (
         SELECT x.attempt, x.seq FROM ${schema}.logs_lines x
         WHERE x.job_id = k.job_id
         ORDER BY x.attempt DESC, x.seq DESC
         OFFSET $2 LIMIT 1
       )`,
    [params.jobIds, params.limit],
  );
}

/**
 * A job's lines — with `tree`, also those its subtasks forwarded to it (as root or parent) —
 * oldest first; the newest `limit` when given.
 */
export function linesRead(sql: SqlClient, schema: string, params: { jobId: string; tree: boolean; limit: number | null }): Promise<LineRow[]> {
  const own = `SELECT ${COLUMNS} FROM ${schema}.logs_lines WHERE job_id = $1`;
  const all = params.tree
    ? `${own} UNION ALL SELECT ${COLUMNS} FROM ${schema}.logs_lines WHERE root_id = $1
       UNION ALL SELECT ${COLUMNS} FROM ${schema}.logs_lines WHERE parent_id = $1`
    : own;
  const order = params.tree ? `at, "jobId"::bigint, attempt, seq` : `attempt, seq`;
  const reverse = params.tree ? `at DESC, "jobId"::bigint DESC, attempt DESC, seq DESC` : `attempt DESC, seq DESC`;
  const text =
    params.limit === null
      ? `SELECT * FROM (${all}) a ORDER BY ${order}`
      : `SELECT * FROM (SELECT * FROM (${all}) a ORDER BY ${reverse} LIMIT $2) b ORDER BY ${order}`;
  return run(sql, text, params.limit === null ? [params.jobId] : [params.jobId, params.limit]);
}

/** An attempt's lines after `afterSeq`, in order (a follower catching up on a notice). */
export function linesAfter(sql: SqlClient, schema: string, params: { jobId: string; attempt: number; afterSeq: number }): Promise<LineRow[]> {
  return run(sql, `SELECT ${COLUMNS} FROM ${schema}.logs_lines WHERE job_id = $1 AND attempt = $2 AND seq > $3 ORDER BY seq`, [
    params.jobId,
    params.attempt,
    params.afterSeq,
  ]);
}

/** Deletes the lines of deleted jobs (the core's `jobsDeleted`, in its transaction). */
export function linesDelete(sql: SqlClient, schema: string, jobIds: readonly string[]): Promise<unknown[]> {
  return run(sql, `DELETE FROM ${schema}.logs_lines WHERE job_id = ANY($1::bigint[])`, [jobIds]);
}
