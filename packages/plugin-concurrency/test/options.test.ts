/**
 * Bad input: every malformed option or key is a coded error raised before anything is stored.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, defineJob } from '@docket/core';
import { createTestDatabase, type TestDatabase } from '@docket/testing';
import postgres from 'postgres';
import { type ConcurrencyOptions, concurrency, MAX_KEY_LENGTH } from '../src/index.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof DocketError, `a DocketError, got ${error}`);
    return error.code;
  }
  assert.fail('expected a throw');
}

test('options: limits must be positive integers, keys known, at least one queue', () => {
  const bad: Array<[unknown, string]> = [
    [undefined, 'DOCKET_INVALID_OPTION'],
    [{}, 'DOCKET_INVALID_OPTION'],
    [{ queues: {} }, 'DOCKET_INVALID_OPTION'],
    [{ queues: [] }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: { max: -1 } } }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: { max: 0 } } }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: { max: 2.5 } } }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: { max: '4' } } }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: { max: Number.NaN } } }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: { keyLimit: -2 } } }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: { keyLimit: 1.5 } } }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: {} }, keyLimit: 0 }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: {} }, keyLimit: null }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: { maxx: 4 } } }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: {} }, queue: {} }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { q: 4 } }, 'DOCKET_INVALID_OPTION'],
    [{ queues: { 'no spaces': {} } }, 'DOCKET_INVALID_QUEUE_NAME'],
  ];
  for (const [options, expected] of bad) {
    assert.equal(
      code(() => concurrency(options as ConcurrencyOptions)),
      expected,
      JSON.stringify(options) ?? 'undefined',
    );
  }
  const unknown = (() => {
    try {
      concurrency({ queues: { q: { maxx: 4 } as never } });
    } catch (error) {
      return (error as Error).message;
    }
  })();
  assert.match(unknown ?? '', /maxx/);
});

test('options: the default keyLimit applies to listed queues without their own; null turns it off', () => {
  const { settings } = concurrency({ keyLimit: 2, queues: { a: {}, b: { keyLimit: 5, max: 10 }, c: { keyLimit: null } } });
  assert.deepEqual({ ...settings.queues }, { a: { max: null, keyLimit: 2 }, b: { max: 10, keyLimit: 5 }, c: { max: null, keyLimit: null } });
});

test('withConcurrencyKey: a key that is not a non-empty string of at most 512 characters is refused by the builder', () => {
  const job = defineJob({ name: 'keyed', queue: 'lanes' }, async () => undefined);
  for (const key of [42, null, undefined, '', 'x'.repeat(MAX_KEY_LENGTH + 1), ['a'], { key: 'a' }]) {
    assert.equal(
      code(() => job.invocation().withConcurrencyKey(key as string)),
      'DOCKET_INVALID_JOB_OPTION',
      String(key),
    );
  }
  assert.doesNotThrow(() => job.invocation().withConcurrencyKey('x'.repeat(MAX_KEY_LENGTH)));
});

describe('pushes that would store a key that limits nothing, or a malformed one', () => {
  let db: TestDatabase;
  let app: Docket;
  const keyed = defineJob({ name: 'keyed', queue: 'lanes' }, async () => undefined);
  const stray = defineJob({ name: 'stray', queue: 'elsewhere' }, async () => undefined);
  before(async () => {
    db = await createTestDatabase();
    app = new Docket({ connection: db.url, logger: false, plugins: [concurrency({ queues: { lanes: { keyLimit: 1 } } })] });
    await app.migrate();
  });
  after(async () => {
    await app.close();
    await db.drop();
  });
  const stored = async () => (await db.sql`SELECT count(*)::int AS n FROM docket.jobs`)[0]!.n;

  test('a key on a queue the plugin does not govern: DOCKET_CONCURRENCY_QUEUE_NOT_CONFIGURED, and the whole batch is refused', async () => {
    await assert.rejects(
      app.pushMany([keyed.invocation().withConcurrencyKey('a'), stray.invocation().withConcurrencyKey('b')]),
      (error: DocketError) => {
        assert.equal(error.code, 'DOCKET_PLUGIN_FAILED');
        assert.equal((error.cause as DocketError).code, 'DOCKET_CONCURRENCY_QUEUE_NOT_CONFIGURED');
        assert.match((error.cause as Error).message, /queue 'elsewhere'/);
        return true;
      },
    );
    assert.equal(await stored(), 0);
  });

  test('a key set around the builder (with()) is validated at push: not a string is refused, nothing stored', async () => {
    await assert.rejects(app.push(keyed.invocation().with('concurrency.key', 42)), (error: DocketError) => {
      assert.equal(error.code, 'DOCKET_PLUGIN_FAILED');
      assert.equal((error.cause as DocketError).code, 'DOCKET_INVALID_JOB_OPTION');
      return true;
    });
    assert.equal(await stored(), 0);
  });

  test('a push without a key runs no tap of the plugin: one statement, no transaction, even to a governed queue', async () => {
    const statements: string[] = [];
    const sql = postgres(db.url, { max: 1, onnotice: () => {}, debug: (_c, query) => void statements.push(query.trim().toLowerCase()) });
    const other = new Docket({ connection: sql, logger: false, plugins: [concurrency({ queues: { lanes: { keyLimit: 1 } } })] });
    try {
      const before = await stored();
      statements.length = 0;
      const plain = await other.pushMany([keyed.invocation(), stray.invocation()]);
      assert.ok(!statements.includes('begin'), `one statement, no transaction: ${statements.join(' | ')}`);
      // A keyed row in the batch runs the tap (in the push's transaction), which stores the key.
      statements.length = 0;
      const mixed = await other.pushMany([stray.invocation(), keyed.invocation().withConcurrencyKey('k')]);
      const ref = mixed[1];
      assert.ok(statements.includes('begin'), statements.join(' | '));
      const [row] = await db.sql`SELECT concurrency_key FROM docket.jobs WHERE id = ${ref!.id}`;
      assert.equal(row!.concurrency_key, 'k');
      await db.sql`DELETE FROM docket.jobs WHERE id = ANY(${[...plain, ...mixed].map((r) => r.id)}::bigint[])`;
      assert.equal(await stored(), before);
    } finally {
      await other.close();
    }
  });

  test('a keyed push to a governed queue stores the key; an app without the plugin refuses the key', async () => {
    const ref = await app.push(keyed.invocation().withConcurrencyKey('tenant:42'));
    const [row] = await db.sql`SELECT concurrency_key FROM docket.jobs WHERE id = ${ref.id}`;
    assert.equal(row!.concurrency_key, 'tenant:42');
    const bare = new Docket({ connection: db.url, logger: false });
    try {
      await assert.rejects(
        bare.push(keyed.invocation().withConcurrencyKey('tenant:42')),
        (error: DocketError) => error.code === 'DOCKET_INVALID_JOB_OPTION',
      );
    } finally {
      await bare.close();
    }
    assert.equal(await stored(), 1);
  });
});
