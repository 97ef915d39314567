import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Docket, DocketError, type DocketEvent, type DocketPlugin, defineJob, Worker } from '@docket/core';
import { createTestDatabase, type TestDatabase, waitFor } from '@docket/testing';
import { type LeadershipGained, type LeadershipLost, leadership, PLUGIN_NAME } from '../src/index.js';

const noop = defineJob({ name: 'noop', queue: 'leadership-test' }, async () => undefined);

/** A test plugin: records this app's events and every maintenance tick's leadership answer. */
function recorder() {
  const events: DocketEvent[] = [];
  const ticks: Array<{ worker: string; tick: number } & { leader: boolean; term: string | null }> = [];
  let gate: Promise<void> | null = null;
  let blockedTick: number | null = null;
  const plugin: DocketPlugin = {
    name: 'test-recorder',
    apply(app) {
      app.hooks.event.tapPromise('test-recorder', async (event) => void events.push(event));
      app.hooks.maintenance.tapPromise('test-recorder', async (ctx) => {
        ticks.push({ worker: ctx.worker.id, tick: ctx.tick, leader: ctx.primary.primary, term: ctx.primary.term });
        if (gate) {
          // Holds this tick (after its leadership answer) like a paused process would.
          blockedTick = ctx.tick;
          const g = gate;
          gate = null;
          await g;
        }
      });
    },
  };
  return {
    plugin,
    events,
    ticks,
    gained: () => events.filter((e) => e.type === 'leadership.gained').map((e) => e.payload as LeadershipGained),
    lost: () => events.filter((e) => e.type === 'leadership.lost').map((e) => e.payload as LeadershipLost),
    /** Blocks the next maintenance tick until the returned function is called. */
    hold(): () => void {
      let open!: () => void;
      gate = new Promise<void>((r) => (open = r));
      return open;
    },
    get blockedTick() {
      return blockedTick;
    },
  };
}

async function node(db: TestDatabase, id: string, options: { leaseMs: number; renewIntervalMs: number }) {
  const lead = leadership(options);
  const rec = recorder();
  const app = new Docket({ connection: db.url, plugins: [lead, rec.plugin], logger: false });
  await app.migrate();
  const worker = new Worker(app, { id, jobs: [noop], queues: { 'leadership-test': {} }, maintenanceIntervalMs: 50 });
  return {
    lead,
    rec,
    app,
    worker,
    async close() {
      await worker.stop({ timeoutMs: 1000 });
      await app.close();
    },
  };
}

test('options are validated at construction', () => {
  assert.throws(
    () => leadership({ leaseMS: 1000 } as never),
    (e: unknown) => {
      assert.ok(e instanceof DocketError);
      assert.equal(e.code, 'DOCKET_INVALID_OPTION');
      assert.match(e.message, /did you mean `leaseMs`/);
      return true;
    },
  );
  assert.throws(() => leadership({ leaseMs: 1000, renewIntervalMs: 1000 }), /must be shorter than `leaseMs`/);
  assert.throws(() => leadership({ leaseMs: 50 }), /`leaseMs` must be an integer between 100/);
  assert.throws(() => leadership({ renewIntervalMs: 1.5 }), { code: 'DOCKET_INVALID_OPTION' });
  const lead = leadership({ leaseMs: 9000 });
  assert.equal(lead.name, PLUGIN_NAME);
  assert.equal(lead.renewIntervalMs, 3000, 'default renewal: a third of the lease');
  assert.equal(leadership().leaseMs, 30_000);
});

test('one leader among workers; a stalled leader learns it lost before its next tick works; a stopping leader hands over at once', {
  timeout: 60_000,
}, async () => {
  await using db = await createTestDatabase();
  const opts = { leaseMs: 800, renewIntervalMs: 200 };
  const a = await node(db, 'worker-a', opts);
  const b = await node(db, 'worker-b', opts);
  try {
    await a.worker.start();
    await waitFor(() => a.rec.gained()[0], { timeoutMs: 10_000, message: 'worker-a gains the lease' });
    assert.deepEqual(a.rec.gained(), [{ workerId: 'worker-a', term: '1' }]);
    await b.worker.start();
    // b ticks as a follower while a renews.
    await waitFor(() => b.rec.ticks.length >= 10, { timeoutMs: 10_000, message: 'worker-b ticks' });
    assert.ok(
      b.rec.ticks.every((t) => !t.leader && t.term === null),
      'worker-b never leads while worker-a renews',
    );
    assert.deepEqual(a.worker.primary, { primary: true, term: '1' });
    assert.deepEqual(a.lead.status('worker-a'), { primary: true, term: '1' });
    const lease = await a.lead.current();
    assert.equal(lease?.holder, 'worker-a');
    assert.equal(lease?.live, true);

    // Stall worker-a's maintenance tick past its lease: worker-b takes over with the next term.
    const open = a.rec.hold();
    await waitFor(() => b.rec.gained()[0], { timeoutMs: 10_000, message: 'worker-b takes the expired lease' });
    assert.deepEqual(b.rec.gained(), [{ workerId: 'worker-b', term: '2' }]);
    assert.equal(a.rec.lost().length, 0, 'worker-a has not ticked since it stalled');
    open();

    // worker-a's very next tick renews first, finds term 2 held by worker-b, and does its work as a follower.
    const blocked = a.rec.blockedTick!;
    const next = await waitFor(() => a.rec.ticks.find((t) => t.tick === blocked + 1), { timeoutMs: 10_000, message: 'worker-a ticks again' });
    assert.deepEqual({ leader: next.leader, term: next.term }, { leader: false, term: null });
    assert.deepEqual(a.rec.lost(), [{ workerId: 'worker-a', term: '1', reason: 'taken', holder: 'worker-b' }]);
    assert.ok(
      a.rec.ticks.filter((t) => t.tick > blocked).every((t) => !t.leader),
      'worker-a does not lead again while worker-b renews',
    );
    assert.ok(b.rec.ticks.filter((t) => t.leader).every((t) => t.term === '2'));

    // A stopping leader releases the lease: worker-a takes it long before the lease would have run out.
    const stoppedAt = Date.now();
    await b.worker.stop({ timeoutMs: 1000 });
    assert.deepEqual(b.rec.lost(), [{ workerId: 'worker-b', term: '2', reason: 'stopped', holder: null }]);
    await waitFor(() => a.rec.gained().find((g) => g.term === '3'), { timeoutMs: 10_000, message: 'worker-a takes the released lease' });
    const handover = Date.now() - stoppedAt;
    assert.ok(handover < opts.leaseMs + 2000, `handover took ${handover} ms`);
    assert.equal((await a.lead.current())?.holder, 'worker-a');
  } finally {
    await a.close();
    await b.close();
  }
  const released = await db.sql`SELECT holder, expires_at <= now() AS expired FROM docket.leadership_lease`;
  assert.deepEqual([...released], [{ holder: null, expired: true }], 'the last worker released the lease on stop');
});

test('workers of one app elect among themselves (the holder is the worker, not the process)', { timeout: 30_000 }, async () => {
  await using db = await createTestDatabase();
  const lead = leadership({ leaseMs: 1000, renewIntervalMs: 300 });
  const rec = recorder();
  const app = new Docket({ connection: db.url, plugins: [lead, rec.plugin], logger: false });
  await app.migrate();
  const workers = ['w1', 'w2', 'w3'].map((id) => new Worker(app, { id, jobs: [noop], queues: { 'leadership-test': {} }, maintenanceIntervalMs: 50 }));
  try {
    await Promise.all(workers.map((w) => w.start()));
    await waitFor(() => ['w1', 'w2', 'w3'].every((id) => rec.ticks.filter((t) => t.worker === id).length >= 5), {
      timeoutMs: 10_000,
      message: 'every worker ticks',
    });
    const leaders = new Set(rec.ticks.filter((t) => t.leader).map((t) => t.worker));
    assert.equal(leaders.size, 1, `one leader, got ${[...leaders]}`);
    assert.equal(rec.gained().length, 1);
    assert.equal(workers.filter((w) => w.primary.primary).length, 1);
  } finally {
    await Promise.all(workers.map((w) => w.stop({ timeoutMs: 1000 })));
    await app.close();
  }
});

test('the implementation is replaceable: a plugin that answers resolvePrimary first decides', { timeout: 30_000 }, async () => {
  await using db = await createTestDatabase();
  const alwaysLeader: DocketPlugin = {
    name: 'always-leader',
    apply(app) {
      app.hooks.resolvePrimary.tapPromise('always-leader', async () => ({ primary: true, term: null }));
    },
  };
  const rec = recorder();
  const lead = leadership({ leaseMs: 1000, renewIntervalMs: 300 });
  const app = new Docket({ connection: db.url, plugins: [alwaysLeader, lead, rec.plugin], logger: false });
  await app.migrate();
  const workers = ['x1', 'x2'].map((id) => new Worker(app, { id, jobs: [noop], queues: { 'leadership-test': {} }, maintenanceIntervalMs: 50 }));
  try {
    await Promise.all(workers.map((w) => w.start()));
    await waitFor(() => rec.ticks.filter((t) => t.worker === 'x2').length >= 3 && rec.ticks.filter((t) => t.worker === 'x1').length >= 3, {
      timeoutMs: 10_000,
      message: 'both workers tick',
    });
    assert.ok(
      rec.ticks.every((t) => t.leader && t.term === null),
      'every worker leads, with no term',
    );
    assert.equal(await lead.current(), null, 'the lease plugin was never asked');
  } finally {
    await Promise.all(workers.map((w) => w.stop({ timeoutMs: 1000 })));
    await app.close();
  }
});
