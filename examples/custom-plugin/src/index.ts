/**
 * jobDurations: an example Docket plugin, written only against `@docket/core`'s public entry.
 *
 * It times every attempt a worker runs, from `jobStart` (right before the handler) to
 * `afterSettle` (the outcome is committed), logs one line per attempt, warns when an attempt is
 * slower than `slowMs`, and keeps per-job-name statistics (count, min, mean, p50, p95, max).
 *
 *   const durations = jobDurations({ slowMs: 2000 });
 *   const app = new Docket({ connection, plugins: [durations] });
 *   // ... later
 *   durations.stats()['send-email']?.p95Ms
 */
import {
  type Docket,
  type DocketPlugin,
  HOOK_STAGE,
  InvalidOptionError,
  integerOption,
  type JobRef,
  type Outcome,
  rejectUnknownKeys,
  type SettledJob,
} from '@docket/core';

export const PLUGIN_NAME = 'job-durations';

/** One timed attempt. */
export interface DurationRecord {
  readonly jobId: string;
  readonly name: string;
  readonly queue: string;
  readonly attempt: number;
  /** How the attempt ended: `succeeded`, `failed`, `retry` (failed, will run again), `cancelled`, `waiting`. */
  readonly state: Outcome['state'];
  /** From `jobStart` to `afterSettle`, in milliseconds (monotonic clock of this process). */
  readonly durationMs: number;
  /** True when `durationMs` ≥ `slowMs`. */
  readonly slow: boolean;
  readonly workerId: string | null;
  readonly finishedAt: Date;
}

/** Statistics of the recorded attempts of one job name (the latest `maxSamples` of them). */
export interface DurationStats {
  /** Attempts recorded since the start (or `reset()`), including those no longer sampled. */
  readonly count: number;
  readonly minMs: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
}

export type DurationLog = (line: string, record: DurationRecord) => void;

export interface JobDurationsOptions {
  /**
   * Where each attempt's line goes. Default: the app's logger (`info`, or `warn` for slow
   * attempts). Pass `false` to log nothing and only keep statistics.
   */
  log?: DurationLog | false;
  /** Attempts that take at least this long are flagged slow (and logged as warnings). Default 10000. */
  slowMs?: number;
  /** Durations kept per job name for the percentiles (the most recent ones). Default 1000. */
  maxSamples?: number;
}

export interface JobDurationsPlugin extends DocketPlugin {
  /** Statistics per job name, for the attempts recorded so far. */
  stats(): Record<string, DurationStats>;
  /** Every recorded attempt still held (up to `maxSamples` per job name), oldest first. */
  records(): DurationRecord[];
  /**
   * Resolves with the record of the job's attempt once it is recorded (the latest attempt when
   * `attempt` is not given and one is already held). `afterSettle` runs after the outcome commits,
   * so right after `app.waitForJob` resolves the record may still be on its way: wait on this
   * instead of sleeping.
   */
  whenRecorded(ref: JobRef | { id: string } | string, options?: { attempt?: number; timeoutMs?: number }): Promise<DurationRecord>;
  /** Forgets every record and statistic. */
  reset(): void;
}

const OPTION_KEYS = ['log', 'slowMs', 'maxSamples'] as const;

interface Started {
  readonly at: number;
  readonly workerId: string | null;
}

interface Series {
  count: number;
  samples: DurationRecord[];
}

interface Waiter {
  readonly id: string;
  readonly attempt: number | undefined;
  readonly resolve: (record: DurationRecord) => void;
}

export function jobDurations(options: JobDurationsOptions = {}): JobDurationsPlugin {
  const where = `${PLUGIN_NAME}(options)`;
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const slowMs = integerOption(where, 'slowMs', options.slowMs, 10_000, { min: 0 });
  const maxSamples = integerOption(where, 'maxSamples', options.maxSamples, 1000, { min: 1, max: 1_000_000 });
  if (options.log !== undefined && options.log !== false && typeof options.log !== 'function') {
    throw new InvalidOptionError(`${where}: \`log\` must be a function (line, record) => void or false.`, {
      details: { where, option: 'log' },
    });
  }

  /** Attempts that started and have not settled yet, by `${jobId}:${attempt}`. */
  const started = new Map<string, Started>();
  const series = new Map<string, Series>();
  let waiters: Waiter[] = [];

  const key = (id: string, attempt: number) => `${id}:${attempt}`;

  function latest(id: string, attempt: number | undefined): DurationRecord | undefined {
    for (const s of series.values()) {
      for (let i = s.samples.length - 1; i >= 0; i--) {
        const r = s.samples[i];
        if (r.jobId === id && (attempt === undefined || r.attempt === attempt)) return r;
      }
    }
    return undefined;
  }

  function record(app: Docket, settled: SettledJob): void {
    const { job, outcome, finishedAt } = settled;
    const k = key(job.id, job.attempt);
    const start = started.get(k);
    // Settled without starting here (cancelled while pending, or run by another process): not timed.
    if (start === undefined) return;
    started.delete(k);
    const durationMs = performance.now() - start.at;
    const entry: DurationRecord = Object.freeze({
      jobId: job.id,
      name: job.name,
      queue: job.queue,
      attempt: job.attempt,
      state: outcome.state,
      durationMs,
      slow: durationMs >= slowMs,
      workerId: start.workerId,
      finishedAt,
    });
    let s = series.get(job.name);
    if (!s) series.set(job.name, (s = { count: 0, samples: [] }));
    s.count++;
    s.samples.push(entry);
    if (s.samples.length > maxSamples) s.samples.shift();

    const line = `${entry.slow ? 'slow job' : 'job'} ${job.name} #${job.id} (${job.queue}) attempt ${job.attempt} ${outcome.state} in ${formatMs(durationMs)}${entry.slow ? ` (slowMs ${slowMs})` : ''}`;
    if (options.log === undefined) {
      if (entry.slow) app.logger.warn(line, { plugin: PLUGIN_NAME });
      else app.logger.info(line, { plugin: PLUGIN_NAME });
    } else if (options.log !== false) {
      options.log(line, entry);
    }

    if (waiters.length > 0) {
      const still: Waiter[] = [];
      for (const w of waiters) {
        if (w.id === entry.jobId && (w.attempt === undefined || w.attempt === entry.attempt)) w.resolve(entry);
        else still.push(w);
      }
      waiters = still;
    }
  }

  return {
    name: PLUGIN_NAME,
    version: '0.0.0',

    apply(app: Docket) {
      // Late, so the clock starts after other plugins' jobStart work (closest to the handler).
      app.hooks.jobStart.tap({ name: PLUGIN_NAME, stage: HOOK_STAGE.LATE }, (ctx) => {
        started.set(key(ctx.job.id, ctx.job.attempt), { at: performance.now(), workerId: ctx.workerId });
      });
      app.hooks.afterSettle.tap(PLUGIN_NAME, (settledJobs) => {
        for (const settled of settledJobs) record(app, settled);
      });
      // Jobs a stopping worker gave back to the queue never settle here: forget their start.
      app.hooks.workerStopping.tap(PLUGIN_NAME, (worker) => {
        for (const [k, s] of started) if (s.workerId === worker.id) started.delete(k);
      });
    },

    stats() {
      const out: Record<string, DurationStats> = {};
      for (const [name, s] of series) {
        if (s.samples.length === 0) continue;
        const sorted = s.samples.map((r) => r.durationMs).sort((a, b) => a - b);
        out[name] = {
          count: s.count,
          minMs: sorted[0],
          meanMs: sorted.reduce((sum, d) => sum + d, 0) / sorted.length,
          p50Ms: percentile(sorted, 50),
          p95Ms: percentile(sorted, 95),
          maxMs: sorted[sorted.length - 1],
        };
      }
      return out;
    },

    records() {
      return [...series.values()].flatMap((s) => s.samples).sort((a, b) => a.finishedAt.getTime() - b.finishedAt.getTime());
    },

    whenRecorded(ref, { attempt, timeoutMs = 30_000 } = {}) {
      const id = typeof ref === 'string' ? ref : ref.id;
      const found = latest(id, attempt);
      if (found) return Promise.resolve(found);
      return new Promise<DurationRecord>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== waiter);
          reject(
            new Error(
              `${PLUGIN_NAME}: no duration recorded for job ${id}${attempt === undefined ? '' : ` attempt ${attempt}`} within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        const waiter: Waiter = {
          id,
          attempt,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        };
        waiters.push(waiter);
      });
    },

    reset() {
      series.clear();
    },
  };
}

/** Nearest-rank percentile of an ascending array (not empty). */
export function percentile(sorted: readonly number[], p: number): number {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}
