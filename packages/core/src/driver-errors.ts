import type postgres from 'postgres';
import { ConnectionFailedError, DocketError, MigrationsPendingError, PoolerIncompatibleError } from './errors.js';

/**
 * What the PostgreSQL driver throws, said as what to do. A user's first errors are a wrong
 * DATABASE_URL or a forgotten `app.migrate()`; the driver's own words for them (`ECONNREFUSED`,
 * `PostgresError 42P01`) do not name the fix. Errors that are not about the connection or the
 * schema pass through unchanged; the driver's error is always kept as `cause`. Messages name host,
 * port, user and database — never the password, and never the URL (which may hold one).
 */

/** Where the app connects, as the driver parsed it (also for a pool the user passed in). */
export interface ConnectionTarget {
  host: string;
  port: number | string;
  user: string;
  database: string;
  connectTimeoutMs: number;
}

export function connectionTarget(sql: postgres.Sql): ConnectionTarget {
  const o = (sql as unknown as { options?: Record<string, unknown> }).options ?? {};
  const first = (v: unknown) => String(Array.isArray(v) ? v[0] : (v ?? ''));
  const seconds = typeof o.connect_timeout === 'number' ? o.connect_timeout : 30;
  return { host: first(o.host), port: first(o.port), user: first(o.user), database: first(o.database), connectTimeoutMs: Math.round(seconds * 1000) };
}

interface DriverError {
  code?: unknown;
  message?: unknown;
  address?: unknown;
  port?: unknown;
  hostname?: unknown;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'CONNECT_TIMEOUT',
]);
/** The server answered but does not have what Docket's statement named: a table, a column, the schema. */
const MISSING_OBJECT_CODES = new Set(['42P01', '42703', '3F000', '42883']);

/**
 * The error to throw instead of `error`: a ConnectionFailedError for connection failures, a
 * MigrationsPendingError when a statement met a missing table or column and migrations are
 * pending (asked only on that path), otherwise `error` itself.
 */
export async function explainDriverError(
  error: unknown,
  app: { sql: postgres.Sql; schemaName: string; pendingMigrations(): Promise<Array<{ owner: string; version: number }>> },
): Promise<unknown> {
  if (error instanceof DocketError || error === null || typeof error !== 'object') return error;
  const e = error as DriverError;
  const code = typeof e.code === 'string' ? e.code : '';
  const target = connectionTarget(app.sql);
  const where = `${typeof e.address === 'string' ? e.address : target.host}:${typeof e.port === 'number' || typeof e.port === 'string' ? e.port : target.port}`;
  const fail = (reason: string, message: string) =>
    new ConnectionFailedError(`Could not connect to PostgreSQL: ${message}`, {
      cause: error,
      details: { reason, host: target.host, port: target.port, user: target.user, database: target.database },
    });

  if (CONNECTION_CODES.has(code)) {
    switch (code) {
      case 'ECONNREFUSED':
        return fail(
          'refused',
          `the server at ${where} refused the connection. Is PostgreSQL running there? Check the host and port in DATABASE_URL (your \`connection\`).`,
        );
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return fail(
          'host-not-found',
          `the host "${typeof e.hostname === 'string' ? e.hostname : target.host}" was not found. Check the host in DATABASE_URL (your \`connection\`).`,
        );
      case 'CONNECT_TIMEOUT':
        return fail(
          'timeout',
          `no PostgreSQL answer from ${where} within ${target.connectTimeoutMs} ms (connectTimeoutMs). Check that DATABASE_URL names a PostgreSQL server reachable from here; on a slow network raise \`connectTimeoutMs\`.`,
        );
      default:
        return fail(
          'unreachable',
          `${where} could not be reached (${code}). Check the host and port in DATABASE_URL and the network between here and the server.`,
        );
    }
  }
  switch (code) {
    case '28P01':
      return fail(
        'authentication',
        `password authentication failed for user "${target.user}" at ${where}. Check the user and password in DATABASE_URL (your \`connection\`).`,
      );
    case '28000':
      return fail(
        'authentication',
        `the server at ${where} refused user "${target.user}" (${String(e.message)}). Check the user in DATABASE_URL and the server's pg_hba.conf.`,
      );
    case '3D000':
      return fail(
        'database-missing',
        `database "${target.database}" does not exist on ${where}. Create it (\`createdb ${target.database}\`) or fix the database name in DATABASE_URL.`,
      );
    case '08P01': {
      // PgBouncer refuses startup parameters it does not track: "unsupported startup parameter: jit".
      const parameter = /unsupported startup parameter: (\S+)/.exec(String(e.message))?.[1];
      if (parameter !== undefined) return refusedStartupParameter(parameter, where, target, error);
      break;
    }
  }
  if (MISSING_OBJECT_CODES.has(code)) {
    let pending: Array<{ owner: string; version: number }> = [];
    try {
      pending = await app.pendingMigrations();
    } catch {
      return error;
    }
    if (pending.length > 0) {
      return new MigrationsPendingError(
        `The database schema ${app.schemaName} lacks ${pending.length} migration(s) (${pending.map((p) => `${p.owner}@${p.version}`).join(', ')}), so this statement failed (${String(e.message)}). ` +
          'Run `await app.migrate()` (or `docket migrate`) once before using the app.',
        { cause: error, details: { pending } },
      );
    }
  }
  return error;
}

/** What Docket sends as startup parameters of the connections it opens, and how to do without. */
const STARTUP_PARAMETERS: Record<string, { why: string; instead: (user: string) => string }> = {
  jit: {
    why: "jit = off: compiling a queue's short statements costs milliseconds and never pays off",
    instead: (user) => `to keep JIT off for Docket's statements, \`ALTER ROLE ${user} SET jit = off\``,
  },
  statement_timeout: {
    why: 'statement_timeout, from `statementTimeoutMs`',
    instead: (user) => `to keep the timeout, drop \`statementTimeoutMs\` and \`ALTER ROLE ${user} SET statement_timeout = …\``,
  },
};

/** A pooler (PgBouncer) refused a startup parameter Docket sends: say which, and what to configure. */
function refusedStartupParameter(parameter: string, where: string, target: ConnectionTarget, cause: unknown): PoolerIncompatibleError {
  const known = STARTUP_PARAMETERS[parameter];
  return new PoolerIncompatibleError(
    `The connection pooler at ${where} (PgBouncer?) refused the startup parameter \`${parameter}\` that Docket sets on the connections it opens` +
      `${known ? ` (${known.why})` : ''}. Add it to the pooler's ignored parameters — PgBouncer: \`ignore_startup_parameters = ${parameter}\` ` +
      `(with any others it already lists, comma-separated) — and the server's own setting applies${known ? `; ${known.instead(target.user)}` : ''}.`,
    { cause, details: { feature: 'startup-parameter', parameter, host: target.host, port: target.port } },
  );
}

/** The error for a `connection` string the driver cannot parse (its own error would echo the URL, password included). */
export function invalidUrlError(error: unknown): ConnectionFailedError {
  const message = error instanceof Error ? error.message : String(error);
  const cause = new Error(message);
  return new ConnectionFailedError(
    `Could not connect to PostgreSQL: \`connection\` is not a valid PostgreSQL URL (${message}). Check DATABASE_URL; it looks like postgres://user:password@host:5432/database (percent-encode special characters in the password).`,
    { cause, details: { reason: 'invalid-url' } },
  );
}

/**
 * Makes the named async methods of `proto` throw explained errors. Done here, once, so that no
 * method can forget it and the methods' own code stays about what they do. A method's synchronous
 * throws (argument checks) stay synchronous; only its promise gets the translation.
 */
export function explainDriverErrorsOf(proto: object, methods: readonly string[]): void {
  const target = proto as Record<string, unknown>;
  for (const name of methods) {
    const original = target[name] as (...args: unknown[]) => unknown;
    if (typeof original !== 'function') throw new Error(`explainDriverErrorsOf: no method ${name}`);
    target[name] = function (this: Parameters<typeof explainDriverError>[1], ...args: unknown[]) {
      const result = original.apply(this, args);
      if (!(result instanceof Promise)) return result;
      return result.catch(async (error: unknown) => {
        throw await explainDriverError(error, this);
      });
    };
  }
}

/**
 * The SQLSTATE of a database error, whichever library raised it: its own `code`, or its cause's
 * (a query builder's wrapper), or `meta.code` (Prisma's raw-query error). Undefined when none.
 */
export function sqlstateOf(error: unknown): string | undefined {
  for (let e = error, depth = 0; e !== null && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (isSqlstate(code)) return code;
    const meta = (e as { meta?: { code?: unknown } }).meta;
    if (isSqlstate(meta?.code)) return meta.code;
  }
  return undefined;
}

/** Five digits or upper-case letters; of class P only P0 exists (PL/pgSQL), so P1000–P9999 are some library's own codes. */
function isSqlstate(code: unknown): code is string {
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^P[1-9]/.test(code);
}
