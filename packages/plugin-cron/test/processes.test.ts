import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { Docket, defineJob } from '@docket/core';
import { createTestDatabase, stopChild, type TestDatabase, waitFor } from '@docket/testing';
import { cron, type MissedPolicy } from '../src/index.js';

const beat = defineJob({ name: 'beat', queue: 'cron-procs' }, async (_: Record<string, never>) => undefined);

interface Child {
  proc: ChildProcess;
  exited: boolean;
}

function spawnWorker(url: string, id: string, env: Record<string, string>): Child {
  const proc = fork(new URL('./fixtures/cron-worker.ts', import.meta.url), {
    env: { ...process.env, TEST_DATABASE_URL: url, WORKER_ID: id, ...env },
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const child: Child = { proc, exited: false };
  proc.on('exit', () => (child.exited = true));
  return child;
}

async function startWorkers(url: string, ids: string[], env: Record<string, string>): Promise<Child[]> {
  const children = ids.map((id) => spawnWorker(url, id, env));
  await Promise.all(children.map((c) => once(c.proc, 'message')));
  return children;
}

async function stopWorkers(children: Child[]): Promise<void> {
  await Promise.all(children.map((c) => stopChild(c.proc)));
}

async function prepare(db: TestDatabase, schedules: Array<{ name: string; missed?: MissedPolicy }>): Promise<void> {
  const plugin = cron();
  const app = new Docket({ connection: db.url, plugins: [plugin], logger: false });
  await app.migrate();
  for (const s of schedules) await plugin.schedule({ name: s.name, cron: '* * * * * *', job: beat, overlap: true, missed: s.missed ?? 'skip' });
  await app.close();
  await db.sql`CREATE TABLE runs (job_id bigint NOT NULL, fire_at timestamptz NOT NULL, worker text NOT NULL)`;
}

const dbNow = async (db: TestDatabase): Promise<Date> => (await db.sql`SELECT now() AS now`)[0]!.now;

/**
 * Runs a per-second schedule on three worker processes and checks a 10-second window: each second
 * has one fire record and one job, which ran once; across the whole run no second has two jobs.
 */
async function everySecondOnThreeWorkers(db: TestDatabase, mode: 'always' | 'none') {
  await prepare(db, [{ name: 'every-second' }]);
  const children = await startWorkers(db.url, ['p1', 'p2', 'p3'], { MODE: mode });
  try {
    const start = await dbNow(db);
    const from = new Date(Math.ceil(start.getTime() / 1000) * 1000 + 1000);
    const to = new Date(from.getTime() + 10_000);
    await waitFor(async () => (await db.sql`SELECT count(*)::int AS n FROM runs WHERE fire_at >= ${from} AND fire_at < ${to}`)[0]!.n >= 10, {
      timeoutMs: 40_000,
      intervalMs: 200,
      message: 'ten seconds of runs',
    });
    // Every second of the window: one fire record with its job, one job, one run.
    const seconds = await db.sql`
      SELECT s AS at,
             (SELECT count(*)::int FROM docket.cron_fires f WHERE f.schedule = 'every-second' AND f.fire_at = s AND f.job_id IS NOT NULL) AS fires,
             (SELECT count(*)::int FROM docket.jobs j WHERE j.meta->'cron'->>'schedule' = 'every-second' AND j.scheduled_at = s) AS jobs,
             (SELECT count(*)::int FROM runs r WHERE r.fire_at = s) AS runs
        FROM generate_series(${from}::timestamptz, ${to}::timestamptz - interval '1 second', interval '1 second') s
       ORDER BY s`;
    assert.equal(seconds.length, 10);
    for (const s of seconds)
      assert.deepEqual({ fires: s.fires, jobs: s.jobs, runs: s.runs }, { fires: 1, jobs: 1, runs: 1 }, `second ${s.at.toISOString()}`);

    // Over the whole run: no second has two jobs, and the fire records have no gap.
    const [dupes] = await db.sql`
      SELECT count(*)::int AS n FROM (SELECT scheduled_at FROM docket.jobs GROUP BY scheduled_at HAVING count(*) > 1) d`;
    assert.equal(dupes!.n, 0, 'no second was pushed twice');
    const [span] = await db.sql`
      SELECT count(*)::int AS n, (extract(epoch FROM max(fire_at) - min(fire_at)))::int + 1 AS seconds,
             count(*) FILTER (WHERE job_id IS NULL)::int AS without_job
        FROM docket.cron_fires`;
    assert.equal(span!.n, span!.seconds, 'one fire record per second from the first to the last');
    assert.equal(span!.without_job, 0);

    const [stats] = await db.sql`
      SELECT count(DISTINCT worker_id)::int AS firing_workers,
             (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - scheduled_at) * 1000) FROM docket.jobs WHERE started_at IS NOT NULL) AS p50_start_lag_ms,
             (SELECT max(extract(epoch FROM started_at - scheduled_at) * 1000) FROM docket.jobs WHERE started_at IS NOT NULL) AS max_start_lag_ms,
             (SELECT count(*)::int FROM docket.jobs WHERE started_at < scheduled_at) AS early
        FROM docket.cron_fires`;
    assert.equal(stats!.early, 0, 'no job started before its second');
    console.log(
      `# ${mode === 'always' ? 'always-primary' : 'no election plugin'}, 3 workers, 1 s tick: ${span!.n} seconds fired once each by ${stats!.firing_workers} worker(s); ` +
        `job start after its second p50 ${Number(stats!.p50_start_lag_ms).toFixed(1)} ms, max ${Number(stats!.max_start_lag_ms).toFixed(1)} ms`,
    );
  } finally {
    await stopWorkers(children);
  }
}

test('every second for 10 s on three workers that are all primary ("always primary" plugin): each second once, no gap, no duplicate', {
  timeout: 120_000,
}, async () => {
  await using db = await createTestDatabase();
  await everySecondOnThreeWorkers(db, 'always');
});

test('the same with no election plugin at all (the core default: every worker primary)', { timeout: 120_000 }, async () => {
  await using db = await createTestDatabase();
  await everySecondOnThreeWorkers(db, 'none');
});

test('missed runs after a 5 s outage of every worker: skip drops the missed seconds, runOnce runs the latest once', {
  timeout: 120_000,
}, async () => {
  await using db = await createTestDatabase();
  const GRACE_MS = 1500;
  await prepare(db, [
    { name: 'skipping', missed: 'skip' },
    { name: 'once', missed: 'runOnce' },
  ]);
  const env = { MODE: 'always', GRACE_MS: String(GRACE_MS) };
  let children = await startWorkers(db.url, ['o1', 'o2'], env);
  try {
    await waitFor(async () => (await db.sql`SELECT count(*)::int AS n FROM runs`)[0]!.n >= 6, {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: 'runs before the outage',
    });
    await stopWorkers(children);
    const [{ last }] = await db.sql`SELECT max(fire_at) AS last FROM docket.cron_fires`;
    // The outage: no worker runs for five seconds after the last decided time (waited on the database clock).
    await waitFor(async () => (await dbNow(db)).getTime() >= last.getTime() + 5000, {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: 'five seconds of outage',
    });
    const restart = await dbNow(db);
    children = await startWorkers(db.url, ['o3', 'o4'], env);
    await waitFor(
      async () =>
        (await db.sql`SELECT count(DISTINCT schedule)::int AS n FROM docket.cron_fires WHERE fire_at >= ${new Date(restart.getTime() + 3000)}`)[0]!
          .n === 2,
      { timeoutMs: 40_000, intervalMs: 200, message: 'both schedules fire again after the restart' },
    );

    const fires = async (schedule: string) =>
      (
        await db.sql`
        SELECT fire_at, (extract(epoch FROM created_at - fire_at) * 1000)::float8 AS late_ms, job_id
          FROM docket.cron_fires WHERE schedule = ${schedule} ORDER BY fire_at`
      ).map((f) => ({
        at: (f.fire_at as Date).getTime(),
        lateMs: f.late_ms as number,
        job: f.job_id as string | null,
      }));
    const lastAt = last.getTime();
    // The first decided time after the outage, and the seconds between it and the last one before.
    const resume = (rows: Array<{ at: number; lateMs: number; job: string | null }>) => {
      const next = rows.find((r) => r.at > lastAt)!;
      return { next, missing: (next.at - lastAt) / 1000 - 1, following: rows.find((r) => r.at > next.at) };
    };

    // skip: the outage's seconds were dropped; no second ever ran later than the grace period.
    const skipping = await fires('skipping');
    const skipResume = resume(skipping);
    assert.ok(skipResume.missing >= 2, `the outage's seconds were skipped (${skipResume.missing} missing)`);
    assert.ok(skipResume.next.lateMs <= GRACE_MS, 'firing resumed with a second within the grace period');
    assert.ok(
      skipping.every((f) => f.lateMs <= GRACE_MS),
      `no time ran more than ${GRACE_MS} ms late`,
    );

    // runOnce: the missed seconds collapse into one late run, for the latest of them; then every second again.
    const onceRows = await fires('once');
    const onceResume = resume(onceRows);
    const ranOnce = onceResume.next;
    assert.ok(ranOnce.lateMs > GRACE_MS, `the first second after the outage is the run-once, late (${Math.round(ranOnce.lateMs)} ms)`);
    assert.ok(onceResume.missing >= 2, `the other missed seconds did not run (${onceResume.missing})`);
    assert.equal(onceResume.following!.at, ranOnce.at + 1000, 'it was the latest missed second: the next second follows');
    assert.ok(onceResume.following!.lateMs <= GRACE_MS);
    const [job] = await db.sql`SELECT state FROM docket.jobs WHERE id = ${ranOnce.job!}`;
    await waitFor(async () => (await db.sql`SELECT count(*)::int AS n FROM runs WHERE job_id = ${ranOnce.job!}`)[0]!.n === 1, {
      timeoutMs: 20_000,
      message: 'the run-once job ran',
    });
    assert.ok(job);
    console.log(
      `# outage ${Math.round((restart.getTime() - last.getTime()) / 1000)} s: skip left ${skipResume.missing} seconds unrun; ` +
        `runOnce left ${onceResume.missing} unrun and ran ${new Date(ranOnce.at).toISOString()} ${Math.round(ranOnce.lateMs)} ms late`,
    );
  } finally {
    await stopWorkers(children);
  }
});
