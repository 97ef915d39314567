import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type ClaimContext, type ClaimedJob, DocketError, type DocketPlugin, defineJob, type Logger } from '@docket/core';
import { deferred, type Harness, harness } from './helpers.js';

/**
 * A plugin whose claim taps do what each test asks: `shape` is read by every claim of the queues
 * in `shapedQueues`. Jobs carry a `tenant` column (set with `.with('test.tenant', …)`).
 */
const shapedQueues = new Set<string>();
let shape: ((claim: ClaimContext) => Promise<void> | void) | null = null;
let recordClaimed: ((claimed: ClaimedJob[], claim: ClaimContext) => Promise<void> | void) | null = null;
const beforeCalls: string[] = [];

const claimPlugin: DocketPlugin = {
  name: 'test-claims',
  migrations: [
    {
      version: 1,
      name: 'tenant column',
      up: ({ schema }) => `
        ALTER TABLE ${schema}.jobs ADD COLUMN tenant text;
        CREATE INDEX jobs_tenant_idx ON ${schema}.jobs (queue, tenant) WHERE state = 'pending';
        CREATE TABLE ${schema}.test_claims (job_id bigint, tenant text);`,
    },
  ],
  apply(app) {
    app.defineJobColumn({ name: 'tenant', type: 'text' });
    app.defineJobOption('test.tenant');
    app.hooks.beforePush.tapPromise('test-claims', async (rows) => {
      for (const row of rows) row.columns.tenant = (row.extensions['test.tenant'] as string | undefined) ?? null;
      return rows;
    });
    const wants = (queue: string) => shapedQueues.has(queue);
    app.hooks.beforeClaim.tapPromise({ name: 'test-claims', wants }, async (claim) => {
      beforeCalls.push(claim.queue);
      await shape?.(claim);
    });
    app.hooks.afterClaim.tapPromise({ name: 'test-claims', wants }, async (claimed, claim) => {
      await recordClaimed?.(claimed, claim);
    });
  },
};

const errors: unknown[] = [];
const logger: Logger = { debug() {}, info() {}, warn() {}, error: (_message, fields) => void errors.push((fields as { error?: unknown })?.error) };

describe('claim hooks', () => {
  let h: Harness;
  before(async () => {
    h = await harness({ plugins: [claimPlugin], logger });
  });
  after(() => h.close());
  beforeEach(() => {
    shapedQueues.clear();
    shape = null;
    recordClaimed = null;
    beforeCalls.length = 0;
    errors.length = 0;
  });

  test('a queue no tap wants is claimed by the plain statement: the taps are never called', async () => {
    const job = defineJob({ name: 'plain', queue: 'plain' }, async () => 'ok');
    shapedQueues.add('someone-else');
    await h.worker({ jobs: [job], queues: { plain: { concurrency: 2 } } });
    const refs = await h.app.pushMany([job, job, job]);
    for (const ref of refs) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 10_000 })).state, 'succeeded');
    assert.deepEqual(beforeCalls, []);
  });

  test('exclude leaves out jobs whose column holds an excluded value (NULL never excluded)', async () => {
    const job = defineJob({ name: 'excl', queue: 'excl' }, async () => 'ok');
    shapedQueues.add('excl');
    shape = (claim) => claim.exclude('tenant', ['blocked']);
    const blocked = await h.app.push(job.with('test.tenant', 'blocked'));
    const open = await h.app.push(job.with('test.tenant', 'open'));
    const none = await h.app.push(job);
    await h.worker({ jobs: [job], queues: { excl: { concurrency: 3 } } });
    assert.equal((await h.app.waitForJob(open, { timeoutMs: 10_000 })).state, 'succeeded');
    assert.equal((await h.app.waitForJob(none, { timeoutMs: 10_000 })).state, 'succeeded');
    assert.ok(beforeCalls.includes('excl'));
    assert.equal((await h.app.getJob(blocked)).state, 'pending');
    // Lift the exclusion: the runner was cut short, a wake-up lets it claim the rest.
    shape = null;
    await h.app.wake(['excl']);
    assert.equal((await h.app.waitForJob(blocked, { timeoutMs: 10_000 })).state, 'succeeded');
  });

  test('perKey: one claim takes a few jobs of each key, so a backlog does not delay another key’s first job', async () => {
    const started: string[] = [];
    const gate = deferred();
    const job = defineJob({ name: 'fair', queue: 'fair' }, async (args: { tenant: string }) => {
      started.push(args.tenant);
      await gate.promise;
    });
    shapedQueues.add('fair');
    shape = (claim) => claim.perKey('tenant', 1);
    // 30 jobs of a big tenant pushed first, then one each of two small tenants and one without a key.
    await h.app.pushMany(Array.from({ length: 30 }, () => job.withArgs({ tenant: 'big' }).with('test.tenant', 'big')));
    await h.app.pushMany([
      job.withArgs({ tenant: 'small-1' }).with('test.tenant', 'small-1'),
      job.withArgs({ tenant: 'small-2' }).with('test.tenant', 'small-2'),
    ]);
    await h.app.push(job.withArgs({ tenant: 'none' }));
    const claimed: string[] = [];
    recordClaimed = (jobs) => void claimed.push(...jobs.map((c) => String(c.columns.tenant)));
    // Four slots, no prefetch: the first claim asks for four jobs.
    const worker = await h.worker({ jobs: [job], queues: { fair: { concurrency: 4, prefetch: 0 } } });
    while (started.length < 4) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual([...started].sort(), ['big', 'none', 'small-1', 'small-2'], 'each key’s first job, not the big tenant’s backlog');
    assert.deepEqual([...claimed].sort(), ['big', 'null', 'small-1', 'small-2'], 'afterClaim saw the claimed rows with their columns');
    gate.resolve();
    await worker.stop();
  });

  test('perKey budgets: a key takes at most what it has left, a spent key takes no lane', async () => {
    const gate = deferred();
    const job = defineJob({ name: 'budgeted', queue: 'budgeted' }, async () => {
      await gate.promise;
    });
    shapedQueues.add('budgeted');
    // As a per-key limit of 3 would: 'a' has two running (1 left), 'b' three (none left), 'c' none.
    shape = (claim) =>
      claim.perKey(
        'tenant',
        3,
        new Map([
          ['a', 1],
          ['b', 0],
        ]),
      );
    for (const tenant of ['a', 'b', 'c']) await h.app.pushMany(Array.from({ length: 5 }, () => job.with('test.tenant', tenant)));
    const claimed: string[] = [];
    recordClaimed = (jobs) => void claimed.push(...jobs.map((c) => String(c.columns.tenant)));
    const worker = await h.worker({ jobs: [job], queues: { budgeted: { concurrency: 10, prefetch: 0, pollIntervalMs: 60_000 } } });
    while (claimed.length < 4) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual([...claimed].sort(), ['a', 'c', 'c', 'c'], 'a: its budget of 1; b: left out; c: max 3');
    // A budget larger than max is held to max; two calls keep the smaller budget.
    claimed.length = 0;
    shape = (claim) => {
      claim.perKey('tenant', 2, [['b', 5]]);
      claim.perKey('tenant', 2, [['a', 1]]);
      claim.perKey('tenant', 2, [['a', 0]]);
    };
    await h.app.wake(['budgeted']);
    while (claimed.length < 4) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual([...claimed].sort(), ['b', 'b', 'c', 'c']);
    gate.resolve();
    await worker.stop();
  });

  test('perKey: a key whose pending jobs are all scheduled later takes no lane from a key that can run', async () => {
    const job = defineJob({ name: 'later-first', queue: 'later-first' }, async () => 'ok');
    shapedQueues.add('later-first');
    shape = (claim) => claim.perKey('tenant', 1);
    // 'a-later' sorts first and has only a job due in an hour; a claim of one job must still find 'b-now'.
    await h.app.push(job.with('test.tenant', 'a-later').withDelay(3_600_000));
    const now = await h.app.push(job.with('test.tenant', 'b-now'));
    await h.worker({ jobs: [job], queues: { 'later-first': { concurrency: 1, prefetch: 0, pollIntervalMs: 60_000 } } });
    assert.equal((await h.app.waitForJob(now, { timeoutMs: 10_000 })).state, 'succeeded');
  });

  test('afterClaim writes in the claim’s transaction: a throw there rolls the claim back', async () => {
    const job = defineJob({ name: 'audited', queue: 'audited' }, async () => 'ok');
    shapedQueues.add('audited');
    let fail = true;
    recordClaimed = async (claimed, claim) => {
      for (const c of claimed)
        await claim.sql.unsafe(`INSERT INTO ${h.app.schema}.test_claims VALUES ($1, $2)`, [c.job.id, c.columns.tenant as string]);
      if (fail) {
        fail = false;
        throw new Error('ledger full');
      }
    };
    const ref = await h.app.push(job.with('test.tenant', 't1'));
    await h.worker({ jobs: [job], queues: { audited: { concurrency: 1, pollIntervalMs: 100 } } });
    const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    assert.equal(done.attempt, 1, 'the rolled-back claim spent no attempt');
    const rows = await h.db.sql`SELECT job_id::text AS id, tenant FROM docket.test_claims WHERE job_id = ${ref.id}`;
    assert.deepEqual(
      rows.map((r) => ({ ...r })),
      [{ id: ref.id, tenant: 't1' }],
      'only the committed claim’s write remains',
    );
    assert.ok(errors.some((e) => e instanceof DocketError && e.code === 'DOCKET_PLUGIN_FAILED' && /ledger full/.test(e.message)));
  });

  test('limitTo(0) with retryAt: the runner claims again at that time, not at the next poll', async () => {
    const job = defineJob({ name: 'windowed', queue: 'windowed' }, async () => 'ok');
    shapedQueues.add('windowed');
    let opensAt = Date.now() + 300;
    shape = (claim) => {
      if (Date.now() < opensAt) {
        claim.limitTo(0);
        claim.retryAt(new Date(opensAt));
      }
    };
    const ref = await h.app.push(job);
    await h.worker({ jobs: [job], queues: { windowed: { concurrency: 1, pollIntervalMs: 60_000 } } });
    const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    assert.ok(done.startedAt!.getTime() >= opensAt - 50, 'it did not start before the window opened');
    opensAt = 0;
  });

  test('a wake-up that arrives while a claim is in flight is not lost when the claim comes back short', async () => {
    const job = defineJob({ name: 'racing', queue: 'racing' }, async () => 'ok');
    shapedQueues.add('racing');
    let late: Promise<{ id: string }> | null = null;
    recordClaimed = null;
    shape = (claim) => {
      if (late) return;
      // During the first claim (which takes nothing): a job is pushed and committed by another
      // connection, and its p: notification reaches this worker before the claim returns.
      claim.limitTo(0);
      late = claim.app.push(job);
      return late.then(() => new Promise((resolve) => setTimeout(resolve, 200)));
    };
    // Polls once a minute: only the wake-up can start the job within the test's time.
    await h.worker({ jobs: [job], queues: { racing: { concurrency: 1, pollIntervalMs: 60_000 } } });
    while (!late) await new Promise((resolve) => setImmediate(resolve));
    assert.equal((await h.app.waitForJob(await late, { timeoutMs: 10_000 })).state, 'succeeded');
  });

  test('capacity freed by a plugin ending a running job (app.settleJobs) wakes the runners a claim cut short', async () => {
    // A cap of one running job, counted from the rows; the worker polls once a minute, so only a
    // wake-up can start the second job within the test's time.
    shapedQueues.add('capped');
    shape = async (claim) => {
      const [{ running }] = await claim.sql<[{ running: number }]>`
        SELECT count(*)::int AS running FROM docket.jobs WHERE queue = 'capped' AND state = 'running'`;
      claim.limitTo(1 - running);
    };
    const release = deferred<void>();
    const started = deferred<void>();
    const job = defineJob({ name: 'held', queue: 'capped' }, async (args: { n: number }) => {
      if (args.n === 1) {
        started.resolve();
        await release.promise;
      }
      return args.n;
    });
    const first = await h.app.push(job.withArgs({ n: 1 }));
    await h.worker({ jobs: [job], queues: { capped: { concurrency: 2, pollIntervalMs: 60_000 } } });
    await started.promise;
    const second = await h.app.push(job.withArgs({ n: 2 }));
    // As a recovery plugin failing a poison job would: its own fenced statement, then settle.
    await h.app.settleJobs(async (tx) => {
      const rows = await tx<{ id: string }[]>`
        UPDATE docket.jobs SET state = 'cancelled', finished_at = now()
        WHERE id = ${first.id} AND state = 'running' RETURNING id::text AS id`;
      return rows.map((r) => r.id);
    });
    assert.equal((await h.app.waitForJob(second, { timeoutMs: 10_000 })).state, 'succeeded');
    release.resolve();
  });

  test('a tap that names an undeclared column or a bad value fails the claim with a coded error, and nothing is lost', async () => {
    const job = defineJob({ name: 'misused', queue: 'misused' }, async () => 'ok');
    shapedQueues.add('misused');
    let misuse: ((claim: ClaimContext) => void) | null = (claim) => claim.exclude('no_such_column', ['x']);
    shape = (claim) => misuse?.(claim);
    const ref = await h.app.push(job);
    await h.worker({ jobs: [job], queues: { misused: { concurrency: 1, pollIntervalMs: 50 } } });
    while (errors.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const failure = errors[0] as DocketError;
    assert.equal(failure.code, 'DOCKET_PLUGIN_FAILED');
    assert.equal((failure.cause as DocketError).code, 'DOCKET_INVALID_OPTION');
    assert.match(failure.message, /defineJobColumn/);
    assert.equal((await h.app.getJob(ref)).state, 'pending');
    for (const bad of [
      (claim: ClaimContext) => claim.perKey('tenant', 0),
      (claim: ClaimContext) => claim.perKey('tenant', 2, [['t', -1]]),
      (claim: ClaimContext) => claim.perKey('tenant', 2, [[null, 1]]),
      (claim: ClaimContext) => claim.perKey('tenant', 2, 7 as unknown as Map<string, number>),
    ]) {
      misuse = bad;
      errors.length = 0;
      while (errors.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(((errors[0] as DocketError).cause as DocketError).code, 'DOCKET_INVALID_OPTION');
      assert.equal((await h.app.getJob(ref)).state, 'pending');
    }
    misuse = null;
    assert.equal((await h.app.waitForJob(ref, { timeoutMs: 10_000 })).state, 'succeeded');
  });

  test('a worker stopped while its claim is under way gives the claimed jobs back before stop() resolves', async () => {
    const job = defineJob({ name: 'stop-mid-claim', queue: 'stop-mid-claim' }, async () => 'ran');
    const refs = await h.app.pushMany([job, job, job]);
    const inClaim = deferred();
    const gate = deferred();
    shapedQueues.add('stop-mid-claim');
    shape = async () => {
      inClaim.resolve();
      await gate.promise;
    };
    let claimed = 0;
    recordClaimed = (jobs) => void (claimed += jobs.length);
    const worker = await h.worker({ jobs: [job], queues: { 'stop-mid-claim': { concurrency: 3 } } });
    await inClaim.promise;
    // The claim goes on once stop() is well under way (everything else it waits for is done by
    // then): it takes the three jobs for a worker that is stopping.
    setTimeout(() => gate.resolve(), 300);
    await worker.stop();
    assert.equal(claimed, 3, 'stop() waited for the claim under way');
    const states = await Promise.all(refs.map(async (ref) => (await h.app.getJob(ref)).state));
    assert.deepEqual(states, ['pending', 'pending', 'pending'], 'given back: none left running under the stopped worker');
  });
});

describe('pausing a queue', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.close());

  test('stops new starts at once on a running worker, buffered jobs included; resume starts them', async () => {
    const gate = deferred();
    const started: string[] = [];
    const job = defineJob({ name: 'paused-work', queue: 'pause-me' }, async (_: { n: number }, ctx) => {
      started.push(ctx.job.id);
      await gate.promise;
    });
    const refs = await h.app.pushMany(Array.from({ length: 6 }, (_, n) => job.withArgs({ n })));
    // Two slots and two prefetched: two run, two wait in the worker's buffer, two stay pending.
    await h.worker({ jobs: [job], queues: { 'pause-me': { concurrency: 2, prefetch: 2, pollIntervalMs: 60_000 } } });
    while (started.length < 2) await new Promise((resolve) => setImmediate(resolve));
    await h.app.pauseQueue('pause-me');
    // The buffered jobs go back to pending (their attempt not spent) once the pause is seen.
    for (;;) {
      const [row] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE queue = 'pause-me' AND state = 'running'`;
      if (row!.n === 2) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    gate.resolve();
    for (const id of started) assert.equal((await h.app.waitForJob(id, { timeoutMs: 10_000 })).state, 'succeeded');
    const states = await h.db.sql`SELECT state, attempt FROM docket.jobs WHERE queue = 'pause-me' AND NOT (id::text = ANY(${started}))`;
    assert.deepEqual(
      states.map((r) => `${r.state}/${r.attempt}`),
      Array(4).fill('pending/0'),
      'nothing else started while paused',
    );
    await h.app.resumeQueue('pause-me');
    for (const ref of refs) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 10_000 })).state, 'succeeded');
  });
});
