/**
 * The dashboard on a server of its own (what `docket dashboard` runs). It listens on 127.0.0.1 by
 * default and refuses any other address unless authentication is configured: a dashboard retries,
 * cancels and pauses production work.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Docket, integerOption, rejectUnknownKeys } from '@docket/core';
import { createDashboard, type Dashboard, type DashboardOptions } from './dashboard.js';
import { DashboardUnsafeBindError } from './errors.js';
import { isLoopback } from './security.js';

export interface ServeOptions extends DashboardOptions {
  /** Port to listen on; 0 picks a free one. Default 4100. */
  port?: number;
  /** Address to listen on. Default '127.0.0.1'; another address needs `auth`. */
  host?: string;
}

export interface ServedDashboard {
  readonly dashboard: Dashboard;
  readonly server: Server;
  /** Where it answers, e.g. `http://127.0.0.1:4100/`. */
  readonly url: string;
  /** Stops listening, ends open live streams, closes the dashboard (not the app). */
  close(): Promise<void>;
}

export async function serveDashboard(app: Docket, options: ServeOptions = {}): Promise<ServedDashboard> {
  const { port: portOption, host: hostOption, ...dashboardOptions } = options;
  rejectUnknownKeys('serveDashboard(app, options)', options, ['port', 'host', ...Object.keys(dashboardOptions)]);
  const port = integerOption('serveDashboard(app, options)', 'port', portOption, 4100, { min: 0, max: 65_535 });
  const host = hostOption ?? '127.0.0.1';
  const dashboard = createDashboard(app, dashboardOptions);
  if (!isLoopback(host) && !dashboard.authenticated) {
    throw new DashboardUnsafeBindError(
      `The dashboard would listen on ${host} without authentication: anyone who reaches that address could retry, cancel and pause jobs. ` +
        'Configure `auth` ({ token }, { username, password } or { authorize }), or listen on 127.0.0.1 and reach it through a tunnel.',
      { details: { host } },
    );
  }
  const server = createServer((req, res) => dashboard.handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    dashboard,
    server,
    url: `http://${shown}:${address.port}${dashboard.basePath}/`,
    async close() {
      await dashboard.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
