import type postgres from 'postgres';
import { InvalidOptionError, TransactionFeatureUnsupportedError } from './errors.js';
import { describe } from './options.js';
import { toSqlText } from './sql-text.js';
import type { SqlClient } from './types.js';

/**
 * How Docket runs a statement inside a transaction that another library owns (node-postgres,
 * Kysely, Drizzle, Prisma, Knex, …): pass one as `push(job, { tx })` and the push — the core's
 * insert, its NOTIFY, and every plugin's push-time statements — runs in that transaction, visible
 * and announced only when it commits. `@docket/tx` has one per library; writing your own is three
 * lines: run `text` with `params` on the transaction's connection and resolve with its rows.
 */
export interface TransactionAdapter {
  /**
   * Runs one statement inside the caller's transaction. `text` uses PostgreSQL's `$1`, `$2`, …
   * placeholders (a number may appear more than once); each parameter is already PostgreSQL text
   * (or null) and is cast in the statement, so send them as they are. Resolve with the rows as
   * objects keyed by column name (an empty array for a statement that returns none). Reject with
   * the library's error; if it knows the SQLSTATE, let it be the error's `code` (or its cause's).
   */
  query(text: string, params: readonly (string | null)[]): Promise<ReadonlyArray<Record<string, unknown>>>;
}

/** What `push(job, { tx })` takes: a postgres.js transaction (or pool), or any library's transaction through an adapter. */
export type PushTransaction = postgres.TransactionSql | postgres.Sql | TransactionAdapter;

/** Marks the facade over an adapter, and leads back to the adapter (a tap may push with `{ tx: ctx.sql }`). */
const ADAPTER = Symbol('docket.transactionAdapter');

/** postgres.js features a facade does not have: calling them says so, with a code. */
const POSTGRES_ONLY = [
  'begin',
  'savepoint',
  'json',
  'array',
  'file',
  'listen',
  'notify',
  'subscribe',
  'reserve',
  'typed',
  'largeObject',
  'describe',
  'end',
  'close',
] as const;

function unsupported(feature: string): TransactionFeatureUnsupportedError {
  return new TransactionFeatureUnsupportedError(
    `\`${feature}\` is a postgres.js feature, but this push runs in a transaction another library owns (a TransactionAdapter), where ` +
      '`ctx.sql` offers `ctx.sql.unsafe(text, params)` and the tagged template with plain values only. Write the statement with $n parameters, each cast (`$1::bigint[]`).',
    { details: { feature } },
  );
}

/**
 * The SQL client a push runs with for `tx`: a postgres.js transaction as it is, or for an adapter
 * a facade shaped like postgres.js for what push-time code uses — `unsafe(text, params)` and the
 * tagged template with plain values (each becomes `$n`) — resolving with the rows. Parameters go
 * to the adapter as text (see `toSqlText`); int8 values a library returns as BigInt come back as
 * strings, as postgres.js returns them; other values come back as the library parsed them (select
 * text, e.g. `id::text`, when a statement must read the same under every library). The other
 * postgres.js features (fragments, `sql(array)` helpers, `begin`, `json`, …) throw
 * DOCKET_TX_UNSUPPORTED. Exported for plugins whose own API takes a `tx` (store rows, then push).
 */
export function transactionSql(tx: PushTransaction): SqlClient {
  return resolveTransaction(tx).sql;
}

/** The client for `tx` and, when it is foreign, its adapter. Throws DOCKET_INVALID_OPTION for anything else, naming the adapter a known library needs. */
export function resolveTransaction(tx: unknown): { sql: SqlClient; adapter: TransactionAdapter | null } {
  if (typeof tx === 'function' && typeof (tx as { unsafe?: unknown }).unsafe === 'function') {
    const adapter = (tx as { [ADAPTER]?: TransactionAdapter })[ADAPTER];
    return { sql: tx as SqlClient, adapter: adapter ?? null };
  }
  const library = knownLibrary(tx);
  if (library !== null) {
    throw new InvalidOptionError(
      `push(job, { tx }): this \`tx\` looks like ${library.what}, which Docket cannot run statements on by itself. Wrap it: \`{ tx: ${library.wrap} }\` from '${library.from}'.`,
      { details: { option: 'tx' } },
    );
  }
  if (tx !== null && typeof tx === 'object' && typeof (tx as TransactionAdapter).query === 'function') {
    const adapter = tx as TransactionAdapter;
    return { sql: facade(adapter), adapter };
  }
  throw new InvalidOptionError(
    `push(job, { tx }): \`tx\` must be a postgres.js transaction or a TransactionAdapter ({ query(text, params) }), got ${describe(tx)}.`,
    { details: { option: 'tx' } },
  );
}

/** A library's own transaction object passed where its adapter belongs (the mistake everyone makes once). */
function knownLibrary(tx: unknown): { what: string; wrap: string; from: string } | null {
  if (tx === null || (typeof tx !== 'object' && typeof tx !== 'function')) return null;
  const has = (key: string) => typeof (tx as Record<string, unknown>)[key] === 'function';
  if (has('$queryRawUnsafe')) return { what: 'a Prisma client or transaction', wrap: 'prismaTransaction(tx)', from: '@docket/tx/prisma' };
  if (has('selectFrom') && has('executeQuery')) return { what: 'a Kysely transaction', wrap: 'kyselyTransaction(trx)', from: '@docket/tx/kysely' };
  if (has('execute') && has('select') && has('insert'))
    return { what: 'a Drizzle transaction', wrap: 'drizzleTransaction(tx)', from: '@docket/tx/drizzle' };
  if (has('raw') && has('transaction') && typeof tx === 'function')
    return { what: 'a Knex transaction', wrap: 'knexTransaction(trx)', from: '@docket/tx/knex' };
  if (has('query') && (has('release') || has('connect')))
    return { what: 'a node-postgres client', wrap: 'pgTransaction(client)', from: '@docket/tx/pg' };
  return null;
}

function facade(adapter: TransactionAdapter): SqlClient {
  const run = async (text: string, params: readonly unknown[]) => {
    const rows = await adapter.query(text, params.map(toSqlText));
    if (!Array.isArray(rows)) {
      throw new InvalidOptionError(
        `A TransactionAdapter's query() must resolve with an array of rows, got ${describe(rows)}. (A node-postgres result has them in \`.rows\`.)`,
        { details: { option: 'tx' } },
      );
    }
    return rows.map(normaliseRow);
  };
  const sql = (strings: unknown, ...values: unknown[]) => {
    if (!isTemplate(strings)) throw unsupported('sql(…) helpers (identifiers, lists, row objects)');
    let text = strings[0] ?? '';
    values.forEach((value, i) => {
      if (isFragment(value)) throw unsupported('nested sql`…` fragments and postgres.js helpers');
      text += `$${i + 1}${strings[i + 1] ?? ''}`;
    });
    return lazy(() => run(text, values));
  };
  const unsafe = (text: string, params: readonly unknown[] = []) => run(text, params);
  Object.defineProperty(sql, 'unsafe', { value: unsafe });
  for (const name of POSTGRES_ONLY) {
    Object.defineProperty(sql, name, {
      value: () => {
        throw unsupported(`sql.${name}`);
      },
    });
  }
  Object.defineProperty(sql, ADAPTER, { value: adapter });
  return sql as unknown as SqlClient;
}

/**
 * A query that runs when awaited, as postgres.js's do: a fragment built with the tagged template
 * and interpolated into another is refused without ever reaching the database.
 */
function lazy<T>(start: () => Promise<T>): PromiseLike<T> & { catch: Promise<T>['catch']; finally: Promise<T>['finally'] } {
  let started: Promise<T> | undefined;
  const promise = () => (started ??= start());
  return {
    // biome-ignore lint/suspicious/noThenProperty: a thenable on purpose (see above)
    then: (onFulfilled, onRejected) => promise().then(onFulfilled, onRejected),
    catch: (onRejected) => promise().catch(onRejected),
    finally: (onFinally) => promise().finally(onFinally),
  };
}

function isTemplate(value: unknown): value is TemplateStringsArray {
  return Array.isArray(value) && Array.isArray((value as unknown as TemplateStringsArray).raw);
}

/** A value that is a query or helper of some driver rather than a plain value: a thenable, a function. */
function isFragment(value: unknown): boolean {
  if (typeof value === 'function') return true;
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}

/** int8 as the string postgres.js gives (Prisma and node-postgres with BigInt parsing give a BigInt). */
function normaliseRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const key in row) {
    if (typeof row[key] === 'bigint') return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));
  }
  return row;
}
