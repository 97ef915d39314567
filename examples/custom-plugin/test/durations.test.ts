import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Docket, defineJob, isDocketError, Worker } from '@docket/core';
import { createTestDatabase } from '@docket/testing';
import { type DurationRecord, jobDurations, PLUGIN_NAME, percentile } from '../src/index.js';

/**
 * A handler that returns after a fixed time. The timer is the only wait: it is the work being
 * measured, not a pause to let something else happen.
 */
const work = defineJob({ name: 'work', queue: 'durations' }, async ({ ms }: { ms: number }) => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ms;
});

const flaky = defineJob(
  { name: 'flaky', queue: 'durations', maxAttempts: 2, retry: { backoff: 'fixed', delayMs: 0, jitter: false } },
  async (_args: Record<string, never>, ctx) => {
    if (ctx.job.attempt === 1) throw new Error('first attempt fails');
    return 'ok';
  },
);

test('records each attempt from jobStart to afterSettle, logs a line per attempt, flags slow ones and keeps stats', async () => {
  await using db = await createTestDatabase();
  const lines: Array<{ line: string; record: DurationRecord }> = [];
  const durations = jobDurations({ slowMs: 150, log: (line, record) => lines.push({ line, record }) });
  await using app = new Docket({ connection: db.url, plugins: [durations], logger: false });
  await app.migrate();

  const delays = [10, 20, 30, 40, 200];
  const refs = await app.pushMany(delays.map((ms) => work.withArgs({ ms })));
  const flakyRef = await app.push(flaky.withArgs({}));

  const worker = new Worker(app, { jobs: [work, flaky], queues: { durations: { concurrency: 5 } } });
  await worker.start();
  try {
    for (const ref of refs) assert.equal((await app.waitForJob(ref, { timeoutMs: 10_000 })).state, 'succeeded');
    const flakyJob = await app.waitForJob(flakyRef, { timeoutMs: 10_000 });
    assert.equal(flakyJob.state, 'succeeded');
    assert.equal(flakyJob.attempt, 2);

    // afterSettle runs after the commit that wakes waitForJob: wait for the records themselves.
    const records = await Promise.all(refs.map((ref) => durations.whenRecorded(ref)));
    const flakyFirst = await durations.whenRecorded(flakyRef, { attempt: 1 });
    const flakySecond = await durations.whenRecorded(flakyRef, { attempt: 2 });

    records.forEach((record, i) => {
      assert.equal(record.name, 'work');
      assert.equal(record.queue, 'durations');
      assert.equal(record.attempt, 1);
      assert.equal(record.state, 'succeeded');
      assert.equal(record.workerId, worker.id);
      // The handler alone waits `ms`; the span also holds the completion write, so it is longer.
      assert.ok(record.durationMs >= delays[i]! - 2, `job of ${delays[i]} ms recorded ${record.durationMs} ms`);
      assert.equal(record.slow, record.durationMs >= 150);
    });
    assert.equal(records[4]!.slow, true, 'the 200 ms job is slow');

    assert.equal(flakyFirst.state, 'retry');
    assert.equal(flakySecond.state, 'succeeded');

    // One line per attempt, the slow one says so.
    assert.equal(lines.length, 7);
    const slowLine = lines.find((l) => l.record.jobId === refs[4]!.id)!.line;
    assert.match(slowLine, new RegExp(`^slow job work #${refs[4]!.id} \\(durations\\) attempt 1 succeeded in \\d`));
    assert.match(slowLine, /slowMs 150/);
    for (const { line, record } of lines.filter((l) => !l.record.slow && l.record.name === 'work')) {
      assert.match(line, new RegExp(`^job work #${record.jobId} \\(durations\\) attempt 1 succeeded in [\\d.]+ m?s$`));
    }

    const stats = durations.stats();
    assert.deepEqual(Object.keys(stats).sort(), ['flaky', 'work']);
    const sorted = records.map((r) => r.durationMs).sort((a, b) => a - b);
    assert.equal(stats.work!.count, 5);
    assert.equal(stats.work!.minMs, sorted[0]);
    assert.equal(stats.work!.maxMs, sorted[4]);
    assert.equal(stats.work!.p50Ms, sorted[2]);
    assert.equal(stats.work!.p95Ms, sorted[4]);
    assert.ok(Math.abs(stats.work!.meanMs - sorted.reduce((a, b) => a + b, 0) / 5) < 1e-9);
    assert.equal(stats.flaky!.count, 2);
    assert.equal(durations.records().length, 7);
  } finally {
    await worker.stop();
  }
});

test('jobs cancelled before they start are not timed', async () => {
  await using db = await createTestDatabase();
  const lines: string[] = [];
  const durations = jobDurations({ log: (line) => lines.push(line) });
  await using app = new Docket({ connection: db.url, plugins: [durations], logger: false });
  await app.migrate();

  const ref = await app.push(work.withArgs({ ms: 1 }).withDelay(60_000));
  const cancelled = await app.cancelJob(ref);
  assert.equal(cancelled.state, 'cancelled');
  const done = await app.push(work.withArgs({ ms: 1 }));

  const worker = new Worker(app, { jobs: [work], queues: { durations: { concurrency: 1 } } });
  await worker.start();
  try {
    await app.waitForJob(done, { timeoutMs: 10_000 });
    await durations.whenRecorded(done);
    assert.deepEqual(
      durations.records().map((r) => r.jobId),
      [done.id],
    );
    assert.equal(lines.length, 1);
  } finally {
    await worker.stop();
  }
});

test('options are validated with the core validators; the plugin has the plugin shape', () => {
  const plugin = jobDurations();
  assert.equal(plugin.name, PLUGIN_NAME);
  assert.equal(typeof plugin.apply, 'function');
  assert.throws(
    () => jobDurations({ slowMS: 5 } as never),
    (error) => isDocketError(error, 'DOCKET_INVALID_OPTION') && /did you mean `slowMs`/.test(error.message),
  );
  assert.throws(
    () => jobDurations({ slowMs: -1 }),
    (error) => isDocketError(error, 'DOCKET_INVALID_OPTION'),
  );
  assert.throws(
    () => jobDurations({ log: 'console' as never }),
    (error) => isDocketError(error, 'DOCKET_INVALID_OPTION'),
  );
});

test('percentile is nearest-rank', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 95), 95);
  assert.equal(percentile([7], 95), 7);
  assert.equal(percentile([1, 2], 50), 1);
});
