/**
 * docket.push_job(...): a push from plain SQL (core migration 3). It checks what a TypeScript push
 * checks, inserts in the caller's transaction and sends the same notification, so idle workers wake
 * when that transaction commits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertJobName, assertQueueName, defineJob } from '@docket/core';
import postgres from 'postgres';
import { type Harness, harness } from './helpers.js';

const rowJob = defineJob({ name: 'orders.confirm', queue: 'from-sql' }, async (args: { order: number }) => `confirmed ${args.order}`);

/** Notifications on `channel`, in arrival order. */
async function listenAll(url: string, channel: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const seen: string[] = [];
  const waiters: Array<{ match: (p: string) => boolean; resolve: () => void }> = [];
  await sql.listen(channel, (payload) => {
    seen.push(payload);
    for (const w of waiters.filter((w) => w.match(payload))) w.resolve();
  });
  return {
    seen,
    next(match: (payload: string) => boolean): Promise<void> {
      if (seen.some(match)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
    stop: () => sql.end(),
  };
}

describe('push_job(): push from SQL', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
    await h.db.sql.unsafe(`
      CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL);
      CREATE FUNCTION orders_push() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM docket.push_job('from-sql', 'orders.confirm', jsonb_build_object('order', NEW.id), priority => 5);
        RETURN NEW;
      END $$;
      CREATE TRIGGER orders_push AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION orders_push();
    `);
  });
  after(() => h.close());

  test('a trigger pushes a job per inserted row in the inserting transaction; a worker woken only by the notification runs them', async () => {
    await h.worker({ jobs: [rowJob], queues: { 'from-sql': { pollIntervalMs: 60_000 } } });
    const ids = await h.db.sql.begin(async (tx) => {
      await tx`INSERT INTO orders (id, total) VALUES (1, 10), (2, 20), (3, 30)`;
      const rows = await tx`SELECT id::text AS id FROM docket.jobs WHERE name = 'orders.confirm' ORDER BY id`;
      const [outside] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE name = 'orders.confirm'`;
      assert.equal(outside!.n, 0, 'invisible until the insert commits');
      return rows.map((r) => r.id as string);
    });
    assert.equal(ids.length, 3);
    const jobs = await Promise.all(ids.map((id) => h.app.waitForJob<{ order: number }>(id, { timeoutMs: 10_000 })));
    assert.deepEqual(
      jobs.map((j) => [j.state, j.args.order, j.result, j.priority, j.queue]),
      [
        ['succeeded', 1, 'confirmed 1', 5, 'from-sql'],
        ['succeeded', 2, 'confirmed 2', 5, 'from-sql'],
        ['succeeded', 3, 'confirmed 3', 5, 'from-sql'],
      ],
    );
  });

  test('a rolled-back insert pushes nothing and wakes no one', async () => {
    const listener = await listenAll(h.db.url, h.app.channel);
    try {
      const [before] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
      await assert.rejects(
        h.db.sql.begin(async (tx) => {
          await tx`SELECT docket.push_job('rolled-back', 'orders.confirm', '{"order": 0}')`;
          await tx`INSERT INTO orders (id, total) VALUES (100, 1)`;
          throw new Error('roll back');
        }),
        /roll back/,
      );
      await h.db.sql`SELECT docket.push_job('committed-after', 'orders.confirm', '{"order": 0}')`;
      await listener.next((p) => p === 'p:committed-after');
      assert.deepEqual(
        listener.seen.filter((p) => p.includes('rolled-back') || p.includes('from-sql')),
        [],
      );
      const [afterwards] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
      assert.equal(afterwards!.n, before!.n + 1, 'only the committed push');
      await h.db.sql`DELETE FROM docket.jobs WHERE queue = 'committed-after'`;
    } finally {
      await listener.stop();
    }
  });

  test('options: named notation, run_at and delay (a later job announces its time), max_attempts, meta; NULL takes the default', async () => {
    const listener = await listenAll(h.db.url, h.app.channel);
    try {
      const [row] = await h.db.sql`
        SELECT docket.push_job(queue => 'sql-later', name => 'orders.confirm', args => '{"order": 7}',
                               delay => interval '1 hour', max_attempts => 4, meta => '{"tenant": "t1"}')::text AS id,
               (extract(epoch FROM now() + interval '1 hour') * 1000)::bigint::text AS expected_ms,
               floor(extract(epoch FROM now() + interval '1 hour') * 1000)::bigint::text AS expected_floor_ms`;
      const job = await h.app.getJob(row!.id as string);
      assert.equal(job.maxAttempts, 4);
      assert.deepEqual(job.meta, { tenant: 't1' });
      assert.equal(job.scheduledAt.getTime(), Number(row!.expected_floor_ms), 'an hour after the transaction began');
      await listener.next((p) => p === `t:sql-later@${row!.expected_ms}`);

      const at = new Date(Date.now() + 86_400_000);
      const [atRow] = await h.db
        .sql`SELECT docket.push_job('sql-later', 'orders.confirm', '{}', NULL, ${at.toISOString()}::timestamptz, NULL, NULL, NULL)::text AS id`;
      const atJob = await h.app.getJob(atRow!.id as string);
      assert.equal(atJob.scheduledAt.getTime(), at.getTime());
      assert.equal(atJob.priority, 0);
      assert.equal(atJob.maxAttempts, 1);
      assert.deepEqual(atJob.meta, {});
    } finally {
      await listener.stop();
    }
  });

  describe('bad arguments raise an error that says what to pass, and insert nothing', () => {
    const cases: Array<[string, string, RegExp, RegExp]> = [
      ['queue with a space', `SELECT docket.push_job('bad queue', 'orders.confirm')`, /invalid queue name 'bad queue'/, /1-128 letters/],
      ['NULL queue', `SELECT docket.push_job(NULL, 'orders.confirm')`, /invalid queue name NULL/, /1-128 letters/],
      ['job name too long', `SELECT docket.push_job('q', repeat('n', 201))`, /invalid job name/, /1-200 letters/],
      ['job name with a quote', `SELECT docket.push_job('q', 'x''; drop')`, /invalid job name 'x''; drop'/, /1-200 letters/],
      ['NULL args', `SELECT docket.push_job('q', 'n', NULL)`, /args is NULL/, /'\{\}' for none/],
      ['priority out of range', `SELECT docket.push_job('q', 'n', priority => 1000001)`, /priority 1000001 is out of range/, /-1000000 to 1000000/],
      ['max_attempts 0', `SELECT docket.push_job('q', 'n', max_attempts => 0)`, /max_attempts 0 is out of range/, /1 to 1000000/],
      ['run_at and delay', `SELECT docket.push_job('q', 'n', run_at => now(), delay => interval '1 s')`, /both run_at and delay/, /not both/],
      ['run_at infinity', `SELECT docket.push_job('q', 'n', run_at => 'infinity')`, /run_at infinity is not a finite time/, /real time/],
      ['negative delay', `SELECT docket.push_job('q', 'n', delay => interval '-1 minute')`, /delay .* is negative/, /0 or more/],
      ['meta an array', `SELECT docket.push_job('q', 'n', meta => '[1]')`, /meta must be a JSON object, got array/, /jsonb object/],
    ];
    for (const [label, statement, message, hint] of cases) {
      test(label, async () => {
        const [before] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
        await assert.rejects(h.db.sql.unsafe(statement), (e: unknown) => {
          const error = e as { message: string; hint?: string; code?: string };
          assert.match(error.message, message);
          assert.match(error.hint ?? '', hint);
          assert.match(error.code ?? '', /^(22023|22004)$/);
          return true;
        });
        const [afterwards] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
        assert.equal(afterwards!.n, before!.n);
      });
    }
  });

  test('names are checked by the same rules as assertQueueName and assertJobName', async () => {
    const candidates = [
      'default',
      'emails.high',
      'a:b-c_d',
      'x/y',
      'with space',
      '',
      'é',
      'q'.repeat(128),
      'q'.repeat(129),
      'n'.repeat(200),
      'n'.repeat(201),
      "o'k",
      'tab\t',
    ];
    const tsAccepts = (check: (v: string) => unknown, value: string) => {
      try {
        check(value);
        return true;
      } catch {
        return false;
      }
    };
    /** Whether the function accepts the call (tried in a transaction that is then undone). */
    const sqlAccepts = (statement: string, value: string) =>
      h.db.sql
        .begin(async (tx) => {
          await tx.unsafe(statement, [value]);
          throw new Error('undo');
        })
        .catch((e: Error) => e.message === 'undo');
    for (const value of candidates) {
      assert.equal(await sqlAccepts(`SELECT docket.push_job($1, 'n')`, value), tsAccepts(assertQueueName, value), `queue ${JSON.stringify(value)}`);
      assert.equal(await sqlAccepts(`SELECT docket.push_job('q', $1)`, value), tsAccepts(assertJobName, value), `job name ${JSON.stringify(value)}`);
    }
  });
});
