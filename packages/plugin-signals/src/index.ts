/**
 * @docket/plugin-signals — typed lifecycle signals (Huey's signals), in this process and across
 * processes, through one API:
 *
 *   const events = signals();
 *   const app = new Docket({ connection, plugins: [events] });
 *   const off = await events.on('enqueued', (s) => console.log('pushed', s.job.id, 'somewhere'));
 *   await events.on('failed', (s) => alert(s.job, s.error));
 *
 * `enqueued` travels by NOTIFY inside the push transaction, so every listening process hears of
 * every committed push (including pushes in a caller's transaction, once it commits) and of no
 * rolled-back one. The other signals come from the worker hooks of this process (`jobStart`,
 * `afterSettle`) and from other plugins' events (`app.emit`), and can be broadcast too. Listeners
 * run off the worker's path, after the fact; a throwing or never-settling listener costs the
 * worker nothing. Delivery across processes is at-most-once, like NOTIFY itself (README.md).
 */
import {
  type AnyDocketEvent,
  type DocketPlugin,
  InvalidOptionError,
  integerOption,
  pluginBinding,
  type RunningJob,
  rejectUnknownKeys,
  type SettledJob,
  WaitTimeoutError,
} from '@docket/core';
import { SignalsNotListeningError } from './errors.js';
import type {
  AnySignal,
  CancelledSignal,
  EnqueuedSignal,
  FailedSignal,
  ListenableType,
  Listener,
  PluginSignal,
  PluginSignalType,
  RecoveredSignal,
  RetryingSignal,
  SignalJob,
  SignalMap,
  SignalType,
  SucceededSignal,
} from './types.js';
import { decode, encodeEnqueued, encodeSignals } from './wire.js';

export { SIGNALS_ERRORS, SignalsNotListeningError } from './errors.js';
export * from './types.js';
export { MAX_PAYLOAD_BYTES } from './wire.js';

export const PLUGIN_NAME = 'signals';
const VERSION = '0.1.0';
/** The `app.notify`/`app.listen` topic signals travel on. */
export const SIGNALS_TOPIC = 'signals';
/** The typed signals; any other type is a plugin event. */
export const LIFECYCLE_SIGNALS = Object.freeze([
  'enqueued',
  'executing',
  'succeeded',
  'failed',
  'retrying',
  'cancelled',
  'recovered',
] as const) satisfies readonly SignalType[];

export interface SignalsOptions {
  /**
   * Send `enqueued` for every committed push (one NOTIFY per ~240 jobs, inside the push
   * transaction). Default true. `false` saves that statement and leaves pushes as they were.
   */
  enqueued?: boolean;
  /**
   * Signal types this process sends to every listening process (itself included) instead of only
   * to its own listeners, e.g. `['succeeded', 'failed']` on workers so a web process hears of
   * outcomes. `enqueued` is always sent to all. Plugin event types may be listed too. Default [].
   */
  broadcast?: readonly ListenableType[];
  /** Called when a listener throws or rejects. Default: `app.logger.error`. */
  onListenerError?: (error: unknown, signal: AnySignal) => void;
}

const OPTION_KEYS = ['enqueued', 'broadcast', 'onListenerError'] as const;

export interface NextOptions<S> {
  /** Only a signal for which this returns true. */
  filter?: (signal: S) => boolean;
  /** Reject with a WaitTimeoutError after this long. Default: wait forever. */
  timeoutMs?: number;
}

export interface SignalsPlugin extends DocketPlugin {
  /**
   * Calls `listener` for every signal of `type` ('*' for all) — those of this process and those
   * other processes broadcast. Resolves once listening (the LISTEN is in place), with a function
   * that removes the listener.
   */
  on<T extends SignalType>(type: T, listener: Listener<SignalMap[T]>): Promise<() => void>;
  on(type: '*', listener: Listener<AnySignal>): Promise<() => void>;
  /** A plugin event, by a type its plugin declared in `DocketEventMap` (a misspelt type does not compile). */
  on<T extends PluginSignalType>(type: T, listener: Listener<PluginSignal<T>>): Promise<() => void>;
  /** Resolves with the next signal of `type` that passes `filter` (for scripts and tests). */
  next<T extends SignalType>(type: T, options?: NextOptions<SignalMap[T]>): Promise<SignalMap[T]>;
  next<T extends PluginSignalType>(type: T, options?: NextOptions<PluginSignal<T>>): Promise<PluginSignal<T>>;
}

export function signals(options: SignalsOptions = {}): SignalsPlugin {
  const where = `${PLUGIN_NAME}(options)`;
  rejectUnknownKeys(where, options, OPTION_KEYS);
  if (options.enqueued !== undefined && typeof options.enqueued !== 'boolean') {
    throw new InvalidOptionError(`${where}: \`enqueued\` must be true or false.`, { details: { where, option: 'enqueued' } });
  }
  if (
    options.broadcast !== undefined &&
    (!Array.isArray(options.broadcast) || options.broadcast.some((t) => typeof t !== 'string' || t.length === 0))
  ) {
    throw new InvalidOptionError(`${where}: \`broadcast\` must be an array of signal types, e.g. ['succeeded', 'failed'].`, {
      details: { where, option: 'broadcast' },
    });
  }
  if (options.onListenerError !== undefined && typeof options.onListenerError !== 'function') {
    throw new InvalidOptionError(`${where}: \`onListenerError\` must be a function (error, signal) => void.`, {
      details: { where, option: 'onListenerError' },
    });
  }
  const sendEnqueued = options.enqueued ?? true;
  const broadcast = new Set(options.broadcast ?? []);
  broadcast.add('enqueued');

  const binding = pluginBinding(PLUGIN_NAME, 'signals');
  const listeners = new Map<string, Set<Listener<AnySignal>>>();
  let listening: Promise<void> | null = null;
  let listenError: unknown = null;

  // Local delivery: queued, then handed to listeners from a macrotask of its own, so nothing a
  // listener does (throw, block on a promise) reaches the hook that produced the signal.
  let inbox: AnySignal[] = [];
  let outbox: AnySignal[] = [];

  const hasListeners = (type: string) => (listeners.get(type)?.size ?? 0) > 0 || (listeners.get('*')?.size ?? 0) > 0;
  /** Whether producing `type` here does anything: someone local listens, or it is broadcast. */
  const wanted = (type: string) => broadcast.has(type) || hasListeners(type);

  function reportListenerError(error: unknown, signal: AnySignal): void {
    try {
      if (options.onListenerError) options.onListenerError(error, signal);
      else binding.current?.logger.error(`${PLUGIN_NAME}: a listener for '${signal.type}' failed`, { error });
    } catch {
      // an error handler that throws has nobody left to tell
    }
  }

  function flushInbox(): void {
    const batch = inbox;
    inbox = [];
    for (const signal of batch) {
      for (const key of [signal.type, '*']) {
        const set = listeners.get(key);
        if (!set) continue;
        for (const listener of [...set]) {
          try {
            const result = listener(signal);
            if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
              (result as Promise<unknown>).then(undefined, (error) => reportListenerError(error, signal));
            }
          } catch (error) {
            reportListenerError(error, signal);
          }
        }
      }
    }
  }

  function deliver(signal: AnySignal): void {
    if (!hasListeners(signal.type)) return;
    if (inbox.push(signal) === 1) setImmediate(flushInbox);
  }

  /** The last broadcast sent: the next one goes once it has committed. */
  let sending: Promise<void> = Promise.resolve();

  function flushOutbox(): void {
    const batch = outbox;
    outbox = [];
    const app = binding.current;
    if (!app) return;
    const { payloads, tooBig } = encodeSignals(batch, topicBytes);
    for (const signal of tooBig) app.logger.warn(`${PLUGIN_NAME}: a '${signal.type}' signal is larger than a NOTIFY payload; not broadcast`);
    for (const payload of payloads) {
      // One after another: notifications sent on two connections of the pool could commit, and so
      // arrive, in the other order (a job's `executing` before the `retrying` that came first).
      sending = sending
        .then(() => app.notify(SIGNALS_TOPIC, payload))
        .catch((error) => app.logger.warn(`${PLUGIN_NAME}: broadcasting signals failed (they are lost)`, { error }));
    }
  }

  function produce(signal: AnySignal): void {
    if (broadcast.has(signal.type)) {
      if (outbox.push(signal) === 1) setImmediate(flushOutbox);
    } else {
      deliver(signal);
    }
  }

  function onPayload(payload: string): void {
    let received: AnySignal[];
    try {
      received = decode(payload);
    } catch (error) {
      binding.current?.logger.warn(`${PLUGIN_NAME}: ignored a malformed signals notification`, { error });
      return;
    }
    for (const signal of received) deliver(signal);
  }

  async function ensureListening(type: string): Promise<void> {
    listening ??= binding
      .app('on')
      .listen(SIGNALS_TOPIC, onPayload)
      .then(
        () => undefined,
        (error) => void (listenError = error),
      );
    await listening;
    // Without LISTEN only this process's own, non-broadcast signals can arrive.
    if (listenError && broadcast.has(type)) {
      throw new SignalsNotListeningError(
        `${PLUGIN_NAME}: '${type}' signals arrive through LISTEN/NOTIFY, but this app was created with \`listen: false\`. ` +
          'Create the app with `listen: true` (or `listen: { connection }`), or listen only to signals this process produces and does not broadcast.',
        { cause: listenError, details: { type } },
      );
    }
  }

  async function on(type: string, listener: Listener<AnySignal>): Promise<() => void> {
    if (typeof type !== 'string' || type.length === 0)
      throw new InvalidOptionError(`${PLUGIN_NAME}.on: the signal type must be a non-empty string, e.g. 'succeeded' or '*'.`);
    if (typeof listener !== 'function') throw new InvalidOptionError(`${PLUGIN_NAME}.on('${type}'): the listener must be a function.`);
    binding.app('on');
    // Registered at once, so signals produced while the LISTEN is being set up are not missed.
    let set = listeners.get(type);
    if (!set) {
      set = new Set();
      listeners.set(type, set);
    }
    const registered = set;
    registered.add(listener);
    const off = () => void registered.delete(listener);
    try {
      await ensureListening(type);
    } catch (error) {
      off();
      throw error;
    }
    return off;
  }

  async function next(type: string, nextOptions: NextOptions<AnySignal> = {}): Promise<AnySignal> {
    rejectUnknownKeys(`${PLUGIN_NAME}.next(type, options)`, nextOptions, ['filter', 'timeoutMs']);
    const timeoutMs =
      nextOptions.timeoutMs === undefined
        ? undefined
        : integerOption(`${PLUGIN_NAME}.next(type, options)`, 'timeoutMs', nextOptions.timeoutMs, 0, { min: 0 });
    let resolveNext!: (signal: AnySignal) => void;
    const arrived = new Promise<AnySignal>((resolve) => (resolveNext = resolve));
    const off = await on(type, (signal: AnySignal) => {
      if (!nextOptions.filter || nextOptions.filter(signal)) resolveNext(signal);
    }); // the listener is in place from this call on, before the await returns
    let timer: NodeJS.Timeout | undefined;
    try {
      if (timeoutMs === undefined) return await arrived;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new WaitTimeoutError(`No '${type}' signal arrived within ${timeoutMs} ms.`, { details: { type } })),
          timeoutMs,
        );
      });
      return await Promise.race([arrived, timedOut]);
    } finally {
      clearTimeout(timer);
      off();
    }
  }

  let topicBytes = 0;

  return {
    name: PLUGIN_NAME,
    version: VERSION,
    on: on as SignalsPlugin['on'],
    next: next as SignalsPlugin['next'],
    apply(target) {
      binding.bind(target);
      topicBytes = Buffer.byteLength(`x:${SIGNALS_TOPIC}:`);

      if (sendEnqueued) {
        // In the push transaction (the caller's, too): NOTIFY is delivered on commit, never on rollback.
        target.hooks.afterPush.tapPromise(PLUGIN_NAME, async (jobs, ctx) => {
          const at = new Date();
          const enqueued: EnqueuedSignal[] = jobs.map((j) => ({
            type: 'enqueued',
            at,
            job: { id: j.id, name: j.name, queue: j.queue },
            priority: j.priority,
            scheduledAt: j.scheduledAt,
          }));
          await Promise.all(encodeEnqueued(enqueued, topicBytes).map((payload) => target.notify(SIGNALS_TOPIC, payload, ctx.sql)));
        });
      }

      target.hooks.jobStart.tap({ name: PLUGIN_NAME, wants: () => wanted('executing') }, (ctx) => {
        if (wanted('executing')) produce({ type: 'executing', at: new Date(), job: summary(ctx.job), workerId: ctx.workerId });
      });

      target.hooks.afterSettle.tap(PLUGIN_NAME, (settled) => {
        for (const s of settled) {
          // Asked before the signal is built: a batch nobody listens to costs a lookup per job.
          const type = SIGNAL_OF_OUTCOME[s.outcome.state];
          if (type === null || !wanted(type)) continue;
          const signal = fromSettled(s);
          if (signal) produce(signal);
        }
      });

      target.hooks.event.tap(PLUGIN_NAME, (event) => {
        for (const signal of fromEvent(event)) if (wanted(signal.type)) produce(signal);
      });
    },
  };
}

/**
 * Narrows a signal (e.g. in a '*' listener) to a typed one: `if (isSignal(s, 'failed')) s.error`.
 * (A plugin event never carries a typed signal's name: it would be delivered as `<source>.<type>`.)
 */
export function isSignal<T extends SignalType>(signal: AnySignal, type: T): signal is SignalMap[T] {
  return signal.type === type;
}

function summary(job: RunningJob): SignalJob {
  return { id: job.id, name: job.name, queue: job.queue, attempt: job.attempt };
}

/** The signal each outcome becomes (`waiting`: none yet; its final outcome is signalled when it is released). */
const SIGNAL_OF_OUTCOME: Record<SettledJob['outcome']['state'], SignalType | null> = {
  succeeded: 'succeeded',
  failed: 'failed',
  retry: 'retrying',
  cancelled: 'cancelled',
  waiting: null,
};

function fromSettled({ job, outcome, finishedAt }: SettledJob): SucceededSignal | FailedSignal | RetryingSignal | CancelledSignal | null {
  const base = { at: finishedAt, job: summary(job) };
  switch (outcome.state) {
    case 'succeeded':
      return { type: 'succeeded', ...base };
    case 'failed':
      return { type: 'failed', ...base, error: outcome.error };
    case 'retry':
      return { type: 'retrying', ...base, error: outcome.error, retryAt: outcome.retryAt };
    case 'cancelled':
      return { type: 'cancelled', ...base, error: outcome.error };
    default:
      return null; // 'waiting': not finished; its final outcome is signalled when it is released
  }
}

const LIFECYCLE = new Set<string>(LIFECYCLE_SIGNALS);

/** A plugin event as signals: under its own type (namespaced when it would shadow a typed one), plus `recovered`. */
function fromEvent(event: AnyDocketEvent): AnySignal[] {
  const type = LIFECYCLE.has(event.type) ? `${event.source}.${event.type}` : event.type;
  const out: AnySignal[] = [{ type, at: event.at, source: event.source, payload: event.payload } satisfies PluginSignal];
  if (event.type === 'recovered' || event.type.endsWith('.recovered')) {
    const listed = (event.payload as { jobs?: unknown } | null)?.jobs;
    const jobs = Array.isArray(listed)
      ? listed
          .filter((j): j is Record<string, unknown> => j !== null && typeof j === 'object' && typeof (j as { id?: unknown }).id === 'string')
          .map((j) => ({ id: String(j.id), name: String(j.name ?? ''), queue: String(j.queue ?? ''), attempt: Number(j.attempt ?? 0) }))
      : [];
    out.push({ type: 'recovered', at: event.at, event: event.type, source: event.source, jobs, payload: event.payload } satisfies RecoveredSignal);
  }
  return out;
}
