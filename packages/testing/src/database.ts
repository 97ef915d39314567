/**
 * One fresh database per test (or per file): created on the test server, cloned from the
 * migrated template when the workspace runner prepared one, dropped with drop().
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { getTestServer, type TestServer } from './server.js';

/** Name of the migrated template database; set by scripts/test.ts for the files it runs. */
export const TEMPLATE_ENV = 'DOCKET_TEST_TEMPLATE';
export const DEFAULT_TEMPLATE_NAME = 'docket_template';

export interface TestDatabase {
  /** Connection URL of this database. */
  readonly url: string;
  readonly name: string;
  /** A connection pool to this database; drop() ends it. */
  readonly sql: postgres.Sql;
  /** Ends `sql` and drops the database (terminating any other sessions). Idempotent. */
  drop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface CreateTestDatabaseOptions {
  /**
   * Clone the migrated template when the test runner provided one (default true).
   * Pass false for an empty database, e.g. to test migrations themselves.
   */
  template?: boolean;
  /** The server to create it on. Default: the test server (`getTestServer()`). */
  server?: TestServer;
}

const quiet = { onnotice: () => {} };

/** Runs `fn` on a short-lived single connection to the server's admin database. */
export async function withAdmin<T>(adminUrl: string, fn: (admin: postgres.Sql) => Promise<T>): Promise<T> {
  const admin = postgres(adminUrl, { ...quiet, max: 1, connect_timeout: 10 });
  try {
    return await fn(admin);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** The same server and credentials as `url`, another database. */
export function databaseUrl(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function isTemplateBusy(err: unknown): boolean {
  // 55006 object_in_use: 'source database "x" is being accessed by other users'
  return (err as { code?: string } | null)?.code === '55006';
}

export async function createTestDatabase(opts: CreateTestDatabaseOptions = {}): Promise<TestDatabase> {
  const server = opts.server ?? (await getTestServer());
  const name = `docket_t_${randomBytes(6).toString('hex')}`;
  const template = opts.template === false ? undefined : process.env[TEMPLATE_ENV];

  await withAdmin(server.adminUrl, async (admin) => {
    const useTemplate = template !== undefined && (await admin`select 1 from pg_database where datname = ${template}`).length > 0;
    for (let attempt = 1; ; attempt++) {
      try {
        if (useTemplate) await admin`create database ${admin(name)} template ${admin(template)}`;
        else await admin`create database ${admin(name)}`;
        return;
      } catch (err) {
        if (!isTemplateBusy(err) || attempt >= 5) throw err;
        await sleep(200 * attempt);
      }
    }
  });

  const url = databaseUrl(server.adminUrl, name);
  const sql = postgres(url, quiet);
  let dropping: Promise<void> | undefined;
  const drop = () =>
    (dropping ??= (async () => {
      await sql.end({ timeout: 5 });
      await withAdmin(server.adminUrl, (admin) => admin`drop database if exists ${admin(name)} with (force)`);
    })());
  return { url, name, sql, drop, [Symbol.asyncDispose]: drop };
}
