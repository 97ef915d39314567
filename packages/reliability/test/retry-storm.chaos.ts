/**
 * A retry storm: thousands of jobs whose handler fails on its first two attempts and succeeds on
 * the third (20 ms between attempts), on three worker processes. Every job succeeds exactly once,
 * on attempt 3, and keeps both failures in `errors`, in order; no attempt runs twice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jobs, Scenario, seconds } from './scenario.js';

const JOBS = 3000;

test(`retry storm: ${JOBS} jobs failing twice each complete exactly once, every attempt's error kept`, { timeout: 240_000 }, async () => {
  const s = await Scenario.start('retry storm');
  try {
    const pushedAt = await s.now();
    await s.app.pushMany(Array.from({ length: JOBS }, () => jobs.flaky.withArgs({ failures: 2 })));
    for (const label of ['A', 'B', 'C']) await s.spawn(label, { concurrency: 10, heartbeatMs: 500, deadAfterMs: 5000 });
    await s.drained(180_000);
    const drainedAt = await s.lastOutcome();

    await s.assertStates({ succeeded: JOBS });
    const [wrong] = await s.db.sql`
      SELECT count(*)::int AS n, min(id)::text AS example FROM docket.jobs
       WHERE name = 'flaky' AND NOT (
         attempt = 3
         AND jsonb_array_length(errors) = 2
         AND errors->0->>'attempt' = '1' AND errors->0->>'message' = 'planned failure of attempt 1'
         AND errors->1->>'attempt' = '2' AND errors->1->>'message' = 'planned failure of attempt 2'
         AND errors->0->>'stack' IS NOT NULL)`;
    assert.equal(wrong!.n, 0, `job ${wrong!.example} did not end on attempt 3 with both failures kept in order`);

    await s.loadRuns();
    const figures = await s.checkRuns();
    assert.equal(figures.runs, JOBS * 3, 'three runs per job, no more');
    assert.equal(figures.retries, JOBS * 2);
    assert.deepEqual(figures.repeats, {});
    await s.assertDraining();
    const ms = drainedAt.getTime() - pushedAt.getTime();
    s.report(figures, {
      'attempts written': JOBS * 3,
      'errors kept': JOBS * 2,
      drained: `${seconds(ms)} (${Math.round((JOBS * 3) / (ms / 1000))} attempts/s)`,
    });
  } finally {
    await s.close();
  }
});
