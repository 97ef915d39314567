/**
 * The plugin with real worker processes (test/fixtures/worker.ts): a global cap, per-key limits,
 * fairness across keys, kill -9 while holding capacity, and freed capacity waking idle runners.
 * Handlers record their own runs on the database clock; assertions read those records.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineJob } from '@docket/core';
import '../src/index.js';
import { byKey, peakOverlap, setup, type WorkerProcess } from './helpers.js';

type WorkArgs = { ms: number; firstMs?: number; key?: string; n?: number };
const workOn = (queue: string) => defineJob({ name: 'work', queue }, async (_: WorkArgs) => undefined);

test('global cap 4 on 3 processes at concurrency 10: never more than 4 running at once, and 4 reached', { timeout: 120_000 }, async () => {
  const h = await setup('capped', { queues: { capped: { max: 4 } } });
  try {
    const work = workOn('capped');
    const refs = await h.app.pushMany(Array.from({ length: 60 }, () => work.withArgs({ ms: 100 })));
    const workers = [h.spawn({ CONCURRENCY: 10 }), h.spawn({ CONCURRENCY: 10 }), h.spawn({ CONCURRENCY: 10 })];
    await Promise.all(workers.map((w) => w.started));
    for (const ref of refs) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 60_000 })).state, 'succeeded');
    const gauge = await h.gauge();
    assert.equal(gauge.peak, 4, 'the handlers saw exactly 4 running at the peak');
    const runs = await h.runs();
    assert.equal(runs.length, 60, 'each job ran once');
    assert.equal(peakOverlap(runs), 4, 'the recorded run intervals overlap 4 deep at most, and do reach 4');
    assert.deepEqual(await h.plugin.usage('capped'), { running: 0, keys: {} });
  } finally {
    await h.close();
  }
});

test('per-key limit 1, 50 keys × 20 jobs on 3 processes: a key’s jobs never overlap and start in push order', { timeout: 180_000 }, async () => {
  const h = await setup('lanes', { queues: { lanes: { keyLimit: 1 } } });
  try {
    const work = workOn('lanes');
    // 20 batches, each one job of every key: job n of a key is pushed after job n − 1.
    const refs = [];
    for (let n = 0; n < 20; n++) {
      refs.push(
        ...(await h.app.pushMany(Array.from({ length: 50 }, (_, k) => work.withArgs({ ms: 5, key: `k${k}`, n }).withConcurrencyKey(`k${k}`)))),
      );
    }
    const workers = [h.spawn(), h.spawn(), h.spawn()];
    await Promise.all(workers.map((w) => w.started));
    for (const ref of refs) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 120_000 })).state, 'succeeded');
    const lanes = byKey(await h.runs());
    assert.equal(lanes.size, 50);
    for (const [key, runs] of lanes) {
      assert.deepEqual(
        runs.map((r) => r.n),
        Array.from({ length: 20 }, (_, n) => n),
        `${key}: its jobs started in push order`,
      );
      for (let i = 1; i < runs.length; i++) {
        assert.ok(runs[i]!.start_us >= runs[i - 1]!.end_us!, `${key}: job ${i} started after job ${i - 1} ended`);
      }
    }
    assert.ok(peakOverlap([...lanes.values()].flat()) > 1, 'different keys did run side by side');
  } finally {
    await h.close();
  }
});

test('per-key limit 3 on 3 processes: never more than 3 of a key at once, and 3 reached', { timeout: 120_000 }, async () => {
  const h = await setup('trio', { keyLimit: 3, queues: { trio: {} } });
  try {
    const work = workOn('trio');
    const refs = await h.app.pushMany(
      Array.from({ length: 300 }, (_, i) => work.withArgs({ ms: 50, key: `k${i % 10}`, n: i }).withConcurrencyKey(`k${i % 10}`)),
    );
    const workers = [h.spawn(), h.spawn(), h.spawn()];
    await Promise.all(workers.map((w) => w.started));
    for (const ref of refs) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 90_000 })).state, 'succeeded');
    const peaks = [...byKey(await h.runs()).values()].map((runs) => peakOverlap(runs));
    assert.equal(peaks.length, 10);
    assert.equal(Math.max(...peaks), 3, `per-key peaks: ${peaks.join(', ')}`);
  } finally {
    await h.close();
  }
});

test('fairness: key B’s 20 jobs pushed after key A’s 5,000 all start while A’s backlog is still nearly whole', { timeout: 120_000 }, async () => {
  const h = await setup('fair', { queues: { fair: {} } });
  try {
    const work = workOn('fair');
    await h.app.pushMany(Array.from({ length: 5000 }, (_, n) => work.withArgs({ ms: 2, key: 'A', n }).withConcurrencyKey('A')));
    const b = await h.app.pushMany(Array.from({ length: 20 }, (_, n) => work.withArgs({ ms: 2, key: 'B', n }).withConcurrencyKey('B')));
    // Two processes at concurrency 5, prefetch 5: each claim asks for at most 10 jobs.
    const workers = [h.spawn({ CONCURRENCY: 5, PREFETCH: 5 }), h.spawn({ CONCURRENCY: 5, PREFETCH: 5 })];
    await Promise.all(workers.map((w) => w.started));
    for (const ref of b) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 60_000 })).state, 'succeeded');
    const runs = await h.runs();
    const lastB = Math.max(...runs.filter((r) => r.key === 'B').map((r) => r.start_us));
    const aBefore = runs.filter((r) => r.key === 'A' && r.start_us < lastB).length;
    // The bound (README): a claim of L jobs takes turns between the keys with due jobs, so with two
    // keys B gets half of every claim: its 20 jobs are claimed in 4 claims of 10, next to about 20
    // of A's, and start behind at most one claim's worth of buffered jobs per process. Asserted
    // loosely (10×): far from the 5,000 a first-in-first-out claim would run first.
    assert.ok(aBefore < 200, `${aBefore} of A's jobs started before B's last one`);
  } finally {
    await h.close();
  }
});

test('kill -9 of a worker holding the whole cap: recovery frees it within its window and nothing leaks', { timeout: 120_000 }, async () => {
  const h = await setup('held', { queues: { held: { max: 2 } } });
  try {
    const work = workOn('held');
    const p1 = h.spawn({ RECOVERY: 1 });
    await p1.started;
    // P1 takes both slots of the cap with jobs that would run 60 s (their re-runs take 50 ms).
    const long = await h.app.pushMany([work.withArgs({ ms: 50, firstMs: 60_000 }), work.withArgs({ ms: 50, firstMs: 60_000 })]);
    await p1.running(2);
    const p2 = h.spawn({ RECOVERY: 1 });
    await p2.started;
    const short = await h.app.pushMany([work.withArgs({ ms: 50 }), work.withArgs({ ms: 50 })]);
    assert.deepEqual((await h.plugin.usage('held')).running, 2, 'the cap is full: P2 has nothing running');
    assert.equal((await h.db.sql`SELECT count(*)::int AS n FROM runs`)[0]!.n, 2);
    const killedAt = Date.now();
    await p1.kill();
    for (const ref of [...long, ...short]) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 30_000 })).state, 'succeeded');
    const freedIn = Date.now() - killedAt;
    // Dead after max(3 × 200 ms heartbeat, 1000 ms), swept every 200 ms: about 1.2 s, asserted loosely.
    assert.ok(freedIn < 15_000, `all four jobs done ${freedIn} ms after the kill (the long ones would have taken 60 s)`);
    const reruns = await h.db.sql`SELECT attempt FROM docket.jobs WHERE id = ANY(${long.map((r) => r.id)}::bigint[])`;
    assert.deepEqual(
      reruns.map((r) => r.attempt),
      [2, 2],
      'the killed jobs ran again',
    );
    assert.deepEqual(await h.plugin.usage('held'), { running: 0, keys: {} });
  } finally {
    await h.close();
  }
});

test('a long run with kill -9s ends with no capacity held: cap and per-key limits are whole again', { timeout: 240_000 }, async () => {
  const h = await setup('churn', { queues: { churn: { max: 4, keyLimit: 1 } } });
  try {
    const work = workOn('churn');
    const refs = await h.app.pushMany(
      Array.from({ length: 600 }, (_, i) => work.withArgs({ ms: 50, key: `k${i % 30}`, n: i }).withConcurrencyKey(`k${i % 30}`)),
    );
    const workers = new Map<string, WorkerProcess>();
    const start = async () => {
      const p = h.spawn({ RECOVERY: 1 });
      workers.set(await p.started, p);
    };
    await Promise.all([start(), start(), start()]);
    // Six times: push a job that runs 60 s on its first attempt, kill -9 the process that started
    // it (so every kill lands on a running job, whatever the machine's speed), start a new one.
    // Other jobs of the churn may be running in that process too, and are lost with it.
    const held = [];
    for (let kill = 0; kill < 6; kill++) {
      const [ref] = await h.app.pushMany([work.withArgs({ ms: 50, firstMs: 60_000, key: `held${kill}` }).withConcurrencyKey(`held${kill}`)]);
      held.push(ref!);
      const running = [...workers].map(([id, p]) => p.ran(ref!.id).then(() => id));
      const holder = await Promise.race(running);
      const victim = workers.get(holder)!;
      workers.delete(holder);
      await victim.kill();
      await start();
    }
    for (const ref of held) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 60_000 })).state, 'succeeded');
    for (const ref of refs) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 180_000 })).state, 'succeeded');
    const heldAttempts = await h.db.sql`SELECT attempt FROM docket.jobs WHERE id = ANY(${held.map((r) => r.id)}::bigint[])`;
    // 2, or more if a later kill also caught its 50 ms re-run.
    assert.ok(
      heldAttempts.length === 6 && heldAttempts.every((r) => r.attempt >= 2),
      `each killed 60 s job was recovered and ran again (attempts: ${heldAttempts.map((r) => r.attempt).join(', ')})`,
    );
    assert.deepEqual(await h.plugin.usage('churn'), { running: 0, keys: {} }, 'no running row is left over');
    // The whole cap is free: 4 jobs of 4 keys start together (each holds its slot 1 s).
    await h.db.sql`UPDATE gauge SET running = 0, peak = 0`;
    const burst = await h.app.pushMany(Array.from({ length: 4 }, (_, k) => work.withArgs({ ms: 1000, key: `b${k}` }).withConcurrencyKey(`b${k}`)));
    for (const ref of burst) assert.equal((await h.app.waitForJob(ref, { timeoutMs: 30_000 })).state, 'succeeded');
    assert.equal((await h.gauge()).peak, 4, 'all four ran at once');
  } finally {
    await h.close();
  }
});

test('freed capacity wakes waiting runners at once, not at their next poll (60 s)', { timeout: 60_000 }, async () => {
  const h = await setup('woken', { queues: { woken: { max: 1 } } });
  try {
    const work = workOn('woken');
    const workers = [h.spawn({ POLL_MS: 60_000 }), h.spawn({ POLL_MS: 60_000 })];
    await Promise.all(workers.map((w) => w.started));
    const refs = await h.app.pushMany(Array.from({ length: 4 }, () => work.withArgs({ ms: 300 })));
    const jobs = [];
    for (const ref of refs) jobs.push(await h.app.waitForJob(ref, { timeoutMs: 20_000 }));
    jobs.sort((a, b) => a.startedAt!.getTime() - b.startedAt!.getTime());
    for (let i = 1; i < jobs.length; i++) {
      const gap = jobs[i]!.startedAt!.getTime() - jobs[i - 1]!.finishedAt!.getTime();
      assert.ok(gap >= 0, 'one at a time');
      assert.ok(gap < 5000, `job ${i + 1} started ${gap} ms after job ${i} finished`);
    }
  } finally {
    await h.close();
  }
});
