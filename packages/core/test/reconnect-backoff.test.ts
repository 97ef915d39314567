/**
 * A pool Docket opens backs off while the server refuses its sessions, and comes back at once
 * after a connection that merely dropped. The refusal is a role whose CONNECTION LIMIT is 0: the
 * server accepts the TCP connection and then refuses the login with SQLSTATE 53300, as a server
 * with no slot left does, closing the socket cleanly (postgres.js counted only errored sockets
 * as failures, so every connection retried every 50 ms). Attempts are counted by a TCP proxy.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Docket } from '@docket/core';
import { createTestDatabase, getTestServer, startTcpProxy, withAdmin } from '@docket/testing';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('refused sessions: attempts slow down to about one a second per connection; a dropped one comes back at once', { timeout: 60_000 }, async () => {
  const db = await createTestDatabase();
  const role = `docket_b_${randomBytes(4).toString('hex')}`;
  const url = new URL(db.url);
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
  await db.sql.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD 'b' CONNECTION LIMIT 10`);
  url.username = role;
  url.password = 'b';
  const app = new Docket({ connection: proxy.url(url.toString()), maxConnections: 4, listen: false, logger: false });
  try {
    // The refusal begins as a full server's does: the sessions are terminated under running
    // statements (whose errors the driver once kept, taking the next login's FATAL for theirs and
    // retrying at once), and new logins are refused.
    await Promise.all([1, 2, 3, 4].map(() => app.sql`SELECT pg_sleep(0.05)`));
    const running = [1, 2, 3, 4].map(() => app.sql`SELECT pg_sleep(30)`.catch((error: { code?: string }) => error.code));
    for (let waited = 0; ; waited += 10) {
      const [{ n }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = ${role} AND state = 'active'`;
      if (n === 4) break;
      if (waited > 10_000) throw new Error(`${n} of the pool's 4 sessions running their statement after 10 s`);
      await sleep(10);
    }
    await db.sql.unsafe(`ALTER ROLE ${role} CONNECTION LIMIT 0`);
    await db.sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${role}`;
    const ended = await Promise.all(running);
    assert.ok(
      ended.every((code) => code === '57P01' || code === 'CONNECTION_CLOSED'),
      `the running statements were terminated (${ended.join(', ')})`,
    );
    // Four callers, each asking again as soon as its statement fails: demand is never the limit.
    const refusals: string[] = [];
    const until = Date.now() + 4000;
    const caller = async () => {
      while (Date.now() < until) {
        await app.sql`SELECT 1`.catch((error: { code?: string }) => refusals.push(String(error.code)));
        await sleep(10);
      }
    };
    const before = proxy.accepted;
    await Promise.all([caller(), caller(), caller(), caller()]);
    const attempts = proxy.accepted - before;
    assert.ok(refusals.includes('53300'), `the server refused the logins (${[...new Set(refusals)].join(', ')})`);
    // Four connections over four seconds: delays of 50 ms growing to ~1 s make about 40 attempts;
    // without the growth it was about 300 (each connection every 50 ms).
    assert.ok(attempts <= 80, `${attempts} connection attempts in 4 s from a pool of 4: not backing off`);

    await db.sql.unsafe(`ALTER ROLE ${role} CONNECTION LIMIT 10`);
    // Every connection of the pool logged in again (four statements at once until all succeed).
    for (;;) {
      const ok = await Promise.all([1, 2, 3, 4].map(() => app.sql`SELECT pg_sleep(0.05)`)).then(
        () => true,
        () => false,
      );
      if (ok) break;
      await sleep(20);
    }
    // Working again: a session that is terminated now is replaced without the outage's delay.
    await db.sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${role}`;
    const t0 = performance.now();
    for (;;) {
      const ok = await app.sql`SELECT 1`.then(
        () => true,
        () => false,
      );
      if (ok) break;
    }
    const back = performance.now() - t0;
    console.log(`diagnostic: ${attempts} attempts in 4 s while refused; back ${back.toFixed(0)} ms after a dropped connection`);
    assert.ok(back < 600, `back ${back.toFixed(0)} ms after a dropped connection: the outage's delay was not reset`);
  } finally {
    await app.close();
    await proxy.close();
    await db.drop();
    // Roles belong to the server, not the dropped database.
    await withAdmin((await getTestServer()).adminUrl, (admin) => admin.unsafe(`DROP ROLE IF EXISTS ${role}`));
  }
});
