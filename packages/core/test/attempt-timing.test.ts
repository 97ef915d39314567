import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineJob } from '@docket/core';
import { type Harness, harness } from './helpers.js';

let h: Harness;
before(async () => (h = await harness()));
after(() => h.close());

test("each failed attempt's error records when that attempt started, so every attempt's timing stays readable", async () => {
  let calls = 0;
  const flaky = defineJob({ name: 'timing.flaky', queue: 'timing', maxAttempts: 3, retry: { delayMs: 0 } }, async () => {
    calls++;
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (calls < 3) throw new Error(`attempt ${calls} breaks`);
    return 'third works';
  });
  const ref = await h.app.push(flaky);
  await h.worker({ jobs: [flaky], queues: { timing: {} } });
  const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
  assert.equal(done.state, 'succeeded');
  assert.equal(done.errors.length, 2);
  let previousEnd = 0;
  for (const [i, error] of done.errors.entries()) {
    assert.equal(error.attempt, i + 1);
    assert.ok(error.startedAt, `attempt ${i + 1} has a start time`);
    const started = Date.parse(error.startedAt);
    const ended = Date.parse(error.at);
    assert.ok(started >= previousEnd - 1000, 'an attempt starts after the previous one ended (clocks of one machine)');
    assert.ok(ended >= started - 1000, 'an attempt ends after it started');
    previousEnd = ended;
  }
  assert.ok(done.startedAt && done.startedAt.getTime() >= Date.parse(done.errors[1]!.at) - 1000, 'the last attempt is the job’s own startedAt');
});
