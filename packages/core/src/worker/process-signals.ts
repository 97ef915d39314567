import os from 'node:os';
import type { Logger } from '../logger.js';

/**
 * SIGINT/SIGTERM for workers that handle signals (`handleSignals`, the default): one listener per
 * signal for the whole process, however many workers run in it, so that the count of signals is
 * the user's count of Ctrl-C presses:
 *
 * 1. the first signal stops every such worker gracefully (running jobs may finish);
 * 2. the second hurries them: running jobs are aborted and go back to the queue;
 * 3. the third exits at once, with the code the signal would have given (128 + its number).
 *
 * When every stop the signal started has ended, the listeners are removed. Then, if no other
 * listener of that signal remains in the process (your own handler, a test runner's), nothing
 * else answers the signal and the process exits: with code 0 after a clean stop (1 when a stop
 * failed; a code you set in `process.exitCode` wins), either by itself — code awaiting
 * `worker.stopped` has `EXIT_GRACE_MS` to close the app and flush — or, when something still holds
 * it open (the app's pool, a server), by `process.exit` after that grace. A remaining listener owns
 * the process: Docket then leaves it running.
 */

/** How long code that runs after a signal-started stop has before the process is made to exit. */
export const EXIT_GRACE_MS = 1000;

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
export type StopSignal = (typeof SIGNALS)[number];

/** What the coordinator asks of a worker. */
export interface SignalParticipant {
  readonly logger: Logger;
  /** The nth signal arrived. For the first, returns the worker's stop (resolves when it has stopped). */
  signalled(count: number, signal: StopSignal): Promise<void> | void;
}

const participants = new Set<SignalParticipant>();
let count = 0;
let firstSignal: StopSignal | null = null;
let stops: Array<Promise<void> | void> = [];
let listening = false;

const onSignal = (signal: StopSignal) => {
  count++;
  if (count === 1) {
    firstSignal = signal;
    stops = [...participants].map((p) => p.signalled(1, signal));
    void finishAfterStops();
  } else {
    for (const p of participants) void p.signalled(count, signal);
    if (count >= 3) process.exit(128 + (os.constants.signals[signal] ?? 0));
  }
};

/** The signal whose stop is under way: `onSignal` records it whenever it makes `count` positive. */
function signalUnderWay(): StopSignal {
  if (firstSignal === null) throw new Error('Docket: a signal-started stop is under way but its signal was not recorded.');
  return firstSignal;
}

function listen(): void {
  if (listening) return;
  listening = true;
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function unlisten(): void {
  if (!listening) return;
  listening = false;
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

async function finishAfterStops(): Promise<void> {
  let results: Array<PromiseSettledResult<void>> = [];
  // A worker that started meanwhile adds its stop to `stops`: wait until no stop was added.
  while (results.length < stops.length) results = await Promise.allSettled(stops);
  const logger = [...participants][0]?.logger;
  const failed = results.filter((r) => r.status === 'rejected');
  for (const r of failed) logger?.error('a worker failed to stop cleanly', { error: (r as PromiseRejectedResult).reason });
  participants.clear();
  unlisten();
  const signal = signalUnderWay();
  count = 0;
  firstSignal = null;
  stops = [];
  if (process.listenerCount(signal) > 0) {
    logger?.info(`stopped on ${signal}; not exiting: another ${signal} listener is installed in this process and decides`);
    return;
  }
  if (process.exitCode === undefined) process.exitCode = failed.length > 0 ? 1 : 0;
  logger?.info(`stopped on ${signal}; exiting with code ${process.exitCode}`);
  // Unref'd: a process that ends by itself (its app closed) is not held open by this timer.
  setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
}

/**
 * Adds a started worker; returns the function that removes it (its stop did not come from a
 * signal). A worker that starts while a signal's stop is under way is stopped at once.
 */
export function registerForSignals(participant: SignalParticipant): () => void {
  participants.add(participant);
  listen();
  if (count > 0) stops.push(participant.signalled(1, signalUnderWay()));
  return () => {
    if (count > 0) return; // the signal's stop is under way: finishAfterStops clears the set
    participants.delete(participant);
    if (participants.size === 0) unlisten();
  };
}
