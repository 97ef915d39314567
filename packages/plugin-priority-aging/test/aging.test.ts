/**
 * plugin-priority-aging on real PostgreSQL: options refused with coded errors; pushes of other
 * queues untouched; the rule applied exactly, once, by concurrent runs; batches bounded; and old
 * low-priority jobs starting under a saturating stream of high-priority work within the time the
 * rule gives.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, defineJob, type JobRef, Worker } from '@docket/core';
import { createTestDatabase, type TestDatabase } from '@docket/testing';
import postgres from 'postgres';
import { AGING_COLUMN, type PriorityAgingPlugin, priorityAging } from '../src/index.js';

const code = (expected: string) => (error: unknown) => error instanceof DocketError && error.code === expected;
const HOUR = 3_600_000;

describe('options', () => {
  const bad: Array<[string, unknown, string]> = [
    ['no options', undefined, 'DOCKET_INVALID_OPTION'],
    ['no queues', {}, 'DOCKET_INVALID_OPTION'],
    ['an empty queues object', { queues: {} }, 'DOCKET_INVALID_OPTION'],
    ['an unknown option', { queues: { q: { everyMs: 1000, maxPriority: 5 } }, interval: 5 }, 'DOCKET_INVALID_OPTION'],
    ['an unknown rule option', { queues: { q: { everyMs: 1000, maxPriority: 5, step: 2 } } }, 'DOCKET_INVALID_OPTION'],
    ['a rule without everyMs', { queues: { q: { maxPriority: 5 } } }, 'DOCKET_INVALID_OPTION'],
    ['a rule without maxPriority', { queues: { q: { everyMs: 1000 } } }, 'DOCKET_INVALID_OPTION'],
    ['a negative everyMs', { queues: { q: { everyMs: -1, maxPriority: 5 } } }, 'DOCKET_INVALID_OPTION'],
    ['a zero everyMs', { queues: { q: { everyMs: 0, maxPriority: 5 } } }, 'DOCKET_INVALID_OPTION'],
    ['a fractional everyMs', { queues: { q: { everyMs: 1.5, maxPriority: 5 } } }, 'DOCKET_INVALID_OPTION'],
    ['a fractional ceiling', { queues: { q: { everyMs: 1000, maxPriority: 2.5 } } }, 'DOCKET_INVALID_OPTION'],
    ['a ceiling past the core’s priorities', { queues: { q: { everyMs: 1000, maxPriority: 1_000_001 } } }, 'DOCKET_INVALID_OPTION'],
    ['a ceiling given as a string', { queues: { q: { everyMs: 1000, maxPriority: '10' } } }, 'DOCKET_INVALID_OPTION'],
    ['a rule that is not an object', { queues: { q: 10 } }, 'DOCKET_INVALID_OPTION'],
    ['a batch size of zero', { queues: { q: { everyMs: 1000, maxPriority: 5 } }, batchSize: 0 }, 'DOCKET_INVALID_OPTION'],
    ['an invalid queue name', { queues: { 'no spaces': { everyMs: 1000, maxPriority: 5 } } }, 'DOCKET_INVALID_QUEUE_NAME'],
  ];
  for (const [what, options, expected] of bad) {
    test(`refuses ${what} with ${expected}`, () => {
      assert.throws(() => priorityAging(options as never), code(expected));
    });
  }

  test('an unknown option is answered with the closest known one', () => {
    assert.throws(() => priorityAging({ queues: { q: { everyMs: 1000, maxPriorty: 5 } } } as never), /did you mean `maxPriority`\?/);
  });
});

describe('with an app', () => {
  let db: TestDatabase;
  let app: Docket;
  let plugin: PriorityAgingPlugin;
  before(async () => {
    db = await createTestDatabase();
    plugin = priorityAging({ queues: { reports: { everyMs: HOUR, maxPriority: 10 } } });
    app = new Docket({ connection: db.url, logger: false, plugins: [plugin] });
    await app.migrate();
  });
  after(async () => {
    await app.close();
    await db.drop();
  });

  const report = defineJob({ name: 'report', queue: 'reports' }, async () => 'done');
  /** Pushes a report job at `priority` that has been due for `waitedMs` (or becomes due in `-waitedMs`). */
  const pushWaited = (priority: number, waitedMs: number) =>
    app.push(
      report
        .withArgs()
        .withPriority(priority)
        .withScheduledAt(new Date(Date.now() - waitedMs)),
    );
  const stored = async (refs: JobRef[]) => {
    const rows =
      await db.sql`SELECT id::text, priority, ${db.sql(AGING_COLUMN)}::text AS aging FROM docket.jobs WHERE id IN ${db.sql(refs.map((r) => r.id))}`;
    const byId = new Map(rows.map((r) => [r.id, r]));
    return refs.map((r) => byId.get(r.id)!);
  };

  test('pushes of queues without a rule run no hook of the plugin and get no marker; every push is one statement', async () => {
    const statements: string[] = [];
    const sql = postgres(db.url, { max: 1, onnotice: () => {}, debug: (_c, query) => void statements.push(query.trim().toLowerCase()) });
    const other = new Docket({
      connection: sql,
      logger: false,
      plugins: [priorityAging({ queues: { reports: { everyMs: HOUR, maxPriority: 10 } } })],
    });
    try {
      const plain = defineJob({ name: 'plain', queue: 'plain' }, async () => 1);
      statements.length = 0;
      const [ref] = await other.pushMany([plain, plain]);
      assert.ok(!statements.includes('begin'), `one statement, no transaction: ${statements.join(' | ')}`);
      const [row] = await stored([ref!]);
      assert.equal(row!.aging, null, 'not marked: not in the aging index');
      // A job pushed at its ceiling never ages, so it is not marked either; one below it is (and
      // that push, which only sets a column in memory, is one statement too).
      const [top, low] = await other.pushMany([report.withArgs().withPriority(10), report.withArgs().withPriority(9)]);
      assert.ok(!statements.includes('begin'), `one statement, no transaction: ${statements.join(' | ')}`);
      assert.deepEqual(
        (await stored([top!, low!])).map((r) => r.aging),
        [null, '0001-01-01 00:00:00+00'],
      );
    } finally {
      await other.close();
      await sql.end({ timeout: 5 });
      await db.sql`DELETE FROM docket.jobs`;
    }
  });

  test('+1 per whole step waited, up to the ceiling, never lowered; two concurrent runs raise each job once; a second run changes nothing', async () => {
    const refs = [
      await pushWaited(0, 3.5 * HOUR), // +3 → 3
      await pushWaited(5, 3.5 * HOUR), // +3 → 8
      await pushWaited(8, 3.5 * HOUR), // +3 → capped at 10
      await pushWaited(0, 0.5 * HOUR), // not a whole step yet
      await pushWaited(0, -2 * HOUR), // due in two hours: has not waited at all
      await pushWaited(12, 30 * HOUR), // above the ceiling: never ages
      await pushWaited(-4, 100 * HOUR), // +100 → capped at 10
    ];
    const second = priorityAging({ queues: { reports: { everyMs: HOUR, maxPriority: 10 } } });
    const other = new Docket({ connection: db.url, logger: false, plugins: [second] });
    try {
      const [a, b] = await Promise.all([plugin.runNow(), second.runNow()]);
      assert.equal((a.raised.reports ?? 0) + (b.raised.reports ?? 0), 4, 'four jobs were due, each raised by one of the runs');
      const rows = await stored(refs);
      assert.deepEqual(
        rows.map((r) => r.priority),
        [3, 8, 10, 0, 0, 12, 10],
      );
      assert.equal(rows[2]!.aging, 'infinity', 'at its ceiling: never due again');
      // The remainder is kept: three steps counted, the next one due at 4 h of waiting.
      const [next] = await db.sql`
        SELECT round(extract(epoch FROM ${db.sql(AGING_COLUMN)} - scheduled_at) / 3600, 3)::float8 AS hours FROM docket.jobs WHERE id = ${refs[0]!.id}`;
      assert.equal(next!.hours, 3);
      assert.deepEqual(await plugin.runNow(), { raised: {}, truncated: false });
      assert.deepEqual(
        (await stored(refs)).map((r) => r.priority),
        [3, 8, 10, 0, 0, 12, 10],
      );
    } finally {
      await other.close();
      await db.sql`DELETE FROM docket.jobs`;
    }
  });

  test('a retry keeps the priority gained and waits a whole step from its new run time', async () => {
    const ref = await pushWaited(0, 2.2 * HOUR);
    await plugin.runNow();
    // As the core leaves a retried job: pending again, due later.
    await db.sql`UPDATE docket.jobs SET scheduled_at = now() - interval '10 minutes', attempt = 1 WHERE id = ${ref.id}`;
    await plugin.runNow();
    assert.deepEqual(
      (await stored([ref])).map((r) => r.priority),
      [2],
    );
    // An hour passes.
    await db.sql`UPDATE docket.jobs SET scheduled_at = scheduled_at - interval '1 hour', ${db.sql(AGING_COLUMN)} = ${db.sql(AGING_COLUMN)} - interval '1 hour' WHERE id = ${ref.id}`;
    await plugin.runNow();
    assert.deepEqual(
      (await stored([ref])).map((r) => r.priority),
      [3],
    );
    await db.sql`DELETE FROM docket.jobs`;
  });

  test('runs are bounded: batchSize jobs per statement, maxBatchesPerRun statements per run', async () => {
    const bounded = priorityAging({ queues: { reports: { everyMs: HOUR, maxPriority: 10 } }, batchSize: 2, maxBatchesPerRun: 2 });
    const other = new Docket({ connection: db.url, logger: false, plugins: [bounded] });
    try {
      await app.pushMany(Array.from({ length: 5 }, () => report.withArgs().withScheduledAt(new Date(Date.now() - 1.5 * HOUR))));
      assert.deepEqual(await bounded.runNow(), { raised: { reports: 4 }, truncated: true });
      assert.deepEqual(await bounded.runNow(), { raised: { reports: 1 }, truncated: false });
      const [row] = await db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE priority = 1`;
      assert.equal(row!.n, 5);
      const plan = await db.sql.begin(async (tx) => {
        await tx`SET LOCAL enable_seqscan = off`;
        return tx.unsafe(
          `EXPLAIN SELECT j.id FROM docket.jobs j WHERE j.queue = 'reports' AND j.state = 'pending' AND j.${AGING_COLUMN} IS NOT NULL
             AND GREATEST(j.${AGING_COLUMN}, j.scheduled_at) <= now() - interval '1 hour' ORDER BY GREATEST(j.${AGING_COLUMN}, j.scheduled_at) LIMIT 2`,
        );
      });
      assert.match(plan.map((r) => r['QUERY PLAN']).join('\n'), /Index Scan using priority_aging_due_idx/, 'read in order from the aging index');
    } finally {
      await other.close();
      await db.sql`DELETE FROM docket.jobs`;
    }
  });
});

test('under a saturating stream of high-priority jobs, old low-priority jobs start once aged to the ceiling, within the time the rule gives', {
  timeout: 120_000,
}, async (t) => {
  const db = await createTestDatabase();
  const STEP_MS = 250;
  const CEILING = 10;
  const INTERVAL_MS = 100;
  const app = new Docket({
    connection: db.url,
    logger: false,
    plugins: [priorityAging({ queues: { busy: { everyMs: STEP_MS, maxPriority: CEILING } }, intervalMs: INTERVAL_MS })],
  });
  let feeder: NodeJS.Timeout | undefined;
  let worker: Worker | undefined;
  try {
    await app.migrate();
    const lowStarts = new Map<string, { at: number; priority: number }>();
    const work = defineJob({ name: 'work', queue: 'busy' }, async ({ low }: { low: boolean }, ctx) => {
      if (low) lowStarts.set(ctx.job.id, { at: Date.now(), priority: ctx.job.priority });
      await new Promise((resolve) => setTimeout(resolve, 5));
    });
    // The old low-priority jobs, then a backlog of high-priority ones, kept topped up faster than
    // the worker drains it (40 every 50 ms, the worker at most ~400/s): there is always newer
    // priority-10 work waiting, so only aging can let a priority-0 job through.
    const pushedAt = Date.now();
    const lows = await app.pushMany(Array.from({ length: 3 }, () => work.withArgs({ low: true }).withPriority(0)));
    const high = () => Array.from({ length: 40 }, () => work.withArgs({ low: false }).withPriority(CEILING));
    await app.pushMany([...high(), ...high(), ...high(), ...high(), ...high()]);
    feeder = setInterval(() => void app.pushMany(high()).catch(() => {}), 50);
    worker = new Worker(app, { jobs: [work], queues: { busy: { concurrency: 2, prefetch: 0 } } });
    await worker.start();
    for (const ref of lows) assert.equal((await app.waitForJob(ref, { timeoutMs: 60_000 })).state, 'succeeded');
    clearInterval(feeder);
    const rule = CEILING * STEP_MS; // ten steps of 250 ms from priority 0 to the ceiling
    const waited = [...lowStarts.values()].map((s) => s.at - pushedAt);
    t.diagnostic(`low-priority jobs started after ${waited.join(', ')} ms (the rule: ${rule} ms + a run every ${INTERVAL_MS} ms)`);
    assert.deepEqual(
      [...lowStarts.values()].map((s) => s.priority),
      [CEILING, CEILING, CEILING],
      'each started only once aged to the ceiling: the stream starved them until then',
    );
    const [{ pending }] = (await db.sql`SELECT count(*)::int AS pending FROM docket.jobs WHERE state = 'pending'`) as unknown as [
      { pending: number },
    ];
    assert.ok(pending > 0, 'high-priority work was still waiting when they started');
    // Loose: the rule's time, a run's interval, and room for a loaded machine.
    for (const ms of waited) assert.ok(ms <= 2 * (rule + INTERVAL_MS) + 3000, `a low-priority job waited ${ms} ms; the rule gives ${rule} ms`);
  } finally {
    clearInterval(feeder);
    await worker?.stop({ timeoutMs: 2000 });
    await app.close();
    await db.drop();
  }
});
