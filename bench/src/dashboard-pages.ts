/**
 * The dashboard's pages over a long history: fills a fresh database with N finished jobs (default
 * 1,000,000, as ops-pages does) and a pending backlog, serves @docket/dashboard on a loopback port,
 * and times whole HTTP responses (request to last byte: the queries, the rendering, the transfer)
 * of the overview, the jobs list with each filter (first and deep page), a job's page and the
 * workers page. Each sample waits out the dashboard's shared-read window first, so every response
 * reads the database (what the first tab pays; tabs refreshing together share one read). Nothing
 * here asserts a time.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres pnpm --filter @docket/bench dashboard-pages
 *   options: --jobs N (1000000), --pending N (1000), --samples N (30)
 */
import type { Docket } from '@docket/core';
import { serveDashboard } from '@docket/dashboard';
import { nowUs } from './clock.js';
import { createDatabase, dropDatabase, serverVersion, startServer } from './db.js';
import { fillHistory } from './history.js';
import { fmt, percentile } from './stats.js';
import { loadDocket } from './systems/docket.js';

const argv = process.argv.slice(2).filter((a) => a !== '--');
const arg = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? Number(argv[i + 1]) : fallback;
};
const jobs = arg('--jobs', 1_000_000);
const pending = arg('--pending', 1000);
const samples = arg('--samples', 30);
const SPAN_DAYS = 30;
/** Longer than the dashboard's shared-read window at debounceMs 0 (500 ms). */
const COLD_GAP_MS = 550;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function timed(url: string): Promise<{ p50: number; p99: number; n: number; bytes: number }> {
  const get = async () => {
    const res = await fetch(url);
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
    return (await res.arrayBuffer()).byteLength;
  };
  await get(); // warm: plans, catalogues, the panels' first load
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < samples; i++) {
    await sleep(COLD_GAP_MS);
    const t0 = nowUs();
    bytes = await get();
    ms.push((nowUs() - t0) / 1000);
  }
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), n: ms.length, bytes };
}

const server = await startServer((line) => console.log(line));
const db = `dashboard_pages_${process.pid}`;
try {
  const url = await createDatabase(server, db);
  const core = (await loadDocket()) as unknown as { Docket: new (options: { connection: string; logger: false }) => Docket };
  const app = new core.Docket({ connection: url, logger: false });
  await app.migrate();
  const t0 = nowUs();
  await fillHistory(url, { jobs, pending, queues: 8, names: 6, spanDays: SPAN_DAYS });
  console.log(
    `${fmt(jobs, 0)} finished jobs and ${fmt(pending, 0)} pending (8 queues, 6 names, ${SPAN_DAYS} days) in ${fmt((nowUs() - t0) / 1e6, 1)} s`,
  );
  console.log(`${server.origin}; ${await serverVersion(server)}`);
  const served = await serveDashboard(app, { port: 0, debounceMs: 0, refreshMs: 0 });
  const base = served.url;
  // A cursor 100,000 jobs deep (pages of 1,000 through the API, as a person paging would reach it).
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) cursor = (await app.listJobs({ limit: 1000, cursor })).nextCursor;
  const [failed] = (await app.listJobs({ state: 'failed', limit: 1 })).jobs;
  const day = new Date(Date.now() - 15 * 86_400_000).toISOString().slice(0, 16);
  const nextDay = new Date(Date.now() - 14 * 86_400_000).toISOString().slice(0, 16);
  const pages: Array<[string, string]> = [
    ['overview', ''],
    ['jobs, no filter', 'jobs'],
    ['jobs, deep page (100,000)', `jobs?cursor=${cursor}`],
    ['jobs, queue', 'jobs?queue=queue-3'],
    ['jobs, state failed', 'jobs?state=failed'],
    ['jobs, queue + failed', 'jobs?queue=queue-3&state=failed'],
    ['jobs, name', 'jobs?name=job.2'],
    ['jobs, one day', `jobs?since=${day}&before=${nextDay}`],
    ['jobs, rare queue (0.1%)', 'jobs?queue=queue-rare'],
    ['job page', `jobs/${failed?.id}`],
    ['workers', 'workers'],
  ];
  console.log(`\nGET, ${samples} samples each, every one reading the database (ms)`);
  console.log(`${'page'.padEnd(28)} ${'p50'.padStart(8)} ${'p99'.padStart(8)} ${'KiB'.padStart(7)}`);
  for (const [label, path] of pages) {
    const t = await timed(new URL(path, base).href);
    console.log(`${label.padEnd(28)} ${fmt(t.p50).padStart(8)} ${fmt(t.p99).padStart(8)} ${fmt(t.bytes / 1024, 1).padStart(7)}`);
  }
  console.log('\nthe overview’s reads on their own (ms)');
  for (const [label, read] of [
    ['countJobs()', () => app.countJobs()],
    ['jobThroughput() (last hour)', () => app.jobThroughput()],
    ['listQueues()', () => app.listQueues()],
    ['listWorkers()', () => app.listWorkers()],
  ] as const) {
    await read();
    const ms: number[] = [];
    for (let i = 0; i < samples; i++) {
      const s = nowUs();
      await read();
      ms.push((nowUs() - s) / 1000);
    }
    console.log(`${label.padEnd(28)} p50 ${fmt(percentile(ms, 50)).padStart(7)}   p99 ${fmt(percentile(ms, 99)).padStart(7)}`);
  }
  const finishedLastHour = (await app.jobThroughput()).buckets.reduce((n, b) => n + b.succeeded + b.failed + b.cancelled, 0);
  console.log(`\n${fmt(finishedLastHour, 0)} jobs finished in the last hour of the history`);
  await served.close();
  await app.close();
} finally {
  await dropDatabase(server, db).catch(() => {});
  await server.stop();
}
