import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Docket, type DocketEvent, type DocketPlugin, defineJob, isDocketError, type SettledJob, Worker } from '@docket/core';
import { createTestDatabase, type TestDatabase, waitFor } from '@docket/testing';
import { PLUGIN_NAME, recovery } from '../src/index.js';

const work = defineJob({ name: 'work', queue: 'rq' }, async ({ n }: { n: number }, ctx) => ({ n, attempt: ctx.job.attempt }));

/** Puts jobs in the state a crashed worker leaves them: running, claimed by `workerId`, started `agoMs` ago. */
async function claim(db: TestDatabase, ids: readonly string[], workerId: string | null, agoMs: number) {
  await db.sql`UPDATE docket.jobs SET state = 'running', attempt = attempt + 1, worker_id = ${workerId},
    started_at = now() - ${agoMs} * interval '1 millisecond' WHERE id = ANY(${ids as string[]}::bigint[])`;
}

async function heartbeat(db: TestDatabase, id: string, agoMs: number, intervalMs = 1000) {
  await db.sql`INSERT INTO docket.workers (id, hostname, pid, queues, heartbeat_interval_ms, last_heartbeat_at)
    VALUES (${id}, 'test', 1, '{rq}', ${intervalMs}, now() - ${agoMs} * interval '1 millisecond')
    ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = EXCLUDED.last_heartbeat_at, heartbeat_interval_ms = EXCLUDED.heartbeat_interval_ms`;
}

async function jobRow(db: TestDatabase, id: string) {
  const [row] = await db.sql`SELECT state, attempt, worker_id, started_at, finished_at, recovery_count, errors FROM docket.jobs WHERE id = ${id}`;
  return row!;
}

async function setup(options: Parameters<typeof recovery>[0] = {}, extra: DocketPlugin[] = []) {
  const db = await createTestDatabase();
  const plugin = recovery({ deadAfterMs: 1000, ...options });
  const events: DocketEvent[] = [];
  const watcher: DocketPlugin = { name: 'test-events', apply: (app) => app.hooks.event.tap('test-events', (e) => void events.push(e)) };
  const app = new Docket({ connection: db.url, logger: false, plugins: [plugin, watcher, ...extra] });
  await app.migrate();
  return {
    db,
    app,
    plugin,
    events,
    async close() {
      await app.close();
      await db.drop();
    },
  };
}

test('options are validated: unknown keys with a suggestion, ranges, the plugin shape', () => {
  const plugin = recovery();
  assert.equal(plugin.name, PLUGIN_NAME);
  assert.equal(plugin.migrations?.length, 1);
  assert.deepEqual(
    { ...plugin.settings },
    { intervalMs: 5000, deadAfterMs: 30_000, maxRecoveries: 3, stuckMarginMs: 60_000, maxRuntimeMs: null, batchSize: 500, primaryOnly: true },
  );
  const invalid = (pattern: RegExp) => (e: unknown) => isDocketError(e, 'DOCKET_INVALID_OPTION') && pattern.test((e as Error).message);
  assert.throws(() => recovery({ deadAfterMS: 5 } as never), invalid(/did you mean `deadAfterMs`/));
  assert.throws(() => recovery({ maxRecoveries: -1 }), invalid(/maxRecoveries/));
  assert.throws(() => recovery({ deadAfterMs: 10 }), invalid(/deadAfterMs/));
  assert.throws(() => recovery({ maxRuntimeMs: 1.5 }), invalid(/maxRuntimeMs/));
  assert.throws(() => recovery({ primaryOnly: 'yes' as never }), invalid(/primaryOnly/));
  assert.throws(() => recovery('fast' as never), invalid(/must be an object/));
  assert.throws(
    () => plugin.runNow(),
    (e: unknown) => isDocketError(e, 'DOCKET_PLUGIN_INVALID'),
  );
});

test('jobs of a dead or missing worker go back to pending with the attempt kept and an error that says why; live workers are left alone', async () => {
  const h = await setup();
  try {
    const refs = await h.app.pushMany(Array.from({ length: 6 }, (_, n) => work.withArgs({ n })));
    const [dead, missing, missingRecent, live, liveOld, noRow] = refs.map((r) => r.id) as [string, string, string, string, string, string];
    await heartbeat(h.db, 'dead-worker', 5000, 200); // 5 s > max(3 × 200 ms, 1000 ms)
    await heartbeat(h.db, 'slow-beater', 2500, 1000); // 2.5 s < 3 × 1000 ms: still alive
    await heartbeat(h.db, 'live-worker', 0);
    await claim(h.db, [dead], 'dead-worker', 3000);
    await claim(h.db, [missing], 'vanished', 3000);
    await claim(h.db, [missingRecent], 'vanished', 100); // started < deadAfterMs ago: maybe its heartbeat is on the way
    await claim(h.db, [live], 'live-worker', 3000);
    await claim(h.db, [liveOld], 'slow-beater', 60_000);
    await claim(h.db, [noRow], null, 3000);

    const result = await h.plugin.runNow();
    const byId = new Map(result.recovered.map((j) => [j.id, j]));
    assert.deepEqual([...byId.keys()].sort(), [dead, missing, noRow].sort());
    assert.equal(byId.get(dead)!.reason, 'worker-dead');
    assert.equal(byId.get(missing)!.reason, 'worker-missing');
    assert.deepEqual(result.failed, []);
    assert.deepEqual(result.removedWorkers, ['dead-worker']);

    const row = await jobRow(h.db, dead);
    assert.equal(row.state, 'pending');
    assert.equal(row.attempt, 1, 'the lost attempt is kept: the next fetch takes attempt 2');
    assert.equal(row.worker_id, null);
    assert.equal(row.started_at, null);
    assert.equal(row.recovery_count, 1);
    assert.equal(row.errors.length, 1);
    assert.equal(row.errors[0].name, 'WorkerLostError');
    assert.equal(row.errors[0].code, 'DOCKET_WORKER_SHUTDOWN');
    assert.equal(row.errors[0].attempt, 1);
    assert.match(row.errors[0].message, /worker dead-worker that ran attempt 1 stopped heart-beating \(last heartbeat 5\.\d s ago/);
    assert.match(row.errors[0].message, /recovery 1 of at most 3/);
    assert.match((await jobRow(h.db, missing)).errors[0].message, /vanished .* has no heartbeat row/);
    for (const id of [missingRecent, live, liveOld]) assert.equal((await jobRow(h.db, id)).state, 'running', `job ${id} stays running`);

    const event = await waitFor(() => h.events.find((e): e is DocketEvent<'recovery.recovered'> => e.type === 'recovery.recovered'), {
      message: 'recovery.recovered event',
    });
    assert.equal(event.source, PLUGIN_NAME);
    assert.deepEqual(event.payload.jobs.map((j) => j.id).sort(), [dead, missing, noRow].sort());

    // A second sweep finds nothing more; a worker runs the recovered jobs as attempt 2.
    assert.deepEqual((await h.plugin.runNow()).recovered, []);
    const worker = new Worker(h.app, { jobs: [work], queues: { rq: { concurrency: 2 } } });
    await worker.start();
    try {
      const done = await h.app.waitForJob(dead, { timeoutMs: 10_000 });
      assert.equal(done.state, 'succeeded');
      assert.deepEqual(done.result, { n: 0, attempt: 2 });
    } finally {
      await worker.stop();
    }
  } finally {
    await h.close();
  }
});

test('stuck jobs on a live worker: past limits.timeoutMs plus the margin, or past maxRuntimeMs', async () => {
  const h = await setup({ stuckMarginMs: 1000, maxRuntimeMs: 60_000 });
  try {
    await heartbeat(h.db, 'live-worker', 0);
    const [limited, withinMargin, ancient, fresh] = await h.app.pushMany([
      work.withArgs({ n: 1 }).withLimits({ timeoutMs: 500 }),
      work.withArgs({ n: 2 }).withLimits({ timeoutMs: 5000 }),
      work.withArgs({ n: 3 }),
      work.withArgs({ n: 4 }),
    ]);
    await claim(h.db, [limited!.id, withinMargin!.id], 'live-worker', 3000);
    await claim(h.db, [ancient!.id], 'live-worker', 120_000);
    await claim(h.db, [fresh!.id], 'live-worker', 3000);
    const result = await h.plugin.runNow();
    const reasons = Object.fromEntries(result.recovered.map((j) => [j.id, j.reason]));
    assert.deepEqual(reasons, { [limited!.id]: 'timeout', [ancient!.id]: 'max-runtime' });
    const row = await jobRow(h.db, limited!.id);
    assert.equal(row.errors[0].name, 'JobStuckError');
    assert.equal(row.errors[0].code, 'DOCKET_LIMIT_EXCEEDED');
    assert.match(row.errors[0].message, /over its time limit of 500 ms plus the 1000 ms margin, on worker live-worker/);
    assert.match((await jobRow(h.db, ancient!.id)).errors[0].message, /over maxRuntimeMs 60000 ms/);
    assert.deepEqual(result.removedWorkers, []);
  } finally {
    await h.close();
  }
});

test('a lost job whose cancellation was requested ends cancelled; a job lost more than maxRecoveries times ends failed; both settle through the hooks', async () => {
  const settledInTx: Array<{ id: string; state: string; ctx: boolean }> = [];
  const after: SettledJob[] = [];
  const observer: DocketPlugin = {
    name: 'test-observer',
    apply(app) {
      app.hooks.settle.tapPromise('test-observer', async (settlements) => {
        for (const s of settlements) settledInTx.push({ id: s.job.id, state: s.outcome.state, ctx: s.ctx !== null });
        return settlements;
      });
      app.hooks.afterSettle.tap('test-observer', (s) => void after.push(...s));
    },
  };
  const h = await setup({ maxRecoveries: 2 }, [observer]);
  try {
    const [toCancel, poison, fine] = await h.app.pushMany([work.withArgs({ n: 1 }), work.withArgs({ n: 2 }), work.withArgs({ n: 3 })]);
    await claim(h.db, [toCancel!.id, poison!.id, fine!.id], 'crashed', 5000);
    await h.db.sql`UPDATE docket.jobs SET cancel_requested_at = now() WHERE id = ${toCancel!.id}`;
    await h.db.sql`UPDATE docket.jobs SET recovery_count = 2, attempt = 3 WHERE id = ${poison!.id}`;
    const waitCancel = h.app.waitForJob(toCancel!, { timeoutMs: 10_000 });
    const waitPoison = h.app.waitForJob(poison!, { timeoutMs: 10_000 });

    const result = await h.plugin.runNow();
    assert.deepEqual(
      result.cancelled.map((j) => j.id),
      [toCancel!.id],
    );
    assert.deepEqual(
      result.failed.map((j) => [j.id, j.recoveries]),
      [[poison!.id, 3]],
    );
    assert.deepEqual(
      result.recovered.map((j) => j.id),
      [fine!.id],
    );

    const cancelled = await waitCancel;
    assert.equal(cancelled.state, 'cancelled');
    assert.ok(cancelled.finishedAt);
    assert.equal(cancelled.errors.at(-1)!.code, 'DOCKET_JOB_CANCELLED');
    const failed = await waitPoison;
    assert.equal(failed.state, 'failed');
    assert.equal(failed.errors.at(-1)!.name, 'PoisonJobError');
    assert.equal(failed.errors.at(-1)!.code, 'DOCKET_RECOVERY_POISON_JOB');
    assert.match(
      failed.errors.at(-1)!.message,
      /Poison job: worker crashed that ran attempt 3 has no heartbeat row.*already recovered 2 time\(s\) \(maxRecoveries 2\)/,
    );

    assert.deepEqual(
      settledInTx.sort((a, b) => a.id.localeCompare(b.id)),
      [
        { id: toCancel!.id, state: 'cancelled', ctx: false },
        { id: poison!.id, state: 'failed', ctx: false },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );
    await waitFor(() => after.length === 2, { message: 'afterSettle for the two ended jobs' });
    await waitFor(() => h.events.some((e) => e.type === 'recovery.poisoned') && h.events.some((e) => e.type === 'recovery.cancelled'), {
      message: 'recovery.poisoned and recovery.cancelled events',
    });
    assert.deepEqual(await h.plugin.recoveries([poison!.id, fine!.id, toCancel!.id]), { [poison!.id]: 3, [fine!.id]: 1, [toCancel!.id]: 1 });
  } finally {
    await h.close();
  }
});

test('sweeps racing each other (no election) recover every lost job exactly once', { timeout: 120_000 }, async () => {
  const db = await createTestDatabase();
  const plugins = Array.from({ length: 4 }, () => recovery({ deadAfterMs: 1000, batchSize: 100 }));
  const apps = plugins.map((plugin) => new Docket({ connection: db.url, logger: false, plugins: [plugin] }));
  try {
    await apps[0]!.migrate();
    const refs = await apps[0]!.pushMany(Array.from({ length: 2000 }, (_, n) => work.withArgs({ n })));
    await heartbeat(db, 'dead', 10_000);
    await claim(
      db,
      refs.map((r) => r.id),
      'dead',
      5000,
    );
    const results = await Promise.all(plugins.flatMap((p) => [p.runNow(), p.runNow()]));
    const recovered = results.flatMap((r) => r.recovered.map((j) => j.id));
    assert.equal(recovered.length, 2000, 'each job reported by exactly one sweep');
    assert.equal(new Set(recovered).size, 2000);
    assert.ok(results.filter((r) => r.recovered.length > 0).length > 1, 'the sweeps shared the work');
    const [row] = await db.sql`SELECT count(*)::int AS n, min(recovery_count) AS lo, max(recovery_count) AS hi,
      max(jsonb_array_length(errors)) AS errs FROM docket.jobs WHERE state = 'pending'`;
    assert.deepEqual({ ...row }, { n: 2000, lo: 1, hi: 1, errs: 1 });
  } finally {
    await Promise.all(apps.map((a) => a.close()));
    await db.drop();
  }
});

test('the sweep runs on the maintenance tick of a worker, and a recovered job is picked up at once', { timeout: 60_000 }, async () => {
  const h = await setup({ intervalMs: 50 });
  try {
    const ref = await h.app.push(work.withArgs({ n: 7 }));
    await claim(h.db, [ref.id], 'crashed', 5000);
    const worker = new Worker(h.app, { jobs: [work], queues: { rq: { pollIntervalMs: 60_000 } }, maintenanceIntervalMs: 50 });
    await worker.start();
    try {
      const done = await h.app.waitForJob(ref, { timeoutMs: 20_000 });
      assert.equal(done.state, 'succeeded', 'woken by app.wake, not by the (one minute) poll');
      assert.deepEqual(done.result, { n: 7, attempt: 2 });
      const run = await waitFor(
        () => h.events.find((e): e is DocketEvent<'recovery.finished'> => e.type === 'recovery.finished' && e.payload.result.recovered.length > 0),
        {
          message: 'a periodic sweep that recovered the job',
        },
      );
      assert.equal(run.payload.workerId, worker.id);
    } finally {
      await worker.stop();
    }
  } finally {
    await h.close();
  }
});

test('primaryOnly: workers that are not primary do not sweep; primaryOnly false sweeps anyway', { timeout: 60_000 }, async () => {
  let ticks = 0;
  const notPrimary: DocketPlugin = {
    name: 'test-not-primary',
    apply(app) {
      app.hooks.resolvePrimary.tapPromise('test-not-primary', async () => ({ primary: false, term: null }));
      app.hooks.maintenance.tap('test-not-primary', () => void ticks++);
    },
  };
  for (const primaryOnly of [true, false]) {
    ticks = 0;
    const h = await setup({ intervalMs: 10, primaryOnly }, [notPrimary]);
    const worker = new Worker(h.app, { jobs: [work], queues: { other: {} }, maintenanceIntervalMs: 20 });
    try {
      const ref = await h.app.push(work.withArgs({ n: 1 }));
      await claim(h.db, [ref.id], 'crashed', 5000);
      await worker.start();
      if (primaryOnly) {
        await waitFor(() => ticks >= 10, { timeoutMs: 20_000, message: 'ten maintenance ticks' });
        assert.equal((await jobRow(h.db, ref.id)).state, 'running', 'no sweep on a worker that is not primary');
      } else {
        const result = await h.plugin.nextRun({ timeoutMs: 20_000 });
        assert.deepEqual(
          result.recovered.map((j) => j.id),
          [ref.id],
        );
      }
    } finally {
      await worker.stop();
      await h.close();
    }
  }
});
