/**
 * The operations API over a long history: fills a fresh database with N finished jobs (one
 * INSERT … generate_series, default 1,000,000) and a pending backlog, then times `listJobs` (the
 * first page and a deep page, newest and oldest first, with each filter) and `countJobs`, and
 * prints p50/p99 per call. Nothing here asserts a time.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres pnpm --filter @docket/bench ops-pages
 *   options: --jobs N (1000000), --pending N (1000), --queues N (8), --names N (6), --samples N (200),
 *            --limit N (50), --budget-ms N (10000: a figure stops sampling after this long, at 20 calls or more)
 *
 * One job in 1,000 goes to `queue-rare`, the others are spread over the common queues: a filter
 * on the rare queue is the slow case of a listing that walks the primary key (see ARCHITECTURE.md,
 * "Operations API"), and a queue with no job at all is its bound (the walk reads every job).
 * The deep page starts from the cursor reached by walking the listing in pages of 1,000, halfway
 * through the matching jobs or 100,000 jobs deep, whichever comes first.
 */
import postgres from 'postgres';
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
const queues = arg('--queues', 8);
const names = arg('--names', 6);
const samples = arg('--samples', 200);
const limit = arg('--limit', 50);
const budgetMs = arg('--budget-ms', 10_000);
const DAY_MS = 86_400_000;
/** The history spans 30 days before now, one job every 30 days / N. */
const SPAN_DAYS = 30;

interface Page {
  jobs: unknown[];
  nextCursor: string | null;
}
interface App {
  migrate(): Promise<unknown>;
  close(): Promise<void>;
  listJobs(options: Record<string, unknown>): Promise<Page>;
  countJobs(options?: Record<string, unknown>): Promise<unknown[]>;
}

async function timed(run: () => Promise<unknown>): Promise<{ p50: number; p99: number; n: number }> {
  await run(); // warm: the first call plans and reads the catalogues
  const ms: number[] = [];
  const since = nowUs();
  for (let i = 0; i < samples && (i < 20 || nowUs() - since < budgetMs * 1000); i++) {
    const t0 = nowUs();
    await run();
    ms.push((nowUs() - t0) / 1000);
  }
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), n: ms.length };
}

/** The cursor halfway through the listing (at most 100,000 jobs deep), walking pages of 1,000. */
async function deepCursor(app: App, options: Record<string, unknown>, matching: number): Promise<string | null> {
  let cursor: string | null = null;
  const depth = Math.min(Math.floor(matching / 2), 100_000);
  for (let seen = 0; seen + 1000 <= depth; seen += 1000) {
    const page: Page = await app.listJobs({ ...options, limit: 1000, cursor });
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return cursor;
}

const server = await startServer((line) => console.log(line));
const db = `ops_pages_${process.pid}`;
try {
  const url = await createDatabase(server, db);
  const core = (await loadDocket()) as unknown as { Docket: new (options: { connection: string }) => App };
  const app = new core.Docket({ connection: url });
  await app.migrate();
  const t0 = nowUs();
  await fillHistory(url, { jobs, pending, queues, names, spanDays: SPAN_DAYS });
  console.log(
    `${fmt(jobs, 0)} finished jobs and ${fmt(pending, 0)} pending (${queues} queues, ${names} names, ${SPAN_DAYS} days) in ${fmt((nowUs() - t0) / 1e6, 1)} s`,
  );
  console.log(`${server.origin}; ${await serverVersion(server)}`);
  const middle = Date.now() - (SPAN_DAYS / 2) * DAY_MS;
  const matchingOf = async (filter: Record<string, unknown>) => {
    // An exact count for the deep page's depth (a bench-side query: not what countJobs does).
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    const conditions = [
      filter.queue ? sql`queue = ${filter.queue as string}` : sql`true`,
      filter.state ? sql`state = ${filter.state as string}` : sql`true`,
      filter.name ? sql`name = ${filter.name as string}` : sql`true`,
      filter.createdSince ? sql`created_at >= ${filter.createdSince as Date}` : sql`true`,
      filter.createdBefore ? sql`created_at < ${filter.createdBefore as Date}` : sql`true`,
    ];
    const [row] = await sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM docket.jobs WHERE ${conditions[0]!} AND ${conditions[1]!} AND ${conditions[2]!} AND ${conditions[3]!} AND ${conditions[4]!}`;
    await sql.end();
    return row!.n;
  };
  const filters: Array<[string, Record<string, unknown>]> = [
    ['no filter', {}],
    ['queue', { queue: 'queue-3' }],
    ['rare queue (0.1%)', { queue: 'queue-rare' }],
    ['rare queue, succeeded', { queue: 'queue-rare', state: 'succeeded' }],
    ['rare queue, failed', { queue: 'queue-rare', state: 'failed' }],
    ['queue with no job', { queue: 'queue-none' }],
    ['state failed', { state: 'failed' }],
    ['state succeeded', { state: 'succeeded' }],
    ['name', { name: 'job.2' }],
    ['one day', { createdSince: new Date(middle), createdBefore: new Date(middle + DAY_MS) }],
    ['last 7 days', { createdSince: new Date(Date.now() - 7 * DAY_MS) }],
    ['before the last 3 days', { createdBefore: new Date(Date.now() - 3 * DAY_MS) }],
    ['one day, rare queue', { queue: 'queue-rare', createdSince: new Date(middle), createdBefore: new Date(middle + DAY_MS) }],
    ['queue + state + name', { queue: 'queue-3', state: 'failed', name: 'job.2' }],
  ];
  console.log(`\nlistJobs, pages of ${limit}, up to ${samples} calls each (fewer past ${budgetMs} ms; the count is printed) (ms)`);
  console.log(`${'filter'.padEnd(24)} ${'order'.padEnd(7)} ${'matching'.padStart(9)}   first p50   p99 (n)      deep p50   p99 (n)`);
  for (const [label, filter] of filters) {
    const matching = await matchingOf(filter);
    for (const order of ['newest', 'oldest'] as const) {
      const first = await timed(() => app.listJobs({ ...filter, order, limit }));
      const cursor = await deepCursor(app, { ...filter, order }, matching);
      const deep = await timed(() => app.listJobs({ ...filter, order, limit, cursor }));
      const firstCols = `${label.padEnd(24)} ${order.padEnd(7)} ${fmt(matching, 0).padStart(9)}   ${fmt(first.p50).padStart(9)} ${fmt(first.p99).padStart(5)} (${first.n})`;
      console.log(`${firstCols.padEnd(68)}${fmt(deep.p50).padStart(8)} ${fmt(deep.p99).padStart(5)} (${deep.n})`);
    }
  }
  console.log(`\ncountJobs, ${samples} calls each (ms)`);
  for (const [label, options] of [
    ['every queue and state', {}],
    ['one queue', { queue: 'queue-3' }],
    ['failed, every queue', { state: 'failed' }],
    ['all but succeeded', { state: ['pending', 'running', 'waiting', 'failed', 'cancelled'] }],
    ['succeeded, one queue', { queue: 'queue-3', state: 'succeeded' }],
    ['succeeded, rare queue', { queue: 'queue-rare', state: 'succeeded' }],
    ['exactLimit 10,000', { exactLimit: 10_000 }],
  ] as const) {
    const t = await timed(() => app.countJobs(options));
    console.log(`${label.padEnd(24)} p50 ${fmt(t.p50).padStart(6)}   p99 ${fmt(t.p99).padStart(6)}`);
  }
  const counts = (await app.countJobs()) as Array<{ queue: string; state: string; count: number; exact: boolean }>;
  const estimated = counts.filter((c) => !c.exact);
  console.log(
    `\n${counts.length} (queue, state) groups, ${estimated.length} estimated; e.g. ${estimated
      .slice(0, 2)
      .map((c) => `${c.queue}/${c.state} ≈ ${fmt(c.count, 0)}`)
      .join(', ')}`,
  );
  await app.close();
} finally {
  await dropDatabase(server, db).catch(() => {});
  await server.stop();
}
