/**
 * Live updates: one subscription to the app's job activity (its LISTEN connection) and to the
 * panels' notify topics per dashboard, shared by every open tab through server-sent events. Bursts
 * are debounced into at most one `change` event per `debounceMs`; with `refreshMs`, a `change` also
 * goes out on that interval (claims send no notification, and heartbeats age), only while some tab
 * is open. Tabs then refetch what they show, through the shared reads.
 */
import type { ServerResponse } from 'node:http';
import type { Docket } from '@docket/core';

export class LiveHub {
  readonly #clients = new Set<ServerResponse>();
  #stops: Array<() => void> = [];
  #starting: Promise<void> | null = null;
  #debounce: NodeJS.Timeout | null = null;
  #refresh: NodeJS.Timeout | null = null;
  #keepAlive: NodeJS.Timeout | null = null;
  #seq = 0;
  #closed = false;

  constructor(
    private readonly app: Docket,
    private readonly options: {
      debounceMs: number;
      refreshMs: number;
      topics: readonly string[];
      /**
       * Runs just before each `change` event goes out. The dashboard forgets its shared reads there:
       * a tab refetches on the event, and an answer read before the change (the page's own load a
       * moment earlier) would show it the old state, with no further event to correct it.
       */
      beforeChange?: () => void;
    },
  ) {}

  /** Events broadcast so far (tests wait on it through the stream itself; this is for stats). */
  get sequence(): number {
    return this.#seq;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Answers an EventSource request and keeps it open until the tab goes or the hub closes. */
  async attach(res: ServerResponse): Promise<void> {
    // Subscribed before the stream opens: a tab that sees the stream open (its "live" indicator)
    // hears every change from then on.
    await this.#start();
    if (res.destroyed || this.#closed) {
      res.end();
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 3000\n: connected\n\n`);
    this.#clients.add(res);
    res.on('close', () => {
      this.#clients.delete(res);
      if (this.#clients.size === 0) this.#idle();
    });
  }

  #start(): Promise<void> {
    this.#starting ??= (async () => {
      try {
        this.#stops.push(await this.app.listenActivity(() => this.#changed()));
        for (const topic of this.options.topics) this.#stops.push(await this.app.listen(topic, () => this.#changed()));
      } catch (error) {
        // An app without LISTEN (`listen: false`): the periodic refresh is all there is.
        this.app.logger.warn('dashboard: live updates fall back to the periodic refresh (the app does not listen)', { error });
      }
    })();
    if (!this.#refresh && this.options.refreshMs > 0) {
      this.#refresh = setInterval(() => this.#broadcast(), this.options.refreshMs);
      this.#refresh.unref();
    }
    if (!this.#keepAlive) {
      // A comment now and then keeps proxies from closing a quiet stream.
      this.#keepAlive = setInterval(() => {
        for (const res of this.#clients) res.write(': keep-alive\n\n');
      }, 25_000);
      this.#keepAlive.unref();
    }
    return this.#starting;
  }

  #changed(): void {
    if (this.#debounce || this.#closed) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = null;
      this.#broadcast();
    }, this.options.debounceMs);
    this.#debounce.unref();
  }

  #broadcast(): void {
    if (this.#clients.size === 0) return;
    this.options.beforeChange?.();
    const message = `event: change\ndata: ${++this.#seq}\n\n`;
    for (const res of this.#clients) res.write(message);
  }

  /** No tab is open: stop the timers (the subscription stays, it costs nothing while quiet). */
  #idle(): void {
    if (this.#refresh) clearInterval(this.#refresh);
    if (this.#keepAlive) clearInterval(this.#keepAlive);
    this.#refresh = this.#keepAlive = null;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#idle();
    await this.#starting?.catch(() => undefined);
    for (const stop of this.#stops) stop();
    this.#stops = [];
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }
}
