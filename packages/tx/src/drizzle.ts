/**
 * `@docket/tx/drizzle`: push inside a Drizzle transaction, on node-postgres or on postgres.js.
 *
 *   await db.transaction(async (tx) => {
 *     await tx.insert(orders).values(order);
 *     await app.push(job, { tx: drizzleTransaction(tx) });
 *   });
 *
 * Drizzle numbers the parameters of a statement itself, in order of appearance, so each `$n` of
 * Docket's statement becomes one of Drizzle's (a `$n` used twice sends its value twice).
 */
import type { TransactionAdapter } from '@docket/core';
import { type SQL, sql } from 'drizzle-orm';
import { notATransaction } from './errors.js';
import { splitCached, valuesInOrder } from './placeholders.js';

/** What this adapter needs of a Drizzle PostgreSQL transaction (`PgTransaction` of any driver). */
export interface DrizzleTransaction {
  execute(query: SQL): PromiseLike<unknown>;
  rollback(): unknown;
}

export function drizzleTransaction(tx: DrizzleTransaction): TransactionAdapter {
  if (tx === null || typeof tx !== 'object' || typeof tx.execute !== 'function') {
    throw notATransaction('drizzleTransaction', 'this value', 'Pass the `tx` of `db.transaction(async (tx) => …)`.');
  }
  if (typeof tx.rollback !== 'function') {
    throw notATransaction('drizzleTransaction', 'a Drizzle database', 'Pass the `tx` of `db.transaction(async (tx) => …)`.');
  }
  return {
    async query(text, params) {
      const split = splitCached(text);
      const strings = Object.assign([...split.chunks], { raw: split.chunks }) as unknown as TemplateStringsArray;
      let result: unknown;
      try {
        result = await tx.execute(sql(strings, ...valuesInOrder(split, params)));
      } catch (error) {
        // Drizzle wraps the driver's error in one whose message spells out the statement and its
        // values (job arguments): the driver's error (with its SQLSTATE as `code`) is what counts.
        throw error instanceof Error && error.cause instanceof Error ? error.cause : error;
      }
      // node-postgres answers a QueryResult, postgres.js the rows themselves.
      return (Array.isArray(result) ? result : (result as { rows: Record<string, unknown>[] }).rows) as Record<string, unknown>[];
    },
  };
}
