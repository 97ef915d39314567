/**
 * @docket/plugin-recovery — finds jobs left `running` by a worker that stopped heart-beating
 * (crash, `kill -9`, lost network, host gone) or that run far past any limit, and makes them
 * runnable again; fails a job that keeps killing its worker (a poison job) after `maxRecoveries`.
 *
 *   const app = new Docket({ connection, plugins: [recovery({ deadAfterMs: 30_000 })] });
 *
 * Built only on the public API of @docket/core: a `periodicTask` (its own loop on each worker), its own
 * SQL (src/sql.ts), `app.settleJobs` for the jobs it ends, `app.wake` and `app.emit`.
 */
import {
  booleanOption,
  type Docket,
  type DocketPlugin,
  integerOption,
  type JobError,
  type PeriodicEvents,
  periodicBinding,
  rejectUnknownKeys,
} from '@docket/core';
import { PoisonJobError } from './errors.js';
import {
  deadWorkersDelete,
  type LossReason,
  type LostJobRow,
  type LostJobUpdate,
  lostJobsLock,
  lostJobsUpdate,
  MIGRATIONS,
  recoveryCountsGet,
} from './sql.js';

export { PoisonJobError, RECOVERY_ERRORS } from './errors.js';

export const PLUGIN_NAME = 'recovery';
export const PLUGIN_VERSION = '0.1.0';

export interface RecoveryOptions {
  /** How often a worker sweeps for lost jobs. Default 5000 ms. */
  intervalMs?: number;
  /**
   * Floor of the dead-worker margin: a worker is dead when its last heartbeat is older than
   * max(3 × its own heartbeat interval, deadAfterMs). Default 30000 ms.
   */
  deadAfterMs?: number;
  /** A job lost this many times is recovered; lost once more, it ends `failed` (poison job). Default 3. */
  maxRecoveries?: number;
  /** A job running longer than its `limits.timeoutMs` plus this margin is recovered, even on a live worker. Default 60000 ms. */
  stuckMarginMs?: number;
  /** Any job running longer than this is recovered, even on a live worker. Default: off. */
  maxRuntimeMs?: number;
  /** Most jobs recovered per transaction (a sweep loops until none is left). Default 500. */
  batchSize?: number;
  /** Sweep only on the primary worker when an election plugin answers. Default true. Correct either way. */
  primaryOnly?: boolean;
}

const OPTION_KEYS = ['intervalMs', 'deadAfterMs', 'maxRecoveries', 'stuckMarginMs', 'maxRuntimeMs', 'batchSize', 'primaryOnly'] as const;

/** One job a sweep acted on. */
export interface RecoveredJob {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  /** The attempt that was lost. */
  readonly attempt: number;
  /** The worker that ran the lost attempt. */
  readonly workerId: string | null;
  readonly reason: LossReason;
  /** Recoveries of this job so far, this one included. */
  readonly recoveries: number;
  /** What the job is now: back in the queue, failed as poison, or cancelled (its cancellation was pending). */
  readonly state: 'pending' | 'failed' | 'cancelled';
}

export interface RecoveryResult {
  /** Jobs put back in the queue. */
  readonly recovered: readonly RecoveredJob[];
  /** Jobs failed because they were lost more than `maxRecoveries` times. */
  readonly failed: readonly RecoveredJob[];
  /** Running jobs whose cancellation was requested: ended `cancelled` instead of running again. */
  readonly cancelled: readonly RecoveredJob[];
  /** Heartbeat rows of dead workers that were removed. */
  readonly removedWorkers: readonly string[];
}

export type { LossReason };

/** Payloads of the events the plugin emits through `app.emit` (the `event` hook), with its periodic task's. */
export interface RecoveryEvents extends PeriodicEvents<'recovery', RecoveryResult> {
  'recovery.recovered': { workerId: string | null; jobs: readonly RecoveredJob[] };
  'recovery.poisoned': { workerId: string | null; jobs: readonly RecoveredJob[] };
  'recovery.cancelled': { workerId: string | null; jobs: readonly RecoveredJob[] };
}

declare module '@docket/core' {
  interface DocketEventMap extends RecoveryEvents {}
}

export interface RecoveryPlugin extends DocketPlugin {
  /** The validated settings. */
  readonly settings: Readonly<Required<Omit<RecoveryOptions, 'maxRuntimeMs'>> & { maxRuntimeMs: number | null }>;
  /** Resolves with the result of the next sweep that finishes on this process. */
  nextRun(options?: { timeoutMs?: number }): Promise<RecoveryResult>;
  /** Sweeps once now, from this process (whatever `primaryOnly` says). */
  runNow(): Promise<RecoveryResult>;
  /** How many times each job was recovered (jobs that do not exist are left out). */
  recoveries(ids: readonly string[]): Promise<Record<string, number>>;
}

export function recovery(options: RecoveryOptions = {}): RecoveryPlugin {
  const where = `${PLUGIN_NAME}(options)`;
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const settings = Object.freeze({
    intervalMs: integerOption(where, 'intervalMs', options.intervalMs, 5000, { min: 10, max: 86_400_000 }),
    deadAfterMs: integerOption(where, 'deadAfterMs', options.deadAfterMs, 30_000, { min: 100, max: 86_400_000 }),
    maxRecoveries: integerOption(where, 'maxRecoveries', options.maxRecoveries, 3, { min: 0, max: 1000 }),
    stuckMarginMs: integerOption(where, 'stuckMarginMs', options.stuckMarginMs, 60_000, { min: 0, max: 86_400_000 }),
    maxRuntimeMs:
      options.maxRuntimeMs === undefined ? null : integerOption(where, 'maxRuntimeMs', options.maxRuntimeMs, 0, { min: 1000, max: 30 * 86_400_000 }),
    batchSize: integerOption(where, 'batchSize', options.batchSize, 500, { min: 1, max: 10_000 }),
    primaryOnly: booleanOption(where, 'primaryOnly', options.primaryOnly, true),
  });

  const reach: Reachability = { since: null, lost: false };
  const binding = periodicBinding<RecoveryResult>('recovery', {
    name: PLUGIN_NAME,
    intervalMs: settings.intervalMs,
    primaryOnly: settings.primaryOnly,
    run: ({ app, worker, signal }) => sweep(app, settings, reach, worker.id, signal),
  });

  return {
    name: PLUGIN_NAME,
    version: PLUGIN_VERSION,
    migrations: MIGRATIONS,
    settings,

    apply(target: Docket) {
      binding.apply(target);
    },

    nextRun(opts) {
      return binding.bound().task.nextRun(opts);
    },

    runNow() {
      return sweep(binding.bound().app, settings, reach, null, undefined);
    },

    async recoveries(ids) {
      const { app } = binding.bound();
      const rows = await recoveryCountsGet(app.sql, app.schema, ids);
      return Object.fromEntries(rows.map((r) => [r.id, r.recovery_count]));
    },
  };
}

type Settings = RecoveryPlugin['settings'];

/**
 * Whether this process could reach the database the whole time, as its sweeps saw it. A worker is
 * dead when its heartbeat is older than the margin; but when the sweeper itself could not reach the
 * database (a server restart, the connection slots full, the network to it down), neither could the
 * others, most likely: their heartbeats are old because of the outage, not because they died, and
 * the first sweep after it would take the jobs of every worker that had not reconnected yet. So a
 * sweep that fails marks the reach lost; the next one notes the database's time (`since`), and
 * silence before it does not count: every worker gets a full margin to heartbeat again. A worker
 * that died meanwhile is found one margin later. Any failure counts (a sweep's only way to fail
 * that is not about reaching the database is a bug, and waiting a margin is then harmless).
 */
interface Reachability {
  since: Date | null;
  lost: boolean;
}

/**
 * One sweep: batches of lost jobs, each batch in one transaction (lock → decide → fenced write;
 * jobs that end are settled through `app.settleJobs` so `settle`/`afterSettle` taps see them),
 * then wakes the queues that got jobs back, emits events and removes dead workers' rows.
 */
async function sweep(
  app: Docket,
  settings: Settings,
  reach: Reachability,
  sweeper: string | null,
  signal: AbortSignal | undefined,
): Promise<RecoveryResult> {
  try {
    if (reach.lost) {
      const [row] = await app.sql<Array<{ now: Date }>>`SELECT now() AS now`;
      reach.since = row?.now ?? null;
      reach.lost = false;
    }
    return await sweepOnce(app, settings, reach.since, sweeper, signal);
  } catch (error) {
    reach.lost = true;
    throw error;
  }
}

async function sweepOnce(
  app: Docket,
  settings: Settings,
  reachableSince: Date | null,
  sweeper: string | null,
  signal: AbortSignal | undefined,
): Promise<RecoveryResult> {
  const recovered: RecoveredJob[] = [];
  const failed: RecoveredJob[] = [];
  const cancelled: RecoveredJob[] = [];
  for (;;) {
    if (signal?.aborted) break;
    let found = 0;
    const batch: RecoveredJob[] = [];
    await app.settleJobs(async (tx) => {
      const lost = await lostJobsLock(tx, app.schema, {
        deadAfterMs: settings.deadAfterMs,
        stuckMarginMs: settings.stuckMarginMs,
        maxRuntimeMs: settings.maxRuntimeMs,
        limit: settings.batchSize,
        reachableSince,
      });
      found = lost.length;
      if (lost.length === 0) return [];
      const decisions = lost.map((row) => decide(row, settings));
      const written = await lostJobsUpdate(
        tx,
        app.schema,
        decisions.map((d) => d.update),
      );
      const byId = new Map(decisions.map((d) => [d.update.id, d]));
      for (const w of written) {
        const d = byId.get(w.id);
        if (!d) throw new Error(`recovery: updating lost jobs returned job ${w.id}, which it was not given.`);
        batch.push({ ...d.job, recoveries: w.recovery_count });
      }
      return batch.filter((j) => j.state !== 'pending').map((j) => j.id);
    });
    for (const job of batch) (job.state === 'pending' ? recovered : job.state === 'failed' ? failed : cancelled).push(job);
    const back = batch.filter((j) => j.state === 'pending');
    if (back.length > 0) await app.wake([...new Set(back.map((j) => j.queue))]);
    if (back.length > 0) app.emit(PLUGIN_NAME, 'recovery.recovered', { workerId: sweeper, jobs: back });
    const poisoned = batch.filter((j) => j.state === 'failed');
    if (poisoned.length > 0) {
      app.logger.warn(`${PLUGIN_NAME}: failed ${poisoned.length} poison job(s) lost more than ${settings.maxRecoveries} times`, {
        jobs: poisoned.map((j) => j.id),
      });
      app.emit(PLUGIN_NAME, 'recovery.poisoned', { workerId: sweeper, jobs: poisoned });
    }
    const ended = batch.filter((j) => j.state === 'cancelled');
    if (ended.length > 0) app.emit(PLUGIN_NAME, 'recovery.cancelled', { workerId: sweeper, jobs: ended });
    if (found < settings.batchSize) break;
  }
  const removedWorkers = (await deadWorkersDelete(app.sql, app.schema, settings.deadAfterMs, reachableSince)).map((r) => r.id);
  return { recovered, failed, cancelled, removedWorkers };
}

/** What happens to one lost job, and the error entry that says why. */
function decide(row: LostJobRow, settings: Settings): { update: LostJobUpdate; job: Omit<RecoveredJob, 'recoveries'> } {
  const count = row.recovery_count + 1;
  const state: RecoveredJob['state'] = row.cancel_requested ? 'cancelled' : row.recovery_count >= settings.maxRecoveries ? 'failed' : 'pending';
  const why = describeLoss(row, settings);
  let error: JobError;
  if (state === 'cancelled') {
    error = {
      attempt: row.attempt,
      name: 'JobCancelledError',
      code: 'DOCKET_JOB_CANCELLED',
      message: `Cancelled while running; ${why}, so the cancellation is completed by ${PLUGIN_NAME} and the job does not run again.`,
      at: new Date().toISOString(),
    };
  } else if (state === 'failed') {
    error = {
      attempt: row.attempt,
      name: PoisonJobError.name,
      code: 'DOCKET_RECOVERY_POISON_JOB' satisfies PoisonJobError['code'],
      message:
        `Poison job: ${why}. It was already recovered ${row.recovery_count} time(s) (maxRecoveries ${settings.maxRecoveries}), ` +
        `so ${PLUGIN_NAME} fails it instead of running it again. A job that keeps losing its worker usually crashes or blocks the process; ` +
        'fix the handler (or raise maxRecoveries) and push it again.',
      at: new Date().toISOString(),
    };
  } else {
    error = {
      attempt: row.attempt,
      name: row.reason === 'timeout' || row.reason === 'max-runtime' ? 'JobStuckError' : 'WorkerLostError',
      code: lossCode(row.reason),
      message: `Recovered: ${why}; the job is back in the queue (recovery ${count} of at most ${settings.maxRecoveries}).`,
      at: new Date().toISOString(),
    };
  }
  return {
    update: { id: row.id, attempt: row.attempt, workerId: row.worker_id, state, error: JSON.stringify(error) },
    job: { id: row.id, queue: row.queue, name: row.name, attempt: row.attempt, workerId: row.worker_id, reason: row.reason, state },
  };
}

function lossCode(reason: LossReason): string {
  return reason === 'timeout' || reason === 'max-runtime' ? 'DOCKET_LIMIT_EXCEEDED' : 'DOCKET_WORKER_SHUTDOWN';
}

function describeLoss(row: LostJobRow, settings: Settings): string {
  const attempt = `attempt ${row.attempt}`;
  const worker = row.worker_id ?? '(none)';
  const s = (x: number) => `${x.toFixed(1)} s`;
  switch (row.reason) {
    case 'worker-missing':
      return `worker ${worker} that ran ${attempt} has no heartbeat row (it stopped without giving the job back, or was removed as dead)`;
    case 'worker-dead':
      return `worker ${worker} that ran ${attempt} stopped heart-beating (last heartbeat ${s(row.heartbeat_age_s ?? 0)} ago; dead after max(3 × its heartbeat interval, ${settings.deadAfterMs} ms))`;
    case 'timeout':
      return `${attempt} ran for ${s(row.runtime_s)}, over its time limit of ${row.timeout_ms} ms plus the ${settings.stuckMarginMs} ms margin, on worker ${worker}`;
    case 'max-runtime':
      return `${attempt} ran for ${s(row.runtime_s)}, over maxRuntimeMs ${settings.maxRuntimeMs} ms, on worker ${worker}`;
  }
}
