import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, type DocketPlugin, defineJob, HOOK_STAGE } from '@docket/core';
import { PLUGIN_NAME, UniqueOptionsConflictError, unique, uniqueKeySpec } from '@docket/plugin-unique';
import { waitFor } from '@docket/testing';
import { deferred, type Harness, harness, nextMessage } from './helpers.js';

const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;

describe('options and builder', () => {
  test('withUniqueKey validates the key and its options; the plugin rejects unknown options', () => {
    const job = defineJob({ name: 'v', queue: 'unique' }, async () => 1);
    assert.throws(() => job.invocation().withUniqueKey(''), code('DOCKET_INVALID_JOB_OPTION'));
    assert.throws(() => job.invocation().withUniqueKey('x'.repeat(513)), code('DOCKET_INVALID_JOB_OPTION'));
    assert.throws(() => job.invocation().withUniqueKey(7 as never), code('DOCKET_INVALID_JOB_OPTION'));
    assert.throws(
      () => job.invocation().withUniqueKey('k', { throttleMS: 5 } as never),
      (e: unknown) => code('DOCKET_INVALID_OPTION')(e) && /did you mean `throttleMs`/.test((e as Error).message),
    );
    assert.throws(() => job.invocation().withUniqueKey('k', { throttleMs: 0 }), code('DOCKET_INVALID_JOB_OPTION'));
    assert.throws(() => job.invocation().withUniqueKey('k', { debounceMs: 1.5 }), code('DOCKET_INVALID_JOB_OPTION'));
    assert.throws(() => job.invocation().withUniqueKey('k', { throttleMs: 10, debounceMs: 10 }), code('DOCKET_UNIQUE_CONFLICTING_OPTIONS'));
    assert.throws(() => job.withDelay(10).withUniqueKey('k', { debounceMs: 10 }), UniqueOptionsConflictError);
    assert.throws(() => unique({ strict: true } as never), code('DOCKET_INVALID_OPTION'));
    const inv = job.withArgs(undefined).withUniqueKey('k', { throttleMs: 1000 });
    assert.deepEqual(inv.options.extensions['unique.key'], { key: 'k', throttleMs: 1000, debounceMs: null });
    assert.deepEqual(uniqueKeySpec('k'), { key: 'k', throttleMs: null, debounceMs: null });
    assert.equal(unique().name, PLUGIN_NAME);
  });
});

describe('unique keys', () => {
  let h: Harness;
  let gate = deferred();
  let runs: Array<{ id: string; args: unknown }> = [];
  const slow = defineJob({ name: 'slow', queue: 'unique' }, async (args: { v: number }, ctx) => {
    runs.push({ id: ctx.job.id, args });
    await gate.promise;
    return `done ${args.v}`;
  });
  const quick = defineJob({ name: 'quick', queue: 'unique' }, async (args: { v: number }, ctx) => {
    runs.push({ id: ctx.job.id, args });
    return args.v;
  });
  /** Runs before plugin-unique's conflict resolution when set (to interleave other work there). */
  let interleave: (() => Promise<void>) | null = null;
  const interleaver: DocketPlugin = {
    name: 'test-interleave',
    apply(app) {
      app.hooks.resolvePushConflicts.tapPromise({ name: 'test-interleave', stage: HOOK_STAGE.FIRST }, async () => {
        const fn = interleave;
        interleave = null;
        await fn?.();
      });
    },
  };
  const stateOf = async (id: string) => (await h.app.getJob(id)).state;

  before(async () => {
    h = await harness({ plugins: [unique(), interleaver] });
    await h.worker({ jobs: [slow, quick], queues: { unique: { concurrency: 5 } } });
  });
  after(() => h.close());

  test('duplicates inside one pushMany and across pushes name the existing job; other rows are untouched', async () => {
    const refs = await h.app.pushMany([
      slow
        .withArgs({ v: 1 })
        .withScheduledAt(new Date(Date.now() + 3_600_000))
        .withUniqueKey('batch-a'),
      slow.withArgs({ v: 2 }).withUniqueKey('batch-a'),
      slow.withArgs({ v: 3 }).withDelay(3_600_000),
      slow.withArgs({ v: 4 }).withDelay(3_600_000).withUniqueKey('batch-b'),
    ]);
    assert.deepEqual(
      refs.map((r) => r.duplicate),
      [false, true, false, false],
    );
    assert.equal(refs[1]!.id, refs[0]!.id);
    const again = await h.app.push(slow.withArgs({ v: 5 }).withUniqueKey('batch-b'));
    assert.deepEqual([again.duplicate, again.id], [true, refs[3]!.id]);
    const [held] = await h.db.sql`SELECT args, unique_key FROM docket.jobs WHERE id = ${refs[0]!.id}`;
    assert.deepEqual(held!.args, { v: 1 }, 'a plain duplicate changes nothing');
    assert.equal(held!.unique_key, 'batch-a');
    const [{ n }] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE args->>'v' IN ('2', '5')`;
    assert.equal(n, 0, 'duplicates inserted nothing');
    for (const r of refs) await h.app.cancelJob(r);
  });

  test('a running keyed job is not disturbed by duplicate pushes (plain or debounce); after it finishes the key is reusable', async () => {
    gate = deferred();
    runs = [];
    const first = await h.app.push(slow.withArgs({ v: 1 }).withUniqueKey('busy'));
    await waitFor(async () => (await stateOf(first.id)) === 'running', { timeoutMs: 10_000, message: 'keyed job running' });
    const [before] = await h.db.sql`SELECT * FROM docket.jobs WHERE id = ${first.id}`;
    const plain = await h.app.push(slow.withArgs({ v: 2 }).withUniqueKey('busy'));
    const debounced = await h.app.push(slow.withArgs({ v: 3 }).withUniqueKey('busy', { debounceMs: 5 }));
    const batch = await h.app.pushMany([slow.withArgs({ v: 4 }).withUniqueKey('busy'), slow.withArgs({ v: 5 }).withUniqueKey('busy')]);
    for (const ref of [plain, debounced, ...batch]) assert.deepEqual([ref.id, ref.duplicate], [first.id, true]);
    const [afterDuplicates] = await h.db.sql`SELECT * FROM docket.jobs WHERE id = ${first.id}`;
    assert.deepEqual(afterDuplicates, before, 'the running row is exactly as it was');

    gate.resolve();
    const done = await h.app.waitForJob(first, { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    assert.equal(done.attempt, 1);
    assert.equal(done.result, 'done 1');
    assert.deepEqual(runs, [{ id: first.id, args: { v: 1 } }], 'ran once, with its own arguments');

    const next = await h.app.push(slow.withArgs({ v: 6 }).withUniqueKey('busy'));
    assert.equal(next.duplicate, false, 'the key is free once the job finished');
    assert.notEqual(next.id, first.id);
    await h.app.waitForJob(next, { timeoutMs: 10_000 });
  });

  test('inside a caller’s transaction: duplicates wait for it, a commit makes them name its job, a rollback frees the key', async () => {
    let outside: Promise<{ id: string; duplicate: boolean }> | undefined;
    const inside = await h.app.sql.begin(async (tx) => {
      const a = await h.app.push(slow.withArgs({ v: 1 }).withDelay(3_600_000).withUniqueKey('tx-key'), { tx });
      const b = await h.app.push(slow.withArgs({ v: 2 }).withUniqueKey('tx-key'), { tx });
      assert.deepEqual([b.id, b.duplicate], [a.id, true], 'a duplicate inside the same transaction');
      outside = h.app.push(slow.withArgs({ v: 3 }).withUniqueKey('tx-key'));
      await waitFor(
        async () => (await h.db.sql`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).length > 0,
        { timeoutMs: 10_000, message: 'the outside push waits on the open transaction' },
      );
      return a;
    });
    const late = await outside!;
    assert.deepEqual([late.id, late.duplicate], [inside.id, true]);
    await h.app.cancelJob(inside);

    await assert.rejects(
      h.app.sql.begin(async (tx) => {
        await h.app.push(slow.withArgs({ v: 4 }).withUniqueKey('tx-rollback'), { tx });
        throw new Error('roll back');
      }),
      /roll back/,
    );
    const fresh = await h.app.push(slow.withArgs({ v: 5 }).withDelay(3_600_000).withUniqueKey('tx-rollback'));
    assert.equal(fresh.duplicate, false, 'a rolled-back push held nothing');
    await h.app.cancelJob(fresh);
  });

  test('the holder finishing between the skipped insert and the lookup: the answer still names it', async () => {
    gate = deferred();
    const holder = await h.app.push(slow.withArgs({ v: 1 }).withUniqueKey('finishing'));
    await waitFor(async () => (await stateOf(holder.id)) === 'running', { timeoutMs: 10_000, message: 'holder running' });
    interleave = async () => {
      gate.resolve();
      await waitFor(async () => (await h.db.sql`SELECT 1 FROM docket.jobs WHERE id = ${holder.id} AND state = 'succeeded'`).length > 0, {
        timeoutMs: 10_000,
        message: 'holder finished inside the push',
      });
    };
    const dup = await h.app.push(slow.withArgs({ v: 2 }).withUniqueKey('finishing'));
    assert.equal(interleave, null, 'the interleaving ran');
    assert.deepEqual([dup.id, dup.duplicate], [holder.id, true], 'the job the insert collided with, though it has finished since');
    const finished = await h.app.getJob(holder);
    assert.deepEqual([finished.state, finished.result, finished.args], ['succeeded', 'done 1', { v: 1 }]);
    const next = await h.app.push(slow.withArgs({ v: 3 }).withUniqueKey('finishing'));
    assert.equal(next.duplicate, false);
    await h.app.waitForJob(next, { timeoutMs: 10_000 });
  });

  test('throttle: one job per window even after it finished; a cancelled job does not count', async () => {
    // A window of 2^40 ms (~35 years, boundaries in 2004 and 2039): this test never crosses one.
    const window = 2 ** 40;
    const first = await h.app.push(quick.withArgs({ v: 1 }).withUniqueKey('throttle-long', { throttleMs: window }));
    assert.equal((await h.app.waitForJob(first, { timeoutMs: 10_000 })).state, 'succeeded');
    const second = await h.app.push(quick.withArgs({ v: 2 }).withUniqueKey('throttle-long', { throttleMs: window }));
    assert.deepEqual([second.id, second.duplicate], [first.id, true], 'the finished job still closes its window');
    const plain = await h.app.push(quick.withArgs({ v: 3 }).withDelay(3_600_000).withUniqueKey('throttle-long'));
    assert.equal(plain.duplicate, false, 'a push without throttleMs only looks at unfinished jobs');
    await h.app.cancelJob(plain);

    const cancelled = await h.app.push(quick.withArgs({ v: 4 }).withDelay(3_600_000).withUniqueKey('throttle-cancel', { throttleMs: window }));
    await h.app.cancelJob(cancelled);
    const after = await h.app.push(quick.withArgs({ v: 5 }).withDelay(3_600_000).withUniqueKey('throttle-cancel', { throttleMs: window }));
    assert.equal(after.duplicate, false, 'a cancelled job frees its window');
    await h.app.cancelJob(after);
  });

  test('throttle: the key opens again in the next window (unless a job still holds it)', async () => {
    const ms = 400;
    const first = await h.app.push(quick.withArgs({ v: 1 }).withUniqueKey('throttle-short', { throttleMs: ms }));
    await h.app.waitForJob(first, { timeoutMs: 10_000 });
    const [{ window }] = await h.db.sql`SELECT unique_window AS window FROM docket.jobs WHERE id = ${first.id}`;
    assert.equal((window as Date).getTime() % ms, 0, 'windows are aligned to the epoch');
    await waitFor(async () => (await h.db.sql`SELECT now() >= ${new Date((window as Date).getTime() + ms)} AS open`)[0]!.open, {
      timeoutMs: 10_000,
      message: 'next window',
    });
    const second = await h.app.push(quick.withArgs({ v: 2 }).withUniqueKey('throttle-short', { throttleMs: ms }));
    assert.equal(second.duplicate, false, 'a new window');
    await h.app.waitForJob(second, { timeoutMs: 10_000 });

    gate = deferred();
    const long = await h.app.push(slow.withArgs({ v: 3 }).withUniqueKey('throttle-held', { throttleMs: ms }));
    await waitFor(async () => (await stateOf(long.id)) === 'running', { timeoutMs: 10_000, message: 'throttled job running' });
    const [{ w }] = await h.db.sql`SELECT unique_window AS w FROM docket.jobs WHERE id = ${long.id}`;
    await waitFor(async () => (await h.db.sql`SELECT now() >= ${new Date((w as Date).getTime() + ms)} AS open`)[0]!.open, {
      timeoutMs: 10_000,
      message: 'next window',
    });
    const blocked = await h.app.push(slow.withArgs({ v: 4 }).withUniqueKey('throttle-held', { throttleMs: ms }));
    assert.deepEqual([blocked.id, blocked.duplicate], [long.id, true], 'the running job still holds the key');
    gate.resolve();
    await h.app.waitForJob(long, { timeoutMs: 10_000 });
  });

  test('debounce: a push replaces the pending job’s arguments and run time', async () => {
    const first = await h.app.push(quick.withArgs({ v: 1 }).withUniqueKey('debounce-long', { debounceMs: 60_000 }));
    const [a] = await h.db.sql`SELECT scheduled_at, created_at, scheduled_at - created_at AS delay FROM docket.jobs WHERE id = ${first.id}`;
    assert.equal((a!.scheduled_at as Date).getTime() - (a!.created_at as Date).getTime(), 60_000, 'runs debounceMs after the push');
    const second = await h.app.push(quick.withArgs({ v: 2 }).withUniqueKey('debounce-long', { debounceMs: 60_000 }));
    assert.deepEqual([second.id, second.duplicate], [first.id, true]);
    const [b] = await h.db.sql`SELECT args, scheduled_at, now() AS now FROM docket.jobs WHERE id = ${first.id}`;
    assert.deepEqual(b!.args, { v: 2 }, 'the latest arguments');
    assert.ok((b!.scheduled_at as Date) > (a!.scheduled_at as Date), 'the run time moved later');
    assert.ok((b!.scheduled_at as Date).getTime() - (b!.now as Date).getTime() > 55_000, 'to about debounceMs after the latest push');
    await h.app.cancelJob(first);

    await assert.rejects(
      h.app.push(quick.withArgs({ v: 3 }).withUniqueKey('debounce-delay', { debounceMs: 10 }).withDelay(5)),
      (e: unknown) => code('DOCKET_PLUGIN_FAILED')(e) && code('DOCKET_UNIQUE_CONFLICTING_OPTIONS')((e as Error).cause),
    );
  });

  test('debounce: a burst runs once, with the last arguments', async () => {
    runs = [];
    const refs = await h.app.sql.begin(async (tx) => {
      const out = [];
      for (const v of [1, 2, 3]) out.push(await h.app.push(quick.withArgs({ v }).withUniqueKey('debounce-burst', { debounceMs: 200 }), { tx }));
      return out;
    });
    assert.deepEqual(
      refs.map((r) => r.duplicate),
      [false, true, true],
    );
    assert.ok(refs.every((r) => r.id === refs[0]!.id));
    const done = await h.app.waitForJob(refs[0]!, { timeoutMs: 10_000 });
    assert.deepEqual([done.state, done.result], ['succeeded', 3]);
    assert.deepEqual(runs, [{ id: refs[0]!.id, args: { v: 3 } }]);
  });
});

describe('across processes', () => {
  test('50 concurrent pushes with one key from 5 processes: one job, 49 duplicate answers naming it', { timeout: 120_000 }, async () => {
    const h = await harness({ plugins: [unique()] });
    const children: ChildProcess[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        children.push(
          fork(new URL('./fixtures/pusher.ts', import.meta.url), {
            env: { ...process.env, TEST_DATABASE_URL: h.db.url, PUSHES: '10', UNIQUE_KEY: 'race' },
            execArgv: process.execArgv,
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          }),
        );
      }
      await Promise.all(children.map((c) => nextMessage(c, 'ready')));
      const answers = children.map((c) => nextMessage<{ type: string; refs: Array<{ id: string; duplicate: boolean }> }>(c, 'refs'));
      for (const c of children) c.send({ type: 'go' });
      const refs = (await Promise.all(answers)).flatMap((a) => a.refs);
      assert.equal(refs.length, 50);
      const inserted = refs.filter((r) => !r.duplicate);
      assert.equal(inserted.length, 1, 'exactly one push inserted');
      assert.equal(refs.filter((r) => r.duplicate && r.id === inserted[0]!.id).length, 49, '49 duplicates naming it');
      const rows = await h.db.sql`SELECT id::text AS id FROM docket.jobs WHERE unique_key = 'race'`;
      assert.deepEqual(
        rows.map((r) => r.id),
        [inserted[0]!.id],
      );
    } finally {
      const exits = children.filter((c) => c.exitCode === null).map((c) => once(c, 'exit'));
      for (const c of children) if (c.connected) c.send({ type: 'exit' });
      await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 10_000).unref())]);
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      await h.close();
    }
  });
});

test('one unique() value serves one app: a second app is refused with DOCKET_PLUGIN_INVALID; it takes no options', async () => {
  const plugin = unique();
  await using first = new Docket({ connection: 'postgres://127.0.0.1:1/unused', plugins: [plugin], logger: false });
  assert.ok(first);
  assert.throws(
    () => new Docket({ connection: 'postgres://127.0.0.1:1/unused', plugins: [plugin], logger: false }),
    (e: unknown) => code('DOCKET_PLUGIN_INVALID')(e) && /one plugin value serves one app; call unique\(\) again/.test((e as Error).message),
  );
  assert.throws(
    () => unique({ x: 1 } as never),
    (e: unknown) => code('DOCKET_INVALID_OPTION')(e) && /in unique\(options\); unique\(options\) takes no options\.$/.test((e as Error).message),
  );
});
