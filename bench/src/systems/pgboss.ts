import postgres from 'postgres';
import { pkgVersion, workerEntry } from '../pkg.js';
import type { MixedItem, Payload, Session, SystemAdapter } from './types.js';

/**
 * pg-boss v12: `work()` with batchSize 50 (jobs fetched per query), localConcurrency 10 (pollers per
 * process), burstWhenBatchFull (fetch again at once while batches come back full) and the minimum
 * polling interval (2 s while notify is on); LISTEN/NOTIFY on (`useListenNotify` + queue `notify: true`) so an idle worker
 * wakes on a push. Completed jobs are kept (default deleteAfterSeconds: 7 days).
 */
export const PGBOSS_QUEUE = 'bench';
export const PGBOSS_CONSTRUCTOR = { useListenNotify: true } as const;
export const PGBOSS_QUEUE_OPTIONS = { notify: true, retryLimit: 0, retryDelay: 0 } as const;
export const PGBOSS_WORK_OPTIONS = {
  batchSize: 50,
  localConcurrency: 10,
  burstWhenBatchFull: true,
  pollingIntervalSeconds: 0.5,
  // With notify on, pg-boss polls only every 30 s by default, and scheduled (startAfter) jobs send
  // no NOTIFY when they come due: poll every 2 s, as graphile-worker does by default.
  notifyPollingIntervalSeconds: 2,
} as const;

export async function pgbossAdapter(): Promise<SystemAdapter> {
  const { PgBoss } = await import('pg-boss');
  return {
    id: 'pgboss',
    label: 'pg-boss',
    version: pkgVersion('pg-boss'),
    usesPostgres: true,
    history: true,
    settings: {
      constructor: JSON.stringify(PGBOSS_CONSTRUCTOR),
      queue: JSON.stringify(PGBOSS_QUEUE_OPTIONS),
      work: JSON.stringify(PGBOSS_WORK_OPTIONS),
      handler: 'batch handler runs the 50 jobs concurrently; mixed run uses perJobResults so one failure fails one job',
      enqueue: 'boss.insert (bulk), boss.send (single)',
    },
    async open({ url }) {
      const boss = new PgBoss({ connectionString: url, max: 4, supervise: false, schedule: false });
      boss.on('error', (error) => process.stderr.write(`[pg-boss producer] ${String(error)}\n`));
      await boss.start();
      await boss.createQueue(PGBOSS_QUEUE, PGBOSS_QUEUE_OPTIONS);
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      const session: Session = {
        async bulk(payloads: Payload[]) {
          await boss.insert(
            PGBOSS_QUEUE,
            payloads.map((data) => ({ data })),
          );
        },
        async single(payload: Payload) {
          await boss.send(PGBOSS_QUEUE, payload);
        },
        async mixed(items: MixedItem[]) {
          await boss.insert(
            PGBOSS_QUEUE,
            items.map(({ payload, high, runAt, maxAttempts }) => ({
              data: payload,
              // pg-boss: higher numbers run first.
              priority: high ? 10 : 0,
              ...(runAt ? { startAfter: runAt } : {}),
              retryLimit: (maxAttempts ?? 1) - 1,
              retryDelay: 0,
            })),
          );
        },
        async remaining() {
          const [row] = await sql<{ n: number }[]>`
            select count(*)::int as n from pgboss.job where name = ${PGBOSS_QUEUE} and state < 'completed'`;
          return row!.n;
        },
        async seedFinished(n, log) {
          for (let done = 0; done < n; done += 20_000) {
            const size = Math.min(20_000, n - done);
            await boss.insert(
              PGBOSS_QUEUE,
              Array.from({ length: size }, (_, j) => ({ data: { i: done + j } })),
            );
          }
          log(`  pg-boss: ${n} jobs inserted, marking them completed…`);
          await sql`update pgboss.job set state = 'completed', started_on = now(), completed_on = now() where name = ${PGBOSS_QUEUE}`;
          await sql`vacuum analyze pgboss.job`;
          return `${n} completed jobs`;
        },
        async close() {
          await boss.stop({ graceful: false, timeout: 1000 });
          await sql.end({ timeout: 5 });
        },
      };
      return session;
    },
    worker({ url, namespace }) {
      return { entry: workerEntry('pgboss'), env: { BENCH_URL: url, BENCH_NAMESPACE: namespace } };
    },
  };
}
