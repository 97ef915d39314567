import type postgres from 'postgres';
import type { Logger } from './logger.js';

/**
 * One LISTEN connection per app, shared by everything that waits: workers (new jobs, cancel
 * requests), waitForJob (settled jobs) and plugins (their own topics). Payloads are short
 * prefixed strings so that one NOTIFY per statement can carry a whole batch.
 *
 * `s:` goes on its own channel (`settledChannel`), listened to only once something waits for a
 * job: every completion batch sends one, with hundreds of ids, and a worker that never waits
 * should not receive every other worker's.
 *   p:<queue,...>   runnable jobs were pushed (or returned) to these queues
 *   t:<queue@ms,...> jobs were pushed to these queues to run later; ms = the earliest run time
 *   s:<id,...>      these jobs settled (finished)
 *   c:<id>          cancellation of a running job was requested
 *   q:<queue>       a queue was paused
 *   x:<topic>:<payload>  a plugin's message (app.notify)
 *   g:<id,...>      these running jobs stored a new progress report (on `progressChannel`, listened
 *                   to only once something follows progress: a busy worker sends several a second)
 */
export type NotificationKind = 'p' | 't' | 's' | 'c' | 'q' | 'x' | 'g';

/** The channel of `s:` notifications, beside the app's main channel. */
export function settledChannel(channel: string): string {
  return `${channel}:settled`;
}

/** The channel of `g:` notifications (progress stored), beside the app's main channel. */
export function progressChannel(channel: string): string {
  return `${channel}:progress`;
}

export class Notifier {
  private readonly handlers = new Map<NotificationKind, Set<(body: string) => void>>();
  private readonly reconnectHandlers = new Set<() => void>();
  private listening: Promise<void> | null = null;
  private listeningSettled: Promise<void> | null = null;
  private listeningProgress: Promise<void> | null = null;
  private subscriptions: Array<{ unlisten(): Promise<void> }> = [];

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
    this.listening ??= this.listen(this.channel);
    return this.listening;
  }

  /** Also listens for settled jobs (`s:`), once; for waiters. No-op when listening is off. */
  startSettled(): Promise<void> {
    this.listeningSettled ??= this.listen(settledChannel(this.channel));
    return this.listeningSettled;
  }

  /** Also listens for stored progress (`g:`), once; for `app.onProgress`. No-op when listening is off. */
  startProgress(): Promise<void> {
    this.listeningProgress ??= this.listen(progressChannel(this.channel));
    return this.listeningProgress;
  }

  private async listen(channel: string): Promise<void> {
    if (!this.sql) return;
    let connectedOnce = false;
    const subscription = await this.sql.listen(
      channel,
      (payload) => this.dispatch(payload),
      () => {
        // Called on the first LISTEN and after every reconnect: anything sent while the
        // connection was down is lost, so waiters re-check the database.
        if (connectedOnce) for (const fn of this.reconnectHandlers) fn();
        connectedOnce = true;
      },
    );
    this.subscriptions.push(subscription);
  }

  on(kind: NotificationKind, fn: (body: string) => void): () => void {
    let set = this.handlers.get(kind);
    if (!set) this.handlers.set(kind, (set = new Set()));
    const handlers = set;
    handlers.add(fn);
    return () => handlers.delete(fn);
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
    const subscriptions = this.subscriptions;
    this.subscriptions = [];
    this.listening = null;
    this.listeningSettled = null;
    this.listeningProgress = null;
    await Promise.all(subscriptions.map((s) => s.unlisten().catch(() => undefined)));
  }
}
