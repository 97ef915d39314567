import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { defineJob } from '@docket/core';
import { waitFor } from '@docket/testing';
import { harness } from './helpers.js';

const record = defineJob({ name: 'record', queue: 'drain' }, async (_: { n: number }) => undefined);

function startWorker(url: string): ChildProcess {
  return fork(new URL('./fixtures/drain-worker.ts', import.meta.url), {
    env: { ...process.env, TEST_DATABASE_URL: url },
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

test('two worker processes drain 10,000 jobs: every job runs exactly once', { timeout: 120_000 }, async () => {
  const h = await harness();
  try {
    await h.db.sql`CREATE TABLE runs (job_id bigint NOT NULL, n int NOT NULL, worker text NOT NULL)`;
    await h.app.pushMany(Array.from({ length: 10_000 }, (_, n) => record.withArgs({ n })));
    const workers = [startWorker(h.db.url), startWorker(h.db.url)];
    await Promise.all(workers.map((w) => once(w, 'message')));
    await waitFor(
      async () => {
        const [{ n }] = await h.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE state = 'succeeded'`;
        return n === 10_000;
      },
      { timeoutMs: 90_000, intervalMs: 200, message: 'all 10,000 jobs succeeded' },
    );
    for (const w of workers) w.send('stop');
    await Promise.all(workers.map((w) => once(w, 'exit')));
    const [stats] = await h.db.sql`
      SELECT count(*)::int AS runs, count(DISTINCT job_id)::int AS jobs, count(DISTINCT worker)::int AS workers FROM runs`;
    assert.equal(stats!.jobs, 10_000, 'every job ran');
    assert.equal(stats!.runs, 10_000, 'no job ran twice');
    assert.equal(stats!.workers, 2, 'both processes took part');
  } finally {
    await h.close();
  }
});
