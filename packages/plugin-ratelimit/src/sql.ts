/**
 * Every statement plugin-ratelimit runs, and its migration. `schema` is the app's quoted schema
 * (`app.schema`), spliced into the text; values always travel as parameters.
 */
import type { Docket, Migration, SqlClient } from '@docket/core';

type Sql = Docket['sql'];

/** The `jobs` column that holds a job's rate-limit key. */
export const KEY_COLUMN = 'ratelimit_key';
/** The `key` of a queue's own window row, which every claim of the queue locks. Keys pushed are never empty. */
export const QUEUE_ROW = '';

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'rate-limit key column and windows table',
    up: ({ schema }) => `
      ALTER TABLE ${schema}.jobs ADD COLUMN ${KEY_COLUMN} text;
      -- Per-key claims go round the keys of a queue's pending jobs (the core's perKey), one index
      -- probe per key, and take each key's best due jobs; jobs without a key are not in it.
      CREATE INDEX ratelimit_jobs_key_idx ON ${schema}.jobs (queue, ${KEY_COLUMN}, priority DESC, scheduled_at, id)
        WHERE state = 'pending' AND ${KEY_COLUMN} IS NOT NULL;
      -- One sliding window log per queue (key '') and per key: the starts that still count, as
      -- (time, count) entries, epoch milliseconds on the database clock. expires_ms: when the
      -- newest entry stops counting (after that the row is dead and the cleanup deletes it).
      -- Every claim rewrites its rows: only the primary key is indexed and pages keep half their
      -- room free, so those updates are HOT (no index entry, pruned in place).
      CREATE TABLE ${schema}.ratelimit_windows (
        queue      text NOT NULL,
        key        text NOT NULL,
        at_ms      float8[] NOT NULL DEFAULT '{}',
        counts     int[] NOT NULL DEFAULT '{}',
        expires_ms float8 NOT NULL DEFAULT 0,
        PRIMARY KEY (queue, key)
      ) WITH (fillfactor = 50);
    `,
  },
]);

function run<T>(sql: SqlClient, text: string, params: unknown[]): Promise<T[]> {
  return (sql as Sql).unsafe(text, params as never[]) as unknown as Promise<T[]>;
}

/** The database clock now, epoch milliseconds with a fraction. */
const CLOCK_MS = `(extract(epoch FROM clock_timestamp()) * 1000)::float8`;

export interface QueueWindowRow {
  at_ms: number[];
  counts: number[];
  /** The database clock when the row was read (after the lock), epoch ms. */
  now_ms: number;
}

/**
 * Locks the queue's own window row for the rest of the claim's transaction and reads it: the
 * queue's other claims wait here until this one commits, so no two claims spend the same starts.
 * Creates the row the first time (a concurrent creator's insert is waited for, then locked).
 */
export async function queueWindowLock(sql: SqlClient, schema: string, params: { queue: string }): Promise<QueueWindowRow> {
  const lock = `SELECT at_ms, counts, ${CLOCK_MS} AS now_ms FROM ${schema}.ratelimit_windows
                WHERE queue = $1 AND key = '${QUEUE_ROW}' FOR NO KEY UPDATE`;
  const [row] = await run<QueueWindowRow>(sql, lock, [params.queue]);
  if (row) return row;
  await run(sql, `INSERT INTO ${schema}.ratelimit_windows (queue, key) VALUES ($1, '${QUEUE_ROW}') ON CONFLICT DO NOTHING`, [params.queue]);
  const [created] = await run<QueueWindowRow>(sql, lock, [params.queue]);
  if (!created) throw new Error(`ratelimit: the window row of queue '${params.queue}' was not found after it was created.`);
  return created;
}

export interface KeyWindowRow {
  key: string;
  at_ms: number[];
  counts: number[];
  /** The key has a pending job due now (one held back, when its window is full). */
  waiting: boolean;
}

/**
 * The queue's key windows that are still live at `nowMs` (an entry less than a period old), with
 * whether each key has a job due now. Run after `queueWindowLock`, so it sees every claim that
 * committed before this one.
 */
export function keyWindowsRead(sql: SqlClient, schema: string, params: { queue: string; nowMs: number }): Promise<KeyWindowRow[]> {
  return run(
    sql,
    `SELECT w.key, w.at_ms, w.counts,
            EXISTS (SELECT 1 FROM ${schema}.jobs j
                    WHERE j.state = 'pending' AND j.queue = $1 AND j.${KEY_COLUMN} = w.key AND j.scheduled_at <= clock_timestamp()) AS waiting
     FROM ${schema}.ratelimit_windows w
     WHERE w.queue = $1 AND w.expires_ms > $2 AND w.key <> '${QUEUE_ROW}'`,
    [params.queue, params.nowMs],
  );
}

/** The windows of one queue as a claim leaves them: one row per key the claim took jobs of (and `''`). */
export interface WindowWrite {
  key: string;
  at: readonly number[];
  counts: readonly number[];
  expiresMs: number;
}

/** Writes the windows a claim changed, in the claim's transaction (one statement). */
export async function windowsWrite(sql: SqlClient, schema: string, params: { queue: string; windows: readonly WindowWrite[] }): Promise<void> {
  const { windows } = params;
  if (windows.length === 0) return;
  const literal = (values: readonly number[]) => `{${values.join(',')}}`;
  const [only] = windows;
  if (windows.length === 1 && only?.key === QUEUE_ROW) {
    // The queue's own row, which this claim holds locked: a plain update by primary key.
    await run(
      sql,
      `UPDATE ${schema}.ratelimit_windows SET at_ms = $2::float8[], counts = $3::int[], expires_ms = $4
       WHERE queue = $1 AND key = '${QUEUE_ROW}'`,
      [params.queue, literal(only.at), literal(only.counts), only.expiresMs],
    );
    return;
  }
  await run(
    sql,
    `INSERT INTO ${schema}.ratelimit_windows (queue, key, at_ms, counts, expires_ms)
     SELECT $1, w.key, w.at_ms::float8[], w.counts::int[], w.expires_ms
     FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[]) AS w(key, at_ms, counts, expires_ms)
     ON CONFLICT (queue, key) DO UPDATE
       SET at_ms = EXCLUDED.at_ms, counts = EXCLUDED.counts, expires_ms = EXCLUDED.expires_ms`,
    [
      params.queue,
      windows.map((w) => w.key),
      windows.map((w) => literal(w.at)),
      windows.map((w) => literal(w.counts)),
      windows.map((w) => w.expiresMs),
    ],
  );
}

/** Every window of a queue as stored (for `usage`), with the database clock. */
export function queueWindowsRead(
  sql: SqlClient,
  schema: string,
  params: { queue: string },
): Promise<Array<{ key: string; at_ms: number[]; counts: number[]; now_ms: number }>> {
  return run(
    sql,
    `SELECT key, at_ms, counts, ${CLOCK_MS} AS now_ms FROM ${schema}.ratelimit_windows
     WHERE queue = $1 AND (key = '${QUEUE_ROW}' OR expires_ms > ${CLOCK_MS})`,
    [params.queue],
  );
}

/**
 * Deletes up to `limit` dead key windows of a queue (nothing in them counts any more). A claim
 * writing one of them at the same moment keeps it: locked rows are skipped, and the claim's upsert
 * recreates a row deleted under it. Queue rows (key '') are kept: claims lock them.
 */
export function deadWindowsDelete(sql: SqlClient, schema: string, params: { queue: string; limit: number }): Promise<Array<{ key: string }>> {
  return run(
    sql,
    `DELETE FROM ${schema}.ratelimit_windows w
     WHERE (w.queue, w.key) IN (
       SELECT d.queue, d.key FROM ${schema}.ratelimit_windows d
       WHERE d.queue = $1 AND d.expires_ms < ${CLOCK_MS} AND d.key <> '${QUEUE_ROW}'
       LIMIT $2 FOR UPDATE SKIP LOCKED)
     RETURNING w.key`,
    [params.queue, params.limit],
  );
}
