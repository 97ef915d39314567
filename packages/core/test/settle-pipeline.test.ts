import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type DocketPlugin, defineJob, type Logger } from '@docket/core';
import { type Harness, harness } from './helpers.js';

/**
 * `ctx.pipeline` in `settle`: a tap's statement sent without awaiting shares the round trip of the
 * core's write and the COMMIT, and the settlement is written only if it succeeded.
 */
describe('settle: statements a tap pipelines', () => {
  const errors: unknown[] = [];
  /** Jobs whose outcome was not written (no longer their attempt), as the worker warned. */
  const stale = new Map<string, () => void>();
  const warnedStale = (id: string) => new Promise<void>((resolve) => stale.set(id, resolve));
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (message, fields) => {
      if (/outcome not written/.test(message)) stale.get(String(fields?.job))?.();
    },
    error: (_message, fields) => void errors.push(fields?.error),
  };
  /** Per job id: how many times the tap has seen its settlement. */
  const seen = new Map<string, number>();

  const plugin: DocketPlugin = {
    name: 'pipeline-test',
    migrations: [{ version: 1, name: 'audit', up: ({ schema }) => `CREATE TABLE ${schema}.pipeline_audit (job_id bigint, note text)` }],
    apply(app) {
      app.hooks.settle.tapPromise({ name: 'pipeline-test', wants: (s) => s.job.queue.startsWith('pipelined') }, async (settlements, ctx) => {
        for (const s of settlements) {
          const n = (seen.get(s.job.id) ?? 0) + 1;
          seen.set(s.job.id, n);
          // Awaited: written before what is pipelined, in the same transaction.
          await ctx.sql.unsafe(`INSERT INTO ${app.schema}.pipeline_audit VALUES ($1, $2)`, [s.job.id, `awaited ${n}`]);
          const fails = s.job.meta.failFirst === true && n === 1;
          ctx.pipeline(
            ctx.sql.unsafe(
              fails ? `SELECT 1 / 0` : `INSERT INTO ${app.schema}.pipeline_audit VALUES ($1, $2)`,
              fails ? [] : [s.job.id, `pipelined ${n}`],
            ),
          );
        }
        return settlements;
      });
    },
  };

  let h: Harness;
  before(async () => {
    h = await harness({ plugins: [plugin], logger });
  });
  after(() => h.close());

  const notes = async (id: string) =>
    (await h.db.sql<Array<{ note: string }>>`SELECT note FROM docket.pipeline_audit WHERE job_id = ${id} ORDER BY note`).map((r) => r.note);

  test('a pipelined write commits with the outcome', async () => {
    const job = defineJob({ name: 'pipelined-ok', queue: 'pipelined' }, async () => 'done');
    const atomic = defineJob({ name: 'pipelined-atomic', queue: 'pipelined', atomic: true }, async () => 'done in its transaction');
    await h.worker({ jobs: [job, atomic], queues: { pipelined: {} } });
    for (const definition of [job, atomic]) {
      const ref = await h.app.push(definition);
      const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
      assert.equal(done.state, 'succeeded');
      assert.deepEqual(await notes(ref.id), ['awaited 1', 'pipelined 1'], definition.name);
    }
  });

  test('a pipelined statement that fails rolls the whole settlement back: the outcome is written again, and only the second time’s writes stay', async () => {
    const job = defineJob({ name: 'pipelined-fails', queue: 'pipelined-failing', meta: { failFirst: true } }, async () => 'done');
    await h.worker({ jobs: [job], queues: { 'pipelined-failing': {} } });
    const ref = await h.app.push(job);
    const done = await h.app.waitForJob(ref, { timeoutMs: 15_000 });
    assert.equal(done.state, 'succeeded');
    assert.equal(seen.get(ref.id), 2, 'the failed settlement was written again');
    assert.deepEqual(await notes(ref.id), ['awaited 2', 'pipelined 2'], 'the first transaction, whose pipelined statement failed, left nothing');
    // The error reported is the tap's own statement's, not the "transaction aborted" of what followed it.
    assert.ok(
      errors.some((e) => e instanceof Error && /division by zero/.test(e.message)),
      `logged: ${errors.map((e) => String(e)).join('; ')}`,
    );
  });

  test('an attempt that moved on while it ran: nothing the taps wrote for it commits, and the other attempt of its batch is written with its taps’ writes', async () => {
    // Both handlers return together (one batch, most likely); one first hands its row to another
    // worker, as a recovery would. The taps run before the fence's answer is read: their writes for
    // the stale attempt must roll back with the transaction, and the batch be settled again.
    let started = 0;
    let release!: () => void;
    const together = new Promise<void>((resolve) => (release = resolve));
    const meet = async () => {
      if (++started === 2) release();
      await together;
    };
    const movedOn = defineJob({ name: 'pipelined-moved-on', queue: 'pipelined-stale' }, async (_: unknown, ctx) => {
      await h.db.sql`UPDATE docket.jobs SET worker_id = 'another-worker' WHERE id = ${ctx.job.id}`;
      await meet();
      return 'late';
    });
    const current = defineJob({ name: 'pipelined-current', queue: 'pipelined-stale' }, async () => {
      await meet();
      return 'on time';
    });
    await h.worker({ jobs: [movedOn, current], queues: { 'pipelined-stale': { concurrency: 2 } } });
    const [stalled, fresh] = await h.app.pushMany([movedOn, current]);
    const warned = warnedStale(stalled!.id);
    assert.equal((await h.app.waitForJob(fresh!, { timeoutMs: 10_000 })).state, 'succeeded');
    await warned;
    // In one batch with the stale attempt, the tap ran twice (the rolled-back try, then the retry);
    // only its last run's writes stay.
    const n = seen.get(fresh!.id);
    assert.deepEqual(await notes(fresh!.id), [`awaited ${n}`, `pipelined ${n}`], 'the current attempt’s tap writes committed, once');
    assert.deepEqual(await notes(stalled!.id), [], 'nothing the tap wrote for the stale attempt committed');
    const [row] = await h.db.sql`SELECT state, worker_id, result FROM docket.jobs WHERE id = ${stalled!.id}`;
    assert.deepEqual({ ...row }, { state: 'running', worker_id: 'another-worker', result: null }, 'the row is the other attempt’s, untouched');
  });
});
