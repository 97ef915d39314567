/**
 * Handlers that take their worker down with them. Delivery is at-least-once and the recovery
 * plugin's poison cap (`maxRecoveries`) bounds the damage:
 * - a handler that blocks the event loop longer than the dead-worker margin: no heartbeat leaves
 *   the process, so the others take it for dead and run the job again — where it blocks again;
 *   after `maxRecoveries` recoveries the job fails with DOCKET_RECOVERY_POISON_JOB, and both
 *   processes, alive throughout, drain on;
 * - a handler that calls process.exit(): the process ends mid-job (a supervisor restarts it, as a
 *   process manager would); the job runs again elsewhere, up to the cap; jobs that were running
 *   next to it in the same process run again too, and succeed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '@docket/testing';
import { jobs, Scenario, seconds } from './scenario.js';

const MAX_RECOVERIES = 2;
// Margin: max(3 × 200 ms, 1000 ms) = 1 s; a sweep every 100 ms.
const SETTINGS = { heartbeatMs: 200, deadAfterMs: 1000, recoveryIntervalMs: 100, maxRecoveries: MAX_RECOVERIES };

test('a handler blocking the event loop past the margin runs again elsewhere until the poison cap fails it', { timeout: 180_000 }, async () => {
  const s = await Scenario.start('handler blocking the event loop');
  try {
    const a = await s.spawn('A', { ...SETTINGS, concurrency: 1 });
    const b = await s.spawn('B', { ...SETTINGS, concurrency: 1 });
    // Each process blocks while it runs it: a repeat of its runs is explained by that.
    for (const p of [a, b]) s.explain(p, 'blocked its event loop past the margin');
    const pushedAt = await s.now();
    const ref = await s.app.push(jobs.block.withArgs({ ms: 3000 }));
    const job = await s.app.waitForJob(ref, { timeoutMs: 120_000 });

    assert.equal(job.state, 'failed');
    assert.deepEqual(
      job.errors.map((e) => [e.attempt, e.name]),
      [
        [1, 'WorkerLostError'],
        [2, 'WorkerLostError'],
        [3, 'PoisonJobError'],
      ],
    );
    await s.loadRuns();
    const figures = await s.checkRuns();
    assert.equal(figures.runs, MAX_RECOVERIES + 1, 'it ran once, then once per recovery');
    // Each blocked run's own outcome came back late and was fenced out.
    const fenced = await waitFor(
      () => {
        const n = s.logs('warn', /outcome not written/).length;
        return n >= MAX_RECOVERIES + 1 ? n : undefined;
      },
      { timeoutMs: 30_000, message: 'the late outcomes of the blocked runs fenced out' },
    );
    await s.assertDraining();
    s.report(figures, {
      'blocked for': '3.0 s per run (margin 1.0 s)',
      'end state': `failed after ${MAX_RECOVERIES} recoveries (DOCKET_RECOVERY_POISON_JOB)`,
      'late outcomes fenced out': fenced,
      'poisoned after': seconds(job.finishedAt!.getTime() - pushedAt.getTime()),
    });
  } finally {
    await s.close();
  }
});

test('a handler calling process.exit() runs again elsewhere until the poison cap fails it; its neighbours succeed', {
  timeout: 240_000,
}, async () => {
  const s = await Scenario.start('handler calling process.exit()');
  const exits: string[] = [];
  let done = false;
  let spawned = 0;
  let started = 0;
  let supervisors: Array<Promise<void>> = [];
  /** Two supervised slots: a process that exits is replaced, as a process manager would. */
  const supervise = async (slot: string) => {
    while (!done) {
      const label = `${slot}${++spawned}`;
      let p: Awaited<ReturnType<Scenario['spawn']>>;
      try {
        p = await s.spawn(label, { ...SETTINGS, concurrency: 3 });
      } catch (error) {
        if (done) return; // killed by the scenario's end while it started
        throw error;
      }
      started++;
      s.expectExit(p);
      s.explain(p, 'exited (process.exit in a handler)');
      await p.exited;
      if (!done) exits.push(`${label}: ${p.child.exitCode ?? p.child.signalCode}`);
    }
  };
  try {
    supervisors = [supervise('A'), supervise('B')];
    await waitFor(() => started >= 2, { timeoutMs: 60_000, message: 'two workers' });
    const pushedAt = await s.now();
    const bad = await s.app.push(jobs.exit.withArgs({}));
    const neighbours = await s.app.pushMany(Array.from({ length: 30 }, () => jobs.sleep.withArgs({ ms: 300 })));
    const job = await s.app.waitForJob(bad, { timeoutMs: 180_000 });
    assert.equal(job.state, 'failed');
    assert.deepEqual(
      job.errors.map((e) => e.name),
      [...Array.from({ length: MAX_RECOVERIES }, () => 'WorkerLostError'), 'PoisonJobError'],
    );
    for (const ref of neighbours) assert.equal((await s.app.waitForJob(ref, { timeoutMs: 120_000 })).state, 'succeeded');
    const exited = exits.length;
    assert.equal(exited, MAX_RECOVERIES + 1, `the job ended its process once per run (${exits.join(', ')})`);

    await s.loadRuns();
    const figures = await s.checkRuns();
    // The processes now running were spawned after the last exit and must drain.
    done = true;
    assert.equal(s.liveProcesses().length, 2, 'both slots have a live worker');
    await s.assertDraining();
    const [repeated] = await s.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE name = 'sleep' AND recovery_count > 0`;
    s.report(figures, {
      'process exits': exited,
      'end state': `failed after ${MAX_RECOVERIES} recoveries (DOCKET_RECOVERY_POISON_JOB)`,
      'neighbours recovered and succeeded': repeated!.n,
      'poisoned after': seconds(job.finishedAt!.getTime() - pushedAt.getTime()),
    });
  } finally {
    done = true;
    await s.close();
    await Promise.all(supervisors);
  }
});
