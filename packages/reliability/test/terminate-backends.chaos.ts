/**
 * Every connection of the worker processes terminated (`pg_terminate_backend`) every 300 ms for
 * ten seconds, in the middle of a drain: claims, heartbeats, completions and LISTENs die over and
 * over. Nothing is lost, nothing runs twice (no process was killed), the workers drain on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '@docket/testing';
import { jobs, Scenario, seconds } from './scenario.js';

const JOBS = 4000;
const STORM_MS = 10_000;
const EVERY_MS = 300;

test(`connections terminated every ${EVERY_MS} ms for ${STORM_MS / 1000} s during a drain of ${JOBS} jobs`, { timeout: 240_000 }, async () => {
  const s = await Scenario.start('pg_terminate_backend every 300 ms for 10 s');
  try {
    const settings = { concurrency: 5, heartbeatMs: 500, deadAfterMs: 5000, recoveryIntervalMs: 500 };
    for (const label of ['A', 'B', 'C']) await s.spawn(label, settings);
    await s.app.pushMany(Array.from({ length: JOBS }, () => jobs.sleep.withArgs({ ms: 40 })));
    await waitFor(async () => (await s.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE state = 'succeeded'`)[0]!.n >= 200, {
      timeoutMs: 60_000,
      intervalMs: 100,
      message: 'the drain under way',
    });

    // The workers' connections carry application_name docket:<host>-<pid>; the test's own app is spared.
    const [own] = await s.app.sql`SELECT current_setting('application_name') AS name`;
    const stormStart = await s.now();
    const [before] = await s.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE state = 'succeeded'`;
    let terminated = 0;
    let rounds = 0;
    const until = Date.now() + STORM_MS;
    while (Date.now() < until) {
      const rows = await s.db.sql`
        SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE 'docket:%' AND application_name <> ${own!.name}`;
      terminated += rows.filter((r) => r.ok).length;
      rounds++;
      await new Promise((resolve) => setTimeout(resolve, EVERY_MS));
    }
    const stormEnd = await s.now();
    const [during] = await s.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE state = 'succeeded'`;

    const firstOutcome = await waitFor(() => s.firstOutcomeAfter(stormEnd), {
      timeoutMs: 60_000,
      intervalMs: 50,
      message: 'an outcome after the storm',
    });
    await s.drained(120_000);
    const drainedAt = await s.lastOutcome();
    const pause = await s.longestPause(stormStart, drainedAt);

    await s.loadRuns();
    const figures = await s.checkRuns();
    await s.assertStates({ succeeded: JOBS });
    assert.equal(figures.jobs, JOBS);
    await s.assertDraining();
    s.report(figures, {
      'backends terminated': `${terminated} in ${rounds} rounds`,
      'succeeded during the storm': `${during!.n - before!.n} (${Math.round((during!.n - before!.n) / (STORM_MS / 1000))}/s)`,
      'longest pause between two outcomes': seconds(pause),
      'first outcome after the storm': seconds(firstOutcome.getTime() - stormEnd.getTime()),
      'rest drained after the storm': seconds(drainedAt.getTime() - stormEnd.getTime()),
      'errors logged by the workers': s.logs('error').length,
    });
  } finally {
    await s.close();
  }
});
