/** The user's table of the Drizzle tests, as Drizzle declares it. */
import { integer, pgTable } from 'drizzle-orm/pg-core';

export const orders = pgTable('orders', {
  id: integer('id').primaryKey(),
  total: integer('total').notNull().default(0),
});
