/**
 * Serving the text format: a request handler for any Node HTTP stack (mount it as a route), and a
 * standalone server around it. The server binds to loopback unless given a bearer token, and then
 * refuses every request without it: the metrics name queues and jobs, which are nobody else's
 * business.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidOptionError, integerOption, rejectUnknownKeys } from '@docket/core';
import { MetricsPublicBindError } from './errors.js';

/** Renders the exposition text and its content type (the registry's `metrics()` and `contentType`). */
export interface Exposition {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** A request handler: `(req, res)`, as Node's http, Express and Connect call it. */
export type MetricsHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function metricsHandler(exposition: Exposition, onError: (error: unknown) => void): MetricsHandler {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    exposition.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': exposition.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        onError(error);
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('collecting metrics failed; see the application log\n');
      },
    );
  };
}

export interface ServeOptions {
  /** TCP port; 0 picks a free one (read it from `server.port`). Default 9464. */
  port?: number;
  /** Address to bind. Default '127.0.0.1'; any other than loopback needs `token`. */
  host?: string;
  /** Path the metrics are served at. Default '/metrics'. */
  path?: string;
  /** When set, every request must carry `Authorization: Bearer <token>` (Prometheus: `authorization.credentials`). */
  token?: string;
}

export interface MetricsServer {
  /** Where to scrape, e.g. `http://127.0.0.1:9464/metrics`. */
  readonly url: string;
  readonly port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

const SERVE_KEYS = ['port', 'host', 'path', 'token'] as const;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export async function serveMetrics(handler: MetricsHandler, options: ServeOptions = {}): Promise<MetricsServer> {
  const where = 'metrics serve(options)';
  rejectUnknownKeys(where, options, SERVE_KEYS);
  const port = integerOption(where, 'port', options.port, 9464, { min: 0, max: 65_535 });
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/metrics';
  if (typeof host !== 'string' || host.length === 0) throw new InvalidOptionError(`${where}: \`host\` must be an address, got ${shown(host)}.`);
  if (typeof path !== 'string' || !path.startsWith('/')) throw new InvalidOptionError(`${where}: \`path\` must start with '/', got ${shown(path)}.`);
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length < 16)) {
    throw new InvalidOptionError(`${where}: \`token\` must be a string of at least 16 characters (a random secret), got ${shown(options.token)}.`);
  }
  if (!isLoopback(host) && options.token === undefined) {
    throw new MetricsPublicBindError(
      `${where}: refusing to serve metrics on ${host} without a token: anyone who reaches it could read your queues. ` +
        "Keep the default host '127.0.0.1' (and let a local agent scrape), or set `token` and configure the scraper to send it as a bearer token.",
      { details: { host } },
    );
  }
  const expected = options.token === undefined ? null : digest(options.token);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://metrics');
    if (url.pathname !== path) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found; metrics are at ${path}\n`);
      return;
    }
    if (expected && !authorized(req, expected)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer', 'content-type': 'text/plain; charset=utf-8' }).end('unauthorized\n');
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${bound}${path}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

// Both sides hashed, so the comparison takes the same time whatever the length of the guess.
function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function authorized(req: IncomingMessage, expected: Buffer): boolean {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header);
  const given = match?.[1];
  return given !== undefined && timingSafeEqual(digest(given.trim()), expected);
}

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
