/**
 * The encryption plugin on a real PostgreSQL, with the plugins that store payloads themselves
 * (workflow steps, cron schedules, unique's debounce): every way in (push, bulk, in a transaction,
 * debounce, a workflow's steps, a schedule) and out (the handler on each executor, getJob,
 * waitForJob, parentResults, a workflow's result, a schedule listing), key rotation, tampering —
 * and at the end, no column of any table in the schema holds the plaintext.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { threadId } from 'node:worker_threads';
import { Docket, DocketError, defineJob, type JobRecord, Worker } from '@docket/core';
import { type CronPlugin, cron } from '@docket/plugin-cron';
import '@docket/plugin-unique';
import { unique } from '@docket/plugin-unique';
import { chain, pushWorkflow, waitForWorkflow, workflow, workflows } from '@docket/plugin-workflow';
import { createTestDatabase, type TestDatabase } from '@docket/testing';
import { ENVELOPE_MARKER, EncryptionKeyUnknownError, EncryptionPlaintextError, EncryptionTamperedError, encryption } from '../src/index.js';
import { echo } from './fixtures/jobs.js';

/** Every plaintext this file stores contains it (case-insensitively); the last test looks for it in every column. */
const MARKER = 'sekrit';
const K1 = randomBytes(32).toString('base64');
const K2 = randomBytes(32);
const WAIT = { timeoutMs: 30_000 };

const stepA = defineJob({ name: 'enc.step-a', queue: 'a' }, ({ secret }: { secret: string }) => ({ a: `${secret}-a` }));
const stepB = defineJob({ name: 'enc.step-b', queue: 'a' }, async (_args: { n: number }, ctx) => {
  const parents = await ctx.workflow!.parentResults<{ first: { a: string } }>();
  return { b: `${parents.first.a}-b` };
});
const shout = defineJob({ name: 'enc.shout', queue: 'a' }, ({ a }: { a: string }) => a.toUpperCase());

let db: TestDatabase;
let app: Docket;
let schedules: CronPlugin;
let worker: Worker;

function isCode(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof DocketError, `expected a DocketError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

/** The row as stored (no codec on the way). */
async function rawRow(id: string): Promise<{ args: Record<string, unknown>; result: unknown; state: string; errors: unknown[] }> {
  const [row] = await app.sql.unsafe(`SELECT args, result, state, errors FROM docket.jobs WHERE id = $1`, [id]);
  return row as never;
}

function assertEnvelope(value: unknown, kid: string) {
  assert.ok(value !== null && typeof value === 'object', `expected an envelope, got ${JSON.stringify(value)}`);
  assert.equal((value as Record<string, unknown>)[ENVELOPE_MARKER], 1);
  assert.equal((value as Record<string, unknown>).kid, kid);
  assert.doesNotMatch(JSON.stringify(value), new RegExp(MARKER, 'i'));
}

before(async () => {
  db = await createTestDatabase();
  schedules = cron({ intervalMs: 50, lookaheadMs: 0 });
  app = new Docket({
    connection: db.url,
    logger: false,
    plugins: [encryption({ keys: { k1: K1 }, currentKeyId: 'k1' }), workflows(), schedules, unique()],
  });
  await app.migrate();
  const queue = (executor: 'async' | 'thread' | 'process') => ({ executor, concurrency: 2, pollIntervalMs: 50 });
  worker = new Worker(app, {
    jobs: [echo, stepA, stepB, shout],
    jobsModule: new URL('./fixtures/jobs.ts', import.meta.url),
    maintenanceIntervalMs: 50,
    queues: { a: queue('async'), t: queue('thread'), p: queue('process') },
  });
  await worker.start();
});

after(async () => {
  await worker?.stop({ timeoutMs: 5000 });
  await app?.close();
  await db?.drop();
});

test('options are validated: unknown keys, key sizes, the current key', () => {
  assert.throws(
    () => encryption({ keys: { k1: K1 }, currentKeyId: 'k1', allowPlaintxt: true } as never),
    (e: unknown) => {
      isCode('DOCKET_INVALID_OPTION')(e);
      assert.match((e as Error).message, /did you mean `allowPlaintext`/);
      return true;
    },
  );
  assert.throws(
    () => encryption({ keys: { k1: randomBytes(16) }, currentKeyId: 'k1' }),
    (e: unknown) => {
      isCode('DOCKET_INVALID_OPTION')(e);
      assert.match((e as Error).message, /key 'k1' must be 32 bytes.*got 16 bytes/);
      return true;
    },
  );
  assert.throws(() => encryption({ keys: { k1: 'not base64!' }, currentKeyId: 'k1' }), isCode('DOCKET_INVALID_OPTION'));
  assert.throws(
    () => encryption({ keys: { k1: K1 }, currentKeyId: 'k9' }),
    (e: unknown) => {
      isCode('DOCKET_INVALID_OPTION')(e);
      assert.match((e as Error).message, /`currentKeyId` must name one of `keys` \(k1\)/);
      return true;
    },
  );
  assert.throws(() => encryption({ keys: { 'bad id': K1 }, currentKeyId: 'bad id' }), isCode('DOCKET_INVALID_OPTION'));
  assert.throws(() => encryption({ keys: {}, currentKeyId: 'k1' }), isCode('DOCKET_INVALID_OPTION'));
  assert.throws(() => encryption(undefined as never), isCode('DOCKET_INVALID_OPTION'));
  // A key's material never appears in an error.
  try {
    encryption({ keys: { k1: K1, k2: K2.subarray(1) }, currentKeyId: 'k1' });
    assert.fail('expected a throw');
  } catch (error) {
    assert.ok(!(error as Error).message.includes(K1));
  }
});

test('single, bulk and transactional pushes run on async, thread and process executors with plaintext in, ciphertext stored', async () => {
  for (const queue of ['a', 't', 'p']) {
    const single = await app.push(echo.withArgs({ secret: `${MARKER}-${queue}-single` }).withQueue(queue));
    const bulk = await app.pushMany([1, 2].map((n) => echo.withArgs({ secret: `${MARKER}-${queue}-bulk-${n}` }).withQueue(queue)));
    const inTx = await app.sql.begin((tx) => app.push(echo.withArgs({ secret: `${MARKER}-${queue}-tx` }).withQueue(queue), { tx }));
    const refs = [single, ...bulk, inTx];
    const done = await Promise.all(refs.map((ref) => app.waitForJob(ref, WAIT)));
    for (const job of done) {
      assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
      const secret = (job.args as { secret: string }).secret;
      assert.match(secret, new RegExp(`^${MARKER}-${queue}-`));
      // The handler saw the plaintext (its result echoes it), wherever it ran.
      assert.equal(job.result!.out, `${secret}:done`);
      if (queue === 't') assert.notEqual(job.result!.threadId, threadId);
      if (queue === 'p') assert.notEqual(job.result!.pid, process.pid);
      const raw = await rawRow(job.id);
      assertEnvelope(raw.args, 'k1');
      assertEnvelope(raw.result, 'k1');
    }
    assert.deepEqual((await app.getJob(single)).args, { secret: `${MARKER}-${queue}-single` });
    // The operations API reads them back the same way (what a dashboard or the CLI shows).
    const listed = await app.listJobs({ queue });
    assert.deepEqual(
      listed.jobs.map((j) => (j.args as { secret: string }).secret).sort(),
      done.map((j) => (j.args as { secret: string }).secret).sort(),
    );
    assert.ok(listed.jobs.every((j) => (j.result as { out: string }).out.startsWith(MARKER)));
  }
});

test('a pending job reads back in plaintext; a debounced push replaces its arguments encrypted', async () => {
  const first = await app.push(
    echo
      .withArgs({ secret: `${MARKER}-debounce-1` })
      .withQueue('idle')
      .withUniqueKey('enc-debounce', { debounceMs: 600_000 }),
  );
  const second = await app.push(
    echo
      .withArgs({ secret: `${MARKER}-debounce-2` })
      .withQueue('idle')
      .withUniqueKey('enc-debounce', { debounceMs: 600_000 }),
  );
  assert.equal(second.duplicate, true);
  assert.equal(second.id, first.id);
  const job = await app.getJob<{ secret: string }>(first);
  assert.equal(job.state, 'pending');
  assert.deepEqual(job.args, { secret: `${MARKER}-debounce-2` });
  assertEnvelope((await rawRow(first.id)).args, 'k1');
  await app.cancelJob(first);
});

test('a workflow passes results through parentResults and a chain; its steps are stored encrypted', async () => {
  const flow = workflow('enc-flow')
    .step('first', stepA.withArgs({ secret: `${MARKER}-wf` }))
    .step('second', stepB.withArgs({ n: 1 }), { after: ['first'] });
  const run = await pushWorkflow(app, flow);
  const done = await waitForWorkflow(app, run, WAIT);
  assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
  assert.deepEqual(done.result, { first: { a: `${MARKER}-wf-a` }, second: { b: `${MARKER}-wf-a-b` } });

  const chained = await waitForWorkflow(app, await pushWorkflow(app, chain(stepA.withArgs({ secret: `${MARKER}-chain` }), shout)), WAIT);
  assert.equal(chained.state, 'succeeded', JSON.stringify(chained.error));
  assert.equal(chained.result, `${MARKER}-chain-a`.toUpperCase());
  // The second step's arguments were the first step's result, stored encrypted like any push.
  const last = chained.steps[1]!;
  assert.deepEqual((await app.getJob(last.jobId!)).args, { a: `${MARKER}-chain-a` });
  assertEnvelope((await rawRow(last.jobId!)).args, 'k1');

  const specs = await app.sql.unsafe(`SELECT spec FROM docket.workflow_steps WHERE run_id = $1 ORDER BY position`, [run.id]);
  assertEnvelope(specs[0]!.spec.args, 'k1');
  assert.equal(specs[0]!.spec.name, 'enc.step-a');
});

test('a cron schedule stores its arguments encrypted and fires with them in plaintext', async () => {
  const stored = await schedules.schedule({ name: 'enc-cron', cron: '* * * * * *', job: echo.withArgs({ secret: `${MARKER}-cron` }).withQueue('a') });
  assert.deepEqual(stored.job.args, { secret: `${MARKER}-cron` });
  const [raw] = await app.sql.unsafe(`SELECT args FROM docket.cron_schedules WHERE name = 'enc-cron'`);
  assertEnvelope(raw!.args, 'k1');
  let jobId: string | null = null;
  while (jobId === null) {
    const run = await schedules.nextRun(WAIT);
    if (run.fired > 0) jobId = (await schedules.list()).find((s) => s.name === 'enc-cron')!.lastJobId;
  }
  await schedules.unschedule('enc-cron');
  const job = await app.waitForJob<{ secret: string }, { out: string }>(jobId, WAIT);
  assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
  assert.deepEqual(job.args, { secret: `${MARKER}-cron` });
  assert.equal(job.result!.out, `${MARKER}-cron:done`);
});

test('key rotation: jobs encrypted with a retired key still decrypt; a key that is gone is named in the error', async () => {
  const old = await app.push(echo.withArgs({ secret: `${MARKER}-rotate-old` }).withQueue('rot'));
  await using rotated = new Docket({ connection: db.url, logger: false, plugins: [encryption({ keys: { k2: K2, k1: K1 }, currentKeyId: 'k2' })] });
  await using retired = new Docket({ connection: db.url, logger: false, plugins: [encryption({ keys: { k2: K2 }, currentKeyId: 'k2' })] });
  const fresh = await rotated.push(echo.withArgs({ secret: `${MARKER}-rotate-new` }).withQueue('rot'));
  assertEnvelope((await rawRow(fresh.id)).args, 'k2');
  // The app that only knows k1 cannot read what k2 encrypted, and says which key is missing.
  await assert.rejects(app.getJob(fresh), (e: unknown) => {
    assert.ok(e instanceof EncryptionKeyUnknownError);
    assert.equal(e.details.keyId, 'k2');
    assert.match(e.message, /encrypted with key 'k2'.*Add that key to `keys`/);
    return true;
  });
  await assert.rejects(retired.getJob(old), EncryptionKeyUnknownError);

  const rotWorker = new Worker(rotated, { jobs: [echo], queues: { rot: { pollIntervalMs: 50 } } });
  await rotWorker.start();
  try {
    for (const [ref, secret] of [
      [old, 'old'],
      [fresh, 'new'],
    ] as const) {
      const job = await rotated.waitForJob<{ secret: string }, { out: string }>(ref, WAIT);
      assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
      assert.equal(job.result!.out, `${MARKER}-rotate-${secret}:done`);
      // Results are written with the current key.
      assertEnvelope((await rawRow(ref.id)).result, 'k2');
    }
  } finally {
    await rotWorker.stop();
  }
});

test('a tampered row fails with DOCKET_ENCRYPTION_TAMPERED, on read and when a worker claims it', async () => {
  const ref = await app.push(echo.withArgs({ secret: `${MARKER}-tamper` }).withQueue('tamper'));
  const { args } = await rawRow(ref.id);
  const ct = args.ct;
  assert.ok(typeof ct === 'string', 'the stored arguments are an envelope');
  const body = Buffer.from(ct, 'base64');
  body[0] ^= 0xff;
  await app.sql.unsafe(`UPDATE docket.jobs SET args = $2::text::jsonb WHERE id = $1`, [
    ref.id,
    JSON.stringify({ ...args, ct: body.toString('base64') }),
  ]);
  await assert.rejects(app.getJob(ref), (e: unknown) => {
    assert.ok(e instanceof EncryptionTamperedError, `got ${String(e)}`);
    assert.equal(e.code, 'DOCKET_ENCRYPTION_TAMPERED');
    assert.equal(e.details.keyId, 'k1');
    return true;
  });

  // An app without the plugin reads the row as stored, so it can wait for the failed job.
  await using plain = new Docket({ connection: db.url, logger: false });
  const tamperWorker = new Worker(app, { jobs: [echo], queues: { tamper: { pollIntervalMs: 50 } } });
  await tamperWorker.start();
  let job: JobRecord;
  try {
    job = await plain.waitForJob(ref, WAIT);
  } finally {
    await tamperWorker.stop();
  }
  assert.equal(job.state, 'failed');
  assert.equal(job.errors[0]!.code, 'DOCKET_ENCRYPTION_TAMPERED');
  assert.equal(job.errors[0]!.name, 'EncryptionTamperedError');
});

test('a payload stored without encryption is refused unless allowPlaintext', async () => {
  await using plain = new Docket({ connection: db.url, logger: false });
  const ref = await plain.push(echo.withArgs({ secret: 'stored-in-the-clear' }).withQueue('idle'));
  await assert.rejects(app.getJob(ref), EncryptionPlaintextError);
  await using lenient = new Docket({
    connection: db.url,
    logger: false,
    plugins: [encryption({ keys: { k1: K1 }, currentKeyId: 'k1', allowPlaintext: true })],
  });
  assert.deepEqual((await lenient.getJob(ref)).args, { secret: 'stored-in-the-clear' });
  await plain.sql.unsafe(`DELETE FROM docket.jobs WHERE id = $1`, [ref.id]);
});

/** Rows of every text, varchar, json, jsonb and array column in `schema` whose text contains the marker. */
async function plaintextHits(sql: Docket['sql'], schema: string): Promise<string[]> {
  const columns = await sql.unsafe<Array<{ table_name: string; column_name: string }>>(
    `SELECT c.table_name, c.column_name FROM information_schema.columns c
     JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
     WHERE c.table_schema = $1 AND c.data_type IN ('text', 'character varying', 'json', 'jsonb', 'ARRAY')
     ORDER BY 1, 2`,
    [schema],
  );
  assert.ok(columns.length > 10, `found only ${columns.length} columns to search`);
  const hits: string[] = [];
  for (const { table_name, column_name } of columns) {
    const [row] = await sql.unsafe<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM ${schema}."${table_name}" WHERE "${column_name}"::text ILIKE $1`,
      [`%${MARKER}%`],
    );
    if (row!.n > 0) hits.push(`${table_name}.${column_name}: ${row!.n}`);
  }
  return hits;
}

test('no text, json or jsonb column of any table (core, cron, workflow, unique) holds the plaintext', async () => {
  const tables = (
    await app.sql.unsafe<Array<{ t: string }>>(`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'docket'`)
  ).map((r) => r.t);
  for (const t of ['jobs', 'cron_schedules', 'cron_fires', 'workflow_runs', 'workflow_steps']) assert.ok(tables.includes(t), `table ${t} exists`);
  // The search finds the marker where it is stored in the clear: the same pushes without the plugin, in another schema.
  await using control = new Docket({ connection: db.url, schema: 'control', logger: false, plugins: [workflows()] });
  await control.migrate();
  await control.push(echo.withArgs({ secret: `${MARKER}-control` }));
  await pushWorkflow(control, workflow('control').step('only', stepA.withArgs({ secret: `${MARKER}-control` })));
  assert.deepEqual(await plaintextHits(control.sql, 'control'), ['jobs.args: 2', 'workflow_steps.spec: 1']);

  assert.deepEqual(await plaintextHits(app.sql, 'docket'), []);
});

test('one encryption() value serves one app: a second app is refused with DOCKET_PLUGIN_INVALID', async () => {
  const plugin = encryption({ keys: { k1: K1 }, currentKeyId: 'k1' });
  await using first = new Docket({ connection: 'postgres://127.0.0.1:1/unused', plugins: [plugin], logger: false });
  assert.ok(first);
  assert.throws(
    () => new Docket({ connection: 'postgres://127.0.0.1:1/unused', plugins: [plugin], logger: false }),
    (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_PLUGIN_INVALID' && /call encryption\(\) again/.test(e.message),
  );
});
