import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { Docket } from '@docket/core';
import { createTestDatabase, stopChild, waitFor } from '@docket/testing';
import { type LeadershipLost, leadership } from '../src/index.js';

const LEASE_MS = 2000;
const RENEW_INTERVAL_MS = 500;

type Message =
  | { type: 'started'; worker: string }
  | { type: 'tick'; worker: string; tick: number; primary: boolean; term: string | null; idleMs: number }
  | { type: 'event'; worker: string; event: string; payload: unknown };

interface Child {
  id: string;
  proc: ChildProcess;
  messages: Message[];
  exited: boolean;
}

function spawnWorker(url: string, id: string): Child {
  const proc = fork(new URL('./fixtures/leader-worker.ts', import.meta.url), {
    env: { ...process.env, TEST_DATABASE_URL: url, WORKER_ID: id, LEASE_MS: String(LEASE_MS), RENEW_INTERVAL_MS: String(RENEW_INTERVAL_MS) },
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const child: Child = { id, proc, messages: [], exited: false };
  proc.on('message', (m) => child.messages.push(m as Message));
  proc.on('exit', () => (child.exited = true));
  return child;
}

const ticks = (c: Child) => c.messages.filter((m): m is Extract<Message, { type: 'tick' }> => m.type === 'tick');

test('three worker processes: one leader at a time; kill -9 hands over after the lease; a SIGSTOPped leader resumes as a follower', {
  timeout: 120_000,
}, async () => {
  await using db = await createTestDatabase();
  // Migrate the plugin's table from the test (workers assert the schema is migrated).
  const setup = new Docket({ connection: db.url, plugins: [leadership()], logger: false });
  await setup.migrate();
  await setup.close();
  await db.sql`CREATE TABLE leader_ticks (worker text NOT NULL, term bigint NOT NULL, tick int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`;

  const children = ['w1', 'w2', 'w3'].map((id) => spawnWorker(db.url, id));
  const byId = (id: string) => children.find((c) => c.id === id)!;
  const lease = async () => (await db.sql`SELECT holder, term::int AS term, acquired_at, renewed_at, expires_at FROM docket.leadership_lease`)[0]!;
  try {
    await waitFor(() => children.every((c) => c.messages.some((m) => m.type === 'started')), { timeoutMs: 30_000, message: 'three workers started' });

    // 1. Steady state: one worker leads, the others follow.
    await waitFor(async () => (await db.sql`SELECT count(*)::int AS n FROM leader_ticks`)[0]!.n >= 10, {
      timeoutMs: 20_000,
      message: 'ten leader ticks',
    });
    const first = await lease();
    const steady = await db.sql`SELECT DISTINCT worker, term::int AS term FROM leader_ticks`;
    assert.deepEqual([...steady], [{ worker: first.holder, term: 1 }], 'one leader, term 1');
    const followers = children.filter((c) => c.id !== first.holder);
    // A follower's first tick can come well after the leader's tenth on a loaded machine: wait for it.
    await waitFor(() => followers.every((c) => ticks(c).length > 0), { timeoutMs: 20_000, message: 'every follower ticked' });
    for (const c of followers) {
      const led = ticks(c).filter((t) => t.primary);
      assert.deepEqual(led, [], `${c.id} follows (of its ${ticks(c).length} ticks, these were primary)`);
    }

    // 2. kill -9 the leader: another worker takes the lease once it expires, not before.
    const killed = byId(first.holder);
    killed.proc.kill('SIGKILL');
    await once(killed.proc, 'exit');
    const dead = await lease();
    assert.equal(dead.holder, killed.id, 'nobody took the lease while it was live');
    const second = await waitFor(
      async () => {
        const row = await lease();
        return row.term > dead.term ? row : undefined;
      },
      { timeoutMs: 20_000, message: 'another worker takes over' },
    );
    assert.notEqual(second.holder, killed.id);
    const takeoverMs = second.acquired_at.getTime() - dead.renewed_at.getTime();
    assert.ok(takeoverMs >= LEASE_MS, `the lease was taken ${takeoverMs} ms after its last renewal, before it expired`);
    assert.ok(takeoverMs <= LEASE_MS + 1500, `takeover ${takeoverMs} ms after the dead leader's last renewal (lease ${LEASE_MS} ms)`);
    console.log(
      `# kill -9: new leader ${takeoverMs} ms after the dead leader's last renewal (lease ${LEASE_MS} ms, renew every ${RENEW_INTERVAL_MS} ms, tick 100 ms)`,
    );

    // 3. SIGSTOP the new leader right after one of its ticks, until another worker holds the lease.
    const paused = byId(second.holder);
    const seen = ticks(paused).length;
    const lastTick = await waitFor(
      () =>
        ticks(paused)
          .slice(seen)
          .find((t) => t.primary),
      { timeoutMs: 10_000, message: 'a tick of the new leader' },
    );
    paused.proc.kill('SIGSTOP');
    const stoppedTerm = Number(lastTick.term);
    const third = await waitFor(
      async () => {
        const row = await lease();
        return row.term > stoppedTerm ? row : undefined;
      },
      { timeoutMs: 20_000, message: 'the lease is taken from the stopped leader' },
    );
    assert.notEqual(third.holder, paused.id);
    paused.proc.kill('SIGCONT');

    // Its first election after the pause renews, finds the newer term, and the tick works as a follower.
    const resumed = await waitFor(() => ticks(paused).find((t) => t.tick >= lastTick.tick + 2), {
      timeoutMs: 20_000,
      message: 'the resumed worker ticks twice',
    });
    const after = ticks(paused).filter((t) => t.tick > lastTick.tick);
    const nextTick = after[0]!;
    const pausedBetweenTicks = nextTick.idleMs > RENEW_INTERVAL_MS;
    if (pausedBetweenTicks) {
      assert.equal(nextTick.primary, false, `tick ${nextTick.tick} began ${Math.round(nextTick.idleMs)} ms after the pause and must not lead`);
    }
    assert.ok(resumed.tick >= lastTick.tick + 2);
    assert.ok(
      after.filter((t) => t.tick >= lastTick.tick + 2).every((t) => !t.primary),
      'no later tick leads with the stale term',
    );
    const lostIndex = paused.messages.findIndex((m) => m.type === 'event' && m.event === 'leadership.lost');
    assert.ok(lostIndex >= 0, 'the resumed worker was told it lost');
    assert.deepEqual(paused.messages[lostIndex], {
      type: 'event',
      worker: paused.id,
      event: 'leadership.lost',
      payload: { workerId: paused.id, term: String(stoppedTerm), reason: 'taken', holder: third.holder } satisfies LeadershipLost,
    });
    const firstFollowerTick = paused.messages.findIndex((m) => m.type === 'tick' && m.tick > lastTick.tick && !m.primary);
    assert.ok(lostIndex < firstFollowerTick, 'it learns it lost before it ticks as a follower');
    if (pausedBetweenTicks) {
      const [stale] = await db.sql`SELECT count(*)::int AS n FROM leader_ticks WHERE worker = ${paused.id} AND at > ${third.acquired_at}`;
      assert.equal(stale!.n, 0, 'the resumed worker did no leader work after the takeover');
    }
    console.log(
      `# SIGSTOP: ${third.holder} took term ${third.term} from the stopped ${paused.id}; ` +
        `the resumed worker's next tick began ${Math.round(nextTick.idleMs)} ms after its previous one and answered primary=${nextTick.primary}`,
    );
    const current = await lease();
    assert.equal(current.holder, third.holder, 'the resumed worker did not take the lease back');
    assert.equal(current.term, third.term);

    // Over the whole run: each term had one worker, and terms followed each other in time.
    const terms = await db.sql`
      SELECT term::int AS term, count(DISTINCT worker)::int AS workers, min(at) AS first, max(at) AS last
        FROM leader_ticks
       WHERE NOT (worker = ${paused.id} AND tick > ${lastTick.tick})
       GROUP BY term ORDER BY term`;
    assert.ok(terms.length >= 3, `three terms, got ${terms.map((t) => t.term)}`);
    for (const t of terms) assert.equal(t.workers, 1, `term ${t.term} had one worker`);
    for (let i = 1; i < terms.length; i++) {
      assert.ok(terms[i]!.first > terms[i - 1]!.last, `term ${terms[i]!.term} began after term ${terms[i - 1]!.term} ended`);
    }
  } finally {
    for (const c of children) if (!c.exited) c.proc.kill('SIGCONT');
    await Promise.all(children.map((c) => stopChild(c.proc, 10_000)));
  }
});
