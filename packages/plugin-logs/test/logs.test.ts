import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, defineJob } from '@docket/core';
import { decodeNotices, encodeNotices, jobLogs, type LogLine, PLUGIN_NAME } from '@docket/plugin-logs';
import { waitFor } from '@docket/testing';
import { deferred, type Harness, harness } from './helpers.js';

const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;

test('options are validated', async () => {
  assert.throws(
    () => jobLogs({ limt: 5 } as never),
    (e: unknown) => code('DOCKET_INVALID_OPTION')(e) && /did you mean `limit`/.test((e as Error).message),
  );
  assert.throws(() => jobLogs({ limit: 0 }), code('DOCKET_INVALID_OPTION'));
  assert.throws(() => jobLogs({ minLevel: 'verbose' as never }), code('DOCKET_INVALID_OPTION'));
  assert.throws(() => jobLogs({ forward: 'yes' as never }), code('DOCKET_INVALID_OPTION'));
  assert.equal(jobLogs().name, PLUGIN_NAME);
  // The message names the function the user called (jobLogs, getLogs), not the plugin's name.
  assert.throws(() => jobLogs({ limt: 5 } as never), /Unknown option `limt` in jobLogs\(options\); did you mean `limit`\? Known options: /);
  const logs = jobLogs();
  await using app = new Docket({ connection: 'postgres://127.0.0.1:1/unused', plugins: [logs], logger: false });
  assert.ok(app);
  await assert.rejects(logs.getLogs('1', { tre: true } as never), /in getLogs\(ref, options\); did you mean `tree`\?/);
});

test('notices name each attempt’s last line and stay under the NOTIFY limit', () => {
  const at = new Date();
  const rows = Array.from({ length: 3000 }, (_, i) => ({
    jobId: String(1000 + (i % 600)),
    attempt: 1 + (i % 2),
    seq: i,
    rootId: i % 3 ? '10' : null,
    parentId: i % 5 ? null : '11',
    at,
    level: 'info' as const,
    message: `line ${i}`,
  }));
  const payloads = encodeNotices(rows);
  assert.ok(payloads.length > 1 && payloads.every((p) => Buffer.byteLength(`x:logs:${p}`) < 8000));
  const notices = payloads.flatMap(decodeNotices);
  assert.equal(notices.length, 600, 'one per (job, attempt)');
  const last = rows.filter((r) => r.jobId === '1007').at(-1)!;
  assert.deepEqual(
    notices.find((n) => n.jobId === '1007'),
    { jobId: '1007', rootId: last.rootId, parentId: last.parentId, attempt: last.attempt, lastSeq: last.seq },
  );
});

describe('job logs', () => {
  const logs = jobLogs({ limit: 100, flushIntervalMs: 20 });
  let h: Harness;
  let gate = deferred();
  let reached = deferred();

  const chatty = defineJob({ name: 'chatty', queue: 'logs' }, async ({ n }: { n: number }, ctx) => {
    for (let i = 0; i < n; i++) ctx.log?.(`line ${i}`);
    return n;
  });
  const twice = defineJob({ name: 'twice', queue: 'logs', maxAttempts: 2, retry: { backoff: 'fixed', delayMs: 10 } }, async (_: void, ctx) => {
    for (let i = 0; i < 60; i++) ctx.log?.(`attempt ${ctx.job.attempt} line ${i}`, { level: i % 2 ? 'debug' : 'warn' });
    if (ctx.job.attempt === 1) throw new Error('again');
  });
  const quiet = defineJob({ name: 'quiet', queue: 'logs' }, async (_: void, ctx) => {
    ctx.log?.('quiet 1', { publish: false });
    ctx.log?.('quiet 2', { level: 'debug', publish: false });
    reached.resolve();
    await gate.promise;
    ctx.log?.('loud 3', { level: 'warn' });
    reached.resolve();
    await gate.promise;
    ctx.log?.('tail 4', { publish: false });
    return 'done';
  });
  const child = defineJob({ name: 'child', queue: 'logs' }, async ({ lines, long }: { lines: number; long?: boolean }, ctx) => {
    for (let i = 0; i < lines; i++) ctx.log?.(`child ${ctx.job.id} says ${i}`);
    if (long) ctx.log?.('L'.repeat(5000), { level: 'error' });
  });

  before(async () => {
    h = await harness({ plugins: [logs] });
    await h.worker({ jobs: [chatty, twice, quiet, child], queues: { logs: { concurrency: 4, pollIntervalMs: 50 } } });
  });
  after(() => h.close());

  const count = async (id: string) => (await h.db.sql`SELECT count(*)::int AS n FROM docket.logs_lines WHERE job_id = ${id}`)[0]!.n as number;

  test('10,000 lines from one job with limit 100 keep the newest 100', { timeout: 60_000 }, async () => {
    const ref = await h.app.push(chatty.withArgs({ n: 10_000 }));
    await h.app.waitForJob(ref, { timeoutMs: 30_000 });
    const lines = await logs.getLogs(ref);
    assert.equal(lines.length, 100);
    assert.deepEqual(
      lines.map((l) => l.message),
      Array.from({ length: 100 }, (_, i) => `line ${9900 + i}`),
    );
    assert.deepEqual(
      lines.map((l) => l.seq),
      Array.from({ length: 100 }, (_, i) => 9900 + i),
    );
    assert.ok(lines.every((l) => l.jobId === ref.id && l.attempt === 1 && l.level === 'info' && l.at instanceof Date));
    assert.equal(await count(ref.id), 100, 'older lines are deleted, not just hidden');
    assert.deepEqual(
      (await logs.getLogs(ref, { limit: 3 })).map((l) => l.seq),
      [9997, 9998, 9999],
      'the newest N, oldest first',
    );
  });

  test('the cap counts every attempt of the job: the newest 100 span both', async () => {
    const ref = await h.app.push(twice);
    await waitFor(async () => (await h.app.getJob(ref)).state === 'succeeded', { timeoutMs: 15_000, message: 'second attempt succeeded' });
    const lines = await logs.getLogs(ref);
    assert.equal(lines.length, 100);
    assert.deepEqual(lines[0], { ...lines[0], attempt: 1, seq: 20, message: 'attempt 1 line 20', level: 'warn' });
    assert.deepEqual(lines.at(-1), { ...lines.at(-1)!, attempt: 2, seq: 59, message: 'attempt 2 line 59', level: 'debug' });
  });

  test('publish: false keeps lines in the worker until the next published line; the rest is written with the outcome', async () => {
    gate = deferred();
    reached = deferred();
    const ref = await h.app.push(quiet);
    await reached.promise;
    // Lines logged after the quiet ones, and stored: a flush has run since, and left them out.
    const other = await h.app.push(chatty.withArgs({ n: 1 }));
    await h.app.waitForJob(other, { timeoutMs: 10_000 });
    const probe = await h.app.push(child.withArgs({ lines: 1 }));
    await waitFor(async () => (await count(probe.id)) === 1, { timeoutMs: 10_000, message: 'a later published line is stored' });
    assert.equal(await count(ref.id), 0, 'unpublished lines stay in the worker');

    reached = deferred();
    const release = gate.resolve;
    gate = deferred();
    release();
    await reached.promise;
    await waitFor(async () => (await count(ref.id)) === 3, { timeoutMs: 10_000, message: 'the published line takes the quiet ones along' });
    assert.deepEqual(
      (await logs.getLogs(ref)).map((l) => [l.seq, l.level, l.message]),
      [
        [0, 'info', 'quiet 1'],
        [1, 'debug', 'quiet 2'],
        [2, 'warn', 'loud 3'],
      ],
    );
    gate.resolve();
    await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    // Written in the completion transaction: visible as soon as the outcome is.
    assert.deepEqual(
      (await logs.getLogs(ref)).map((l) => l.message),
      ['quiet 1', 'quiet 2', 'loud 3', 'tail 4'],
    );
  });

  test('a subtask’s lines appear on its top-level job (and its parent), through meta.rootId / meta.parentId', async () => {
    const root = await h.app.push(chatty.withArgs({ n: 2 }));
    await h.app.waitForJob(root, { timeoutMs: 10_000 });
    const kid = await h.app.push(child.withArgs({ lines: 2 }).withMeta({ rootId: root.id, parentId: root.id }));
    await h.app.waitForJob(kid, { timeoutMs: 10_000 });
    const grandkid = await h.app.push(child.withArgs({ lines: 1 }).withMeta({ rootId: root.id, parentId: kid.id }));
    await h.app.waitForJob(grandkid, { timeoutMs: 10_000 });

    const tree = await logs.getLogs(root);
    assert.deepEqual(
      tree.map((l) => [l.jobId, l.message]).sort(),
      [
        [root.id, 'line 0'],
        [root.id, 'line 1'],
        [kid.id, `child ${kid.id} says 0`],
        [kid.id, `child ${kid.id} says 1`],
        [grandkid.id, `child ${grandkid.id} says 0`],
      ].sort(),
    );
    assert.ok(
      tree.filter((l) => l.jobId !== root.id).every((l) => l.rootId === root.id),
      'forwarded lines name the root',
    );
    assert.deepEqual(
      (await logs.getLogs(root, { tree: false })).map((l) => l.jobId),
      [root.id, root.id],
      'tree: false is the job’s own lines',
    );
    assert.deepEqual(
      (await logs.getLogs(kid)).map((l) => l.jobId),
      [kid.id, kid.id, grandkid.id],
      'a parent shows its children’s lines',
    );
    assert.deepEqual(
      (await logs.getLogs(grandkid)).map((l) => l.jobId),
      [grandkid.id],
    );
    assert.equal(await count(kid.id), 2, 'stored once, under the job that logged it');
  });

  test('followLogs delivers stored lines, then new ones of the job and its subtasks as they are written, from another app', {
    timeout: 30_000,
  }, async () => {
    const root = await h.app.push(chatty.withArgs({ n: 3 }));
    await h.app.waitForJob(root, { timeoutMs: 10_000 });
    // A second app (its own pool and LISTEN connection), as a process watching from elsewhere would.
    const viewer = jobLogs();
    const app2 = new Docket({ connection: h.db.url, logger: false, plugins: [viewer] });
    const seen: LogLine[] = [];
    try {
      const stop = await viewer.followLogs(root, (line) => void seen.push(line));
      assert.deepEqual(
        seen.map((l) => l.message),
        ['line 0', 'line 1', 'line 2'],
        'history first',
      );
      const kid = await h.app.push(child.withArgs({ lines: 3, long: true }).withMeta({ rootId: root.id, parentId: root.id }));
      const unrelated = await h.app.push(child.withArgs({ lines: 2 }));
      await waitFor(() => seen.length === 7, { timeoutMs: 10_000, message: 'the subtask’s lines arrive live' });
      assert.deepEqual(
        seen.slice(3).map((l) => [l.jobId, l.message.length > 100 ? `${l.message[0]}×${l.message.length}` : l.message]),
        [
          [kid.id, `child ${kid.id} says 0`],
          [kid.id, `child ${kid.id} says 1`],
          [kid.id, `child ${kid.id} says 2`],
          [kid.id, 'L×5000'],
        ],
      );
      await h.app.waitForJob(unrelated, { timeoutMs: 10_000 });
      stop();
      const after = await h.app.push(child.withArgs({ lines: 1 }).withMeta({ rootId: root.id }));
      await h.app.waitForJob(after, { timeoutMs: 10_000 });
      await waitFor(async () => (await count(after.id)) === 1, { message: 'stored' });
      assert.equal(seen.length, 7, 'nothing after stop(), nothing of unrelated jobs');
    } finally {
      await app2.close();
    }
  });

  test('deleting finished jobs deletes their lines; a stopping worker writes lines of jobs it gives back', { timeout: 30_000 }, async () => {
    const ref = await h.app.push(chatty.withArgs({ n: 5 }));
    await h.app.waitForJob(ref, { timeoutMs: 10_000 });
    assert.equal(await count(ref.id), 5);
    await h.app.deleteJobs([ref.id]);
    assert.equal(await count(ref.id), 0);

    const stopping = jobLogs({ flushIntervalMs: 60_000 });
    const app2 = new Docket({ connection: h.db.url, logger: false, plugins: [stopping] });
    const started = deferred();
    const hang = defineJob({ name: 'hang', queue: 'logs-stop' }, async (_: void, ctx) => {
      ctx.log?.('before shutdown', { publish: false });
      started.resolve();
      await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
    });
    const { Worker } = await import('@docket/core');
    const worker = new Worker(app2, { jobs: [hang], queues: { 'logs-stop': {} }, hardStopGraceMs: 100 });
    await worker.start();
    try {
      const job = await app2.push(hang);
      await started.promise;
      await worker.stop({ timeoutMs: 0 });
      assert.equal((await app2.getJob(job)).state, 'pending', 'given back to the queue');
      assert.deepEqual(
        (await stopping.getLogs(job)).map((l) => l.message),
        ['before shutdown'],
      );
    } finally {
      await app2.close();
    }
  });
});
