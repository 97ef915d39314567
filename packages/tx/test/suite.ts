/**
 * The behaviour every adapter must show, run against one real library and a real PostgreSQL by
 * each `<library>.test.ts`: the job commits and rolls back with the user's own row, idle workers
 * wake on commit only, a unique-key push inside the transaction answers as it does outside, and a
 * failed push leaves the library's transaction aborted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Docket, defineJob, isDocketError, type TransactionAdapter, Worker, type WorkerOptions } from '@docket/core';
import { unique } from '@docket/plugin-unique';
import { type Harness, testHarness } from '@docket/testing';
import postgres from 'postgres';

/** One transaction of the library under test, as the test body sees it. */
export interface LibraryTransaction {
  readonly adapter: TransactionAdapter;
  /** Inserts a row into the user's table `orders` with the library's own API. */
  insertOrder(id: number): Promise<void>;
  /** Runs a statement with the library's own API (to show whether the transaction is still usable). */
  exec(text: string): Promise<unknown>;
}

export interface Library {
  /** Runs `body` in one of the library's transactions: commits when it resolves; rolls back and rejects with its error when it throws. */
  transaction<T>(body: (tx: LibraryTransaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const echo = defineJob({ name: 'tx.echo', queue: 'tx' }, async (args: { n: number; text?: string }) => args);

/** Notifications on `channel` in arrival order (they arrive in commit order). */
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

class Rollback extends Error {}

export function adapterSuite(name: string, open: (url: string) => Promise<Library>): void {
  describe(`push in a ${name} transaction`, () => {
    let h: Harness<Docket, Worker, WorkerOptions>;
    let lib: Library;
    const count = async (where: string) => {
      const [row] = await h.db.sql.unsafe(`SELECT count(*)::int AS n FROM ${where}`);
      return row!.n as number;
    };

    before(async () => {
      h = await testHarness({
        app: (url) => new Docket({ connection: url, logger: false, plugins: [unique()] }),
        worker: (app, options: WorkerOptions) => new Worker(app, options),
      });
      await h.db.sql.unsafe(`
        CREATE TABLE orders (id int PRIMARY KEY, total int NOT NULL DEFAULT 0);
        -- A database error for the push of a job named 'tx.refused' (an error PostgreSQL raises, with its SQLSTATE).
        CREATE FUNCTION refuse_job() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.name = 'tx.refused' THEN RAISE EXCEPTION 'refused by a trigger' USING ERRCODE = 'check_violation'; END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_job BEFORE INSERT ON docket.jobs FOR EACH ROW EXECUTE FUNCTION refuse_job();
      `);
      lib = await open(h.db.url);
      // A worker that only a notification can wake (it polls once a minute).
      await h.worker({ jobs: [echo], queues: { tx: { pollIntervalMs: 60_000 } } });
    });
    after(async () => {
      await lib?.close();
      await h?.close();
    });

    test('commit: the job and the row commit together, and a worker woken by the notification runs the job', async () => {
      const text = `it's "quoted" ? $1 \\ é`;
      const [one, many] = await lib.transaction(async (tx) => {
        await tx.insertOrder(1);
        const single = await h.app.push(echo.withArgs({ n: 1, text }), { tx: tx.adapter });
        const bulk = await h.app.pushMany([echo.withArgs({ n: 2 }), echo.withArgs({ n: 3 })], { tx: tx.adapter });
        assert.equal(await count(`docket.jobs WHERE id = ${single.id}`), 0, 'invisible outside until the commit');
        return [single, bulk] as const;
      });
      assert.equal(await count('orders WHERE id = 1'), 1);
      const jobs = await Promise.all([one, ...many].map((ref) => h.app.waitForJob(ref, { timeoutMs: 10_000 })));
      assert.deepEqual(
        jobs.map((j) => [j.state, j.result]),
        [
          ['succeeded', { n: 1, text }],
          ['succeeded', { n: 2 }],
          ['succeeded', { n: 3 }],
        ],
      );
    });

    test('rollback: no row, no job, no wake-up — while a later committed push does wake', async () => {
      const listener = await listenAll(h.db.url, h.app.channel);
      try {
        const before = await count('docket.jobs');
        await assert.rejects(
          lib.transaction(async (tx) => {
            await tx.insertOrder(2);
            await h.app.pushMany([echo.withArgs({ n: 4 }).withQueue('rolled-back'), echo.withArgs({ n: 5 }).withQueue('rolled-back')], {
              tx: tx.adapter,
            });
            throw new Rollback('undo');
          }),
          Rollback,
        );
        await lib.transaction((tx) => h.app.push(echo.withArgs({ n: 6 }).withQueue('committed-after'), { tx: tx.adapter }));
        await listener.next((p) => p === 'p:committed-after');
        assert.deepEqual(
          listener.seen.filter((p) => p.includes('rolled-back')),
          [],
          'nothing announced for the rolled-back push',
        );
        assert.equal(await count('orders WHERE id = 2'), 0);
        assert.equal(await count('docket.jobs'), before + 1, 'only the committed push');
      } finally {
        await listener.stop();
      }
    });

    test('unique keys inside the transaction answer as they do outside it', async () => {
      // The same pushes, outside (prefix "out") and inside (prefix "in") a transaction.
      const sequence = async (prefix: string, tx?: TransactionAdapter) => {
        const options = tx ? { tx } : {};
        // Queue 'held' has no worker: the jobs keep their keys while the test looks.
        const held = (n: number) => echo.withArgs({ n }).withQueue('held');
        const first = await h.app.push(held(1).withUniqueKey(`${prefix}:k`), options);
        const again = await h.app.push(held(2).withUniqueKey(`${prefix}:k`), options);
        const hour = 3_600_000;
        const throttled = await h.app.pushMany(
          [held(3).withUniqueKey(`${prefix}:t`, { throttleMs: hour }), held(4).withUniqueKey(`${prefix}:t`, { throttleMs: hour })],
          options,
        );
        const debounced = await h.app.push(held(5).withUniqueKey(`${prefix}:d`, { debounceMs: hour }), options);
        const debouncedAgain = await h.app.push(held(6).withUniqueKey(`${prefix}:d`, { debounceMs: hour }), options);
        return { first, again, throttled, debounced, debouncedAgain };
      };
      const outside = await sequence('out');
      const inside = await lib.transaction((tx) => sequence('in', tx.adapter));
      for (const refs of [outside, inside]) {
        assert.equal(refs.first.duplicate, false);
        assert.deepEqual([refs.again.duplicate, refs.again.id], [true, refs.first.id]);
        assert.deepEqual(
          refs.throttled.map((r) => r.duplicate),
          [false, true],
        );
        assert.equal(refs.throttled[1]!.id, refs.throttled[0]!.id);
        assert.deepEqual([refs.debouncedAgain.duplicate, refs.debouncedAgain.id], [true, refs.debounced.id]);
        assert.deepEqual((await h.app.getJob(refs.debounced)).args, { n: 6 }, 'the debounced job took the latest arguments');
      }
      // After the commit, a push outside meets the key the transaction took.
      const later = await h.app.push(echo.withArgs({ n: 7 }).withQueue('held').withUniqueKey('in:k'));
      assert.equal(later.id, (await h.app.getJob(inside.first)).id);
    });

    test('a failing push is DOCKET_PUSH_TX_ABORTED with the SQLSTATE, and leaves the transaction aborted: nothing is kept', async () => {
      const refused = defineJob({ name: 'tx.refused', queue: 'tx' }, async () => null);
      const before = await count('docket.jobs');
      await assert.rejects(
        lib.transaction(async (tx) => {
          await tx.insertOrder(3);
          await assert.rejects(h.app.push(refused.invocation(), { tx: tx.adapter }), (e: unknown) => {
            assert.ok(isDocketError(e, 'DOCKET_PUSH_TX_ABORTED'), String(e));
            assert.equal(e.details.sqlstate, '23514');
            assert.match(e.message, /refused by a trigger/);
            assert.doesNotMatch(e.message, /INSERT INTO/, "the library's copy of the statement and its values is not in the message");
            return true;
          });
          await assert.rejects(tx.exec('SELECT 1'), (e: unknown) => {
            // The library's own error, or the driver's as its cause (Drizzle, Prisma wrap it).
            const chain: unknown[] = [];
            for (let c = e; c instanceof Error && chain.length < 5; c = c.cause) chain.push(c);
            assert.ok(
              chain.some((c) => /current transaction is aborted/.test((c as Error).message) || (c as { code?: unknown }).code === '25P02'),
              `expected 25P02 (in failed SQL transaction), got ${String(e)}`,
            );
            return true;
          });
          throw new Rollback('as the error says');
        }),
        Rollback,
      );
      assert.equal(await count('orders WHERE id = 3'), 0);
      assert.equal(await count('docket.jobs'), before);
    });

    test('a push refused before it sends anything leaves the transaction usable', async () => {
      await lib.transaction(async (tx) => {
        await assert.rejects(h.app.push(echo.withArgs({ n: 1n } as never), { tx: tx.adapter }), (e: unknown) =>
          isDocketError(e, 'DOCKET_ARGS_NOT_SERIALIZABLE'),
        );
        await tx.insertOrder(4);
      });
      assert.equal(await count('orders WHERE id = 4'), 1);
    });
  });
}
