/**
 * `@docket/tx/kysely`: push inside a Kysely transaction (any PostgreSQL dialect).
 *
 *   await db.transaction().execute(async (trx) => {
 *     await trx.insertInto('orders').values(order).execute();
 *     await app.push(job, { tx: kyselyTransaction(trx) });
 *   });
 */
import type { TransactionAdapter } from '@docket/core';
import { CompiledQuery, type Transaction } from 'kysely';
import { notATransaction } from './errors.js';

export function kyselyTransaction<DB>(trx: Transaction<DB>): TransactionAdapter {
  if (trx === null || typeof trx !== 'object' || typeof trx.executeQuery !== 'function') {
    throw notATransaction('kyselyTransaction', 'this value', 'Pass the `trx` of `db.transaction().execute(async (trx) => …)`.');
  }
  if (!trx.isTransaction) {
    throw notATransaction('kyselyTransaction', 'a Kysely instance', 'Pass the `trx` of `db.transaction().execute(async (trx) => …)`.');
  }
  return {
    async query(text, params) {
      const result = await trx.executeQuery<Record<string, unknown>>(CompiledQuery.raw(text, [...params]));
      return result.rows;
    },
  };
}
