/**
 * CPU time of the PostgreSQL backends serving one database, read from /proc (Linux, server on this
 * machine). Counting only these backends keeps other databases' sessions on a shared server (other
 * engineers' test runs) out of the figure; the server's own background processes (WAL writer,
 * checkpointer, autovacuum workers, which come and go at random) are left out too.
 */
import { readFileSync } from 'node:fs';
import type postgres from 'postgres';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds (user + system) of each backend of `sql`'s database, by pid; empty when /proc does not show them. */
export async function backendCpu(sql: postgres.Sql): Promise<Map<number, number>> {
  const rows = await sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database() and backend_type = 'client backend'`;
  const out = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND);
    } catch {
      // the backend ended, or the server runs elsewhere
    }
  }
  return out;
}

/** Seconds the backends spent between two readings (a backend that started in between counts from zero). */
export function backendCpuSpent(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}
