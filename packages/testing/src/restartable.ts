/**
 * A PostgreSQL server a test may take down and start again. The test server itself when it is
 * the machine's PostgreSQL service, the suite runs as root, `pg_ctlcluster` (Debian's
 * postgresql-common) manages that service, and `DOCKET_TEST_RESTART_SERVICE=1` allows it: the
 * service is shared by everything on the machine (other checkouts' test runs, other programs), so
 * only a run that owns the machine, such as CI, may restart it. Otherwise a private embedded
 * server of this process (`startPrivateServer`), and `why` says why the service was not used.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { getTestServer, type RestartableServer, startPrivateServer } from './server.js';

export const RESTART_SERVICE_ENV = 'DOCKET_TEST_RESTART_SERVICE';

const run = promisify(execFile);
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export interface RestartableChoice {
  server: RestartableServer;
  /** Which server it is, and why. */
  why: string;
}

export async function restartableServer(): Promise<RestartableChoice> {
  const test = await getTestServer();
  if (test.kind === 'env') {
    const service = await serviceControl(test.adminUrl);
    if (typeof service !== 'string') {
      return {
        server: { ...test, down: service.down, up: service.up },
        why: `the PostgreSQL service (cluster ${service.cluster}), restarted with pg_ctlcluster`,
      };
    }
    const server = await startPrivateServer();
    return { server, why: `a private embedded PostgreSQL, not the service: ${service}` };
  }
  const server = await startPrivateServer();
  return { server, why: `a private embedded PostgreSQL (the run's ${test.kind} server is shared by the other test files' databases)` };
}

interface ServiceControl {
  cluster: string;
  down(): Promise<void>;
  up(): Promise<void>;
}

/** How to restart the service behind `adminUrl`, or why it cannot be. */
async function serviceControl(adminUrl: string): Promise<ServiceControl | string> {
  if (process.env[RESTART_SERVICE_ENV] !== '1') {
    return `the service is shared with everything else on this machine; ${RESTART_SERVICE_ENV}=1 lets the suite restart it (CI sets it)`;
  }
  if (process.getuid?.() !== 0) return 'restarting the service needs root';
  const url = new URL(adminUrl);
  if (!LOOPBACK.has(url.hostname)) return `the server ${url.hostname} is not on this machine`;
  const port = url.port || '5432';
  let listing: string;
  try {
    listing = (await run('pg_lsclusters', ['--no-header'])).stdout;
  } catch {
    return 'pg_lsclusters (postgresql-common) is not installed';
  }
  // "15 main 5432 online postgres /var/lib/postgresql/15/main /var/log/…"
  const line = listing
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((fields) => fields[2] === port && fields[3]?.startsWith('online'));
  if (!line) return `no online cluster listens on port ${port} (pg_lsclusters)`;
  const [version, name] = line as [string, string];
  return {
    cluster: `${version}/${name}`,
    down: async () => void (await run('pg_ctlcluster', [version, name, 'stop', '-m', 'fast'])),
    up: async () => void (await run('pg_ctlcluster', [version, name, 'start'])),
  };
}
