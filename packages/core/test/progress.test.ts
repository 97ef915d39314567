/**
 * ctx.progress: reports stored on the job (throttled, the last one always kept), read with getJob
 * and listJobs, heard by onProgress listeners in another process; across retries, for atomic jobs,
 * and for an attempt a worker stop interrupts. Bad reports and bad calls fail with coded errors.
 * (Each executor's reports: executors.test.ts.)
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, defineJob, type JobProgress, Worker } from '@docket/core';
import { stopChild, waitFor } from '@docket/testing';
import { deferred, type Harness, harness } from './helpers.js';

const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;

describe('progress', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  test('a worker in another process: listeners hear its stored reports as they come, throttled, and always the last', {
    timeout: 60_000,
  }, async () => {
    const child = fork(new URL('./fixtures/progress-worker.ts', import.meta.url), {
      env: { ...process.env, TEST_DATABASE_URL: h.db.url },
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    try {
      await once(child, 'message');
      const { ticker } = await import('./fixtures/progress-worker.js');
      const ref = await h.app.push(ticker.withArgs({ ms: 1500 }));
      const heard: JobProgress[] = [];
      const first = deferred();
      const stop = await h.app.onProgress(ref, (p) => {
        heard.push(p);
        first.resolve();
      });
      await first.promise;
      const running = await h.app.getJob(ref);
      assert.ok(running.progress !== null && running.progress.value < 100, 'getJob shows a report while the job runs');
      const done = await h.app.waitForJob(ref, { timeoutMs: 30_000 });
      await waitFor(() => heard.at(-1)?.value === 100, { timeoutMs: 10_000, message: 'the last report heard' });
      stop();
      const reports = done.result as number;
      assert.ok(reports > 200, `the handler reported often (${reports} times)`);
      assert.deepEqual([done.progress?.value, done.progress?.data], [100, { done: true, reports }], 'the last report is stored');
      assert.deepEqual(heard.at(-1)?.data, { done: true, reports });
      assert.ok(heard.length >= 3, `heard several reports while it ran (${heard.length})`);
      assert.ok(heard.length < 100, `throttled: ${heard.length} stored reports heard for ${reports} made`);
      const values = heard.map((p) => p.value);
      assert.deepEqual(
        values,
        [...values].sort((a, b) => a - b),
        'in order',
      );
      assert.ok(heard.every((p) => p.attempt === 1 && p.at instanceof Date));
    } finally {
      await stopChild(child);
    }
  });

  test('a retry keeps the earlier attempt’s report until it reports; listJobs shows it', async () => {
    const flaky = defineJob(
      { name: 'progress.flaky', queue: 'progress-flaky', maxAttempts: 2, retry: { backoff: 'fixed', delayMs: 0 } },
      async (_: void, ctx) => {
        if (ctx.job.attempt === 1) {
          ctx.progress(50, { step: 'first try' });
          throw new Error('first attempt fails');
        }
        assert.deepEqual(ctx.job.errors.length, 1);
        ctx.progress(10);
        return 'ok';
      },
    );
    await h.worker({ jobs: [flaky], queues: { 'progress-flaky': {} } });
    const ref = await h.app.push(flaky);
    const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    assert.deepEqual([done.progress?.value, done.progress?.data, done.progress?.attempt], [10, null, 2]);
    const { jobs } = await h.app.listJobs({ queue: 'progress-flaky' });
    assert.deepEqual(jobs[0]?.progress, done.progress);
  });

  test('an atomic job’s last report is stored with its outcome, in its transaction', async () => {
    const atomic = defineJob({ name: 'progress.atomic', queue: 'progress-atomic', atomic: true }, async (_: void, ctx) => {
      ctx.progress(30);
      ctx.progress(60, { rows: 2 });
      await ctx.sql!`SELECT 1`;
      return 'ok';
    });
    await h.worker({ jobs: [atomic], queues: { 'progress-atomic': {} } });
    const done = await h.app.waitForJob(await h.app.push(atomic), { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded', JSON.stringify(done.errors));
    assert.deepEqual([done.progress?.value, done.progress?.data], [60, { rows: 2 }]);
  });

  test('an attempt a worker stop interrupts keeps its last report; the job goes back to the queue', async () => {
    const started = deferred();
    const patient = defineJob({ name: 'progress.patient', queue: 'progress-stop' }, async (_: void, ctx) => {
      ctx.progress(1);
      ctx.progress(42, { at: 'the stop' });
      started.resolve();
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      throw ctx.signal.reason;
    });
    const worker = await h.worker({ jobs: [patient], queues: { 'progress-stop': {} }, progressIntervalMs: 60_000 });
    const ref = await h.app.push(patient);
    await started.promise;
    await worker.stop({ timeoutMs: 0 });
    const job = await h.app.getJob(ref);
    assert.equal(job.state, 'pending');
    assert.deepEqual([job.progress?.value, job.progress?.data], [42, { at: 'the stop' }]);
  });

  test('a job that never reports has no progress; called directly, ctx.progress checks and drops reports', async () => {
    const quiet = defineJob({ name: 'progress.quiet', queue: 'progress-quiet' }, async () => 1);
    await h.worker({ jobs: [quiet], queues: { 'progress-quiet': {} } });
    assert.equal((await h.app.waitForJob(await h.app.push(quiet), { timeoutMs: 10_000 })).progress, null);
    const local = defineJob({ name: 'progress.local' }, async (value: number, ctx) => {
      ctx.progress(value);
      return 'reported';
    });
    assert.equal(await local(50), 'reported');
    await assert.rejects(local(-1), code('DOCKET_INVALID_OPTION'));
  });

  test('bad calls fail with coded errors', async () => {
    await assert.rejects(
      h.app.onProgress('not-an-id', () => {}),
      code('DOCKET_INVALID_OPTION'),
    );
    await assert.rejects(h.app.onProgress('1', 'listener' as never), code('DOCKET_INVALID_OPTION'));
    assert.throws(() => new Worker(h.app, { jobs: [], queues: { q: {} }, progressIntervalMs: 0 }), code('DOCKET_INVALID_OPTION'));
    const silent = new Docket({ connection: h.db.url, logger: false, listen: false });
    try {
      await assert.rejects(
        silent.onProgress('1', () => {}),
        code('DOCKET_INVALID_OPTION'),
      );
    } finally {
      await silent.close();
    }
  });
});
