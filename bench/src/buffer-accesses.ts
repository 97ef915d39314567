/**
 * Shared-buffer accesses (blocks hit + read) of one database, from `pg_stat_database`: the server's
 * work for a piece of workload, counted rather than timed, so load from other processes on the
 * machine does not move it. A backend reports its counters when it goes idle (at most once a
 * second, else up to ten seconds later) and when it exits; so read them only once every other
 * session of the database has closed.
 */
import type postgres from 'postgres';
import { sleep } from './clock.js';

/** Blocks accessed in `sql`'s database so far, once no other client session of it is left (waits up to 10 s). */
export async function bufferAccesses(sql: postgres.Sql): Promise<number> {
  for (let waited = 0; waited < 10_000; waited += 20) {
    const [row] = await sql<{ others: number }[]>`
      select count(*)::int as others from pg_stat_activity
      where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()`;
    if (row!.others === 0) break;
    await sleep(20);
  }
  await sleep(100); // an exiting backend leaves pg_stat_activity about when it reports; leave it time
  const [row] = await sql<{ blocks: string }[]>`
    select (blks_hit + blks_read)::text as blocks from pg_stat_database where datname = current_database()`;
  return Number(row!.blocks);
}
