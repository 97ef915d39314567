/**
 * What `jobs_finished_brin` (core migration 3, for `jobThroughput`) costs a drain: the same drain in
 * two fresh databases, one with the index and one without it (dropped after migrating), alternated
 * over rounds. Reported as shared-buffer accesses per job (counted by the server, so other load on
 * the machine does not move them) and wall time (which it does). Nothing here asserts anything.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres pnpm --filter @docket/bench finished-brin
 *   options: --jobs N (20000), --rounds N (3), --history N (200000: finished jobs already in the table)
 */
import postgres from 'postgres';
import { bufferAccesses } from './buffer-accesses.js';
import { nowUs } from './clock.js';
import { createDatabase, dropDatabase, serverVersion, startServer } from './db.js';
import { fillHistory } from './history.js';
import { fmt, median } from './stats.js';

const argv = process.argv.slice(2).filter((a) => a !== '--');
const arg = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? Number(argv[i + 1]) : fallback;
};
const jobs = arg('--jobs', 20_000);
const rounds = arg('--rounds', 3);
const history = arg('--history', 200_000);

const core = await import('@docket/core');
const noop = core.defineJob({ name: 'noop', queue: 'drain' }, async () => null);

/** Pushes `jobs` jobs, drains them with one worker, and returns the buffer accesses and seconds of the drain alone. */
async function drain(url: string): Promise<{ blocks: number; seconds: number }> {
  const app = new core.Docket({ connection: url, logger: false });
  const batch = 1000;
  for (let i = 0; i < jobs; i += batch) await app.pushMany(Array.from({ length: Math.min(batch, jobs - i) }, () => noop));
  await app.close();
  const stats = postgres(url, { max: 1, onnotice: () => {} });
  const before = await bufferAccesses(stats);
  const runner = new core.Docket({ connection: url, logger: false });
  const worker = new core.Worker(runner, { jobs: [noop], queues: { drain: { concurrency: 10, prefetch: 500 } } });
  const t0 = nowUs();
  await worker.start();
  for (;;) {
    const [row] = await stats<{ n: number }[]>`SELECT count(*)::int AS n FROM docket.jobs WHERE state IN ('pending', 'running')`;
    if (row?.n === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const seconds = (nowUs() - t0) / 1e6;
  await worker.stop();
  await runner.close();
  const after = await bufferAccesses(stats);
  await stats.end();
  return { blocks: after - before, seconds };
}

const server = await startServer((line) => console.log(line));
try {
  console.log(`${server.origin}; ${await serverVersion(server)}`);
  console.log(
    `drain of ${fmt(jobs, 0)} no-op jobs (one worker, concurrency 10, prefetch 500) over ${fmt(history, 0)} finished jobs, ${rounds} rounds each`,
  );
  const results: Record<string, { blocks: number[]; seconds: number[] }> = {
    with: { blocks: [], seconds: [] },
    without: { blocks: [], seconds: [] },
  };
  for (let r = 0; r < rounds; r++) {
    for (const variant of r % 2 === 0 ? (['with', 'without'] as const) : (['without', 'with'] as const)) {
      const name = `finished_brin_${variant}_${process.pid}_${r}`;
      const url = await createDatabase(server, name);
      try {
        const app = new core.Docket({ connection: url, logger: false });
        await app.migrate();
        await app.close();
        await fillHistory(url, { jobs: history, pending: 0, queues: 8, names: 6, spanDays: 30 });
        if (variant === 'without') {
          const sql = postgres(url, { max: 1, onnotice: () => {} });
          await sql`DROP INDEX docket.jobs_finished_brin`;
          await sql.end();
        }
        const out = await drain(url);
        results[variant]?.blocks.push(out.blocks / jobs);
        results[variant]?.seconds.push(out.seconds);
        console.log(
          `  round ${r + 1} ${variant.padEnd(7)} ${fmt(out.blocks / jobs, 1).padStart(6)} blocks/job  ${fmt(jobs / out.seconds, 0).padStart(7)} jobs/s`,
        );
      } finally {
        await dropDatabase(server, name).catch(() => {});
      }
    }
  }
  for (const [variant, r] of Object.entries(results)) {
    console.log(`${variant.padEnd(8)} median ${fmt(median(r.blocks), 1)} blocks/job, ${fmt(jobs / median(r.seconds), 0)} jobs/s`);
  }
} finally {
  await server.stop();
}
