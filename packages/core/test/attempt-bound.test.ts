/**
 * jobStart's `attempt.abortAt`: a plugin bounds an attempt in wall-clock time, combined with the
 * job's own `limits.timeoutMs` (the earliest stops it); a time already past never runs the handler.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type DocketPlugin, defineJob, type RunningJob } from '@docket/core';
import { harness } from './helpers.js';

test('jobStart taps may bound the attempt with attempt.abortAt: the earliest of it and limits.timeoutMs stops it', async () => {
  const ran: number[] = [];
  const boundOf = (job: RunningJob) => (job.args as { boundMs: number | null }).boundMs;
  const bounding: DocketPlugin = {
    name: 'test-bound',
    apply(app) {
      app.hooks.jobStart.tapPromise({ name: 'test-bound', wants: (job) => boundOf(job) !== null }, async (ctx, attempt) => {
        attempt.abortAt(new Date(Date.now() + (boundOf(ctx.job) ?? 0)), () => Object.assign(new Error('past the bound'), { name: 'BoundError' }));
        // A later time (from this tap or another) does not push the earliest back.
        attempt.abortAt(new Date(Date.now() + 60_000), () => new Error('later'));
      });
    },
  };
  const h = await harness({ plugins: [bounding] });
  try {
    const waits = defineJob({ name: 'waits', queue: 'bound' }, async (args: { n: number; boundMs: number | null }, ctx) => {
      ran.push(args.n);
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      return 'returned after the abort';
    });
    await h.worker({ jobs: [waits], queues: { bound: {} } });
    const refs = await h.app.pushMany([
      waits.withArgs({ n: 1, boundMs: 150 }),
      waits.withArgs({ n: 2, boundMs: 30_000 }).withLimits({ timeoutMs: 100 }),
      waits.withArgs({ n: 3, boundMs: -1000 }),
      waits.withArgs({ n: 4, boundMs: null }).withLimits({ timeoutMs: 100 }),
    ]);
    const [a, b, c, d] = await Promise.all(refs.map((r) => h.app.waitForJob(r, { timeoutMs: 10_000 })));
    assert.deepEqual([a!.state, a!.errors[0]?.name, a!.errors[0]?.message], ['failed', 'BoundError', 'past the bound']);
    assert.deepEqual([b!.state, b!.errors[0]?.code], ['failed', 'DOCKET_LIMIT_EXCEEDED'], 'the time limit came first');
    assert.deepEqual([c!.state, c!.errors[0]?.name], ['failed', 'BoundError']);
    assert.equal(ran.includes(3), false, 'a time already past: the handler never ran');
    assert.deepEqual([d!.state, d!.errors[0]?.code], ['failed', 'DOCKET_LIMIT_EXCEEDED'], 'a job no tap wants keeps its own limit');
  } finally {
    await h.close();
  }
});
