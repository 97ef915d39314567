/**
 * How signals travel between processes: JSON payloads of `app.notify(SIGNALS_TOPIC, …)`, each under
 * PostgreSQL's NOTIFY limit (8000 bytes), many signals per payload. Dates travel as epoch
 * milliseconds. `enqueued` signals — the high-volume kind, one per pushed job — use a compact
 * column form so that a big `pushMany` needs few notifications.
 */
import type { AnySignal, EnqueuedSignal } from './types.js';

/** Largest payload we send, in bytes (NOTIFY refuses 8000 and more; the core adds a short prefix). */
export const MAX_PAYLOAD_BYTES = 7900;
const DATE_KEYS = new Set(['at', 'retryAt', 'scheduledAt']);

type Tuple = [id: string, name: number, queue: number, priority: number, scheduledAt: number];

/** Packs enqueued signals (of one push) into as few payloads as fit. */
export function encodeEnqueued(signals: readonly EnqueuedSignal[], topicBytes: number): string[] {
  const limit = MAX_PAYLOAD_BYTES - topicBytes;
  const out: string[] = [];
  let names: string[] = [];
  let queues: string[] = [];
  let tuples: Tuple[] = [];
  let at = 0;
  let size = 0;
  const flush = () => {
    if (tuples.length > 0) out.push(JSON.stringify({ e: 1, at, n: names, q: queues, j: tuples }));
    names = [];
    queues = [];
    tuples = [];
    size = 60; // the envelope: {"e":1,"at":…,"n":[],"q":[],"j":[]}
  };
  flush();
  for (const s of signals) {
    // Exact bytes this signal adds (a separator included), so payloads fill up to the limit.
    const cost = (n: number, q: number) =>
      (n < 0 ? bytes(JSON.stringify(s.job.name)) + 1 : 0) +
      (q < 0 ? bytes(JSON.stringify(s.job.queue)) + 1 : 0) +
      bytes(JSON.stringify([s.job.id, Math.max(n, names.length), Math.max(q, queues.length), s.priority, s.scheduledAt.getTime()])) +
      1;
    if (size + cost(names.indexOf(s.job.name), queues.indexOf(s.job.queue)) > limit) flush();
    let n = names.indexOf(s.job.name);
    let q = queues.indexOf(s.job.queue);
    size += cost(n, q);
    if (n < 0) n = names.push(s.job.name) - 1;
    if (q < 0) q = queues.push(s.job.queue) - 1;
    at = s.at.getTime();
    tuples.push([s.job.id, n, q, s.priority, s.scheduledAt.getTime()]);
  }
  flush();
  return out;
}

/**
 * Packs any signals into payloads; a signal too big for one payload even alone is returned in
 * `tooBig` (after dropping error stacks, which are the usual culprit).
 */
export function encodeSignals(signals: readonly AnySignal[], topicBytes: number): { payloads: string[]; tooBig: AnySignal[] } {
  const limit = MAX_PAYLOAD_BYTES - topicBytes;
  const payloads: string[] = [];
  const tooBig: AnySignal[] = [];
  let batch: string[] = [];
  let size = 8;
  for (const signal of signals) {
    let text = JSON.stringify(flatDates(signal));
    if (bytes(text) + 8 > limit && 'error' in signal && signal.error) {
      const { stack: _stack, ...error } = signal.error;
      text = JSON.stringify(flatDates({ ...signal, error }));
    }
    const n = bytes(text) + 1;
    if (n + 8 > limit) {
      tooBig.push(signal);
      continue;
    }
    if (size + n > limit) {
      payloads.push(`{"s":[${batch.join(',')}]}`);
      batch = [];
      size = 8;
    }
    batch.push(text);
    size += n;
  }
  if (batch.length > 0) payloads.push(`{"s":[${batch.join(',')}]}`);
  return { payloads, tooBig };
}

/** Unpacks a payload into signals (throws on a payload that is not ours). */
export function decode(payload: string): AnySignal[] {
  const body = JSON.parse(payload) as { e?: 1; at?: Date; n?: string[]; q?: string[]; j?: Tuple[]; s?: AnySignal[] };
  if (body.e === 1) {
    const { n: names, q: queues, j: jobs } = body;
    if (!names || !queues || !jobs) throw new Error('not a signals payload');
    const at = new Date(body.at as unknown as number);
    return jobs.map(([id, n, q, priority, scheduledAt]) => ({
      type: 'enqueued',
      at,
      job: { id, name: names[n], queue: queues[q] },
      priority,
      scheduledAt: new Date(scheduledAt),
    }));
  }
  if (Array.isArray(body.s)) return body.s.map(reviveDates);
  throw new Error('not a signals payload');
}

/** The signal with its own Date fields (not those nested in a plugin's payload) as epoch ms. */
function flatDates(signal: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...signal };
  for (const key of DATE_KEYS) if (out[key] instanceof Date) out[key] = (out[key] as Date).getTime();
  return out;
}

function reviveDates(signal: AnySignal): AnySignal {
  const out = signal as unknown as Record<string, unknown>;
  for (const key of DATE_KEYS) if (typeof out[key] === 'number') out[key] = new Date(out[key] as number);
  return signal;
}

function bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
