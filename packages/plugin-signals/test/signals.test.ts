import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { DocketError, type DocketPlugin, defineJob } from '@docket/core';
import {
  type AnySignal,
  isSignal,
  LIFECYCLE_SIGNALS,
  PLUGIN_NAME,
  SignalsNotListeningError,
  type SignalsPlugin,
  signals,
} from '@docket/plugin-signals';
import { waitFor } from '@docket/testing';
import { decode, encodeEnqueued, encodeSignals, MAX_PAYLOAD_BYTES } from '../src/wire.js';
import { deferred, type Harness, harness, nextMessage } from './helpers.js';

declare module '@docket/core' {
  // What these tests emit themselves (as plugin-recovery would, and a plugin whose event shadows a signal's name).
  interface DocketEventMap {
    'recovery.recovered': { workerId: string; jobs: ReadonlyArray<Record<string, unknown>> };
    succeeded: { not: string };
  }
}

const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;
const ping = defineJob({ name: 'ping', queue: 'signals' }, async (_: { n?: number; from?: string }) => 'pong');
const flaky = defineJob({ name: 'flaky', queue: 'signals', maxAttempts: 2, retry: { backoff: 'fixed', delayMs: 10 } }, async (_: void, ctx) => {
  if (ctx.job.attempt === 1) throw new Error('first attempt fails');
  return 'ok';
});
const broken = defineJob({ name: 'broken', queue: 'signals' }, async () => {
  throw new TypeError('always fails');
});
/** The types of the signals of one job, in the order they arrived. */
const typesOf = (got: readonly AnySignal[], id: string) => got.filter((s) => 'job' in s && (s.job as { id: string }).id === id).map((s) => s.type);

test('options are validated; listening needs the plugin to be in an app', async () => {
  assert.throws(
    () => signals({ broadcst: [] } as never),
    (e: unknown) => code('DOCKET_INVALID_OPTION')(e) && /did you mean `broadcast`/.test((e as Error).message),
  );
  assert.throws(() => signals({ broadcast: 'succeeded' } as never), code('DOCKET_INVALID_OPTION'));
  assert.throws(() => signals({ enqueued: 'yes' } as never), code('DOCKET_INVALID_OPTION'));
  assert.throws(() => signals({ onListenerError: 1 } as never), code('DOCKET_INVALID_OPTION'));
  await assert.rejects(
    signals().on('succeeded', () => {}),
    (e: unknown) => code('DOCKET_PLUGIN_INVALID')(e) && /signals\.on\(\): the plugin is not registered/.test((e as Error).message),
  );
  assert.equal(signals().name, PLUGIN_NAME);
  assert.deepEqual([...LIFECYCLE_SIGNALS], ['enqueued', 'executing', 'succeeded', 'failed', 'retrying', 'cancelled', 'recovered']);
});

test('payloads stay under the NOTIFY limit and round-trip', () => {
  const at = new Date();
  const many = Array.from({ length: 5000 }, (_, i) => ({
    type: 'enqueued' as const,
    at,
    job: { id: String(1_000_000_000 + i), name: i % 2 ? 'send-émail' : 'resize', queue: `q${i % 3}` },
    priority: i % 5,
    scheduledAt: new Date(at.getTime() + i),
  }));
  const payloads = encodeEnqueued(many, 10);
  assert.ok(payloads.every((p) => Buffer.byteLength(p) + 10 <= MAX_PAYLOAD_BYTES));
  assert.ok(payloads.length < 40, `5,000 jobs in ${payloads.length} notifications`);
  assert.deepEqual(payloads.flatMap(decode), many);

  const error = { attempt: 1, name: 'Error', message: 'x'.repeat(100), stack: 'y'.repeat(9000), at: at.toISOString() };
  const failed = { type: 'failed' as const, at, job: { id: '1', name: 'n', queue: 'q', attempt: 1 }, error };
  const plugin = { type: 'big.event', at, source: 'big', payload: { blob: 'z'.repeat(9000), at: 5 } };
  const { payloads: out, tooBig } = encodeSignals([failed, plugin], 10);
  assert.deepEqual(tooBig, [plugin]);
  const [back] = out.flatMap(decode);
  assert.deepEqual(back, { ...failed, error: { attempt: 1, name: 'Error', message: error.message, at: error.at } }, 'the stack is dropped to fit');
  const small = { type: 'small.event', at, source: 'p', payload: { at: 5, when: at } };
  assert.deepEqual(
    encodeSignals([small], 10).payloads.flatMap(decode),
    [{ ...small, payload: { at: 5, when: at.toISOString() } }],
    'nested values travel as JSON',
  );
});

describe('in the worker process', () => {
  let h: Harness;
  const events = signals();
  const emitter: DocketPlugin = { name: 'test-emitter', apply() {} };
  let gate = deferred();
  const blocker = defineJob({ name: 'blocker', queue: 'signals' }, async (_: void, ctx) => {
    gate.resolve();
    await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
  });

  before(async () => {
    h = await harness({ plugins: [emitter, events] });
    await h.worker({ jobs: [flaky, broken, blocker, ping], queues: { signals: { concurrency: 4, pollIntervalMs: 50 } } });
  });
  after(() => h.close());

  test('lifecycle: executing, retrying, succeeded, failed, cancelled (pending and running), in order per job', async () => {
    const got: AnySignal[] = [];
    const off = await events.on('*', (s) => void got.push(s));
    // This process's own signals in the order they happened; `enqueued` comes through PostgreSQL
    // and may arrive after a local `executing` (see the broadcast test below for one order of all).
    const ofJob = (id: string) => typesOf(got, id).filter((type) => type !== 'enqueued');
    const enqueuedOnce = (id: string) =>
      assert.equal(typesOf(got, id).filter((type) => type === 'enqueued').length, 1, `job ${id}: enqueued heard once`);

    const f = await h.app.push(flaky);
    const b = await h.app.push(broken);
    const pending = await h.app.push(ping.withDelay(3_600_000));
    gate = deferred();
    const running = await h.app.push(blocker);
    await gate.promise;
    await h.app.cancelJob(pending);
    await h.app.cancelJob(running);
    await waitFor(
      () =>
        ofJob(f.id).includes('succeeded') &&
        ofJob(b.id).includes('failed') &&
        ofJob(running.id).includes('cancelled') &&
        ofJob(pending.id).includes('cancelled') &&
        [f, b, pending, running].every((ref) => typesOf(got, ref.id).includes('enqueued')),
      {
        timeoutMs: 15_000,
        message: 'all outcomes signalled',
      },
    );
    assert.deepEqual(ofJob(f.id), ['executing', 'retrying', 'executing', 'succeeded']);
    assert.deepEqual(ofJob(b.id), ['executing', 'failed']);
    assert.deepEqual(ofJob(pending.id), ['cancelled']);
    assert.deepEqual(ofJob(running.id), ['executing', 'cancelled']);
    for (const ref of [f, b, pending, running]) enqueuedOnce(ref.id);

    const retrying = got.filter((s) => isSignal(s, 'retrying')).find((s) => s.job.id === f.id);
    assert.ok(retrying && retrying.error.message === 'first attempt fails' && retrying.retryAt instanceof Date && retrying.job.attempt === 1);
    const failed = got.filter((s) => isSignal(s, 'failed')).find((s) => s.job.id === b.id);
    assert.equal(failed?.error.name, 'TypeError');
    const executing = got.filter((s) => isSignal(s, 'executing')).filter((s) => s.job.id === f.id);
    assert.deepEqual(
      executing.map((s) => [s.job.attempt, typeof s.workerId]),
      [
        [1, 'string'],
        [2, 'string'],
      ],
    );
    off();
  });

  test('plugin events arrive under their own type; a *.recovered event is also the typed recovered signal', async () => {
    const recovered = events.next('recovered', { timeoutMs: 10_000 });
    const raw = events.next('recovery.recovered', { timeoutMs: 10_000 });
    const shadowing = events.next('test-emitter.succeeded', { timeoutMs: 10_000 });
    const jobs = [{ id: '41', name: 'resize', queue: 'images', attempt: 3, workerId: 'w1', reason: 'dead', recoveries: 1, state: 'pending' }];
    h.app.emit('recovery', 'recovery.recovered', { workerId: 'sweeper', jobs });
    h.app.emit('test-emitter', 'succeeded', { not: 'a job outcome' });
    const r = await recovered;
    assert.deepEqual([r.event, r.source, r.jobs], ['recovery.recovered', 'recovery', [{ id: '41', name: 'resize', queue: 'images', attempt: 3 }]]);
    assert.deepEqual((await raw).payload, { workerId: 'sweeper', jobs });
    assert.deepEqual((await shadowing).payload, { not: 'a job outcome' }, 'a plugin event named like a typed signal is namespaced by its source');
  });
});

describe('every lifecycle type broadcast', () => {
  // Each signal then travels through PostgreSQL, so a listener hears them in the order they
  // committed: `enqueued` with the push, `executing` after the claim, an outcome after its write.
  const events = signals({ broadcast: ['executing', 'retrying', 'succeeded', 'failed', 'cancelled'] });
  let h: Harness;
  before(async () => {
    h = await harness({ plugins: [events] });
    await h.worker({ jobs: [flaky, broken], queues: { signals: { concurrency: 4, pollIntervalMs: 50 } } });
  });
  after(() => h.close());

  test('a listener hears each job’s signals in one order, enqueued first', async () => {
    const got: AnySignal[] = [];
    const off = await events.on('*', (s) => void got.push(s));
    const flakies = await h.app.pushMany(Array.from({ length: 10 }, () => flaky.withArgs(undefined)));
    const brokens = await h.app.pushMany(Array.from({ length: 10 }, () => broken.withArgs(undefined)));
    await waitFor(
      () => flakies.every((r) => typesOf(got, r.id).includes('succeeded')) && brokens.every((r) => typesOf(got, r.id).includes('failed')),
      { timeoutMs: 15_000, message: 'every outcome heard' },
    );
    for (const r of flakies) assert.deepEqual(typesOf(got, r.id), ['enqueued', 'executing', 'retrying', 'executing', 'succeeded'], `job ${r.id}`);
    for (const r of brokens) assert.deepEqual(typesOf(got, r.id), ['enqueued', 'executing', 'failed'], `job ${r.id}`);
    off();
  });
});

describe('misbehaving listeners', () => {
  const failures: unknown[] = [];
  const events = signals({ onListenerError: (error) => void failures.push(error) });
  let h: Harness;
  before(async () => {
    h = await harness({ plugins: [events] });
    await h.worker({ jobs: [ping], queues: { signals: { concurrency: 10, pollIntervalMs: 50 } } });
  });
  after(() => h.close());

  const drain = async (n: number) => {
    const started = performance.now();
    const refs = await h.app.pushMany(Array.from({ length: n }, (_, i) => ping.withArgs({ n: i })));
    const ids = refs.map((r) => r.id);
    await waitFor(
      async () => {
        const [{ left }] = await h.db.sql`SELECT count(*)::int AS left FROM docket.jobs WHERE id = ANY(${ids}::bigint[]) AND state <> 'succeeded'`;
        return left === 0;
      },
      { timeoutMs: 60_000, intervalMs: 20, message: `${n} jobs succeeded` },
    );
    return { ms: performance.now() - started, ids };
  };

  test('a throwing or never-settling listener does not hold up the worker', { timeout: 120_000 }, async (t) => {
    const n = 500;
    const control = await drain(n);

    const blocked = new Set<string>();
    const never = new Promise<void>(() => {});
    const offs = await Promise.all([
      events.on('enqueued', () => {
        throw new Error('sync throw');
      }),
      events.on('executing', () => {
        throw new Error('sync throw');
      }),
      events.on('succeeded', async () => {
        throw new Error('async throw');
      }),
      events.on('succeeded', async (s) => {
        blocked.add(s.job.id);
        await never;
      }),
    ]);
    try {
      const run = await drain(n);
      t.diagnostic(`drain of ${n} jobs: ${control.ms.toFixed(0)} ms with no listener, ${run.ms.toFixed(0)} ms with throwing and never-settling ones`);
      // Every job finished although the blocking listener has not returned for a single one of them,
      // and it was still handed every later signal.
      await waitFor(() => run.ids.every((id) => blocked.has(id)), { timeoutMs: 10_000, message: 'the blocked listener was called for every job' });
      assert.ok(failures.length >= 3 * n, `every throw was reported (${failures.length})`);
      assert.ok(failures.every((e) => e instanceof Error && /throw/.test(e.message)));
    } finally {
      for (const off of offs) off();
    }
  });
});

describe('across processes', () => {
  let h: Harness;
  let child: ChildProcess;
  const heard: AnySignal[] = [];
  const heardIds = new Map<string, Set<string>>();
  const has = (type: string, id: string) => heardIds.get(type)?.has(id) ?? false;
  const events: SignalsPlugin = signals({ broadcast: ['succeeded'] });

  before(async () => {
    h = await harness({ plugins: [events] });
    child = fork(new URL('./fixtures/listener.ts', import.meta.url), {
      env: { ...process.env, TEST_DATABASE_URL: h.db.url },
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (m: { type: string; signal?: AnySignal }) => {
      if (m.type !== 'signal') return;
      heard.push(m.signal!);
      const id = (m.signal as { job?: { id: string } }).job?.id;
      if (id) {
        if (!heardIds.has(m.signal!.type)) heardIds.set(m.signal!.type, new Set());
        heardIds.get(m.signal!.type)!.add(id);
      }
    });
    await nextMessage(child, 'ready');
  });
  after(async () => {
    if (child.exitCode === null) {
      const exited = once(child, 'exit');
      child.send({ type: 'exit' });
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await h.close();
  });

  test('enqueued reaches a listener in another process for committed pushes, never for a rolled-back one', { timeout: 60_000 }, async () => {
    let rolledBack = '';
    await assert.rejects(
      h.app.sql.begin(async (tx) => {
        rolledBack = (await h.app.push(ping.withArgs({ n: 1 }).withDelay(3_600_000), { tx })).id;
        throw new Error('roll back');
      }),
      /roll back/,
    );
    const committed = await h.app.sql.begin(async (tx) => {
      const ref = await h.app.push(ping.withArgs({ n: 2 }).withDelay(3_600_000), { tx });
      const marker = await h.app.push(ping.withArgs({ n: 3 }).withDelay(3_600_000));
      await waitFor(() => has('enqueued', marker.id), { timeoutMs: 10_000, message: 'the other process heard a push made meanwhile' });
      assert.equal(has('enqueued', ref.id), false, 'a push in an open transaction is not announced yet');
      return ref;
    });
    await waitFor(() => has('enqueued', committed.id), { timeoutMs: 10_000, message: 'heard once the transaction committed' });
    // NOTIFYs arrive in commit order: the committed push came after the rollback.
    assert.equal(has('enqueued', rolledBack), false, 'a rolled-back push signals nothing');

    const many = await h.app.pushMany(Array.from({ length: 1000 }, (_, n) => ping.withArgs({ n }).withDelay(3_600_000)));
    await waitFor(() => many.every((r) => has('enqueued', r.id)), { timeoutMs: 20_000, message: 'all 1,000 of a pushMany heard' });
    const manyIds = new Set(many.map((r) => r.id));
    const enqueued = heard.filter((s) => isSignal(s, 'enqueued'));
    assert.equal(enqueued.filter((s) => manyIds.has(s.job.id)).length, 1000, 'each exactly once');
    const sample = enqueued.find((s) => s.job.id === many[0]!.id);
    assert.deepEqual([sample?.job.name, sample?.job.queue, sample?.priority], ['ping', 'signals', 0]);
  });

  test('one API hears this process’s pushes and the other process’s; broadcast outcomes reach the other process', { timeout: 60_000 }, async () => {
    const mine: string[] = [];
    const off = await events.on('enqueued', (s) => void mine.push(s.job.id));
    const own = await h.app.push(ping.withArgs({ n: 4 }).withDelay(3_600_000));
    const answer = nextMessage<{ type: string; id: string }>(child, 'pushed');
    child.send({ type: 'push' });
    const { id: theirs } = await answer;
    await waitFor(() => mine.includes(own.id) && mine.includes(theirs), { timeoutMs: 10_000, message: 'both pushes heard here' });
    off();

    const worker = await h.worker({ jobs: [ping], queues: { signals: { pollIntervalMs: 50 } } });
    const job = await h.app.push(ping.withArgs({ n: 5 }));
    await h.app.waitForJob(job, { timeoutMs: 10_000 });
    await waitFor(() => has('succeeded', job.id), { timeoutMs: 10_000, message: 'the other process heard the broadcast outcome' });
    assert.equal(has('executing', job.id), false, 'executing is not broadcast here: only this process hears it');
    await worker.stop();
  });

  test('with `listen: false`, cross-process signals cannot be listened to', async () => {
    const { Docket } = await import('@docket/core');
    const quiet = signals();
    const app = new Docket({ connection: h.db.url, logger: false, listen: false, plugins: [quiet] });
    try {
      await assert.rejects(
        quiet.on('enqueued', () => {}),
        (e: unknown) => code('DOCKET_SIGNALS_NOT_LISTENING')(e) && e instanceof SignalsNotListeningError,
      );
      const off = await quiet.on('succeeded', () => {});
      const offAll = await quiet.on('*', () => {}); // whatever can arrive locally
      off();
      offAll();
    } finally {
      await app.close();
    }
  });
});
