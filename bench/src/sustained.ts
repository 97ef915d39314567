/**
 * Sustained load: does Docket keep up with a steady offered rate for tens of minutes, with the
 * pruner deleting what finished, and what does a long-open transaction do to it?
 *
 * 1. Calibration: `--calibrate N` jobs (50,000; 20,000 with --quick) are pushed and drained by the
 *    worker process; the offered rate is `--load` (0.7) × that drain rate, unless `--rate R`.
 * 2. Plain run: the parent pushes at the offered rate (a pushMany every 50 ms, each job carrying
 *    its push time) for `--minutes` (10; 2 with --quick) while one worker process (workers/
 *    docket-sustained.ts: concurrency 10, prefetch 500, recovery, pruner every 5 s deleting
 *    finished jobs older than `--prune-after` seconds, 120; 30 with --quick) runs them.
 * 3. Held-xmin run: the same on a fresh database, with a REPEATABLE READ transaction open in the
 *    bench database for `--hold` seconds (120; 30 with --quick) from the middle of the run: vacuum
 *    cannot remove rows deleted after its snapshot until it ends.
 *
 * Printed per interval (60 s; 15 s with --quick): offered and completed jobs/s, push → start
 * latency p50/p99/max (the worker measures each job against its push time), the jobs table's heap
 * and index sizes, its dead tuples (pg_stat_user_tables, as autovacuum sees them), and pending
 * jobs. Then the first and last interval side by side and, for the held-xmin run, how long after
 * the transaction ended the dead tuples fell back under their level before it.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres pnpm --filter @docket/bench sustained -- --quick
 *   options: --quick, --minutes M, --rate R, --load F, --calibrate N, --prune-after S, --hold S, --runs plain,xmin,
 *            --json FILE (the summary, for `pnpm bench`'s targets)
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Docket, defineJob } from '@docket/core';
import postgres from 'postgres';
import { nowUs, sleep } from './clock.js';
import { createDatabase, dropDatabase, type Server, serverVersion, startServer, stopServer } from './db.js';
import { benchDir } from './pkg.js';
import { killAllChildren, type Message, WorkerProcess } from './proc.js';
import { fmt, percentile } from './stats.js';
import { type HeldXmin, type SustainedInterval, type SustainedRun, writeSummary } from './summaries.js';
import { DOCKET_JOB_OPTIONS, docketRemaining } from './systems/docket.js';

const argv = process.argv.slice(2).filter((a) => a !== '--');
const value = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const KNOWN = ['--quick', '--minutes', '--rate', '--load', '--calibrate', '--prune-after', '--hold', '--runs', '--json'];
for (const a of argv) if (a.startsWith('--') && !KNOWN.includes(a)) throw new Error(`unknown option ${a}; known: ${KNOWN.join(' ')}`);
const quick = argv.includes('--quick');
const minutes = Number(value('--minutes') ?? (quick ? 2 : 10));
const load = Number(value('--load') ?? 0.7);
const calibrateJobs = Number(value('--calibrate') ?? (quick ? 20_000 : 50_000));
const pruneAfterS = Number(value('--prune-after') ?? (quick ? 30 : 120));
const holdS = Number(value('--hold') ?? (quick ? 30 : 120));
const intervalS = quick ? 15 : 60;
const runs = (value('--runs') ?? 'plain,xmin').split(',');
const fixedRate = value('--rate') === undefined ? null : Number(value('--rate'));
const jsonPath = value('--json');
for (const [name, v] of Object.entries({ minutes, load, calibrateJobs, pruneAfterS, holdS })) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
}
for (const r of runs) if (r !== 'plain' && r !== 'xmin') throw new Error(`--runs takes plain and/or xmin, got ${r}`);

const PUSH_EVERY_MS = 50;
const job = defineJob(DOCKET_JOB_OPTIONS, async (_args: { t: number }) => {});

interface Second extends Message {
  s: number;
  n: number;
  p50: number;
  p99: number;
  max: number;
}

interface Snapshot {
  /** Seconds since the steady phase began. */
  at: number;
  heapMb: number;
  indexMb: number;
  dead: number;
  pending: number;
}

function startWorker(url: string): WorkerProcess {
  return new WorkerProcess(join(benchDir, 'src', 'workers', 'docket-sustained.ts'), {
    BENCH_URL: url,
    BENCH_PRUNE_AFTER_MS: String(pruneAfterS * 1000),
  });
}

async function snapshot(sql: postgres.Sql, at: number): Promise<Snapshot> {
  const [row] = await sql<{ heap: string; index: string; dead: string; pending: string }[]>`
    select pg_table_size('docket.jobs') as heap, pg_indexes_size('docket.jobs') as index,
           (select n_dead_tup from pg_stat_user_tables where schemaname = 'docket' and relname = 'jobs') as dead,
           (select count(*) from (select 1 from docket.jobs where state = 'pending' limit 1000000) p) as pending`;
  return { at, heapMb: Number(row!.heap) / 2 ** 20, indexMb: Number(row!.index) / 2 ** 20, dead: Number(row!.dead), pending: Number(row!.pending) };
}

/** Drains `n` jobs pushed up front; returns the drain rate (jobs/s from the worker's start). */
async function calibrate(server: Server): Promise<number> {
  const db = `sustained_calibrate_${process.pid}`;
  const url = await createDatabase(server, db);
  const app = new Docket({ connection: url });
  const worker = startWorker(url);
  try {
    await app.migrate();
    for (let i = 0; i < calibrateJobs; i += 20_000) {
      await app.pushMany(Array.from({ length: Math.min(20_000, calibrateJobs - i) }, () => job.withArgs({ t: nowUs() })));
    }
    await worker.wait('ready', 60_000);
    worker.child.send({ type: 'expect', n: calibrateJobs });
    worker.send('start');
    const t0 = (await worker.wait('started', 60_000)).t!;
    await worker.wait('handled', 600_000);
    return calibrateJobs / ((nowUs() - t0) / 1e6);
  } finally {
    await worker.stop();
    await app.close();
    await dropDatabase(server, db);
  }
}

async function steadyRun(server: Server, rate: number, holdXmin: boolean): Promise<SustainedRun> {
  const db = `sustained_${holdXmin ? 'xmin' : 'plain'}_${process.pid}`;
  const url = await createDatabase(server, db);
  const app = new Docket({ connection: url });
  const stats = postgres(url, { max: 1, onnotice: () => {} });
  const holder = postgres(url, { max: 1, onnotice: () => {} });
  const worker = startWorker(url);
  const seconds: Second[] = [];
  const snapshots: Snapshot[] = [];
  const offeredAt: Array<{ at: number; n: number }> = [];
  try {
    await app.migrate();
    await worker.wait('ready', 60_000);
    worker.onMessage = (m) => {
      if (m.type === 'second') seconds.push(m as Second);
    };
    worker.send('start');
    await worker.wait('started', 60_000);
    const durationS = minutes * 60;
    const t0 = nowUs();
    const elapsedS = () => (nowUs() - t0) / 1e6;
    let pushed = 0;
    let stopSnapshots = false;
    const snapshotting = (async () => {
      while (!stopSnapshots) {
        snapshots.push(await snapshot(stats, elapsedS()));
        await sleep(5_000);
      }
    })();
    let holding: Promise<void> | null = null;
    const holdFrom = durationS / 2 - holdS / 2;
    let holdReport = '';
    let held: { from: number; to: number } | null = null;
    while (elapsedS() < durationS) {
      // Push what the schedule owes: a slow push is caught up by the next one, not dropped.
      const owed = Math.floor(rate * elapsedS()) - pushed;
      if (owed > 0) {
        const t = nowUs();
        await app.pushMany(Array.from({ length: owed }, () => job.withArgs({ t })));
        pushed += owed;
        offeredAt.push({ at: elapsedS(), n: owed });
      }
      if (holdXmin && holding === null && elapsedS() >= holdFrom) {
        holding = holder
          .begin('isolation level repeatable read', async (tx) => {
            const [{ xmin }] = await tx<{ xmin: string }[]>`select txid_current_snapshot()::text as xmin`;
            held = { from: elapsedS(), to: Number.NaN };
            holdReport = `transaction holding snapshot ${xmin} from ${fmt(held.from, 0)} s`;
            await sleep(holdS * 1000);
          })
          .then(() => {
            if (held) held.to = elapsedS();
            holdReport += ` to ${fmt(elapsedS(), 0)} s`;
          });
      }
      await sleep(PUSH_EVERY_MS);
    }
    await holding;
    stopSnapshots = true;
    await snapshotting;
    // What is still queued drains before the process stops (not part of the intervals).
    worker.child.send({ type: 'expect', n: pushed });
    const left = await docketRemaining(stats);
    await worker.wait('handled', 600_000);
    console.log(`  ${holdReport ? `${holdReport}; ` : ''}${left} jobs still unfinished when pushing stopped`);
    const heldReport = held ? heldXmin(snapshots, held) : null;
    if (held) console.log(`  ${describeHeld(heldReport)}`);
    return { intervals: intervals(seconds, snapshots, offeredAt, durationS), held: heldReport, unfinished: left };
  } finally {
    await worker.stop();
    await app.close();
    await stats.end({ timeout: 5 });
    await holder.end({ timeout: 5 });
    await dropDatabase(server, db);
  }
}

function intervals(seconds: Second[], snapshots: Snapshot[], offeredAt: Array<{ at: number; n: number }>, durationS: number): SustainedInterval[] {
  const out: SustainedInterval[] = [];
  for (let from = 0; from + intervalS <= durationS + 0.5; from += intervalS) {
    const to = from + intervalS;
    // The worker's seconds are counted from its own start, a moment before the pushes began.
    const secs = seconds.filter((s) => s.s > from && s.s <= to && s.n > 0);
    const completed = secs.reduce((a, s) => a + s.n, 0);
    const weighted = (pick: (s: Second) => number) => percentile(secs.map(pick), 50);
    const snap = snapshots.filter((s) => s.at >= from && s.at < to).at(-1) ?? snapshots.at(-1)!;
    out.push({
      from,
      offered: offeredAt.filter((o) => o.at >= from && o.at < to).reduce((a, o) => a + o.n, 0) / intervalS,
      completed: completed / intervalS,
      // Per-second p50s and p99s summarised by their median (p50) and worst second (p99, max).
      p50: weighted((s) => s.p50),
      p99: Math.max(...secs.map((s) => s.p99)),
      max: Math.max(...secs.map((s) => s.max)),
      heapMb: snap.heapMb,
      indexMb: snap.indexMb,
      dead: snap.dead,
      pending: snap.pending,
    });
  }
  return out;
}

function heldXmin(snapshots: Snapshot[], held: { from: number; to: number }): HeldXmin | null {
  const before = snapshots.filter((s) => s.at <= held.from).at(-1);
  const atEnd = snapshots.filter((s) => s.at <= held.to).at(-1);
  if (!before || !atEnd) return null;
  const back = snapshots.filter((s) => s.at > held.to).find((s) => s.dead <= Math.max(before.dead * 1.5, before.dead + 10_000));
  return {
    ...held,
    deadBefore: before.dead,
    deadAtEnd: atEnd.dead,
    deadPeak: Math.max(...snapshots.filter((s) => s.at >= held.from).map((s) => s.dead)),
    heapBeforeMb: before.heapMb,
    heapAtEndMb: atEnd.heapMb,
    heapLastMb: snapshots.at(-1)!.heapMb,
    backAfterS: back ? back.at - held.to : null,
  };
}

function describeHeld(h: HeldXmin | null): string {
  if (!h) return 'held xmin: not enough snapshots to compare';
  return (
    `held xmin: dead tuples ${fmt(h.deadBefore, 0)} before, ${fmt(h.deadAtEnd, 0)} when it ended, peak ${fmt(h.deadPeak, 0)}; ` +
    `heap ${fmt(h.heapBeforeMb, 1)} → ${fmt(h.heapAtEndMb, 1)} MB (${fmt(h.heapLastMb, 1)} MB at the end of the run); ` +
    (h.backAfterS !== null
      ? `back near the level before ${fmt(h.backAfterS, 0)} s after it ended`
      : 'not back near the level before by the end of the run')
  );
}

function printIntervals(list: SustainedInterval[]): void {
  console.log(
    `  ${'from s'.padStart(6)} ${'offered/s'.padStart(9)} ${'done/s'.padStart(8)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'max ms'.padStart(7)} ${'heap MB'.padStart(8)} ${'index MB'.padStart(8)} ${'dead tup'.padStart(9)} ${'pending'.padStart(8)}`,
  );
  for (const i of list) {
    console.log(
      `  ${String(i.from).padStart(6)} ${fmt(i.offered, 0).padStart(9)} ${fmt(i.completed, 0).padStart(8)} ${fmt(i.p50, 2).padStart(7)} ${fmt(i.p99, 1).padStart(7)} ${fmt(i.max, 0).padStart(7)} ${fmt(i.heapMb, 1).padStart(8)} ${fmt(i.indexMb, 1).padStart(8)} ${fmt(i.dead, 0).padStart(9)} ${fmt(i.pending, 0).padStart(8)}`,
    );
  }
  const first = list[0]!;
  const last = list.at(-1)!;
  console.log(
    `  first vs last interval: done ${fmt(first.completed, 0)} → ${fmt(last.completed, 0)} jobs/s; p99 ${fmt(first.p99, 1)} → ${fmt(last.p99, 1)} ms; ` +
      `heap ${fmt(first.heapMb, 1)} → ${fmt(last.heapMb, 1)} MB; indexes ${fmt(first.indexMb, 1)} → ${fmt(last.indexMb, 1)} MB`,
  );
}

function revision(): string {
  try {
    return execFileSync('git', ['log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim().slice(0, 100);
  } catch {
    return 'unknown revision';
  }
}

const server = await startServer((line) => console.log(line));
const onSignal = (code: number) => {
  killAllChildren();
  void stopServer().finally(() => process.exit(code));
};
process.on('SIGINT', () => onSignal(130));
process.on('SIGTERM', () => onSignal(143));
try {
  console.log(`sustained: ${minutes} min per run, prune after ${pruneAfterS} s, runs ${runs.join(', ')}`);
  const version = await serverVersion(server);
  console.log(`${version}; ${server.origin}; ${revision()}`);
  // Without autovacuum nothing removes the dead rows of claimed and pruned jobs: the claim reads
  // through them and the run measures the table's bloat, not the queue.
  if (version.includes('autovacuum=off')) console.log('WARNING: autovacuum is off on this server: the figures below measure an unvacuumed table');
  let rate = fixedRate;
  let drain: number | null = null;
  if (rate === null) {
    drain = await calibrate(server);
    rate = Math.round(drain * load);
    console.log(`calibration: drain of ${calibrateJobs} jobs at ${fmt(drain, 0)} jobs/s → offered rate ${rate} jobs/s (${load} ×)`);
  }
  const results: Record<string, SustainedRun> = {};
  for (const run of runs) {
    console.log(`\n${run === 'xmin' ? `held xmin: a transaction open for ${holdS} s in the middle` : 'plain'} — ${rate} jobs/s offered`);
    const result = await steadyRun(server, rate, run === 'xmin');
    printIntervals(result.intervals);
    results[run] = result;
  }
  writeSummary(jsonPath, { rate, drain, minutes, intervalS, pruneAfterS, holdS, runs: results });
} finally {
  killAllChildren();
  await stopServer();
}
