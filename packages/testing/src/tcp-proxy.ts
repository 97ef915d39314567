/**
 * A TCP proxy between a process and PostgreSQL, to cut that process off the database with real
 * sockets: point the process at `proxy.url(databaseUrl)`, then
 * - `stall()`: a network partition. Nothing crosses in either direction; bytes sent meanwhile wait
 *   in the sockets' buffers; new connections are accepted but not forwarded (their PostgreSQL
 *   handshake waits, as a SYN to an unreachable host would). `restore()` lets everything through.
 * - `drop()`: a broken network. Every open connection is reset (RST) and new ones are reset as
 *   soon as they arrive, until `restore()`.
 * `accepted` counts connection attempts, so a test can tell a client that backs off from one that
 * reconnects in a tight loop.
 */
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket, connect as tcpConnect } from 'node:net';

export type TcpProxyMode = 'forwarding' | 'stalled' | 'dropping';

export interface TcpProxy {
  /** The port the proxy listens on (127.0.0.1). */
  readonly port: number;
  readonly mode: TcpProxyMode;
  /** Connection attempts accepted since the proxy started (reset ones included). */
  readonly accepted: number;
  /** Connections open now (client side). */
  readonly open: number;
  /** `url` with its host and port replaced by the proxy's. */
  url(url: string): string;
  /** Forward nothing, in either direction, until `restore()`; new connections wait. */
  stall(): void;
  /** Reset every open connection, and every new one, until `restore()`. */
  drop(): void;
  /** Forward again: stalled bytes flow, waiting connections are put through. */
  restore(): void;
  /** Closes the proxy and every connection through it. */
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | null;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: TcpProxyMode = 'forwarding';
  let accepted = 0;
  const pairs = new Set<Pair>();

  const reset = (socket: Socket | null) => {
    if (!socket || socket.destroyed) return;
    socket.resetAndDestroy();
  };
  /**
   * Ends a pair. `graceful`: one side hung up cleanly, so the other gets what was written to it
   * first (a server's FATAL before it closes a refused session) and then its end, as without a
   * proxy; destroying at once dropped those bytes, so a client saw a bare close instead of the
   * refusal (and postgres.js retries a bare close during startup at once, with no backoff).
   */
  const close = (pair: Pair, graceful = false) => {
    if (!pairs.delete(pair)) return;
    if (graceful) {
      pair.client.end();
      pair.upstream?.end();
      setTimeout(() => {
        pair.client.destroy();
        pair.upstream?.destroy();
      }, 1000).unref();
      return;
    }
    pair.client.destroy();
    pair.upstream?.destroy();
  };

  /** Copies `from` to `to`, honouring backpressure, and stops while the proxy stalls. */
  const forward = (from: Socket, to: Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (mode === 'forwarding') from.resume();
    });
    from.on('end', () => to.end());
  };

  /** Opens the upstream connection of a pair and starts forwarding (at accept, or at `restore()`). */
  const putThrough = (pair: Pair) => {
    const upstream = tcpConnect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on('error', () => close(pair));
    upstream.on('close', (hadError) => close(pair, !hadError));
    forward(pair.client, upstream);
    forward(upstream, pair.client);
    pair.client.resume();
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    accepted++;
    if (mode === 'dropping') {
      client.on('error', () => {});
      reset(client);
      return;
    }
    const pair: Pair = { client, upstream: null };
    pairs.add(pair);
    client.on('error', () => close(pair));
    client.on('close', (hadError) => close(pair, !hadError));
    if (mode === 'forwarding') putThrough(pair);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    port,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    url(url) {
      const parsed = new URL(url);
      parsed.hostname = '127.0.0.1';
      parsed.port = String(port);
      return parsed.toString();
    },
    stall() {
      mode = 'stalled';
      for (const pair of pairs) {
        pair.client.pause();
        pair.upstream?.pause();
      }
    },
    drop() {
      mode = 'dropping';
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        reset(pair.client);
        reset(pair.upstream);
      }
    },
    restore() {
      mode = 'forwarding';
      for (const pair of pairs) {
        if (pair.upstream === null) putThrough(pair);
        else {
          pair.client.resume();
          pair.upstream.resume();
        }
      }
    },
    async close() {
      for (const pair of [...pairs]) close(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
