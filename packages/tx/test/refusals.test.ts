/** Each adapter refuses what is not a transaction (a push through it would commit on its own) and names what to pass. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDocketError } from '@docket/core';
import { createTestDatabase } from '@docket/testing';
import { drizzle } from 'drizzle-orm/node-postgres';
import knex from 'knex';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { drizzleTransaction } from '../src/drizzle.js';
import { knexTransaction } from '../src/knex.js';
import { kyselyTransaction } from '../src/kysely.js';
import { pgTransaction } from '../src/pg.js';
import { prismaTransaction } from '../src/prisma.js';

const refused = (hint: RegExp) => (e: unknown) => {
  assert.ok(isDocketError(e, 'DOCKET_INVALID_OPTION'), String(e));
  assert.match((e as Error).message, hint);
  return true;
};

test('a pool, a query builder or a client instead of its transaction is refused', async () => {
  const db = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  const kysely = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: db.url, max: 1 }) }) });
  const k = knex({ client: 'pg', connection: db.url, pool: { min: 0, max: 1 } });
  try {
    assert.throws(() => pgTransaction(pool as never), refused(/a pg Pool is not a transaction.*pool\.connect\(\)/));
    assert.throws(() => kyselyTransaction(kysely as never), refused(/a Kysely instance is not a transaction/));
    assert.throws(() => drizzleTransaction(drizzle(pool) as never), refused(/a Drizzle database is not a transaction/));
    assert.throws(() => knexTransaction(k as never), refused(/a Knex instance is not a transaction/));
    assert.throws(
      () => prismaTransaction({ $queryRawUnsafe: async () => [], $disconnect: async () => {} } as never),
      refused(/a PrismaClient is not a transaction/),
    );
    for (const make of [pgTransaction, kyselyTransaction, drizzleTransaction, knexTransaction, prismaTransaction] as Array<(v: never) => unknown>) {
      assert.throws(() => make({} as never), refused(/is not a transaction/));
    }
  } finally {
    await Promise.all([pool.end(), kysely.destroy(), k.destroy()]);
    await db.drop();
  }
});
