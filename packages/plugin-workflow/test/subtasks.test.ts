import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { defineJob, type JobRecord } from '@docket/core';
import { stopChild, waitFor } from '@docket/testing';
import { getSubtasks, getWorkflow, pushWorkflow, waitForWorkflow, workflow } from '../src/index.js';
import { fanout } from './fixtures/jobs.js';
import { type Harness, harness } from './helpers.js';

const FINAL = ['succeeded', 'failed', 'cancelled'];

/**
 * A deferred constraint trigger logs every state change of the parent jobs AT COMMIT, with the
 * number of its descendants not finished at that moment: what any other session could ever see.
 * (finished_at cannot show this: it is the start time of the transaction that wrote it, and the
 * commit that releases a parent may have started before a sibling's commit that it waited for.)
 */
async function installParentLog(h: Harness, parentName: string): Promise<void> {
  await h.db.sql.unsafe(`
    CREATE TABLE parent_log (id bigserial PRIMARY KEY, job_id bigint, state text, unfinished int);
    CREATE FUNCTION log_parent() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO parent_log (job_id, state, unfinished)
      SELECT NEW.id, j.state,
        (SELECT count(*) FROM docket.jobs c
         WHERE (c.meta->>'parentId' = NEW.id::text OR c.meta->>'rootId' = NEW.id::text) AND c.state NOT IN ('succeeded', 'failed', 'cancelled'))
      FROM docket.jobs j WHERE j.id = NEW.id;
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER parent_log AFTER UPDATE ON docket.jobs DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW WHEN (NEW.name = '${parentName}' AND OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION log_parent();
  `);
}

function startWorker(url: string, id: string, concurrency = 10): ChildProcess {
  return fork(new URL('./fixtures/worker.ts', import.meta.url), {
    env: { ...process.env, TEST_DATABASE_URL: url, TEST_WORKER_ID: id, TEST_CONCURRENCY: String(concurrency) },
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(workers.map((w) => stopChild(w)));
}

test('a parent with 1,000 subtasks drained by two worker processes ends succeeded exactly once, after the last child', {
  timeout: 180_000,
}, async () => {
  const h = await harness();
  const workers: ChildProcess[] = [];
  try {
    await h.db.sql`CREATE TABLE runs (job_id bigint NOT NULL, i int NOT NULL, worker text NOT NULL)`;
    await installParentLog(h, 'fanout');
    workers.push(startWorker(h.db.url, 'proc-a'), startWorker(h.db.url, 'proc-b'));
    await Promise.all(workers.map((w) => once(w, 'message')));

    // Each child sleeps a little, so that one process cannot drain them all before the other fetches.
    const parent = await h.app.push(fanout.withArgs({ count: 1000, sleepMs: 10 }));
    const done = await h.app.waitForJob(parent, { timeoutMs: 150_000 });
    assert.equal(done.state, 'succeeded');
    assert.deepEqual(done.result, { pushed: 1000 }, 'the handler’s own result is kept');

    const log = await h.db.sql`SELECT state, unfinished FROM parent_log WHERE job_id = ${parent.id} ORDER BY id`;
    assert.deepEqual(
      log.map((l) => l.state),
      ['running', 'waiting', 'succeeded'],
      'one attempt, held waiting, released once',
    );
    assert.equal(log[1]!.unfinished, 1000, 'the 1,000 children were pushed in the commit that made the parent wait');
    assert.equal(log[2]!.unfinished, 0, 'when the parent’s success committed, every child had finished');

    const [runs] = await h.db.sql`
      SELECT count(*)::int AS runs, count(DISTINCT i)::int AS children, count(DISTINCT worker)::int AS workers FROM runs`;
    assert.equal(runs!.children, 1000);
    assert.equal(runs!.workers, 2, 'both processes ran children');
    const [children] = await h.db.sql`
      SELECT count(*) FILTER (WHERE state = 'succeeded')::int AS succeeded FROM docket.jobs WHERE meta->>'parentId' = ${parent.id}`;
    assert.equal(children!.succeeded, 1000);
    const summary = await getSubtasks(h.app, parent);
    assert.equal(summary?.total, 1000);
    assert.equal(summary?.open, 0);
    assert.equal(summary?.failed, 0);
    assert.ok(summary?.children.every((c) => c.state === 'succeeded'));
  } finally {
    await stopWorkers(workers);
    await h.close();
  }
});

test('a child that runs twice after its worker is killed is counted once', { timeout: 180_000 }, async () => {
  const h = await harness();
  const workers: ChildProcess[] = [];
  try {
    await h.db.sql`CREATE TABLE runs (job_id bigint NOT NULL, i int NOT NULL, worker text NOT NULL)`;
    await installParentLog(h, 'fanout');
    const victim = startWorker(h.db.url, 'victim', 5);
    workers.push(victim, startWorker(h.db.url, 'survivor', 5));
    await Promise.all(workers.map((w) => once(w, 'message')));

    const parent = await h.app.push(fanout.withArgs({ count: 200, sleepMs: 150 }));
    // Freeze the victim while it holds started children (their runs are recorded), then kill it.
    const started = async () =>
      (
        await h.db.sql`SELECT count(*)::int AS n FROM runs r JOIN docket.jobs j ON j.id = r.job_id
                      WHERE r.worker = 'victim' AND j.state = 'running' AND j.worker_id = 'victim'`
      )[0]!.n > 0;
    await waitFor(started, { timeoutMs: 60_000, message: 'the victim to be running children' });
    victim.kill('SIGSTOP');
    await waitFor(started, { timeoutMs: 5_000, message: 'the frozen victim still to hold started children' });
    victim.kill('SIGKILL');
    await once(victim, 'exit');
    // What a recovery plugin does for a dead worker: its running jobs go back to pending.
    const requeued = await h.db.sql`
      UPDATE docket.jobs SET state = 'pending', worker_id = NULL, started_at = NULL
      WHERE state = 'running' AND worker_id = 'victim' RETURNING id`;
    assert.ok(requeued.length > 0);
    await h.app.wake(['sub']);

    const done = await h.app.waitForJob(parent, { timeoutMs: 150_000 });
    assert.equal(done.state, 'succeeded');
    const [runs] = await h.db.sql`
      SELECT count(*)::int AS runs, count(DISTINCT job_id)::int AS children FROM runs`;
    assert.equal(runs!.children, 200);
    assert.ok(runs!.runs > 200, `some children ran twice (${runs!.runs} runs of 200 children)`);
    const log = await h.db.sql`SELECT state, unfinished FROM parent_log WHERE job_id = ${parent.id} ORDER BY id`;
    assert.deepEqual(
      log.map((l) => l.state),
      ['running', 'waiting', 'succeeded'],
    );
    assert.equal(log[2]!.unfinished, 0);
    const summary = await getSubtasks(h.app, parent);
    assert.deepEqual({ total: summary?.total, open: summary?.open, failed: summary?.failed }, { total: 200, open: 0, failed: 0 });
  } finally {
    await stopWorkers(workers);
    await h.close();
  }
});

describe('subtasks in one process', () => {
  let h: Harness;
  const order: string[] = [];

  const leafJob = defineJob({ name: 'tree-leaf', queue: 'tree' }, async ({ name }: { name: string }) => {
    order.push(name);
    return name;
  });
  const branch = defineJob({ name: 'tree-branch', queue: 'tree' }, async ({ name, leaves }: { name: string; leaves: number }, ctx) => {
    for (let i = 0; i < leaves; i++) ctx.subtask!(leafJob.withArgs({ name: `${name}.${i}` }));
    order.push(name);
    return name;
  });
  const root = defineJob({ name: 'tree-root', queue: 'tree' }, async ({ branches }: { branches: number }, ctx) => {
    for (let i = 0; i < branches; i++) ctx.subtask!(branch.withArgs({ name: `b${i}`, leaves: 2 }));
    return 'root';
  });
  const plain = defineJob({ name: 'plain-pusher', queue: 'tree' }, async (_: void, ctx) => {
    const ref = await ctx.app!.push(leafJob.withArgs({ name: 'plain' }));
    return ref.id;
  });
  const failing = defineJob({ name: 'tree-fail', queue: 'tree' }, async () => {
    throw new Error('child broke');
  });
  const mixed = defineJob({ name: 'tree-mixed', queue: 'tree' }, async (_: void, ctx) => {
    ctx.subtask!(leafJob.withArgs({ name: 'ok' }));
    ctx.subtask!(failing);
    return 'mixed';
  });
  const stuck = defineJob({ name: 'tree-stuck', queue: 'tree-unserved' }, async () => 'never');
  const holder = defineJob({ name: 'tree-holder', queue: 'tree' }, async (_: void, ctx) => {
    ctx.subtask!(stuck);
    ctx.subtask!(stuck);
    return 'holding';
  });
  const failsAfterSubtask = defineJob({ name: 'tree-regret', queue: 'tree' }, async (_: void, ctx) => {
    ctx.subtask!(leafJob.withArgs({ name: 'regretted' }));
    throw new Error('changed my mind');
  });

  const atomicParent = defineJob({ name: 'tree-atomic', queue: 'tree', atomic: true }, async (_: void, ctx) => {
    await ctx.sql!`SELECT 1`;
    ctx.subtask!(leafJob.withArgs({ name: 'atomic-child' }));
    return 'atomic';
  });
  const afterTree = defineJob({ name: 'tree-after', queue: 'tree' }, async (_: void, ctx) => {
    // When this step starts, every subtask of the step before it has finished.
    const [row] = await ctx.app!.sql`
      SELECT count(*)::int AS open FROM docket.jobs WHERE meta->>'rootId' IS NOT NULL AND meta->>'rootId' IN (
        SELECT job_id::text FROM docket.workflow_steps WHERE run_id = ${ctx.workflow!.id} AND key = 'tree')
      AND state NOT IN ('succeeded', 'failed', 'cancelled')`;
    return { openDescendants: row!.open, parents: await ctx.workflow!.parentResults() };
  });

  before(async () => {
    h = await harness();
    await installParentLog(h, 'tree-root');
    await h.worker({
      jobs: [leafJob, branch, root, plain, failing, mixed, holder, failsAfterSubtask, atomicParent, afterTree],
      queues: { tree: { concurrency: 4 } },
    });
  });
  after(() => h.close());

  test('subtasks nest: the root ends only when the whole tree has, with rootId and parentId on every node', async () => {
    const ref = await h.app.push(root.withArgs({ branches: 2 }));
    const done = await h.app.waitForJob(ref, { timeoutMs: 20_000 });
    assert.equal(done.state, 'succeeded');
    assert.equal(done.result, 'root');
    const nodes = await h.db.sql`
      SELECT id::text AS id, name, state, meta, finished_at FROM docket.jobs WHERE meta->>'rootId' = ${ref.id} ORDER BY id`;
    assert.equal(nodes.length, 6, '2 branches and 4 leaves');
    const branches = nodes.filter((n) => n.name === 'tree-branch');
    for (const b of branches) assert.equal(b.meta.parentId, ref.id);
    for (const leaf of nodes.filter((n) => n.name === 'tree-leaf')) {
      assert.ok(
        branches.some((b) => b.id === leaf.meta.parentId),
        'a leaf’s parent is a branch',
      );
      assert.equal(leaf.meta.rootId, ref.id);
    }
    for (const n of nodes) assert.equal(n.state, 'succeeded');
    const log = await h.db.sql`SELECT state, unfinished FROM parent_log WHERE job_id = ${ref.id} ORDER BY id`;
    assert.deepEqual(
      log.map((l) => [l.state, l.unfinished]),
      [
        ['running', 0],
        ['waiting', 2],
        ['succeeded', 0],
      ],
      'the root ended after its whole tree',
    );
    const summary = await getSubtasks(h.app, branches[0]!.id);
    assert.equal(summary?.rootId, ref.id);
  });

  test('an atomic job’s subtasks are pushed in its transaction', async () => {
    const ref = await h.app.push(atomicParent);
    const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    assert.deepEqual(
      (await getSubtasks(h.app, ref))?.children.map((c) => c.state),
      ['succeeded'],
    );
  });

  test('a workflow step with subtasks: the steps after it start once its whole tree has finished', async () => {
    const flow = workflow('tree-step')
      .step('tree', root.withArgs({ branches: 2 }))
      .step('after', afterTree, { after: ['tree'] });
    const done = await waitForWorkflow(h.app, await pushWorkflow(h.app, flow), { timeoutMs: 20_000 });
    assert.equal(done.state, 'succeeded');
    assert.deepEqual(done.steps.at(-1)!.result, { openDescendants: 0, parents: { tree: 'root' } });
    const [tree] = (await getWorkflow(h.app, done)).steps;
    const [count] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE meta->>'rootId' = ${tree!.jobId}`;
    assert.equal(count!.n, 6, 'the step’s tree: 2 branches, 4 leaves');
  });

  test('a job pushed with a plain push from a handler is not a subtask', async () => {
    const ref = await h.app.push(plain);
    const done = await h.app.waitForJob<void, string>(ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
    const pushed = await h.app.getJob(done.result!);
    assert.equal(pushed.meta.parentId, undefined);
    assert.equal(await getSubtasks(h.app, ref), null);
  });

  test('a failed child fails its parent after every child finished (default policy)', async () => {
    const ref = await h.app.push(mixed);
    const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'failed');
    assert.equal(done.result, 'mixed', 'the handler’s result is kept');
    assert.equal(done.errors.at(-1)?.name, 'SubtaskFailedError');
    const summary = await getSubtasks(h.app, ref);
    assert.deepEqual({ open: summary?.open, failed: summary?.failed }, { open: 0, failed: 1 });
  });

  test('an attempt that fails pushes no subtask', async () => {
    const ref = await h.app.push(failsAfterSubtask);
    const done = await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(done.state, 'failed');
    assert.equal(await getSubtasks(h.app, ref), null);
    const [row] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE args->>'name' = 'regretted'`;
    assert.equal(row!.n, 0);
  });

  test('cancelling a waiting parent cancels its unfinished children', async () => {
    const ref = await h.app.push(holder);
    await waitFor(async () => (await h.app.getJob(ref)).state === 'waiting', { timeoutMs: 10_000, message: 'the holder to wait' });
    const cancelled = await h.app.cancelJob(ref);
    assert.equal(cancelled.state, 'cancelled');
    const children = await waitFor(
      async () => {
        const rows = await h.db.sql`SELECT state FROM docket.jobs WHERE meta->>'parentId' = ${ref.id}`;
        return rows.length === 2 && rows.every((r) => r.state === 'cancelled') ? rows : undefined;
      },
      { timeoutMs: 10_000, message: 'both children cancelled' },
    );
    assert.equal(children.length, 2);
  });

  test('deleting finished jobs (the pruner) deletes their subtask rows', async () => {
    const finished = await h.db.sql`SELECT id::text AS id FROM docket.jobs WHERE state IN ${h.db.sql(FINAL)}`;
    await h.app.deleteJobs(finished.map((r) => r.id));
    const [left] = await h.db.sql`
      SELECT (SELECT count(*) FROM docket.workflow_parents)::int AS parents, (SELECT count(*) FROM docket.workflow_subtasks)::int AS subtasks`;
    assert.deepEqual({ ...left }, { parents: 0, subtasks: 0 });
  });
});

test('subtaskFailure: ignore lets a parent succeed whatever its children did', async () => {
  const h = await harness({ plugin: { subtaskFailure: 'ignore' } });
  try {
    const bad = defineJob({ name: 'bad-child', queue: 'ig' }, async () => {
      throw new Error('nope');
    });
    const parent = defineJob({ name: 'tolerant', queue: 'ig' }, async (_: void, ctx) => {
      ctx.subtask!(bad);
      return 'fine';
    });
    await h.worker({ jobs: [bad, parent], queues: { ig: {} } });
    const done: JobRecord = await h.app.waitForJob(await h.app.push(parent), { timeoutMs: 10_000 });
    assert.equal(done.state, 'succeeded');
  } finally {
    await h.close();
  }
});
