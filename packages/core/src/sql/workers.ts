import type postgres from 'postgres';
import type { SqlClient } from '../types.js';

export interface WorkerRow {
  id: string;
  hostname: string;
  pid: number;
  queues: readonly string[];
  heartbeatIntervalMs: number;
}

export class WorkersSql {
  constructor(private readonly schema: string) {}

  /** Inserts or refreshes this worker's heartbeat row. */
  async beat(sql: SqlClient, w: WorkerRow): Promise<void> {
    await (sql as postgres.Sql).unsafe(
      `INSERT INTO ${this.schema}.workers (id, hostname, pid, queues, heartbeat_interval_ms)
       VALUES ($1, $2, $3, $4::text[], $5)
       ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = now()`,
      [w.id, w.hostname, w.pid, w.queues as string[], w.heartbeatIntervalMs],
    );
  }

  async remove(sql: SqlClient, params: { id: string }): Promise<void> {
    await (sql as postgres.Sql).unsafe(`DELETE FROM ${this.schema}.workers WHERE id = $1`, [params.id]);
  }
}
