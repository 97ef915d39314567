/**
 * The async, thread and process executors against a real PostgreSQL: results, time and memory
 * limits (with retries), thrown errors, crashes, cancellation and shutdown — and after each, the
 * same worker still runs a normal job. Plus the pool and the runner's helpers on their own.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { threadId } from 'node:worker_threads';
import {
  Docket,
  defineJob,
  ExecutorFailedError,
  isJobDefinition,
  type JobContext,
  type JobRecord,
  LimitExceededError,
  type RunningJob,
  Worker,
} from '@docket/core';
import { createTestDatabase, expectOutput, type TestDatabase, waitFor } from '@docket/testing';
import { runnerExecArgv, runnerUrl } from '../src/executors/pool.js';
import { ProcessExecutor } from '../src/executors/process.js';
import { collectJobs, deserializeError, deserializeThrown, jobsModuleUrl, serializeError } from '../src/executors/runner.js';
import { ThreadExecutor } from '../src/executors/thread.js';
import { AttemptAbort } from '../src/worker/attempt-abort.js';
import * as fixtures from './fixtures/executor-jobs.js';
import { add, boom, crash, hang, hog, inspectContext, report, spin, throwValue, unsendable } from './fixtures/executor-jobs.js';

const JOBS_MODULE = new URL('./fixtures/executor-jobs.ts', import.meta.url);
const WAIT = { timeoutMs: 30_000 };
const EXECUTORS = [
  { queue: 'a', kind: 'async' },
  { queue: 't', kind: 'thread' },
  { queue: 'p', kind: 'process' },
] as const;
const REMOTE = EXECUTORS.filter((e) => e.kind !== 'async');

/** In the worker's `jobs` but not exported by the jobs module. */
const missing = defineJob({ name: 'exec.missing' }, () => 'never runs');

let db: TestDatabase;
let app: Docket;
let worker: Worker;

before(async () => {
  db = await createTestDatabase();
  app = new Docket({ connection: db.url, logger: false });
  await app.migrate();
  const queue = (executor: 'async' | 'thread' | 'process') => ({ executor, concurrency: 2, pollIntervalMs: 50 });
  worker = new Worker(app, {
    jobs: [...(Object.values(fixtures) as unknown[]).filter(isJobDefinition), missing],
    jobsModule: JOBS_MODULE,
    hardStopGraceMs: 100,
    queues: { a: queue('async'), t: queue('thread'), p: queue('process') },
  });
  await worker.start();
});

after(async () => {
  await worker?.stop({ timeoutMs: 0 });
  await app?.close();
  await db?.drop();
});

type AddResult = { sum: number; pid: number; threadId: number };

async function runAdd(queue: string, a = 2, b = 3): Promise<JobRecord<unknown, AddResult>> {
  const ref = await app.push(add.withArgs({ a, b }).withQueue(queue));
  const job = await app.waitForJob(ref, WAIT);
  assert.equal(job.state, 'succeeded', `exec.add on queue ${queue}: ${JSON.stringify(job.errors)}`);
  assert.equal(job.result!.sum, a + b);
  return job as JobRecord<unknown, AddResult>;
}

async function waitUntilRunning(id: string): Promise<void> {
  await waitFor(async () => (await app.getJob(id)).state === 'running', { timeoutMs: 30_000, message: `job ${id} to be running` });
}

describe('on a worker', () => {
  test('a job runs and returns its result on each executor, where that executor runs it', async () => {
    const [onAsync, onThread, onProcess] = await Promise.all(EXECUTORS.map((e) => runAdd(e.queue)));
    assert.equal(onAsync!.result!.pid, process.pid);
    assert.equal(onAsync!.result!.threadId, threadId);
    assert.equal(onThread!.result!.pid, process.pid);
    assert.notEqual(onThread!.result!.threadId, threadId, 'ran in another thread');
    assert.notEqual(onProcess!.result!.pid, process.pid, 'ran in another process');
  });

  for (const { queue, kind } of REMOTE) {
    test(`${kind}: an idle runner is reused for the next job`, async () => {
      const first = await runAdd(queue);
      const second = await runAdd(queue, 10, 20);
      assert.deepEqual([second.result!.pid, second.result!.threadId], [first.result!.pid, first.result!.threadId]);
    });

    test(`${kind}: the handler's ctx carries the job and the worker id, no app`, async () => {
      const ref = await app.push(inspectContext.withQueue(queue));
      const job = await app.waitForJob(ref, WAIT);
      assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
      assert.deepEqual(job.result, { jobId: ref.id, attempt: 1, queue, createdAtIsDate: true, workerId: worker.id, app: null, hasSignal: true });
    });
  }

  for (const { queue, kind } of EXECUTORS) {
    test(`${kind}: ctx.progress reports reach the job, the last one is kept, bad reports throw coded errors where they are made`, async () => {
      const job = await app.waitForJob(await app.push(report.withArgs({ reports: 5000 }).withQueue(queue)), WAIT);
      assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
      assert.deepEqual((job.result as { codes: string[] }).codes, ['DOCKET_INVALID_OPTION', 'DOCKET_INVALID_OPTION', 'DOCKET_ARGS_NOT_SERIALIZABLE']);
      assert.deepEqual(
        [job.progress?.value, job.progress?.data, job.progress?.attempt],
        [100, { i: 5000 }, 1],
        'the last report, stored with the outcome',
      );
      assert.ok(job.progress!.at instanceof Date);
    });
  }

  for (const { queue, kind } of EXECUTORS) {
    const stuck = kind === 'async' ? hang : spin;
    test(`${kind}: the time limit stops ${stuck.jobName}, retries it, then fails it with DOCKET_LIMIT_EXCEEDED`, async () => {
      const ref = await app.push(stuck.withQueue(queue).withLimits({ timeoutMs: 300 }).withMaxAttempts(2));
      const job = await app.waitForJob(ref, WAIT);
      assert.equal(job.state, 'failed');
      assert.equal(job.attempt, 2, 'retried once');
      assert.equal(job.errors.length, 2);
      for (const error of job.errors) {
        assert.equal(error.code, 'DOCKET_LIMIT_EXCEEDED');
        assert.match(error.message, /time limit of 300 ms/);
      }
      await runAdd(queue);
    });
  }

  for (const { queue, kind } of EXECUTORS) {
    test(`${kind}: a thrown string or number is recorded as what it is (NonError, the value as message, no stack) and reaches retry predicates unchanged`, async () => {
      for (const [value, text] of [
        ['just a string', 'just a string'],
        [42, '42'],
        [null, 'null'],
      ] as const) {
        const job = await app.waitForJob(await app.push(throwValue.withArgs({ value }).withQueue(queue)), WAIT);
        assert.equal(job.state, 'failed');
        assert.equal(job.attempt, value === null ? 3 : 1, 'noRetry saw the string/number itself (null is retried until attempts run out)');
        const [error] = job.errors;
        assert.equal(error!.name, 'NonError');
        assert.equal(error!.message, text);
        assert.equal(error!.stack, undefined, 'no stack made up by Docket');
        assert.equal(error!.code, undefined);
      }
      await runAdd(queue);
    });
  }

  for (const { queue, kind } of REMOTE) {
    test(`${kind}: the memory limit stops a job that allocates without end, with DOCKET_LIMIT_EXCEEDED`, async () => {
      // A child process that runs out of heap prints V8's fatal-error report on the stderr it shares with us.
      const job = await expectOutput(`the ${kind} runner's report of its heap running out (memory-limit test)`, async () =>
        app.waitForJob(await app.push(hog.withQueue(queue).withLimits({ memoryMb: 64 })), WAIT),
      );
      assert.equal(job.state, 'failed');
      assert.equal(job.errors.length, 1);
      assert.equal(job.errors[0]!.code, 'DOCKET_LIMIT_EXCEEDED');
      assert.match(job.errors[0]!.message, /memory limit of 64 MB/);
      await runAdd(queue);
    });

    test(`${kind}: a thrown error keeps its name, message and stack; a retry predicate on the name applies`, async () => {
      const ref = await app.push(boom.withArgs({ message: `kaboom in a ${kind}` }).withQueue(queue));
      const job = await app.waitForJob(ref, WAIT);
      assert.equal(job.state, 'failed');
      assert.equal(job.attempt, 1, 'noRetry predicate matched the rebuilt error (maxAttempts is 3)');
      const [error] = job.errors;
      assert.equal(error!.name, 'CustomError');
      assert.equal(error!.message, `kaboom in a ${kind}`);
      assert.match(error!.stack ?? '', /executor-jobs\.ts/);
      await runAdd(queue);
    });

    test(`${kind}: a runner that exits in the middle of a job fails it with DOCKET_EXECUTOR_FAILED; the worker lives on`, async () => {
      const ref = await app.push(crash.withArgs({ code: 7 }).withQueue(queue));
      const job = await app.waitForJob(ref, WAIT);
      assert.equal(job.state, 'failed');
      assert.equal(job.errors[0]!.code, 'DOCKET_EXECUTOR_FAILED');
      assert.match(job.errors[0]!.message, /exec\.crash/);
      assert.match(job.errors[0]!.message, /exited with code 7/);
      await runAdd(queue);
    });

    test(`${kind}: a job the jobs module does not export fails with DOCKET_EXECUTOR_FAILED`, async () => {
      const job = await app.waitForJob(await app.push(missing.withQueue(queue)), WAIT);
      assert.equal(job.state, 'failed');
      assert.equal(job.errors[0]!.code, 'DOCKET_EXECUTOR_FAILED');
      assert.match(job.errors[0]!.message, /'exec\.missing' .* is not exported by jobsModule/);
    });

    test(`${kind}: a result that cannot be sent back fails with DOCKET_RESULT_NOT_SERIALIZABLE`, async () => {
      const job = await app.waitForJob(await app.push(unsendable.withQueue(queue)), WAIT);
      assert.equal(job.state, 'failed');
      assert.equal(job.errors[0]!.code, 'DOCKET_RESULT_NOT_SERIALIZABLE');
    });

    test(`${kind}: cancelling a running (busy-looping) job ends it cancelled`, async () => {
      const ref = await app.push(spin.withQueue(queue));
      await waitUntilRunning(ref.id);
      await app.cancelJob(ref);
      const job = await app.waitForJob(ref, WAIT);
      assert.equal(job.state, 'cancelled');
      await runAdd(queue);
    });
  }
});

test('stopping a worker terminates a busy thread and gives its job back unspent', async () => {
  const other = new Worker(app, {
    jobs: [spin],
    jobsModule: JOBS_MODULE,
    queues: { 'stop-t': { executor: 'thread', concurrency: 1, pollIntervalMs: 50 } },
  });
  await other.start();
  const ref = await app.push(spin.withQueue('stop-t'));
  await waitUntilRunning(ref.id);
  await other.stop({ timeoutMs: 0 });
  const job = await app.getJob(ref);
  assert.equal(job.state, 'pending');
  assert.equal(job.attempt, 0, 'the attempt was not spent');
  assert.deepEqual(
    job.errors.map((e) => e.code),
    ['DOCKET_WORKER_SHUTDOWN'],
  );
});

// -------------------------------------------------------------------------------------------------
// The executors and the runner's helpers on their own (no database)

function attempt(name: string, args: unknown, limits: RunningJob['limits'] = {}) {
  const abort = new AttemptAbort();
  const now = new Date();
  const job: RunningJob = {
    id: String(Math.floor(Math.random() * 1e9)),
    name,
    queue: 'q',
    args,
    errors: [],
    attempt: 1,
    maxAttempts: 1,
    priority: 0,
    meta: {},
    limits,
    scheduledAt: now,
    createdAt: now,
    startedAt: now,
    workerId: null,
  };
  const ctx: JobContext = { job, signal: abort.signal, progress: () => {}, sql: undefined, app: null, workerId: null };
  return { job, ctx, abort };
}

describe('the pool', () => {
  const settings = { jobsModule: JOBS_MODULE.href, hardStopGraceMs: 100, concurrency: 2 };

  for (const Executor of [ThreadExecutor, ProcessExecutor]) {
    test(`${Executor.name}: runners are kept per memory limit, never more than concurrency`, async () => {
      const executor = new Executor(settings);
      try {
        const run = async (memoryMb?: number) => {
          const { job, ctx, abort } = attempt(add.jobName, { a: 1, b: 1 }, memoryMb === undefined ? {} : { memoryMb });
          const result = (await executor.run(add, job, ctx, abort)) as AddResult;
          return `${result.pid}/${result.threadId}`;
        };
        const plain = await run();
        const limited = await run(128);
        assert.notEqual(limited, plain, 'a memory limit gets its own runner');
        assert.equal(await run(128), limited, 'reused for the same limit');
        assert.equal(await run(), plain, 'reused without a limit');
        assert.equal(executor.size, 2);
        const third = await run(256);
        assert.ok(![plain, limited].includes(third));
        assert.equal(executor.size, 2, 'the least recently used idle runner made room');
        assert.equal(await run(), plain, 'the most recently used one stayed');
      } finally {
        await executor.close();
      }
      assert.equal(executor.size, 0);
      const { job, ctx, abort } = attempt(add.jobName, { a: 1, b: 1 });
      await assert.rejects(executor.run(add, job, ctx, abort), { code: 'DOCKET_CLOSED' });
    });

    test(`${Executor.name}: an abort rejects with the signal's reason at once, and the next job gets a new runner`, async () => {
      const executor = new Executor(settings);
      try {
        const { job, ctx, abort } = attempt(spin.jobName, {}, {});
        const running = executor.run(spin, job, ctx, abort);
        const reason = new LimitExceededError('over time');
        // Abort once it is running: a second job on a second runner proves the first one is busy.
        const probe = attempt(add.jobName, { a: 1, b: 2 });
        await executor.run(add, probe.job, probe.ctx, probe.abort);
        abort.abort(reason);
        await assert.rejects(running, (error) => error === reason);
        const next = attempt(add.jobName, { a: 2, b: 2 });
        assert.equal(((await executor.run(add, next.job, next.ctx, next.abort)) as AddResult).sum, 4);
      } finally {
        await executor.close();
      }
    });
  }

  test('a jobs module that cannot be loaded fails the attempt with ExecutorFailedError naming it', async () => {
    const executor = new ThreadExecutor({ ...settings, jobsModule: new URL('./fixtures/no-such-module.ts', import.meta.url).href });
    try {
      const { job, ctx, abort } = attempt(add.jobName, { a: 1, b: 1 });
      await assert.rejects(executor.run(add, job, ctx, abort), (error) => {
        assert.ok(error instanceof ExecutorFailedError);
        assert.match(error.message, /failed to load jobsModule .*no-such-module\.ts/);
        return true;
      });
    } finally {
      await executor.close();
    }
  });

  test('idle runners never keep the process alive', async () => {
    const script = fileURLToPath(new URL('./fixtures/executor-idle-exit.ts', import.meta.url));
    const child = spawn(process.execPath, [...runnerExecArgv(), script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0);
    const report = JSON.parse(out) as { results: AddResult[]; idle: number[] };
    assert.deepEqual(
      report.results.map((r) => r.sum),
      [3, 3],
    );
    assert.deepEqual(report.idle, [1, 1], 'each pool still held its idle runner when the script ended');
  });
});

describe('the runner helpers', () => {
  test('the runner module is found next to the executors (runner.ts from source)', () => {
    assert.match(runnerUrl.pathname, /\/executors\/runner\.ts$/);
    assert.ok(existsSync(runnerUrl));
  });

  test('collectJobs takes named and default exports, single, in arrays and in objects, once each', () => {
    const other = defineJob({ name: 'exec.other' }, () => 1);
    const jobs = collectJobs({ add, default: [add, spin], group: { other, notAJob: 42 }, text: 'x' }, 'test module');
    assert.deepEqual([...jobs.keys()].sort(), ['exec.add', 'exec.other', 'exec.spin']);
    const impostor = defineJob({ name: 'exec.add' }, () => 0);
    assert.throws(() => collectJobs({ add, impostor }, 'test module'), /two different jobs named 'exec\.add'/);
  });

  test('errors cross as name, message, stack and code; Docket errors come back as their class', () => {
    const custom = deserializeError(serializeError(new fixtures.CustomError('nope')));
    assert.ok(!(custom instanceof fixtures.CustomError), 'class identity does not survive');
    assert.equal(custom.name, 'CustomError');
    assert.equal(custom.message, 'nope');
    assert.equal((custom as { code?: string }).code, 'E_CUSTOM');
    assert.match(custom.stack ?? '', /^CustomError: nope/);

    const limit = deserializeError(serializeError(new LimitExceededError('too long', { details: { limit: 'timeoutMs', value: 5 } })));
    assert.ok(limit instanceof LimitExceededError);
    assert.equal((limit as LimitExceededError).code, 'DOCKET_LIMIT_EXCEEDED');
    assert.deepEqual({ ...(limit as LimitExceededError).details }, { limit: 'timeoutMs', value: 5 });

    // A value that is not an Error crosses as itself; its description says NonError, without a stack.
    assert.equal(deserializeThrown(serializeError('plain string')), 'plain string');
    assert.deepEqual(deserializeThrown(serializeError({ not: 'an error' })), { not: 'an error' });
    assert.deepEqual(serializeError({ not: 'an error' }), {
      name: 'NonError',
      message: '{"not":"an error"}',
      thrown: { value: { not: 'an error' } },
    });
    assert.equal(deserializeThrown(serializeError(Symbol('s'))), 'Symbol(s)', 'a value that cannot be cloned crosses as its text');
    assert.ok(deserializeThrown(serializeError(new Error('e'))) instanceof Error);
  });

  test('jobsModule: URLs pass through, paths become file URLs', () => {
    assert.equal(jobsModuleUrl('file:///srv/jobs.js'), 'file:///srv/jobs.js');
    assert.equal(jobsModuleUrl('/srv/jobs.js'), 'file:///srv/jobs.js');
    assert.match(jobsModuleUrl('jobs.js'), /^file:\/\/\/.*\/jobs\.js$/);
  });

  test('runners do not inherit debugger, test, watch or eval flags', () => {
    assert.deepEqual(
      runnerExecArgv([
        '--import',
        'tsx',
        '--inspect=9229',
        '--test-concurrency=2',
        '--watch',
        '-e',
        'code()',
        '--conditions=x',
        '--max-old-space-size=512',
      ]),
      ['--import', 'tsx', '--conditions=x', '--max-old-space-size=512'],
    );
  });
});
