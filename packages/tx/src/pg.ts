/**
 * `@docket/tx/pg`: push inside a node-postgres transaction — the `Client` or `PoolClient` on which
 * you ran `BEGIN`.
 *
 *   const client = await pool.connect();
 *   await client.query('BEGIN');
 *   await app.push(job, { tx: pgTransaction(client) });
 *   await client.query('COMMIT');
 */
import type { TransactionAdapter } from '@docket/core';
import type { ClientBase, QueryResultRow } from 'pg';
import { notATransaction } from './errors.js';

export function pgTransaction(client: ClientBase): TransactionAdapter {
  if (client === null || typeof client !== 'object' || typeof client.query !== 'function') {
    throw notATransaction('pgTransaction', 'this value', 'Pass the pg Client or PoolClient your transaction runs on.');
  }
  if ('totalCount' in client && 'idleCount' in client) {
    throw notATransaction(
      'pgTransaction',
      'a pg Pool',
      'A pool runs each statement on whichever connection is free: take one with `const client = await pool.connect()`, run BEGIN on it, and pass the client.',
    );
  }
  return {
    async query(text, params) {
      const result = await client.query<QueryResultRow>({ text, values: params as (string | null)[] });
      return result.rows;
    },
  };
}
