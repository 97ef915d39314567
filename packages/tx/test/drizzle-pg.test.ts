import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestDatabase } from '@docket/testing';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { drizzleTransaction } from '../src/drizzle.js';
import { orders } from './drizzle-schema.js';
import { adapterSuite } from './suite.js';

adapterSuite('Drizzle on node-postgres', async (url) => {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const db = drizzle(pool);
  return {
    transaction: (body) =>
      db.transaction((tx) =>
        body({
          adapter: drizzleTransaction(tx),
          insertOrder: async (id) => void (await tx.insert(orders).values({ id })),
          exec: (text) => tx.execute(sql.raw(text)),
        }),
      ),
    close: () => pool.end(),
  };
});

test('Drizzle: a repeated $n sends its value twice; $n in a literal stays text', async () => {
  const db = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  try {
    const rows = await drizzle(pool).transaction((tx) =>
      drizzleTransaction(tx).query(`SELECT $1::text || $1::text AS twice, '$2' AS literal, $2::int AS n`, ['a', '7']),
    );
    assert.deepEqual(rows, [{ twice: 'aa', literal: '$2', n: 7 }]);
  } finally {
    await pool.end();
    await db.drop();
  }
});
