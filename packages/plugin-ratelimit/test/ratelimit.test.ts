/**
 * plugin-ratelimit in one process: options and keys refused with coded errors (nothing stored),
 * queues without a rule untouched, held-back jobs left as they were, the cleanup, the window math.
 * The limits across worker processes are in processes.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, type DocketPlugin, defineJob, Worker } from '@docket/core';
import { createTestDatabase, type TestDatabase, waitFor } from '@docket/testing';
import postgres from 'postgres';
import { MAX_KEY_LENGTH, RateLimitNoKeyRuleError, type RateLimitPlugin, ratelimit } from '../src/index.js';
import { EMPTY_LOG, firstRelease, gridMs, liveLog, slotOf, used, withEntry } from '../src/window.js';

const code = (expected: string) => (error: unknown) => error instanceof DocketError && error.code === expected;

describe('options', () => {
  const bad: Array<[string, unknown, string]> = [
    ['no options', undefined, 'DOCKET_INVALID_OPTION'],
    ['no queues', {}, 'DOCKET_INVALID_OPTION'],
    ['an empty queues object', { queues: {} }, 'DOCKET_INVALID_OPTION'],
    ['an unknown option', { queues: { q: { limit: 1, periodMs: 1000 } }, cleanupInterval: 5 }, 'DOCKET_INVALID_OPTION'],
    ['an unknown queue option', { queues: { q: { limit: 1, periodMs: 1000, burst: 5 } } }, 'DOCKET_INVALID_OPTION'],
    ['an unknown perKey option', { queues: { q: { perKey: { limit: 1, periodMs: 1000, keys: 3 } } } }, 'DOCKET_INVALID_OPTION'],
    ['a negative limit', { queues: { q: { limit: -1, periodMs: 1000 } } }, 'DOCKET_INVALID_OPTION'],
    ['a zero limit', { queues: { q: { limit: 0, periodMs: 1000 } } }, 'DOCKET_INVALID_OPTION'],
    ['a fractional limit', { queues: { q: { limit: 1.5, periodMs: 1000 } } }, 'DOCKET_INVALID_OPTION'],
    ['a limit given as a string', { queues: { q: { limit: '5', periodMs: 1000 } } }, 'DOCKET_INVALID_OPTION'],
    ['a fractional period', { queues: { q: { limit: 5, periodMs: 999.5 } } }, 'DOCKET_INVALID_OPTION'],
    ['a period too short', { queues: { q: { limit: 5, periodMs: 9 } } }, 'DOCKET_INVALID_OPTION'],
    ['a limit without its period', { queues: { q: { limit: 5 } } }, 'DOCKET_INVALID_OPTION'],
    ['a per-key period without its limit', { queues: { q: { perKey: { periodMs: 1000 } } } }, 'DOCKET_INVALID_OPTION'],
    ['a negative per-key limit', { queues: { q: { perKey: { limit: -3, periodMs: 1000 } } } }, 'DOCKET_INVALID_OPTION'],
    ['a queue that limits nothing', { queues: { q: {} } }, 'DOCKET_INVALID_OPTION'],
    ['a queue rule that is not an object', { queues: { q: 5 } }, 'DOCKET_INVALID_OPTION'],
    ['an invalid queue name', { queues: { 'bad queue!': { limit: 1, periodMs: 1000 } } }, 'DOCKET_INVALID_QUEUE_NAME'],
    [
      'a cleanup interval that is not an integer',
      { queues: { q: { limit: 1, periodMs: 1000 } }, cleanupIntervalMs: 'often' },
      'DOCKET_INVALID_OPTION',
    ],
  ];
  for (const [what, options, expected] of bad) {
    test(`refuses ${what} with ${expected}`, () => {
      assert.throws(() => ratelimit(options as never), code(expected));
    });
  }

  test('an unknown option is answered with the closest known one', () => {
    assert.throws(
      () => ratelimit({ queues: { q: { limit: 1, periodMs: 1000 } }, cleanupIntervallMs: 5 } as never),
      /did you mean `cleanupIntervalMs`\?/,
    );
    assert.throws(() => ratelimit({ queues: { q: { limit: 1, period: 1000 } } } as never), /did you mean `periodMs`\?/);
  });

  test('valid rules are resolved and frozen', () => {
    const plugin = ratelimit({ queues: { a: { limit: 50, periodMs: 1000 }, b: { perKey: { limit: 5, periodMs: 200 } } } });
    assert.deepEqual(plugin.settings.queues.a, { queue: { limit: 50, periodMs: 1000 }, perKey: null });
    assert.deepEqual(plugin.settings.queues.b, { queue: null, perKey: { limit: 5, periodMs: 200 } });
    assert.equal(plugin.settings.cleanupIntervalMs, 60_000);
    assert.ok(Object.isFrozen(plugin.settings.queues.a));
  });
});

describe('the sliding window log', () => {
  test('a start counts for a whole period after its entry, and entries sit on a grid of a thousandth of the period, rounded up', () => {
    assert.equal(gridMs(1000), 1);
    assert.equal(gridMs(60_000), 60);
    assert.equal(slotOf(1_000_001, 60_000), 1_000_020);
    assert.equal(slotOf(1_000_020, 60_000), 1_000_020);
    let log = withEntry(EMPTY_LOG, 1000, 3);
    log = withEntry(log, 1400, 2);
    log = withEntry(log, 1400, 1);
    assert.deepEqual(log, { at: [1000, 1400], counts: [3, 3] }, 'one entry per time');
    assert.equal(used(liveLog(log, 1999, 1000)), 6);
    assert.equal(used(liveLog(log, 2000, 1000)), 3, 'the entry at 1000 stops counting at 2000');
    assert.equal(used(liveLog(log, 2400, 1000)), 0);
    assert.equal(firstRelease(log, 1000), 2000);
    assert.equal(firstRelease(EMPTY_LOG, 1000), null);
  });
});

/** Counts the claims of each queue the rate limits shape (a claim the plugin refuses included). */
const claims: Record<string, number> = {};
const claimCounter: DocketPlugin = {
  name: 'test-claim-counter',
  apply(app) {
    app.hooks.beforeClaim.tapPromise({ name: 'test-claim-counter', wants: (queue) => queue === 'slow' }, async (claim) => {
      claims[claim.queue] = (claims[claim.queue] ?? 0) + 1;
    });
  },
};

describe('with an app', () => {
  let db: TestDatabase;
  let app: Docket;
  let plugin: RateLimitPlugin;
  before(async () => {
    db = await createTestDatabase();
    plugin = ratelimit({
      queues: {
        slow: { limit: 2, periodMs: 60_000 },
        keyed: { perKey: { limit: 1, periodMs: 60_000 } },
        brief: { perKey: { limit: 5, periodMs: 100 } },
      },
    });
    app = new Docket({ connection: db.url, logger: false, plugins: [plugin, claimCounter] });
    await app.migrate();
  });
  after(async () => {
    await app.close();
    await db.drop();
  });

  const count = async (query: string) => Number(Object.values((await db.sql.unsafe(query))[0]!)[0]);

  test('a key that is not a non-empty string is refused by the builder', () => {
    const job = defineJob({ name: 'k', queue: 'keyed' }, async () => 1);
    for (const key of [42, '', null, undefined, { id: 1 }, 'x'.repeat(MAX_KEY_LENGTH + 1)]) {
      assert.throws(() => job.invocation().withRateLimitKey(key as never), code('DOCKET_INVALID_JOB_OPTION'));
    }
    assert.doesNotThrow(() => job.invocation().withRateLimitKey('x'.repeat(MAX_KEY_LENGTH)));
  });

  test('bad keys at push time fail the whole push, and nothing is stored', async () => {
    const keyed = defineJob({ name: 'k', queue: 'keyed' }, async () => 1);
    const unkeyedQueue = defineJob({ name: 'u', queue: 'slow' }, async () => 1);
    const before = await count('SELECT count(*) FROM docket.jobs');
    // A key in a queue without a perKey rule would limit nothing.
    await assert.rejects(app.pushMany([keyed.withArgs().withRateLimitKey('a'), unkeyedQueue.withArgs().withRateLimitKey('a')]), (error: unknown) => {
      assert.ok(error instanceof DocketError && error.code === 'DOCKET_PLUGIN_FAILED');
      assert.ok(error.cause instanceof RateLimitNoKeyRuleError);
      assert.equal((error.cause as DocketError).code, 'DOCKET_RATELIMIT_NO_KEY_RULE');
      assert.match((error.cause as Error).message, /queue 'slow' has no perKey rule/);
      return true;
    });
    // A key set around the builder is checked again.
    await assert.rejects(app.pushMany([keyed.withArgs().withRateLimitKey('a'), keyed.with('ratelimit.key', 7)]), (error: unknown) => {
      assert.ok(error instanceof DocketError && error.code === 'DOCKET_PLUGIN_FAILED');
      assert.equal((error.cause as DocketError).code, 'DOCKET_INVALID_JOB_OPTION');
      return true;
    });
    assert.equal(await count('SELECT count(*) FROM docket.jobs'), before, 'nothing was stored');
  });

  test('a queue without a rule keeps the plain push and the plain claim: no hook of the plugin runs for it', async () => {
    const statements: string[] = [];
    const sql = postgres(db.url, { max: 2, onnotice: () => {}, debug: (_c, query) => void statements.push(query.trim().toLowerCase()) });
    const other = new Docket({
      connection: sql,
      logger: false,
      plugins: [ratelimit({ queues: { slow: { limit: 2, periodMs: 60_000 }, perkey: { perKey: { limit: 2, periodMs: 60_000 } } } })],
    });
    try {
      const free = defineJob({ name: 'free', queue: 'free' }, async () => 'ok');
      const refs = await other.pushMany(Array.from({ length: 5 }, () => free));
      assert.ok(!statements.includes('begin'), 'the push was one statement');
      // A keyed push only has a column set in memory: one statement too.
      const keyed = defineJob({ name: 'keyed-push', queue: 'perkey' }, async () => 'ok');
      const [keyedRef] = await other.pushMany([keyed.withArgs().withRateLimitKey('k')]);
      assert.ok(!statements.includes('begin'), 'the keyed push was one statement');
      const [row] = await db.sql`SELECT ratelimit_key FROM docket.jobs WHERE id = ${keyedRef!.id}`;
      assert.equal(row!.ratelimit_key, 'k');
      await db.sql`DELETE FROM docket.jobs WHERE id = ${keyedRef!.id}`;
      const worker = new Worker(other, { jobs: [free], queues: { free: { concurrency: 5 } } });
      await worker.start();
      try {
        for (const ref of refs) assert.equal((await other.waitForJob(ref, { timeoutMs: 10_000 })).state, 'succeeded');
      } finally {
        await worker.stop();
      }
      // (The worker runs the plugin's cleanup of dead key windows, a DELETE of its own; no claim
      // touches a window.)
      const claimsOfWindows = statements.filter((s) => s.includes('ratelimit_windows') && !s.startsWith('delete'));
      assert.deepEqual(claimsOfWindows, [], 'no window was read or written');
      assert.ok(!statements.includes('begin'), 'no claim ran in a transaction');
      assert.equal(await count(`SELECT count(*) FROM docket.ratelimit_windows WHERE queue = 'free'`), 0);
    } finally {
      await other.close();
      await sql.end({ timeout: 5 });
    }
  });

  test('held back: past the limit, jobs stay pending with attempt 0 and no error, however often workers claim', async () => {
    const job = defineJob({ name: 'slow-job', queue: 'slow' }, async () => 'done');
    const refs = await app.pushMany(Array.from({ length: 5 }, () => job));
    const worker = new Worker(app, { jobs: [job], queues: { slow: { concurrency: 5, pollIntervalMs: 50 } } });
    await worker.start();
    try {
      await waitFor(async () => (await count(`SELECT count(*) FROM docket.jobs WHERE queue = 'slow' AND state = 'succeeded'`)) === 2, {
        timeoutMs: 10_000,
        message: 'two jobs ran',
      });
      // The worker keeps claiming (it polls every 50 ms) and each claim is refused.
      const seen = claims.slow ?? 0;
      await waitFor(() => (claims.slow ?? 0) >= seen + 5, { timeoutMs: 10_000, message: 'five more claims of the queue' });
      const usage = await plugin.usage('slow');
      assert.deepEqual(usage, { queue: 2, keys: {} });
    } finally {
      await worker.stop();
    }
    const rows = await db.sql`SELECT state, attempt, errors FROM docket.jobs WHERE id IN ${db.sql(refs.map((r) => r.id))} ORDER BY id`;
    assert.deepEqual(
      rows.map((r) => [r.state, r.attempt, r.errors.length]),
      [
        ['succeeded', 1, 0],
        ['succeeded', 1, 0],
        ['pending', 0, 0],
        ['pending', 0, 0],
        ['pending', 0, 0],
      ],
    );
  });

  test('per key: one start per key and window; keys without starts left and unkeyed jobs go on', async () => {
    const job = defineJob({ name: 'keyed-job', queue: 'keyed' }, async () => 'done');
    const refs = await app.pushMany([
      ...['a', 'a', 'a', 'b', 'b'].map((key) => job.withArgs().withRateLimitKey(key)),
      job.withArgs(),
      job.withArgs(),
    ]);
    const worker = new Worker(app, { jobs: [job], queues: { keyed: { concurrency: 10 } } });
    await worker.start();
    try {
      await waitFor(async () => (await count(`SELECT count(*) FROM docket.jobs WHERE queue = 'keyed' AND state = 'succeeded'`)) === 4, {
        timeoutMs: 10_000,
        message: 'one job of each key and the unkeyed ones ran',
      });
      assert.deepEqual(await plugin.usage('keyed'), { queue: null, keys: { a: 1, b: 1 } });
    } finally {
      await worker.stop();
    }
    const rows = await db.sql`
      SELECT ratelimit_key AS key, state, count(*)::int AS n, max(attempt)::int AS attempt
      FROM docket.jobs WHERE id IN ${db.sql(refs.map((r) => r.id))} GROUP BY 1, 2 ORDER BY 1, 2`;
    assert.deepEqual(
      rows.map((r) => [r.key, r.state, r.n, r.attempt]),
      [
        ['a', 'pending', 2, 0],
        ['a', 'succeeded', 1, 1],
        ['b', 'pending', 1, 0],
        ['b', 'succeeded', 1, 1],
        [null, 'succeeded', 2, 1],
      ],
    );
  });

  test('the cleanup deletes the windows of keys with nothing left in them, and keeps the live ones and the queue rows', async () => {
    const job = defineJob({ name: 'brief-job', queue: 'brief' }, async () => 'done');
    const refs = await app.pushMany(['x', 'y', 'z'].map((key) => job.withArgs().withRateLimitKey(key)));
    const worker = new Worker(app, { jobs: [job], queues: { brief: { concurrency: 3 } } });
    await worker.start();
    try {
      for (const ref of refs) assert.equal((await app.waitForJob(ref, { timeoutMs: 10_000 })).state, 'succeeded');
    } finally {
      await worker.stop();
    }
    assert.equal(await count(`SELECT count(*) FROM docket.ratelimit_windows WHERE queue = 'brief' AND key <> ''`), 3);
    // The windows of `keyed` (60 s) are live; those of `brief` (100 ms) die 100 ms after their start.
    await waitFor(async () => Object.keys((await plugin.usage('brief')).keys).length === 0, { timeoutMs: 5000, message: 'the brief windows to end' });
    assert.deepEqual(await plugin.runNow(), { deleted: 3 });
    const left = await db.sql`SELECT queue, key FROM docket.ratelimit_windows ORDER BY queue, key`;
    assert.deepEqual(
      left.map((r) => `${r.queue}/${r.key}`),
      ['brief/', 'keyed/', 'keyed/a', 'keyed/b', 'slow/'],
    );
    assert.deepEqual(await plugin.runNow(), { deleted: 0 });
  });
});
