/**
 * Handlers that hold every connection of their worker's pool (each runs a 3-second statement on
 * `app.sql`; eight of them on a pool of three): the worker's own statements — heartbeats, claims,
 * completions — wait behind them. Its heartbeat must not starve into a false recovery: another
 * worker's sweep, with a dead-worker margin of one second, must not take its jobs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jobs, Scenario, seconds } from './scenario.js';

const JOBS = 24;
const HOLD_MS = 3000;

test(`handlers holding every pooled connection for ${HOLD_MS / 1000} s: heartbeats go on, no false recovery`, { timeout: 180_000 }, async () => {
  const s = await Scenario.start('pool exhausted by handlers');
  try {
    // The sweeper: a worker with a roomy pool, sweeping every 100 ms with a margin of max(3 × 200 ms, 1 s).
    await s.spawn('sweeper', { concurrency: 1, maxConnections: 10, heartbeatMs: 200, deadAfterMs: 1000, recoveryIntervalMs: 100 });
    // The starved one: 8 handlers at once on a pool of 3 connections.
    const starved = await s.spawn('starved', { concurrency: 8, maxConnections: 3, heartbeatMs: 200, deadAfterMs: 1000, recoveryIntervalMs: 100 });
    const workerId = await starved.started;
    const pushedAt = await s.now();
    await s.app.pushMany(Array.from({ length: JOBS }, () => jobs.hold.withArgs({ ms: HOLD_MS })));

    // While it drains: the starved worker's heartbeat age, sampled (database clock).
    let maxAgeMs = 0;
    let drained = false;
    const sampling = (async () => {
      while (!drained) {
        const [row] = await s.db.sql`
          SELECT (extract(epoch FROM now() - last_heartbeat_at) * 1000)::float8 AS age FROM docket.workers WHERE id = ${workerId}`;
        if (row) maxAgeMs = Math.max(maxAgeMs, row.age);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    await s.drained(120_000).finally(() => (drained = true));
    await sampling;
    const drainedAt = await s.lastOutcome();

    await s.loadRuns();
    const figures = await s.checkRuns();
    await s.assertStates({ succeeded: JOBS });
    const [recovered] = await s.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE recovery_count > 0`;
    assert.equal(recovered!.n, 0, 'no job was recovered');
    const [onStarved] = await s.db.sql`SELECT count(*)::int AS n FROM runs WHERE label = 'starved' AND name = 'hold'`;
    assert.ok(onStarved!.n > 0, 'the starved worker ran jobs');
    await s.assertDraining();
    s.report(figures, {
      'jobs on the starved worker': onStarved!.n,
      'its oldest heartbeat while handlers held the pool': seconds(maxAgeMs),
      'dead-worker margin': '1.0 s',
      drained: seconds(drainedAt.getTime() - pushedAt.getTime()),
    });
  } finally {
    await s.close();
  }
});
