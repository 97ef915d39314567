import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { kyselyTransaction } from '../src/kysely.js';
import { adapterSuite } from './suite.js';

interface Database {
  orders: { id: number; total: number };
}

adapterSuite('Kysely', async (url) => {
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
  return {
    transaction: (body) =>
      db.transaction().execute((trx) =>
        body({
          adapter: kyselyTransaction(trx),
          insertOrder: async (id) => void (await trx.insertInto('orders').values({ id, total: 0 }).execute()),
          exec: (text) => sql.raw(text).execute(trx),
        }),
      ),
    close: () => db.destroy(),
  };
});
