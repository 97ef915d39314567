import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, type DocketPlugin, defineJob, type JobRecord, type JobState, RERUN_OF_META_KEY } from '@docket/core';
import { deferred, type Harness, harness } from './helpers.js';

function assertCode(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof DocketError, `expected a DocketError, got ${error}`);
    assert.equal(error.code, code);
    assert.ok(error.message.length > 20, 'the message says what to do');
    return true;
  };
}

const noop = defineJob({ name: 'ops.noop', queue: 'ops-a' }, async () => 'ok');
const other = defineJob({ name: 'ops.other', queue: 'ops-b' }, async () => 'ok');

/** Sets a job's state and creation time as a run of the queue would leave them (the history these calls read). */
async function age(h: Harness, id: string, state: JobState, createdAt: Date): Promise<void> {
  const finished = state === 'succeeded' || state === 'failed' || state === 'cancelled';
  await h.db.sql`UPDATE docket.jobs SET state = ${state}, created_at = ${createdAt}, attempt = ${state === 'pending' ? 0 : 1},
    finished_at = ${finished ? createdAt : null} WHERE id = ${id}`;
}

/** Every page of a listing, following nextCursor; `between` runs before each next page. */
async function allPages(
  app: Docket,
  options: Parameters<Docket['listJobs']>[0],
  between: () => Promise<void> = async () => {},
): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await app.listJobs({ ...options, cursor });
    jobs.push(...page.jobs);
    if (page.nextCursor === null) return jobs;
    assert.equal(page.jobs.length, options?.limit ?? 50, 'only the last page is short');
    cursor = page.nextCursor;
    await between();
  }
  throw new Error('listing did not end');
}

/** The listing order: creation order is id order (ids are drawn from a sequence at insert). */
function sortedByCreation(jobs: JobRecord[], order: 'newest' | 'oldest'): JobRecord[] {
  const sign = order === 'newest' ? -1 : 1;
  return [...jobs].sort((a, b) => sign * (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0));
}

describe('operations: listJobs', () => {
  let h: Harness;
  // 40 jobs: two queues, two names, every state, creation times one minute apart.
  const start = new Date('2030-01-01T00:00:00Z');
  const states: JobState[] = ['pending', 'waiting', 'succeeded', 'failed', 'cancelled', 'running'];
  let seeded: JobRecord[] = [];

  before(async () => {
    h = await harness();
    const refs = await h.app.pushMany(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? noop : other).withMeta({ i })));
    for (const [i, ref] of refs.entries()) await age(h, ref.id, states[i % states.length]!, new Date(start.getTime() + i * 60_000));
    seeded = await Promise.all(refs.map((r) => h.app.getJob(r)));
  });
  after(() => h.close());

  test('every filter narrows, in both orders, and pages cover exactly the matching jobs', async () => {
    const cases: Array<[string, Parameters<Docket['listJobs']>[0], (j: JobRecord) => boolean]> = [
      ['no filter', {}, () => true],
      ['queue', { queue: 'ops-a' }, (j) => j.queue === 'ops-a'],
      ['state', { state: 'failed' }, (j) => j.state === 'failed'],
      ['states', { state: ['pending', 'succeeded'] }, (j) => j.state === 'pending' || j.state === 'succeeded'],
      ['name', { name: 'ops.other' }, (j) => j.name === 'ops.other'],
      ['queue and name', { queue: ['ops-a', 'ops-b'], name: 'ops.noop' }, (j) => j.name === 'ops.noop'],
      [
        'queue and state',
        { queue: 'ops-b', state: ['waiting', 'cancelled'] },
        (j) => j.queue === 'ops-b' && (j.state === 'waiting' || j.state === 'cancelled'),
      ],
      [
        'time range',
        { createdSince: new Date(start.getTime() + 10 * 60_000), createdBefore: new Date(start.getTime() + 20 * 60_000) },
        (j) => j.createdAt.getTime() >= start.getTime() + 10 * 60_000 && j.createdAt.getTime() < start.getTime() + 20 * 60_000,
      ],
      ['since only', { createdSince: new Date(start.getTime() + 25 * 60_000) }, (j) => j.createdAt.getTime() >= start.getTime() + 25 * 60_000],
      ['before only', { createdBefore: new Date(start.getTime() + 7 * 60_000 + 1) }, (j) => j.createdAt.getTime() <= start.getTime() + 7 * 60_000],
      [
        'all together',
        { queue: 'ops-a', name: 'ops.noop', state: 'succeeded', createdSince: new Date(start.getTime() + 5 * 60_000) },
        (j) => j.queue === 'ops-a' && j.state === 'succeeded' && j.createdAt.getTime() >= start.getTime() + 5 * 60_000,
      ],
      // Without succeeded, each state is read from its own index (attention, fetch, running) and merged.
      ['states by their indexes', { state: ['pending', 'running', 'waiting', 'failed', 'cancelled'] }, (j) => j.state !== 'succeeded'],
      [
        'attention state and name',
        { state: ['failed', 'cancelled'], name: 'ops.noop' },
        (j) => (j.state === 'failed' || j.state === 'cancelled') && j.name === 'ops.noop',
      ],
      [
        'running and time range',
        {
          state: ['running', 'waiting'],
          createdSince: new Date(start.getTime() + 12 * 60_000),
          createdBefore: new Date(start.getTime() + 33 * 60_000),
        },
        (j) =>
          (j.state === 'running' || j.state === 'waiting') &&
          j.createdAt.getTime() >= start.getTime() + 12 * 60_000 &&
          j.createdAt.getTime() < start.getTime() + 33 * 60_000,
      ],
    ];
    for (const [label, filter, matches] of cases) {
      const expected = seeded.filter(matches);
      assert.ok(expected.length > 0, `${label}: the seed has matching jobs`);
      assert.ok(expected.length < seeded.length || label === 'no filter', `${label}: the seed has jobs that do not match`);
      for (const order of ['newest', 'oldest'] as const) {
        const listed = await allPages(h.app, { ...filter, order, limit: 3 });
        assert.deepEqual(
          listed.map((j) => j.id),
          sortedByCreation(expected, order).map((j) => j.id),
          `${label}, ${order} first`,
        );
      }
    }
  });

  test('newest first is the default; a page carries full job records', async () => {
    const page = await h.app.listJobs({ limit: 2 });
    assert.deepEqual(
      page.jobs.map((j) => j.id),
      sortedByCreation(seeded, 'newest')
        .slice(0, 2)
        .map((j) => j.id),
    );
    assert.deepEqual(
      page.jobs[0],
      seeded.find((j) => j.id === page.jobs[0]!.id),
    );
    assert.equal(typeof page.nextCursor, 'string');
    const none = await h.app.listJobs({ queue: 'nobody-pushes-here' });
    assert.deepEqual(none, { jobs: [], nextCursor: null });
    const before = await h.app.listJobs({ createdBefore: new Date(start.getTime() - 1) });
    assert.deepEqual(before, { jobs: [], nextCursor: null }, 'a time range with no job');
  });
});

describe('operations: listJobs over a time range whose ids and creation times disagree', () => {
  let h: Harness;
  const start = new Date('2031-06-01T00:00:00Z');
  let seeded: JobRecord[] = [];

  before(async () => {
    h = await harness();
    // 300 jobs whose creation times run with their ids except that every tenth is an hour earlier
    // than its neighbours (a push whose transaction began long before it drew its id): bounds
    // found by bisection on ids would leave those out or cut the range short.
    const refs = await h.app.pushMany(Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? other : noop).withMeta({ i })));
    const states: JobState[] = ['succeeded', 'succeeded', 'failed', 'succeeded', 'cancelled', 'pending'];
    for (const [i, ref] of refs.entries()) {
      await age(h, ref.id, states[i % states.length]!, new Date(start.getTime() + i * 60_000 - (i % 10 === 5 ? 3_600_000 : 0)));
    }
    seeded = await Promise.all(refs.map((r) => h.app.getJob(r)));
  });
  after(() => h.close());

  test('every job created in the range is listed, and only those, with and without statistics', async () => {
    const at = (minutes: number) => new Date(start.getTime() + minutes * 60_000);
    // Narrow ranges (read through the BRIN index) and wide ones (by walking the primary key once
    // the statistics say they hold most jobs), open on either side.
    const ranges: Array<{ createdSince?: Date; createdBefore?: Date }> = [
      { createdSince: at(100), createdBefore: at(130) },
      { createdSince: at(3), createdBefore: at(280) },
      { createdSince: at(250) },
      { createdSince: at(-30) },
      { createdBefore: at(40) },
      { createdBefore: at(290) },
    ];
    const inRange = (j: JobRecord, r: (typeof ranges)[number]) =>
      (!r.createdSince || j.createdAt >= r.createdSince) && (!r.createdBefore || j.createdAt < r.createdBefore);
    for (const analysed of [false, true]) {
      if (analysed) await h.db.sql`ANALYZE docket.jobs`;
      for (const range of ranges) {
        for (const state of [undefined, ['failed', 'cancelled', 'pending'] as JobState[]]) {
          const expected = seeded.filter((j) => inRange(j, range) && (!state || state.includes(j.state)));
          assert.ok(
            seeded.some((j, i) => i % 10 === 5 && inRange(j, range) !== inRange(seeded[i - 1]!, range)),
            `${JSON.stringify(range)}: an out-of-order job is on the other side of the range's edge from the job before it`,
          );
          for (const order of ['newest', 'oldest'] as const) {
            const listed = await allPages(h.app, { ...range, state, order, limit: 20 });
            const label = `${JSON.stringify(range)} ${state ?? 'every state'} ${order}, ${analysed ? 'analysed' : 'no statistics'}`;
            assert.deepEqual(
              listed.map((j) => j.id),
              sortedByCreation(expected, order).map((j) => j.id),
              label,
            );
          }
        }
      }
    }
  });
});

describe('operations: paging while jobs arrive and change state', () => {
  let h: Harness;
  before(async () => (h = await harness()));
  after(() => h.close());

  test('no job is shown twice or skipped; jobs pushed meanwhile are not mixed into a newest-first listing', async () => {
    // One pushMany: 25 jobs with the same creation time; pages are cut by id alone.
    const first = await h.app.pushMany(Array.from({ length: 25 }, () => noop));
    const second = await h.app.pushMany(Array.from({ length: 25 }, () => other));
    const present = new Set([...first, ...second].map((r) => r.id));
    let round = 0;
    const listed = await allPages(h.app, { limit: 4 }, async () => {
      // A new job arrives, and an older one finishes (it leaves the fetch index; the listing reads it by primary key).
      await h.app.push(noop);
      const moving = [...present][round++ % present.size]!;
      await h.db.sql`UPDATE docket.jobs SET state = 'succeeded', finished_at = now() WHERE id = ${moving}`;
    });
    const ids = listed.map((j) => j.id);
    assert.equal(new Set(ids).size, ids.length, 'no duplicate');
    assert.deepEqual(new Set(ids), present, 'every job present at the start, and only those');

    const oldest = (await allPages(h.app, { order: 'oldest', limit: 6 }, async () => void (await h.app.push(other)))).map((j) => j.id);
    assert.equal(new Set(oldest).size, oldest.length, 'no duplicate, oldest first');
    for (const id of present) assert.ok(oldest.includes(id), `job ${id} is listed oldest first`);
  });

  test('with every filter and in both orders, jobs that matched throughout are listed once, and no other job but new ones oldest first', async () => {
    type Row = { id: string; queue: string; name: string; state: JobState; created_at: Date };
    const snapshot = async () =>
      new Map((await h.db.sql<Row[]>`SELECT id::text, queue, name, state, created_at FROM docket.jobs`).map((r) => [r.id, r]));
    const [{ now: seededBy }] = await h.db.sql<[{ now: Date }]>`SELECT now() - interval '1 minute' AS now`;
    type Filter = NonNullable<Parameters<Docket['listJobs']>[0]>;
    const list = <T>(v: T | readonly T[] | undefined): readonly T[] | null => (v === undefined ? null : Array.isArray(v) ? v : [v as T]);
    const matches = (r: Row, f: Filter) =>
      (!list(f.queue) || list(f.queue)!.includes(r.queue)) &&
      (!list(f.name) || list(f.name)!.includes(r.name)) &&
      (!list(f.state) || list(f.state)!.includes(r.state)) &&
      (!f.createdSince || r.created_at >= f.createdSince) &&
      (!f.createdBefore || r.created_at < f.createdBefore);
    const filters: Filter[] = [
      {},
      { queue: 'ops-b' },
      { name: 'ops.noop', state: ['pending', 'succeeded'] },
      // Read from the fetch and attention indexes: a job moving from pending to failed changes stream.
      { state: ['pending', 'failed'] },
      { queue: 'ops-a', state: ['pending', 'failed', 'cancelled'] },
      { createdSince: seededBy },
    ];
    for (const order of ['newest', 'oldest'] as const) {
      for (const filter of filters) {
        const seed = await h.app.pushMany(Array.from({ length: 20 }, (_, i) => (i % 3 === 0 ? other : noop)));
        // A closed range, fixed before the page walk: what it holds at the start is all it can hold.
        const [{ now }] = await h.db.sql<[{ now: Date }]>`SELECT now()`;
        const cases: Filter[] = [filter, ...(filter.createdSince ? [{ ...filter, createdBefore: new Date(now.getTime() + 1) }] : [])];
        for (const f of cases) {
          const start = await snapshot();
          let round = 0;
          const listed = await allPages(h.app, { ...f, order, limit: 10 }, async () => {
            // A new job arrives, and one of the seed leaves pending: for succeeded or failed.
            await h.app.push(round % 2 === 0 ? noop : other);
            const moving = seed[round % seed.length]!.id;
            await h.db.sql`UPDATE docket.jobs SET state = ${round++ % 2 === 0 ? 'failed' : 'succeeded'}, finished_at = now()
              WHERE id = ${moving} AND state = 'pending'`;
          });
          const end = await snapshot();
          const label = `${JSON.stringify(f)}, ${order} first`;
          const ids = listed.map((j) => j.id);
          assert.equal(new Set(ids).size, ids.length, `${label}: no duplicate`);
          for (const [id, r] of start) {
            if (matches(r, f) && matches(end.get(id)!, f)) assert.ok(ids.includes(id), `${label}: job ${id} matched throughout and is listed`);
          }
          for (const id of ids) {
            const was = start.get(id);
            if (was) assert.ok(matches(was, f) || matches(end.get(id)!, f), `${label}: job ${id} matched at some point`);
            else
              assert.ok(order === 'oldest' && !f.createdBefore && matches(end.get(id)!, f), `${label}: new job ${id} only at the end, oldest first`);
          }
          assert.ok(listed.length > 0 && round > 2, `${label}: several pages were read while jobs changed`);
        }
      }
    }
  });
});

describe('operations: countJobs', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
    // The estimate path must be reached only through ANALYZE in this test, not when autovacuum wakes.
    await h.db.sql`ALTER TABLE docket.jobs SET (autovacuum_enabled = false)`;
  });
  after(() => h.close());

  test('counts per queue and state: exact for unfinished states, and for finished ones up to exactLimit', async () => {
    const release = deferred();
    const started = deferred();
    let running = 0;
    const blocking = defineJob({ name: 'ops.blocking', queue: 'count-run' }, async () => {
      if (++running === 2) started.resolve();
      await release.promise;
    });
    await h.app.pushMany([blocking, blocking]);
    await h.worker({ jobs: [blocking], queues: { 'count-run': { concurrency: 2 } } });
    await started.promise;

    const pending = await h.app.pushMany(Array.from({ length: 7 }, () => noop));
    const finished = await h.app.pushMany(Array.from({ length: 12 }, () => other));
    for (const [i, ref] of finished.entries()) await age(h, ref.id, i < 3 ? 'waiting' : i < 10 ? 'succeeded' : 'failed', new Date());
    await age(h, pending[0]!.id, 'cancelled', new Date());

    const counts = await h.app.countJobs();
    assert.deepEqual(counts, [
      { queue: 'count-run', state: 'running', count: 2, exact: true },
      { queue: 'ops-a', state: 'pending', count: 6, exact: true },
      { queue: 'ops-a', state: 'cancelled', count: 1, exact: true },
      { queue: 'ops-b', state: 'waiting', count: 3, exact: true },
      { queue: 'ops-b', state: 'succeeded', count: 7, exact: true },
      { queue: 'ops-b', state: 'failed', count: 2, exact: true },
    ]);
    assert.deepEqual(await h.app.countJobs({ queue: 'ops-b', state: ['failed', 'pending'] }), [
      { queue: 'ops-b', state: 'failed', count: 2, exact: true },
    ]);
    assert.deepEqual(await h.app.countJobs({ state: 'running' }), [{ queue: 'count-run', state: 'running', count: 2, exact: true }]);
    release.resolve();
  });

  test('a finished group over exactLimit is estimated from the statistics once analysed, and counted before', async () => {
    const refs = await h.app.pushMany(Array.from({ length: 400 }, () => noop.withQueue('count-big')));
    await h.db.sql`UPDATE docket.jobs SET state = 'succeeded', finished_at = now() WHERE id = ANY(${refs.map((r) => r.id)}::bigint[])`;
    // No statistics yet: the group is counted in full.
    assert.deepEqual(await h.app.countJobs({ queue: 'count-big', exactLimit: 50 }), [
      { queue: 'count-big', state: 'succeeded', count: 400, exact: true },
    ]);
    await h.db.sql`ANALYZE docket.jobs`;
    const [estimated] = await h.app.countJobs({ queue: 'count-big', exactLimit: 50 });
    assert.equal(estimated!.exact, false);
    // ANALYZE read every row of this small table: the estimate is the count, up to the scaling by pages.
    assert.ok(Math.abs(estimated!.count - 400) <= 40, `estimate ${estimated!.count} is near 400`);
    assert.deepEqual(await h.app.countJobs({ queue: 'count-big' }), [{ queue: 'count-big', state: 'succeeded', count: 400, exact: true }]);

    // Succeeded jobs have no index: a group the statistics do not put over the limit (here one they
    // have never seen) is counted by the pass over the table, next to the estimated one.
    const small = await h.app.pushMany(Array.from({ length: 5 }, () => noop.withQueue('count-small')));
    await h.db.sql`UPDATE docket.jobs SET state = 'succeeded', finished_at = now() WHERE id = ANY(${small.map((r) => r.id)}::bigint[])`;
    const succeeded = await h.app.countJobs({ state: 'succeeded', exactLimit: 50 });
    assert.deepEqual(
      // count-run's jobs, released by the test before, may still be finishing.
      succeeded.filter((c) => c.queue !== 'count-run').map((c) => [c.queue, c.exact ? c.count : 'estimated']),
      [
        ['count-big', 'estimated'],
        ['count-small', 5],
        ['ops-b', 7],
      ],
    );
    assert.deepEqual(
      await h.app.countJobs({ queue: ['count-small', 'count-big'], state: 'succeeded', exactLimit: 50 }).then((r) => r.map((c) => c.queue)),
      ['count-big', 'count-small'],
    );
  });
});

describe('operations: retry and re-run', () => {
  let h: Harness;
  before(async () => (h = await harness()));
  after(() => h.close());

  test('a retried job keeps its attempt and errors, gets one more attempt, and a notified worker runs it', async () => {
    let calls = 0;
    const flaky = defineJob({ name: 'ops.flaky', queue: 'retry-q' }, async () => {
      if (++calls === 1) throw new Error('first attempt breaks');
      return 'second attempt works';
    });
    // Pushed before the worker starts, so that its first fetch finds it (a notification that
    // arrives while a fetch is in flight can be lost: see the queue runner's `drained`).
    const ref = await h.app.push(flaky);
    // Polls once an hour: only the retry's notification can wake the worker in time.
    await h.worker({ jobs: [flaky], queues: { 'retry-q': { pollIntervalMs: 3_600_000 } } });
    const failed = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(failed.state, 'failed');
    assert.equal(failed.attempt, 1);

    const retried = await h.app.retryJob(ref);
    assert.equal(retried.state, 'pending');
    assert.equal(retried.attempt, 1, 'the attempt count is kept');
    assert.equal(retried.maxAttempts, 2, 'one more attempt is allowed');
    assert.deepEqual(retried.errors, failed.errors, 'the error history is kept');
    assert.equal(retried.finishedAt, null);

    const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    assert.equal(done.result, 'second attempt works');
    assert.equal(done.attempt, 2);
    assert.deepEqual(
      done.errors.map((e) => [e.attempt, e.message]),
      [[1, 'first attempt breaks']],
    );
  });

  test('retryJobs retries the failed jobs matching the filter (cancelled ones only when asked)', async () => {
    const a = await h.app.pushMany(Array.from({ length: 5 }, () => noop.withQueue('bulk-a')));
    const b = await h.app.pushMany(Array.from({ length: 3 }, () => noop.withQueue('bulk-b')));
    const failedA = a.slice(0, 3).map((r) => r.id);
    for (const id of failedA) await age(h, id, 'failed', new Date());
    await age(h, a[3]!.id, 'cancelled', new Date());
    await age(h, a[4]!.id, 'succeeded', new Date());
    for (const r of b) await age(h, r.id, 'failed', new Date());

    assert.deepEqual(await h.app.retryJobs({ queue: 'bulk-a' }), failedA);
    for (const id of failedA) assert.equal((await h.app.getJob(id)).state, 'pending');
    assert.equal((await h.app.getJob(a[3]!)).state, 'cancelled');
    assert.equal((await h.app.getJob(a[4]!)).state, 'succeeded');
    for (const r of b) assert.equal((await h.app.getJob(r)).state, 'failed', 'another queue is left alone');

    assert.deepEqual(await h.app.retryJobs({ queue: 'bulk-a', state: 'cancelled' }), [a[3]!.id]);
    assert.deepEqual(await h.app.retryJobs({ queue: 'bulk-a' }), [], 'nothing left to retry');
    assert.deepEqual(
      await h.app.retryJobs({ name: 'ops.noop', state: ['failed', 'cancelled'] }),
      b.map((r) => r.id),
    );
  });

  test('retryJobs goes past one batch of 1,000', async () => {
    const refs = await h.app.pushMany(Array.from({ length: 2_100 }, () => noop.withQueue('bulk-many')));
    await h.db.sql`UPDATE docket.jobs SET state = 'failed', attempt = 1, finished_at = now() WHERE queue = 'bulk-many'`;
    const ids = await h.app.retryJobs({ queue: 'bulk-many' });
    assert.equal(ids.length, 2_100);
    assert.deepEqual(new Set(ids), new Set(refs.map((r) => r.id)));
    assert.deepEqual(await h.app.countJobs({ queue: 'bulk-many' }), [{ queue: 'bulk-many', state: 'pending', count: 2_100, exact: true }]);
  });

  test('a succeeded job re-runs as a new job through the push path, naming its origin', async () => {
    const pushedNames: string[] = [];
    const recorder: DocketPlugin = {
      name: 'ops-test-recorder',
      apply(app) {
        app.hooks.beforePush.tap('ops-test-recorder', (rows) => {
          pushedNames.push(...rows.map((r) => r.name));
          return rows;
        });
      },
    };
    const app = new Docket({ connection: h.db.url, logger: false, plugins: [recorder] });
    try {
      const report = defineJob({ name: 'ops.report', queue: 'rerun-q', priority: 3, maxAttempts: 4 }, async ({ n }: { n: number }) => n * 2);
      const ref = await app.push(report.withArgs({ n: 21 }).withMeta({ tenant: 't1' }));
      await age(h, ref.id, 'succeeded', new Date());
      pushedNames.length = 0;

      const again = await app.rerunJob(ref);
      assert.notEqual(again.id, ref.id);
      assert.deepEqual(pushedNames, ['ops.report'], 'the push hooks ran');
      const job = await app.getJob(again);
      assert.equal(job.state, 'pending');
      assert.equal(job.name, 'ops.report');
      assert.equal(job.queue, 'rerun-q');
      assert.deepEqual(job.args, { n: 21 });
      assert.equal(job.priority, 3);
      assert.equal(job.maxAttempts, 4);
      assert.equal(job.attempt, 0);
      assert.deepEqual(job.meta, { tenant: 't1', [RERUN_OF_META_KEY]: ref.id });
      assert.equal((await app.getJob(ref)).state, 'succeeded', 'the original is left as it was');
    } finally {
      await app.close();
    }
  });
});

describe('operations: listWorkers', () => {
  let h: Harness;
  before(async () => (h = await harness()));
  after(() => h.close());

  test('lists a running worker with its host, pid, queues, heartbeat age and running jobs', async () => {
    const release = deferred();
    const started = deferred();
    const blocking = defineJob({ name: 'ops.hold', queue: 'workers-q' }, async () => {
      started.resolve();
      await release.promise;
    });
    const worker = await h.worker({ jobs: [blocking], queues: { 'workers-q': {}, 'workers-idle': {} }, id: 'ops-test-worker' });
    await h.app.push(blocking);
    await started.promise;

    const [info] = await h.app.listWorkers();
    assert.equal(info!.id, 'ops-test-worker');
    assert.equal(info!.hostname, hostname());
    assert.equal(info!.pid, process.pid);
    assert.deepEqual([...info!.queues].sort(), ['workers-idle', 'workers-q']);
    assert.equal(info!.runningJobs, 1);
    assert.equal(info!.heartbeatIntervalMs, 5000);
    assert.ok(info!.startedAt instanceof Date && info!.lastHeartbeatAt instanceof Date);
    // Loose bound: the row was written when the worker started, moments ago (heartbeats every 5 s).
    assert.ok(info!.heartbeatAgeMs >= 0 && info!.heartbeatAgeMs < 60_000, `heartbeat age ${info!.heartbeatAgeMs}`);
    assert.equal((await h.app.listWorkers({ queue: 'workers-idle' })).length, 1);
    assert.deepEqual(await h.app.listWorkers({ queue: 'served-by-nobody' }), []);

    release.resolve();
    await worker.stop();
    assert.deepEqual(await h.app.listWorkers(), [], 'a stopped worker removes its row');
  });
});

describe('operations: validation', () => {
  let h: Harness;
  before(async () => (h = await harness()));
  after(() => h.close());

  test('every call checks its input and answers with a coded error', async () => {
    const app = h.app as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const cases: Array<[string, () => Promise<unknown>, string]> = [
      ['listJobs unknown key', () => app.listJobs!({ queues: 'a' }), 'DOCKET_INVALID_OPTION'],
      ['listJobs limit 0', () => app.listJobs!({ limit: 0 }), 'DOCKET_INVALID_OPTION'],
      ['listJobs limit 1001', () => app.listJobs!({ limit: 1001 }), 'DOCKET_INVALID_OPTION'],
      ['listJobs order', () => app.listJobs!({ order: 'latest' }), 'DOCKET_INVALID_OPTION'],
      ['listJobs state', () => app.listJobs!({ state: 'done' }), 'DOCKET_INVALID_OPTION'],
      ['listJobs state in a list', () => app.listJobs!({ state: ['failed', 'finished'] }), 'DOCKET_INVALID_OPTION'],
      ['listJobs empty list', () => app.listJobs!({ queue: [] }), 'DOCKET_INVALID_OPTION'],
      ['listJobs 101 queues', () => app.listJobs!({ queue: Array.from({ length: 101 }, (_, i) => `q${i}`) }), 'DOCKET_INVALID_OPTION'],
      ['listJobs queue name', () => app.listJobs!({ queue: 'no spaces' }), 'DOCKET_INVALID_QUEUE_NAME'],
      ['listJobs job name', () => app.listJobs!({ name: ['ok', 'not ok'] }), 'DOCKET_INVALID_JOB_NAME'],
      ['listJobs date', () => app.listJobs!({ createdSince: '2030-01-01' }), 'DOCKET_INVALID_OPTION'],
      ['listJobs invalid date', () => app.listJobs!({ createdBefore: new Date('nope') }), 'DOCKET_INVALID_OPTION'],
      ['listJobs empty range', () => app.listJobs!({ createdSince: new Date(2000), createdBefore: new Date(1000) }), 'DOCKET_INVALID_OPTION'],
      ['listJobs cursor', () => app.listJobs!({ cursor: 'not-a-cursor' }), 'DOCKET_INVALID_OPTION'],
      ['listJobs cursor type', () => app.listJobs!({ cursor: 42 }), 'DOCKET_INVALID_OPTION'],
      ['listJobs not an object', () => app.listJobs!('ops-a'), 'DOCKET_INVALID_OPTION'],
      ['countJobs unknown key', () => app.countJobs!({ exact: true }), 'DOCKET_INVALID_OPTION'],
      ['countJobs exactLimit', () => app.countJobs!({ exactLimit: -1 }), 'DOCKET_INVALID_OPTION'],
      ['countJobs state', () => app.countJobs!({ state: 'dead' }), 'DOCKET_INVALID_OPTION'],
      ['countJobs queue name', () => app.countJobs!({ queue: '' }), 'DOCKET_INVALID_QUEUE_NAME'],
      ['retryJobs without filter', () => app.retryJobs!(), 'DOCKET_INVALID_OPTION'],
      ['retryJobs unknown key', () => app.retryJobs!({ queue: 'a', limit: 5 }), 'DOCKET_INVALID_OPTION'],
      ['retryJobs succeeded', () => app.retryJobs!({ state: 'succeeded' }), 'DOCKET_INVALID_OPTION'],
      ['retryJobs queue name', () => app.retryJobs!({ queue: 'a b' }), 'DOCKET_INVALID_QUEUE_NAME'],
      ['retryJob bad ref', () => app.retryJob!('abc'), 'DOCKET_INVALID_OPTION'],
      ['retryJob missing', () => app.retryJob!('999999999'), 'DOCKET_JOB_NOT_FOUND'],
      ['rerunJob missing', () => app.rerunJob!('999999999'), 'DOCKET_JOB_NOT_FOUND'],
      ['rerunJob unknown option', () => app.rerunJob!('1', { transaction: null }), 'DOCKET_INVALID_OPTION'],
      ['listWorkers unknown key', () => app.listWorkers!({ host: 'x' }), 'DOCKET_INVALID_OPTION'],
      ['listWorkers queue name', () => app.listWorkers!({ queue: 'a b' }), 'DOCKET_INVALID_QUEUE_NAME'],
    ];
    for (const [label, call, code] of cases) await assert.rejects(call, assertCode(code), label);
  });

  test('a retry of a job that is not failed or cancelled, or a re-run of one that has not succeeded, is DOCKET_JOB_STATE', async () => {
    const [pending, failed] = await h.app.pushMany([noop, noop]);
    await age(h, failed!.id, 'failed', new Date());
    await assert.rejects(
      () => h.app.retryJob(pending!),
      (e) => assertCode('DOCKET_JOB_STATE')(e) && (e as DocketError).details.state === 'pending',
    );
    await assert.rejects(() => h.app.rerunJob(pending!), assertCode('DOCKET_JOB_STATE'));
    await assert.rejects(
      () => h.app.rerunJob(failed!),
      (e) => assertCode('DOCKET_JOB_STATE')(e) && /retryJob/.test((e as Error).message),
    );
    assert.equal((await h.app.getJob(pending!)).state, 'pending', 'left as it was');
    await h.app.retryJob(failed!);
    await age(h, failed!.id, 'succeeded', new Date());
    await assert.rejects(
      () => h.app.retryJob(failed!),
      (e) => assertCode('DOCKET_JOB_STATE')(e) && /rerunJob/.test((e as Error).message),
    );
  });

  test('a closed app refuses operations', async () => {
    const app = new Docket({ connection: h.db.url, logger: false });
    await app.close();
    await assert.rejects(() => app.listJobs(), assertCode('DOCKET_CLOSED'));
  });
});

describe('operations: queueLag', () => {
  let h: Harness;
  before(async () => (h = await harness()));
  after(() => h.close());

  test('per queue with pending jobs: the earliest due time over every priority, its age, 0 when none is due', async () => {
    const lagA = defineJob({ name: 'lag.a', queue: 'lag-a' }, async () => {});
    const lagB = defineJob({ name: 'lag.b', queue: 'lag-b' }, async () => {});
    const [old, , urgent] = await h.app.pushMany([lagA, lagA.withPriority(5), lagA.withPriority(9)]);
    // The oldest due job is in the lowest priority group; a higher group holds a newer one.
    await h.db.sql`UPDATE docket.jobs SET scheduled_at = now() - interval '90 seconds' WHERE id = ${old!.id}`;
    await h.db.sql`UPDATE docket.jobs SET scheduled_at = now() - interval '30 seconds' WHERE id = ${urgent!.id}`;
    await h.app.push(lagB.withDelay(3_600_000));
    // Jobs in other states are not waiting.
    const [done] = await h.app.pushMany([lagA]);
    await h.db.sql`UPDATE docket.jobs SET state = 'failed', scheduled_at = now() - interval '1 day' WHERE id = ${done!.id}`;

    const lag = await h.app.queueLag();
    assert.deepEqual(
      lag.map((l) => l.queue),
      ['lag-a', 'lag-b'],
    );
    const [a, b] = lag;
    assert.ok(a!.lagMs >= 90_000 && a!.lagMs < 200_000, `lag-a waited ${a!.lagMs} ms`);
    assert.equal(b!.lagMs, 0, 'a queue whose only job is not due has no lag');
    assert.ok(b!.oldestPendingAt.getTime() > Date.now() + 3_000_000);
    assert.deepEqual(
      (await h.app.queueLag({ queue: 'lag-b' })).map((l) => l.queue),
      ['lag-b'],
    );
    assert.deepEqual(await h.app.queueLag({ queue: ['nothing-here'] }), []);
    await assert.rejects(h.app.queueLag({ queue: 'bad queue!' }), assertCode('DOCKET_INVALID_QUEUE_NAME'));
    await assert.rejects(h.app.queueLag({ queues: 'x' } as never), assertCode('DOCKET_INVALID_OPTION'));
  });
});
