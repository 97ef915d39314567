import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, type DocketPlugin, defineJob, type JobContext } from '@docket/core';
import { waitFor } from '@docket/testing';
import {
  cancelWorkflow,
  exportWorkflow,
  getWorkflow,
  pushWorkflow,
  renderWorkflow,
  type WorkflowBuilder,
  WorkflowDefinitionError,
  WorkflowNotFoundError,
  WorkflowStepDeduplicatedError,
  waitForWorkflow,
  workflow,
  workflows,
} from '../src/index.js';
import { type Harness, harness } from './helpers.js';

/** Records the run of a step (who, which parents' results it saw) and returns a value derived from its key. */
async function record(ctx: JobContext, key: string) {
  const parents = (await ctx.workflow!.parentResults()) as Record<string, unknown>;
  await ctx.app!.sql`INSERT INTO step_runs (key, job_id, parents) VALUES (${key}, ${ctx.job.id}, ${ctx.app!.sql.json(parents as never)})`;
  return `v:${key}`;
}

const node = defineJob({ name: 'node', queue: 'dag' }, async ({ key }: { key: string }, ctx) => record(ctx, key));

/** Deterministic PRNG (mulberry32), so a failing DAG can be reproduced from its seed. */
function random(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Checks every step ran once, after all its parents finished, having seen their results. */
async function assertRanInOrder(h: Harness, runId: string, parentsOf: Map<string, string[]>) {
  const runs = await h.db.sql`SELECT key, job_id::text AS job_id, parents FROM step_runs WHERE key IN ${h.db.sql([...parentsOf.keys()])}`;
  assert.equal(runs.length, parentsOf.size, 'every step ran exactly once');
  assert.equal(new Set(runs.map((r) => r.key)).size, parentsOf.size);
  for (const run of runs) {
    const expected = Object.fromEntries((parentsOf.get(run.key) ?? []).map((p) => [p, `v:${p}`]));
    assert.deepEqual(run.parents, expected, `step ${run.key} saw its parents' results`);
  }
  const late = await h.db.sql`
    SELECT c.key AS child, p.key AS parent
    FROM docket.workflow_edges e
    JOIN docket.workflow_steps c ON c.run_id = e.run_id AND c.key = e.child_key
    JOIN docket.workflow_steps p ON p.run_id = e.run_id AND p.key = e.parent_key
    JOIN docket.jobs cj ON cj.id = c.job_id JOIN docket.jobs pj ON pj.id = p.job_id
    WHERE e.run_id = ${runId} AND NOT (cj.started_at > pj.finished_at)`;
  // (finished_at is the completion transaction's start time: a step started after it committed.)
  assert.deepEqual([...late], [], 'no step started before a parent finished');
}

describe('workflows', () => {
  let h: Harness;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));

  const boom = defineJob({ name: 'boom', queue: 'dag' }, async ({ once: key }: { once?: string }, ctx) => {
    // Fails only once the step `key` has started (so that step is running when the workflow fails).
    if (key) await waitFor(async () => (await ctx.app!.sql`SELECT 1 FROM step_runs WHERE key = ${key}`).length > 0, { timeoutMs: 10_000 });
    throw new Error('step exploded');
  });
  const slow = defineJob({ name: 'slow', queue: 'dag' }, async ({ key }: { key: string }, ctx) => {
    await ctx.app!.sql`INSERT INTO step_runs (key, job_id, parents) VALUES (${key}, ${ctx.job.id}, '{}')`;
    await gate;
    return `v:${key}`;
  });
  // A queue no worker serves: its steps are pushed (pending) but never start.
  const idle = defineJob({ name: 'idle', queue: 'unserved' }, async () => 'never');

  before(async () => {
    h = await harness();
    await h.db.sql`CREATE TABLE step_runs (key text NOT NULL, job_id bigint NOT NULL, parents jsonb NOT NULL)`;
    await h.worker({ jobs: [node, boom, slow], queues: { dag: { concurrency: 8 } } });
    await h.worker({ jobs: [node, boom, slow], queues: { dag: { concurrency: 8 } } });
  });
  after(async () => {
    release();
    await h.close();
  });

  test('a diamond (A → B, C → D): each step runs once, after its parents, with their results', async () => {
    const flow = workflow('diamond')
      .step('A', node.withArgs({ key: 'A' }))
      .step('B', node.withArgs({ key: 'B' }), { after: ['A'] })
      .step('C', node.withArgs({ key: 'C' }), { after: ['A'] })
      .step('D', node.withArgs({ key: 'D' }), { after: ['B', 'C'] });
    const ref = await pushWorkflow(h.app, flow);
    const [pushed] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE meta->>'workflowId' = ${ref.id}`;
    assert.equal(pushed!.n, 1, 'only the root exists as a job when the workflow is pushed');
    const done = await waitForWorkflow(h.app, ref, { timeoutMs: 20_000 });
    assert.equal(done.state, 'succeeded');
    assert.deepEqual(done.result, { A: 'v:A', B: 'v:B', C: 'v:C', D: 'v:D' });
    assert.deepEqual(
      done.steps.map((s) => [s.key, s.state, s.parents]),
      [
        ['A', 'succeeded', []],
        ['B', 'succeeded', ['A']],
        ['C', 'succeeded', ['A']],
        ['D', 'succeeded', ['B', 'C']],
      ],
    );
    await assertRanInOrder(
      h,
      ref.id,
      new Map([
        ['A', []],
        ['B', ['A']],
        ['C', ['A']],
        ['D', ['B', 'C']],
      ]),
    );
  });

  test('a 200-step random DAG: each step runs once, after all its parents, with their results', { timeout: 120_000 }, async () => {
    const rand = random(20_241_122);
    const parentsOf = new Map<string, string[]>();
    let flow: WorkflowBuilder<Record<string, string>> = workflow('random-200') as WorkflowBuilder<Record<string, string>>;
    for (let i = 0; i < 200; i++) {
      const key = `r${i}`;
      const parents = new Set<string>();
      const fanIn = i === 0 ? 0 : Math.floor(rand() * 4); // 0..3 parents, among the earlier steps
      for (let k = 0; k < fanIn; k++) parents.add(`r${Math.floor(rand() * i)}`);
      parentsOf.set(key, [...parents]);
      flow = flow.step(key, node.withArgs({ key }), { after: [...parents] });
    }
    const roots = [...parentsOf.values()].filter((p) => p.length === 0).length;
    const ref = await pushWorkflow(h.app, flow);
    const done = await waitForWorkflow(h.app, ref, { timeoutMs: 100_000 });
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.steps.length, 200);
    assert.ok(roots > 1 && roots < 200);
    await assertRanInOrder(h, ref.id, parentsOf);
  });

  test('fail-fast (default): a failing step fails the workflow and cancels the steps not yet started', async () => {
    const flow = workflow('fail-fast')
      .step('running', slow.withArgs({ key: 'ff-running' }))
      .step('queued', idle) // pushed, never starts
      .step('boom', boom.withArgs({ once: 'ff-running' }))
      .step('after-boom', node.withArgs({ key: 'ff-after-boom' }), { after: ['boom'] })
      .step('after-running', node.withArgs({ key: 'ff-after-running' }), { after: ['running'] })
      .step('after-queued', node.withArgs({ key: 'ff-after-queued' }), { after: ['queued'] });
    const ref = await pushWorkflow(h.app, flow);
    const failed = await waitForWorkflow(h.app, ref, { timeoutMs: 20_000 });
    assert.equal(failed.state, 'failed');
    assert.equal(failed.error?.step, 'boom');
    assert.equal(failed.error?.error?.message, 'step exploded');
    const states = async () => Object.fromEntries((await getWorkflow(h.app, ref)).steps.map((s) => [s.key, s.state]));
    // The pending job is cancelled through the core right after the failing commit.
    await waitFor(async () => (await states()).queued === 'cancelled', { timeoutMs: 10_000, message: 'the queued step cancelled' });
    assert.deepEqual(await states(), {
      running: 'running', // started steps are left to finish
      queued: 'cancelled',
      boom: 'failed',
      'after-boom': 'cancelled',
      'after-running': 'cancelled',
      'after-queued': 'cancelled',
    });
    const blocked = (await getWorkflow(h.app, ref)).steps.filter((s) => s.key.startsWith('after-'));
    assert.ok(
      blocked.every((s) => s.jobId === null),
      'cancelled blocked steps never became jobs',
    );

    release();
    await waitFor(async () => (await states()).running === 'succeeded', { timeoutMs: 10_000, message: 'the running step to finish' });
    const final = await getWorkflow(h.app, ref);
    assert.equal(final.state, 'failed');
    assert.equal(final.steps.find((s) => s.key === 'after-running')!.state, 'cancelled', 'a failed workflow pushes nothing more');
    const [runRow] = await h.db.sql`SELECT steps_open FROM docket.workflow_runs WHERE id = ${ref.id}`;
    assert.equal(runRow!.steps_open, 0);
  });

  test('continue: branches that do not depend on the failed step run on; the workflow fails at the end', async () => {
    const flow = workflow('continue', { onFailure: 'continue' })
      .step('boom', boom.withArgs({}))
      .step('ok', node.withArgs({ key: 'c-ok' }))
      .step('after-boom', node.withArgs({ key: 'c-after-boom' }), { after: ['boom'] })
      .step('after-both', node.withArgs({ key: 'c-after-both' }), { after: ['boom', 'ok'] })
      .step('after-ok', node.withArgs({ key: 'c-after-ok' }), { after: ['ok'] })
      .step('after-after-ok', node.withArgs({ key: 'c-after-after-ok' }), { after: ['after-ok'] });
    const done = await waitForWorkflow(h.app, await pushWorkflow(h.app, flow), { timeoutMs: 20_000 });
    assert.equal(done.state, 'failed');
    assert.deepEqual(Object.fromEntries(done.steps.map((s) => [s.key, s.state])), {
      boom: 'failed',
      ok: 'succeeded',
      'after-boom': 'cancelled',
      'after-both': 'cancelled',
      'after-ok': 'succeeded',
      'after-after-ok': 'succeeded',
    });
  });

  test('cancelWorkflow cancels the whole run; the export shows each step’s state', async () => {
    const flow = workflow('to-cancel')
      .step('waiting', idle)
      .step('next', node.withArgs({ key: 'x-next' }), { after: ['waiting'] });
    const ref = await pushWorkflow(h.app, flow);
    assert.equal((await getWorkflow(h.app, ref)).state, 'pending');
    const cancelled = await cancelWorkflow(h.app, ref);
    assert.equal(cancelled.state, 'cancelled');
    assert.deepEqual(
      cancelled.steps.map((s) => s.state),
      ['cancelled', 'cancelled'],
    );
    assert.equal((await waitForWorkflow(h.app, ref, { timeoutMs: 1000 })).state, 'cancelled');

    const mermaid = await exportWorkflow(h.app, ref);
    assert.match(mermaid, /^flowchart TD\n/);
    assert.match(mermaid, /s0\["waiting<br\/>idle · cancelled"\]:::cancelled/);
    assert.match(mermaid, /s0 --> s1/);
    const dot = await exportWorkflow(h.app, ref, { format: 'dot' });
    assert.match(dot, /^digraph "to-cancel #\d+" \{/);
    assert.match(dot, /s1 \[label="next\\nnode · cancelled"/);
    assert.match(dot, /s0 -> s1;/);
    assert.throws(() => renderWorkflow(cancelled, 'svg' as never), /Unknown graph format/);
    await assert.rejects(
      exportWorkflow(h.app, ref, { format: 'svgg' as never }),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_INVALID_OPTION',
    );
  });

  test('a run of finished steps renders with their states', async () => {
    const done = await waitForWorkflow(
      h.app,
      await pushWorkflow(
        h.app,
        workflow('render')
          .step('a', node.withArgs({ key: 'render-a' }))
          .step('b', node.withArgs({ key: 'render-b' }), { after: ['a'] }),
      ),
      { timeoutMs: 10_000 },
    );
    const text = renderWorkflow(done);
    assert.match(text, /s0\["a<br\/>node · succeeded"\]:::succeeded/);
    assert.match(text, /classDef succeeded fill:/);
  });

  test('pushWorkflow in the caller’s transaction: nothing exists if it rolls back', async () => {
    const [before] = await h.db.sql`SELECT (SELECT count(*) FROM docket.workflow_runs)::int AS runs, (SELECT count(*) FROM docket.jobs)::int AS jobs`;
    await assert.rejects(
      h.app.sql.begin(async (tx) => {
        await pushWorkflow(h.app, workflow('rolled-back').step('a', node.withArgs({ key: 'rb' })), { tx });
        throw new Error('abort');
      }),
      /abort/,
    );
    const [afterRows] = await h.db
      .sql`SELECT (SELECT count(*) FROM docket.workflow_runs)::int AS runs, (SELECT count(*) FROM docket.jobs)::int AS jobs`;
    assert.deepEqual({ ...afterRows }, { ...before });
  });

  test('invalid workflows are refused when they are built', () => {
    const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;
    assert.throws(
      () =>
        workflow('w')
          .step('a', node.withArgs({ key: 'a' }))
          .step('a' as never, node.withArgs({ key: 'a' })),
      code('DOCKET_WORKFLOW_INVALID_FLOW'),
    );
    assert.throws(
      () => workflow('w').step('a', node.withArgs({ key: 'a' }), { after: ['ghost' as never] }),
      (e: unknown) => e instanceof WorkflowDefinitionError && /not a step declared before it/.test(e.message),
    );
    assert.throws(() => workflow(''), code('DOCKET_WORKFLOW_INVALID_FLOW'));
    assert.throws(() => workflow('w').step('a', node.withArgs({ key: 'a' }), { afterr: [] } as never), /did you mean `after`/);
    assert.throws(() => workflow('w', { onFailure: 'explode' as never }), code('DOCKET_INVALID_OPTION'));
    assert.throws(() => workflow('w').step('a', node.withArgs({ key: 1n as never })), code('DOCKET_ARGS_NOT_SERIALIZABLE'));
  });

  test('deleting a finished workflow’s jobs (the pruner) deletes its rows', async () => {
    const done = await waitForWorkflow(
      h.app,
      await pushWorkflow(
        h.app,
        workflow('prunable')
          .step('a', node.withArgs({ key: 'p-a' }))
          .step('b', node.withArgs({ key: 'p-b' }), { after: ['a'] }),
      ),
      { timeoutMs: 10_000 },
    );
    const jobIds = done.steps.map((s) => s.jobId!);
    await h.app.deleteJobs(jobIds.slice(0, 1));
    assert.equal((await getWorkflow(h.app, done)).steps.length, 2, 'kept while one of its jobs remains');
    await h.app.deleteJobs(jobIds.slice(1));
    await assert.rejects(getWorkflow(h.app, done), (e: unknown) => e instanceof WorkflowNotFoundError && e.code === 'DOCKET_WORKFLOW_NOT_FOUND');
    await assert.rejects(cancelWorkflow(h.app, done), WorkflowNotFoundError);
    const [left] = await h.db.sql`SELECT count(*)::int AS n FROM docket.workflow_steps WHERE run_id = ${done.id}`;
    assert.equal(left!.n, 0);
  });
});

test('a step a deduplicating plugin answers with an existing job is refused, and the run is not stored; an app without the plugin is refused', async () => {
  const dedupe: DocketPlugin = {
    name: 'test-dedupe',
    apply(app) {
      app.defineJobOption('sameAs');
      app.hooks.beforePush.tapPromise('test-dedupe', async (rows) => {
        for (const row of rows) if (typeof row.extensions.sameAs === 'string') row.duplicateOf = row.extensions.sameAs;
        return rows;
      });
    },
  };
  const h = await harness({ app: { plugins: [workflows(), dedupe] } });
  const bare = new Docket({ connection: h.db.url, logger: false });
  try {
    const existing = await h.app.push(node.withArgs({ key: 'existing' }));
    await assert.rejects(
      pushWorkflow(h.app, workflow('dedupe').step('a', node.withArgs({ key: 'a' }).with('sameAs', existing.id))),
      (e: unknown) =>
        e instanceof WorkflowStepDeduplicatedError &&
        e.code === 'DOCKET_WORKFLOW_STEP_DEDUPLICATED' &&
        /Step 'a' of workflow 'dedupe'/.test(e.message),
    );
    const [{ n }] = await h.db.sql`SELECT count(*)::int AS n FROM docket.workflow_runs`;
    assert.equal(n, 0, 'the run rolled back with the push');
    await assert.rejects(
      pushWorkflow(bare, workflow('w').step('a', node.withArgs({ key: 'a' }))),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_PLUGIN_INVALID' && /needs the workflow plugin on this app/.test(e.message),
    );
  } finally {
    await bare.close();
    await h.close();
  }
});

test('one workflows() value serves one app: a second app is refused with DOCKET_PLUGIN_INVALID; its options name workflows(options)', async () => {
  const plugin = workflows();
  await using first = new Docket({ connection: 'postgres://127.0.0.1:1/unused', plugins: [plugin], logger: false });
  assert.ok(first);
  assert.throws(
    () => new Docket({ connection: 'postgres://127.0.0.1:1/unused', plugins: [plugin], logger: false }),
    (e: unknown) =>
      e instanceof DocketError && e.code === 'DOCKET_PLUGIN_INVALID' && /one plugin value serves one app; call workflows\(\) again/.test(e.message),
  );
  assert.throws(
    () => workflows({ onFailur: 'continue' } as never),
    (e: unknown) =>
      e instanceof DocketError &&
      /^Unknown option `onFailur` in workflows\(options\); did you mean `onFailure`\? Known options: onFailure, subtaskFailure\.$/.test(e.message),
  );
});
