/**
 * The fault injectors of the chaos suite, on real sockets and real servers: the TCP proxy (stall,
 * drop, restore), a private server taken down and started again, and PgBouncer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestDatabase, pgBouncerMissing, restartableServer, startPgBouncer, startPrivateServer, startTcpProxy } from '@docket/testing';
import postgres from 'postgres';

const quiet = { onnotice: () => {}, connect_timeout: 5 };

test('the TCP proxy forwards, stalls (a query waits until restore) and drops (connections reset until restore)', { timeout: 30_000 }, async () => {
  await using db = await createTestDatabase();
  const target = new URL(db.url);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  const sql = postgres(proxy.url(db.url), { ...quiet, max: 1 });
  try {
    assert.equal((await sql`SELECT 1 AS one`)[0]!.one, 1);
    assert.equal(proxy.accepted, 1);
    assert.equal(proxy.open, 1);

    proxy.stall();
    let answered = false;
    const stalled = sql`SELECT 2 AS two`.then((rows) => {
      answered = true;
      return rows[0]!.two;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(answered, false, 'no answer crosses a stalled proxy');
    proxy.restore();
    assert.equal(await stalled, 2, 'the stalled query completes once restored');

    proxy.drop();
    assert.equal(proxy.open, 0);
    await assert.rejects(sql`SELECT 3`, 'the open connection was reset');
    await assert.rejects(sql`SELECT 3`, 'a new connection is reset too');
    proxy.restore();
    assert.equal((await sql`SELECT 4 AS four`)[0]!.four, 4);
    assert.ok(proxy.accepted >= 2, `every connection attempt is counted (${proxy.accepted})`);
  } finally {
    await sql.end({ timeout: 1 });
    await proxy.close();
  }
});

test('a private server goes down (sessions end, connections refused) and comes back with its data', { timeout: 120_000 }, async () => {
  const server = await startPrivateServer();
  const sql = postgres(server.adminUrl, { ...quiet, max: 1 });
  try {
    await sql`CREATE TABLE kept (v int)`;
    await sql`INSERT INTO kept VALUES (42)`;
    await server.down();
    await assert.rejects(sql`SELECT 1`);
    await server.up();
    assert.equal((await sql`SELECT v FROM kept`)[0]!.v, 42);
  } finally {
    await sql.end({ timeout: 1 });
    await server.stop();
  }
});

test('restartableServer picks the service only when allowed, and says why', { timeout: 120_000 }, async () => {
  const { server, why } = await restartableServer();
  try {
    assert.match(why, /private embedded PostgreSQL|the PostgreSQL service/);
    const sql = postgres(server.adminUrl, { ...quiet, max: 1 });
    assert.equal((await sql`SELECT 1 AS one`)[0]!.one, 1);
    await sql.end();
  } finally {
    await server.stop();
  }
});

test('PgBouncer in transaction mode in front of the test server', { skip: pgBouncerMissing() ?? false, timeout: 30_000 }, async () => {
  await using db = await createTestDatabase();
  await using bouncer = await startPgBouncer({ serverUrl: db.url });
  const sql = postgres(bouncer.url(db.url), { ...quiet, max: 2, prepare: false });
  try {
    const [row] = await sql`SELECT current_database() AS db`;
    assert.equal(row!.db, db.name);
    // Transaction mode: a session setting does not outlive its transaction's server connection,
    // but a transaction keeps one connection throughout.
    const pids = await sql.begin(async (tx) => [(await tx`SELECT pg_backend_pid() AS p`)[0]!.p, (await tx`SELECT pg_backend_pid() AS p`)[0]!.p]);
    assert.equal(pids[0], pids[1]);
    assert.match(bouncer.log(), /listening on 127\.0\.0\.1/);
  } finally {
    await sql.end({ timeout: 1 });
  }
});
