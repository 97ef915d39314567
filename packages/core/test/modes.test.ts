import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { Docket, DocketError, defineJob, Worker } from '@docket/core';
import postgres from 'postgres';
import { deferred, harness } from './helpers.js';

test('poll-only mode (listen: false, prepare: false): jobs run, waitForJob and cancel still work', async () => {
  const h = await harness({ listen: false, prepare: false });
  try {
    const started = deferred();
    const quick = defineJob({ name: 'quick', queue: 'poll' }, async ({ n }: { n: number }) => n * 2);
    const blocked = defineJob({ name: 'blocked', queue: 'poll' }, async (_: void, ctx) => {
      started.resolve();
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    });
    await h.worker({ jobs: [quick, blocked], queues: { poll: { pollIntervalMs: 50 } }, heartbeatIntervalMs: 100 });
    const done = await h.app.waitForJob(await h.app.push(quick.withArgs({ n: 21 })), { timeoutMs: 10_000 });
    assert.equal(done.result, 42);
    const ref = await h.app.push(blocked);
    await started.promise;
    await h.app.cancelJob(ref);
    assert.equal((await h.app.waitForJob(ref, { timeoutMs: 10_000 })).state, 'cancelled');
    await assert.rejects(
      h.app.listen('topic', () => {}),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_INVALID_OPTION',
    );
  } finally {
    await h.close();
  }
});

test('LISTEN on a separate direct connection', async () => {
  const h = await harness();
  const app = new Docket({ connection: h.db.url, listen: { connection: h.db.url }, logger: false });
  try {
    const job = defineJob({ name: 'direct', queue: 'direct' }, async () => 'ok');
    const worker = new Worker(app, { jobs: [job], queues: { direct: { pollIntervalMs: 60_000 } } });
    await worker.start();
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    assert.equal((await app.waitForJob(await app.push(job), { timeoutMs: 5_000 })).state, 'succeeded');
    assert.ok(Date.now() - t0 < 1000, 'woken by notification, not by the 60 s poll');
    await worker.stop();
  } finally {
    await app.close();
    await h.close();
  }
});

test('a worker LISTENs for settled jobs only once the app waits for one', async () => {
  const h = await harness();
  const statements: string[] = [];
  const listenSql = postgres(h.db.url, { onnotice: () => {}, debug: (_c, text) => statements.push(text) });
  const app = new Docket({ connection: h.db.url, listen: { connection: listenSql }, logger: false });
  try {
    const job = defineJob({ name: 'settles', queue: 'settles' }, async () => 'ok');
    const worker = new Worker(app, { jobs: [job], queues: { settles: { pollIntervalMs: 60_000 } } });
    await worker.start();
    const listens = () => statements.filter((t) => /^listen /i.test(t.trim()));
    assert.deepEqual(listens(), ['listen "docket:docket"'], 'the worker listens on the main channel only');
    assert.equal((await app.waitForJob(await app.push(job), { timeoutMs: 5_000 })).state, 'succeeded');
    assert.deepEqual(listens().sort(), ['listen "docket:docket"', 'listen "docket:docket:settled"'], 'waiting added the settled channel');
    await worker.stop();
  } finally {
    await app.close();
    await listenSql.end();
    await h.close();
  }
});

test('SIGTERM stops a worker process gracefully: its running job finishes', { timeout: 60_000 }, async () => {
  const h = await harness();
  try {
    const slow = defineJob({ name: 'slow-graceful', queue: 'signals' }, async () => 'x');
    const child = fork(new URL('./fixtures/signal-worker.ts', import.meta.url), {
      env: { ...process.env, TEST_DATABASE_URL: h.db.url },
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const messages: string[] = [];
    const jobStarted = new Promise<void>((resolve) =>
      child.on('message', (m) => {
        messages.push(String(m));
        if (m === 'job-started') resolve();
      }),
    );
    await once(child, 'message');
    const ref = await h.app.push(slow);
    await jobStarted;
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    const job = await h.app.getJob(ref);
    assert.equal(job.state, 'succeeded');
    assert.equal(job.result, 'finished', 'the handler was not aborted: stop waited for it');
  } finally {
    await h.close();
  }
});
