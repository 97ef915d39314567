/**
 * Recycled executors: a thread or process executor replaces its runner after N attempts or above
 * a memory mark, between attempts, so no job is lost or run twice; the async executor refuses the
 * option and says why. Jobs record each run in a file from the runner itself.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DocketError, type JobRecord, type Worker } from '@docket/core';
import { hold, mark } from './fixtures/recycle-jobs.js';
import { type Harness, harness } from './helpers.js';

const JOBS_MODULE = new URL('./fixtures/recycle-jobs.ts', import.meta.url);
const WAIT = { timeoutMs: 60_000 };
const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;

type Where = { pid: number; threadId: number };

let h: Harness;
let dir: string;
before(async () => {
  h = await harness();
  dir = mkdtempSync(join(tmpdir(), 'docket-recycle-'));
});
after(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Pushes `n` mark jobs, waits for them all, and returns them with the runs the file recorded. */
async function markJobs(worker: Worker, n: number, file: string): Promise<{ jobs: JobRecord<unknown, Where>[]; runs: string[] }> {
  try {
    const refs = await h.app.pushMany(Array.from({ length: n }, () => mark.withArgs({ file })));
    const jobs = (await Promise.all(refs.map((r) => h.app.waitForJob(r, WAIT)))) as JobRecord<unknown, Where>[];
    return { jobs, runs: readFileSync(file, 'utf8').trim().split('\n') };
  } finally {
    await worker.stop();
  }
}

describe('recycled executors', () => {
  test('process executor, recycle after 10 jobs: 100 jobs run in 10 child processes in turn, each job once', { timeout: 120_000 }, async () => {
    const worker = await h.worker({
      jobs: [mark],
      jobsModule: JOBS_MODULE,
      queues: { recycle: { executor: 'process', concurrency: 1, recycle: { afterJobs: 10 } } },
    });
    const { jobs, runs } = await markJobs(worker, 100, join(dir, 'process.txt'));
    assert.ok(
      jobs.every((j) => j.state === 'succeeded' && j.attempt === 1),
      'every job succeeded at its first attempt',
    );
    assert.equal(runs.length, 100, 'a hundred runs recorded');
    assert.equal(new Set(runs).size, 100, 'no job ran twice');
    // In run order (one at a time): ten pids, each running ten jobs in a row.
    const byRun = [...jobs].sort((a, b) => a.startedAt!.getTime() - b.startedAt!.getTime() || Number(a.id) - Number(b.id));
    const pids = byRun.map((j) => j.result!.pid);
    assert.equal(new Set(pids).size, 10, `ten child processes: ${[...new Set(pids)].join(', ')}`);
    for (let i = 0; i < 100; i += 10) assert.equal(new Set(pids.slice(i, i + 10)).size, 1, `jobs ${i + 1}–${i + 10} ran in one process`);
    assert.ok(!pids.includes(process.pid));
  });

  // (A thread loads the jobs module through tsx here, which takes a second or two: few threads.)
  test('thread executor, 3 at a time, recycle after 4 jobs: 36 jobs, each run once, in recycled threads', { timeout: 120_000 }, async () => {
    const worker = await h.worker({
      jobs: [mark],
      jobsModule: JOBS_MODULE,
      queues: { recycle: { executor: 'thread', concurrency: 3, recycle: { afterJobs: 4 } } },
    });
    const { jobs, runs } = await markJobs(worker, 36, join(dir, 'thread.txt'));
    assert.ok(jobs.every((j) => j.state === 'succeeded' && j.attempt === 1));
    assert.deepEqual([runs.length, new Set(runs).size], [36, 36], 'every job ran, none twice');
    const perThread = new Map<number, number>();
    for (const j of jobs) perThread.set(j.result!.threadId, (perThread.get(j.result!.threadId) ?? 0) + 1);
    assert.ok(perThread.size >= 9, `at least 36 / 4 threads (${perThread.size})`);
    assert.ok(
      [...perThread.values()].every((n) => n <= 5),
      'no thread ran more than 4 jobs',
    );
  });

  for (const executor of ['thread', 'process'] as const) {
    // A thread's mark is on its V8 heap in use, which a job that holds nothing barely moves; a
    // process's on its resident set, which grows by tens of MB as a fresh process warms up.
    const marginMb = executor === 'thread' ? 48 : 160;
    test(`${executor} executor, recycle above a memory mark: a runner that holds memory past the mark is replaced`, {
      timeout: 120_000,
    }, async () => {
      // The mark: what a runner measures after a few jobs that hold nothing, plus the margin.
      type Measured = Where & { rssMb: number; heapMb: number };
      const probe = await h.worker({ jobs: [hold], jobsModule: JOBS_MODULE, queues: { recycle: { executor, concurrency: 1 } } });
      let baseMb = 0;
      try {
        for (let i = 0; i < 3; i++) {
          const measured = (await h.app.waitForJob(await h.app.push(hold.withArgs({ mb: 0 })), WAIT)).result as Measured;
          baseMb = Math.max(baseMb, executor === 'process' ? measured.rssMb : measured.heapMb);
        }
      } finally {
        await probe.stop();
      }
      const worker = await h.worker({
        jobs: [hold],
        jobsModule: JOBS_MODULE,
        queues: { recycle: { executor, concurrency: 1, recycle: { aboveMemoryMb: Math.ceil(baseMb) + marginMb } } },
      });
      try {
        const run = async (mb: number) => {
          const job = await h.app.waitForJob(await h.app.push(hold.withArgs({ mb })), WAIT);
          assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
          return job.result as Where;
        };
        const where = (w: Where) => (executor === 'process' ? w.pid : w.threadId);
        const first = await run(0);
        const second = await run(0);
        assert.equal(where(second), where(first), 'under the mark: the same runner');
        const holder = await run(2 * marginMb);
        assert.equal(where(holder), where(first), 'the job that crosses the mark runs to its end where it started');
        const after = await run(0);
        assert.notEqual(where(after), where(first), 'the next job runs in a fresh runner');
        assert.equal(where(await run(0)), where(after), 'which is kept while it stays under the mark');
      } finally {
        await worker.stop();
      }
    });
  }

  test('bad recycle options are coded errors; the async executor refuses recycling and says why', async () => {
    const queue = (recycle: unknown, executor: 'async' | 'thread' | 'process' = 'process') => ({ recycle: { executor, recycle } as never });
    const make = (queues: Record<string, unknown>) => () => h.worker({ jobs: [mark], jobsModule: JOBS_MODULE, queues: queues as never });
    await assert.rejects(make(queue({ afterJobs: 0 })), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(make(queue({ afterJobs: 1.5 })), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(make(queue({ aboveMemoryMb: -1 })), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(make(queue({})), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(
      make(queue({ afterJob: 5 })),
      (e: unknown) => code('DOCKET_INVALID_OPTION')(e) && /did you mean `afterJobs`/.test((e as Error).message),
    );
    await assert.rejects(make(queue(5)), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(
      make(queue({ afterJobs: 5 }, 'async')),
      (e: unknown) => code('DOCKET_INVALID_OPTION')(e) && /own event loop/.test((e as Error).message),
    );
    // The async executor coming from the queue's declaration is refused when the worker starts.
    await h.app.declareQueue('declared-async', { executor: 'async' });
    await assert.rejects(
      make({ 'declared-async': { recycle: { afterJobs: 5 } } }),
      (e: unknown) => code('DOCKET_INVALID_OPTION')(e) && /own event loop/.test((e as Error).message),
    );
  });
});
