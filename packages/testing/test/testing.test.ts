import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestDatabase, getTestServer, TEMPLATE_ENV, WaitForTimeoutError, waitFor, withAdmin } from '@docket/testing';

test('two test databases are isolated from each other', async () => {
  await using a = await createTestDatabase();
  await using b = await createTestDatabase();
  assert.notEqual(a.name, b.name);

  await a.sql`create table only_in_a (id int primary key)`;
  await a.sql`insert into only_in_a values (1)`;

  const inA = await a.sql`select to_regclass('only_in_a') as t`;
  const inB = await b.sql`select to_regclass('only_in_a') as t`;
  assert.equal(inA[0].t, 'only_in_a');
  assert.equal(inB[0].t, null);
  const [{ db }] = await b.sql`select current_database() as db`;
  assert.equal(db, b.name);
});

test('drop() removes the database, even with other sessions connected, and is idempotent', async () => {
  const db = await createTestDatabase();
  const server = await getTestServer();
  const exists = () => withAdmin(server.adminUrl, async (admin) => (await admin`select 1 from pg_database where datname = ${db.name}`).length > 0);
  assert.equal(await exists(), true);

  const { default: postgres } = await import('postgres');
  const other = postgres(db.url, { max: 1 });
  await other`select 1`; // a second session that drop() must terminate
  try {
    await db.drop();
    await db.drop();
  } finally {
    await other.end({ timeout: 1 }).catch(() => {});
  }
  assert.equal(await exists(), false);
});

test('databases are cloned from the template named by DOCKET_TEST_TEMPLATE, unless template: false', async () => {
  // Our own template, so this holds with or without the workspace runner's docket_template.
  const source = await createTestDatabase({ template: false });
  await source.sql`create table from_template (id int)`;
  await source.sql.end();
  const previous = process.env[TEMPLATE_ENV];
  process.env[TEMPLATE_ENV] = source.name;
  try {
    await using cloned = await createTestDatabase();
    await using empty = await createTestDatabase({ template: false });
    const has = async (sql: typeof cloned.sql) => (await sql`select to_regclass('from_template') as t`)[0].t !== null;
    assert.equal(await has(cloned.sql), true);
    assert.equal(await has(empty.sql), false);
  } finally {
    if (previous === undefined) delete process.env[TEMPLATE_ENV];
    else process.env[TEMPLATE_ENV] = previous;
    await source.drop();
  }
});

test('waitFor returns the first truthy-enough value, polling the database', async () => {
  await using db = await createTestDatabase();
  await db.sql`create table flag (v int)`;
  setTimeout(() => void db.sql`insert into flag values (0)`.catch(() => {}), 50);
  const value = await waitFor(async () => (await db.sql`select v from flag`)[0]?.v as number | undefined, {
    timeoutMs: 5000,
    intervalMs: 10,
  });
  assert.equal(value, 0); // 0 is a value, not "not yet"
});

test('waitFor times out with a clear error', async () => {
  await assert.rejects(
    waitFor(() => false, { timeoutMs: 100, intervalMs: 10, message: 'the job to finish' }),
    (err: unknown) => {
      assert.ok(err instanceof WaitForTimeoutError);
      assert.equal(err.code, 'WAIT_FOR_TIMEOUT');
      assert.match(err.message, /timed out after 100 ms/);
      assert.match(err.message, /the job to finish/);
      assert.match(err.message, /last value: false/);
      return true;
    },
  );
});

test('waitFor does not retry a condition that throws', async () => {
  let calls = 0;
  await assert.rejects(
    waitFor(() => {
      calls++;
      throw new Error('bad query');
    }),
    /bad query/,
  );
  assert.equal(calls, 1);
});
