/**
 * The worker-process side of the harness. Each workers/<system>.ts calls `runWorker` with a
 * function that starts that system's worker around the shared handler and returns its stop.
 *
 * Protocol (IPC with the parent): the child sends `ready` once its modules are loaded, then waits
 * for `start`; it sends `first` (monotonic µs) when the first handler runs and `handled` when the
 * expected number of handlers have succeeded. The parent then confirms completion in the database,
 * so every system is timed from its first job start to "all jobs finished in storage". `stop`
 * makes the child stop its worker gracefully and exit.
 *
 * Modes: drain (no-op), latency (report each start), mixed (jobs of kind `r` throw on their first
 * attempt; starts, lateness of scheduled jobs and retry delays are summarised for the parent).
 */
import { nowUs } from '../clock.js';
import type { Payload } from '../systems/types.js';

export type Mode = 'drain' | 'latency' | 'mixed';

export interface WorkerConfig {
  mode: Mode;
  url: string;
  namespace: string;
  concurrency: number;
  expected: number;
  /** Drain mode: report a `progress` message every this many jobs (0: never). */
  progressEvery: number;
  env: NodeJS.ProcessEnv;
}

export interface MixedSummary {
  /** Kinds of the first attempts in start order (normal and high only), as a string of n/h. */
  order: string;
  lateness: number[];
  retryDelays: number[];
  failures: number;
  successes: number;
}

export type Handler = (payload: Payload) => Promise<void>;
export type StartFn = (config: WorkerConfig, handle: Handler) => Promise<() => Promise<void>>;

function send(message: Record<string, unknown>): void {
  process.send?.(message);
}

export class RetryMe extends Error {
  constructor() {
    super('bench: planned failure on the first attempt');
    this.name = 'RetryMe';
  }
}

export function makeHandler(config: WorkerConfig, onDone: () => void): Handler {
  let successes = 0;
  let first = true;
  const done = () => {
    successes++;
    if (successes === config.expected) onDone();
  };
  const onFirst = () => {
    if (first) {
      first = false;
      send({ type: 'first', t: nowUs() });
    }
  };
  if (config.mode === 'drain') {
    const every = config.progressEvery;
    if (every > 0) {
      return async () => {
        if (first) onFirst();
        done();
        if (successes % every === 0) send({ type: 'progress', n: successes, t: nowUs() });
      };
    }
    return async () => {
      if (first) onFirst();
      done();
    };
  }
  if (config.mode === 'latency') {
    return async (payload) => {
      send({ type: 'start', i: payload.i, t: nowUs() });
      if (first) onFirst();
      done();
    };
  }
  // mixed
  const order: string[] = [];
  const lateness: number[] = [];
  const retryDelays: number[] = [];
  const failedAt = new Map<number, number>();
  const seen = new Set<number>();
  let failures = 0;
  const handler: Handler = async (payload) => {
    if (first) onFirst();
    const now = Date.now();
    const kind = payload.k ?? 'n';
    const firstAttempt = !seen.has(payload.i);
    seen.add(payload.i);
    if (firstAttempt && (kind === 'n' || kind === 'h')) order.push(kind);
    if (firstAttempt && kind === 's' && payload.at !== undefined) lateness.push(now - payload.at);
    if (kind === 'r') {
      if (firstAttempt) {
        failures++;
        failedAt.set(payload.i, now);
        throw new RetryMe();
      }
      const at = failedAt.get(payload.i);
      if (at !== undefined) retryDelays.push(now - at);
    }
    done();
  };
  (handler as Handler & { summary?: () => MixedSummary }).summary = () => ({
    order: order.join(''),
    lateness,
    retryDelays,
    failures,
    successes,
  });
  return handler;
}

export async function runWorker(start: StartFn): Promise<void> {
  const env = process.env;
  const config: WorkerConfig = {
    mode: (env.BENCH_MODE ?? 'drain') as Mode,
    url: env.BENCH_URL ?? '',
    namespace: env.BENCH_NAMESPACE ?? 'bench',
    concurrency: Number(env.BENCH_CONCURRENCY ?? 10),
    expected: Number(env.BENCH_EXPECTED ?? 0),
    progressEvery: Number(env.BENCH_PROGRESS_EVERY ?? 0),
    env,
  };
  let stop: (() => Promise<void>) | undefined;
  let handler: Handler | undefined;
  const onDone = () => {
    const t = nowUs();
    const summary = (handler as (Handler & { summary?: () => MixedSummary }) | undefined)?.summary?.();
    send({ type: 'handled', t, summary });
  };
  handler = makeHandler(config, onDone);
  let exiting = false;
  const finish = async (code: number) => {
    if (exiting) return;
    exiting = true;
    try {
      if (stop) await stop();
    } catch (error) {
      send({ type: 'error', message: `stop failed: ${String((error as Error)?.stack ?? error)}` });
    }
    send({ type: 'stopped' });
    // Give the IPC message a moment, then leave even if a library keeps a handle open.
    setTimeout(() => process.exit(code), 50).unref();
    process.disconnect?.();
  };
  process.on('message', (message: { type: string }) => {
    if (message?.type === 'start') {
      start(config, handler!)
        .then((s) => {
          stop = s;
          send({ type: 'started', t: nowUs() });
        })
        .catch((error) => {
          send({ type: 'error', message: String((error as Error)?.stack ?? error) });
          void finish(1);
        });
    } else if (message?.type === 'stop') {
      void finish(0);
    }
  });
  // The parent going away (crash, ^C) must not leave this process behind.
  process.on('disconnect', () => {
    if (exiting) return;
    exiting = true;
    setTimeout(() => process.exit(0), 2000).unref();
    void (stop ? stop().catch(() => {}) : Promise.resolve()).then(() => process.exit(0));
  });
  process.on('uncaughtException', (error) => {
    send({ type: 'error', message: `uncaught: ${String(error?.stack ?? error)}` });
  });
  process.on('unhandledRejection', (error) => {
    send({ type: 'error', message: `unhandled rejection: ${String((error as Error)?.stack ?? error)}` });
  });
  send({ type: 'ready', t: nowUs() });
}
