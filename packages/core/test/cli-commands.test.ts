import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defineJob, type JobRecord, type Worker } from '@docket/core';
import { type Harness, harness } from './helpers.js';

const cli = new URL('../src/cli/docket.ts', import.meta.url).pathname;
const core = new URL('../src/index.ts', import.meta.url).href;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

// tsx by its resolved location, so that a child started in another directory still finds it.
const execArgv = process.execArgv.map((arg) => (arg === 'tsx' ? import.meta.resolve('tsx') : arg));

/** Runs the `docket` command line in a child process (the source entry, through tsx, as the workspace resolves it). */
function docket(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...execArgv, cli, ...args],
      { env: { ...process.env, ...options.env }, cwd: options.cwd },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

/** Asserts an error run: its exit code, one line naming `pattern` on stderr, and no stack trace. */
function assertError(run: Run, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, `exit code of: ${run.stderr}`);
  const first = run.stderr.split('\n')[0]!;
  assert.match(first, /^docket: /);
  assert.match(first, pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
}

const echo = defineJob({ name: 'cli.echo', queue: 'cli-q' }, async (args: { n: number }) => args.n);
const fails = defineJob({ name: 'cli.fails', queue: 'cli-q', maxAttempts: 1 }, async () => {
  throw new Error('broken on purpose');
});

describe('docket commands against a real database', () => {
  let h: Harness;
  let url: string;
  let failed: JobRecord;
  let worker: Worker;
  before(async () => {
    h = await harness();
    url = h.db.url;
    worker = await h.worker({ jobs: [echo, fails], queues: { 'cli-q': {} }, id: 'cli-worker' });
    const refs = await h.app.pushMany([...Array.from({ length: 5 }, (_, n) => echo.withArgs({ n })), fails]);
    for (const ref of refs) await h.app.waitForJob(ref, { timeoutMs: 20_000 });
    failed = await h.app.getJob(refs[5]!);
    // Waiting in a queue nobody serves.
    await h.app.pushMany([
      defineJob({ name: 'cli.later', queue: 'cli-idle' }, async () => {}),
      defineJob({ name: 'cli.later', queue: 'cli-idle' }, async () => {}),
    ]);
  });
  after(() => h.close());

  test('queues, queue pause/resume, workers, stats: tables and --json agree with the operations API', { timeout: 300_000 }, async () => {
    const queues = await docket(['queues', '--url', url, '--json']);
    assert.equal(queues.code, 0, queues.stderr);
    const list = JSON.parse(queues.stdout) as Array<{ name: string; paused: boolean; pending: number; failed: number; workers: number }>;
    const q = list.find((x) => x.name === 'cli-q')!;
    const idle = list.find((x) => x.name === 'cli-idle')!;
    assert.deepEqual([q.paused, q.failed, q.workers], [false, 1, 1]);
    assert.deepEqual([idle.pending, idle.workers], [2, 0]);

    const paused = await docket(['queue', 'pause', 'cli-q'], { env: { DATABASE_URL: url } });
    assert.equal(paused.stdout.trim(), 'queue cli-q paused');
    assert.equal((await h.app.listQueues()).find((x) => x.name === 'cli-q')?.paused, true);
    const table = await docket(['queues', '--url', url]);
    assert.match(table.stdout, /^QUEUE\s+PAUSED\s+PENDING\s+RUNNING\s+WAITING\s+FAILED\s+LAG\s+WORKERS$/m);
    assert.match(table.stdout, /^cli-q\s+yes\s+0\s+0\s+0\s+1\s+/m);
    assert.equal((await docket(['queue', 'resume', 'cli-q', '--url', url])).stdout.trim(), 'queue cli-q resumed');
    assert.equal((await h.app.listQueues()).find((x) => x.name === 'cli-q')?.paused, false);

    const workers = JSON.parse((await docket(['workers', '--url', url, '--json'])).stdout) as Array<{ id: string; queues: string[] }>;
    assert.deepEqual(
      workers.map((w) => w.id),
      [worker.id],
    );
    assert.match((await docket(['workers', '--url', url])).stdout, /^cli-worker\s+\S+\s+\d+\s+cli-q\s+0\s+/m);

    const stats = JSON.parse((await docket(['stats', '--url', url, '--json'])).stdout) as { jobs: Record<string, number>; workersAlive: number };
    const counts = await h.app.countJobs();
    for (const state of ['pending', 'succeeded', 'failed'] as const) {
      assert.equal(
        stats.jobs[state],
        counts.filter((c) => c.state === state).reduce((n, c) => n + c.count, 0),
        state,
      );
    }
    assert.equal(stats.workersAlive, 1);
    assert.match((await docket(['stats', '--url', url])).stdout, /^succeeded\s+5$/m);
  });

  test('jobs pages with --before; job show, retry and cancel; refused operations exit 1', { timeout: 300_000 }, async () => {
    const first = await docket(['jobs', '--url', url, '--queue', 'cli-q', '--limit', '2']);
    assert.equal(first.code, 0, first.stderr);
    const lines = first.stdout.trim().split('\n');
    assert.match(lines[0]!, /^ID\s+QUEUE\s+NAME\s+STATE\s+ATTEMPT\s+CREATED\s+FINISHED$/);
    assert.equal(lines.length, 4, 'a header, two jobs and where the next page starts');
    const more = /^more: add --before (\d+)$/.exec(lines[3]!);
    assert.ok(more, lines[3]);
    const page1 = (await h.app.listJobs({ queue: 'cli-q', limit: 2 })).jobs;
    assert.equal(more[1], page1[1]!.id);
    const next = JSON.parse((await docket(['jobs', '--url', url, '--queue', 'cli-q', '--limit', '2', '--before', more[1]!, '--json'])).stdout) as {
      jobs: JobRecord[];
    };
    const page2 = (await h.app.listJobs({ queue: 'cli-q', limit: 2, cursor: (await h.app.listJobs({ queue: 'cli-q', limit: 2 })).nextCursor })).jobs;
    assert.deepEqual(
      next.jobs.map((j) => j.id),
      page2.map((j) => j.id),
    );
    const onlyFailed = JSON.parse((await docket(['jobs', '--url', url, '--state', 'failed', '--json'])).stdout) as { jobs: JobRecord[]; next: null };
    assert.deepEqual(
      onlyFailed.jobs.map((j) => j.id),
      [failed.id],
    );
    assert.equal(onlyFailed.next, null);

    const shown = await docket(['job', 'show', failed.id, '--url', url]);
    assert.match(shown.stdout, /^state\s+failed$/m);
    assert.match(shown.stdout, /^error\s+attempt 1 at .*: Error: broken on purpose$/m);
    const asJson = JSON.parse((await docket(['job', 'show', failed.id, '--url', url, '--json'])).stdout) as JobRecord;
    assert.equal(asJson.id, failed.id);
    assert.equal(asJson.errors[0]!.message, 'broken on purpose');

    await h.app.pauseQueue('cli-q'); // so the retried job stays pending while we look
    const retried = await docket(['job', 'retry', failed.id, '--url', url]);
    assert.equal(retried.stdout.trim(), `job ${failed.id} is pending`);
    assertError(await docket(['job', 'retry', failed.id, '--url', url]), 1, /DOCKET_JOB_STATE: Job \d+ is pending/);
    const cancelled = await docket(['job', 'cancel', failed.id, '--url', url]);
    assert.equal(cancelled.stdout.trim(), `job ${failed.id} is cancelled`);
    assert.equal((await h.app.getJob(failed.id)).state, 'cancelled');
    await h.app.resumeQueue('cli-q');
    assertError(await docket(['job', 'show', '987654', '--url', url]), 1, /DOCKET_JOB_NOT_FOUND/);
  });

  test('bad arguments print usage and exit 2; database and config errors are one coded line', { timeout: 300_000 }, async () => {
    for (const args of [
      ['jobs', '--url', url, '--limit', '0'],
      ['jobs', '--url', url, '--bogus', 'x'],
      ['jobs', '--url', url, '--state', 'done'],
      ['job', 'show', 'abc', '--url', url],
      ['job', 'frob', '1', '--url', url],
      ['queue', 'pause', '--url', url],
      ['queues', 'extra', '--url', url],
      ['no-such-command'],
      ['queues'],
    ]) {
      const run = await docket(args, { env: { DATABASE_URL: '' } });
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^docket: .+\n\nusage: /, args.join(' '));
    }
    assertError(await docket(['queue', 'pause', 'bad name!', '--url', url]), 2, /DOCKET_INVALID_QUEUE_NAME/);
    assertError(await docket(['queues', '--url', 'postgres://postgres@127.0.0.1:1/nothing']), 3, /DOCKET_CONNECTION_FAILED/);
    assertError(await docket(['stats', '--url', url, '--schema', 'not_migrated']), 3, /DOCKET_MIGRATIONS_PENDING/);
    assertError(await docket(['queues', '--config', join(tmpdir(), 'no-such-config.mjs')]), 4, /DOCKET_CONFIG_INVALID/);
    const help = await docket(['help', 'jobs']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: docket jobs /);
  });
});

test('docket worker CONFIG runs the config module’s worker and stops gracefully on SIGTERM with exit 0', { timeout: 300_000 }, async () => {
  const h = await harness();
  const dir = await mkdtemp(join(tmpdir(), 'docket-cli-worker-'));
  try {
    const config = join(dir, 'docket.config.mjs');
    await writeFile(
      config,
      `import { Docket, defineJob } from ${JSON.stringify(core)};
       const echo = defineJob({ name: 'cli.echo', queue: 'cli-worker-q' }, async (args) => ({ doubled: args.n * 2 }));
       export default async () => ({
         app: new Docket({ connection: ${JSON.stringify(h.db.url)}, logger: false }),
         worker: { jobs: [echo], queues: { 'cli-worker-q': {} }, id: 'from-config' },
       });`,
    );
    const child = spawn(process.execPath, [...process.execArgv, cli, 'worker', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const started = new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('started')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`worker exited (${code}) before starting: ${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await started;
    assert.match(stderr, /docket: worker from-config started on queues cli-worker-q/);
    const job = defineJob({ name: 'cli.echo', queue: 'cli-worker-q' }, async (_args: { n: number }) => ({ doubled: 0 }));
    const done = await h.app.waitForJob(await h.app.push(job.withArgs({ n: 21 })), { timeoutMs: 20_000 });
    assert.deepEqual(done.result, { doubled: 42 });
    assert.equal(done.workerId, 'from-config');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(stderr, /worker from-config stopped/);
    assert.deepEqual(await h.app.listWorkers(), [], 'the worker removed its heartbeat row');

    // A config without worker options cannot run a worker.
    const appOnly = join(dir, 'app-only.mjs');
    await writeFile(
      appOnly,
      `import { Docket } from ${JSON.stringify(core)}; export default new Docket({ connection: ${JSON.stringify(h.db.url)} });`,
    );
    assertError(await docket(['worker', appOnly]), 4, /DOCKET_CONFIG_INVALID: .*needs the worker's options/);
  } finally {
    await h.close();
  }
});

test('docket NAME runs the docket-NAME executable a package installed (the extension point), with its arguments and exit code', {
  timeout: 60_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'docket-cli-ext-'));
  const bin = join(dir, 'node_modules', '.bin');
  await mkdir(bin, { recursive: true });
  const script = join(bin, 'docket-hello');
  await writeFile(script, '#!/bin/sh\necho "hello $*"\nexit 7\n');
  await chmod(script, 0o755);
  const nested = join(dir, 'app', 'src');
  await mkdir(nested, { recursive: true });
  const run = await docket(['hello', 'a', '--b'], { cwd: nested });
  assert.equal(run.stdout, 'hello a --b\n');
  assert.equal(run.code, 7);

  const missing = await docket(['nothing-here'], { cwd: nested, env: { PATH: '/nonexistent' } });
  assert.equal(missing.code, 2, 'an unknown command with no executable is a usage error');
  assert.match(
    missing.stderr + missing.stdout,
    /unknown command 'nothing-here' \(and no executable docket-nothing-here in node_modules\/\.bin or PATH\)/,
  );
  assert.equal((await docket(['../escape'], { cwd: nested })).code, 2, 'only plain command names are looked up');
});
