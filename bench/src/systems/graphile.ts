import postgres from 'postgres';
import { pkgVersion, workerEntry } from '../pkg.js';
import type { MixedItem, Payload, Session, SystemAdapter } from './types.js';

/**
 * graphile-worker, configured as its performance page recommends for throughput: a local queue
 * (`localQueue.size` 500) and batched completion/failure (`completeJobBatchDelay`/`failJobBatchDelay`
 * 0), concurrency 10 with a pool of max(10, concurrency + 2). It deletes completed jobs (no
 * history); its retry backoff is fixed (exp(min(attempts, 10)) seconds).
 */
export const GRAPHILE_WORKER_OPTIONS = {
  concurrentJobs: 10,
  maxPoolSize: 12,
  localQueue: { size: 500 },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
  pollInterval: 2000,
  preparedStatements: true,
} as const;

export async function graphileAdapter(): Promise<SystemAdapter> {
  const gw = await import('graphile-worker');
  const quiet = new gw.Logger((scope) => (level, message) => {
    if (level === 'error') process.stderr.write(`[graphile-worker ${scope.label ?? ''}] ${message}\n`);
  });
  return {
    id: 'graphile',
    label: 'graphile-worker',
    version: pkgVersion('graphile-worker'),
    usesPostgres: true,
    history: 'deletes completed jobs; history rows are left as permanently failed jobs (attempts = max_attempts) of the same task',
    settings: {
      ...Object.fromEntries(Object.entries(GRAPHILE_WORKER_OPTIONS).map(([k, v]) => [k, JSON.stringify(v)])),
      enqueue: 'workerUtils.addJobs (bulk), workerUtils.addJob (single); producer pool max 4',
    },
    async open({ url }) {
      const utils = await gw.makeWorkerUtils({ connectionString: url, maxPoolSize: 4, logger: quiet });
      await utils.migrate();
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      const session: Session = {
        async bulk(payloads: Payload[]) {
          await utils.addJobs(payloads.map((payload) => ({ identifier: 'noop', payload })));
        },
        async single(payload: Payload) {
          await utils.addJob('noop', payload);
        },
        async mixed(items: MixedItem[]) {
          await utils.addJobs(
            items.map(({ payload, high, runAt, maxAttempts }) => ({
              identifier: 'noop',
              payload,
              // graphile-worker: lower numbers run first.
              priority: high ? -10 : 0,
              ...(runAt ? { runAt } : {}),
              maxAttempts: maxAttempts ?? 1,
            })),
          );
        },
        async remaining() {
          const [row] = await sql<{ n: number }[]>`
            select count(*)::int as n from graphile_worker.jobs
            where task_identifier = 'noop' and attempts < max_attempts`;
          return row!.n;
        },
        async seedFinished(n, log) {
          for (let done = 0; done < n; done += 20_000) {
            const size = Math.min(20_000, n - done);
            await utils.addJobs(Array.from({ length: size }, (_, j) => ({ identifier: 'noop', payload: { i: done + j } })));
          }
          log(`  graphile-worker: ${n} jobs added, marking them permanently failed…`);
          await sql`update graphile_worker._private_jobs set attempts = max_attempts, last_error = 'bench: left as history'`;
          await sql`vacuum analyze graphile_worker._private_jobs`;
          return `${n} permanently failed jobs (graphile-worker deletes completed ones)`;
        },
        async close() {
          await utils.release();
          await sql.end({ timeout: 5 });
        },
      };
      return session;
    },
    worker({ url, namespace }) {
      return { entry: workerEntry('graphile'), env: { BENCH_URL: url, BENCH_NAMESPACE: namespace } };
    },
  };
}
