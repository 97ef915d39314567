/**
 * Crash soak: 2,000 jobs of 50–200 ms, two worker processes, one of them killed with SIGKILL and
 * restarted 20 times during the run. Every job must end `succeeded`, none lost; jobs that ran twice
 * can only be jobs that were in flight on the killed worker.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineJob } from '@docket/core';
import { waitFor } from '@docket/testing';
import { count, setup } from './helpers.js';

const sleep = defineJob({ name: 'sleep', queue: 'work' }, async (_: { ms: number }) => ({ label: '' }));

const JOBS = 2000;
const KILLS = 20;

test(`crash soak: ${JOBS} jobs, two worker processes, one killed with SIGKILL and restarted ${KILLS} times`, { timeout: 600_000 }, async () => {
  const h = await setup();
  // Heartbeat every 200 ms; dead after max(3 × 200, 2000) ms: quick, with a margin for a busy 2-core machine.
  const env = { HEARTBEAT_MS: 200, DEAD_AFTER_MS: 2000, RECOVERY_INTERVAL_MS: 250, MAX_RECOVERIES: 10, CONCURRENCY: 3, PREFETCH: 2 };
  try {
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    await h.app.pushMany(Array.from({ length: JOBS }, () => sleep.withArgs({ ms: 50 + Math.floor(random() * 151) })));
    const started = Date.now();

    const steady = h.spawn({ ...env, WORKER_LABEL: 'A' });
    await steady.started;
    let inFlightAtKills = 0;
    const kills: Array<{ worker: string; inFlight: number; ranBefore: number }> = [];
    for (let k = 1; k <= KILLS; k++) {
      const victim = h.spawn({ ...env, WORKER_LABEL: `B${k}` });
      const id = await victim.started;
      // Let it take work, a random amount so the kills spread over the run and land mid-job, then kill it
      // (sooner when the queue runs low, so that all the kills happen while jobs remain).
      const target = 2 + Math.floor(random() * 20);
      const ranBefore = await waitFor(
        async () => {
          const [row] = await h.db.sql`SELECT (SELECT count(*)::int FROM runs WHERE worker = ${id}) AS n,
          (SELECT count(*)::int FROM docket.jobs WHERE state = 'pending') AS left`;
          return row!.n >= target || (row!.n >= 1 && row!.left < 300) ? (row!.n as number) : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 20, message: `worker B${k} runs jobs` },
      );
      victim.signal('SIGKILL');
      await victim.exited;
      // Nothing can touch its rows until it has been silent for 2 s: this is what it held at the kill.
      const inFlight = await count(h.db, `SELECT count(*) FROM docket.jobs WHERE state = 'running' AND worker_id = '${id}'`);
      inFlightAtKills += inFlight;
      kills.push({ worker: id, inFlight, ranBefore });
    }
    const killSeconds = (Date.now() - started) / 1000;
    const remainingAtLastKill = await count(h.db, `SELECT count(*) FROM docket.jobs WHERE state <> 'succeeded'`);
    const last = h.spawn({ ...env, WORKER_LABEL: 'B-final' });
    await last.started;

    await waitFor(async () => (await count(h.db, `SELECT count(*) FROM docket.jobs WHERE state = 'succeeded'`)) === JOBS, {
      timeoutMs: 400_000,
      intervalMs: 250,
      message: `all ${JOBS} jobs succeeded`,
    });
    const seconds = (Date.now() - started) / 1000;
    await Promise.all([steady.stop(), last.stop()]);

    const [stats] = await h.db.sql`
      SELECT (SELECT count(*)::int FROM docket.jobs) AS jobs,
             (SELECT count(*)::int FROM docket.jobs WHERE state = 'succeeded') AS succeeded,
             (SELECT count(*)::int FROM (SELECT DISTINCT job_id FROM runs) r) AS ran,
             (SELECT count(*)::int FROM runs) AS runs,
             (SELECT count(*)::int FROM (SELECT job_id FROM runs GROUP BY job_id HAVING count(*) > 1) d) AS ran_twice,
             (SELECT count(*)::int FROM docket.jobs WHERE recovery_count > 0) AS recovered_jobs,
             (SELECT coalesce(sum(recovery_count), 0)::int FROM docket.jobs) AS recoveries,
             (SELECT coalesce(max(recovery_count), 0)::int FROM docket.jobs) AS max_recoveries`;
    const s = stats!;
    const killedIds = kills.map((k) => k.worker);
    const [{ wrong }] = await h.db.sql`
      SELECT count(*)::int AS wrong FROM (SELECT job_id FROM runs GROUP BY job_id HAVING count(*) > 1) d
      WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = d.job_id AND r.worker = ANY(${killedIds}))`;
    console.log(
      `[crash soak] ${JOBS} jobs, ${KILLS} SIGKILLs over the first ${killSeconds.toFixed(1)} s of ${seconds.toFixed(1)} s (${remainingAtLastKill} jobs left at the last kill): ` +
        `succeeded ${s.succeeded}, runs ${s.runs}, jobs that ran twice ${s.ran_twice} ≤ in flight at the kills ${inFlightAtKills}; ` +
        `jobs recovered ${s.recovered_jobs} (${s.recoveries} recoveries, at most ${s.max_recoveries} for one job); ` +
        `in flight per kill: ${kills.map((k) => k.inFlight).join(',')}`,
    );
    assert.equal(s.jobs, JOBS, 'no job lost or added');
    assert.equal(s.succeeded, JOBS, 'every job succeeded');
    assert.equal(s.ran, JOBS, 'every job ran');
    assert.ok(remainingAtLastKill > 0, 'the kills happened during the run');
    assert.ok(s.ran_twice <= inFlightAtKills, `${s.ran_twice} jobs ran twice, but only ${inFlightAtKills} were in flight at the kills`);
    assert.equal(wrong, 0, 'every job that ran twice had run on a killed worker');
    assert.ok(s.recovered_jobs > 0 && s.recovered_jobs <= inFlightAtKills, 'only jobs held by killed workers were recovered');
  } finally {
    await h.close();
  }
});
