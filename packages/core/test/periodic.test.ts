import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, afterEach, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Docket, type DocketPlugin, defineJob, type PeriodicEvents, type PrimaryStatus, periodicTask, Worker } from '@docket/core';
import { createTestDatabase, deferred, type TestDatabase } from '@docket/testing';

declare module '@docket/core' {
  // The tasks these tests start.
  interface DocketEventMap extends PeriodicEvents<'slow' | 'fast' | 'flaky' | 'only' | 'everywhere' | 'exclusive' | 'fresh' | 'long'> {}
}

const QUEUE = 'periodic-test';
const noop = defineJob({ name: 'noop', queue: QUEUE }, async () => undefined);

let db: TestDatabase;
const apps: Docket[] = [];
const workers: Worker[] = [];

before(async () => {
  db = await createTestDatabase();
  const app = new Docket({ connection: db.url, logger: false });
  await app.migrate();
  await app.close();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop({ timeoutMs: 2000 })));
  await Promise.all(apps.splice(0).map((a) => a.close()));
});
after(() => db.drop());

interface Entry {
  /** 'resolvePrimary', 'tick' (a maintenance tap call), 'workerStopping', or an event type. */
  readonly what: string;
  readonly worker: string | undefined;
  readonly payload?: unknown;
}

/**
 * A test plugin that answers the election with `answer` and logs, in order, every election call,
 * every maintenance tick, every event and the worker's stop; `until` waits for the log to match.
 */
function recorder(answer: (workerId: string) => PrimaryStatus) {
  const log: Entry[] = [];
  const waiting = new Set<() => void>();
  const record = (entry: Entry) => {
    log.push(entry);
    for (const check of waiting) check();
  };
  let holdTick: Promise<void> | null = null;
  let tickHeld = deferred();
  const plugin: DocketPlugin = {
    name: 'test-recorder',
    apply(app) {
      app.hooks.resolvePrimary.tapPromise('test-recorder', async ({ workerId }) => {
        record({ what: 'resolvePrimary', worker: workerId });
        return answer(workerId);
      });
      app.hooks.maintenance.tapPromise('test-recorder', async (ctx) => {
        record({ what: 'tick', worker: ctx.worker.id });
        if (holdTick) {
          tickHeld.resolve();
          await holdTick;
        }
      });
      app.hooks.event.tapPromise('test-recorder', async (event) => {
        record({ what: event.type, worker: (event.payload as { workerId?: string }).workerId, payload: event.payload });
      });
      app.hooks.workerStopping.tapPromise('test-recorder', async (worker) => record({ what: 'workerStopping', worker: worker.id }));
    },
  };
  return {
    plugin,
    log,
    count: (what: string, worker?: string, from = 0) =>
      log.slice(from).filter((e) => e.what === what && (worker === undefined || e.worker === worker)).length,
    /** Resolves once `done(log)` holds; checked on every new entry. */
    until(done: (log: readonly Entry[]) => boolean, message: string, timeoutMs = 10_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${message}`));
        }, timeoutMs);
        const check = () => {
          if (!done(log)) return;
          clearTimeout(timer);
          waiting.delete(check);
          resolve();
        };
        waiting.add(check);
        check();
      });
    },
    /** Holds the next maintenance tick (after its election answer) until the returned function is called; resolves once held. */
    async holdNextTick(): Promise<() => void> {
      const gate = deferred();
      tickHeld = deferred();
      holdTick = gate.promise;
      await tickHeld.promise;
      return () => {
        holdTick = null;
        gate.resolve();
      };
    },
  };
}

const PRIMARY: PrimaryStatus = { primary: true, term: '1' };

function appWith(plugin: DocketPlugin): Docket {
  const app = new Docket({ connection: db.url, logger: false, plugins: [plugin] });
  apps.push(app);
  return app;
}

async function startWorker(app: Docket, id: string, maintenanceIntervalMs = 20): Promise<Worker> {
  const worker = new Worker(app, { id, jobs: [noop], queues: { [QUEUE]: {} }, maintenanceIntervalMs });
  workers.push(worker);
  await worker.start();
  return worker;
}

test('a slow task delays neither another task nor the election: each task has its own loop', { timeout: 30_000 }, async () => {
  const rec = recorder(() => PRIMARY);
  const app = appWith(rec.plugin);
  const slow = periodicTask(app, { name: 'slow', intervalMs: 60_000, run: ({ signal }) => sleep(2000, 'slept', { signal }) });
  periodicTask(app, { name: 'fast', intervalMs: 20, primaryOnly: false, run: async () => 'quick' });
  await startWorker(app, 'w1', 50);
  assert.equal(await slow.nextRun({ timeoutMs: 10_000 }), 'slept');

  const from = rec.log.findIndex((e) => e.what === 'slow.started');
  const to = rec.log.findIndex((e) => e.what === 'slow.finished');
  const during = rec.log.slice(from, to);
  const count = (what: string) => during.filter((e) => e.what === what).length;
  // Ideally 100 fast runs and 40 ticks in 2 s; on one shared tick (the old design) there were none.
  assert.ok(count('fast.finished') >= 20, `the fast task ran ${count('fast.finished')} times during the slow run`);
  assert.ok(count('resolvePrimary') >= 10, `the election was asked ${count('resolvePrimary')} times during the slow run`);
  assert.ok(count('tick') >= 10, `the maintenance tick ran ${count('tick')} times during the slow run`);
});

test('a task never overlaps itself, even on two workers of one process', { timeout: 30_000 }, async () => {
  const rec = recorder(() => PRIMARY);
  const app = appWith(rec.plugin);
  let active = 0;
  let most = 0;
  const task = periodicTask(app, {
    name: 'exclusive',
    intervalMs: 1,
    primaryOnly: false,
    run: async ({ app: docket }) => {
      most = Math.max(most, ++active);
      await docket.sql`SELECT pg_sleep(0.03)`; // far longer than intervalMs
      active--;
    },
  });
  await startWorker(app, 'w1');
  await startWorker(app, 'w2');
  for (let i = 0; i < 10; i++) await task.nextRun({ timeoutMs: 10_000 });
  assert.equal(most, 1, 'one run at a time');
  assert.ok(task.runs >= 10);
});

test('stop aborts an in-flight run, waits for it before workerStopping finishes, and no run follows', { timeout: 30_000 }, async () => {
  const rec = recorder(() => PRIMARY);
  const app = appWith(rec.plugin);
  const entered = deferred();
  let sawAbort = false;
  periodicTask(app, {
    name: 'long',
    intervalMs: 10,
    run: async ({ app: docket, signal }) => {
      entered.resolve();
      if (!signal.aborted) await once(signal, 'abort');
      sawAbort = true;
      await docket.sql`SELECT pg_sleep(0.1)`; // cleanup after the abort: stop must wait for it
      return 'wound down';
    },
  });
  const worker = await startWorker(app, 'w1');
  await entered.promise;
  await worker.stop({ timeoutMs: 2000 });
  assert.ok(sawAbort, 'the run saw its signal abort');
  const order = rec.log.filter((e) => e.what.startsWith('long.') || e.what === 'workerStopping').map((e) => e.what);
  assert.deepEqual(order.slice(-2), ['long.finished', 'workerStopping'], 'the run returned before workerStopping');
  const finished = rec.log.find((e) => e.what === 'long.finished');
  assert.ok(finished, 'the run reported finishing');
  assert.equal((finished.payload as { result: string }).result, 'wound down');

  await sleep(200); // twenty intervals: a loop left running would have started again
  assert.deepEqual(rec.log.at(-1)?.what, 'workerStopping', 'no run after stop');
});

test('primaryOnly: skipped on a worker that is not primary, run there soon after it becomes primary', { timeout: 30_000 }, async () => {
  const primaries = new Set(['p']);
  const rec = recorder((id) => (primaries.has(id) ? { primary: true, term: '3' } : { primary: false, term: null }));
  const app = appWith(rec.plugin);
  const ran: Array<{ worker: string; term: string | null }> = [];
  periodicTask(app, {
    name: 'only',
    intervalMs: 60_000,
    run: async ({ worker, primary }) => void ran.push({ worker: worker.id, term: primary.term }),
  });
  periodicTask(app, { name: 'everywhere', intervalMs: 60_000, primaryOnly: false, run: async () => undefined });
  await startWorker(app, 'p');
  await startWorker(app, 'f');
  await rec.until((log) => log.some((e) => e.what === 'only.finished' && e.worker === 'p'), 'a run on the primary worker');
  await rec.until(
    () => rec.count('everywhere.finished', 'f') === 1 && rec.count('resolvePrimary', 'f') >= 10,
    'the follower ticks and asks the election',
  );
  assert.equal(rec.count('only.started', 'f'), 0, 'never started on the follower');

  // intervalMs is a minute: a worker that becomes primary runs the task it never ran within ticks.
  primaries.add('f');
  await rec.until(() => rec.count('only.finished', 'f') === 1, 'a run on the new primary worker');
  assert.deepEqual(ran, [
    { worker: 'p', term: '3' },
    { worker: 'f', term: '3' },
  ]);
  assert.equal(rec.count('only.started', 'p'), 1, 'once a minute on the first primary');
});

test('a primaryOnly run asks the election first: it obeys the latest answer even while the maintenance tick is held', {
  timeout: 30_000,
}, async () => {
  let asked = 0;
  let primary = true;
  const rec = recorder(() => {
    asked++;
    return primary ? { primary: true, term: String(asked) } : { primary: false, term: null };
  });
  const app = appWith(rec.plugin);
  const seen: Array<{ term: string | null; latest: string; workerSaw: string | null }> = [];
  const task = periodicTask(app, {
    name: 'fresh',
    intervalMs: 10,
    run: async ({ primary: answer, worker }) => void seen.push({ term: answer.term, latest: String(asked), workerSaw: worker.primary.term }),
  });
  await startWorker(app, 'w1', 50);
  await task.nextRun({ timeoutMs: 10_000 });

  const release = await rec.holdNextTick();
  try {
    const before = seen.length;
    for (let i = 0; i < 3; i++) await task.nextRun({ timeoutMs: 10_000 });
    const held = seen.slice(before);
    for (const s of held)
      assert.deepEqual(
        { term: s.term, workerSaw: s.workerSaw },
        { term: s.latest, workerSaw: s.latest },
        'each run acts on the latest answer, which the worker keeps',
      );
    assert.ok(new Set(held.map((s) => s.term)).size === held.length, 'a new answer for every run');

    // The election now says no: with the tick still held, the task asks again and stops running.
    primary = false;
    const askedAt = rec.log.length;
    await rec.until(() => rec.count('resolvePrimary', 'w1', askedAt) >= 3, 'the task asking the election while the tick is held');
    const startsAfter = rec.log.slice(askedAt).filter((e) => e.what === 'fresh.started');
    assert.equal(startsAfter.length, 0, 'no run once the election says no');
    assert.equal(rec.count('tick', 'w1', askedAt), 0, 'the tick was held throughout');
  } finally {
    release();
  }
});

test('events: started, failed with the error, finished with the result; nextRun and runs', { timeout: 30_000 }, async () => {
  const rec = recorder(() => PRIMARY);
  const app = appWith(rec.plugin);
  let calls = 0;
  const task = periodicTask(app, {
    name: 'flaky',
    intervalMs: 10,
    run: async () => {
      if (++calls === 1) throw new Error('first run fails');
      return { calls };
    },
  });
  await startWorker(app, 'w1');
  assert.deepEqual(await task.nextRun({ timeoutMs: 10_000 }), { calls: 2 });
  assert.equal(task.runs, 1, 'a failed run is not counted');
  await rec.until(() => rec.count('flaky.finished') >= 1, 'the finished event');
  const events = rec.log.filter((e) => e.what.startsWith('flaky.')).slice(0, 4);
  assert.deepEqual(
    events.map((e) => `${e.what}@${e.worker}`),
    ['flaky.started@w1', 'flaky.failed@w1', 'flaky.started@w1', 'flaky.finished@w1'],
  );
  assert.equal((events[1]!.payload as { error: Error }).error.message, 'first run fails');
  const finished = events[3]!.payload as { result: unknown; durationMs: number };
  assert.deepEqual(finished.result, { calls: 2 });
  assert.ok(finished.durationMs >= 0);
});
