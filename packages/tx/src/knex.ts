/**
 * `@docket/tx/knex`: push inside a Knex transaction (the `pg` client).
 *
 *   await knex.transaction(async (trx) => {
 *     await trx('orders').insert(order);
 *     await app.push(job, { tx: knexTransaction(trx) });
 *   });
 *
 * `trx.raw` takes `?` bindings, numbered by appearance: each `$n` of Docket's statement becomes a
 * `?` with its value (a `$n` used twice sends its value twice), and every `?` that is part of the
 * SQL itself (a jsonb operator, a string) is escaped as `\?`, which Knex turns back into `?`.
 */
import { InvalidOptionError, type TransactionAdapter } from '@docket/core';
import type { Knex } from 'knex';
import { notATransaction } from './errors.js';
import { splitCached, valuesInOrder } from './placeholders.js';

export function knexTransaction(trx: Knex.Transaction): TransactionAdapter {
  if (typeof trx !== 'function' || typeof trx.raw !== 'function') {
    throw notATransaction('knexTransaction', 'this value', 'Pass the `trx` of `knex.transaction(async (trx) => …)`.');
  }
  if (!trx.isTransaction) {
    throw notATransaction('knexTransaction', 'a Knex instance', 'Pass the `trx` of `knex.transaction(async (trx) => …)`.');
  }
  return {
    async query(text, params) {
      const split = splitCached(text);
      const sent = split.chunks.map(escapeQuestionMarks).join('?');
      try {
        const result = await trx.raw(sent, valuesInOrder(split, params));
        return (result as { rows: Record<string, unknown>[] }).rows;
      } catch (error) {
        throw withoutStatement(error, sent);
      }
    },
  };
}

/**
 * Knex puts the failed statement, with its values spelled out, in front of the driver's message
 * (`<sql> - <message>`): taken off again, so that the values (job arguments) do not travel in
 * Docket's error message and logs. The driver's error is otherwise untouched (`code` is its SQLSTATE).
 */
function withoutStatement(error: unknown, sent: string): unknown {
  if (!(error instanceof Error)) return error;
  let k = 0;
  // What Knex's postgres client makes of `sent` (the `?` bindings numbered; `\?` a literal `?`).
  const positioned = sent.replace(/(\\*)(\?)/g, (_, escapes: string) => (escapes.length % 2 ? '?' : `$${++k}`));
  const prefix = `${positioned} - `;
  if (error.message.startsWith(prefix)) error.message = error.message.slice(prefix.length);
  return error;
}

/**
 * Knex drops every backslash in front of a `?` (an odd number of them makes the `?` literal), so
 * SQL with a backslash right before a `?` cannot pass through it unchanged: refused, not altered.
 */
function escapeQuestionMarks(chunk: string): string {
  if (/\\\?/.test(chunk)) {
    throw new InvalidOptionError(
      'knexTransaction(): this statement has a backslash right before a `?`, which Knex removes from raw SQL; it cannot be sent through Knex unchanged.',
      { details: { option: 'tx' } },
    );
  }
  return chunk.replace(/\?/g, '\\?');
}
