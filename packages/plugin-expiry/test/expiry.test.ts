/**
 * plugin-expiry on a real PostgreSQL: expired pending jobs never run and record why (ended by the
 * sweep, or refused by the worker that claims them), across worker processes; a retry that would
 * start after the expiry does not start; deadlines stop running attempts and combine with time
 * limits; jobs without times are untouched; bad input is a coded error.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DocketError, defineJob, type JobRecord, type JobRef } from '@docket/core';
import { EXPIRY_META_KEY, type ExpiryEvents, expiry, expiryOf, isExpired, PLUGIN_NAME } from '@docket/plugin-expiry';
import { stopChild } from '@docket/testing';
import { record } from './fixtures/worker.js';
import { type Harness, harness, nextMessage } from './helpers.js';

const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;
/** A push refused by the plugin's beforePush tap: DOCKET_PLUGIN_FAILED, with the plugin's coded error as its cause. */
const refusedPush = (c: string, message?: RegExp) => (e: unknown) =>
  code('DOCKET_PLUGIN_FAILED')(e) && code(c)((e as Error).cause) && (message === undefined || message.test(((e as Error).cause as Error).message));

const job = defineJob({ name: 'expiry.builders', queue: 'expiry-builders' }, async () => 1);

describe('options and builders', () => {
  test('bad times and durations are DOCKET_INVALID_JOB_OPTION; unknown plugin options DOCKET_INVALID_OPTION', () => {
    for (const bad of [() => job.invocation().withExpiresAt(new Date('nope')), () => job.invocation().withExpiresAt('2030-01-01' as never)]) {
      assert.throws(bad, code('DOCKET_INVALID_JOB_OPTION'));
    }
    for (const ms of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 48, '10' as never]) {
      assert.throws(() => job.invocation().withExpiresIn(ms), code('DOCKET_INVALID_JOB_OPTION'));
      assert.throws(() => job.invocation().withDeadlineIn(ms), code('DOCKET_INVALID_JOB_OPTION'));
    }
    assert.throws(() => job.invocation().withDeadline(null as never), code('DOCKET_INVALID_JOB_OPTION'));
    assert.throws(
      () => expiry({ interval: 5 } as never),
      (e: unknown) => code('DOCKET_INVALID_OPTION')(e) && /did you mean `intervalMs`/.test((e as Error).message),
    );
    assert.throws(() => expiry({ batchSize: 0 }), code('DOCKET_INVALID_OPTION'));
    // A later call replaces the same kind of time; expiry and deadline are kept apart.
    const at = new Date('2030-01-01T00:00:00Z');
    const inv = job.invocation().withExpiresIn(5000).withExpiresAt(at).withDeadlineIn(9000);
    assert.deepEqual(
      { ...(inv.options.extensions['expiry.times'] as object) },
      { expiresAt: at, expiresInMs: null, deadline: null, deadlineInMs: 9000 },
    );
    assert.equal(expiry().name, PLUGIN_NAME);
  });
});

describe('expiry', () => {
  let h: Harness;
  let workers: ChildProcess[] = [];
  const expired: ExpiryEvents['expiry.expired']['jobs'][number][] = [];

  before(async () => {
    h = await harness({ plugins: [expiry({ intervalMs: 200 })] });
    await h.db
      .sql`CREATE TABLE runs (job_id bigint NOT NULL, attempt int NOT NULL, worker text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`;
    h.app.hooks.event.tap('test', (event) => {
      if (event.type === 'expiry.expired') expired.push(...event.payload.jobs);
    });
  });
  after(async () => {
    await Promise.all(workers.map((w) => stopChild(w)));
    await h.close();
  });

  async function startWorkers(n: number, sweepMs: number): Promise<void> {
    const started = Array.from({ length: n }, () => {
      const child = fork(new URL('./fixtures/worker.ts', import.meta.url), {
        env: { ...process.env, TEST_DATABASE_URL: h.db.url, SWEEP_MS: String(sweepMs) },
        execArgv: process.execArgv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      workers.push(child);
      return nextMessage(child, 'started');
    });
    await Promise.all(started);
  }
  async function stopWorkers(): Promise<void> {
    await Promise.all(workers.map((w) => stopChild(w)));
    workers = [];
  }
  const runsOf = async (refs: readonly JobRef[]) =>
    (await h.db.sql`SELECT job_id::text AS id, attempt FROM runs WHERE job_id = ANY(${refs.map((r) => r.id)}::bigint[]) ORDER BY at`).map(
      (r) => `${r.id}@${r.attempt}`,
    );
  const waitAll = (refs: readonly JobRef[]) => Promise.all(refs.map((r) => h.app.waitForJob(r, { timeoutMs: 30_000 })));
  const assertExpired = (jobs: readonly JobRecord[], message: RegExp) => {
    for (const j of jobs) {
      assert.equal(j.state, 'cancelled', `job ${j.id}: ${JSON.stringify(j.errors)}`);
      assert.ok(isExpired(j));
      const last = j.errors.at(-1)!;
      assert.deepEqual([last.code, last.name], ['DOCKET_EXPIRY_EXPIRED', 'JobExpiredError']);
      assert.match(last.message, message);
      assert.ok(j.finishedAt !== null);
    }
  };

  test('pending jobs that expire in a paused queue are ended by the sweep of worker processes and never run; the others run once', {
    timeout: 90_000,
  }, async () => {
    await startWorkers(2, 200);
    try {
      await h.app.pauseQueue('expiry');
      const expiring = await h.app.pushMany(Array.from({ length: 5 }, () => record.withArgs({}).withExpiresIn(500)));
      const lasting = await h.app.pushMany(Array.from({ length: 5 }, () => record.withArgs({}).withExpiresIn(600_000)));
      const plain = await h.app.pushMany(Array.from({ length: 5 }, () => record.withArgs({})));
      // Woken by the sweep's settlement (s: notifications), in whichever worker process it ran.
      const ended = await waitAll(expiring);
      assertExpired(ended, /did not start before it expired at .*, so it will not run\./);
      assert.ok(ended.every((j) => j.attempt === 0 && j.startedAt === null));
      await h.app.resumeQueue('expiry');
      const done = await waitAll([...lasting, ...plain]);
      assert.ok(done.every((j) => j.state === 'succeeded'));
      assert.deepEqual(await runsOf(expiring), [], 'no expired job ran');
      assert.equal((await runsOf([...lasting, ...plain])).length, 10, 'each other job ran once');
      assert.equal(expiryOf(done[0]!)?.deadline, null);
      assert.ok(expiryOf(done[0]!)!.startBy.getTime() > Date.now());
      assert.equal(expiryOf(done[5]!), null, 'a job pushed without times carries none');
      assert.equal(done[5]!.meta[EXPIRY_META_KEY], undefined);
    } finally {
      await stopWorkers();
    }
  });

  test('a job claimed after it expired (before any sweep) is not started: the worker process ends it with the reason', {
    timeout: 90_000,
  }, async () => {
    await startWorkers(2, 600_000); // their sweeps ran at start, before the push, and not again
    try {
      await h.app.pauseQueue('expiry');
      const refs = await h.app.pushMany(Array.from({ length: 6 }, () => record.withArgs({}).withExpiresIn(300)));
      await sleep(500); // time passes: they expire while the queue is paused
      await h.app.resumeQueue('expiry');
      const ended = await waitAll(refs);
      assertExpired(ended, /attempt 1 was claimed at .*, after that, and was not started/);
      assert.ok(ended.every((j) => j.attempt === 1));
      assert.deepEqual(await runsOf(refs), [], 'no handler ran');
    } finally {
      await stopWorkers();
    }
  });

  test('a failed attempt whose retry would start after the expiry is not retried; both errors are kept', async () => {
    const flaky = defineJob(
      { name: 'expiry.flaky', queue: 'expiry-retry', maxAttempts: 5, retry: { backoff: 'fixed', delayMs: 3000 } },
      async (_: void, ctx) => {
        await ctx.app!.sql`INSERT INTO runs (job_id, attempt, worker) VALUES (${ctx.job.id}, ${ctx.job.attempt}, ${ctx.workerId})`;
        throw new Error(`attempt ${ctx.job.attempt} fails`);
      },
    );
    const quickRetry = defineJob(
      { name: 'expiry.quick-retry', queue: 'expiry-retry', maxAttempts: 2, retry: { backoff: 'fixed', delayMs: 0 } },
      async (_: void, ctx) => {
        if (ctx.job.attempt === 1) throw new Error('first attempt fails');
        return 'second attempt';
      },
    );
    await h.worker({ jobs: [flaky, quickRetry], queues: { 'expiry-retry': {} } });
    const [late, early] = await h.app.pushMany([flaky.invocation().withExpiresIn(1000), quickRetry.invocation().withExpiresIn(60_000)]);
    const [lateJob, earlyJob] = await waitAll([late!, early!]);
    assertExpired([lateJob!], /its retry \(attempt 2\) would start at .*, after that/);
    assert.equal(lateJob!.attempt, 1);
    assert.deepEqual(
      lateJob!.errors.map((e) => e.message.slice(0, 17)),
      ['attempt 1 fails', "Job 'expiry.flaky"],
    );
    assert.deepEqual(await runsOf([late!]), [`${late!.id}@1`], 'ran once');
    assert.ok(expired.some((j) => j.id === late!.id));
    assert.deepEqual([earlyJob!.state, earlyJob!.result], ['succeeded', 'second attempt'], 'a retry before the expiry runs');
  });

  test('a deadline stops a running attempt: failed with DOCKET_EXPIRY_DEADLINE_EXCEEDED, not retried', async () => {
    const patient = defineJob({ name: 'expiry.patient', queue: 'expiry-deadline', maxAttempts: 5 }, async (_: void, ctx) => {
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      throw ctx.signal.reason;
    });
    await h.worker({ jobs: [patient], queues: { 'expiry-deadline': {} } });
    const done = await h.app.waitForJob(await h.app.push(patient.invocation().withDeadlineIn(400)), { timeoutMs: 30_000 });
    assert.equal(done.state, 'failed');
    assert.equal(done.attempt, 1, 'not retried after its deadline');
    assert.deepEqual(
      done.errors.map((e) => e.code),
      ['DOCKET_EXPIRY_DEADLINE_EXCEEDED'],
    );
    assert.match(done.errors[0]!.message, /was still running at its deadline/);
    assert.ok(expiryOf(done)!.deadline!.getTime() === expiryOf(done)!.startBy.getTime(), 'a deadline is also the time to start by');
  });

  test('a deadline with a per-attempt time limit: attempts time out and retry until the deadline; none starts after it', async () => {
    const slow = defineJob(
      { name: 'expiry.slow', queue: 'expiry-combined', maxAttempts: 50, limits: { timeoutMs: 250 }, retry: { backoff: 'fixed', delayMs: 0 } },
      async (_: void, ctx) => {
        await ctx.app!.sql`INSERT INTO runs (job_id, attempt, worker) VALUES (${ctx.job.id}, ${ctx.job.attempt}, ${ctx.workerId})`;
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        throw ctx.signal.reason;
      },
    );
    await h.worker({ jobs: [slow], queues: { 'expiry-combined': {} } });
    const ref = await h.app.push(slow.invocation().withDeadlineIn(1200));
    const done = await h.app.waitForJob(ref, { timeoutMs: 30_000 });
    const deadline = expiryOf(done)!.deadline!;
    // The last attempt either ran into the deadline (failed), or its retry fell after it (expired).
    const last = done.errors.at(-1)!.code;
    assert.ok(
      (done.state === 'failed' && last === 'DOCKET_EXPIRY_DEADLINE_EXCEEDED') || (done.state === 'cancelled' && last === 'DOCKET_EXPIRY_EXPIRED'),
      `${done.state} ${last}`,
    );
    assert.ok(done.attempt >= 2, `time limits were retried (${done.attempt} attempts)`);
    assert.ok(
      done.errors.slice(0, done.attempt - 1).every((e) => e.code === 'DOCKET_LIMIT_EXCEEDED'),
      JSON.stringify(done.errors.map((e) => e.code)),
    );
    const starts = await h.db.sql`SELECT at FROM runs WHERE job_id = ${ref.id}`;
    assert.ok(
      starts.every((r) => (r.at as Date) < deadline),
      'no attempt started after the deadline',
    );
    assert.ok(done.finishedAt!.getTime() < deadline.getTime() + 5000);
  });

  test('a job that could never start is refused at push; a re-run goes without the original’s times', async () => {
    await assert.rejects(
      h.app.push(job.invocation().withExpiresAt(new Date(Date.now() - 1000))),
      refusedPush('DOCKET_INVALID_JOB_OPTION', /could never start/),
    );
    await assert.rejects(h.app.push(job.withDelay(5000).withExpiresIn(1000)), refusedPush('DOCKET_INVALID_JOB_OPTION', /could never start/));
    await assert.rejects(
      h.app.push(job.withScheduledAt(new Date(Date.now() + 60_000)).withDeadline(new Date(Date.now() + 30_000))),
      refusedPush('DOCKET_INVALID_JOB_OPTION'),
    );
    await h.worker({ jobs: [job], queues: { 'expiry-builders': {} } });
    const first = await h.app.waitForJob(await h.app.push(job.invocation().withExpiresIn(60_000)), { timeoutMs: 10_000 });
    assert.equal(first.state, 'succeeded');
    assert.ok(expiryOf(first) !== null);
    const again = await h.app.waitForJob(await h.app.rerunJob(first), { timeoutMs: 10_000 });
    assert.equal(again.state, 'succeeded');
    assert.equal(expiryOf(again), null, 'the copied meta was dropped');
    const [row] = await h.db.sql`SELECT expires_at FROM docket.jobs WHERE id = ${again.id}`;
    assert.equal(row!.expires_at, null);
  });
});
