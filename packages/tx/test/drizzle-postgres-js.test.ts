import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { drizzleTransaction } from '../src/drizzle.js';
import { orders } from './drizzle-schema.js';
import { adapterSuite } from './suite.js';

adapterSuite('Drizzle on postgres.js', async (url) => {
  const client = postgres(url, { max: 2, onnotice: () => {} });
  const db = drizzle(client);
  return {
    transaction: (body) =>
      db.transaction((tx) =>
        body({
          adapter: drizzleTransaction(tx),
          insertOrder: async (id) => void (await tx.insert(orders).values({ id })),
          exec: (text) => tx.execute(sql.raw(text)),
        }),
      ),
    close: () => client.end(),
  };
});
