/**
 * Job activity as the database announces it: what a dashboard, a metrics exporter or a CLI `watch`
 * needs to refresh a view when jobs move, without polling. It is the notifications the core sends
 * anyway (workers wake on them), read from the app's one LISTEN connection, decoded into events.
 */
import type { Notifier } from './notifier.js';

/**
 * One notification, decoded. Sent on commit by the statement that did the work, so a listener that
 * reads the database after an event sees it. Claims (pending → running) send none: a view that
 * shows running jobs also refreshes on a timer.
 */
export type JobActivity =
  /** Runnable jobs arrived in these queues: pushed, retried, given back, or the queue was resumed. */
  | { readonly kind: 'pushed'; readonly queues: readonly string[] }
  /** Jobs were pushed to these queues to run later. */
  | { readonly kind: 'scheduled'; readonly queues: readonly string[] }
  /** These jobs finished (succeeded, failed or cancelled). */
  | { readonly kind: 'settled'; readonly ids: readonly string[] }
  /** Cancelling this running job was requested. */
  | { readonly kind: 'cancelRequested'; readonly id: string }
  /** These queues were paused. */
  | { readonly kind: 'paused'; readonly queues: readonly string[] }
  /** The LISTEN connection came back after a drop: notifications sent meanwhile are lost, re-read what you show. */
  | { readonly kind: 'reconnected' };

/** Subscribes `fn` to every kind of job activity on `notifier`; resolves once listening, with a function that stops. */
export async function subscribeActivity(notifier: Notifier, fn: (activity: JobActivity) => void): Promise<() => void> {
  const list = (body: string) => body.split(',').filter((v) => v !== '');
  const offs = [
    notifier.on('p', (body) => fn({ kind: 'pushed', queues: list(body) })),
    // `t:` items are `queue@ms`; the time is the workers' business.
    notifier.on('t', (body) => fn({ kind: 'scheduled', queues: [...new Set(list(body).map((item) => item.slice(0, item.lastIndexOf('@'))))] })),
    notifier.on('s', (body) => fn({ kind: 'settled', ids: list(body) })),
    notifier.on('c', (body) => fn({ kind: 'cancelRequested', id: body })),
    notifier.on('q', (body) => fn({ kind: 'paused', queues: list(body) })),
    notifier.onReconnect(() => fn({ kind: 'reconnected' })),
  ];
  const off = () => {
    for (const o of offs) o();
  };
  try {
    await Promise.all([notifier.start(), notifier.startSettled()]);
  } catch (error) {
    off();
    throw error;
  }
  return off;
}
