import type postgres from 'postgres';
import type { SqlClient } from '../types.js';

/**
 * Where a queue's handlers run: `async` in the worker's own event loop (the default), `thread` in
 * worker threads, `process` in child processes (the last two can stop a job at its time or memory limit).
 */
export type ExecutorKind = 'async' | 'thread' | 'process';

/** A queue's stored settings, as `app.declareQueue()`, `app.pauseQueue()` and `app.listQueues()` return them. */
export interface QueueRecord {
  name: string;
  concurrency: number | null;
  executor: ExecutorKind;
  pollIntervalMs: number;
  paused: boolean;
}

/** A row of the `queues` table (the columns `toQueue` reads). */
interface QueueRow {
  name: string;
  concurrency: number | null;
  executor: ExecutorKind;
  poll_interval_ms: number;
  paused: boolean;
}

function toQueue(row: QueueRow): QueueRecord {
  return {
    name: row.name,
    concurrency: row.concurrency,
    executor: row.executor,
    pollIntervalMs: row.poll_interval_ms,
    paused: row.paused,
  };
}

export class QueuesSql {
  constructor(
    private readonly schema: string,
    private readonly channel: string,
  ) {}

  /** Creates the queue or updates the fields given (undefined fields keep their value). */
  async upsert(
    sql: SqlClient,
    q: { name: string; concurrency?: number | null; executor?: ExecutorKind; pollIntervalMs?: number },
  ): Promise<QueueRecord> {
    const [row] = await (sql as postgres.Sql).unsafe<QueueRow[]>(
      `INSERT INTO ${this.schema}.queues AS q (name, concurrency, executor, poll_interval_ms)
       VALUES ($1, $2, COALESCE($3, 'async'), COALESCE($4, 1000))
       ON CONFLICT (name) DO UPDATE SET
         concurrency = CASE WHEN $5 THEN EXCLUDED.concurrency ELSE q.concurrency END,
         executor = COALESCE($3, q.executor),
         poll_interval_ms = COALESCE($4, q.poll_interval_ms),
         updated_at = now()
       RETURNING *`,
      [q.name, q.concurrency ?? null, q.executor ?? null, q.pollIntervalMs ?? null, q.concurrency !== undefined],
    );
    return toQueue(row);
  }

  /** Inserts the queue with defaults when it does not exist; never changes an existing one. */
  async ensure(sql: SqlClient, params: { names: readonly string[] }): Promise<void> {
    const { names } = params;
    await (sql as postgres.Sql).unsafe(`INSERT INTO ${this.schema}.queues (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`, [
      names as string[],
    ]);
  }

  async setPaused(sql: SqlClient, params: { name: string; paused: boolean }): Promise<QueueRecord | undefined> {
    const { name, paused } = params;
    const [row] = await (sql as postgres.Sql).unsafe<QueueRow[]>(
      `WITH upd AS (UPDATE ${this.schema}.queues SET paused = $2, updated_at = now() WHERE name = $1 RETURNING *),
       note AS (SELECT pg_notify('${this.channel}', CASE WHEN $2 THEN 'q:' ELSE 'p:' END || name) FROM upd)
       SELECT upd.* FROM upd CROSS JOIN (SELECT count(*) FROM note) n`,
      [name, paused],
    );
    return row ? toQueue(row) : undefined;
  }

  async list(sql: SqlClient, params: { names?: readonly string[] } = {}): Promise<QueueRecord[]> {
    const { names } = params;
    const rows = names
      ? await (sql as postgres.Sql).unsafe<QueueRow[]>(`SELECT * FROM ${this.schema}.queues WHERE name = ANY($1::text[]) ORDER BY name`, [
          names as string[],
        ])
      : await (sql as postgres.Sql).unsafe<QueueRow[]>(`SELECT * FROM ${this.schema}.queues ORDER BY name`);
    return rows.map(toQueue);
  }
}
