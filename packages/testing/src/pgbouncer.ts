/**
 * A real PgBouncer in front of the test server, for tests of what works through a pooler: the
 * `pgbouncer` binary (Debian's package: `apt-get install pgbouncer`) started on a free port with
 * its configuration in a temporary directory, in transaction mode unless asked otherwise. Clients
 * log in with any user and password (`auth_type = any`); PgBouncer logs in to the server as the
 * admin URL's user. `pgBouncerBinary()` says whether the binary is there, so tests can skip with
 * the reason when it is not.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort, waitForPort } from './ports.js';
import { killWatchdog, startWatchdog } from './watchdog.js';

export interface PgBouncerOptions {
  /** A URL of the server PgBouncer pools (its user and password are what PgBouncer logs in with). */
  serverUrl: string;
  /** Default 'transaction'. */
  poolMode?: 'session' | 'transaction' | 'statement';
  /** Server connections per (database, user) pair. Default 10. */
  poolSize?: number;
  /** Startup parameters PgBouncer accepts and ignores (its `ignore_startup_parameters`). Default none. */
  ignoreStartupParameters?: readonly string[];
}

export interface PgBouncer {
  readonly port: number;
  /** `url` (a database on the pooled server) as reached through PgBouncer. */
  url(url: string): string;
  /** The last lines PgBouncer logged, for failure messages. */
  log(): string;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const SEARCHED = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin', '/opt/homebrew/bin'];
const START_TIMEOUT_MS = 15_000;

/** The path of the `pgbouncer` binary (PATH, then the usual sbin directories), or null. */
export function pgBouncerBinary(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SEARCHED];
  for (const dir of dirs) {
    const path = join(dir, 'pgbouncer');
    if (existsSync(path)) return path;
  }
  return null;
}

/** Why PgBouncer tests cannot run here, or null when they can. */
export function pgBouncerMissing(): string | null {
  return pgBouncerBinary() === null
    ? 'the pgbouncer binary is not installed (Debian/Ubuntu: apt-get install pgbouncer; macOS: brew install pgbouncer)'
    : null;
}

/** Starts PgBouncer; resolves once it accepts connections. */
export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncer> {
  const binary = pgBouncerBinary();
  if (binary === null) throw new Error(`startPgBouncer: ${pgBouncerMissing()}`);
  const server = new URL(options.serverUrl);
  const dir = await mkdtemp(join(tmpdir(), 'docket-pgbouncer-'));
  // As root PgBouncer must switch to another user (-u), which must read its configuration.
  await chmod(dir, 0o755);
  const asRoot = process.getuid?.() === 0;
  const port = await freePort();
  const quote = (value: string) => `'${value.replace(/'/g, "''")}'`;
  const login = [
    `host=${server.hostname === 'localhost' ? '127.0.0.1' : server.hostname}`,
    `port=${server.port || '5432'}`,
    `user=${quote(decodeURIComponent(server.username || 'postgres'))}`,
    ...(server.password ? [`password=${quote(decodeURIComponent(server.password))}`] : []),
  ].join(' ');
  const config = [
    '[databases]',
    // The fallback entry: any database name the client asks for, on the pooled server.
    `* = ${login}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = any',
    `pool_mode = ${options.poolMode ?? 'transaction'}`,
    `default_pool_size = ${options.poolSize ?? 10}`,
    'max_client_conn = 500',
    `ignore_startup_parameters = ${(options.ignoreStartupParameters ?? []).join(',')}`,
    // Logs go to stderr (kept for failure messages); no pid file, no daemon.
    'log_connections = 0',
    'log_disconnections = 0',
    '',
  ].join('\n');
  const configPath = join(dir, 'pgbouncer.ini');
  await writeFile(configPath, config, { mode: 0o644 });

  const lines: string[] = [];
  const child: ChildProcess = spawn(binary, [...(asRoot ? ['-u', 'postgres'] : []), configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.on('error', (error) => lines.push(`spawn failed: ${error.message}`));
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    lines.push(...chunk.split('\n').filter(Boolean));
    if (lines.length > 60) lines.splice(0, lines.length - 60);
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const watchdog = child.pid ? startWatchdog(child.pid, dir) : undefined;

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (!gone()) {
        child.kill('SIGTERM'); // immediate shutdown
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      killWatchdog(watchdog);
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    await waitForPort(port, START_TIMEOUT_MS, gone);
  } catch (error) {
    await stop();
    throw new Error(`PgBouncer did not start: ${(error as Error).message}\n--- pgbouncer output ---\n${lines.join('\n')}`);
  }
  process.once('exit', () => {
    if (!gone()) child.kill('SIGKILL');
  });

  return {
    port,
    url(url) {
      const parsed = new URL(url);
      parsed.hostname = '127.0.0.1';
      parsed.port = String(port);
      return parsed.toString();
    },
    log: () => lines.join('\n'),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
