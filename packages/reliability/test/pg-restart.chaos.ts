/**
 * PostgreSQL restarted mid-drain (fast shutdown: every session terminated, in-flight transactions
 * rolled back; down for two seconds; started again). Three worker processes keep running through
 * it: nothing is lost, nothing runs twice (no process was killed), and they drain the rest.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { restartableServer, waitFor } from '@docket/testing';
import { jobs, Scenario, seconds } from './scenario.js';

const JOBS = 3000;
const DOWN_MS = 2000;

test(`PostgreSQL restarted mid-drain of ${JOBS} jobs: all succeed, none runs twice, the workers drain on`, { timeout: 240_000 }, async () => {
  const { server, why } = await restartableServer();
  console.log(`[chaos] PostgreSQL restart runs on ${why}`);
  const s = await Scenario.start('PostgreSQL restart mid-drain', { server });
  try {
    const settings = { concurrency: 5, heartbeatMs: 500, deadAfterMs: 5000, recoveryIntervalMs: 500 };
    for (const label of ['A', 'B', 'C']) await s.spawn(label, settings);
    await s.app.pushMany(Array.from({ length: JOBS }, () => jobs.sleep.withArgs({ ms: 40 })));

    await waitFor(async () => (await s.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE state = 'succeeded'`)[0]!.n >= JOBS / 4, {
      timeoutMs: 60_000,
      intervalMs: 100,
      message: 'a quarter of the jobs done',
    });
    const [before] = await s.db
      .sql`SELECT count(*) FILTER (WHERE state = 'succeeded')::int AS done, count(*) FILTER (WHERE state = 'running')::int AS running FROM docket.jobs`;
    const downAt = Date.now();
    await server.down();
    await new Promise((resolve) => setTimeout(resolve, DOWN_MS));
    await server.up();
    const upAt = Date.now();
    const back = await s.now();

    const firstOutcome = await waitFor(() => s.firstOutcomeAfter(back), {
      timeoutMs: 60_000,
      intervalMs: 50,
      message: 'an outcome after the restart',
    });
    await s.drained(120_000);
    const drainedAt = await s.lastOutcome();

    await s.loadRuns();
    const figures = await s.checkRuns();
    await s.assertStates({ succeeded: JOBS });
    assert.equal(figures.jobs, JOBS, 'every job ran');
    await s.assertDraining();
    s.report(figures, {
      'at the restart': `${before!.done} done, ${before!.running} running`,
      'down for': seconds(upAt - downAt),
      'first outcome after the server was back': seconds(firstOutcome.getTime() - back.getTime()),
      'rest drained': seconds(drainedAt.getTime() - back.getTime()),
      'errors logged by the workers': s.logs('error').length,
    });
  } finally {
    await s.close();
    await server.stop();
  }
});
