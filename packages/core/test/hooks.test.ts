import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  Docket,
  DocketError,
  type DocketEvent,
  type DocketPlugin,
  defineJob,
  type InsertedJob,
  type JobContext,
  type JobInsert,
  type PeriodicEvents,
  periodicBinding,
  periodicTask,
  pluginBinding,
  type RunningJob,
  type SettledJob,
  type Settlement,
  Worker,
} from '@docket/core';
import { createTestDatabase, waitFor } from '@docket/testing';
import postgres from 'postgres';

declare module '@docket/core' {
  interface DocketEventMap extends PeriodicEvents<'test-ticker'> {
    'test.ping': { n: number };
  }
}

import { createHooks } from '../src/hooks.js';
import { type Harness, harness } from './helpers.js';

declare module '@docket/core' {
  interface JobContextExtensions {
    greeting: string;
  }
}

describe('plugin registration', () => {
  const plugin = (name: string, extra: Partial<DocketPlugin> = {}): DocketPlugin => ({ name, apply() {}, ...extra });
  const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;

  test('rejects values that are not plugins, duplicates and missing dependencies', () => {
    const url = 'postgres://nobody@127.0.0.1:1/none';
    assert.throws(() => new Docket({ connection: url, plugins: [(() => {}) as never] }), code('DOCKET_PLUGIN_INVALID'));
    assert.throws(() => new Docket({ connection: url, plugins: [plugin('a'), plugin('a')] }), code('DOCKET_PLUGIN_INVALID'));
    assert.throws(
      () => new Docket({ connection: url, plugins: [plugin('needs-b', { dependencies: ['b'] })] }),
      (e: unknown) => code('DOCKET_PLUGIN_INVALID')(e) && /needs plugin 'b'/.test((e as Error).message),
    );
    const app = new Docket({ connection: url, plugins: [plugin('b'), plugin('needs-b', { dependencies: ['b'] })] });
    assert.ok(Object.isFrozen(app.hooks));
    assert.equal(
      'promise' in app.hooks.beforePush && typeof (app.hooks.beforePush as { promise?: unknown }).promise,
      'function',
      'the runtime object is a tapable hook',
    );
    void app.close();
  });
});

describe('hooks carry plugins end to end', () => {
  const events: DocketEvent[] = [];
  const settled: SettledJob[] = [];
  const log: string[] = [];
  let leaderAnswers = 0;

  // A plugin exercising every hook the way real plugins do.
  const PLUGIN = 'test-everything';
  const everything: DocketPlugin = {
    name: PLUGIN,
    migrations: [
      { version: 1, name: 'audit table', up: ({ schema }) => `CREATE TABLE ${schema}.test_audit (job_id bigint, what text)` },
      { version: 2, name: 'job column', up: ({ schema }) => `ALTER TABLE ${schema}.jobs ADD COLUMN test_tag text` },
    ],
    apply(app) {
      app.defineJobColumn({ name: 'test_tag', type: 'text' });
      app.defineJobOption('test.tag');
      app.defineJobOption('test.explode');
      app.hooks.beforePush.tapPromise(PLUGIN, async (rows) => {
        for (const row of rows) {
          row.meta = { ...row.meta, stamped: true };
          row.columns.test_tag = (row.extensions['test.tag'] as string | undefined) ?? null;
          if (row.extensions['test.explode']) throw new Error('refused by plugin');
        }
        return rows;
      });
      app.hooks.afterPush.tapPromise(PLUGIN, async (jobs, ctx) => {
        for (const job of jobs) await ctx.sql.unsafe(`INSERT INTO ${app.schema}.test_audit VALUES ($1, 'pushed')`, [job.id]);
      });
      app.hooks.jobContext.tap(PLUGIN, (ctx: JobContext) => {
        (ctx as { greeting?: string }).greeting = `hi from ${PLUGIN}`;
      });
      app.hooks.jobStart.tapPromise(PLUGIN, async (ctx) => void log.push(`start ${ctx.job.name}`));
      app.hooks.settle.tapPromise(PLUGIN, async (settlements, ctx) => {
        for (const s of settlements) {
          await ctx.sql.unsafe(`INSERT INTO ${app.schema}.test_audit VALUES ($1, $2)`, [s.job.id, s.outcome.state]);
          // Hold jobs marked `hold` open; release them when a `release` job completes.
          if (s.job.meta.hold && s.ctx && s.outcome.state === 'succeeded') s.outcome = { state: 'waiting', result: s.outcome.result };
          if (s.job.name === 'releaser' && s.outcome.state === 'succeeded') {
            const target = String((s.job.args as { target: string }).target);
            await app.releaseWaitingJobs(ctx, [{ id: target, state: 'succeeded', result: 'released' }]);
          }
        }
        return settlements;
      });
      app.hooks.afterSettle.tapPromise(PLUGIN, async (jobs) => void settled.push(...jobs));
      app.hooks.resolvePrimary.tapPromise(PLUGIN, async () => {
        leaderAnswers++;
        return { primary: true, term: '7' };
      });
      app.hooks.event.tapPromise(PLUGIN, async (event) => void events.push(event));
    },
  };

  const greet = defineJob({ name: 'greet', queue: 'hooks' }, async (_: void, ctx) => ctx.greeting);
  const held = defineJob({ name: 'held', queue: 'hooks', meta: { hold: true } }, async () => 'handler result');
  const releaser = defineJob({ name: 'releaser', queue: 'hooks' }, async (_: { target: string }) => 'ok');

  let h: Awaited<ReturnType<typeof harness>>;
  let ticks: ReturnType<typeof periodicTask<string | null>>;
  before(async () => {
    h = await harness({ plugins: [everything] });
  });
  after(() => h.close());

  test('plugin migrations are recorded under the plugin’s name', async () => {
    const rows = await h.db.sql`SELECT owner, version FROM docket.migrations ORDER BY owner, version`;
    assert.deepEqual(
      rows.map((r) => `${r.owner}@${r.version}`),
      ['core@1', 'core@2', 'core@3', 'core@4', 'core@5', `${PLUGIN}@1`, `${PLUGIN}@2`],
    );
    assert.deepEqual(await h.app.migrate(), [], 'migrate is idempotent');
  });

  test('beforePush transforms rows, extra columns are stored, afterPush writes in the push transaction', async () => {
    const ref = await h.app.push(greet.with('test.tag', 'blue'));
    const job = await h.app.getJob(ref);
    assert.deepEqual(job.meta, { stamped: true });
    const [row] = await h.db.sql`SELECT test_tag FROM docket.jobs WHERE id = ${ref.id}`;
    assert.equal(row!.test_tag, 'blue');
    const audit = await h.db.sql`SELECT what FROM docket.test_audit WHERE job_id = ${ref.id}`;
    assert.deepEqual(
      audit.map((a) => a.what),
      ['pushed'],
    );
    await h.app.cancelJob(ref);
  });

  test('a throwing plugin is named with its hook, and the push inserts nothing', async () => {
    const [before] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
    await assert.rejects(h.app.pushMany([greet, greet.with('test.explode', true)]), (e: unknown) => {
      assert.ok(e instanceof DocketError);
      assert.equal(e.code, 'DOCKET_PLUGIN_FAILED');
      assert.equal(e.details.plugin, PLUGIN);
      assert.equal(e.details.hook, 'beforePush');
      assert.match(e.message, /refused by plugin/);
      return true;
    });
    const [afterRows] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
    assert.equal(afterRows!.n, before!.n);
  });

  test('context extensions, jobStart, settle (hold and release), afterSettle, primary role and periodic tasks', async () => {
    ticks = periodicTask(h.app, { name: 'test-ticker', intervalMs: 10, run: async ({ primary }) => primary.term });
    const worker = await h.worker({ jobs: [greet, held, releaser], queues: { hooks: {} }, maintenanceIntervalMs: 20 });
    const g = await h.app.waitForJob(await h.app.push(greet), { timeoutMs: 10_000 });
    assert.equal(g.result, `hi from ${PLUGIN}`);
    assert.ok(log.includes('start greet'));

    const heldRef = await h.app.push(held);
    await waitFor(async () => (await h.app.getJob(heldRef)).state === 'waiting', { timeoutMs: 10_000, message: 'held job waiting' });
    assert.equal((await h.app.getJob(heldRef)).result, 'handler result');
    await h.app.waitForJob(await h.app.push(releaser.withArgs({ target: heldRef.id })), { timeoutMs: 10_000 });
    const released = await h.app.waitForJob(heldRef, { timeoutMs: 10_000 });
    assert.equal(released.state, 'succeeded');
    assert.equal(released.result, 'released');
    await waitFor(() => settled.some((s) => s.job.id === heldRef.id && s.outcome.state === 'succeeded'), { message: 'afterSettle saw the release' });

    assert.equal(await ticks.nextRun({ timeoutMs: 5_000 }), '7', 'a primaryOnly run gets the answer it was decided on');
    assert.ok(leaderAnswers >= 1);
    assert.equal(worker.primary.term, '7');
    await waitFor(() => events.some((e) => e.type === 'test-ticker.finished' && e.source === 'test-ticker'), { message: 'periodic events' });
    const audit = await h.db.sql`SELECT what FROM docket.test_audit WHERE job_id = ${heldRef.id} ORDER BY what`;
    assert.deepEqual(audit.map((a) => a.what).sort(), ['pushed', 'succeeded', 'succeeded']);
  });
});

test('periodicBinding: one plugin value serves one app, and refuses to be used before it is applied', async () => {
  const h = await harness();
  const other = new Docket({ connection: h.db.url, logger: false });
  try {
    const binding = periodicBinding<number>('ticker', { name: 'test-binding', intervalMs: 1000, run: async () => 1 });
    assert.throws(
      () => binding.bound(),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_PLUGIN_INVALID' && /not registered with an app yet/.test(e.message),
    );
    binding.apply(h.app);
    assert.equal(binding.bound().app, h.app);
    assert.equal(binding.bound().task.name, 'test-binding');
    assert.throws(
      () => binding.apply(other),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_PLUGIN_INVALID' && /call ticker\(\) again/.test(e.message),
    );
    assert.equal(binding.bound().app, h.app, 'still bound to the first app');
  } finally {
    await other.close();
    await h.close();
  }
});

test('pluginBinding: a plugin value serves one app, and its methods refuse to run before it is registered', async () => {
  const url = 'postgres://nobody@127.0.0.1:1/none';
  const first = new Docket({ connection: url, logger: false });
  const second = new Docket({ connection: url, logger: false });
  try {
    const binding = pluginBinding('test-bound', 'testBound');
    assert.equal(binding.current, null);
    assert.throws(
      () => binding.app('lookup'),
      (e: unknown) =>
        e instanceof DocketError &&
        e.code === 'DOCKET_PLUGIN_INVALID' &&
        /test-bound\.lookup\(\): the plugin is not registered with an app yet/.test(e.message) &&
        e.details.reason === 'not-registered',
    );
    binding.bind(first);
    assert.equal(binding.app('lookup'), first);
    assert.equal(binding.current, first);
    assert.throws(
      () => binding.bind(second),
      (e: unknown) =>
        e instanceof DocketError &&
        e.code === 'DOCKET_PLUGIN_INVALID' &&
        /call testBound\(\) again/.test(e.message) &&
        e.details.reason === 'second-app',
    );
    assert.throws(
      () => binding.bind(first),
      /one plugin value serves one app/,
      'applying twice to one app is refused too (it would tap every hook twice)',
    );
    assert.equal(binding.app(), first, 'still bound to the first app');
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

describe('a plugin-added unique index resolved through resolvePushConflicts', () => {
  // The shape plugin-unique builds on: a column, a partial unique index, and conflict resolution.
  const PLUGIN = 'test-unique';
  const unique: DocketPlugin = {
    name: PLUGIN,
    migrations: [
      {
        version: 1,
        name: 'key column',
        up: ({ schema }) => `ALTER TABLE ${schema}.jobs ADD COLUMN test_key text;
          CREATE UNIQUE INDEX test_key_idx ON ${schema}.jobs (test_key) WHERE test_key IS NOT NULL AND state IN ('pending', 'running')`,
      },
    ],
    apply(app) {
      app.defineJobColumn({ name: 'test_key', type: 'text' });
      app.defineJobOption('key');
      app.hooks.beforePush.tapPromise(PLUGIN, async (rows) => {
        for (const row of rows) row.columns.test_key = row.extensions.key ?? null;
        return rows;
      });
      app.hooks.resolvePushConflicts.tapPromise(PLUGIN, async (conflicts) => {
        for (const [i, { row }] of conflicts.skipped.entries()) {
          const [hit] = await conflicts.sql.unsafe(
            `SELECT id::text AS id FROM ${app.schema}.jobs WHERE test_key = $1 AND state IN ('pending', 'running')`,
            [row.columns.test_key as string],
          );
          conflicts.resolved[i] = hit?.id;
        }
      });
    },
  };
  const job = defineJob({ name: 'keyed', queue: 'keyed' }, async () => 1);

  test('duplicates inside one batch and across pushes name the existing job', async () => {
    const h = await harness({ plugins: [unique] });
    try {
      const refs = await h.app.pushMany([job.with('key', 'k1'), job.with('key', 'k1'), job.with('key', 'k2')]);
      assert.deepEqual(
        refs.map((r) => r.duplicate),
        [false, true, false],
      );
      assert.equal(refs[1]!.id, refs[0]!.id);
      const again = await h.app.push(job.with('key', 'k2'));
      assert.equal(again.duplicate, true);
      assert.equal(again.id, refs[2]!.id);
      const allSkipped = await h.app.pushMany([job.with('key', 'k1'), job.with('key', 'k2')]);
      assert.deepEqual(
        allSkipped.map((r) => [r.id, r.duplicate]),
        [
          [refs[0]!.id, true],
          [refs[2]!.id, true],
        ],
        'a batch of duplicates only',
      );
    } finally {
      await h.close();
    }
  });
});

test('migrations: concurrent migrate() from many apps applies each migration once; a newer schema is refused', async () => {
  const db = await createTestDatabase({ template: false });
  const apps = Array.from({ length: 6 }, () => new Docket({ connection: db.url, logger: false }));
  try {
    const results = await Promise.all(apps.map((a) => a.migrate()));
    assert.deepEqual(
      results
        .flat()
        .map((m) => `${m.owner}@${m.version}`)
        .sort(),
      ['core@1', 'core@2', 'core@3', 'core@4', 'core@5'],
      'each core migration applied exactly once',
    );
    await db.sql`INSERT INTO docket.migrations (owner, version, name) VALUES ('core', 999, 'from the future')`;
    await assert.rejects(apps[0]!.migrate(), (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_SCHEMA_TOO_NEW');
    const worker = new Worker(apps[0]!, { jobs: [], queues: { default: {} } });
    await assert.rejects(worker.start(), (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_SCHEMA_TOO_NEW');
  } finally {
    await Promise.all(apps.map((a) => a.close()));
    await db.drop();
  }
});

test('a failing migration rolls back and applies nothing', async () => {
  const db = await createTestDatabase({ template: false });
  const broken: DocketPlugin = { name: 'broken', migrations: [{ version: 1, name: 'bad sql', up: () => 'CREATE TABLE oops (' }], apply() {} };
  const app = new Docket({ connection: db.url, logger: false, plugins: [broken] });
  try {
    await assert.rejects(
      app.migrate(),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_MIGRATION_FAILED' && /broken@1/.test((e as Error).message),
    );
    const [{ exists }] = await db.sql`SELECT to_regclass('docket.jobs') IS NOT NULL AS exists`;
    assert.equal(exists, false, 'the core migration in the same run was rolled back too');
  } finally {
    await app.close();
    await db.drop();
  }
});

test('beforePush may answer a row with an existing job (duplicateOf); deleteJobs fires jobsDeleted in its transaction', async () => {
  const deletedSeen: string[][] = [];
  const plugin: DocketPlugin = {
    name: 'test-dedupe',
    apply(app) {
      app.defineJobOption('sameAs');
      app.hooks.beforePush.tapPromise('test-dedupe', async (rows) => {
        for (const row of rows) if (typeof row.extensions.sameAs === 'string') row.duplicateOf = row.extensions.sameAs;
        return rows;
      });
      app.hooks.jobsDeleted.tapPromise('test-dedupe', async ({ ids, sql }) => {
        const [{ inTx }] = await sql`SELECT now() = statement_timestamp() AS "inTx"`;
        assert.equal(inTx, false, 'runs inside the delete transaction');
        deletedSeen.push([...ids]);
      });
    },
  };
  const job = defineJob({ name: 'dedupe', queue: 'dedupe' }, async () => 'done');
  const h = await harness({ plugins: [plugin] });
  try {
    const first = await h.app.push(job);
    const refs = await h.app.pushMany([job, job.with('sameAs', first.id), job]);
    assert.deepEqual(
      refs.map((r) => r.duplicate),
      [false, true, false],
    );
    assert.equal(refs[1]!.id, first.id);
    const [{ n }] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
    assert.equal(n, 3);

    const worker = await h.worker({ jobs: [job], queues: { dedupe: {} } });
    await h.app.waitForJob(first, { timeoutMs: 10_000 });
    await worker.stop();
    const pending = await h.app.push(job.withDelay(60_000));
    const deleted = await h.app.deleteJobs([first.id, pending.id]);
    assert.deepEqual(deleted, [first.id], 'only finished jobs are deleted');
    assert.deepEqual(deletedSeen, [[first.id]]);
    assert.equal((await h.app.getJob(pending)).state, 'pending');
  } finally {
    await h.close();
  }
});

test('settleJobs: a plugin ends a running job outside its attempt; settle observes it in the transaction, afterSettle and waitForJob follow the commit', async () => {
  const seen: Array<{ id: string; state: string; ctx: boolean; inTx: boolean }> = [];
  const after: SettledJob[] = [];
  const plugin: DocketPlugin = {
    name: 'test-ender',
    apply(app) {
      app.hooks.settle.tapPromise('test-ender', async (settlements, ctx) => {
        const [{ inTx }] = await ctx.sql`SELECT now() <> statement_timestamp() AS "inTx"`;
        for (const s of settlements) seen.push({ id: s.job.id, state: s.outcome.state, ctx: s.ctx !== null, inTx });
        return settlements;
      });
      app.hooks.afterSettle.tap('test-ender', (settled) => void after.push(...settled));
    },
  };
  const job = defineJob({ name: 'orphan', queue: 'ender' }, async () => 'never runs here');
  const h = await harness({ plugins: [plugin] });
  try {
    const [a, b] = await h.app.pushMany([job, job]);
    // Both claimed by a worker that is gone (no worker runs in this test).
    await h.db.sql`UPDATE docket.jobs SET state = 'running', attempt = 1, worker_id = 'gone', started_at = now()`;
    const waiting = h.app.waitForJob(a!, { timeoutMs: 10_000 });
    const ended = await h.app.settleJobs(async (tx) => {
      const rows = await tx.unsafe(
        `UPDATE docket.jobs SET state = 'failed', finished_at = now(),
           errors = errors || jsonb_build_array(jsonb_build_object('attempt', attempt, 'name', 'Gone', 'message', 'worker gone', 'at', now()))
         WHERE id = $1 AND state = 'running' AND worker_id = 'gone' RETURNING id::text AS id`,
        [a!.id],
      );
      return [...rows.map((r) => r.id as string), b!.id]; // b is still running: not settled
    });
    assert.deepEqual(ended, [a!.id]);
    assert.equal((await waiting).state, 'failed');
    assert.deepEqual(seen, [{ id: a!.id, state: 'failed', ctx: false, inTx: true }]);
    await waitFor(() => after.length === 1, { message: 'afterSettle after commit' });
    assert.equal(after[0]!.outcome.state, 'failed');
    assert.equal(after[0]!.outcome.state === 'failed' && after[0]!.outcome.error.message, 'worker gone');
    assert.equal((await h.app.getJob(b!)).state, 'running');

    // A write that throws rolls back and fires nothing.
    await assert.rejects(
      h.app.settleJobs(async (tx) => {
        await tx.unsafe(`UPDATE docket.jobs SET state = 'cancelled', finished_at = now() WHERE id = $1`, [b!.id]);
        throw new Error('changed my mind');
      }),
      /changed my mind/,
    );
    assert.equal((await h.app.getJob(b!)).state, 'running');
    assert.equal(seen.length, 1);
  } finally {
    await h.close();
  }
});

test('a job option no installed plugin reads is refused, and nothing is inserted', async () => {
  const h = await harness();
  try {
    const job = defineJob({ name: 'optioned', queue: 'opts' }, async () => 1);
    await assert.rejects(
      h.app.pushMany([job, job.with('unique.key', { key: 'k' })]),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_INVALID_JOB_OPTION' && /no installed plugin reads it/.test((e as Error).message),
    );
    const [{ n }] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs`;
    assert.equal(n, 0);
  } finally {
    await h.close();
  }
});

describe('every hook fires with its arguments', () => {
  // A plugin that taps every hook of the bus generically (by the hook's kind, read from its
  // constructor), records each call's arguments, and lets the test wait for a call. Its one
  // specific job is to give resolvePushConflicts something to resolve: a unique key column.
  const PLUGIN = 'test-recorder';
  const calls = new Map<string, unknown[][]>();
  // biome-ignore lint/suspicious/noExplicitAny: every hook passes different arguments; each test reads them as the hook it waits for declares them.
  type HookArgs = any[];
  const waiting: Array<{ hook: string; match: (args: HookArgs) => boolean; resolve: (args: HookArgs) => void }> = [];
  const record = (hook: string, args: unknown[]) => {
    calls.set(hook, [...(calls.get(hook) ?? []), args]);
    for (const w of waiting.filter((w) => w.hook === hook && w.match(args))) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve(args);
    }
  };
  /** The first call of `hook` (already made or to come) whose arguments pass `match`. */
  const fired = (hook: string, match: (args: HookArgs) => boolean = () => true, timeoutMs = 10_000): Promise<HookArgs> => {
    const past = calls.get(hook)?.find(match);
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hook '${hook}' did not fire (with matching arguments) within ${timeoutMs} ms`)), timeoutMs);
      waiting.push({
        hook,
        match,
        resolve: (args) => {
          clearTimeout(timer);
          resolve(args);
        },
      });
    });
  };

  /** What the recorder uses of a hook of any kind (its class name tells the kind). */
  interface TappableHook {
    tap(name: string, fn: (...args: unknown[]) => unknown): void;
    tapPromise(name: string, fn: (...args: unknown[]) => Promise<unknown>): void;
  }

  const recorder: DocketPlugin = {
    name: PLUGIN,
    migrations: [
      {
        version: 1,
        name: 'key column',
        up: ({ schema }) => `ALTER TABLE ${schema}.jobs ADD COLUMN rec_key text;
          CREATE UNIQUE INDEX rec_key_idx ON ${schema}.jobs (rec_key) WHERE rec_key IS NOT NULL AND state IN ('pending', 'running')`,
      },
    ],
    apply(app) {
      for (const [name, hook] of Object.entries(app.hooks) as unknown as Array<[string, TappableHook]>) {
        const kind: string = hook.constructor.name;
        // A waterfall passes its value on; every other kind (a bail above all) answers nothing.
        const answer = (args: unknown[]) => (kind.includes('Waterfall') ? args[0] : undefined);
        if (kind.startsWith('Sync')) {
          hook.tap(PLUGIN, (...args: unknown[]) => {
            record(name, args);
            return answer(args);
          });
        } else {
          hook.tapPromise(PLUGIN, async (...args: unknown[]) => {
            record(name, args);
            return answer(args);
          });
        }
      }
      app.defineJobColumn({ name: 'rec_key', type: 'text' });
      app.defineJobOption('rec.key');
      app.hooks.beforePush.tapPromise(`${PLUGIN}-key`, async (rows) => {
        for (const row of rows) row.columns.rec_key = row.extensions['rec.key'] ?? null;
        return rows;
      });
      app.hooks.resolvePushConflicts.tapPromise(`${PLUGIN}-key`, async ({ sql, skipped, resolved }) => {
        for (const [i, { row }] of skipped.entries()) {
          const [hit] = await sql.unsafe(`SELECT id::text AS id FROM ${app.schema}.jobs WHERE rec_key = $1 AND state IN ('pending', 'running')`, [
            row.columns.rec_key as string,
          ]);
          resolved[i] = hit?.id;
        }
      });
    },
  };
  const job = defineJob({ name: 'recorded', queue: 'recorded' }, async ({ n }: { n: number }) => n * 2);

  let h: Harness;
  let worker: Worker;
  let ref: { id: string };
  before(async () => {
    h = await harness({ plugins: [recorder] });
  });
  after(() => h.close());

  test('afterMigrate: (ctx) with the app, its pool and what was applied', async () => {
    const [ctx] = await fired('afterMigrate');
    assert.equal(ctx.app, h.app);
    assert.equal(ctx.sql, h.app.sql);
    assert.deepEqual(
      ctx.applied.map((m: { owner: string; version: number }) => `${m.owner}@${m.version}`),
      [`${PLUGIN}@1`],
    );
  });

  test('beforePush, afterPush: (rows | jobs, ctx) in the push transaction; pushCommitted: (jobs) after the commit', async () => {
    ref = await h.app.push(job.withArgs({ n: 21 }).with('rec.key', 'k1'));
    const [rows, before] = await fired('beforePush', ([rows]) => rows.some((r: JobInsert) => r.columns.rec_key === 'k1'));
    assert.deepEqual(
      rows.map((r: JobInsert) => [r.name, r.queue, r.args]),
      [['recorded', 'recorded', { n: 21 }]],
    );
    assert.equal(before.app, h.app);
    assert.equal(before.callerTransaction, false);
    const [jobs, afterCtx] = await fired('afterPush', ([jobs]) => jobs[0]?.id === ref.id);
    assert.deepEqual(
      jobs.map((j: InsertedJob) => [j.id, j.name, j.queue, j.index]),
      [[ref.id, 'recorded', 'recorded', 0]],
    );
    assert.ok(jobs[0].scheduledAt instanceof Date);
    assert.equal(afterCtx.sql, before.sql, 'the same transaction as beforePush');
    const [committed] = await fired('pushCommitted', ([jobs]) => jobs[0]?.id === ref.id);
    assert.deepEqual(
      committed.map((j: InsertedJob) => j.id),
      [ref.id],
    );
    const [visible] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE id = ${ref.id}`;
    assert.equal(visible!.n, 1, 'committed: visible to another session');
  });

  test('resolvePushConflicts: (conflicts) with the rows a plugin index skipped', async () => {
    const again = await h.app.push(job.withArgs({ n: 1 }).with('rec.key', 'k1'));
    assert.deepEqual([again.id, again.duplicate], [ref.id, true]);
    const [conflicts] = await fired('resolvePushConflicts');
    assert.deepEqual(
      conflicts.skipped.map((s: { index: number; row: JobInsert }) => [s.index, s.row.columns.rec_key]),
      [[0, 'k1']],
    );
    assert.deepEqual(conflicts.resolved, [ref.id]);
  });

  test('workerStarted, resolvePrimary, maintenance, jobsFetched, jobContext, jobStart, settle, afterSettle: a worker runs the job', async () => {
    worker = await h.worker({ jobs: [job], queues: { recorded: {} }, maintenanceIntervalMs: 20 });
    const [started] = await fired('workerStarted');
    assert.equal(started, worker.view, 'hooks see the worker’s narrow view');
    assert.equal(started.id, worker.id);
    assert.deepEqual(started.queueNames, ['recorded']);
    assert.equal('runners' in started || 'completer' in started, false, 'not the Worker class with its internals');
    const [query] = await fired('resolvePrimary', ([q]) => q.workerId === worker.id);
    assert.equal(query.app, h.app);
    assert.ok(query.signal instanceof AbortSignal);
    const [maintenance] = await fired('maintenance', ([m]) => m.worker === worker.view);
    assert.equal(maintenance.app, h.app);
    assert.deepEqual(maintenance.primary, { primary: true, term: null }, 'no tap answered resolvePrimary');
    assert.ok(maintenance.signal instanceof AbortSignal && maintenance.tick >= 1);

    const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(done.result, 42);
    // The recorder's claim taps declare no `wants`, so they shape every claim of the queue.
    const [claimed, claimCtx] = await fired('afterClaim', ([c]) => c.some((x: { job: RunningJob }) => x.job.id === ref.id));
    assert.deepEqual(claimed.find((x: { job: RunningJob }) => x.job.id === ref.id).columns, { rec_key: 'k1' });
    const [beforeCtx] = await fired('beforeClaim', ([c]) => c === claimCtx);
    assert.deepEqual([beforeCtx.queue, beforeCtx.workerId, beforeCtx.app], ['recorded', worker.id, h.app]);
    assert.ok(beforeCtx.limit >= 1 && typeof beforeCtx.sql.unsafe === 'function');
    const [fetched, fetchedBy] = await fired('jobsFetched', ([jobs]) => jobs.some((j: RunningJob) => j.id === ref.id));
    assert.equal(fetchedBy, worker.view);
    const running = fetched.find((j: RunningJob) => j.id === ref.id);
    assert.deepEqual([running.name, running.args, running.attempt, running.workerId], ['recorded', { n: 21 }, 1, worker.id]);
    const [ctx, contextWorker] = await fired('jobContext', ([c]) => c.job.id === ref.id);
    assert.equal(contextWorker, worker.view);
    assert.equal(ctx.app, h.app);
    assert.equal(ctx.workerId, worker.id);
    const [startCtx] = await fired('jobStart', ([c]) => c.job.id === ref.id);
    assert.equal(startCtx, ctx, 'jobStart gets the context jobContext built');
    const [settlements, settleCtx] = await fired('settle', ([s]) => s.some((x: Settlement) => x.job.id === ref.id));
    const settlement = settlements.find((s: Settlement) => s.job.id === ref.id);
    assert.deepEqual(settlement.outcome, { state: 'succeeded', result: 42 });
    assert.equal(settlement.ctx, ctx);
    assert.equal(settleCtx.app, h.app);
    assert.equal(settleCtx.workerId, worker.id);
    assert.equal(typeof settleCtx.afterCommit, 'function');
    const [settled] = await fired('afterSettle', ([s]) => s.some((x: SettledJob) => x.job.id === ref.id));
    const after = settled.find((s: SettledJob) => s.job.id === ref.id);
    assert.deepEqual(after.outcome, { state: 'succeeded', result: 42 });
    assert.ok(after.finishedAt instanceof Date);
  });

  test('event: (event) for app.emit; jobsDeleted: ({ sql, ids }) for app.deleteJobs; workerStopping: (worker)', async () => {
    h.app.emit(PLUGIN, 'test.ping', { n: 1 });
    const [event] = await fired('event', ([e]) => e.type === 'test.ping');
    assert.deepEqual([event.source, event.payload], [PLUGIN, { n: 1 }]);
    assert.ok(event.at instanceof Date);

    assert.deepEqual(await h.app.deleteJobs([ref.id]), [ref.id]);
    const [deleted] = await fired('jobsDeleted');
    assert.deepEqual(deleted.ids, [ref.id]);
    assert.equal(typeof deleted.sql.unsafe, 'function');

    await worker.stop();
    const [stopping] = await fired('workerStopping');
    assert.equal(stopping, worker.view);
  });

  test('every hook on the bus fired in these tests', () => {
    const silent = Object.keys(h.app.hooks).filter((hook) => !calls.has(hook));
    assert.deepEqual(silent, [], 'a hook nobody proves fires; add a step that fires it (and check its arguments) above');
  });
});

test('pushCommitted fires when it is the only push hook tapped (the push is one statement, committed when it returns)', async () => {
  const committed: InsertedJob[][] = [];
  let seen!: () => void;
  let timer: NodeJS.Timeout | undefined;
  const fired = new Promise<void>((resolve, reject) => {
    seen = resolve;
    timer = setTimeout(() => reject(new Error('pushCommitted did not fire within 10 s')), 10_000);
  }).finally(() => clearTimeout(timer));
  const plugin: DocketPlugin = {
    name: 'test-committed',
    apply(app) {
      app.hooks.pushCommitted.tap('test-committed', (jobs) => {
        committed.push(jobs);
        seen();
      });
    },
  };
  const h = await harness({ plugins: [plugin] });
  try {
    const job = defineJob({ name: 'committed', queue: 'committed' }, async () => 1);
    const refs = await h.app.pushMany([job, job]);
    await fired;
    assert.deepEqual(
      committed.map((jobs) => jobs.map((j) => j.id)),
      [refs.map((r) => r.id)],
    );
    assert.ok(
      committed[0]!.every((j) => j.scheduledAt instanceof Date),
      'with the times it needs',
    );
  } finally {
    await h.close();
  }
});

test('docs/ARCHITECTURE.md’s hook table names every hook of the bus, and no other, with its kind', () => {
  const doc = readFileSync(new URL('../../../docs/ARCHITECTURE.md', import.meta.url), 'utf8');
  const lines = doc.split('\n');
  const header = lines.findIndex((line) => /^\| hook \| kind \|/.test(line));
  assert.ok(header >= 0, 'the hook table starts with | hook | kind |');
  const table: string[] = [];
  for (let i = header + 2; i < lines.length && lines[i]!.startsWith('|'); i++) table.push(lines[i]!);
  const documented = Object.fromEntries(
    table.map((row) => {
      const m = /^\| `(\w+)` \| (\w+) \|/.exec(row);
      assert.ok(m, `a hook row reads | \`name\` | Kind | …: ${row}`);
      return [m[1]!, `${m[2]}Hook`];
    }),
  );
  const hooks = createHooks() as unknown as Record<string, { constructor: { name: string } }>;
  const actual = Object.fromEntries(Object.keys(hooks).map((name) => [name, hooks[name]!.constructor.name]));
  assert.deepEqual(documented, actual);
});

test('a jobStart tap with `wants` is called only for the jobs it wants', async () => {
  const seen: string[] = [];
  const picky: DocketPlugin = {
    name: 'test-picky',
    apply(app) {
      app.hooks.jobStart.tapPromise({ name: 'test-picky', wants: (job) => job.name === 'wanted' }, async (ctx) => void seen.push(ctx.job.name));
    },
  };
  const h = await harness({ plugins: [picky] });
  try {
    const wantedJob = defineJob({ name: 'wanted', queue: 'picky' }, async () => 1);
    const other = defineJob({ name: 'other', queue: 'picky' }, async () => 2);
    await h.worker({ jobs: [wantedJob, other], queues: { picky: {} } });
    const refs = await h.app.pushMany([other, wantedJob, other]);
    for (const ref of refs) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 10_000 })).state, 'succeeded');
    assert.deepEqual(seen, ['wanted']);
  } finally {
    await h.close();
  }
});

test('a beforePush tap with `wants` is called only for pushes with a row it wants; other pushes stay one statement', async () => {
  const db = await createTestDatabase();
  // Every statement the app sends, to see whether a push opened a transaction.
  const statements: string[] = [];
  const sql = postgres(db.url, { max: 2, onnotice: () => {}, debug: (_connection, query) => void statements.push(query.trim().toLowerCase()) });
  const calls: string[][] = [];
  const picky: DocketPlugin = {
    name: 'test-picky-push',
    migrations: [{ version: 1, name: 'mark column', up: ({ schema }) => `ALTER TABLE ${schema}.jobs ADD COLUMN mark text` }],
    apply(app) {
      app.defineJobColumn({ name: 'mark', type: 'text' });
      app.hooks.beforePush.tapPromise({ name: 'test-picky-push', wants: (row) => row.queue === 'marked' }, async (rows, ctx) => {
        calls.push(rows.map((row) => row.queue));
        assert.notEqual(ctx.sql, sql, 'called in the push transaction');
        for (const row of rows) if (row.queue === 'marked') row.columns.mark = 'seen';
        return rows;
      });
    },
  };
  const app = new Docket({ connection: sql, logger: false, plugins: [picky] });
  try {
    await app.migrate();
    const plain = defineJob({ name: 'plain', queue: 'plain' }, async () => 1);
    const marked = defineJob({ name: 'marked', queue: 'marked' }, async () => 1);

    statements.length = 0;
    await app.pushMany([plain, plain]);
    assert.deepEqual(calls, [], 'not called for a push it wants no row of');
    assert.ok(!statements.includes('begin'), `one statement, no transaction: ${statements.join(' | ')}`);

    statements.length = 0;
    await app.pushMany([plain, marked]);
    assert.deepEqual(calls, [['plain', 'marked']], 'called once, with every row of the push');
    assert.ok(statements.includes('begin'), 'the push it serves runs in a transaction');
    const rows = await db.sql`SELECT queue, mark FROM docket.jobs ORDER BY id`;
    assert.deepEqual(
      rows.map((r) => [r.queue, r.mark]),
      [
        ['plain', null],
        ['plain', null],
        ['plain', null],
        ['marked', 'seen'],
      ],
    );
  } finally {
    await app.close();
    await sql.end({ timeout: 5 });
    await db.drop();
  }
});

test('push taps with `transaction: false` keep the push one statement: they get the pool, and afterPush sees the row committed', async () => {
  const seen: Array<{ hook: string; pool: boolean; visible?: number }> = [];
  const counting: DocketPlugin = {
    name: 'test-no-tx',
    apply(app) {
      app.hooks.beforePush.tapPromise({ name: 'test-no-tx', transaction: false }, async (rows, ctx) => {
        seen.push({ hook: 'beforePush', pool: ctx.sql === app.sql });
        return rows.map((row) => ({ ...row, meta: { ...row.meta, stamped: true } }));
      });
      app.hooks.afterPush.tapPromise({ name: 'test-no-tx', transaction: false }, async (jobs, ctx) => {
        // Another connection of the pool sees the row only if the push already committed.
        const [{ n }] = await app.sql.unsafe(`SELECT count(*)::int AS n FROM ${app.schema}.jobs WHERE id = $1`, [jobs[0]!.id]);
        seen.push({ hook: 'afterPush', pool: ctx.sql === app.sql, visible: n });
      });
    },
  };
  const h = await harness({ plugins: [counting] });
  try {
    const job = defineJob({ name: 'stamped', queue: 'no-tx' }, async () => {});
    const ref = await h.app.push(job);
    assert.deepEqual(seen, [
      { hook: 'beforePush', pool: true },
      { hook: 'afterPush', pool: true, visible: 1 },
    ]);
    assert.equal((await h.app.getJob(ref)).meta.stamped, true, 'the tap changed the row');
  } finally {
    await h.close();
  }
  // One tap without the option: the push opens a transaction again, for every tap.
  seen.length = 0;
  const writer: DocketPlugin = { name: 'test-writer', apply: (app) => app.hooks.afterPush.tapPromise('test-writer', async () => {}) };
  const h2 = await harness({ plugins: [counting, writer] });
  try {
    await h2.app.push(defineJob({ name: 'stamped', queue: 'no-tx' }, async () => {}));
    assert.deepEqual(seen, [
      { hook: 'beforePush', pool: false },
      { hook: 'afterPush', pool: false, visible: 0 },
    ]);
  } finally {
    await h2.close();
  }
});

test('wrapAttempt: taps wrap the handler run of the jobs they want; the handler runs inside the wrapper, its error passes through as it is', async () => {
  const { AsyncLocalStorage } = await import('node:async_hooks');
  const store = new AsyncLocalStorage<string>();
  const wrapped: string[] = [];
  const outcomes: string[] = [];
  const tracer: DocketPlugin = {
    name: 'test-wrap',
    apply(app) {
      app.hooks.wrapAttempt.tap({ name: 'test-wrap', wants: (job) => job.queue === 'wrapped' }, (run, ctx) => async () => {
        wrapped.push(ctx.job.name);
        try {
          const result = await store.run(`in ${ctx.job.name}`, run);
          outcomes.push(`ok ${JSON.stringify(result)}`);
          return result;
        } catch (error) {
          outcomes.push(`threw ${(error as Error).message}`);
          throw error;
        }
      });
    },
  };
  const h = await harness({ plugins: [tracer] });
  try {
    const seesStore = defineJob({ name: 'sees-store', queue: 'wrapped' }, async () => store.getStore() ?? 'none');
    const fails = defineJob({ name: 'fails', queue: 'wrapped', maxAttempts: 1 }, async () => {
      throw new TypeError('handler broke');
    });
    const plain = defineJob({ name: 'plain', queue: 'unwrapped' }, async () => store.getStore() ?? 'none');
    await h.worker({ jobs: [seesStore, fails, plain], queues: { wrapped: {}, unwrapped: {} } });
    const [a, b, c] = await Promise.all([h.app.push(seesStore), h.app.push(fails), h.app.push(plain)]);
    const done = await Promise.all([a, b, c].map((ref) => h.app.waitForJob(ref, { timeoutMs: 10_000 })));
    assert.equal(done[0]!.result, 'in sees-store', 'the handler ran inside the wrapper');
    assert.equal(done[1]!.state, 'failed');
    assert.equal(done[1]!.errors[0]!.name, 'TypeError', 'the handler error is stored as it is, not as a plugin failure');
    assert.equal(done[2]!.result, 'none', 'a job no tap wants runs unwrapped');
    assert.deepEqual(wrapped.sort(), ['fails', 'sees-store']);
    assert.deepEqual(outcomes.sort(), ['ok "in sees-store"', 'threw handler broke']);
  } finally {
    await h.close();
  }
});
