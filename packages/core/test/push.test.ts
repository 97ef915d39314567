import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, defineJob, isDocketError } from '@docket/core';
import postgres from 'postgres';
import { type Harness, harness } from './helpers.js';

const greet = defineJob({ name: 'greet', queue: 'default' }, async ({ name }: { name: string }) => `Hello, ${name}!`);

function assertCode(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof DocketError, `expected a DocketError, got ${error}`);
    assert.equal(error.code, code);
    assert.ok(error.message.length > 20, 'the message says what to do');
    return true;
  };
}

describe('push', () => {
  let h: Harness;
  before(async () => (h = await harness()));
  after(() => h.close());

  test('a job is still a plain function', async () => {
    assert.equal(await greet({ name: 'x' }), 'Hello, x!');
  });

  test('push stores the job with its options; builders are immutable', async () => {
    const base = greet.withArgs({ name: 'W' });
    const high = base.withPriority(10).withMaxAttempts(4).withMeta({ tenant: 't1' }).withQueue('other');
    assert.equal(base.options.priority, 0, 'builders return new invocations');
    const ref = await h.app.push(high);
    assert.equal(ref.duplicate, false);
    const job = await h.app.getJob(ref);
    assert.equal(job.state, 'pending');
    assert.deepEqual(job.args, { name: 'W' });
    assert.equal(job.priority, 10);
    assert.equal(job.maxAttempts, 4);
    assert.equal(job.queue, 'other');
    assert.deepEqual(job.meta, { tenant: 't1' });
  });

  test('default args are merged under pushed args', async () => {
    const job = defineJob({ name: 'defaults', args: { a: 1, b: 2 } }, async (args: { a: number; b: number }) => args.a + args.b);
    const ref = await h.app.push(job.withArgs({ b: 5 })); // keys with defaults are optional
    assert.deepEqual((await h.app.getJob(ref)).args, { a: 1, b: 5 });
    const ref2 = await h.app.push(job);
    assert.deepEqual((await h.app.getJob(ref2)).args, { a: 1, b: 2 });
  });

  test('arguments are JSON: undefined in an array is refused, an undefined property is left out, a Date (refused by the types) arrives as its ISO string', async () => {
    const anyArgs = defineJob({ name: 'any-args' }, async (args: unknown) => args);
    const [before] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
    await assert.rejects(h.app.push(anyArgs.withArgs({ list: [1, undefined, 3] })), (error: unknown) => {
      assertCode('DOCKET_ARGS_NOT_SERIALIZABLE')(error);
      assert.match((error as Error).message, /\$\.list\[1\] is undefined/);
      return true;
    });
    await assert.rejects(h.app.push(anyArgs.withArgs({ deep: { list: [undefined] } })), assertCode('DOCKET_ARGS_NOT_SERIALIZABLE'));
    const [afterRefused] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
    assert.equal(afterRefused!.n, before!.n, 'nothing inserted');

    const optional = await h.app.push(anyArgs.withArgs({ name: 'a', note: undefined }));
    assert.deepEqual((await h.app.getJob(optional)).args, { name: 'a' });
    const at = new Date('2024-05-06T07:08:09.010Z');
    const dated = await h.app.push(anyArgs.withArgs({ at }));
    assert.deepEqual((await h.app.getJob(dated)).args, { at: '2024-05-06T07:08:09.010Z' });
  });

  test('a plugin factory passed uncalled is refused, naming the fix', () => {
    const factory = () => ({ name: 'mine', apply: () => {} });
    assert.throws(
      () => new Docket({ connection: h.db.url, plugins: [factory as never] }),
      (error: unknown) => {
        assertCode('DOCKET_PLUGIN_INVALID')(error);
        assert.match((error as Error).message, /Did you forget to call the plugin factory/);
        return true;
      },
    );
  });

  test('withDelay and withScheduledAt set the run time on the database clock', async () => {
    const [{ now }] = await h.db.sql`SELECT now() AS now`;
    const delayed = await h.app.getJob(await h.app.push(greet.withArgs({ name: 'd' }).withDelay(60_000)));
    assert.ok(delayed.scheduledAt.getTime() >= now.getTime() + 59_000);
    const at = new Date(Date.now() + 3_600_000);
    const scheduled = await h.app.getJob(await h.app.push(greet.withArgs({ name: 's' }).withScheduledAt(at)));
    assert.equal(scheduled.scheduledAt.getTime(), at.getTime());
  });

  test('pushMany of 10,000 jobs is one statement and keeps the order of refs', async () => {
    let statements = 0;
    // Count statements Docket sends (postgres.js also fetches array types once per connection, and
    // a new app checks once that no pooler stands between it and the server: pooler-check.ts).
    const once = (query: string) => query.includes('pg_catalog') || query.includes('pg_backend_pid()');
    const counted = postgres(h.db.url, { max: 2, debug: (_c, query) => void (once(query) || statements++), onnotice: () => {} });
    const app = new Docket({ connection: counted, logger: false });
    try {
      const jobs = Array.from({ length: 10_000 }, (_, i) => greet.withArgs({ name: `n${i}` }));
      const refs = await app.pushMany(jobs);
      assert.equal(statements, 1);
      assert.equal(refs.length, 10_000);
      const first = await app.getJob<{ name: string }>(refs[0]!);
      const last = await app.getJob<{ name: string }>(refs[9_999]!);
      assert.equal(first.args.name, 'n0');
      assert.equal(last.args.name, 'n9999');
      assert.ok(BigInt(refs[0]!.id) < BigInt(refs[9_999]!.id));
    } finally {
      await app.close();
      await counted.end();
    }
  });

  test('push inside a committed transaction is visible after commit', async () => {
    let id = '';
    await h.app.sql.begin(async (tx) => {
      id = (await h.app.push(greet.withArgs({ name: 'tx' }), { tx })).id;
      const outside = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE id = ${id}`;
      assert.equal(outside[0]!.n, 0, 'invisible until commit');
    });
    assert.equal((await h.app.getJob(id)).state, 'pending');
  });

  test('push inside a rolled-back transaction leaves no row', async () => {
    const before = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
    await assert.rejects(
      h.app.sql.begin(async (tx) => {
        await h.app.pushMany([greet.withArgs({ name: 'r1' }), greet.withArgs({ name: 'r2' })], { tx });
        throw new Error('roll back');
      }),
      /roll back/,
    );
    const afterRows = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
    assert.equal(afterRows[0]!.n, before[0]!.n);
  });

  describe('bad input is a DocketError and inserts nothing', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const cases: Array<[string, () => Promise<unknown>, string]> = [
      ['BigInt argument', () => h.app.push(greet.withArgs({ name: 1n } as never)), 'DOCKET_ARGS_NOT_SERIALIZABLE'],
      ['function argument', () => h.app.push(greet.withArgs({ name: () => 1 } as never)), 'DOCKET_ARGS_NOT_SERIALIZABLE'],
      ['cyclic argument', () => h.app.push(greet.withArgs(cyclic as never)), 'DOCKET_ARGS_NOT_SERIALIZABLE'],
      [
        'one bad job in a batch',
        () => h.app.pushMany([greet.withArgs({ name: 'ok' }), greet.withArgs({ name: 2n } as never)]),
        'DOCKET_ARGS_NOT_SERIALIZABLE',
      ],
      [
        'queue name with invalid characters',
        async () => h.app.push(greet.withArgs({ name: 'q' }).withQueue('bad queue; drop')),
        'DOCKET_INVALID_QUEUE_NAME',
      ],
      ['negative delay', async () => h.app.push(greet.withArgs({ name: 'q' }).withDelay(-5)), 'DOCKET_INVALID_JOB_OPTION'],
      ['fractional priority', async () => h.app.push(greet.withArgs({ name: 'q' }).withPriority(1.5)), 'DOCKET_INVALID_JOB_OPTION'],
      ['invalid date', async () => h.app.push(greet.withArgs({ name: 'q' }).withScheduledAt(new Date('nope'))), 'DOCKET_INVALID_JOB_OPTION'],
      ['not a job', () => h.app.push({ name: 'x' } as never), 'DOCKET_INVALID_JOB_OPTION'],
      ['unknown push option', () => h.app.push(greet.withArgs({ name: 'q' }), { txn: 1 } as never), 'DOCKET_INVALID_OPTION'],
    ];
    for (const [label, run, code] of cases) {
      test(label, async () => {
        const [before] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
        await assert.rejects(run(), assertCode(code));
        const [afterRows] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
        assert.equal(afterRows!.n, before!.n);
      });
    }

    test('invalid schema name', () => {
      assert.throws(() => new Docket({ connection: h.db.url, schema: 'docket"; drop table x; --' }), assertCode('DOCKET_INVALID_SCHEMA'));
    });

    test('unknown option gets a suggestion', () => {
      assert.throws(
        () => new Docket({ connection: h.db.url, scheme: 'x' } as never),
        (error: unknown) => isDocketError(error, 'DOCKET_INVALID_OPTION') && /did you mean `schema`/.test(error.message),
      );
    });

    test('invalid job definitions', () => {
      assert.throws(() => defineJob({ name: 'has space' }, async () => 1), assertCode('DOCKET_INVALID_JOB_NAME'));
      assert.throws(() => defineJob({ name: 'ok', maxAttempts: 0 }, async () => 1), assertCode('DOCKET_INVALID_JOB_OPTION'));
      assert.throws(() => defineJob({ name: 'ok', retries: 3 } as never, async () => 1), assertCode('DOCKET_INVALID_OPTION'));
    });
  });

  test('getJob of a missing id is DOCKET_JOB_NOT_FOUND', async () => {
    await assert.rejects(h.app.getJob('999999999'), assertCode('DOCKET_JOB_NOT_FOUND'));
  });
});
