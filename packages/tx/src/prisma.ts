/**
 * `@docket/tx/prisma`: push inside a Prisma interactive transaction (PostgreSQL; Prisma 6.16+ or 7,
 * with or without a driver adapter).
 *
 *   await prisma.$transaction(async (tx) => {
 *     await tx.order.create({ data: order });
 *     await app.push(job, { tx: prismaTransaction(tx) });
 *   });
 *
 * Statements run with `tx.$queryRawUnsafe(text, ...params)`. Prisma reads int8 as BigInt; Docket
 * turns those into strings (as for every adapter), and its own statements read text only.
 */
import type { TransactionAdapter } from '@docket/core';
import { notATransaction } from './errors.js';

/** What this adapter needs of a Prisma interactive transaction client. */
export interface PrismaTransaction {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): PromiseLike<T>;
}

export function prismaTransaction(tx: PrismaTransaction): TransactionAdapter {
  if (tx === null || typeof tx !== 'object' || typeof tx.$queryRawUnsafe !== 'function') {
    throw notATransaction('prismaTransaction', 'this value', 'Pass the `tx` of `prisma.$transaction(async (tx) => …)`.');
  }
  // The client itself can connect and disconnect; an interactive transaction's client cannot.
  if (typeof (tx as { $disconnect?: unknown }).$disconnect === 'function') {
    throw notATransaction(
      'prismaTransaction',
      'a PrismaClient',
      'Pass the `tx` of `prisma.$transaction(async (tx) => …)` (an interactive transaction).',
    );
  }
  return {
    async query(text, params) {
      try {
        return await tx.$queryRawUnsafe<Record<string, unknown>[]>(text, ...params);
      } catch (error) {
        throw withSqlstate(error);
      }
    },
  };
}

/**
 * Prisma reports a failed raw query as its own error (P2010) and keeps PostgreSQL's SQLSTATE in
 * `meta` (or, through a driver adapter, in the adapter error's `cause`): expose it as `code` on an
 * error whose cause is Prisma's, so that Docket can name it (DOCKET_PUSH_TX_ABORTED's `details.sqlstate`).
 */
function withSqlstate(error: unknown): unknown {
  const sqlstate = findSqlstate(error);
  if (sqlstate === undefined || !(error instanceof Error)) return error;
  return Object.assign(new Error(error.message, { cause: error }), { code: sqlstate });
}

function findSqlstate(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number): string | undefined => {
    if (value === null || typeof value !== 'object' || seen.has(value) || depth > 4) return undefined;
    seen.add(value);
    for (const key of ['code', 'originalCode'] as const) {
      const code = (value as Record<string, unknown>)[key];
      if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^P[1-9]/.test(code)) return code; // P1000–P9999: Prisma's own
    }
    for (const key of ['meta', 'cause', 'driverAdapterError']) {
      const found = visit((value as Record<string, unknown>)[key], depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return visit(error, 0);
}
