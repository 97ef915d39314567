import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Docket, type DocketPlugin, defineJob, isDocketError, Worker } from '@docket/core';
import { createTestDatabase, type TestDatabase } from '@docket/testing';
import { PLUGIN_NAME, type PrunerOptions, pruner } from '../src/index.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;

/** Inserts `n` jobs of `queue` in `state`, finished `agoMs` ago (1 ms apart, the last one newest). */
async function insert(db: TestDatabase, queue: string, state: string, n: number, agoMs: number) {
  const rows = await db.sql`
    INSERT INTO docket.jobs (queue, name, state, attempt, finished_at, worker_id)
    SELECT ${queue}, 'old', ${state}, 1,
      CASE WHEN ${state} IN ('succeeded', 'failed', 'cancelled') THEN now() - ${agoMs} * interval '1 millisecond' + g * interval '1 millisecond' END,
      CASE WHEN ${state} = 'running' THEN 'ghost' END
    FROM generate_series(1, ${n}) g RETURNING id::text AS id`;
  return rows.map((r) => r.id as string);
}

async function left(db: TestDatabase): Promise<Record<string, number>> {
  const rows = await db.sql`SELECT queue || ':' || state AS k, count(*)::int AS n FROM docket.jobs GROUP BY 1 ORDER BY 1`;
  return Object.fromEntries(rows.map((r) => [r.k, r.n]));
}

async function setup(options: PrunerOptions, extra: DocketPlugin[] = []) {
  const db = await createTestDatabase();
  const plugin = pruner(options);
  const app = new Docket({ connection: db.url, logger: false, plugins: [plugin, ...extra] });
  await app.migrate();
  return {
    db,
    app,
    plugin,
    async close() {
      await app.close();
      await db.drop();
    },
  };
}

test('options are validated: unknown keys with suggestions, ages, counts, queue names', () => {
  const plugin = pruner();
  assert.equal(plugin.name, PLUGIN_NAME);
  assert.deepEqual(plugin.settings.maxAgeMs, { succeeded: DAY, failed: 7 * DAY, cancelled: DAY });
  assert.equal(plugin.settings.batchSize, 1000);
  assert.equal(plugin.settings.keepNewest, null);
  const merged = pruner({
    maxAgeMs: { failed: null },
    queues: { emails: { maxAgeMs: 5 * MIN, keepNewest: 10 }, audit: { maxAgeMs: { succeeded: null } } },
  }).settings;
  assert.deepEqual(merged.maxAgeMs, { succeeded: DAY, failed: null, cancelled: DAY });
  assert.deepEqual(merged.queues, {
    emails: { maxAgeMs: { succeeded: 5 * MIN, failed: 5 * MIN, cancelled: 5 * MIN }, keepNewest: 10 },
    audit: { maxAgeMs: { succeeded: null } },
  });

  const invalid = (pattern: RegExp) => (e: unknown) => isDocketError(e, 'DOCKET_INVALID_OPTION') && pattern.test((e as Error).message);
  assert.throws(() => pruner({ batchsize: 10 } as never), invalid(/did you mean `batchSize`/));
  assert.throws(() => pruner({ maxAgeMs: { succeded: 1000 } as never }), invalid(/did you mean `succeeded`/));
  assert.throws(() => pruner({ maxAgeMs: -5 }), invalid(/maxAgeMs/));
  assert.throws(() => pruner({ maxAgeMs: '1d' as never }), invalid(/milliseconds, null \(keep forever\)/));
  assert.throws(() => pruner({ batchSize: 0 }), invalid(/batchSize/));
  assert.throws(() => pruner({ keepNewest: 1.5 }), invalid(/keepNewest/));
  assert.throws(() => pruner({ queues: { emails: { keepNewst: 5 } as never } }), invalid(/did you mean `keepNewest`/));
  assert.throws(() => pruner({ queues: [] as never }), invalid(/queues/));
  assert.throws(
    () => pruner({ queues: { 'bad queue!': {} } }),
    (e: unknown) => isDocketError(e, 'DOCKET_INVALID_QUEUE_NAME'),
  );
  assert.throws(
    () => plugin.runNow(),
    (e: unknown) => isDocketError(e, 'DOCKET_PLUGIN_INVALID'),
  );
});

test('ages per state and per queue, keep-newest caps; pending, running and waiting jobs are never touched', async () => {
  const h = await setup({
    batchSize: 7,
    maxAgeMs: { succeeded: 60 * MIN, failed: null, cancelled: 10 * MIN },
    queues: {
      short: { maxAgeMs: { succeeded: 5 * MIN } }, // failed: keep forever (top level), cancelled: 10 min
      forever: { maxAgeMs: null },
      capped: { maxAgeMs: null, keepNewest: 5 },
    },
    keepNewest: 30,
  });
  try {
    // default queue: 20 succeeded 2 h old (go), 20 succeeded 30 min old (stay), 20 failed 30 days old (stay), 20 cancelled 20 min (go)
    await insert(h.db, 'default', 'succeeded', 20, 120 * MIN);
    const young = await insert(h.db, 'default', 'succeeded', 20, 30 * MIN);
    await insert(h.db, 'default', 'failed', 20, 30 * DAY);
    await insert(h.db, 'default', 'cancelled', 20, 20 * MIN);
    // short: succeeded 10 min old go (5 min rule), failed stay
    await insert(h.db, 'short', 'succeeded', 15, 10 * MIN);
    await insert(h.db, 'short', 'failed', 3, 10 * DAY);
    // forever: nothing goes by age; it counts towards the top-level keepNewest cap (30)
    await insert(h.db, 'forever', 'succeeded', 10, 100 * DAY);
    // capped: keep the newest 5 of 12
    const capped = await insert(h.db, 'capped', 'succeeded', 12, 3 * DAY);
    // never touched, even with an (impossible) old finish time
    for (const state of ['pending', 'running', 'waiting']) {
      const ids = await insert(h.db, 'default', state, 10, 0);
      await h.db.sql`UPDATE docket.jobs SET finished_at = now() - interval '365 days' WHERE id = ANY(${ids}::bigint[])`;
    }

    const result = await h.plugin.runNow();
    // After the age rules: default keeps 20 young succeeded + 20 failed, short keeps 3 failed,
    // forever keeps 10 = 53 finished outside `capped`; the cap of 30 removes the 23 oldest of them.
    assert.deepEqual(result.byRule, { 'age:succeeded': 35, 'age:cancelled': 20, 'keep:capped': 7, 'keep:*': 23 });
    assert.equal(result.deleted, 85);
    assert.equal(result.truncated, false);
    assert.deepEqual(await left(h.db), {
      'capped:succeeded': 5,
      'default:failed': 7, // the cap took the oldest 23: forever's 10 (100 days), then 13 of default's failed (30 days)
      'default:pending': 10,
      'default:running': 10,
      'default:succeeded': 20,
      'default:waiting': 10,
      'short:failed': 3,
    });
    const [{ n }] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE id = ANY(${young}::bigint[])`;
    assert.equal(n, 20, 'the 20 newest of the default queue survive the cap');
    const keptCapped = await h.db.sql`SELECT id::text AS id FROM docket.jobs WHERE queue = 'capped' ORDER BY id`;
    assert.deepEqual(
      keptCapped.map((r) => r.id),
      capped.slice(-5),
      'keepNewest keeps the newest by finish time',
    );

    assert.deepEqual((await h.plugin.runNow()).byRule, {}, 'a second run finds nothing');
  } finally {
    await h.close();
  }
});

test('jobsDeleted fires in each batch transaction, so other plugins prune their rows with the jobs; batch size and maxBatchesPerRun bound the work', async () => {
  const batches: number[] = [];
  const side: DocketPlugin = {
    name: 'test-side-rows',
    migrations: [{ version: 1, name: 'side table', up: ({ schema }) => `CREATE TABLE ${schema}.test_side (job_id bigint PRIMARY KEY)` }],
    apply(app) {
      app.hooks.jobsDeleted.tapPromise('test-side-rows', async ({ sql, ids }) => {
        const [{ inTx }] = await sql`SELECT now() <> statement_timestamp() AS "inTx"`;
        assert.equal(inTx, true, 'inside the batch transaction');
        batches.push(ids.length);
        await sql.unsafe(`DELETE FROM ${app.schema}.test_side WHERE job_id = ANY($1::bigint[])`, [ids as string[]]);
      });
    },
  };
  const h = await setup({ batchSize: 40, maxBatchesPerRun: 3, maxAgeMs: MIN }, [side]);
  try {
    const ids = await insert(h.db, 'q', 'succeeded', 250, DAY);
    await h.db.sql`INSERT INTO docket.test_side SELECT unnest(${ids}::bigint[])`;
    const first = await h.plugin.runNow();
    assert.deepEqual({ deleted: first.deleted, batches: first.batches, truncated: first.truncated }, { deleted: 120, batches: 3, truncated: true });
    let total = first.deleted;
    for (let i = 0; i < 10 && total < 250; i++) total += (await h.plugin.runNow()).deleted;
    assert.equal(total, 250);
    assert.deepEqual(batches, [40, 40, 40, 40, 40, 40, 10]);
    const [{ side: remaining }] = await h.db.sql`SELECT count(*)::int AS side FROM docket.test_side`;
    assert.equal(remaining, 0, 'the side rows went with their jobs');
  } finally {
    await h.close();
  }
});

test('pruners racing each other delete every expired job once, without errors', { timeout: 60_000 }, async () => {
  const db = await createTestDatabase();
  const plugins = Array.from({ length: 3 }, () => pruner({ batchSize: 200, maxAgeMs: MIN, keepNewest: 1000 }));
  const apps = plugins.map((plugin) => new Docket({ connection: db.url, logger: false, plugins: [plugin] }));
  try {
    await apps[0]!.migrate();
    await insert(db, 'a', 'succeeded', 6000, DAY);
    await insert(db, 'b', 'failed', 3000, 30 * DAY);
    await insert(db, 'b', 'succeeded', 1500, 0); // young: only the cap of 1000 applies
    const results = await Promise.all(plugins.flatMap((p) => [p.runNow(), p.runNow()]));
    const deleted = results.reduce((sum, r) => sum + r.deleted, 0);
    assert.equal(deleted, 9500, 'the sweeps together deleted each job once');
    assert.ok(results.filter((r) => r.deleted > 0).length > 1, 'the work was shared');
    assert.deepEqual(await left(db), { 'b:succeeded': 1000 });
  } finally {
    await Promise.all(apps.map((a) => a.close()));
    await db.drop();
  }
});

test('runs on the maintenance tick of a worker (periodicTask)', { timeout: 60_000 }, async () => {
  const h = await setup({ intervalMs: 50, maxAgeMs: MIN });
  const noop = defineJob({ name: 'noop', queue: 'live' }, async () => undefined);
  const worker = new Worker(h.app, { jobs: [noop], queues: { live: {} }, maintenanceIntervalMs: 50 });
  try {
    await insert(h.db, 'q', 'cancelled', 50, DAY);
    await worker.start();
    let result = await h.plugin.nextRun({ timeoutMs: 20_000 });
    while (result.deleted === 0) result = await h.plugin.nextRun({ timeoutMs: 20_000 });
    assert.equal(result.deleted, 50);
    assert.deepEqual(await left(h.db), {});
  } finally {
    await worker.stop();
    await h.close();
  }
});

test('the candidate query uses the partial index on finished jobs', async () => {
  const h = await setup({});
  try {
    await insert(h.db, 'q', 'succeeded', 20_000, DAY);
    await insert(h.db, 'q', 'pending', 20_000, 0);
    await h.db.sql`ANALYZE docket.jobs`;
    const plan = await h.db.sql.unsafe(
      `EXPLAIN SELECT j.id FROM docket.jobs j WHERE j.state = 'succeeded' AND j.finished_at < now() - interval '1 hour'
       ORDER BY j.finished_at, j.id LIMIT 1000 FOR UPDATE SKIP LOCKED`,
    );
    assert.match(plan.map((r) => r['QUERY PLAN']).join('\n'), /pruner_jobs_finished_idx/);
  } finally {
    await h.close();
  }
});
