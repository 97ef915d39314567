/**
 * A worker cut off from the database while it runs jobs: its connections go through a TCP proxy
 * (@docket/testing) that stalls them (a partition: nothing crosses, nothing fails) or resets them
 * (a broken network). After the dead-worker margin another worker recovers its jobs and runs them
 * to success; when the cut-off worker comes back, its own outcomes for those jobs are fenced out
 * (they would overwrite the newer ones), it heart-beats again and drains on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTcpProxy, waitFor } from '@docket/testing';
import { jobs, Scenario, seconds } from './scenario.js';

const JOBS = 6;
const JOB_MS = 4000;

for (const mode of ['stall', 'drop'] as const) {
  test(`a worker cut off (${mode}) mid-job: its jobs are recovered after the margin and its late outcomes fenced out`, {
    timeout: 180_000,
  }, async () => {
    const s = await Scenario.start(`worker cut off by a TCP proxy (${mode})`);
    const url = new URL(s.db.url);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    try {
      // Margin: max(3 × 200 ms, 1000 ms) = 1 s.
      const settings = { concurrency: JOBS, heartbeatMs: 200, deadAfterMs: 1000, recoveryIntervalMs: 100 };
      const cut = await s.spawn('cut', { ...settings, url: proxy.url(s.db.url) });
      const cutId = await cut.started;
      const refs = await s.app.pushMany(Array.from({ length: JOBS }, () => jobs.sleep.withArgs({ ms: JOB_MS })));
      // Every job running on the worker about to be cut off.
      await waitFor(
        async () => (await s.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE state = 'running' AND worker_id = ${cutId}`)[0]!.n === JOBS,
        { timeoutMs: 30_000, message: 'every job running on the worker to cut off' },
      );
      await s.spawn('peer', settings);

      const cutAt = await s.now();
      if (mode === 'stall') proxy.stall();
      else proxy.drop();
      s.explain(cut, `cut off (${mode})`);

      // The peer recovers them after the margin and runs them to success, while the worker is still cut off.
      for (const ref of refs) {
        const job = await s.app.waitForJob(ref, { timeoutMs: 60_000 });
        assert.equal(job.state, 'succeeded');
      }
      const [recovery] = await s.db.sql`
        SELECT min((SELECT min((e->>'at')::timestamptz) FROM jsonb_array_elements(errors) e WHERE e->>'name' = 'WorkerLostError')) AS first,
               max(finished_at) AS done
          FROM docket.jobs WHERE id = ANY(${refs.map((r) => r.id)}::bigint[])`;

      // Its handlers finished long ago; its outcomes wait in the stalled sockets (or in its retries).
      proxy.restore();
      const fenced = await waitFor(
        () => {
          const warnings = cut.messages.filter((m) => m.type === 'log' && m.level === 'warn' && /outcome not written/.test(m.message ?? ''));
          return warnings.length >= JOBS ? warnings : undefined;
        },
        { timeoutMs: 60_000, message: 'the cut-off worker reports its outcomes fenced out' },
      );
      await waitFor(async () => (await s.db.sql`SELECT count(*)::int AS n FROM docket.workers WHERE id = ${cutId}`)[0]!.n === 1, {
        timeoutMs: 30_000,
        message: 'the cut-off worker heart-beats again',
      });

      for (const ref of refs) {
        const job = await s.app.getJob(ref);
        assert.deepEqual(
          { state: job.state, attempt: job.attempt, result: job.result, errors: job.errors.map((e) => e.name) },
          { state: 'succeeded', attempt: 2, result: { label: 'peer' }, errors: ['WorkerLostError'] },
          `job ${ref.id} keeps the newer outcome`,
        );
      }
      await s.loadRuns();
      const figures = await s.checkRuns();
      assert.deepEqual(figures.repeats, { [`cut off (${mode})`]: JOBS }, 'each job ran twice: on the cut-off worker, then on the peer');
      await s.assertDraining();
      s.report(figures, {
        'dead-worker margin': '1.0 s',
        'jobs recovered after the cut': seconds(recovery!.first.getTime() - cutAt.getTime()),
        'all succeeded on the peer after the cut': seconds(recovery!.done.getTime() - cutAt.getTime()),
        'late outcomes fenced out when it came back': fenced.length,
      });
    } finally {
      await s.close();
      await proxy.close();
    }
  });
}
