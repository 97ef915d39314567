/**
 * 200,000 finished jobs pruned in batches while a worker process keeps draining new jobs: no
 * pending or running job touched, batch size respected, fetch throughput during pruning printed.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { Docket, type DocketPlugin, defineJob } from '@docket/core';
import { createTestDatabase, stopChild, waitFor } from '@docket/testing';
import { pruner } from '../src/index.js';

const noop = defineJob({ name: 'noop', queue: 'live' }, async (_: { n: number }) => undefined);
const OLD = 200_000;
const LIVE = 60_000;
const BATCH = 1000;

test(`prunes ${OLD.toLocaleString('en')} finished jobs in batches of ${BATCH} while a worker process drains new jobs`, {
  timeout: 600_000,
}, async () => {
  const db = await createTestDatabase();
  const batches: number[] = [];
  const watch: DocketPlugin = {
    name: 'test-batches',
    apply: (app) => app.hooks.jobsDeleted.tap('test-batches', ({ ids }) => void batches.push(ids.length)),
  };
  const plugin = pruner({ batchSize: BATCH, maxBatchesPerRun: 1_000_000, maxAgeMs: 60 * 60_000 });
  const app = new Docket({ connection: db.url, logger: false, plugins: [plugin, watch] });
  const child = fork(new URL('./fixtures/drain-worker.ts', import.meta.url), {
    env: { ...process.env, TEST_DATABASE_URL: db.url },
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    await app.migrate();
    const t0 = Date.now();
    await db.sql`
      INSERT INTO docket.jobs (queue, name, state, attempt, created_at, started_at, finished_at, result)
      SELECT 'history', 'old', (ARRAY['succeeded', 'failed', 'cancelled'])[1 + g % 3], 1,
             now() - interval '30 days', now() - interval '30 days', now() - interval '20 days' + g * interval '1 second', 'null'
      FROM generate_series(1, ${OLD}) g`;
    const insertSeconds = (Date.now() - t0) / 1000;
    // Decoys that must survive: pending/running/waiting rows with an (impossible) old finish time.
    await db.sql`
      INSERT INTO docket.jobs (queue, name, state, attempt, scheduled_at, finished_at, worker_id)
      SELECT 'decoy', 'old', s, CASE WHEN s = 'pending' THEN 0 ELSE 1 END, now() + interval '1 year', now() - interval '1 year',
             CASE WHEN s = 'running' THEN 'ghost' END
      FROM unnest(ARRAY['pending', 'running', 'waiting']) s, generate_series(1, 100)`;
    await db.sql`ANALYZE docket.jobs`;

    for (let i = 0; i < LIVE; i += 20_000) await app.pushMany(Array.from({ length: 20_000 }, (_, n) => noop.withArgs({ n: i + n })));
    const live = async () => {
      const [row] = await db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE queue = 'live' AND state = 'succeeded'`;
      return row!.n as number;
    };

    await once(child, 'message');
    // Baseline: throughput with nothing else going on, over a second or two of draining.
    await waitFor(async () => (await live()) >= 1000, { timeoutMs: 60_000, message: 'the worker drains' });
    const b0 = { at: Date.now(), n: await live() };
    await waitFor(async () => (await live()) >= b0.n + 8000, { timeoutMs: 60_000, intervalMs: 50, message: 'baseline drain' });
    const b1 = { at: Date.now(), n: await live() };
    const baseline = (b1.n - b0.n) / ((b1.at - b0.at) / 1000);

    const p0 = { at: Date.now(), n: await live() };
    const result = await plugin.runNow();
    const p1 = { at: Date.now(), n: await live() };
    const pruneSeconds = (p1.at - p0.at) / 1000;
    const during = (p1.n - p0.n) / pruneSeconds;
    const stillLive = LIVE - p1.n;

    console.log(
      `[prune 200k] inserted ${OLD} finished jobs in ${insertSeconds.toFixed(2)} s; pruned ${result.deleted} in ${result.batches} batches ` +
        `(max ${Math.max(...batches)} per batch) in ${pruneSeconds.toFixed(2)} s = ${Math.round(result.deleted / pruneSeconds)} jobs/s deleted; ` +
        `drain of new jobs: ${Math.round(baseline)} jobs/s before, ${Math.round(during)} jobs/s during pruning ` +
        `(${stillLive} of ${LIVE} still queued when pruning ended${stillLive === 0 ? ': the backlog ran out, the figure is a lower bound' : ''})`,
    );

    assert.equal(result.deleted, OLD);
    assert.equal(result.truncated, false);
    assert.equal(
      batches.reduce((a, b) => a + b, 0),
      OLD,
    );
    assert.ok(
      batches.every((n) => n <= BATCH),
      'no batch larger than batchSize',
    );
    assert.ok(batches.length <= OLD / BATCH + 3, 'full batches (one partial batch per state at most)');
    assert.ok(p1.n > p0.n, 'the worker kept draining while the pruner ran');

    await waitFor(async () => (await live()) === LIVE, { timeoutMs: 300_000, intervalMs: 200, message: 'all live jobs done' });
    const rows = await db.sql`SELECT queue, state, count(*)::int AS n FROM docket.jobs GROUP BY 1, 2 ORDER BY 1, 2`;
    assert.deepEqual(
      rows.map((r) => `${r.queue}:${r.state}:${r.n}`),
      ['decoy:pending:100', 'decoy:running:100', 'decoy:waiting:100', `live:succeeded:${LIVE}`],
      'only the expired history is gone: decoys and every new job are intact',
    );
  } finally {
    await stopChild(child);
    await app.close();
    await db.drop();
  }
});
