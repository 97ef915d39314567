/**
 * Handlers that hold every connection of the app's pool must not starve the worker's heartbeat: a
 * heartbeat stuck behind them ages past the dead-worker margin, and a recovery sweep elsewhere takes
 * the worker's jobs while it still runs them. The heartbeat has a connection of its own.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineJob, Worker } from '@docket/core';
import { harness } from './helpers.js';

test('handlers holding every pooled connection do not delay the heartbeat', { timeout: 60_000 }, async () => {
  const h = await harness({ maxConnections: 2 });
  // Each takes a connection out of the pool for 3 s (a long transaction, a reserved session).
  const hold = defineJob({ name: 'hold', queue: 'starve' }, async (_: Record<string, never>) => {
    const connection = await h.app.sql.reserve();
    try {
      await connection`SELECT pg_sleep(3)`;
    } finally {
      connection.release();
    }
  });
  const worker = new Worker(h.app, { jobs: [hold], queues: { starve: { concurrency: 2 } }, heartbeatIntervalMs: 100, handleSignals: false });
  try {
    // Pushed before the start, so that the first claim takes both: the pool's two connections are
    // then held for 3 s, and every other statement of the app waits for one.
    const refs = await h.app.pushMany(Array.from({ length: 2 }, () => hold.withArgs({})));
    await worker.start();
    let oldestMs = 0;
    let done = false;
    const sampling = (async () => {
      while (!done) {
        const [row] = await h.db
          .sql`SELECT (extract(epoch FROM now() - last_heartbeat_at) * 1000)::float8 AS age FROM docket.workers WHERE id = ${worker.id}`;
        oldestMs = Math.max(oldestMs, row?.age ?? 0);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    for (const ref of refs) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 30_000 })).state, 'succeeded');
    done = true;
    await sampling;
    // Every 100 ms; behind the handlers it would wait for a connection for seconds.
    assert.ok(oldestMs < 1000, `the heartbeat was ${Math.round(oldestMs)} ms old while handlers held the pool`);
  } finally {
    await worker.stop();
    await h.close();
  }
});
