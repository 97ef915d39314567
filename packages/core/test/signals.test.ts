/**
 * Stopping on SIGINT/SIGTERM, the default of a Worker (`handleSignals`): real worker processes,
 * written like the README's long-running worker, sent real signals. And, in this process, what a
 * worker does when something else (here: the test) also listens for the signal.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { Docket, defineJob, type JobRef, type Logger, Worker } from '@docket/core';
import { type Harness, harness, nextMessage } from './helpers.js';

const work = defineJob({ name: 'work', queue: 'default' }, async (_: { ms: number; honour: boolean }) => 'finished');

let h: Harness;
before(async () => {
  h = await harness();
});
after(() => h.close());

interface WorkerProcess {
  child: ChildProcess;
  /** Resolves when stderr has printed a line matching `pattern`. */
  printed(pattern: RegExp): Promise<void>;
  stderr(): string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

async function startWorkerProcess(env: Record<string, string> = {}): Promise<WorkerProcess> {
  const child = fork(new URL('./fixtures/readme-worker.ts', import.meta.url), {
    env: { ...process.env, TEST_DATABASE_URL: h.db.url, DOCKET_LOG: '', ...env },
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let text = '';
  const waiting: Array<{ pattern: RegExp; resolve: () => void }> = [];
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
    for (const w of [...waiting]) {
      if (w.pattern.test(text)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  await nextMessage(child, 'started');
  return {
    child,
    printed: (pattern) => (pattern.test(text) ? Promise.resolve() : new Promise((resolve) => waiting.push({ pattern, resolve }))),
    stderr: () => text,
    exited,
  };
}

async function pushAndStart(p: WorkerProcess, args: { ms: number; honour: boolean }): Promise<JobRef> {
  const started = nextMessage<{ type: string; id: string }>(p.child, 'job-started');
  const ref = await h.app.push(work.withArgs(args));
  assert.equal((await started).id, ref.id);
  return ref;
}

test('SIGTERM: the running job finishes, the stop is announced, the process exits 0', { timeout: 60_000 }, async () => {
  const p = await startWorkerProcess({ SHUTDOWN_TIMEOUT_MS: '10000' });
  const ref = await pushAndStart(p, { ms: 300, honour: true });
  p.child.kill('SIGTERM');
  const [code, signal] = await p.exited;
  assert.deepEqual([code, signal], [0, null], p.stderr());
  assert.match(p.stderr(), /SIGTERM: stopping: waiting for 1 running job, up to 10 s; send SIGTERM again to abort it \(they go back to the queue\)/);
  const job = await h.app.getJob(ref);
  assert.equal(job.state, 'succeeded');
  assert.equal(job.result, 'finished');
});

test('SIGINT twice: running jobs are aborted and go back to pending (one that ignores its signal is abandoned, and said so); exit 0', {
  timeout: 60_000,
}, async () => {
  const p = await startWorkerProcess({ HARD_STOP_GRACE_MS: '200' });
  const honouring = await pushAndStart(p, { ms: 60_000, honour: true });
  const ignoring = await pushAndStart(p, { ms: 60_000, honour: false });
  p.child.kill('SIGINT');
  await p.printed(/SIGINT: stopping: waiting for 2 running jobs, up to 30 s; press Ctrl-C again to abort them/);
  p.child.kill('SIGINT');
  const [code] = await p.exited;
  assert.equal(code, 0, p.stderr());
  assert.match(
    p.stderr(),
    /SIGINT again: aborting 2 running jobs; they go back to the queue \(a handler that ignores ctx\.signal is abandoned after 0\.2 s\); press Ctrl-C again to exit at once/,
  );
  assert.match(p.stderr(), /1 handler ignored ctx\.signal for hardStopGraceMs and was abandoned/);
  for (const ref of [honouring, ignoring]) {
    const job = await h.app.getJob(ref);
    assert.equal(job.state, 'pending', `job ${ref.id} went back to the queue`);
    assert.equal(job.errors.at(-1)?.code, 'DOCKET_WORKER_SHUTDOWN', 'the interruption is recorded');
  }
  await h.app.cancelJob(honouring);
  await h.app.cancelJob(ignoring);
});

test('SIGINT three times: the process exits at once with 130; a job whose handler would not stop is left running', { timeout: 60_000 }, async () => {
  const p = await startWorkerProcess({ HARD_STOP_GRACE_MS: '60000' });
  const ref = await pushAndStart(p, { ms: 60_000, honour: false });
  p.child.kill('SIGINT');
  await p.printed(/stopping: waiting for 1 running job/);
  p.child.kill('SIGINT');
  await p.printed(/aborting 1 running job/);
  p.child.kill('SIGINT');
  const [code] = await p.exited;
  assert.equal(code, 130, p.stderr());
  assert.match(p.stderr(), /SIGINT a third time: exiting at once; 1 running job stay running until a stale-heartbeat sweep requeues them/);
  assert.equal((await h.app.getJob(ref)).state, 'running');
  await h.app.cancelJob(ref);
});

test('two workers in one process: one SIGTERM stops both; the process exits 0 once both have stopped', { timeout: 60_000 }, async () => {
  const p = await startWorkerProcess({ SECOND_WORKER: '1' });
  const rows = async () => (await h.app.listWorkers()).filter((w) => w.pid === p.child.pid).length;
  assert.equal(await rows(), 2);
  const ref = await pushAndStart(p, { ms: 300, honour: true });
  p.child.kill('SIGTERM');
  const [code] = await p.exited;
  assert.equal(code, 0, p.stderr());
  assert.equal((await h.app.getJob(ref)).state, 'succeeded');
  assert.equal(await rows(), 0, 'both workers removed their heartbeat rows before the exit');
});

test('code awaiting worker.stopped gets to finish its cleanup; the process then ends by itself with 0', { timeout: 60_000 }, async () => {
  const p = await startWorkerProcess({ CLEANUP_MS: '300' });
  p.child.kill('SIGTERM');
  const [code] = await p.exited;
  assert.equal(code, 0, p.stderr());
  assert.match(p.stderr(), /cleanup done/);
});

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (message: string) => void lines.push(message);
  return { lines, debug: log, info: log, warn: log, error: log };
}

test('in a process where something else listens for the signal (a test runner, your code), the worker stops but never exits the process', {
  timeout: 30_000,
}, async () => {
  const logger = recordingLogger();
  const app = new Docket({ connection: h.db.url, logger });
  const before = process.listenerCount('SIGTERM');
  const ours = () => {};
  process.on('SIGTERM', ours);
  try {
    const a = new Worker(app, { jobs: [work], queues: { default: {} } });
    const b = new Worker(app, { jobs: [work], queues: { default: {} } });
    await a.start();
    await b.start();
    assert.equal(process.listenerCount('SIGTERM'), before + 2, 'one listener for all workers (plus ours)');
    process.kill(process.pid, 'SIGTERM');
    await Promise.all([a.stopped, b.stopped]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(process.listenerCount('SIGTERM'), before + 1, 'the workers removed their listener');
    assert.ok(
      logger.lines.some((l) => /not exiting: another SIGTERM listener is installed/.test(l)),
      logger.lines.join('\n'),
    );
  } finally {
    process.off('SIGTERM', ours);
    await app.close();
  }
});

test('handleSignals: false installs no listener; a worker stopped by stop() removes the shared one', async () => {
  const app = new Docket({ connection: h.db.url, logger: false });
  const before = process.listenerCount('SIGINT');
  try {
    const quiet = new Worker(app, { jobs: [work], queues: { default: {} }, handleSignals: false });
    await quiet.start();
    assert.equal(process.listenerCount('SIGINT'), before);
    const handling = new Worker(app, { jobs: [work], queues: { default: {} } });
    await handling.start();
    assert.equal(process.listenerCount('SIGINT'), before + 1);
    await handling.stop();
    assert.equal(process.listenerCount('SIGINT'), before);
    await quiet.stop();
    assert.throws(
      () => new Worker(app, { jobs: [work], queues: { default: {} }, handleSignals: 'yes' as never }),
      /`handleSignals` must be true or false/,
    );
  } finally {
    await app.close();
  }
});

test('an abandoned async handler: its job is back in the queue at once, the worker warns, and its database calls fail once the app is closed', {
  timeout: 30_000,
}, async () => {
  const warnings: string[] = [];
  const logger = { ...recordingLogger(), warn: (m: string) => void warnings.push(m) };
  const app = new Docket({ connection: h.db.url, logger });
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  let lateQuery: Promise<unknown> | null = null;
  const stubborn = defineJob({ name: 'stubborn', queue: 'abandon' }, async () => {
    started();
    await released; // ignores ctx.signal
    lateQuery = app.sql`SELECT 1`;
    await lateQuery.catch(() => undefined);
  });
  const worker = new Worker(app, { jobs: [stubborn], queues: { abandon: {} }, hardStopGraceMs: 50, handleSignals: false });
  await worker.start();
  const ref = await app.push(stubborn);
  await running;
  await worker.stop({ timeoutMs: 0 });
  assert.equal((await app.getJob(ref)).state, 'pending', 'back in the queue although the handler still runs');
  assert.ok(
    warnings.some((w) => /1 handler ignored ctx\.signal for hardStopGraceMs and was abandoned/.test(w)),
    warnings.join('\n'),
  );
  await app.cancelJob(ref);
  await app.close();
  release();
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(lateQuery, 'the abandoned handler ran on after the stop');
  await assert.rejects(lateQuery!, (e: unknown) => (e as { code?: string }).code === 'CONNECTION_ENDED');
});
