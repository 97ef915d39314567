/**
 * The server has no connection slot left for the workers, mid-drain: their connections are
 * terminated and every new one is refused with SQLSTATE 53300 for five seconds (longer than the
 * dead-worker margin), then slots free up. The workers back off (a bounded number of connection
 * attempts, counted by a TCP proxy in front of them), never exit, and drain on once they can
 * connect; nothing is lost and nothing runs twice.
 *
 * A shared server's max_connections cannot be filled without starving every other test on it, so
 * the workers log in as a role of their own whose CONNECTION LIMIT is set to 0: PostgreSQL then
 * refuses them exactly as a full server does (FATAL 53300, "too many connections for role" instead
 * of "sorry, too many clients already").
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { getTestServer, startTcpProxy, waitFor, withAdmin } from '@docket/testing';
import { jobs, Scenario, seconds } from './scenario.js';

const JOBS = 2000;
const FULL_MS = 5000;

test(`no connection slot for ${FULL_MS / 1000} s mid-drain: the workers back off, stay up and drain on`, { timeout: 240_000 }, async () => {
  const s = await Scenario.start('max_connections reached');
  const role = `docket_c_${randomBytes(4).toString('hex')}`;
  const url = new URL(s.db.url);
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
  try {
    await s.db.sql.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD 'chaos' CONNECTION LIMIT 50`);
    await s.db.sql.unsafe(`GRANT USAGE ON SCHEMA docket TO ${role}`);
    await s.db.sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA docket TO ${role}`);
    await s.db.sql.unsafe(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA docket TO ${role}`);
    url.username = role;
    url.password = 'chaos';

    const settings = {
      url: proxy.url(url.toString()),
      concurrency: 5,
      maxConnections: 4,
      heartbeatMs: 300,
      deadAfterMs: 2000,
      recoveryIntervalMs: 250,
    };
    const workers = [await s.spawn('A', settings), await s.spawn('B', settings)];
    await s.app.pushMany(Array.from({ length: JOBS }, () => jobs.sleep.withArgs({ ms: 40 })));
    await waitFor(async () => (await s.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE state = 'succeeded'`)[0]!.n >= 300, {
      timeoutMs: 60_000,
      intervalMs: 100,
      message: 'the drain under way',
    });

    // Full: no slot for the role, and its sessions gone.
    await s.db.sql.unsafe(`ALTER ROLE ${role} CONNECTION LIMIT 0`);
    const terminated = await s.db
      .sql`SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${role}) t`;
    const attemptsBefore = proxy.accepted;
    const fullFrom = Date.now();
    await new Promise((resolve) => setTimeout(resolve, FULL_MS));
    const attempts = proxy.accepted - attemptsBefore;
    const fullFor = Date.now() - fullFrom;
    await s.db.sql.unsafe(`ALTER ROLE ${role} CONNECTION LIMIT 50`);
    const freed = await s.now();

    const firstOutcome = await waitFor(() => s.firstOutcomeAfter(freed), {
      timeoutMs: 60_000,
      intervalMs: 50,
      message: 'an outcome after slots freed',
    });
    await s.drained(120_000);
    const drainedAt = await s.lastOutcome();

    for (const w of workers) assert.ok(w.alive, 'a worker process exited while the server was full');
    const perWorkerPerSecond = attempts / workers.length / (fullFor / 1000);
    assert.ok(perWorkerPerSecond < 50, `${perWorkerPerSecond.toFixed(1)} connection attempts per second per worker: not backing off`);
    const refused = s
      .logs('error')
      .filter((m) => JSON.stringify(m.fields ?? {}).includes('53300') || /too many connections/.test(JSON.stringify(m))).length;
    assert.ok(refused > 0, 'the workers did meet the refusal (53300)');

    await s.loadRuns();
    const figures = await s.checkRuns();
    await s.assertStates({ succeeded: JOBS });
    await s.assertDraining();
    s.report(figures, {
      'sessions terminated': terminated[0]!.n,
      'full for': seconds(fullFor),
      'connection attempts meanwhile': `${attempts} (${perWorkerPerSecond.toFixed(1)}/s per worker)`,
      'errors logged with 53300': refused,
      'first outcome after slots freed': seconds(firstOutcome.getTime() - freed.getTime()),
      'rest drained': seconds(drainedAt.getTime() - freed.getTime()),
    });
  } finally {
    await s.close();
    await proxy.close();
    // Roles belong to the server, not the dropped database.
    await withAdmin((await getTestServer()).adminUrl, (admin) => admin.unsafe(`DROP ROLE IF EXISTS ${role}`));
  }
});
