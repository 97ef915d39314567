import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, defineJob, Worker } from '@docket/core';
import { createTestDatabase } from '@docket/testing';
import postgres from 'postgres';
import { deferred, type Harness, harness } from './helpers.js';

class PaymentDeclined extends Error {}

describe('worker', () => {
  let h: Harness;
  before(async () => (h = await harness()));
  after(() => h.close());

  test('runs higher priority first, then older first', async () => {
    const order: string[] = [];
    const job = defineJob({ name: 'order', queue: 'prio' }, async ({ tag }: { tag: string }) => void order.push(tag));
    const refs = await h.app.pushMany([
      job.withArgs({ tag: 'low-1' }),
      job.withArgs({ tag: 'high-1' }).withPriority(10),
      job.withArgs({ tag: 'low-2' }),
      job.withArgs({ tag: 'mid' }).withPriority(5),
      job.withArgs({ tag: 'high-2' }).withPriority(10),
    ]);
    const worker = await h.worker({ jobs: [job], queues: { prio: { concurrency: 1, prefetch: 0 } } });
    for (const ref of refs) await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    await worker.stop();
    assert.deepEqual(order, ['high-1', 'high-2', 'mid', 'low-1', 'low-2']);
  });

  test('never runs a job before its scheduledAt', async () => {
    const job = defineJob({ name: 'scheduled', queue: 'sched' }, async () => 'ran');
    const worker = await h.worker({ jobs: [job], queues: { sched: { pollIntervalMs: 50 } } });
    const at = new Date(Date.now() + 1500);
    const ref = await h.app.push(job.withScheduledAt(at));
    const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    assert.ok(done.startedAt!.getTime() >= at.getTime(), `started ${done.startedAt!.toISOString()} before ${at.toISOString()}`);
    await worker.stop();
  });

  test('retries with backoff, then fails keeping every attempt’s error', async () => {
    const job = defineJob(
      { name: 'always-fails', queue: 'retry', maxAttempts: 3, retry: { backoff: 'exponential', delayMs: 100, jitter: false } },
      async (_: void, ctx) => {
        throw new Error(`attempt ${ctx.job.attempt} failed`);
      },
    );
    const worker = await h.worker({ jobs: [job], queues: { retry: { pollIntervalMs: 20 } } });
    const ref = await h.app.push(job);
    const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    await worker.stop();
    assert.equal(done.state, 'failed');
    assert.equal(done.attempt, 3);
    assert.deepEqual(
      done.errors.map((e) => [e.attempt, e.message]),
      [
        [1, 'attempt 1 failed'],
        [2, 'attempt 2 failed'],
        [3, 'attempt 3 failed'],
      ],
    );
    assert.ok(done.errors.every((e) => typeof e.stack === 'string' && !Number.isNaN(Date.parse(e.at))));
    const gaps = done.errors.slice(1).map((e, i) => Date.parse(e.at) - Date.parse(done.errors[i]!.at));
    assert.ok(gaps[0]! >= 100 && gaps[1]! >= 200, `backoff grows: ${gaps}`);
  });

  test('noRetry errors fail at once; retryOn limits what is retried', async () => {
    const declined = defineJob({ name: 'declined', queue: 'noretry', maxAttempts: 5, retry: { noRetry: [PaymentDeclined] } }, async () => {
      throw new PaymentDeclined('card declined');
    });
    const onlyTimeouts = defineJob(
      { name: 'only-timeouts', queue: 'noretry', maxAttempts: 5, retry: { retryOn: (e) => (e as Error).message.includes('timeout') } },
      async () => {
        throw new Error('validation failed');
      },
    );
    const worker = await h.worker({ jobs: [declined, onlyTimeouts], queues: { noretry: {} } });
    const [a, b] = await h.app.pushMany([declined, onlyTimeouts]);
    const [da, db] = [await h.app.waitForJob(a!, { timeoutMs: 10_000 }), await h.app.waitForJob(b!, { timeoutMs: 10_000 })];
    await worker.stop();
    assert.equal(da.state, 'failed');
    assert.equal(da.attempt, 1);
    assert.equal(db.state, 'failed');
    assert.equal(db.attempt, 1);
  });

  test('stores the handler’s return value; an unstorable result fails the attempt', async () => {
    const good = defineJob({ name: 'good-result', queue: 'results' }, async () => ({ total: 3, items: ['a'] }));
    const bad = defineJob({ name: 'bad-result', queue: 'results' }, async (): Promise<unknown> => ({ big: 1n })); // past the JSON type check on purpose
    const worker = await h.worker({ jobs: [good, bad], queues: { results: {} } });
    const [g, b] = await h.app.pushMany([good, bad]);
    assert.deepEqual((await h.app.waitForJob(g!, { timeoutMs: 10_000 })).result, { total: 3, items: ['a'] });
    const failed = await h.app.waitForJob(b!, { timeoutMs: 10_000 });
    await worker.stop();
    assert.equal(failed.state, 'failed');
    assert.equal(failed.errors[0]!.code, 'DOCKET_RESULT_NOT_SERIALIZABLE');
  });

  test('a job no worker knows fails with a clear error and the worker keeps running', async () => {
    const known = defineJob({ name: 'known', queue: 'mixed' }, async () => 'fine');
    const unknown = defineJob({ name: 'unknown-here', queue: 'mixed' }, async () => 'never');
    const worker = await h.worker({ jobs: [known], queues: { mixed: {} } });
    const [u, k] = await h.app.pushMany([unknown, known]);
    const failed = await h.app.waitForJob(u!, { timeoutMs: 10_000 });
    assert.equal(failed.state, 'failed');
    assert.equal(failed.errors[0]!.code, 'DOCKET_UNKNOWN_JOB');
    assert.match(failed.errors[0]!.message, /No handler for job 'unknown-here'/);
    assert.equal((await h.app.waitForJob(k!, { timeoutMs: 10_000 })).state, 'succeeded');
    assert.equal(worker.running, true);
    await worker.stop();
  });

  test('a notification wakes an idle worker long before its 60 s poll', async () => {
    const job = defineJob({ name: 'wake', queue: 'wake' }, async () => Date.now());
    const worker = await h.worker({ jobs: [job], queues: { wake: { pollIntervalMs: 60_000 } } });
    // Let the first (empty) fetch finish so the worker is idle and waiting.
    await new Promise((r) => setTimeout(r, 200));
    const pushedAt = Date.now();
    const done = await h.app.waitForJob(await h.app.push(job), { timeoutMs: 5_000 });
    assert.equal(done.state, 'succeeded');
    assert.ok((done.result as number) - pushedAt < 1000, `started ${(done.result as number) - pushedAt} ms after the push`);
    await worker.stop();
  });

  test('a delayed job or a retry runs when due, not at the next 60 s poll', async () => {
    let attempts = 0;
    const later = defineJob({ name: 'later', queue: 'due' }, async () => Date.now());
    const flaky = defineJob(
      { name: 'flaky-due', queue: 'due', maxAttempts: 2, retry: { backoff: 'fixed', delayMs: 300, jitter: false } },
      async () => {
        if (++attempts === 1) throw new Error('first attempt fails');
        return Date.now();
      },
    );
    const scheduledBeforeStart = await h.app.push(later.withDelay(400));
    const worker = await h.worker({ jobs: [later, flaky], queues: { due: { pollIntervalMs: 60_000 } } });
    const t0 = Date.now();
    const [delayed, retried] = await h.app.pushMany([later.withDelay(300), flaky]);
    for (const ref of [scheduledBeforeStart, delayed!, retried!]) {
      const job = await h.app.waitForJob(ref, { timeoutMs: 5_000 });
      assert.equal(job.state, 'succeeded');
      assert.ok(job.startedAt!.getTime() >= job.scheduledAt.getTime(), 'never before its time');
    }
    assert.ok(Date.now() - t0 < 5_000, 'well before the poll interval');
    assert.equal(attempts, 2);
    await worker.stop();
  });

  test('cancel: a pending job never runs; a running job sees ctx.signal abort and ends cancelled', async () => {
    const started = deferred();
    let sawAbort = false;
    const slow = defineJob({ name: 'slow', queue: 'cancel' }, async (_: void, ctx) => {
      started.resolve();
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      sawAbort = ctx.signal.reason instanceof DocketError && ctx.signal.reason.code === 'DOCKET_JOB_CANCELLED';
    });
    const never = defineJob({ name: 'never', queue: 'cancel' }, async () => assert.fail('a cancelled job ran'));
    const pendingRef = await h.app.push(never.withDelay(500));
    const cancelledPending = await h.app.cancelJob(pendingRef);
    assert.equal(cancelledPending.state, 'cancelled');

    const worker = await h.worker({ jobs: [slow, never], queues: { cancel: { pollIntervalMs: 50 } } });
    const runningRef = await h.app.push(slow);
    await started.promise;
    await h.app.cancelJob(runningRef);
    const done = await h.app.waitForJob(runningRef, { timeoutMs: 5_000 });
    assert.equal(done.state, 'cancelled');
    assert.ok(sawAbort, 'the handler saw the abort with a cancellation reason');
    await new Promise((r) => setTimeout(r, 700)); // past the pending job's run time
    assert.equal((await h.app.getJob(pendingRef)).state, 'cancelled');
    await worker.stop();
  });

  test('pause and resume are seen by a running worker without restart', async () => {
    const job = defineJob({ name: 'pausable', queue: 'pausable' }, async () => 'ok');
    await h.app.declareQueue('pausable', { pollIntervalMs: 50 });
    await h.app.pauseQueue('pausable');
    const worker = await h.worker({ jobs: [job], queues: { pausable: {} } });
    const ref = await h.app.push(job);
    await assert.rejects(h.app.waitForJob(ref, { timeoutMs: 400 }), (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_WAIT_TIMEOUT');
    assert.equal((await h.app.getJob(ref)).state, 'pending');
    await h.app.resumeQueue('pausable');
    assert.equal((await h.app.waitForJob(ref, { timeoutMs: 5_000 })).state, 'succeeded');
    assert.equal((await h.app.listQueues()).find((q) => q.name === 'pausable')!.paused, false);
    await worker.stop();
  });

  test('waitForJob gives up with DOCKET_WAIT_TIMEOUT', async () => {
    const job = defineJob({ name: 'nobody-runs-me', queue: 'nobody' }, async () => 1);
    const ref = await h.app.push(job);
    const t0 = Date.now();
    await assert.rejects(
      h.app.waitForJob(ref, { timeoutMs: 200 }),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_WAIT_TIMEOUT' && /pending/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 5000);
  });

  test('atomic job: its writes commit with success and roll back with a failed attempt', async () => {
    await h.db.sql`CREATE TABLE ledger (id serial PRIMARY KEY, note text NOT NULL)`;
    const write = defineJob({ name: 'atomic-write', queue: 'atomic', atomic: true }, async ({ note, fail }: { note: string; fail: boolean }, ctx) => {
      await ctx.sql!`INSERT INTO ledger (note) VALUES (${note})`;
      if (fail) throw new Error('after writing');
      return 'written';
    });
    const worker = await h.worker({ jobs: [write], queues: { atomic: {} } });
    const ok = await h.app.waitForJob(await h.app.push(write.withArgs({ note: 'kept', fail: false })), { timeoutMs: 10_000 });
    const bad = await h.app.waitForJob(await h.app.push(write.withArgs({ note: 'rolled back', fail: true })), { timeoutMs: 10_000 });
    await worker.stop();
    assert.equal(ok.state, 'succeeded');
    assert.equal(bad.state, 'failed');
    assert.equal(bad.errors[0]!.message, 'after writing');
    const notes = await h.db.sql`SELECT note FROM ledger ORDER BY id`;
    assert.deepEqual(
      notes.map((n) => n.note),
      ['kept'],
    );
  });

  test('graceful stop lets running jobs finish; none is left running', async () => {
    const started = deferred();
    const job = defineJob({ name: 'finishes', queue: 'graceful' }, async () => {
      started.resolve();
      await new Promise((r) => setTimeout(r, 300));
      return 'finished';
    });
    const worker = await h.worker({ jobs: [job], queues: { graceful: {} } });
    const ref = await h.app.push(job);
    await started.promise;
    await worker.stop({ timeoutMs: 5_000 });
    const done = await h.app.getJob(ref);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.result, 'finished');
  });

  test('stop past its timeout aborts the job and gives it back without spending the attempt', async () => {
    const started = deferred();
    const stubborn = defineJob({ name: 'stubborn', queue: 'stubborn', maxAttempts: 1 }, async (_: void, ctx) => {
      started.resolve();
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      throw ctx.signal.reason;
    });
    const worker = new Worker(h.app, { jobs: [stubborn], queues: { stubborn: {} } });
    await worker.start();
    const ref = await h.app.push(stubborn);
    await started.promise;
    await worker.stop({ timeoutMs: 100 });
    const job = await h.app.getJob(ref);
    assert.equal(job.state, 'pending');
    assert.equal(job.attempt, 0, 'the interrupted attempt is not spent');
    assert.equal(job.errors[0]!.code, 'DOCKET_WORKER_SHUTDOWN');
    const [{ n }] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE state = 'running'`;
    assert.equal(n, 0);
    const [{ w }] = await h.db.sql`SELECT count(*)::int AS w FROM docket.workers WHERE id = ${worker.id}`;
    assert.equal(w, 0, 'the heartbeat row is removed');
    await h.app.cancelJob(ref);
  });

  test('worker options are validated with suggestions', () => {
    assert.throws(
      () => new Worker(h.app, { jobs: [], queues: { default: { concurency: 3 } } } as never),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_INVALID_OPTION' && /did you mean `concurrency`/.test(e.message),
    );
    assert.throws(
      () => new Worker(h.app, { jobs: [], queues: { default: {} }, claimCommit: 'later' } as never),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_INVALID_OPTION' && /claimCommit/.test(e.message) && /'async'/.test(e.message),
    );
  });
});

for (const claimCommit of ['async', 'sync'] as const) {
  test(`claimCommit '${claimCommit}': jobs run, and the session's synchronous_commit is left as it was`, async () => {
    const db = await createTestDatabase();
    // One connection: the claim runs on the session inspected afterwards. The session starts with
    // synchronous_commit on (test servers run with it off), so a leaked 'off' would show.
    const sql = postgres(db.url, { max: 1, onnotice: () => {}, connection: { synchronous_commit: 'on' } });
    const app = new Docket({ connection: sql, logger: false, listen: false });
    const ran = defineJob({ name: 'ran', queue: 'claims' }, async (_args: object) => 'ok');
    const worker = new Worker(app, { jobs: [ran], queues: { claims: { pollIntervalMs: 20 } }, claimCommit });
    try {
      const [before] = await sql<{ synchronous_commit: string }[]>`SHOW synchronous_commit`;
      assert.equal(before!.synchronous_commit, 'on');
      await worker.start();
      const ref = await app.push(ran.withArgs({}));
      assert.equal((await app.waitForJob(ref, { timeoutMs: 10_000 })).result, 'ok');
      const [after] = await sql<{ synchronous_commit: string }[]>`SHOW synchronous_commit`;
      assert.equal(after!.synchronous_commit, before!.synchronous_commit, 'the claim changed the setting for its own transaction only');
    } finally {
      await worker.stop();
      await app.close();
      await sql.end();
      await db.drop();
    }
  });
}

test('a worker refuses to start while migrations are pending', async () => {
  const db = await createTestDatabase({ template: false });
  const app = new Docket({ connection: db.url, logger: false });
  try {
    const worker = new Worker(app, { jobs: [], queues: { default: {} } });
    await assert.rejects(
      worker.start(),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_MIGRATIONS_PENDING' && /app\.migrate\(\)/.test(e.message),
    );
  } finally {
    await app.close();
    await db.drop();
  }
});

test('a worker whose jobs include a job of a queue it does not serve starts with a warning naming the job and the queue', async () => {
  const db = await createTestDatabase();
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, warn: (m: string) => void warnings.push(m), error() {} };
  const app = new Docket({ connection: db.url, logger });
  try {
    const served = defineJob({ name: 'served', queue: 'default' }, async () => 1);
    const emails = defineJob({ name: 'emails.send', queue: 'emails' }, async () => 1);
    const worker = new Worker(app, { jobs: [served, emails], queues: { default: {} }, handleSignals: false });
    await worker.start();
    await worker.stop();
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /job 'emails\.send' is on queue 'emails', which this worker does not serve \(it serves 'default'\)/);
    assert.match(warnings[0]!, /Add the queue to `queues`, or drop the job from `jobs`\./);

    warnings.length = 0;
    const both = new Worker(app, { jobs: [served, emails], queues: { default: {}, emails: {} }, handleSignals: false });
    await both.start();
    await both.stop();
    assert.deepEqual(warnings, [], 'no warning when every job’s queue is served');
  } finally {
    await app.close();
    await db.drop();
  }
});
