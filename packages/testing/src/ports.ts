import { once } from 'node:events';
import { type AddressInfo, createServer, connect as tcpConnect } from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (a server started on it may still lose a race). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`; rejects after `timeoutMs` or when `gone()` says the server exited. */
export async function waitForPort(port: number, timeoutMs: number, gone: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const socket = tcpConnect(port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      return;
    } catch {
      if (gone()) throw new Error(`the server meant for port ${port} exited before it listened`);
      if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      socket.destroy();
    }
  }
}
