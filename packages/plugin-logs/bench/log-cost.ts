// What logging costs a worker: drain N jobs that each log L lines, without and with the plugin.
// Run: node --import tsx packages/plugin-logs/bench/log-cost.ts  (DATABASE_URL or an embedded server)

import { Docket, defineJob, Worker } from '@docket/core';
import { jobLogs } from '@docket/plugin-logs';
import { createTestDatabase } from '@docket/testing';

const N = Number(process.env.JOBS ?? 5000);
const L = Number(process.env.LINES ?? 10);
const job = defineJob({ name: 'talk', queue: 'bench' }, async ({ n }: { n: number }, ctx) => {
  for (let i = 0; i < L; i++) ctx.log?.(`job ${n} step ${i}`, { publish: i === L - 1 || i % 4 === 0 });
  await Promise.resolve();
});

async function drain(label: string, plugins: ReturnType<typeof jobLogs>[]) {
  const db = await createTestDatabase({ template: false });
  const app = new Docket({ connection: db.url, logger: false, plugins });
  await app.migrate();
  await app.pushMany(Array.from({ length: N }, (_, n) => job.withArgs({ n })));
  const worker = new Worker(app, { jobs: [job], queues: { bench: { concurrency: 50 } } });
  const started = performance.now();
  await worker.start();
  for (;;) {
    const [{ left }] = await app.sql`SELECT count(*)::int AS left FROM docket.jobs WHERE state <> 'succeeded'`;
    if (left === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - started;
  await worker.stop();
  const lines = plugins.length ? (await app.sql`SELECT count(*)::int AS n FROM docket.logs_lines`)[0]!.n : 0;
  console.log(
    `${label.padEnd(28)} ${N} jobs × ${L} lines: ${ms.toFixed(0).padStart(6)} ms  (${((N / ms) * 1000).toFixed(0)} jobs/s, ${lines} lines stored)`,
  );
  await app.close();
  await db.drop();
}

for (let round = 0; round < 2; round++) {
  await drain('without plugin-logs', []);
  await drain('with plugin-logs', [jobLogs()]);
}
