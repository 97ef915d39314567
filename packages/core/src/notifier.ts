import type postgres from 'postgres';
import type { Logger } from './logger.js';

/**
 * One LISTEN connection per app, shared by everything that waits: workers (new jobs, cancel
 * requests), waitForJob (settled jobs) and plugins (their own topics). Payloads are short
 * prefixed strings so that one NOTIFY per statement can carry a whole batch.
 *   p:<queue,...>   runnable jobs were pushed (or returned) to these queues
 *   t:<queue@ms,...> jobs were pushed to these queues to run later; ms = the earliest run time
 *   s:<id,...>      these jobs settled (finished)
 *   c:<id>          cancellation of a running job was requested
 *   q:<queue>       a queue was paused
 *   x:<topic>:<payload>  a plugin's message (app.notify)
 */
export type NotificationKind = 'p' | 't' | 's' | 'c' | 'q' | 'x';

export class Notifier {
  private readonly handlers = new Map<NotificationKind, Set<(body: string) => void>>();
  private readonly reconnectHandlers = new Set<() => void>();
  private listening: Promise<void> | null = null;
  private subscription: { unlisten(): Promise<void> } | null = null;
  private connectedOnce = false;

  constructor(
    private readonly sql: postgres.Sql | null,
    readonly channel: string,
    private readonly logger: Logger,
  ) {}

  get enabled(): boolean {
    return this.sql !== null;
  }

  /** Starts listening (once); resolves when the LISTEN is in place. No-op when listening is off. */
  start(): Promise<void> {
    if (!this.sql) return Promise.resolve();
    this.listening ??= this.sql
      .listen(
        this.channel,
        (payload) => this.dispatch(payload),
        () => {
          // Called on the first LISTEN and after every reconnect: anything sent while the
          // connection was down is lost, so waiters re-check the database.
          if (this.connectedOnce) for (const fn of this.reconnectHandlers) fn();
          this.connectedOnce = true;
        },
      )
      .then((subscription) => {
        this.subscription = subscription;
      });
    return this.listening;
  }

  on(kind: NotificationKind, fn: (body: string) => void): () => void {
    let set = this.handlers.get(kind);
    if (!set) this.handlers.set(kind, (set = new Set()));
    set.add(fn);
    return () => set!.delete(fn);
  }

  onReconnect(fn: () => void): () => void {
    this.reconnectHandlers.add(fn);
    return () => this.reconnectHandlers.delete(fn);
  }

  private dispatch(payload: string): void {
    const kind = payload[0] as NotificationKind;
    const body = payload.slice(2);
    const set = this.handlers.get(kind);
    if (!set) return;
    for (const fn of set) {
      try {
        fn(body);
      } catch (error) {
        this.logger.error('notification handler failed', { error });
      }
    }
  }

  async stop(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = null;
    this.listening = null;
    if (subscription) await subscription.unlisten().catch(() => undefined);
  }
}
