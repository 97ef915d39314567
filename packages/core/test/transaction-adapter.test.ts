/**
 * push(job, { tx }) with a TransactionAdapter: a transaction the core does not own, here a
 * postgres.js reserved connection driven by BEGIN/COMMIT (the adapters for other libraries are in
 * @docket/tx, tested there with each library). What the core promises whatever the library: the
 * push commits or rolls back with the caller's transaction, idle workers are woken on commit
 * only, push-time taps run through a facade, and a failed push leaves the transaction either
 * untouched (refused before anything was sent) or aborted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Docket, type DocketError, defineJob, isDocketError, type TransactionAdapter } from '@docket/core';
import postgres from 'postgres';
import { type Harness, harness } from './helpers.js';

const echo = defineJob({ name: 'adapter.echo', queue: 'adapted' }, async (args: { n: number }) => args.n * 2);

/** A caller's transaction on its own connection, with the adapter a library package would give. */
async function foreignTransaction(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql`BEGIN`;
  const statements: string[] = [];
  const adapter: TransactionAdapter = {
    async query(text, params) {
      statements.push(text);
      return sql.unsafe(text, params as string[]);
    },
  };
  return {
    adapter,
    statements,
    sql,
    commit: () => sql`COMMIT`,
    rollback: () => sql`ROLLBACK`,
    end: () => sql.end(),
  };
}

/** Every notification on the app's channel, in arrival order, until `stop`. */
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
    /** Resolves when a notification matching `match` arrives (or has arrived). */
    next(match: (payload: string) => boolean): Promise<void> {
      if (seen.some(match)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
    stop: () => sql.end(),
  };
}

describe('push in a transaction through a TransactionAdapter', () => {
  let h: Harness;
  before(async () => (h = await harness()));
  after(() => h.close());

  test('commit: the job is invisible until the commit, then a worker that only a notification can wake runs it', async () => {
    await h.worker({ jobs: [echo], queues: { adapted: { pollIntervalMs: 60_000 } } });
    const tx = await foreignTransaction(h.db.url);
    try {
      const ref = await h.app.push(echo.withArgs({ n: 21 }), { tx: tx.adapter });
      assert.equal(ref.duplicate, false);
      const [outside] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE id = ${ref.id}`;
      assert.equal(outside!.n, 0, 'invisible outside the transaction');
      await tx.commit();
      const job = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
      assert.equal(job.state, 'succeeded');
      assert.equal(job.result, 42);
    } finally {
      await tx.end();
    }
  });

  test('rollback: no row and no wake-up, while a later committed push is announced', async () => {
    const listener = await listenAll(h.db.url, h.app.channel);
    const rolled = await foreignTransaction(h.db.url);
    const committed = await foreignTransaction(h.db.url);
    try {
      const refs = await h.app.pushMany([echo.withArgs({ n: 1 }).withQueue('rolled-back'), echo.withArgs({ n: 2 }).withQueue('rolled-back')], {
        tx: rolled.adapter,
      });
      await rolled.rollback();
      await h.app.push(echo.withArgs({ n: 3 }).withQueue('committed-later'), { tx: committed.adapter });
      await committed.commit();
      // Notifications are delivered in commit order: had the rolled-back push sent one, it would be here first.
      await listener.next((p) => p === 'p:committed-later');
      assert.deepEqual(
        listener.seen.filter((p) => p.includes('rolled-back')),
        [],
      );
      const rows = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE id = ANY(${refs.map((r) => r.id)}::bigint[])`;
      assert.equal(rows[0]!.n, 0);
    } finally {
      await Promise.all([rolled.end(), committed.end(), listener.stop()]);
    }
  });

  test('a push refused before anything is sent leaves the transaction as it was', async () => {
    const tx = await foreignTransaction(h.db.url);
    try {
      await tx.sql`CREATE TEMP TABLE kept (v int) ON COMMIT DROP`;
      await tx.sql`INSERT INTO kept VALUES (1)`;
      await assert.rejects(h.app.push(echo.withArgs({ n: 1n } as never), { tx: tx.adapter }), (e: unknown) =>
        isDocketError(e, 'DOCKET_ARGS_NOT_SERIALIZABLE'),
      );
      await assert.rejects(h.app.push(echo.withArgs({ n: 1 }).with('no.plugin.reads.this', true), { tx: tx.adapter }), (e: unknown) =>
        isDocketError(e, 'DOCKET_INVALID_JOB_OPTION'),
      );
      assert.deepEqual(tx.statements, [], 'nothing was sent');
      const [row] = await tx.sql`SELECT count(*)::int AS n FROM kept`;
      assert.equal(row!.n, 1, 'the transaction is usable');
      await tx.commit();
    } finally {
      await tx.end();
    }
  });

  test('a database error is DOCKET_PUSH_TX_ABORTED with its SQLSTATE, and the transaction is aborted', async () => {
    const tx = await foreignTransaction(h.db.url);
    try {
      // The caller's own statement timeout fires inside the push's insert.
      await tx.sql`LOCK TABLE docket.jobs IN ACCESS EXCLUSIVE MODE`;
      const blocker = await foreignTransaction(h.db.url);
      try {
        await blocker.sql`SET LOCAL lock_timeout = '50ms'`;
        await assert.rejects(h.app.push(echo.withArgs({ n: 1 }), { tx: blocker.adapter }), (e: unknown) => {
          assert.ok(isDocketError(e, 'DOCKET_PUSH_TX_ABORTED'), String(e));
          assert.equal(e.details.sqlstate, '55P03');
          assert.match(e.message, /roll it back/);
          return true;
        });
        await assert.rejects(blocker.sql`SELECT 1`, /current transaction is aborted/);
        await blocker.rollback();
      } finally {
        await blocker.end();
      }
      await tx.rollback();
    } finally {
      await tx.end();
    }
  });

  test('an adapter that answers something other than rows (a raw driver result) is refused; the transaction is aborted', async () => {
    const tx = await foreignTransaction(h.db.url);
    try {
      const wrong: TransactionAdapter = { query: async (text, params) => ({ rows: await tx.sql.unsafe(text, params as string[]) }) as never };
      await assert.rejects(h.app.push(echo.withArgs({ n: 1 }), { tx: wrong }), (e: unknown) => {
        assert.ok(isDocketError(e, 'DOCKET_PUSH_TX_ABORTED'));
        assert.ok(isDocketError(e.cause, 'DOCKET_INVALID_OPTION'));
        assert.match((e.cause as Error).message, /array of rows/);
        return true;
      });
      await assert.rejects(tx.sql`SELECT 1`, /current transaction is aborted/);
      await tx.rollback();
    } finally {
      await tx.end();
    }
  });

  test("a library's own transaction object passed as `tx` is refused before anything is sent, naming its adapter", async () => {
    const pgLike = { query: async () => ({ rows: [] }), release() {} };
    const prismaLike = { $queryRawUnsafe: async () => [] };
    const knexLike = Object.assign(() => {}, { raw: () => {}, transaction: () => {} });
    for (const [tx, hint] of [
      [pgLike, /pgTransaction\(client\)/],
      [prismaLike, /prismaTransaction\(tx\)/],
      [knexLike, /knexTransaction\(trx\)/],
      [{}, /TransactionAdapter/],
      ['postgres://x', /TransactionAdapter/],
    ] as const) {
      await assert.rejects(h.app.push(echo.withArgs({ n: 1 }), { tx: tx as never }), (e: unknown) => {
        assert.ok(isDocketError(e, 'DOCKET_INVALID_OPTION'));
        assert.match((e as Error).message, hint);
        return true;
      });
    }
  });
});

describe('push-time taps in a foreign transaction', () => {
  let app: Docket;
  let h: Harness;
  const seen: Array<{ adapter: boolean; clock: unknown; big: unknown }> = [];
  let misuse: 'none' | 'helper' | 'fragment' | 'throw' = 'none';

  before(async () => {
    h = await harness();
    await h.db.sql`CREATE TABLE pushed_log (job_id bigint PRIMARY KEY, queue text NOT NULL)`;
    app = new Docket({
      connection: h.db.url,
      logger: false,
      plugins: [
        {
          name: 'tap-probe',
          apply(a) {
            a.hooks.beforePush.tapPromise('tap-probe', async (rows, ctx) => {
              // The tagged template with plain values, and int8 read back as a string.
              const [row] = await ctx.sql`SELECT ${'x'}::text AS clock, ${41}::bigint + 1 AS big`;
              seen.push({ adapter: ctx.adapter !== null, clock: row?.clock, big: row?.big });
              if (misuse === 'helper') await ctx.sql`SELECT * FROM ${ctx.sql('pushed_log')}`;
              if (misuse === 'fragment') await ctx.sql`SELECT 1 ${ctx.sql`WHERE true`}`;
              return rows;
            });
            a.hooks.afterPush.tapPromise('tap-probe', async (jobs, ctx) => {
              await ctx.sql.unsafe('INSERT INTO pushed_log (job_id, queue) SELECT * FROM unnest($1::bigint[], $2::text[])', [
                jobs.map((j) => j.id),
                jobs.map((j) => j.queue),
              ]);
              if (misuse === 'throw') throw new Error('the tap failed after the insert');
            });
          },
        },
      ],
    });
  });
  after(async () => {
    await app.close();
    await h.close();
  });

  test('taps run through the facade: their writes commit with the push', async () => {
    misuse = 'none';
    const tx = await foreignTransaction(h.db.url);
    try {
      const refs = await app.pushMany([echo.withArgs({ n: 1 }), echo.withArgs({ n: 2 })], { tx: tx.adapter });
      await tx.commit();
      assert.deepEqual(seen.at(-1), { adapter: true, clock: 'x', big: '42' });
      const logged = await h.db.sql`SELECT job_id::text AS id FROM pushed_log ORDER BY job_id`;
      assert.deepEqual(
        logged.map((r) => r.id),
        refs.map((r) => r.id),
      );
    } finally {
      await tx.end();
    }
  });

  test('a postgres.js-only helper or fragment is DOCKET_TX_UNSUPPORTED (inside the abort)', async () => {
    for (const kind of ['helper', 'fragment'] as const) {
      misuse = kind;
      const tx = await foreignTransaction(h.db.url);
      try {
        await assert.rejects(app.push(echo.withArgs({ n: 1 }), { tx: tx.adapter }), (e: unknown) => {
          assert.ok(isDocketError(e, 'DOCKET_PUSH_TX_ABORTED'), String(e));
          const plugin = e.cause as DocketError;
          assert.ok(isDocketError(plugin, 'DOCKET_PLUGIN_FAILED'));
          assert.ok(isDocketError(plugin.cause, 'DOCKET_TX_UNSUPPORTED'));
          return true;
        });
        await tx.rollback();
      } finally {
        await tx.end();
      }
    }
  });

  test('a tap failing after the insert aborts the transaction: committing it keeps nothing', async () => {
    misuse = 'throw';
    for (const viaPostgresJs of [false, true]) {
      const [before] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
      const tx = await foreignTransaction(h.db.url);
      try {
        await assert.rejects(app.push(echo.withArgs({ n: 1 }), { tx: viaPostgresJs ? tx.sql : tx.adapter }), (e: unknown) => {
          assert.ok(isDocketError(e, 'DOCKET_PUSH_TX_ABORTED'), String(e));
          assert.equal(e.details.causeCode, 'DOCKET_PLUGIN_FAILED');
          return true;
        });
        await assert.rejects(tx.sql`SELECT 1`, /current transaction is aborted/);
        await tx.commit(); // PostgreSQL turns it into a rollback
        const [afterwards] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
        assert.equal(afterwards!.n, before!.n, `nothing kept (${viaPostgresJs ? 'postgres.js' : 'adapter'})`);
      } finally {
        await tx.end();
      }
    }
    misuse = 'none';
  });
});
