import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Docket, defineJob, Worker } from '@docket/core';
import { createTestDatabase } from '@docket/testing';
import { maxRunning } from '../src/index.js';

test('never more than the cap running across two workers, and freed slots are taken without waiting for a poll', async () => {
  await using db = await createTestDatabase();
  await using app = new Docket({ connection: db.url, plugins: [maxRunning({ capped: 2 })], logger: false });
  await app.migrate();
  let running = 0;
  let peak = 0;
  const work = defineJob({ name: 'work', queue: 'capped' }, async () => {
    peak = Math.max(peak, ++running);
    // The work itself: long enough that two workers at concurrency 5 would overlap far past the cap.
    await new Promise((resolve) => setTimeout(resolve, 30));
    running--;
  });
  const free = defineJob({ name: 'free', queue: 'free' }, async () => 'ok');
  const refs = await app.pushMany(Array.from({ length: 20 }, () => work));
  const freeRefs = await app.pushMany(Array.from({ length: 10 }, () => free));
  // A poll every minute: only the wake-ups on freed capacity can finish 20 jobs in this test's time.
  const options = {
    jobs: [work, free],
    queues: { capped: { concurrency: 5, pollIntervalMs: 60_000 }, free: { concurrency: 5, pollIntervalMs: 60_000 } },
  };
  const workers = [new Worker(app, options), new Worker(app, options)];
  await Promise.all(workers.map((w) => w.start()));
  try {
    for (const ref of [...refs, ...freeRefs]) assert.equal((await app.waitForJob(ref, { timeoutMs: 20_000 })).state, 'succeeded');
    assert.equal(peak, 2, 'the cap was reached and never passed');
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
});

test('refuses a cap that is not a positive integer', () => {
  assert.throws(() => maxRunning({ emails: 0 }), { code: 'DOCKET_INVALID_OPTION' });
  assert.throws(() => maxRunning({}), { code: 'DOCKET_INVALID_OPTION' });
});
