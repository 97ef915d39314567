/**
 * What postgres.js 3.4.9 did when a connection died under it, and what the workspace's patch of it
 * (patches/postgres@3.4.9.patch; see docs/RELIABILITY.md) makes of it instead — each found by the
 * chaos suite:
 * - a write scheduled on an immediate found the socket gone and threw a TypeError from that
 *   immediate, which no caller can catch: the worker process died (porsager/postgres#1154, #1208).
 *   Now the query is rejected with CONNECTION_CLOSED. (Run in a child process, so that a
 *   regression fails this test instead of ending the test runner.)
 * - a query handed to a connection between its socket's error and its close waited forever (a
 *   worker whose claim never returns claims nothing more); and the connection, its cancelled write
 *   still marked pending, never sent its startup message again: every later attempt waited out
 *   connect_timeout. Now the query is rejected and the connection comes back.
 * - a connection that died during the array-types query postgres.js runs on every new connection
 *   left that query's rejection unhandled: the process died (connections terminated by
 *   pg_terminate_backend, a failover, an idle timeout). Now the caller's query is rejected with the
 *   connection's error, as any query on a dying connection is.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createTestDatabase, startTcpProxy } from '@docket/testing';
import postgres from 'postgres';

/** Runs a fixture in a child process: its exit code and output. */
async function runFixture(name: string, url: string): Promise<{ code: number | undefined; output: string }> {
  const fixture = new URL(`./fixtures/${name}`, import.meta.url);
  return promisify(execFile)(process.execPath, [...process.execArgv, fixture.pathname], { env: { ...process.env, TEST_DATABASE_URL: url } }).then(
    ({ stdout }) => ({ code: 0, output: stdout }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code, output: `${error.stdout}${error.stderr}` }),
  );
}

test('a query written to a connection whose backend died is rejected (CONNECTION_CLOSED); the process does not crash', async () => {
  await using db = await createTestDatabase();
  assert.deepEqual(await runFixture('closed-socket-write.ts', db.url), { code: 0, output: 'rejected CONNECTION_CLOSED; the pool answers 2\n' });
});

test("a connection that dies during the driver's array-types query rejects the caller's query; the process does not crash", async () => {
  await using db = await createTestDatabase();
  assert.deepEqual(await runFixture('types-query-cut.ts', db.url), { code: 0, output: 'cut during the types query; rejected ECONNRESET\n' });
});

test('a query handed to a connection between its reset and its close is rejected, and the connection connects again', {
  timeout: 30_000,
}, async () => {
  await using db = await createTestDatabase();
  const target = new URL(db.url);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  const sql = postgres(proxy.url(db.url), { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    await sql`SELECT 1`;
    proxy.drop();
    // The reset's error rejects the first query; its rejection hands the next query to the same
    // connection before the socket's close event.
    const second = await sql`SELECT 1`.then(
      () => 'resolved',
      () =>
        sql`SELECT 2`.then(
          () => 'resolved',
          (error: { code?: string }) => `rejected ${error.code}`,
        ),
    );
    assert.equal(second, 'rejected CONNECTION_CLOSED');
    proxy.restore();
    const [row] = await sql`SELECT 3 AS three`;
    assert.equal(row!.three, 3, 'the connection connected again (not after connect_timeout: that would be CONNECT_TIMEOUT)');
  } finally {
    await sql.end({ timeout: 1 });
    await proxy.close();
  }
});
