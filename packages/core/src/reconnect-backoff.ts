/**
 * How long a pool Docket opens waits before a closed connection's next attempt: by how long the
 * pool has been failing, not by how many times.
 *
 * postgres.js asks its `backoff(retries)` at every close, but counts `retries` only for sockets
 * that closed with an error: a server that accepts the connection and then refuses the session
 * (no connection slot left, SQLSTATE 53300; a login the server rejects) closes it cleanly, so
 * `retries` stays 0 and every connection of the pool retried every 50 ms — about 140 attempts a
 * second from one worker, at a server that is out of slots. Here the delay grows with the time
 * since the pool's first close after its last working session (postgres.js resets its shared
 * `retries` to 0 each time a session is ready, which `observeSessions` hears): 50 ms for a
 * connection that just dropped, so a terminated backend comes back at once, then half the outage
 * so far, at most about a second. Jittered, so a pool's connections do not retry in step.
 */
export interface ReconnectBackoff {
  /** postgres.js' `backoff` option: seconds until the next attempt. */
  readonly delay: (retries: number) => number;
  /** A session was established (see `observeSessions`). */
  readonly connected: () => void;
}

const FIRST_S = 0.05;
const MAX_S = 1;

export function reconnectBackoff(): ReconnectBackoff {
  /** When the pool's connections began failing (ms), or null while the last session worked. */
  let failingSince: number | null = null;
  return {
    delay(retries: number): number {
      const t = performance.now();
      failingSince ??= t;
      const outageS = (t - failingSince) / 1000;
      // Errored sockets (the server is down: connection refused) also count, as before.
      const byRetries = FIRST_S * 2 ** retries;
      return Math.min(Math.max(FIRST_S, outageS / 2, byRetries), MAX_S) * (0.75 + Math.random() * 0.5);
    },
    connected(): void {
      failingSince = null;
    },
  };
}

/**
 * Calls `ready` whenever a connection of `sql` has logged in: postgres.js sets its pool's shared
 * `retries` counter to 0 at that moment (and only increments it otherwise), so the counter is
 * turned into an accessor that reports the reset. A pool without that counter (another driver
 * version) is left alone: its delays then grow from its first close and never reset, so they
 * stay at about a second, which still bounds the attempts.
 */
export function observeSessions(sql: { options?: unknown }, ready: () => void): void {
  const shared = (sql.options as { shared?: { retries?: unknown } } | undefined)?.shared;
  if (!shared || typeof shared.retries !== 'number') return;
  let retries = shared.retries;
  Object.defineProperty(shared, 'retries', {
    configurable: true,
    enumerable: true,
    get: () => retries,
    set: (value: number) => {
      retries = value;
      if (value === 0) ready();
    },
  });
}
