/**
 * plugin-dead-letter on a real PostgreSQL: a job that fails for good is copied once (not on its
 * retries) with every error and its origin; re-driving pushes it back and it runs again; endings
 * written outside an attempt (app.settleJobs) are copied too; queue and state filters; arguments
 * stay encrypted under a payload codec; the command line; bad input is a coded error.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DocketError, defineJob, type JobRecord } from '@docket/core';
import { DEAD_LETTER_META_KEY, type DeadLetterEvents, deadLetters, PLUGIN_NAME, REDRIVE_OF_META_KEY } from '@docket/plugin-dead-letter';
import { encryption } from '@docket/plugin-encryption';
import { deferred, type Harness, harness } from './helpers.js';

const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;
const WAIT = { timeoutMs: 30_000 };

test('options: unknown keys, bad queues and states are coded errors', () => {
  assert.throws(
    () => deadLetters({ queue: ['a'] } as never),
    (e: unknown) => code('DOCKET_INVALID_OPTION')(e) && /did you mean `queues`/.test((e as Error).message),
  );
  assert.throws(() => deadLetters({ queues: [] }), code('DOCKET_INVALID_OPTION'));
  assert.throws(() => deadLetters({ queues: ['bad queue!'] }), code('DOCKET_INVALID_QUEUE_NAME'));
  assert.throws(() => deadLetters({ states: ['succeeded' as never] }), code('DOCKET_INVALID_OPTION'));
  assert.equal(deadLetters().name, PLUGIN_NAME);
});

describe('dead letters', () => {
  let h: Harness;
  const dlq = deadLetters({ queues: ['dlq', 'dlq-other'] });
  const added: DeadLetterEvents['dead-letter.added']['deadLetters'][number][] = [];
  let healthy = false;
  let attemptTwo = deferred();
  let release = deferred();
  const flaky = defineJob(
    { name: 'dlq.flaky', queue: 'dlq', maxAttempts: 3, retry: { backoff: 'fixed', delayMs: 0 }, meta: { team: 'billing' } },
    async ({ invoice }: { invoice: number }, ctx) => {
      if (healthy) return `charged ${invoice}`;
      if (ctx.job.attempt === 2) {
        attemptTwo.resolve();
        await release.promise;
      }
      throw Object.assign(new Error(`card declined (attempt ${ctx.job.attempt})`), { code: 'E_DECLINED' });
    },
  );
  const elsewhere = defineJob({ name: 'dlq.elsewhere', queue: 'dlq-ignored' }, async () => {
    throw new Error('not kept: this queue is not the plugin’s');
  });
  let lostStarted = deferred();
  /** Runs until its worker stops: a plugin ends it meanwhile with app.settleJobs. */
  const lost = defineJob({ name: 'dlq.lost', queue: 'dlq' }, async (_: void, ctx) => {
    lostStarted.resolve();
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
  });
  const patient = defineJob({ name: 'dlq.patient', queue: 'dlq' }, async (_: void, ctx) => {
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
  });

  before(async () => {
    h = await harness({ plugins: [dlq] });
    h.app.hooks.event.tap('test', (event) => {
      if (event.type === 'dead-letter.added') added.push(...event.payload.deadLetters);
    });
    await h.worker({ jobs: [flaky, elsewhere, patient, lost], queues: { dlq: { concurrency: 5 }, 'dlq-ignored': {}, 'dlq-other': {} } });
  });
  after(() => h.close());

  test('a job failing for good lands in the dead-letter table once — not on its retries — with its errors and origin', async () => {
    healthy = false;
    const ref = await h.app.push(flaky.withArgs({ invoice: 7 }).withPriority(3));
    await attemptTwo.promise;
    // Attempt 1 failed and was retried: no dead letter for a retry.
    assert.equal((await dlq.list({ queue: 'dlq' })).deadLetters.filter((d) => d.jobId === ref.id).length, 0);
    release.resolve();
    const job = await h.app.waitForJob(ref, WAIT);
    assert.equal(job.state, 'failed');
    const { deadLetters: letters } = await dlq.list({ queue: 'dlq' });
    const mine = letters.filter((d) => d.jobId === ref.id);
    assert.equal(mine.length, 1, 'copied once');
    const letter = mine[0]!;
    assert.deepEqual(
      [letter.queue, letter.name, letter.state, letter.args, letter.attempt, letter.maxAttempts, letter.priority, letter.meta],
      ['dlq', 'dlq.flaky', 'failed', { invoice: 7 }, 3, 3, 3, { team: 'billing' }],
    );
    assert.deepEqual(
      letter.errors.map((e) => [e.attempt, e.message, e.code]),
      [1, 2, 3].map((n) => [n, `card declined (attempt ${n})`, 'E_DECLINED']),
      'every attempt’s error, as the job has them',
    );
    assert.deepEqual(letter.errors, job.errors);
    assert.equal(letter.workerId, job.workerId);
    assert.equal(letter.createdAt.getTime(), job.createdAt.getTime());
    assert.equal(letter.failedAt.getTime(), job.finishedAt!.getTime(), 'failedAt is the job’s finishedAt (same transaction)');
    assert.equal(letter.redrivenAt, null);
    assert.deepEqual(await dlq.get(letter.id), letter);
    assert.ok(added.some((a) => a.id === letter.id && a.jobId === ref.id));
  });

  test('re-driving pushes it back to its queue as a new job, which runs again; a dead letter is re-driven once', async () => {
    healthy = false;
    attemptTwo = deferred();
    release = deferred();
    release.resolve();
    const ref = await h.app.push(flaky.withArgs({ invoice: 8 }));
    assert.equal((await h.app.waitForJob(ref, WAIT)).state, 'failed');
    const letter = (await dlq.list()).deadLetters.find((d) => d.jobId === ref.id)!;
    healthy = true; // the card works now
    const [again] = await dlq.redrive(letter.id);
    assert.deepEqual([again!.deadLetterId, again!.jobId, again!.ref.queue, again!.ref.name], [letter.id, ref.id, 'dlq', 'dlq.flaky']);
    const rerun = (await h.app.waitForJob(again!.ref, WAIT)) as JobRecord<{ invoice: number }, string>;
    assert.deepEqual([rerun.state, rerun.result, rerun.args, rerun.attempt], ['succeeded', 'charged 8', { invoice: 8 }, 1]);
    assert.deepEqual(rerun.meta, { team: 'billing', [REDRIVE_OF_META_KEY]: ref.id, [DEAD_LETTER_META_KEY]: letter.id });
    const marked = await dlq.get(letter.id);
    assert.equal(marked.redrivenJobId, again!.ref.id);
    assert.ok(marked.redrivenAt instanceof Date);
    await assert.rejects(
      dlq.redrive([letter.id]),
      (e: unknown) => code('DOCKET_DEAD_LETTER_ALREADY_REDRIVEN')(e) && (e as DocketError).details.jobId === again!.ref.id,
    );
    await assert.rejects(dlq.redrive(['999999']), code('DOCKET_DEAD_LETTER_NOT_FOUND'));
    assert.deepEqual(
      (await dlq.list({ redriven: true })).deadLetters.map((d) => d.id),
      [letter.id],
    );
  });

  test('redriveAll re-drives what waits (to another queue when asked); delete removes dead letters', async () => {
    healthy = false;
    const refs = await h.app.pushMany([flaky.withArgs({ invoice: 20 }).withMaxAttempts(1), flaky.withArgs({ invoice: 21 }).withMaxAttempts(1)]);
    for (const ref of refs) assert.equal((await h.app.waitForJob(ref, WAIT)).state, 'failed');
    healthy = true;
    const waiting = (await dlq.list({ redriven: false })).deadLetters;
    assert.ok(waiting.length >= 3);
    const done = await dlq.redriveAll({ name: 'dlq.flaky' }, { queue: 'dlq-other' });
    assert.deepEqual(done.map((r) => r.deadLetterId).sort(), waiting.map((d) => d.id).sort());
    assert.ok(done.every((r) => r.ref.queue === 'dlq-other'));
    assert.equal((await dlq.list({ redriven: false })).deadLetters.length, 0);
    assert.deepEqual(await dlq.redriveAll(), [], 'nothing left to re-drive');
    for (const r of done) {
      const rerun = await h.app.waitForJob(r.ref, WAIT);
      assert.deepEqual([rerun.queue, rerun.state], ['dlq-other', 'succeeded']);
    }
    assert.deepEqual(await dlq.delete([done[0]!.deadLetterId, '999999']), [done[0]!.deadLetterId]);
    await assert.rejects(dlq.get(done[0]!.deadLetterId), code('DOCKET_DEAD_LETTER_NOT_FOUND'));
  });

  test('an ending written outside an attempt (app.settleJobs, as a recovery plugin does) is copied, its errors once', async () => {
    lostStarted = deferred();
    const ref = await h.app.push(lost);
    await lostStarted.promise;
    await h.app.settleJobs(async (tx) => {
      const rows = await tx`
        UPDATE docket.jobs SET state = 'failed', finished_at = now(),
          errors = errors || jsonb_build_array(jsonb_build_object('attempt', attempt, 'name', 'WorkerLostError', 'message', 'lost', 'at', now()::text))
        WHERE id = ${ref.id} AND state = 'running' RETURNING id::text AS id`;
      return rows.map((r) => r.id as string);
    });
    const letter = (await dlq.list()).deadLetters.find((d) => d.jobId === ref.id);
    assert.ok(letter, 'copied');
    assert.deepEqual(
      letter.errors.map((e) => e.name),
      ['WorkerLostError'],
    );
  });

  test('only the plugin’s queues and states: another queue’s failure and a cancellation are not kept', async () => {
    const failedElsewhere = await h.app.push(elsewhere);
    assert.equal((await h.app.waitForJob(failedElsewhere, WAIT)).state, 'failed');
    const cancelled = await h.app.push(patient);
    await h.app.cancelJob(cancelled);
    assert.equal((await h.app.waitForJob(cancelled, WAIT)).state, 'cancelled');
    const ids = (await dlq.list({ limit: 1000 })).deadLetters.map((d) => d.jobId);
    assert.ok(!ids.includes(failedElsewhere.id) && !ids.includes(cancelled.id));
  });

  test('bad input to the API is a coded error', async () => {
    await assert.rejects(dlq.list({ limit: 0 }), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(dlq.list({ redriven: 'yes' as never }), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(dlq.list({ cursor: 'abc' }), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(dlq.list({ queue: 'not a queue' }), code('DOCKET_INVALID_QUEUE_NAME'));
    await assert.rejects(dlq.list({ sort: 'x' } as never), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(dlq.get('-1'), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(dlq.redrive([]), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(dlq.redrive('1', { queue: 'no way' }), code('DOCKET_INVALID_QUEUE_NAME'));
    await assert.rejects(dlq.redrive('1', { queues: 'x' } as never), code('DOCKET_INVALID_OPTION'));
    await assert.rejects(deadLetters().list(), code('DOCKET_PLUGIN_INVALID'), 'a plugin value not registered with an app');
  });

  test('the command line: list, show, redrive, delete with --url or --config; exit codes; --json', { timeout: 120_000 }, async () => {
    healthy = false;
    const ref = await h.app.push(flaky.withArgs({ invoice: 99 }).withMaxAttempts(1));
    await h.app.waitForJob(ref, WAIT);
    const letter = (await dlq.list()).deadLetters.find((d) => d.jobId === ref.id)!;
    const url = ['--url', h.db.url];

    const list = await cli(['list', ...url, '--queue', 'dlq', '--waiting']);
    assert.equal(list.code, 0, list.output);
    assert.match(list.output, new RegExp(`^${letter.id}\\s+${ref.id}\\s+dlq\\s+dlq\\.flaky\\s+failed\\s+1\\s`, 'm'));
    assert.match(list.output, /card declined \(attempt 1\)/);
    const json = await cli(['list', ...url, '--json', '--limit', '1']);
    const page = JSON.parse(json.output) as { deadLetters: Array<{ id: string }>; nextCursor: string | null };
    assert.equal(page.deadLetters.length, 1);
    assert.notEqual(page.nextCursor, null);
    const show = await cli(['show', letter.id, ...url]);
    assert.equal(show.code, 0, show.output);
    assert.match(show.output, /args: \{"invoice":99\}/);
    assert.match(show.output, /attempt 1 at .*: Error \[E_DECLINED\]: card declined/);

    // Through a config module: the app with its plugins (the worker here runs the re-driven job).
    const config = new URL('./fixtures/cli-config.ts', import.meta.url).pathname;
    healthy = true;
    const redrive = await cli(['redrive', letter.id, '--config', config], h.db.url);
    assert.equal(redrive.code, 0, redrive.output);
    const jobId = /as job (\d+) on queue 'dlq'/.exec(redrive.output)?.[1];
    assert.ok(jobId, redrive.output);
    assert.equal((await h.app.waitForJob(jobId, WAIT)).state, 'succeeded');
    const twice = await cli(['redrive', letter.id, ...url]);
    assert.equal(twice.code, 1, 'already re-driven: exit 1');
    assert.match(twice.output, /^docket: DOCKET_DEAD_LETTER_ALREADY_REDRIVEN: /m);
    assert.equal((await cli(['show', '999999', ...url])).code, 1);
    assert.equal((await cli(['delete', letter.id, ...url])).code, 0);
    assert.equal((await cli(['frobnicate', ...url])).code, 2);
    assert.equal((await cli(['list', ...url, '--bogus'])).code, 2);
    assert.equal((await cli(['list', ...url, '--limit', '0'])).code, 2, 'an invalid option: usage');
    const noConfig = await cli(['show', '1', '--config', join(tmpdir(), 'no-such-config.mjs')]);
    assert.equal(noConfig.code, 4);
    assert.match(noConfig.output, /^docket: DOCKET_CONFIG_INVALID: /m);
    assert.equal((await cli(['list', '--url', 'postgres://nobody@127.0.0.1:1/none'])).code, 3);
  });
});

describe('under a payload codec', () => {
  let h: Harness;
  const dlq = deadLetters();
  const broken = defineJob({ name: 'dlq.secret', queue: 'dlq-secret' }, async ({ secret }: { secret: string }) => {
    if (secret.startsWith('bad')) throw new Error('refused');
    return secret.length;
  });
  before(async () => {
    h = await harness({ plugins: [encryption({ keys: { k1: randomBytes(32) }, currentKeyId: 'k1' }), dlq] });
    await h.worker({ jobs: [broken], queues: { 'dlq-secret': {} } });
  });
  after(() => h.close());

  test('arguments stay encrypted in the dead-letter table, read back decoded, and a re-drive runs with them', async () => {
    const ref = await h.app.push(broken.withArgs({ secret: 'bad-but-private' }));
    assert.equal((await h.app.waitForJob(ref, WAIT)).state, 'failed');
    const [stored] = await h.db.sql`SELECT args::text AS args FROM docket.dead_letters WHERE job_id = ${ref.id}`;
    assert.ok(stored && !stored.args.includes('bad-but-private'), 'not in clear at rest');
    const letter = (await dlq.list()).deadLetters[0]!;
    assert.deepEqual(letter.args, { secret: 'bad-but-private' });
    const [again] = await dlq.redrive(letter.id);
    const rerun = await h.app.waitForJob(again!.ref, WAIT);
    assert.deepEqual([rerun.state, rerun.args], ['failed', { secret: 'bad-but-private' }], 'ran again with the same arguments');
    assert.equal((await dlq.list()).deadLetters.filter((d) => d.jobId === again!.ref.id).length, 1, 'and failed into a dead letter of its own');
  });
});

const run = promisify(execFile);
const bin = new URL('../src/cli.ts', import.meta.url).pathname;
/** Runs the command line in its own process (as `docket dead-letters` does); stdout and stderr together. */
function cli(args: string[], databaseUrl = ''): Promise<{ code: number; output: string }> {
  return run(process.execPath, [...process.execArgv, bin, ...args], {
    env: { ...process.env, DATABASE_URL: '', TEST_DATABASE_URL: databaseUrl },
    cwd: new URL('..', import.meta.url).pathname,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: error.stdout + error.stderr }),
  );
}
