/**
 * A database outage longer than the dead-worker margin, seen by every worker (a server restart,
 * the connection slots full, the network to the database down): when it ends, the first worker to
 * sweep again must not take the jobs of workers that are alive and simply have not reconnected yet.
 * Two apps in this process, each reaching the database only through a TCP proxy of its own.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Docket, defineJob, Worker } from '@docket/core';
import { createTestDatabase, startTcpProxy } from '@docket/testing';
import { recovery } from '../src/index.js';

const long = defineJob({ name: 'long', queue: 'outage' }, async (_: Record<string, never>, ctx) => ({ attempt: ctx.job.attempt }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('after an outage longer than the margin, the sweeper back first leaves a live worker its jobs', { timeout: 90_000 }, async () => {
  await using db = await createTestDatabase();
  const target = { host: new URL(db.url).hostname, port: Number(new URL(db.url).port) };
  const [toRunner, toSweeper] = await Promise.all([startTcpProxy(target), startTcpProxy(target)]);
  // Margin: max(3 × 500 ms, 3000 ms) = 3 s.
  const settings = { deadAfterMs: 3000, intervalMs: 100 };
  const runnerApp = new Docket({ connection: toRunner.url(db.url), logger: false, plugins: [recovery(settings)] });
  const sweeperPlugin = recovery(settings);
  const sweeperApp = new Docket({ connection: toSweeper.url(db.url), logger: false, plugins: [sweeperPlugin] });
  await sweeperApp.migrate();
  const handler = defineJob({ name: 'long', queue: 'outage' }, async (_: Record<string, never>, ctx) => {
    await sleep(12_000);
    return { attempt: ctx.job.attempt };
  });
  const runner = new Worker(runnerApp, { jobs: [handler], queues: { outage: {} }, heartbeatIntervalMs: 500, handleSignals: false });
  const sweeper = new Worker(sweeperApp, { jobs: [long], queues: { other: {} }, heartbeatIntervalMs: 500, handleSignals: false });
  try {
    await runner.start();
    await sweeper.start();
    const ref = await sweeperApp.push(long.withArgs({}));
    for (;;) {
      const [row] = await db.sql`SELECT state FROM docket.jobs WHERE id = ${ref.id}`;
      if (row!.state === 'running') break;
      await sleep(20);
    }

    // Both cut off for 5 s: longer than the 3 s margin.
    toRunner.drop();
    toSweeper.drop();
    await sleep(5000);
    // The sweeper is back first and sweeps; the runner comes back well within a margin of that.
    toSweeper.restore();
    await sweeperPlugin.nextRun({ timeoutMs: 10_000 });
    await sweeperPlugin.nextRun({ timeoutMs: 10_000 });
    toRunner.restore();

    const job = await sweeperApp.waitForJob(ref, { timeoutMs: 30_000 });
    assert.deepEqual(
      { state: job.state, attempt: job.attempt, errors: job.errors.map((e) => e.name) },
      { state: 'succeeded', attempt: 1, errors: [] },
      'the job finished on its first attempt, never taken from the live worker',
    );
  } finally {
    await Promise.all([runner.stop({ timeoutMs: 1000 }), sweeper.stop({ timeoutMs: 1000 })]);
    await Promise.all([runnerApp.close(), sweeperApp.close()]);
    await Promise.all([toRunner.close(), toSweeper.close()]);
  }
});

test('a worker that died during the outage is still found: one margin after the sweeper is back', { timeout: 60_000 }, async () => {
  await using db = await createTestDatabase();
  const proxy = await startTcpProxy({ host: new URL(db.url).hostname, port: Number(new URL(db.url).port) });
  const plugin = recovery({ deadAfterMs: 1000, intervalMs: 100 });
  const app = new Docket({ connection: proxy.url(db.url), logger: false, plugins: [plugin] });
  await app.migrate();
  const sweeper = new Worker(app, { jobs: [long], queues: { other: {} }, heartbeatIntervalMs: 200, handleSignals: false });
  try {
    // A job left running by a worker whose last heartbeat is a minute old.
    const ref = await app.push(long.withArgs({}));
    await db.sql`INSERT INTO docket.workers (id, hostname, pid, queues, heartbeat_interval_ms, last_heartbeat_at)
      VALUES ('gone', 'test', 1, '{outage}', 200, now() - interval '1 minute')`;
    await db.sql`UPDATE docket.jobs SET state = 'running', attempt = 1, worker_id = 'gone', started_at = now() - interval '1 minute' WHERE id = ${ref.id}`;
    await sweeper.start();
    proxy.drop();
    await sleep(2000);
    proxy.restore();
    const back = Date.now();
    for (;;) {
      const [row] = await db.sql`SELECT state, recovery_count FROM docket.jobs WHERE id = ${ref.id}`;
      if (row!.recovery_count === 1) {
        assert.equal(row!.state, 'pending');
        break;
      }
      assert.ok(Date.now() - back < 15_000, 'the dead worker’s job was not recovered within 15 s');
      await sleep(50);
    }
  } finally {
    await sweeper.stop({ timeoutMs: 1000 });
    await app.close();
    await proxy.close();
  }
});
