/**
 * Recovery with real worker processes: a paused (SIGSTOP) worker whose job was recovered cannot
 * overwrite the re-run's result, and a poison job that kills its process ends failed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineJob } from '@docket/core';
import { waitFor } from '@docket/testing';
import { count, setup, type WorkerProcess } from './helpers.js';

const slow = defineJob({ name: 'slow', queue: 'work' }, async (_: Record<string, never>) => ({ label: '' }));
const poison = defineJob({ name: 'poison', queue: 'work' }, async (_: Record<string, never>) => undefined);
const sleep = defineJob({ name: 'sleep', queue: 'work' }, async (_: { ms: number }) => ({ label: '' }));

const FAST = { HEARTBEAT_MS: 200, DEAD_AFTER_MS: 1000, RECOVERY_INTERVAL_MS: 200 };

for (const resume of ['while the re-run is running', 'after the re-run succeeded'] as const) {
  test(`a SIGSTOPped worker resumed ${resume} cannot overwrite the newer attempt`, { timeout: 120_000 }, async () => {
    const h = await setup();
    try {
      // P1 takes the job and is frozen in the middle of its handler.
      const p1 = h.spawn({ ...FAST, WORKER_LABEL: 'P1', SLOW_MS: 1500 });
      const p1Id = await p1.started;
      const ref = await h.app.push(slow.withArgs({}));
      await p1.next((m) => m.type === 'running' && m.jobId === ref.id);
      p1.signal('SIGSTOP');

      // P2 finds P1 dead (no heartbeat for max(3 × 200 ms, 1000 ms)), recovers the job and runs attempt 2.
      const p2 = h.spawn({ ...FAST, WORKER_LABEL: 'P2', SLOW_MS: resume === 'while the re-run is running' ? 3000 : 50 });
      const p2Id = await p2.started;
      await p2.next((m) => m.type === 'running' && m.jobId === ref.id && m.attempt === 2);
      if (resume === 'after the re-run succeeded') {
        const done = await h.app.waitForJob(ref, { timeoutMs: 30_000 });
        assert.equal(done.state, 'succeeded');
      }

      // P1 wakes up, its handler returns, and its completion is fenced out.
      p1.signal('SIGCONT');
      const warn = await p1.next((m) => m.type === 'warn' && /outcome not written/.test(m.message ?? '') && m.fields?.job === ref.id);
      assert.equal(warn.fields?.attempt, 1);
      if (resume === 'while the re-run is running') {
        const [row] = await h.db.sql`SELECT state, attempt, worker_id FROM docket.jobs WHERE id = ${ref.id}`;
        assert.deepEqual({ ...row }, { state: 'running', attempt: 2, worker_id: p2Id }, 'the late write of attempt 1 changed nothing');
      }

      const job = await h.app.waitForJob(ref, { timeoutMs: 30_000 });
      assert.equal(job.state, 'succeeded');
      assert.equal(job.attempt, 2);
      assert.equal(job.workerId, p2Id);
      assert.deepEqual(job.result, { label: 'P2' }, "the result is the re-run's, not the paused worker's");
      assert.equal(job.errors.length, 1);
      assert.equal(job.errors[0]!.name, 'WorkerLostError');
      assert.match(job.errors[0]!.message, new RegExp(`worker ${p1Id} that ran attempt 1`));
      const runs = await h.db.sql`SELECT attempt, label FROM runs WHERE job_id = ${ref.id} ORDER BY attempt`;
      assert.deepEqual(
        runs.map((r) => [r.attempt, r.label]),
        [
          [1, 'P1'],
          [2, 'P2'],
        ],
      );

      // P1 is alive again: it heart-beats (its row was removed as dead and comes back) and works.
      await waitFor(async () => (await count(h.db, `SELECT count(*) FROM docket.workers WHERE id = '${p1Id}'`)) === 1, {
        timeoutMs: 10_000,
        message: 'P1 heart-beats again',
      });
      assert.equal((await h.app.getJob(ref)).state, 'succeeded');
      await Promise.all([p1.stop(), p2.stop()]);
    } finally {
      await h.close();
    }
  });
}

test('a poison job that kills its worker process every time ends failed after maxRecoveries; other jobs still succeed', {
  timeout: 180_000,
}, async () => {
  const h = await setup();
  // Concurrency 1: a job running next to the poison job in the same process dies with it every
  // time and is indistinguishable from it (see the README); here the other jobs wait their turn.
  const env = { ...FAST, MAX_RECOVERIES: 2, CONCURRENCY: 1 };
  let current: WorkerProcess | null = null;
  let spawned = 0;
  let done = false;
  try {
    const bad = await h.app.push(poison.withArgs({}));
    const good = await h.app.pushMany(Array.from({ length: 20 }, () => sleep.withArgs({ ms: 20 })));
    // A supervisor: restart the worker process whenever it dies, like a process manager would.
    const supervise = async () => {
      while (!done) {
        current = h.spawn({ ...env, WORKER_LABEL: `W${++spawned}` });
        await current.exited;
      }
    };
    const supervisor = supervise();
    const failed = await h.app.waitForJob(bad, { timeoutMs: 150_000 });
    done = true;

    assert.equal(failed.state, 'failed');
    assert.deepEqual(
      failed.errors.map((e) => e.name),
      ['WorkerLostError', 'WorkerLostError', 'PoisonJobError'],
    );
    assert.deepEqual(
      failed.errors.map((e) => e.code),
      ['DOCKET_WORKER_SHUTDOWN', 'DOCKET_WORKER_SHUTDOWN', 'DOCKET_RECOVERY_POISON_JOB'],
    );
    assert.deepEqual(
      failed.errors.map((e) => e.attempt),
      [1, 2, 3],
    );
    assert.match(failed.errors[2]!.message, /Poison job: .*already recovered 2 time\(s\) \(maxRecoveries 2\)/);
    assert.equal(await count(h.db, `SELECT recovery_count FROM docket.jobs WHERE id = ${bad.id}`), 3);
    assert.equal(await count(h.db, `SELECT count(*) FROM runs WHERE job_id = ${bad.id}`), 3, 'ran once per allowed recovery plus the first run');
    assert.ok(spawned >= 3, `the job killed ${spawned - 1} worker processes`);

    for (const ref of good) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 60_000 })).state, 'succeeded');
    done = true;
    await (current as WorkerProcess | null)?.stop();
    await supervisor;
  } finally {
    done = true;
    await h.close();
  }
});
