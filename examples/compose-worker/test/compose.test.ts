import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { createTestDatabase, stopChild, type TestDatabase, waitFor } from '@docket/testing';
import { composeApp } from '../src/app.js';

interface Child {
  id: string;
  proc: ChildProcess;
  exited: boolean;
}

function spawnWorker(url: string, id: string): Child {
  const proc = fork(new URL('./fixtures/worker.ts', import.meta.url), {
    env: { ...process.env, TEST_DATABASE_URL: url, WORKER_ID: id },
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const child: Child = { id, proc, exited: false };
  proc.on('exit', () => (child.exited = true));
  return child;
}

const lease = async (db: TestDatabase) => (await db.sql`SELECT holder, term::text AS term, acquired_at, renewed_at FROM docket.leadership_lease`)[0];

/** Per second of [from, to): fire records with a job, jobs, and jobs that succeeded. */
async function perSecond(db: TestDatabase, from: Date, to: Date) {
  return db.sql`
    SELECT s AS at,
           (SELECT count(*)::int FROM docket.cron_fires f WHERE f.schedule = 'heartbeat' AND f.fire_at = s AND f.job_id IS NOT NULL) AS fires,
           (SELECT count(*)::int FROM docket.jobs j WHERE j.name = 'heartbeat' AND j.scheduled_at = s) AS jobs,
           (SELECT count(*)::int FROM docket.jobs j WHERE j.name = 'heartbeat' AND j.scheduled_at = s AND j.state = 'succeeded') AS succeeded
      FROM generate_series(${from}::timestamptz, ${to}::timestamptz - interval '1 second', interval '1 second') s
     ORDER BY s`;
}

test('three composed workers: only the leader fires, each second once; kill -9 the leader and the next one fires the seconds it missed, none twice', {
  timeout: 180_000,
}, async () => {
  await using db = await createTestDatabase();
  const { app, schedules } = composeApp({ connection: db.url, logger: false });
  await app.migrate();
  assert.deepEqual(
    (await schedules.list()).map((s) => s.name),
    ['daily-digest', 'heartbeat'],
    'declared schedules written on migrate',
  );
  await app.close();

  const children = ['c1', 'c2', 'c3'].map((id) => spawnWorker(db.url, id));
  try {
    await Promise.all(children.map((c) => once(c.proc, 'message')));
    const [{ now }] = await db.sql`SELECT now()`;
    const from = new Date(Math.ceil(now.getTime() / 1000) * 1000 + 2000);
    const to = new Date(from.getTime() + 10_000);
    await waitFor(async () => (await perSecond(db, from, to)).every((s) => s.succeeded === 1), {
      timeoutMs: 60_000,
      intervalMs: 250,
      message: '10 seconds of heartbeats succeeded',
    });
    for (const s of await perSecond(db, from, to)) {
      assert.deepEqual({ fires: s.fires, jobs: s.jobs, succeeded: s.succeeded }, { fires: 1, jobs: 1, succeeded: 1 }, `second ${s.at.toISOString()}`);
    }
    // Only the leader fired, with its term.
    const leader = (await lease(db))!;
    const firers = await db.sql`
      SELECT DISTINCT worker_id, term FROM docket.cron_fires WHERE schedule = 'heartbeat' AND fire_at >= ${from} AND fire_at < ${to}`;
    assert.deepEqual([...firers], [{ worker_id: leader.holder, term: leader.term }], 'every second of the window fired by the lease holder');

    // kill -9 the leader; another worker takes the lease after it expires and catches up.
    const killed = children.find((c) => c.id === leader.holder)!;
    killed.proc.kill('SIGKILL');
    await once(killed.proc, 'exit');
    const [{ killedAt }] = await db.sql`SELECT now() AS "killedAt"`;
    const next = await waitFor(
      async () => {
        const row = await lease(db);
        return row && row.holder !== killed.id ? row : undefined;
      },
      { timeoutMs: 30_000, message: 'a new leader' },
    );
    assert.equal(BigInt(next.term), BigInt(leader.term) + 1n);
    const after = new Date(next.acquired_at.getTime() + 3000);
    await waitFor(async () => (await db.sql`SELECT count(*)::int AS n FROM docket.cron_fires WHERE fire_at >= ${after}`)[0]!.n > 0, {
      timeoutMs: 30_000,
      message: 'firing resumes under the new leader',
    });

    // Over the whole run: one fire record and one job per second from the first to the last: no
    // second lost during the failover (they fire late, within graceMs), none pushed twice.
    const [span] = await db.sql`
      SELECT count(*)::int AS n, (extract(epoch FROM max(fire_at) - min(fire_at)))::int + 1 AS seconds,
             count(*) FILTER (WHERE job_id IS NULL)::int AS without_job
        FROM docket.cron_fires WHERE schedule = 'heartbeat'`;
    assert.equal(span!.n, span!.seconds, 'no gap');
    assert.equal(span!.without_job, 0);
    const [dupes] = await db.sql`
      SELECT count(*)::int AS n FROM (SELECT scheduled_at FROM docket.jobs WHERE name = 'heartbeat' GROUP BY 1 HAVING count(*) > 1) d`;
    assert.equal(dupes!.n, 0, 'no second pushed twice');
    const terms = await db.sql`
      SELECT term, array_agg(DISTINCT worker_id) AS workers, min(fire_at) AS first, max(fire_at) AS last, max(created_at - fire_at) AS late
        FROM docket.cron_fires WHERE schedule = 'heartbeat' GROUP BY term ORDER BY term::bigint`;
    for (const t of terms) assert.equal(t.workers.length, 1, `term ${t.term} fired from one worker`);
    const newTerm = terms.find((t) => t.term === next.term)!;
    assert.deepEqual(newTerm.workers, [next.holder]);
    const [{ caughtUp }] = await db.sql`
      SELECT count(*)::int AS "caughtUp" FROM docket.cron_fires
       WHERE schedule = 'heartbeat' AND term = ${next.term} AND fire_at < ${next.acquired_at}`;
    console.log(
      `# kill -9 of the leader at ${killedAt.toISOString()}: ${next.holder} leads (term ${next.term}) from ${next.acquired_at.toISOString()} ` +
        `and fired the ${caughtUp} second(s) it missed, late; ${span!.n} seconds in all, each once`,
    );
  } finally {
    await Promise.all(children.map((c) => stopChild(c.proc)));
  }
});
