import { PgBoss } from 'pg-boss';
import { PGBOSS_CONSTRUCTOR, PGBOSS_QUEUE, PGBOSS_WORK_OPTIONS } from '../systems/pgboss.js';
import type { Payload } from '../systems/types.js';
import { runWorker } from './common.js';

await runWorker(async (config, handle) => {
  const boss = new PgBoss({ connectionString: config.url, ...PGBOSS_CONSTRUCTOR });
  boss.on('error', (error) => process.stderr.write(`[pg-boss worker] ${String(error)}\n`));
  await boss.start();
  if (config.mode === 'mixed') {
    await boss.work<Payload>(PGBOSS_QUEUE, { ...PGBOSS_WORK_OPTIONS, perJobResults: true }, async (jobs) =>
      Promise.all(
        jobs.map((job) =>
          handle(job.data).then(
            () => ({ id: job.id, status: 'completed' as const }),
            (error: unknown) => ({ id: job.id, status: 'failed' as const, output: { message: String(error) } }),
          ),
        ),
      ),
    );
  } else {
    await boss.work<Payload>(PGBOSS_QUEUE, PGBOSS_WORK_OPTIONS, async (jobs) => {
      await Promise.all(jobs.map((job) => handle(job.data)));
    });
  }
  return async () => {
    await boss.stop({ graceful: true, timeout: 5000 });
  };
});
