/**
 * The workloads, each run for one system in one round on a fresh database (or Redis prefix).
 * Every function returns metric samples (see report.ts for their names and units).
 */
import { nowUs, sleep } from './clock.js';
import { type Config, SCALE_PROCESSES } from './config.js';
import { createDatabase, dropDatabase, type Server } from './db.js';
import { type Message, WorkerProcess } from './proc.js';
import { percentile } from './stats.js';
import type { MixedItem, Payload, Session, SystemAdapter } from './systems/types.js';
import type { MixedSummary } from './workers/common.js';

export type Samples = Record<string, number>;
export type Log = (line: string) => void;

export interface Target {
  url: string;
  namespace: string;
  database: string | null;
}

let sequence = 0;
export function runId(): string {
  return `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
}

export async function freshTarget(server: Server, system: SystemAdapter, label: string, template?: string): Promise<Target> {
  const name = `bench_${system.id.replace(/-/g, '_')}_${label}_${++sequence}`;
  if (!system.usesPostgres) return { url: '', namespace: `bench:${runId()}:${name}`, database: null };
  const url = await createDatabase(server, name, template);
  return { url, namespace: name, database: name };
}

export async function releaseTarget(server: Server, target: Target): Promise<void> {
  if (target.database) await dropDatabase(server, target.database);
}

const payloads = (n: number, offset = 0): Payload[] => Array.from({ length: n }, (_, j) => ({ i: offset + j }));

/** Polls the system's storage until no job of the bench queue is left unfinished. */
async function untilFinished(session: Session, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await session.remaining();
    if (left === 0) return nowUs();
    if (Date.now() > deadline) throw new Error(`${left} jobs still unfinished in storage after ${timeoutMs} ms`);
    await sleep(1);
  }
}

interface DrainResult {
  jobsPerSecond: number;
  startupMs: number;
  rssAtFirst: number;
  rssPeak: number;
  rssEnd: number;
  rssGrowth: number;
}

/**
 * One worker process drains `n` queued jobs. Timed from its first handler start (reported over IPC
 * with the shared monotonic clock) to the moment the parent sees every job finished in storage,
 * so startup (connecting, migrations checks) is excluded alike and batched completion must land.
 */
async function timedDrain(system: SystemAdapter, target: Target, session: Session, n: number, config: Config): Promise<DrainResult> {
  const spec = system.worker(target);
  const proc = new WorkerProcess(spec.entry, {
    ...spec.env,
    BENCH_MODE: 'drain',
    BENCH_EXPECTED: String(n),
    BENCH_CONCURRENCY: String(config.concurrency),
  });
  try {
    await proc.wait('ready', 60_000);
    proc.startRss(25);
    const sent = nowUs();
    proc.send('start');
    const first = await proc.wait('first', 60_000);
    await proc.wait('handled', 600_000);
    const end = await untilFinished(session, 60_000);
    proc.stopRss();
    const t0 = first.t!;
    const during = proc.rss.filter((s) => s.t >= t0 && s.t <= end);
    const atFirst = during[0]?.mb ?? proc.rss.at(-1)?.mb ?? NaN;
    const last = during.at(-1)?.mb ?? NaN;
    return {
      jobsPerSecond: n / ((end - t0) / 1e6),
      startupMs: (t0 - sent) / 1000,
      rssAtFirst: atFirst,
      rssPeak: during.length ? Math.max(...during.map((s) => s.mb)) : NaN,
      rssEnd: last,
      rssGrowth: last - atFirst,
    };
  } finally {
    await proc.stop();
  }
}

/** Bulk enqueue of `config.bulk` jobs (timed), then the drain of those jobs by a worker process. */
export async function drainWorkload(server: Server, system: SystemAdapter, config: Config, log: Log): Promise<Samples> {
  const target = await freshTarget(server, system, 'drain');
  const session = await system.open(target);
  const out: Samples = {};
  try {
    const t0 = nowUs();
    await session.bulk(payloads(config.bulk));
    out.bulk = config.bulk / ((nowUs() - t0) / 1e6);
    if (config.drain !== config.bulk) throw new Error('drain size must equal bulk size');
    const r = await timedDrain(system, target, session, config.drain, config);
    Object.assign(out, {
      drain: r.jobsPerSecond,
      startup: r.startupMs,
      rss_first: r.rssAtFirst,
      rss_peak: r.rssPeak,
      rss_growth: r.rssGrowth,
    });
    log(
      `    bulk ${Math.round(out.bulk!)} jobs/s, drain ${Math.round(r.jobsPerSecond)} jobs/s, startup ${Math.round(r.startupMs)} ms, RSS ${r.rssAtFirst.toFixed(0)}→${r.rssPeak.toFixed(0)} MB`,
    );
    return out;
  } finally {
    await session.close().catch(() => {});
    await releaseTarget(server, target);
  }
}

/**
 * The same drain with `config.bareBig` jobs (100,000: the size of the bare loop's larger run, so
 * the two compare like for like), pushed in bulk calls of `config.bulk`.
 */
export async function bigDrainWorkload(server: Server, system: SystemAdapter, config: Config, log: Log): Promise<Samples> {
  const target = await freshTarget(server, system, 'bigdrain');
  const session = await system.open(target);
  try {
    const n = config.bareBig;
    for (let done = 0; done < n; done += config.bulk) await session.bulk(payloads(Math.min(config.bulk, n - done), done));
    const r = await timedDrain(system, target, session, n, config);
    log(`    drain of ${n} jobs: ${Math.round(r.jobsPerSecond)} jobs/s`);
    return { drain_big: r.jobsPerSecond };
  } finally {
    await session.close().catch(() => {});
    await releaseTarget(server, target);
  }
}

/**
 * The same drain (`config.scaleJobs` jobs) by 1, 2 and 4 worker processes at once, each at the
 * usual concurrency, timed from the first start in any process to every job finished in storage.
 * One fresh database per count; the counts run in turn within a round.
 */
export async function scaleWorkload(server: Server, system: SystemAdapter, config: Config, log: Log): Promise<Samples> {
  const out: Samples = {};
  for (const processes of SCALE_PROCESSES) {
    const target = await freshTarget(server, system, `scale${processes}`);
    const session = await system.open(target);
    const n = config.scaleJobs;
    const spec = system.worker(target);
    const procs: WorkerProcess[] = [];
    try {
      for (let done = 0; done < n; done += config.bulk) await session.bulk(payloads(Math.min(config.bulk, n - done), done));
      for (let p = 0; p < processes; p++) {
        procs.push(
          new WorkerProcess(spec.entry, {
            ...spec.env,
            BENCH_MODE: 'drain',
            // No process handles them all: completion is read from storage.
            BENCH_EXPECTED: String(n + 1),
            BENCH_CONCURRENCY: String(config.concurrency),
          }),
        );
      }
      await Promise.all(procs.map((proc) => proc.wait('ready', 60_000)));
      for (const proc of procs) proc.send('start');
      const firsts = procs.map((proc) => proc.wait('first', 60_000).then((m) => m.t!));
      const t0 = await Promise.race(firsts);
      const end = await untilFinished(session, 600_000);
      const rate = n / ((end - t0) / 1e6);
      out[`scale_${processes}`] = rate;
      log(`    ${processes} worker process${processes > 1 ? 'es' : ''}: ${Math.round(rate)} jobs/s`);
    } finally {
      await Promise.all(procs.map((proc) => proc.stop()));
      await session.close().catch(() => {});
      await releaseTarget(server, target);
    }
  }
  return out;
}

/** Push-to-start latency on an idle worker, then (worker stopped) the sequential single enqueues. */
export async function latencyWorkload(
  server: Server,
  system: SystemAdapter,
  config: Config,
  log: Log,
  withSingle: boolean,
  withLatency: boolean,
): Promise<Samples> {
  const target = await freshTarget(server, system, 'latency');
  const session = await system.open(target);
  const out: Samples = {};
  try {
    if (withLatency) {
      const n = config.latencyPushes;
      const spec = system.worker(target);
      const proc = new WorkerProcess(spec.entry, {
        ...spec.env,
        BENCH_MODE: 'latency',
        BENCH_EXPECTED: String(n),
        BENCH_CONCURRENCY: String(config.concurrency),
      });
      const started = new Map<number, number>();
      proc.onMessage = (m: Message) => {
        if (m.type === 'start' && m.i !== undefined && !started.has(m.i)) started.set(m.i, m.t!);
      };
      const pushed = new Map<number, number>();
      try {
        await proc.wait('ready', 60_000);
        proc.send('start');
        await proc.wait('started', 60_000);
        await sleep(1000); // idle: let the worker settle into waiting for jobs
        const interval = 1000 / config.latencyRate;
        const t0 = nowUs();
        for (let i = 0; i < n; i++) {
          const wait = (t0 + i * interval * 1000 - nowUs()) / 1000;
          if (wait > 0) await sleep(wait);
          pushed.set(i, nowUs());
          await session.single({ i });
        }
        await proc.wait('handled', 60_000);
      } finally {
        await proc.stop();
      }
      const samples = [...pushed].filter(([i]) => started.has(i)).map(([i, t]) => (started.get(i)! - t) / 1000);
      out.lat_p50 = percentile(samples, 50);
      out.lat_p95 = percentile(samples, 95);
      out.lat_p99 = percentile(samples, 99);
      log(
        `    latency p50 ${out.lat_p50.toFixed(2)} ms, p95 ${out.lat_p95.toFixed(2)} ms, p99 ${out.lat_p99.toFixed(2)} ms (${samples.length} pushes)`,
      );
    }
    if (withSingle) {
      const n = config.single;
      const t0 = nowUs();
      for (let i = 0; i < n; i++) await session.single({ i: 1_000_000 + i });
      out.single = n / ((nowUs() - t0) / 1e6);
      log(`    single enqueue ${Math.round(out.single)} jobs/s`);
    }
    return out;
  } finally {
    await session.close().catch(() => {});
    await releaseTarget(server, target);
  }
}

const templates = new Map<string, string>();

/** The drain again, with `config.history` finished jobs of the same queue left in the table. */
export async function historyWorkload(server: Server, system: SystemAdapter, config: Config, log: Log): Promise<Samples> {
  if (system.history !== true && typeof system.history === 'string' && system.history.startsWith('not measured')) {
    throw new Error(system.history);
  }
  let template = templates.get(system.id);
  if (!template) {
    const seed = await freshTarget(server, system, 'tpl');
    const session = await system.open(seed);
    const t0 = nowUs();
    try {
      const what = await session.seedFinished(config.history, log);
      log(`    seeded ${what} in ${((nowUs() - t0) / 1e6).toFixed(1)} s (template ${seed.database}, cloned per round)`);
    } finally {
      await session.close();
    }
    template = seed.database!;
    templates.set(system.id, template);
  }
  const target = await freshTarget(server, system, 'hist', template);
  const session = await system.open(target);
  try {
    await session.bulk(payloads(config.drain, 10_000_000));
    const r = await timedDrain(system, target, session, config.drain, config);
    log(
      `    drain with ${config.history.toLocaleString('en-US')} finished: ${Math.round(r.jobsPerSecond)} jobs/s, RSS ${r.rssAtFirst.toFixed(0)}→${r.rssPeak.toFixed(0)} MB`,
    );
    return { hist_drain: r.jobsPerSecond, hist_rss_peak: r.rssPeak };
  } finally {
    await session.close().catch(() => {});
    await releaseTarget(server, target);
  }
}

export async function dropTemplates(server: Server): Promise<void> {
  for (const t of templates.values()) await dropDatabase(server, t).catch(() => {});
  templates.clear();
}

/** Deterministic shuffle (so FIFO order differs from priority order, the same for every system). */
function shuffle<T>(items: T[], seed = 42): T[] {
  let s = seed;
  const rand = () => (s = (s * 1_103_515_245 + 12_345) & 0x7fffffff) / 0x7fffffff;
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export function mixedDefinition(config: Config): string {
  const m = config.mixed;
  return [
    `Mixed run: ${m.toLocaleString('en-US')} jobs queued (shuffled) before the worker starts:`,
    `  ${Math.round(m * 0.7).toLocaleString('en-US')} normal no-op, ${Math.round(m * 0.2).toLocaleString('en-US')} high-priority no-op,`,
    `  ${Math.round(m * 0.1).toLocaleString('en-US')} that throw on their first attempt and succeed on the second (max 2 attempts, each system's`,
    `  shortest retry delay: 0 where configurable; graphile-worker's is fixed at e^1 ≈ 2.7 s);`,
    `  plus ${config.mixedScheduled} jobs pushed when the first job starts, scheduled uniformly 0.5–2.5 s ahead.`,
    `  makespan = first start → every job finished in storage; priority = share of the high-priority jobs`,
    `  among the first ${Math.round(m * 0.2).toLocaleString('en-US')} first-attempt starts of normal+high jobs (100% = strict priority, ~20% = FIFO);`,
    `  lateness = start − due time of the scheduled jobs; retry delay = failure → second start.`,
  ].join('\n');
}

export async function mixedWorkload(server: Server, system: SystemAdapter, config: Config, log: Log): Promise<Samples> {
  const target = await freshTarget(server, system, 'mixed');
  const session = await system.open(target);
  const m = config.mixed;
  const nNormal = Math.round(m * 0.7);
  const nHigh = Math.round(m * 0.2);
  const nRetry = m - nNormal - nHigh;
  const items: MixedItem[] = shuffle([
    ...Array.from({ length: nNormal }, () => ({ k: 'n' as const })),
    ...Array.from({ length: nHigh }, () => ({ k: 'h' as const })),
    ...Array.from({ length: nRetry }, () => ({ k: 'r' as const })),
  ]).map(({ k }, i) => ({ payload: { i, k }, high: k === 'h', maxAttempts: k === 'r' ? 2 : 1 }));
  try {
    await session.mixed(items);
    const spec = system.worker(target);
    const expected = m + config.mixedScheduled;
    const proc = new WorkerProcess(spec.entry, {
      ...spec.env,
      BENCH_MODE: 'mixed',
      BENCH_EXPECTED: String(expected),
      BENCH_CONCURRENCY: String(config.concurrency),
    });
    let summary: MixedSummary;
    let t0: number;
    let end: number;
    try {
      await proc.wait('ready', 60_000);
      proc.send('start');
      t0 = (await proc.wait('first', 60_000)).t!;
      const now = Date.now();
      const scheduled: MixedItem[] = Array.from({ length: config.mixedScheduled }, (_, j) => {
        const at = now + 500 + Math.round((2000 * j) / Math.max(1, config.mixedScheduled - 1));
        return { payload: { i: m + j, k: 's', at }, runAt: new Date(at), maxAttempts: 1 };
      });
      await session.mixed(scheduled);
      const handled = await proc.wait('handled', 120_000);
      summary = handled.summary as MixedSummary;
      end = await untilFinished(session, 60_000);
    } finally {
      await proc.stop();
    }
    const firstSlots = summary.order.slice(0, nHigh);
    const out: Samples = {
      mixed_makespan: (end - t0) / 1e6,
      mixed_prio: (100 * [...firstSlots].filter((c) => c === 'h').length) / Math.max(1, nHigh),
      mixed_late_p50: percentile(summary.lateness, 50),
      mixed_late_p99: percentile(summary.lateness, 99),
      mixed_retry_p50: percentile(summary.retryDelays, 50),
    };
    log(
      `    mixed: makespan ${out.mixed_makespan!.toFixed(2)} s, priority ${out.mixed_prio!.toFixed(0)}%, lateness p50 ${out.mixed_late_p50!.toFixed(0)} ms p99 ${out.mixed_late_p99!.toFixed(0)} ms, retry delay p50 ${out.mixed_retry_p50!.toFixed(0)} ms`,
    );
    return out;
  } finally {
    await session.close().catch(() => {});
    await releaseTarget(server, target);
  }
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/**
 * One long drain (`config.rssJobs`), the worker reporting its progress every 1% of the jobs; the
 * parent pairs each progress report with the RSS sampled nearest to it. Flat means no growth with
 * jobs processed once warm: the slope is fitted from 10% of the jobs on.
 */
export async function rssWorkload(server: Server, system: SystemAdapter, config: Config, log: Log): Promise<Samples> {
  const target = await freshTarget(server, system, 'rss');
  const session = await system.open(target);
  const n = config.rssJobs;
  try {
    const t0 = nowUs();
    for (let done = 0; done < n; done += 20_000) await session.bulk(payloads(Math.min(20_000, n - done), done));
    log(`    ${n.toLocaleString('en-US')} jobs queued in ${((nowUs() - t0) / 1e6).toFixed(1)} s`);
    const spec = system.worker(target);
    const every = Math.max(1, Math.floor(n / 100));
    const proc = new WorkerProcess(spec.entry, {
      ...spec.env,
      BENCH_MODE: 'drain',
      BENCH_EXPECTED: String(n),
      BENCH_PROGRESS_EVERY: String(every),
      BENCH_CONCURRENCY: String(config.concurrency),
    });
    const progress: { n: number; t: number }[] = [];
    proc.onMessage = (m) => {
      if (m.type === 'progress') progress.push({ n: m.n!, t: m.t! });
    };
    let first: number;
    let end: number;
    try {
      await proc.wait('ready', 60_000);
      proc.startRss(100);
      proc.send('start');
      first = (await proc.wait('first', 60_000)).t!;
      await proc.wait('handled', 3_600_000);
      end = await untilFinished(session, 120_000);
    } finally {
      await proc.stop();
    }
    const rssAt = (t: number) => {
      let best = proc.rss[0];
      for (const s of proc.rss) if (Math.abs(s.t - t) < Math.abs(best!.t - t)) best = s;
      return best?.mb ?? NaN;
    };
    const points: [number, number][] = progress.map((p) => [p.n, rssAt(p.t)]);
    const warm = points.filter(([x]) => x >= n * 0.1);
    const at10 = warm[0]?.[1] ?? NaN;
    const atEnd = points.at(-1)?.[1] ?? NaN;
    const out: Samples = {
      rss_long_drain: n / ((end - first) / 1e6),
      rss_long_10: at10,
      rss_long_end: atEnd,
      rss_long_peak: proc.rss.length ? Math.max(...proc.rss.map((s) => s.mb)) : NaN,
      rss_long_slope: slope(warm) * 100_000,
    };
    log(
      `    drain ${Math.round(out.rss_long_drain!)} jobs/s; RSS at 10% ${at10.toFixed(0)} MB, at the end ${atEnd.toFixed(0)} MB, peak ${out.rss_long_peak!.toFixed(0)} MB, slope ${out.rss_long_slope!.toFixed(2)} MB per 100k jobs`,
    );
    return out;
  } finally {
    await session.close().catch(() => {});
    await releaseTarget(server, target);
  }
}
