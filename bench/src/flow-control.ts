/**
 * What flow control costs (@docket/plugin-concurrency). N no-op jobs are pushed into a fresh
 * database, then drained by in-process workers, timed from the workers' start to the last job
 * settled. Three comparisons, each reported as a ratio to its baseline measured in the same run:
 *
 *   installed, no limit reached — `plain` (no plugin) against
 *     `unlisted`        the plugin installed, the drained queue not governed (the column, the indexes);
 *     `cap-unreached`   the queue capped at 1,000,000 (every claim: lock, count, per-key claim);
 *     `keys-unreached`  per-key limit 1,000, jobs spread over 1,000 keys (lock, counts, budgets);
 *   per-key limit 1   — `keyed-1` (1,000 keys, limit 1; --keyed-jobs, default 100,000) against
 *     `plain-keyed` (the same number of jobs, no plugin);
 *   global cap 10     — `cap10-2w` (two workers, each concurrency 10, queue capped at 10) against
 *     `c10-1w` (one worker at concurrency 10 and prefetch 0: also at most 10 claimed at once).
 *
 * Workers use the bench's queue options (concurrency 10, prefetch 500) unless said otherwise. Each
 * round runs every scenario once, starting one further along the list, after an uncounted
 * warm-up, so load from other processes falls on all alike. Reported per scenario: jobs/s
 * (median), the ratio to its baseline, CPU per job of this process and of the drain's PostgreSQL
 * backends (and that ratio, which load from other processes moves less than wall time), and the
 * drain database's shared-buffer accesses per job, a count such load does not move at all.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres pnpm --filter @docket/bench flow-control -- --rounds 3
 *   options: --jobs N (20000), --keyed-jobs N (100000), --rounds N (3), --scenarios LIST (default: all)
 */

import { execFileSync } from 'node:child_process';
import { Docket, type DocketPlugin, defineJob, Worker } from '@docket/core';
import { concurrency } from '@docket/plugin-concurrency';
import postgres from 'postgres';
import { backendCpu, backendCpuSpent } from './backend-cpu.js';
import { bufferAccesses } from './buffer-accesses.js';
import { nowUs } from './clock.js';
import { createDatabase, dropDatabase, serverVersion, startServer, stopServer } from './db.js';
import { fmt, median } from './stats.js';
import { DOCKET_JOB_OPTIONS, DOCKET_QUEUE, DOCKET_WORKER_QUEUE_OPTIONS, docketRemaining } from './systems/docket.js';

const argv = process.argv.slice(2).filter((a) => a !== '--');
const arg = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
};

const KEYS = 1000;

interface Scenario {
  /** What it is compared with (its own name for a baseline). */
  baseline: string;
  /** The plugins of one app (fresh per app: a plugin value serves one app). */
  plugins: () => DocketPlugin[];
  /** Jobs are spread over KEYS concurrency keys. */
  keyed: boolean;
  /** Uses --keyed-jobs rather than --jobs. */
  large: boolean;
  workers: number;
  queue: { concurrency: number; prefetch: number };
}

const governed = (rules: Parameters<typeof concurrency>[0]['queues'][string]) => () => [concurrency({ queues: { [DOCKET_QUEUE]: rules } })];
const SCENARIOS: Record<string, Scenario> = {
  plain: { baseline: 'plain', plugins: () => [], keyed: false, large: false, workers: 1, queue: DOCKET_WORKER_QUEUE_OPTIONS },
  unlisted: {
    baseline: 'plain',
    plugins: () => [concurrency({ queues: { elsewhere: { max: 5 } } })],
    keyed: false,
    large: false,
    workers: 1,
    queue: DOCKET_WORKER_QUEUE_OPTIONS,
  },
  'cap-unreached': {
    baseline: 'plain',
    plugins: governed({ max: 1_000_000 }),
    keyed: false,
    large: false,
    workers: 1,
    queue: DOCKET_WORKER_QUEUE_OPTIONS,
  },
  'keys-unreached': {
    baseline: 'plain',
    plugins: governed({ keyLimit: 1000 }),
    keyed: true,
    large: false,
    workers: 1,
    queue: DOCKET_WORKER_QUEUE_OPTIONS,
  },
  'plain-keyed': { baseline: 'plain-keyed', plugins: () => [], keyed: false, large: true, workers: 1, queue: DOCKET_WORKER_QUEUE_OPTIONS },
  'keyed-1': {
    baseline: 'plain-keyed',
    plugins: governed({ keyLimit: 1 }),
    keyed: true,
    large: true,
    workers: 1,
    queue: DOCKET_WORKER_QUEUE_OPTIONS,
  },
  'c10-1w': { baseline: 'c10-1w', plugins: () => [], keyed: false, large: false, workers: 1, queue: { concurrency: 10, prefetch: 0 } },
  'cap10-2w': { baseline: 'c10-1w', plugins: governed({ max: 10 }), keyed: false, large: false, workers: 2, queue: DOCKET_WORKER_QUEUE_OPTIONS },
};

const jobs = Number(arg('--jobs', '20000'));
const keyedJobs = Number(arg('--keyed-jobs', '100000'));
const rounds = Number(arg('--rounds', '3'));
const scenarios = arg('--scenarios', Object.keys(SCENARIOS).join(','))
  .split(',')
  .map((c) => c.trim())
  .filter(Boolean);
for (const name of scenarios) {
  if (!SCENARIOS[name]) throw new Error(`unknown scenario '${name}'; known: ${Object.keys(SCENARIOS).join(', ')}`);
}
for (const n of [jobs, keyedJobs, rounds])
  if (!Number.isInteger(n) || n < 1) throw new Error('--jobs, --keyed-jobs and --rounds take positive integers');

interface Sample {
  rate: number;
  /** This process's CPU (workers and apps) per job, µs. */
  nodeUs: number;
  /** CPU of the drain database's backends per job, µs. */
  pgUs: number;
  /** Shared-buffer accesses of the drain's database per job (counted, not timed: load does not move it). */
  blocks: number;
}

async function drain(server: Awaited<ReturnType<typeof startServer>>, name: string, total: number): Promise<Sample> {
  const scenario = SCENARIOS[name]!;
  const db = `flow_control_${process.pid}_${name.replace(/\W/g, '_')}`;
  const url = await createDatabase(server, db);
  const producer = new Docket({ connection: url, plugins: scenario.plugins() });
  const apps = Array.from({ length: scenario.workers }, () => new Docket({ connection: url, plugins: scenario.plugins() }));
  const check = postgres(url, { max: 1, onnotice: () => {} });
  const workers: Worker[] = [];
  try {
    await producer.migrate();
    let done = 0;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const noop = defineJob(DOCKET_JOB_OPTIONS, async (_args: { i: number }) => {
      if (++done === total) finish();
    });
    for (let i = 0; i < total; i += 20_000) {
      const batch: Array<ReturnType<typeof noop.withArgs>> = [];
      for (let k = i; k < Math.min(total, i + 20_000); k++) {
        const job = noop.withArgs({ i: k });
        batch.push(scenario.keyed ? job.withConcurrencyKey(`key-${k % KEYS}`) : job);
      }
      await producer.pushMany(batch);
    }
    await producer.close();
    await check`vacuum analyze docket.jobs`;
    // Counted from here (every earlier session has closed and reported): the workers' apps' migrate
    // (it finds every migration applied) and LISTEN fall in the count, a few hundred blocks.
    const blocks0 = await bufferAccesses(check);
    for (const app of apps) {
      await app.migrate();
      workers.push(new Worker(app, { jobs: [noop], queues: { [DOCKET_QUEUE]: scenario.queue } }));
    }
    const pg0 = await backendCpu(check);
    const cpu0 = process.cpuUsage();
    const t0 = nowUs();
    await Promise.all(workers.map((w) => w.start()));
    await finished;
    while ((await docketRemaining(check)) > 0) await new Promise((r) => setTimeout(r, 1));
    const wallS = (nowUs() - t0) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    const pgS = backendCpuSpent(pg0, await backendCpu(check));
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await Promise.all(apps.map((a) => a.close()));
    const blocks = (await bufferAccesses(check)) - blocks0;
    return { rate: total / wallS, nodeUs: (cpu.user + cpu.system) / total, pgUs: (pgS / total) * 1e6, blocks: blocks / total };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await producer.close();
    await check.end({ timeout: 5 });
    await dropDatabase(server, db);
  }
}

function revision(): string {
  try {
    return execFileSync('git', ['log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim().slice(0, 100);
  } catch {
    return 'unknown revision';
  }
}

function loadAverage(): string {
  try {
    return execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

const server = await startServer((line) => console.log(line));
const onSignal = (code: number) => void stopServer().finally(() => process.exit(code));
process.on('SIGINT', () => onSignal(130));
process.on('SIGTERM', () => onSignal(143));
try {
  console.log(`flow-control: ${jobs} jobs (${keyedJobs} for the keyed pair), ${rounds} round(s), scenarios ${scenarios.join(', ')}`);
  console.log(`${await serverVersion(server)}; ${server.origin}; ${revision()}; load average ${loadAverage()}`);
  // Not counted: the first drains of a process run while V8 compiles the paths.
  for (const name of ['plain', 'keys-unreached']) await drain(server, name, Math.min(jobs, 5000));
  const samples = new Map<string, Sample[]>(scenarios.map((c) => [c, []]));
  for (let r = 1; r <= rounds; r++) {
    const order = scenarios.map((_, i) => scenarios[(i + r - 1) % scenarios.length]!);
    for (const name of order) {
      const total = SCENARIOS[name]!.large ? keyedJobs : jobs;
      const s = await drain(server, name, total);
      samples.get(name)!.push(s);
      console.log(
        `round ${r}  ${name.padEnd(14)} ${fmt(s.rate, 0).padStart(7)} jobs/s  node ${fmt(s.nodeUs, 1)} µs/job  postgres ${fmt(s.pgUs, 1)} µs/job  ${fmt(s.blocks, 1)} blocks/job  (load ${loadAverage()})`,
      );
    }
  }
  const cpuPerJob = (list: Sample[]) => median(list.map((s) => s.nodeUs + s.pgUs));
  console.log(
    `\nmedian over ${rounds} round(s); ratio: median jobs/s over its baseline's median in this run; cpu ratio: baseline's CPU per job over this one's`,
  );
  console.log(
    `${'scenario'.padEnd(15)} ${'baseline'.padEnd(12)} ${'jobs/s'.padStart(7)}  ${'ratio'.padStart(5)}  ${'node µs/job'.padStart(11)}  ${'pg µs/job'.padStart(9)}  ${'cpu ratio'.padStart(9)}  ${'blocks/job'.padStart(10)}  rounds (jobs/s)`,
  );
  for (const [name, list] of samples) {
    const base = samples.get(SCENARIOS[name]!.baseline);
    const rate = median(list.map((s) => s.rate));
    const baseRate = base ? median(base.map((s) => s.rate)) : Number.NaN;
    const baseCpu = base ? cpuPerJob(base) : Number.NaN;
    console.log(
      `${name.padEnd(15)} ${SCENARIOS[name]!.baseline.padEnd(12)} ${fmt(rate, 0).padStart(7)}  ${fmt(rate / baseRate, 2).padStart(5)}  ${fmt(median(list.map((s) => s.nodeUs)), 1).padStart(11)}  ` +
        `${fmt(median(list.map((s) => s.pgUs)), 1).padStart(9)}  ${fmt(baseCpu / cpuPerJob(list), 2).padStart(9)}  ${fmt(median(list.map((s) => s.blocks)), 1).padStart(10)}  ${list.map((s) => fmt(s.rate, 0)).join(' / ')}`,
    );
  }
} finally {
  await stopServer();
}
