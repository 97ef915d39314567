import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestDatabase } from '@docket/testing';
import knex from 'knex';
import { knexTransaction } from '../src/knex.js';
import { adapterSuite } from './suite.js';

adapterSuite('Knex', async (url) => {
  const db = knex({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
  return {
    transaction: (body) =>
      db.transaction((trx) =>
        body({
          adapter: knexTransaction(trx),
          insertOrder: async (id) => void (await trx('orders').insert({ id })),
          exec: (text) => trx.raw(text),
        }),
      ),
    close: () => db.destroy(),
  };
});

test('Knex: a `?` of the SQL itself (a jsonb operator) stays one, and a repeated $n sends its value twice', async () => {
  const db = await createTestDatabase();
  const k = knex({ client: 'pg', connection: db.url, pool: { min: 0, max: 1 } });
  try {
    const rows = await k.transaction((trx) =>
      knexTransaction(trx).query(`SELECT '{"a": 1}'::jsonb ? 'a' AS has, $1::text || '-' || $1::text AS twice, $2::text AS second, '?' AS mark`, [
        'x',
        'y',
      ]),
    );
    assert.deepEqual(rows, [{ has: true, twice: 'x-x', second: 'y', mark: '?' }]);
  } finally {
    await k.destroy();
    await db.drop();
  }
});
