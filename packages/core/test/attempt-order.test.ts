import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type DocketPlugin, defineJob } from '@docket/core';
import { deferred, type Harness, harness } from './helpers.js';

/**
 * A job retried at once can be claimed again the moment its outcome commits, sometimes by a claim
 * whose answer arrives with the outcome write's (pipelined on one connection) or before the write's
 * after-commit work is done. Hooks must still see one job's history in order: the `afterSettle` of
 * an attempt before the `jobStart` of the next one.
 */
const JOBS = 200;
const ATTEMPTS = 4;

let h: Harness;
/** Per job id: the hook calls in the order they came, e.g. ['start 1', 'settled 1:retry', 'start 2', …]. */
const history = new Map<string, string[]>();
const allDone = deferred();
let finished = 0;
const record = (id: string, entry: string) => {
  let list = history.get(id);
  if (!list) history.set(id, (list = []));
  list.push(entry);
};

const observer: DocketPlugin = {
  name: 'order-observer',
  apply(app) {
    app.hooks.jobStart.tap('order-observer', (ctx) => record(ctx.job.id, `start ${ctx.job.attempt}`));
    // After-commit work that takes a round trip of its own: the outcome is announced after it.
    app.hooks.settle.tapPromise('order-observer', async (settlements, ctx) => {
      ctx.afterCommit(() => app.sql`SELECT 1`.then(() => undefined));
      return settlements;
    });
    app.hooks.afterSettle.tap('order-observer', (settled) => {
      for (const s of settled) {
        record(s.job.id, `settled ${s.job.attempt}:${s.outcome.state}`);
        if (s.outcome.state === 'succeeded' && ++finished === JOBS) allDone.resolve();
      }
    });
  },
};

const flaky = defineJob({ name: 'flaky', queue: 'order', maxAttempts: ATTEMPTS, retry: { backoff: 'fixed', delayMs: 0 } }, async (_: void, ctx) => {
  if (ctx.job.attempt < ATTEMPTS) throw new Error(`attempt ${ctx.job.attempt} fails`);
});

before(async () => {
  h = await harness({ plugins: [observer] });
});
after(() => h.close());

test("a job's next attempt starts only after the previous attempt's afterSettle", async () => {
  await h.worker({ jobs: [flaky], queues: { order: { concurrency: 16, pollIntervalMs: 20 } } });
  await h.app.pushMany(Array.from({ length: JOBS }, () => flaky.withArgs(undefined)));
  await allDone.promise;
  const expected: string[] = [];
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    expected.push(`start ${attempt}`, `settled ${attempt}:${attempt < ATTEMPTS ? 'retry' : 'succeeded'}`);
  }
  const out = [...history].filter(([, list]) => list.join() !== expected.join());
  assert.deepEqual(out.slice(0, 3), [], `${out.length} of ${JOBS} jobs seen out of order`);
});
