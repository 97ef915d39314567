/**
 * NOTIFY payloads are limited to 8,000 bytes. Lists (queues woken, jobs settled) go out in
 * chunks, so a push to many long-named queues or a batch of completions with long ids never fails
 * on the notification — which would fail the push, or leave finished jobs `running` while the
 * completer retried.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineJob, Worker } from '@docket/core';
import { type Harness, harness } from './helpers.js';

let h: Harness;
before(async () => (h = await harness()));
after(() => h.close());

test('a push to 200 queues with 120-character names succeeds, and a worker of one of them is woken', async () => {
  const queues = Array.from({ length: 200 }, (_, i) => `q${String(i).padStart(3, '0')}.${'x'.repeat(115)}`);
  const job = defineJob({ name: 'many-queues', queue: queues[0]! }, async (_args: object) => 'ok');
  const worker = await h.worker({ jobs: [job], queues: { [queues[199]!]: { pollIntervalMs: 60_000 } } });
  assert.ok(worker instanceof Worker);
  // The payload listing every queue would be ~24,000 bytes.
  const refs = await h.app.pushMany(queues.map((queue) => job.withArgs({}).withQueue(queue)));
  assert.equal(refs.length, 200);
  const woken = await h.app.waitForJob(refs[199]!, { timeoutMs: 5_000 });
  assert.equal(woken.state, 'succeeded', 'the worker of the last queue was woken long before its 60 s poll');
});

test('completions of 500 jobs with 19-digit ids are written and announced', async () => {
  await h.db.sql`ALTER SEQUENCE docket.jobs_id_seq RESTART WITH 1000000000000000000`;
  const job = defineJob({ name: 'long-ids', queue: 'long-ids' }, async (_args: object) => 'ok');
  const refs = await h.app.pushMany(Array.from({ length: 500 }, () => job.withArgs({})));
  assert.equal(refs[0]!.id.length, 19);
  // One claim of all 500 and one completion batch: the settled list would be ~10,000 bytes.
  await h.worker({ jobs: [job], queues: { 'long-ids': { concurrency: 50, prefetch: 500, pollIntervalMs: 60_000 } } });
  const last = await h.app.waitForJob(refs[499]!, { timeoutMs: 10_000 });
  assert.equal(last.state, 'succeeded');
  for (const ref of refs) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 10_000 })).state, 'succeeded');
  const [row] = await h.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM docket.jobs WHERE queue = 'long-ids' AND state = 'succeeded'`;
  assert.equal(row!.n, 500);
});
