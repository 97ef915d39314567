import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DocketError, defineJob } from '@docket/core';
import { waitFor } from '@docket/testing';
import { chain, chord, type FailureInfo, type GroupFlow, group, link, linkError, pushWorkflow, waitForWorkflow } from '../src/index.js';
import { type Harness, harness } from './helpers.js';

describe('chains, groups, chords and callbacks', () => {
  let h: Harness;

  const inc = defineJob({ name: 'inc', queue: 'flows' }, async (n: number) => n + 1);
  const double = defineJob({ name: 'double', queue: 'flows' }, async (n: number) => n * 2);
  const show = defineJob({ name: 'show', queue: 'flows' }, async (n: number) => `${n}!`);
  /** Finishes after `delayMs`, so the jobs of a group end in another order than they were given. */
  const late = defineJob({ name: 'late', queue: 'flows' }, async ({ n, delayMs }: { n: number; delayMs: number }) => {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    return n * 10;
  });
  const sum = defineJob({ name: 'sum', queue: 'flows' }, async (ns: number[]) => ns.reduce((a, b) => a + b, 0));
  let flakyCalls = 0;
  const flaky = defineJob(
    { name: 'flaky', queue: 'flows', maxAttempts: 3, retry: { backoff: 'fixed', delayMs: 10, jitter: false } },
    async ({ failures }: { failures: number }, ctx) => {
      flakyCalls++;
      if (ctx.job.attempt <= failures) throw new Error(`attempt ${ctx.job.attempt} failed`);
      return `ok after ${ctx.job.attempt}`;
    },
  );
  const onSuccess = defineJob({ name: 'on-success', queue: 'flows' }, async (result: string) => `saw ${result}`);
  const onFailure = defineJob({ name: 'on-failure', queue: 'flows' }, async (info: FailureInfo<{ failures: number }>) => ({
    job: info.job.id,
    attempt: info.job.attempt,
    message: info.error?.message,
  }));

  before(async () => {
    h = await harness();
    await h.worker({ jobs: [inc, double, show, late, sum, flaky, onSuccess, onFailure], queues: { flows: { concurrency: 10 } } });
  });
  after(() => h.close());

  test('a chain of three passes each result along, and is waited on as one', async () => {
    const ref = await pushWorkflow(h.app, chain(inc.withArgs(3), double, show));
    assert.equal(ref.kind, 'chain');
    const done = await waitForWorkflow(h.app, ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    const result: string | null = done.result; // typed: the last step's result
    assert.equal(result, '8!');
    const jobs = await Promise.all(done.steps.map((s) => h.app.getJob(s.jobId!)));
    assert.deepEqual(
      jobs.map((j) => [j.name, j.args, j.result]),
      [
        ['inc', 3, 4],
        ['double', 4, 8],
        ['show', 8, '8!'],
      ],
    );
  });

  test('a chain stops at a failing step', async () => {
    const ref = await pushWorkflow(h.app, chain(flaky.withArgs({ failures: 5 }), onSuccess));
    const done = await waitForWorkflow(h.app, ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'failed');
    assert.deepEqual(
      done.steps.map((s) => s.state),
      ['failed', 'cancelled'],
    );
    assert.equal(done.result, null);
  });

  test('group results come back in the order of the jobs, not of their completion', async () => {
    const delays = [120, 60, 0, 90, 30];
    const ref = await pushWorkflow(h.app, group(...delays.map((delayMs, n) => late.withArgs({ n, delayMs }))));
    const done = await waitForWorkflow(h.app, ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    assert.deepEqual(done.result, [0, 10, 20, 30, 40]);
    const finished = done.steps.map((s) => s.finishedAt!.getTime());
    assert.ok(finished[2]! < finished[0]!, 'the third job (no delay) finished before the first (120 ms)');
  });

  test('a chord runs its callback once with every result, in order', async () => {
    const delays = [80, 0, 40];
    const ref = await pushWorkflow(h.app, chord(group(...delays.map((delayMs, n) => late.withArgs({ n: n + 1, delayMs }))), sum).named('totals'));
    const done = await waitForWorkflow(h.app, ref, { timeoutMs: 10_000 });
    assert.equal(done.name, 'totals');
    assert.equal(done.state, 'succeeded');
    assert.equal(done.result, 60);
    const callback = await h.app.getJob(done.steps.at(-1)!.jobId!);
    assert.deepEqual(callback.args, [10, 20, 30], 'the callback got the results in group order');
    const [calls] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE name = 'sum' AND meta->>'workflowId' = ${done.id}`;
    assert.equal(calls!.n, 1);
  });

  test('linkError fires once, on the final failure, never on the retries', async () => {
    flakyCalls = 0;
    const ref = await h.app.push(linkError(link(flaky.withArgs({ failures: 3 }), onSuccess), onFailure));
    const job = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(job.state, 'failed');
    assert.equal(job.errors.length, 3, 'two retries, then the final failure');
    assert.equal(flakyCalls, 3);
    const callbacks = await waitFor(
      async () => {
        const rows = await h.db
          .sql`SELECT id::text AS id, name, state, args, result, created_at FROM docket.jobs WHERE meta->>'callbackOf' = ${ref.id}`;
        return rows.length > 0 && rows.every((r) => r.state === 'succeeded') ? rows : undefined;
      },
      { timeoutMs: 10_000, message: 'the failure callback to run' },
    );
    assert.deepEqual(
      callbacks.map((c) => c.name),
      ['on-failure'],
      'one callback: linkError, not link',
    );
    assert.deepEqual(callbacks[0]!.result, { job: ref.id, attempt: 3, message: 'attempt 3 failed' });
    assert.ok(callbacks[0]!.created_at >= job.finishedAt!, 'pushed by the final failure, not before');
  });

  test('link fires once on success (after retries), with the result; linkError does not', async () => {
    const ref = await h.app.push(linkError(link(flaky.withArgs({ failures: 2 }), onSuccess), onFailure));
    const job = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(job.state, 'succeeded');
    const callbacks = await waitFor(
      async () => {
        const rows = await h.db.sql`SELECT name, state, args, result, meta FROM docket.jobs WHERE meta->>'callbackOf' = ${ref.id}`;
        return rows.length > 0 && rows.every((r) => r.state === 'succeeded') ? rows : undefined;
      },
      { timeoutMs: 10_000, message: 'the success callback to run' },
    );
    assert.deepEqual(
      callbacks.map((c) => [c.name, c.args, c.result, c.meta.callbackOn]),
      [['on-success', 'ok after 3', 'saw ok after 3', 'succeeded']],
    );
  });

  test('flows refuse what cannot work at build time', () => {
    const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;
    assert.throws(() => group(), code('DOCKET_WORKFLOW_INVALID_FLOW'));
    assert.throws(() => chord(chain(inc.withArgs(1)) as unknown as GroupFlow<number[]>, sum), code('DOCKET_WORKFLOW_INVALID_FLOW'));
    assert.throws(() => chain(inc.withArgs(1), {} as never), code('DOCKET_INVALID_JOB_OPTION'));
    assert.throws(() => link(inc.withArgs(1), null as never), code('DOCKET_INVALID_JOB_OPTION'));
  });
});
