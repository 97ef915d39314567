import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, defineJob } from '@docket/core';
import { recovery } from '@docket/plugin-recovery';
import { Registry } from 'prom-client';
import { METRIC_NAMES, metrics, OVERFLOW_NAME } from '../src/index.js';
import { deferred, get, type Harness, harness, key, parseExposition } from './helpers.js';

const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;

describe('metrics during a real drain, scraped over HTTP', () => {
  const exporter = metrics({ cacheMs: 0 });
  const sweeper = recovery({ intervalMs: 3_600_000 });
  let h: Harness;
  let url: string;
  let close: () => Promise<void>;
  before(async () => {
    h = await harness({ plugins: [exporter, sweeper] });
    const server = await exporter.serve({ port: 0 });
    url = server.url;
    close = server.close;
  });
  after(async () => {
    await close();
    await h.close();
  });

  test('counters and histograms agree with the jobs table; gauges are the database as scraped', { timeout: 60_000 }, async () => {
    const gate = deferred();
    const gateStarted = deferred();
    const ok = defineJob({ name: 'ok', queue: 'm-ok' }, async () => 'done');
    const flakySeen = new Set<string>();
    const flaky = defineJob(
      { name: 'flaky', queue: 'm-flaky', maxAttempts: 3, retry: { backoff: 'fixed', delayMs: 10, jitter: false } },
      async (_args, ctx) => {
        // Fails its first attempt, succeeds the second.
        if (!flakySeen.has(ctx.job.id)) {
          flakySeen.add(ctx.job.id);
          throw new Error('first attempt fails');
        }
      },
    );
    const doomed = defineJob({ name: 'doomed', queue: 'm-doomed', maxAttempts: 1 }, async () => {
      throw new Error('always fails');
    });
    const held = defineJob({ name: 'held', queue: 'm-gate' }, async () => {
      gateStarted.resolve();
      await gate.promise;
    });
    const unserved = defineJob({ name: 'unserved', queue: 'm-unserved' }, async () => {});

    const refs = [
      ...(await h.app.pushMany(Array.from({ length: 120 }, (_, i) => ok.withArgs({ i } as never)))),
      ...(await h.app.pushMany(Array.from({ length: 8 }, () => flaky))),
      ...(await h.app.pushMany(Array.from({ length: 5 }, () => doomed))),
      await h.app.push(held),
    ];
    // A push inside the caller's transaction is counted too.
    await h.app.sql.begin((tx) => h.app.pushMany([unserved, unserved, unserved], { tx }));
    // One of them waited a minute already (nobody serves its queue).
    const [oldest] = (await h.app.listJobs({ queue: 'm-unserved', order: 'oldest', limit: 1 })).jobs;
    await h.db.sql`UPDATE docket.jobs SET scheduled_at = now() - interval '60 seconds' WHERE id = ${oldest!.id}`;

    await h.worker({ jobs: [ok, flaky, doomed, held], queues: { 'm-ok': {}, 'm-flaky': {}, 'm-doomed': {}, 'm-gate': {} } });
    await gateStarted.promise;

    // Mid-drain: the held job runs, the unserved ones wait, one worker is alive.
    const mid = await get(url);
    assert.equal(mid.status, 200);
    assert.match(mid.type, /^text\/plain/);
    const during = parseExposition(mid.body);
    assert.equal(during.get(key('docket_jobs', { queue: 'm-gate', state: 'running' })), 1);
    assert.equal(during.get(key('docket_jobs', { queue: 'm-unserved', state: 'pending' })), 3);
    const age = during.get(key('docket_queue_oldest_pending_age_seconds', { queue: 'm-unserved' }))!;
    assert.ok(age >= 60 && age < 600, `the unserved queue has waited ${age} s`);
    assert.equal(during.get(key('docket_workers_alive')), 1);
    assert.equal(during.get(key('docket_queue_workers_alive', { queue: 'm-ok' })), 1);
    assert.equal(during.get(key('docket_queue_workers_alive', { queue: 'm-unserved' })), undefined);
    assert.equal(during.get(key('docket_jobs_started_total', { queue: 'm-gate', name: 'held' })), 1);

    gate.resolve();
    for (const ref of refs) await h.app.waitForJob(ref, { timeoutMs: 20_000 });

    // A cancellation in this process, and a recovery sweep that finds a job whose worker is gone.
    const [cancelMe] = (await h.app.listJobs({ queue: 'm-unserved', order: 'newest', limit: 1 })).jobs;
    await h.app.cancelJob(cancelMe!.id);
    const [lost] = (await h.app.listJobs({ queue: 'm-unserved', state: 'pending', order: 'newest', limit: 1 })).jobs;
    await h.db
      .sql`UPDATE docket.jobs SET state = 'running', attempt = 1, worker_id = 'gone-worker', started_at = now() - interval '1 hour' WHERE id = ${lost!.id}`;
    assert.equal((await sweeper.runNow()).recovered.length, 1);

    const after = parseExposition((await get(url)).body);
    const db = await h.db.sql<Array<{ queue: string; name: string; state: string; jobs: number; attempts: number }>>`
      SELECT queue, name, state, count(*)::int AS jobs, sum(attempt)::int AS attempts FROM docket.jobs GROUP BY queue, name, state`;
    const jobsIn = (name: string, state?: string) =>
      db.filter((r) => r.name === name && (!state || r.state === state)).reduce((n, r) => n + r.jobs, 0);
    const attemptsOf = (name: string) => db.filter((r) => r.name === name).reduce((n, r) => n + r.attempts, 0);
    const sample = (metric: string, queue: string, name: string) => after.get(key(metric, { queue, name })) ?? 0;

    for (const [name, queue] of [
      ['ok', 'm-ok'],
      ['flaky', 'm-flaky'],
      ['doomed', 'm-doomed'],
      ['held', 'm-gate'],
    ] as const) {
      assert.equal(sample('docket_jobs_pushed_total', queue, name), jobsIn(name), `${name}: pushed = jobs in the table`);
      assert.equal(sample('docket_jobs_started_total', queue, name), attemptsOf(name), `${name}: started = attempts in the table`);
      assert.equal(sample('docket_jobs_succeeded_total', queue, name), jobsIn(name, 'succeeded'), `${name}: succeeded`);
      assert.equal(sample('docket_jobs_failed_total', queue, name), jobsIn(name, 'failed'), `${name}: failed`);
      assert.equal(sample('docket_job_run_seconds_count', queue, name), attemptsOf(name), `${name}: one run time per attempt`);
      assert.equal(sample('docket_job_queue_wait_seconds_count', queue, name), attemptsOf(name), `${name}: one wait per attempt`);
      assert.equal(
        after.get(key('docket_job_run_seconds_bucket', { queue, name, le: '+Inf' })),
        attemptsOf(name),
        `${name}: +Inf holds every attempt`,
      );
      const buckets = [...after.entries()].filter(([k]) => k.startsWith('docket_job_queue_wait_seconds_bucket{') && k.includes(`name="${name}"`));
      assert.equal(buckets.length, 17, `${name}: 16 bounds and +Inf`);
    }
    assert.equal(jobsIn('ok', 'succeeded'), 120);
    assert.equal(sample('docket_jobs_retried_total', 'm-flaky', 'flaky'), 8, 'each flaky job was retried once');
    assert.equal(sample('docket_jobs_failed_total', 'm-doomed', 'doomed'), 5);
    assert.ok(sample('docket_job_run_seconds_sum', 'm-ok', 'ok') > 0);
    assert.equal(sample('docket_jobs_pushed_total', 'm-unserved', 'unserved'), 3, 'pushes in a caller transaction are counted');
    assert.equal(sample('docket_jobs_cancelled_total', 'm-unserved', 'unserved'), jobsIn('unserved', 'cancelled'));
    assert.equal(jobsIn('unserved', 'cancelled'), 1);
    assert.equal(sample('docket_jobs_recovered_total', 'm-unserved', 'unserved'), 1);

    // Gauges against the operations API the exporter reads.
    for (const c of await h.app.countJobs()) {
      assert.equal(after.get(key('docket_jobs', { queue: c.queue, state: c.state })), c.count, `${c.queue}/${c.state}`);
    }
    const names = [...new Set([...after.keys()].map((k) => k.slice(0, k.indexOf('{')).replace(/_(bucket|sum|count)$/, '')))];
    for (const name of names)
      assert.ok(
        METRIC_NAMES.some((m) => `docket_${m}` === name),
        `${name} is a documented metric`,
      );
  });
});

describe('metrics: registries, labels, serving', () => {
  let h: Harness;
  before(async () => (h = await harness()));
  after(() => h.close());

  test('into the caller’s registry; a second app needs its own prefix', async () => {
    const registry = new Registry();
    const first = metrics({ registry, databaseMetrics: false });
    const app1 = new Docket({ connection: h.db.url, plugins: [first], logger: false });
    assert.equal(first.registry, registry);
    assert.throws(() => metrics({ registry }), code('DOCKET_METRICS_NAME_TAKEN'));
    const second = metrics({ registry, prefix: 'docket_billing_', databaseMetrics: false });
    const app2 = new Docket({ connection: h.db.url, plugins: [second], logger: false });
    await app1.push(defineJob({ name: 'one', queue: 'reg-a' }, async () => {}));
    await app2.push(defineJob({ name: 'two', queue: 'reg-b' }, async () => {}));
    const samples = parseExposition(await registry.metrics());
    assert.equal(samples.get(key('docket_jobs_pushed_total', { queue: 'reg-a', name: 'one' })), 1);
    assert.equal(samples.get(key('docket_billing_jobs_pushed_total', { queue: 'reg-b', name: 'two' })), 1);
    assert.equal(samples.get(key('docket_jobs', { queue: 'reg-a', state: 'pending' })), undefined, 'databaseMetrics: false reads nothing');
    await app1.close();
    await app2.close();
    assert.throws(() => metrics({ registy: registry } as never), code('DOCKET_INVALID_OPTION'));
    assert.throws(() => metrics({ waitBuckets: [1, 0.5] }), code('DOCKET_INVALID_OPTION'));
  });

  test('label pairs are bounded: past maxSeries, new job names count as _other of their queue', async () => {
    const exporter = metrics({ maxSeries: 2, databaseMetrics: false });
    const app = new Docket({ connection: h.db.url, plugins: [exporter], logger: false });
    try {
      const jobs = ['a', 'b', 'c', 'd'].map((n) => defineJob({ name: `card-${n}`, queue: 'card' }, async () => {}));
      await app.pushMany(jobs);
      const samples = parseExposition(await exporter.metrics());
      const pushed = [...samples.entries()].filter(([k]) => k.startsWith('docket_jobs_pushed_total{'));
      assert.deepEqual(
        pushed.map(([k, v]) => [k, v]).sort(),
        [
          [key('docket_jobs_pushed_total', { queue: 'card', name: OVERFLOW_NAME }), 2],
          [key('docket_jobs_pushed_total', { queue: 'card', name: 'card-a' }), 1],
          [key('docket_jobs_pushed_total', { queue: 'card', name: 'card-b' }), 1],
        ].sort(),
      );
    } finally {
      await app.close();
    }
  });

  test('the handler mounts on any Node server; serve() binds loopback, refuses a public bind without a token, checks the token', async () => {
    const exporter = metrics({ databaseMetrics: false });
    const app = new Docket({ connection: h.db.url, plugins: [exporter], logger: false });
    const own = createServer(exporter.handler);
    await new Promise<void>((resolve) => own.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(own.address() as AddressInfo).port}`;
      const ok = await get(`${base}/anything`);
      assert.equal(ok.status, 200);
      assert.match(ok.body, /# TYPE docket_jobs_pushed_total counter/);
      assert.equal((await fetch(base, { method: 'POST' })).status, 405);

      await assert.rejects(exporter.serve({ host: '0.0.0.0', port: 0 }), code('DOCKET_METRICS_PUBLIC_BIND'));
      const local = await exporter.serve({ port: 0 });
      assert.match(local.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      assert.equal((await get(local.url.replace('/metrics', '/other'))).status, 404);
      await local.close();

      const token = 'a-long-random-secret-0123456789';
      const guarded = await exporter.serve({ port: 0, token });
      assert.equal((await get(guarded.url)).status, 401);
      assert.equal((await get(guarded.url, { authorization: 'Bearer wrong-secret-0123456789' })).status, 401);
      assert.equal((await get(guarded.url, { authorization: `Bearer ${token}` })).status, 200);
      await guarded.close();
      await assert.rejects(exporter.serve({ port: 0, token: 'short' }), code('DOCKET_INVALID_OPTION'));
    } finally {
      own.close();
      await app.close();
    }
  });
});
