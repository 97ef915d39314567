import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Docket, DocketError, type DocketEvent, type DocketPlugin, defineJob, Worker } from '@docket/core';
import { createTestDatabase, type TestDatabase, waitFor } from '@docket/testing';
import { CronExpressionError, type CronMissedEvent, type CronOptions, CronTimezoneError, cron, PLUGIN_NAME } from '../src/index.js';

const tick = defineJob({ name: 'tick', queue: 'cron-test' }, async (_: { label?: string }) => 'ticked');

function isError(code: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof DocketError, `expected a DocketError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  };
}
const isInvalidOption = (pattern: RegExp) => isError('DOCKET_INVALID_OPTION', pattern);
const isInvalidExpression = (pattern: RegExp) => isError('DOCKET_CRON_INVALID_EXPRESSION', pattern);

function eventLog() {
  const events: DocketEvent[] = [];
  const plugin: DocketPlugin = {
    name: 'test-events',
    apply(app) {
      app.hooks.event.tapPromise('test-events', async (e) => void events.push(e));
    },
  };
  return { plugin, events, of: (type: string) => events.filter((e) => e.type === type).map((e) => e.payload) };
}

async function setup(db: TestDatabase, options: CronOptions = {}, extra: DocketPlugin[] = []) {
  const plugin = cron(options);
  const log = eventLog();
  const app = new Docket({ connection: db.url, plugins: [plugin, log.plugin, ...extra], logger: false });
  await app.migrate();
  const workers: Worker[] = [];
  return {
    plugin,
    app,
    log,
    async startWorker(id = 'cron-worker', maintenanceIntervalMs = 100) {
      const worker = new Worker(app, {
        id,
        jobs: [tick, slow],
        queues: { 'cron-test': { concurrency: 10, pollIntervalMs: 100 } },
        maintenanceIntervalMs,
      });
      workers.push(worker);
      await worker.start();
      return worker;
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop({ timeoutMs: 5000 })));
      await app.close();
    },
  };
}

const slow = defineJob({ name: 'slow', queue: 'cron-test' }, async (_: Record<string, never>, ctx) => {
  // Longer than the schedule's period: the work whose runs must not pile up.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2500);
    ctx.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
});

test('options and schedules are validated; an invalid schedule stores nothing', async () => {
  assert.throws(() => cron({ intervalMS: 10 } as never), isInvalidOption(/did you mean `intervalMs`/));
  assert.throws(() => cron({ graceMs: -1 }), isInvalidOption(/graceMs/));
  assert.throws(() => cron({ schedules: [{ name: 'a', cron: 'nope', job: tick }] }), isInvalidExpression(/invalid cron expression 'nope'/));
  assert.throws(
    () =>
      cron({
        schedules: [
          { name: 'a', cron: '* * * * *', job: tick },
          { name: 'a', cron: '0 * * * *', job: tick },
        ],
      }),
    isInvalidOption(/two schedules are named 'a'/),
  );
  assert.equal(cron().name, PLUGIN_NAME);

  await using db = await createTestDatabase();
  const h = await setup(db);
  try {
    const INVALID = 'DOCKET_INVALID_OPTION';
    const EXPRESSION = 'DOCKET_CRON_INVALID_EXPRESSION';
    const bad = [
      [{ name: 'x', cron: '61 * * * *', job: tick }, EXPRESSION, /invalid cron expression '61 \* \* \* \*'.*Constraint error/],
      [{ name: 'x', cron: '* * * * * * *', job: tick }, EXPRESSION, /invalid cron expression/],
      [{ name: 'x', cron: '0 0 30 2 *', job: tick }, EXPRESSION, /invalid cron expression/],
      [{ name: 'x', cron: '   ', job: tick }, EXPRESSION, /`cron` must be a cron expression/],
      [{ name: 'x', cron: 5, job: tick }, INVALID, /`cron` must be a cron expression string/],
      [
        { name: 'x', cron: '* * * * *', job: tick, timezone: 'Mars/Olympus_Mons' },
        'DOCKET_CRON_UNKNOWN_TIMEZONE',
        /unknown timezone 'Mars\/Olympus_Mons'/,
      ],
      [{ name: 'x', cron: '* * * * *', job: tick, timeZone: 'UTC' }, INVALID, /did you mean `timezone`/],
      [{ name: 'x', cron: '* * * * *', job: tick, missed: 'runTwice' }, INVALID, /`missed` must be one of 'skip', 'runOnce'/],
      [{ name: 'x', cron: '* * * * *', job: tick.withDelay(1000) }, INVALID, /cron decides when it runs/],
      [{ name: 'x', cron: '* * * * *', job: () => undefined }, INVALID, /`job` must be a job made with defineJob/],
      [{ name: 'bad name!', cron: '* * * * *', job: tick }, INVALID, /`name` must be/],
    ] as const;
    for (const [options, code, pattern] of bad) await assert.rejects(h.plugin.schedule(options as never), isError(code, pattern));
    await assert.rejects(h.plugin.schedule({ name: 'x', cron: 'nope', job: tick }), CronExpressionError, 'instanceof the plugin’s own class');
    await assert.rejects(h.plugin.schedule({ name: 'x', cron: '* * * * *', timezone: 'Nowhere/Town', job: tick }), CronTimezoneError);
    await assert.rejects(h.plugin.schedule({ name: 'x', cron: '* * * * *', job: tick.withArgs({ label: 10n as never }) }), {
      code: 'DOCKET_ARGS_NOT_SERIALIZABLE',
    });
    assert.deepEqual(await h.plugin.list(), [], 'nothing was stored');
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM docket.cron_schedules`;
    assert.equal(n, 0);
  } finally {
    await h.close();
  }
});

test('a cron() value serves one app and refuses use before it is registered (DOCKET_PLUGIN_INVALID)', async () => {
  const plugin = cron();
  await assert.rejects(plugin.list(), isError('DOCKET_PLUGIN_INVALID', /cron\.list\(\): the plugin is not registered with an app yet/));
  assert.throws(() => plugin.nextRun(), isError('DOCKET_PLUGIN_INVALID', /cron\.nextRun\(\)/));
  const url = 'postgres://nobody@127.0.0.1:1/none';
  const first = new Docket({ connection: url, plugins: [plugin], logger: false });
  assert.throws(
    () => new Docket({ connection: url, plugins: [plugin], logger: false }),
    isError('DOCKET_PLUGIN_INVALID', /one plugin value serves one app; call cron\(\) again/),
  );
  await first.close();
});

test('schedule, list, update and unschedule; the cursor moves only when the expression or timezone changes', async () => {
  await using db = await createTestDatabase();
  const h = await setup(db);
  try {
    const created = await h.plugin.schedule({
      name: 'morning',
      cron: '0 9 * * *',
      timezone: 'America/New_York',
      job: tick.withArgs({ label: 'hello' }).withPriority(5).withMeta({ team: 'ops' }).with('test.key', 'k'),
    });
    assert.equal(created.cron, '0 9 * * *');
    assert.equal(created.timezone, 'America/New_York');
    assert.deepEqual(created.job, {
      name: 'tick',
      queue: 'cron-test',
      args: { label: 'hello' },
      priority: 5,
      maxAttempts: 1,
      limits: {},
      meta: { team: 'ops' },
      extensions: { 'test.key': 'k' },
    });
    assert.equal(created.missed, 'skip');
    assert.equal(created.overlap, false);
    // 09:00 in New York, whatever the daylight-saving offset.
    const local = new Intl.DateTimeFormat('en-US', {
      timeZone: 'America/New_York',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
    assert.equal(local.format(created.nextFireAt), '09:00:00');
    assert.ok(created.nextFireAt.getTime() > Date.now() - 5000);

    // Same expression, new job: the cursor stays.
    const updated = await h.plugin.schedule({
      name: 'morning',
      cron: '0 9 * * *',
      timezone: 'America/New_York',
      job: tick.withArgs({ label: 'bye' }),
      missed: 'runOnce',
      overlap: true,
    });
    assert.equal(updated.nextFireAt.getTime(), created.nextFireAt.getTime());
    assert.deepEqual(updated.job.args, { label: 'bye' });
    assert.equal(updated.missed, 'runOnce');
    assert.equal(updated.overlap, true);
    assert.ok(updated.updatedAt >= created.updatedAt);

    // Rewind the cursor, then schedule again with a new expression: it restarts from now.
    await db.sql`UPDATE docket.cron_schedules SET next_fire_at = '2000-01-01' WHERE name = 'morning'`;
    const kept = await h.plugin.schedule({
      name: 'morning',
      cron: '0 9 * * *',
      timezone: 'America/New_York',
      job: tick.withArgs({ label: 'bye' }),
      missed: 'runOnce',
      overlap: true,
    });
    assert.equal(kept.nextFireAt.toISOString(), '2000-01-01T00:00:00.000Z', 'same expression keeps the cursor');
    const moved = await h.plugin.schedule({ name: 'morning', cron: '30 9 * * 1-5', timezone: 'America/New_York', job: tick });
    assert.ok(moved.nextFireAt.getTime() > Date.now() - 5000);
    assert.equal(local.format(moved.nextFireAt), '09:30:00');

    await h.plugin.schedule({ name: 'hourly', cron: '@hourly', job: tick });
    assert.deepEqual(
      (await h.plugin.list()).map((s) => s.name),
      ['hourly', 'morning'],
    );
    assert.equal(await h.plugin.unschedule('morning'), true);
    assert.equal(await h.plugin.unschedule('morning'), false);
    assert.deepEqual(
      (await h.plugin.list()).map((s) => s.name),
      ['hourly'],
    );
  } finally {
    await h.close();
  }
});

test('schedules declared in options and in setup() are written on app.migrate(), idempotently', async () => {
  await using db = await createTestDatabase();
  let setups = 0;
  const h = await setup(db, {
    schedules: [{ name: 'declared', cron: '*/5 * * * *', job: tick }],
    setup: async (c) => {
      setups++;
      await c.schedule({ name: 'from-setup', cron: '0 0 * * 0', job: tick.withArgs({ label: 'weekly' }) });
    },
  });
  try {
    const first = await h.plugin.list();
    assert.deepEqual(
      first.map((s) => s.name),
      ['declared', 'from-setup'],
    );
    await h.app.migrate();
    assert.equal(setups, 2);
    const second = await h.plugin.list();
    assert.deepEqual(
      second.map((s) => [s.name, s.nextFireAt.getTime(), s.updatedAt.getTime()]),
      first.map((s) => [s.name, s.nextFireAt.getTime(), s.updatedAt.getTime()]),
    );
  } finally {
    await h.close();
  }
});

test('a seconds schedule fires each second once, jobs scheduled at their time and marked in meta', { timeout: 60_000 }, async () => {
  await using db = await createTestDatabase();
  const h = await setup(db);
  try {
    await h.plugin.schedule({ name: 'every-second', cron: '* * * * * *', job: tick.withArgs({ label: 's' }), overlap: true });
    await h.startWorker();
    await waitFor(async () => (await db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE state = 'succeeded'`)[0]!.n >= 4, {
      timeoutMs: 20_000,
      message: 'four cron jobs succeeded',
    });
    const fires = await db.sql`
      SELECT f.fire_at, f.job_id::text AS job_id, f.worker_id, f.skipped, j.scheduled_at, j.meta, j.args, j.name
        FROM docket.cron_fires f JOIN docket.jobs j ON j.id = f.job_id
       ORDER BY f.fire_at`;
    assert.ok(fires.length >= 4);
    for (const [i, f] of fires.entries()) {
      assert.equal(f.fire_at.getUTCMilliseconds(), 0);
      if (i > 0) assert.equal(f.fire_at.getTime() - fires[i - 1]!.fire_at.getTime(), 1000, 'consecutive seconds');
      assert.equal(f.scheduled_at.getTime(), f.fire_at.getTime(), 'the job runs at the scheduled time, not before');
      assert.deepEqual(f.meta, { cron: { schedule: 'every-second', fireAt: f.fire_at.toISOString() } });
      assert.deepEqual(f.args, { label: 's' });
      assert.equal(f.worker_id, 'cron-worker');
      assert.equal(f.skipped, null);
    }
    const started = await db.sql`SELECT started_at, scheduled_at FROM docket.jobs WHERE started_at IS NOT NULL`;
    for (const j of started) assert.ok(j.started_at >= j.scheduled_at, 'no job started before its time');
    const fired = h.log.of('cron.fired') as Array<{ schedule: string; jobId: string }>;
    assert.ok(fired.length >= 4 && fired.every((e) => e.schedule === 'every-second'));
    const [schedule] = await h.plugin.list();
    assert.ok(schedule!.lastJobId !== null && schedule!.nextFireAt > schedule!.lastFireAt!);
  } finally {
    await h.close();
  }
});

test('the (schedule, time) key: a stale cursor re-decides nothing, so no time is pushed twice', { timeout: 60_000 }, async () => {
  await using db = await createTestDatabase();
  const h = await setup(db);
  try {
    await h.plugin.schedule({ name: 'rewound', cron: '* * * * * *', job: tick, overlap: true });
    await h.startWorker();
    await waitFor(async () => (await db.sql`SELECT count(*)::int AS n FROM docket.cron_fires`)[0]!.n >= 3, {
      timeoutMs: 20_000,
      message: 'three fires',
    });
    // Another worker with an old view of the schedule: its cursor points at times already fired.
    const [{ first }] = await db.sql`SELECT min(fire_at) AS first FROM docket.cron_fires`;
    await db.sql`UPDATE docket.cron_schedules SET next_fire_at = ${first} WHERE name = 'rewound'`;
    await waitFor(async () => (await db.sql`SELECT next_fire_at > now() AS ahead FROM docket.cron_schedules`)[0]!.ahead, {
      timeoutMs: 20_000,
      message: 'the cursor caught up again',
    });
    await h.plugin.nextRun({ timeoutMs: 20_000 });
    const dupes = await db.sql`
      SELECT meta->'cron'->>'fireAt' AS at, count(*)::int AS n FROM docket.jobs GROUP BY 1 HAVING count(*) > 1`;
    assert.deepEqual([...dupes], [], 'no time has two jobs');
    const [counts] = await db.sql`
      SELECT (SELECT count(*)::int FROM docket.jobs) AS jobs, (SELECT count(*)::int FROM docket.cron_fires WHERE job_id IS NOT NULL) AS fires`;
    assert.equal(counts!.jobs, counts!.fires);
  } finally {
    await h.close();
  }
});

test('overlap: false skips a time while the previous run is still open; overlap: true piles runs up', { timeout: 60_000 }, async () => {
  await using db = await createTestDatabase();
  const h = await setup(db);
  try {
    await h.plugin.schedule({ name: 'slow-single', cron: '* * * * * *', job: slow, overlap: false });
    await h.plugin.schedule({ name: 'slow-piled', cron: '* * * * * *', job: slow.withMeta({ piled: true }), overlap: true });
    await h.startWorker();
    await waitFor(
      async () => (await db.sql`SELECT count(*)::int AS n FROM docket.cron_fires WHERE schedule = 'slow-single' AND skipped = 'overlap'`)[0]!.n >= 3,
      {
        timeoutMs: 30_000,
        message: 'skipped overlapping times',
      },
    );
    await waitFor(
      async () =>
        (await db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE name = 'slow' AND meta ? 'piled' AND state = 'succeeded'`)[0]!.n >= 2,
      {
        timeoutMs: 30_000,
        message: 'piled runs finish',
      },
    );
    // Runs of the single schedule never overlap in time; those of the piled one do.
    const single = await db.sql`
      SELECT started_at, finished_at FROM docket.jobs WHERE name = 'slow' AND NOT meta ? 'piled' AND started_at IS NOT NULL ORDER BY started_at`;
    for (let i = 1; i < single.length; i++) {
      assert.ok(
        single[i - 1]!.finished_at !== null && single[i]!.started_at >= single[i - 1]!.finished_at,
        'a run starts after the previous one finished',
      );
    }
    const [{ open }] = await db.sql`
      SELECT max(n)::int AS open FROM (
        SELECT count(*) AS n FROM docket.jobs a JOIN docket.jobs b
          ON b.meta ? 'piled' AND b.started_at <= a.started_at AND (b.finished_at IS NULL OR b.finished_at > a.started_at)
         WHERE a.meta ? 'piled' AND a.started_at IS NOT NULL GROUP BY a.id) x`;
    assert.ok(open >= 2, `piled runs overlap (${open} at once)`);
    const skipped = h.log.of('cron.skipped') as Array<{ schedule: string; reason: string }>;
    assert.ok(skipped.length >= 3 && skipped.every((s) => s.schedule === 'slow-single' && s.reason === 'overlap'));
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM docket.cron_fires WHERE schedule = 'slow-piled' AND skipped IS NOT NULL`;
    assert.equal(n, 0);
  } finally {
    await h.close();
  }
});

test('missed times after downtime: skip drops them, runOnce runs the latest once', { timeout: 60_000 }, async () => {
  await using db = await createTestDatabase();
  const h = await setup(db, { graceMs: 2000 });
  try {
    await h.plugin.schedule({ name: 'skipper', cron: '* * * * * *', job: tick.withArgs({ label: 'skip' }), missed: 'skip', overlap: true });
    await h.plugin.schedule({ name: 'once', cron: '* * * * * *', job: tick.withArgs({ label: 'once' }), missed: 'runOnce', overlap: true });
    // As if the workers were down for a minute: the cursors are a minute old.
    await db.sql`UPDATE docket.cron_schedules SET next_fire_at = date_trunc('second', now()) - interval '60 seconds'`;
    const [{ from }] = await db.sql`SELECT next_fire_at AS from FROM docket.cron_schedules LIMIT 1`;
    await h.startWorker();
    await waitFor(() => h.log.of('cron.missed').length === 2, { timeoutMs: 20_000, message: 'both schedules report missed times' });
    const missed = h.log.of('cron.missed') as CronMissedEvent[];
    const bySchedule = Object.fromEntries(missed.map((m) => [m.schedule, m]));
    assert.equal(bySchedule.skipper!.ranAt, null);
    assert.equal(bySchedule.skipper!.first.getTime(), from.getTime());
    assert.equal(bySchedule.once!.ranAt!.getTime(), bySchedule.once!.last.getTime());

    const fires = await db.sql`
      SELECT schedule, fire_at, created_at, job_id FROM docket.cron_fires WHERE fire_at < ${new Date(from.getTime() + 60_000)} ORDER BY fire_at`;
    const late = (f: Record<string, unknown>) => (f.created_at as Date).getTime() - (f.fire_at as Date).getTime() > 2000;
    const skipper = fires.filter((f) => f.schedule === 'skipper');
    assert.ok(
      skipper.every((f) => !late(f)),
      'skip: no time ran later than the grace period',
    );
    assert.ok(skipper.length <= 3, `skip: at most the times within the grace period ran, got ${skipper.length}`);
    const once = fires.filter((f) => f.schedule === 'once');
    assert.equal(once.filter(late).length, 1, 'runOnce: one late run');
    assert.equal(once.filter(late)[0]!.fire_at.getTime(), bySchedule.once!.last.getTime(), 'for the latest missed time');
  } finally {
    await h.close();
  }
});

test('a schedule whose push a plugin refuses does not hold up the others', { timeout: 60_000 }, async () => {
  await using db = await createTestDatabase();
  const refuse: DocketPlugin = {
    name: 'refuse',
    apply(app) {
      app.hooks.beforePush.tapPromise('refuse', async (rows) => {
        if (rows.some((r) => (r.args as { label?: string }).label === 'refused')) throw new Error('refused by test');
        return rows;
      });
    },
  };
  const h = await setup(db, {}, [refuse]);
  try {
    await h.plugin.schedule({ name: 'bad', cron: '* * * * * *', job: tick.withArgs({ label: 'refused' }), overlap: true });
    await h.plugin.schedule({ name: 'good', cron: '* * * * * *', job: tick.withArgs({ label: 'fine' }), overlap: true });
    await h.startWorker();
    await waitFor(async () => (await db.sql`SELECT count(*)::int AS n FROM docket.cron_fires WHERE schedule = 'good'`)[0]!.n >= 2, {
      timeoutMs: 20_000,
      message: 'good fires',
    });
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM docket.cron_fires WHERE schedule = 'bad'`;
    assert.equal(n, 0, 'the refused push rolled back its fire record');
    assert.ok(h.log.of('cron.fire_failed').length >= 1);
  } finally {
    await h.close();
  }
});

test('three apps whose workers are all primary race on one schedule every 20 ms: still one job per second, no gap', { timeout: 60_000 }, async () => {
  await using db = await createTestDatabase();
  const alwaysPrimary: DocketPlugin = {
    name: 'always-primary',
    apply(app) {
      app.hooks.resolvePrimary.tapPromise('always-primary', async () => ({ primary: true, term: null }));
    },
  };
  const nodes = await Promise.all([1, 2, 3].map(() => setup(db, { intervalMs: 10, lookaheadMs: 0 }, [alwaysPrimary])));
  try {
    await nodes[0]!.plugin.schedule({ name: 'raced', cron: '* * * * * *', job: tick, overlap: true });
    const workers = await Promise.all(nodes.map((n, i) => n.startWorker(`racer-${i + 1}`, 20)));
    await waitFor(async () => (await db.sql`SELECT count(*)::int AS n FROM docket.cron_fires`)[0]!.n >= 6, {
      timeoutMs: 30_000,
      message: 'six fires',
    });
    assert.equal(workers.length, 3);
    const [span] = await db.sql`
      SELECT count(*)::int AS n, (extract(epoch FROM max(fire_at) - min(fire_at)))::int + 1 AS seconds,
             count(DISTINCT worker_id)::int AS firing_workers,
             (SELECT count(*)::int FROM docket.jobs) AS jobs
        FROM docket.cron_fires`;
    assert.equal(span!.n, span!.seconds, 'one fire record per second, no gap');
    assert.equal(span!.jobs, span!.n, 'one job per fire record');
    console.log(`# ${span!.n} seconds fired by ${span!.firing_workers} racing worker(s)`);
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
});
