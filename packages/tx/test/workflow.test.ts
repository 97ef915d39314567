/**
 * A plugin's own push-time bookkeeping in a foreign transaction: pushWorkflow stores the run and its
 * steps and pushes the first step, all through the adapter (here node-postgres).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Docket, defineJob, Worker, type WorkerOptions } from '@docket/core';
import { getWorkflow, pushWorkflow, waitForWorkflow, workflow, workflows } from '@docket/plugin-workflow';
import { type Harness, testHarness } from '@docket/testing';
import pg from 'pg';
import { pgTransaction } from '../src/pg.js';

const first = defineJob({ name: 'wf.first' }, async () => 1);
const second = defineJob({ name: 'wf.second' }, async () => 2);
const flow = () =>
  workflow('in-your-transaction')
    .step('first', first)
    .step('second', second, { after: ['first'] });

let h: Harness<Docket, Worker, WorkerOptions>;
let pool: pg.Pool;
before(async () => {
  h = await testHarness({
    app: (url) => new Docket({ connection: url, logger: false, plugins: [workflows()] }),
    worker: (app, options: WorkerOptions) => new Worker(app, options),
  });
  pool = new pg.Pool({ connectionString: h.db.url, max: 2 });
});
after(async () => {
  await pool.end();
  await h.close();
});

async function inTransaction<T>(body: (client: pg.PoolClient) => Promise<T>, commit: boolean): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await body(client);
    await client.query(commit ? 'COMMIT' : 'ROLLBACK');
    return result;
  } finally {
    client.release();
  }
}

test('pushWorkflow in a node-postgres transaction: nothing until the commit, then the run goes to the end', async () => {
  const run = await inTransaction(async (client) => {
    const ref = await pushWorkflow(h.app, flow(), { tx: pgTransaction(client) });
    const [outside] = await h.db.sql`SELECT count(*)::int AS n FROM docket.workflow_runs WHERE id = ${ref.id}`;
    assert.equal(outside!.n, 0, 'invisible until the commit');
    return ref;
  }, true);
  await h.worker({ jobs: [first, second], queues: { default: { pollIntervalMs: 60_000 } } });
  const done = await waitForWorkflow(h.app, run, { timeoutMs: 10_000 });
  assert.equal(done.state, 'succeeded');
  assert.deepEqual(done.result, { first: 1, second: 2 });
});

test('pushWorkflow in a rolled-back node-postgres transaction leaves no run, no step and no job', async () => {
  const [before] = await h.db.sql`SELECT (SELECT count(*) FROM docket.jobs)::int AS jobs, (SELECT count(*) FROM docket.workflow_steps)::int AS steps`;
  const run = await inTransaction((client) => pushWorkflow(h.app, flow(), { tx: pgTransaction(client) }), false);
  await assert.rejects(getWorkflow(h.app, run), /No workflow run/);
  const [afterwards] = await h.db
    .sql`SELECT (SELECT count(*) FROM docket.jobs)::int AS jobs, (SELECT count(*) FROM docket.workflow_steps)::int AS steps`;
  assert.deepEqual(afterwards, before);
});
