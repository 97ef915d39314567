import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Docket, defaultApplicationName, isDocketError } from '@docket/core';
import { createTestDatabase, type TestDatabase } from '@docket/testing';
import postgres from 'postgres';

/** The application_name of every session on the test database other than the test's own, with whether it is LISTENing. */
async function sessions(db: TestDatabase): Promise<Array<{ name: string; listening: boolean }>> {
  const rows = await db.sql`
    SELECT application_name AS name, query ILIKE 'LISTEN %' AS listening
      FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
     ORDER BY name, listening`;
  return rows.map((r) => ({ name: r.name as string, listening: r.listening as boolean }));
}

test('the app’s pool and its LISTEN session appear in pg_stat_activity as docket:<host>-<pid> by default', async () => {
  await using db = await createTestDatabase();
  const app = new Docket({ connection: db.url, logger: false });
  try {
    const name = defaultApplicationName();
    assert.match(name, new RegExp(`^docket:.+-${process.pid}$`));
    assert.ok(Buffer.byteLength(name) <= 63);
    await app.sql`SELECT 1`;
    const off = await app.listen('test-topic', () => {});
    assert.deepEqual(await sessions(db), [
      { name, listening: false },
      { name, listening: true },
    ]);
    off();
  } finally {
    await app.close();
  }
});

test('applicationName names the pool and the separate listen connection', async () => {
  await using db = await createTestDatabase();
  const app = new Docket({ connection: db.url, listen: { connection: db.url }, applicationName: 'billing-queue', logger: false });
  try {
    await app.sql`SELECT 1`;
    const off = await app.listen('test-topic', () => {});
    assert.deepEqual(await sessions(db), [
      { name: 'billing-queue', listening: false },
      { name: 'billing-queue', listening: true },
    ]);
    off();
  } finally {
    await app.close();
  }
});

test('a name in the connection URL and a pool passed in are the user’s: Docket keeps them', async () => {
  await using db = await createTestDatabase();
  const url = new URL(db.url);
  url.searchParams.set('application_name', 'from-the-url');
  const fromUrl = new Docket({ connection: url.toString(), applicationName: 'ignored-for-the-url', logger: false });
  const pool = postgres(db.url, { max: 1, onnotice: () => {}, connection: { application_name: 'their-pool' } });
  const theirs = new Docket({ connection: pool, logger: false });
  try {
    await fromUrl.sql`SELECT 1`;
    await theirs.sql`SELECT 1`;
    assert.deepEqual(
      (await sessions(db)).map((s) => s.name),
      ['from-the-url', 'their-pool'],
    );
  } finally {
    await fromUrl.close();
    await theirs.close();
    await pool.end();
  }
});

test('applicationName is validated, and refused when Docket opens no connection to name', () => {
  const url = 'postgres://nobody@127.0.0.1:1/none';
  const invalid = (pattern: RegExp) => (e: unknown) => isDocketError(e, 'DOCKET_INVALID_OPTION') && pattern.test((e as Error).message);
  for (const bad of ['', 'x'.repeat(64), 'café', 7, null]) {
    assert.throws(() => new Docket({ connection: url, applicationName: bad as never }), invalid(/`applicationName` must be 1 to 63 printable ASCII/));
  }
  assert.throws(() => new Docket({ connection: url, applicatonName: 'x' } as never), invalid(/did you mean `applicationName`/));
  const pool = postgres(url);
  assert.throws(() => new Docket({ connection: pool, applicationName: 'x' }), invalid(/your own postgres.js pool/));
  const withListenUrl = new Docket({ connection: pool, listen: { connection: url }, applicationName: 'x', logger: false });
  void withListenUrl.close();
  void pool.end();
});
