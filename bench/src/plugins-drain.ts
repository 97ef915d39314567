/**
 * The plugin tax: what each plugin package costs a drain of plain jobs that use none of its
 * features. N no-op jobs are pushed (pushMany, 20,000 per call) into a fresh database, then drained
 * by one in-process worker, timed from `worker.start()` to the last job settled (none pending or
 * running). Configurations: `none`, each plugin alone, `all`, `logs-used` (every job writes two
 * log lines: the cost of the feature in use, not a tax), and `progress-1000` (no plugin; one more
 * job, on a queue of its own on the same worker, calls `ctx.progress` a thousand times a second for
 * as long as the drain lasts: what a chatty handler costs the drain) with its control
 * `progress-idle` (the same job's loop, without the reports). Each round runs every configuration once,
 * starting one further along the list each round, so load from other processes on the machine
 * falls on all of them alike (after an uncounted warm-up drain). Reported: jobs/s per configuration
 * (median over rounds) and its ratio to `none` of the same run; CPU per job of this process and of
 * the drain's PostgreSQL backends, and the ratio of CPU per job, which shared-machine load moves less;
 * shared-buffer accesses per job of the drain's database, which it does not move at all.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres pnpm --filter @docket/bench plugins-drain -- --rounds 3
 *   options: --jobs N (50000), --rounds N (3), --configs LIST (default: all of them), --cpu-prof PREFIX,
 *            --scrape-ms N (1000; 0: no scrape), --json FILE (the summary, for `pnpm bench`'s targets)
 *
 * Every plugin is configured as an application would: defaults, a cron schedule (daily, 12 hours
 * from now, so it does not fire during the drain), a signals listener for failures, a rate limit
 * and an aging rule on another queue. Two more configurations put the flow-control rules on the
 * drained queue itself, where they never bite: `ratelimit-unreached` (a limit the drain cannot
 * reach: every claim is shaped, in its own transaction, with the window locked, read and written)
 * and `aging-unreached` (a step longer than the drain: every job is pushed with the aging marker
 * and sits in the aging index, the periodic run finds nothing due). The metrics exporter is scraped
 * every second during the drain (`--scrape-ms`; Prometheus scrapes every 15-60 s), and the tracing
 * plugin runs without an OpenTelemetry SDK (its cost when tracing is off).
 */

import { execFileSync } from 'node:child_process';
import { Docket, type DocketPlugin, defineJob, type JobContext, Worker } from '@docket/core';
import { cron } from '@docket/plugin-cron';
import { deadLetters } from '@docket/plugin-dead-letter';
import { expiry } from '@docket/plugin-expiry';
import { leadership } from '@docket/plugin-leadership';
import { jobLogs } from '@docket/plugin-logs';
import { metrics } from '@docket/plugin-metrics';
import { otel } from '@docket/plugin-otel';
import { priorityAging } from '@docket/plugin-priority-aging';
import { pruner } from '@docket/plugin-pruner';
import { ratelimit } from '@docket/plugin-ratelimit';
import { recovery } from '@docket/plugin-recovery';
import { signals } from '@docket/plugin-signals';
import { unique } from '@docket/plugin-unique';
import { workflows } from '@docket/plugin-workflow';
import postgres from 'postgres';
import { backendCpu, backendCpuSpent } from './backend-cpu.js';
import { bufferAccesses } from './buffer-accesses.js';
import { nowUs } from './clock.js';
import { profiled } from './cpu-profile.js';
import { createDatabase, dropDatabase, serverVersion, startServer, stopServer } from './db.js';
import { fmt, median } from './stats.js';
import { type PluginsSummary, writeSummary } from './summaries.js';
import { DOCKET_JOB_OPTIONS, DOCKET_QUEUE, DOCKET_WORKER_QUEUE_OPTIONS, docketRemaining } from './systems/docket.js';

const argv = process.argv.slice(2).filter((a) => a !== '--');
const arg = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
};

/** A job the cron schedule would push; never run here. */
const report = defineJob({ name: 'daily-report', queue: 'reports' }, async () => {});

/** A daily schedule at the hour twelve hours from now (UTC): it cannot fire during a drain. */
function quietSchedule(): string {
  return `0 ${(new Date().getUTCHours() + 12) % 24} * * *`;
}

/** The plugins of one application, fresh for each app (a plugin value serves one app). */
const PLUGINS: Record<string, () => DocketPlugin[]> = {
  leadership: () => [leadership()],
  recovery: () => [recovery()],
  pruner: () => [pruner()],
  cron: () => [cron({ schedules: [{ name: 'daily-report', cron: quietSchedule(), job: report }] })],
  unique: () => [unique()],
  signals: () => [signals()],
  logs: () => [jobLogs()],
  workflow: () => [workflows()],
  ratelimit: () => [ratelimit({ queues: { emails: { limit: 50, periodMs: 1000 } } })],
  'priority-aging': () => [priorityAging({ queues: { reports: { everyMs: 60_000, maxPriority: 10 } } })],
  metrics: () => [metrics()],
  otel: () => [otel()],
  expiry: () => [expiry()],
  'dead-letter': () => [deadLetters()],
};

/** The plugins' migrations alone: plugins that apply nothing (no taps, no tasks), under names of their own. */
function schemaOnly(plugins: DocketPlugin[]): DocketPlugin[] {
  return plugins.map((p) => ({
    name: `schema/${p.name}`,
    dependencies: p.dependencies?.map((d) => `schema/${d}`),
    migrations: p.migrations,
    apply() {},
  }));
}

interface Config {
  /** The app's plugins. */
  plugins: () => DocketPlugin[];
  /** Whether each job writes two log lines (the logs plugin in use). */
  logs: boolean;
  /** A handler on a queue of its own, during the drain: reporting progress 1,000 times a second, or running the same loop idle. */
  progress?: 'report' | 'idle';
}

const CONFIGS: Record<string, Config> = {
  none: { plugins: () => [], logs: false },
  ...Object.fromEntries(Object.entries(PLUGINS).map(([name, plugins]) => [name, { plugins, logs: false }])),
  all: { plugins: () => Object.values(PLUGINS).flatMap((plugins) => plugins()), logs: false },
  'logs-used': { plugins: PLUGINS.logs!, logs: true },
  'ratelimit-unreached': { plugins: () => [ratelimit({ queues: { [DOCKET_QUEUE]: { limit: 1_000_000_000, periodMs: 1000 } } })], logs: false },
  'aging-unreached': { plugins: () => [priorityAging({ queues: { [DOCKET_QUEUE]: { everyMs: 3_600_000, maxPriority: 10 } } })], logs: false },
  // Each plugin's migrations (columns, indexes, tables) without its taps or tasks: what its schema
  // costs alone (`<plugin>-schema`).
  ...Object.fromEntries(Object.entries(PLUGINS).map(([name, plugins]) => [`${name}-schema`, { plugins: () => schemaOnly(plugins()), logs: false }])),
  // Every plugin's migrations (columns, indexes, tables) without any of their taps or tasks: what
  // the schema of `all` costs the server alone.
  'all-schema': { plugins: () => schemaOnly(Object.values(PLUGINS).flatMap((plugins) => plugins())), logs: false },
  'progress-1000': { plugins: () => [], logs: false, progress: 'report' },
  // The same handler loop without the reports: what the loop itself costs, apart from ctx.progress.
  'progress-idle': { plugins: () => [], logs: false, progress: 'idle' },
};

/** The queue of the job that reports progress beside the drain (`progress-1000`). */
const PROGRESS_QUEUE = 'bench-progress';
/** Reports per second it keeps up (on average: a late timer is caught up with several reports). */
const PROGRESS_RATE = 1000;

const jobs = Number(arg('--jobs', '50000'));
const rounds = Number(arg('--rounds', '3'));
const configs = arg('--configs', Object.keys(CONFIGS).join(','))
  .split(',')
  .map((c) => c.trim())
  .filter(Boolean);
/** `--cpu-prof PREFIX`: a V8 CPU profile of each drain, written to PREFIX-<config>-r<round>.cpuprofile. */
const cpuProfile = argv.includes('--cpu-prof') ? arg('--cpu-prof', 'plugins-drain') : undefined;
const scrapeMs = Number(arg('--scrape-ms', '1000'));
const jsonPath = argv.includes('--json') ? arg('--json', '') : undefined;

for (const name of configs) {
  if (!CONFIGS[name]) throw new Error(`unknown configuration '${name}'; known: ${Object.keys(CONFIGS).join(', ')}`);
}
if (!Number.isInteger(jobs) || jobs < 1 || !Number.isInteger(rounds) || rounds < 1) throw new Error('--jobs and --rounds take positive integers');

interface Sample {
  rate: number;
  /** This process's CPU (the worker and the app) per job, µs. */
  nodeUs: number;
  /** CPU of the backends of the drain's database per job, µs. */
  pgUs: number;
  /** Shared-buffer accesses of the drain's database per job (counted, not timed). */
  blocks: number;
}

async function drain(server: Awaited<ReturnType<typeof startServer>>, name: string, round: number, jobs: number): Promise<Sample> {
  const config = CONFIGS[name]!;
  const db = `plugins_drain_${process.pid}_${name.replace(/\W/g, '_')}`;
  const url = await createDatabase(server, db);
  // One app pushes and is closed, so the server's counters of the push are reported before the
  // drain starts; a second app (plugins applied the same way) runs the worker.
  const producer = new Docket({ connection: url, plugins: config.plugins() });
  const plugins = config.plugins();
  const app = new Docket({ connection: url, plugins });
  const check = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await producer.migrate();
    let done = 0;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let drained = false;
    const noop = defineJob(DOCKET_JOB_OPTIONS, async (_args: unknown, ctx: JobContext) => {
      if (config.logs) {
        ctx.log!('started');
        ctx.log!('done');
      }
      if (++done === jobs) {
        drained = true;
        finish();
      }
    });
    // progress-1000: reports at PROGRESS_RATE per second until the drain is done (then returns).
    let reports = 0;
    let reportingMs = 0;
    const reporter = defineJob({ name: 'reporter', queue: PROGRESS_QUEUE }, async (_args: unknown, ctx: JobContext) => {
      const t0 = performance.now();
      while (!drained) {
        const due = Math.floor(((performance.now() - t0) * PROGRESS_RATE) / 1000);
        if (config.progress === 'report') while (reports < due) ctx.progress((reports++ % 1000) / 10, { reports });
        else reports = due;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      reportingMs = performance.now() - t0;
      return reports;
    });
    if (config.progress) await producer.push(reporter);
    for (let i = 0; i < jobs; i += 20_000) {
      await producer.pushMany(Array.from({ length: Math.min(20_000, jobs - i) }, (_, k) => noop.withArgs({ i: i + k })));
    }
    await producer.close();
    const maintenance = postgres(url, { max: 1, onnotice: () => {} });
    await maintenance`vacuum analyze docket.jobs`;
    await maintenance.end({ timeout: 5 });
    // Counted from here: every session so far has closed and reported. The worker app's migrate
    // (it finds every migration applied) and LISTEN fall in the drain's count: a few hundred blocks.
    const blocks0 = await bufferAccesses(check);
    await app.migrate(); // finds every migration applied; as a worker process starts
    const events = plugins.find((p) => p.name === 'signals') as ReturnType<typeof signals> | undefined;
    // As an application would: someone listens for failures (none happen here).
    if (events) await events.on('failed', () => {});
    const exporter = plugins.find((p) => p.name === 'metrics') as ReturnType<typeof metrics> | undefined;
    const worker = new Worker(app, {
      jobs: config.progress ? [noop, reporter] : [noop],
      queues: { [DOCKET_QUEUE]: DOCKET_WORKER_QUEUE_OPTIONS, ...(config.progress ? { [PROGRESS_QUEUE]: { concurrency: 1 } } : {}) },
    });
    const pg0 = await backendCpu(check);
    const cpu0 = process.cpuUsage();
    const t0 = nowUs();
    await profiled(cpuProfile && round > 0 ? `${cpuProfile}-${name}-r${round}.cpuprofile` : undefined, async () => {
      await worker.start();
      // A scrape every second while the drain runs (counters, histograms and the database gauges).
      const scraper = exporter && scrapeMs > 0 ? setInterval(() => void exporter.metrics(), scrapeMs) : undefined;
      await finished;
      clearInterval(scraper);
      while ((await docketRemaining(check)) > 0) await new Promise((r) => setTimeout(r, 1));
    });
    const wallS = (nowUs() - t0) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    const pgS = backendCpuSpent(pg0, await backendCpu(check));
    await worker.stop();
    await app.close();
    const blocks = (await bufferAccesses(check)) - blocks0;
    if (config.progress) {
      const made = config.progress === 'report' ? reports : 0;
      console.log(
        `  ${name}: ${made} reports in ${fmt(reportingMs / 1000, 2)} s (${fmt((made * 1000) / reportingMs, 0)}/s) beside a ${fmt(wallS, 2)} s drain`,
      );
    }
    return { rate: jobs / wallS, nodeUs: (cpu.user + cpu.system) / jobs, pgUs: (pgS / jobs) * 1e6, blocks: blocks / jobs };
  } finally {
    await producer.close();
    await app.close();
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

const server = await startServer((line) => console.log(line));
const onSignal = (code: number) => void stopServer().finally(() => process.exit(code));
process.on('SIGINT', () => onSignal(130));
process.on('SIGTERM', () => onSignal(143));
try {
  console.log(`plugins-drain: ${jobs} no-op jobs, ${rounds} round(s), configurations ${configs.join(', ')}`);
  console.log(`${await serverVersion(server)}; ${server.origin}; ${revision()}`);
  // Not counted: the first drain of a process runs while V8 compiles the path (the core's plain
  // path and the hooked one), which would fall on whichever configuration ran first.
  for (const name of ['none', 'all']) await drain(server, name, 0, Math.min(jobs, 10_000));
  const samples = new Map<string, Sample[]>(configs.map((c) => [c, []]));
  for (let r = 1; r <= rounds; r++) {
    // Each round starts one configuration further along, so none always runs first or last.
    const order = configs.map((_, i) => configs[(i + r - 1) % configs.length]!);
    for (const name of order) {
      const s = await drain(server, name, r, jobs);
      samples.get(name)!.push(s);
      console.log(
        `round ${r}  ${name.padEnd(11)} ${fmt(s.rate, 0).padStart(7)} jobs/s  node ${fmt(s.nodeUs, 1)} µs/job  postgres ${fmt(s.pgUs, 1)} µs/job  ${fmt(s.blocks, 1)} blocks/job`,
      );
    }
  }
  // Wall time on a shared machine swings with other processes' load; CPU per job (this process and
  // the drain's backends) swings much less, so its ratio is printed beside as a cross-check.
  const cpuPerJob = (list: Sample[]) => median(list.map((s) => s.nodeUs + s.pgUs));
  const none = samples.get('none');
  const baseRate = none ? median(none.map((s) => s.rate)) : NaN;
  const baseCpu = none ? cpuPerJob(none) : NaN;
  console.log(`\nmedian over ${rounds} round(s); ratio: median jobs/s over none's median in this run; cpu ratio: none's CPU per job over this one's`);
  console.log(
    `${'configuration'.padEnd(13)} ${'jobs/s'.padStart(7)}  ${'ratio'.padStart(5)}  ${'node µs/job'.padStart(11)}  ${'pg µs/job'.padStart(9)}  ${'cpu ratio'.padStart(9)}  ${'blocks/job'.padStart(10)}  rounds (jobs/s)`,
  );
  const summary: PluginsSummary['configs'] = {};
  for (const [name, list] of samples) {
    const rate = median(list.map((s) => s.rate));
    summary[name] = { rate, ratio: rate / baseRate, cpuRatio: baseCpu / cpuPerJob(list), blocks: median(list.map((s) => s.blocks)) };
    console.log(
      `${name.padEnd(13)} ${fmt(rate, 0).padStart(7)}  ${fmt(rate / baseRate, 2).padStart(5)}  ${fmt(median(list.map((s) => s.nodeUs)), 1).padStart(11)}  ` +
        `${fmt(median(list.map((s) => s.pgUs)), 1).padStart(9)}  ${fmt(baseCpu / cpuPerJob(list), 2).padStart(9)}  ${fmt(median(list.map((s) => s.blocks)), 1).padStart(10)}  ${list.map((s) => fmt(s.rate, 0)).join(' / ')}`,
    );
  }
  writeSummary(jsonPath, { jobs, rounds, configs: summary });
} finally {
  await stopServer();
}
