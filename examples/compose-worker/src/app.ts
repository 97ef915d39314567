/**
 * A worker composed from plugins. Each plugin is a value in `plugins`; they know nothing of each
 * other and meet only on the core's hook bus:
 *
 * - `leadership()` elects one worker (a lease in the database) and answers the core's
 *   `resolvePrimary` hook on every maintenance tick;
 * - `cron()` fires schedules from a `periodicTask` that runs only where that answer is "primary",
 *   and keys every fire by (schedule, time), so a time fires once even if two workers think they lead.
 *
 * Add further plugins (pruning, recovery, …) to the same array.
 */
import { Docket, type DocketOptions, defineJob, Worker, type WorkerOptions } from '@docket/core';
import { type CronOptions, cron } from '@docket/plugin-cron';
import { type LeadershipOptions, leadership } from '@docket/plugin-leadership';

/** Runs every second: a liveness signal that shows which worker ran which second. */
export const heartbeat = defineJob({ name: 'heartbeat', queue: 'maintenance' }, async (_: Record<string, never>, ctx) => ({
  worker: ctx.workerId,
  second: (ctx.job.meta.cron as { fireAt?: string } | undefined)?.fireAt ?? null,
}));

/** Runs every morning in Paris. */
export const sendDigest = defineJob({ name: 'send-digest', queue: 'emails', maxAttempts: 5 }, async ({ audience }: { audience: string }) => {
  // A real handler would render and send the digest here.
  return { audience, sent: true };
});

export const jobs = [heartbeat, sendDigest];

export interface ComposeOptions {
  connection: DocketOptions['connection'];
  leadership?: LeadershipOptions;
  cron?: Omit<CronOptions, 'schedules'>;
  logger?: DocketOptions['logger'];
}

export function composeApp(options: ComposeOptions) {
  const election = leadership(options.leadership);
  const schedules = cron({
    ...options.cron,
    // Written (created or updated by name) on every app.migrate().
    schedules: [
      { name: 'heartbeat', cron: '* * * * * *', job: heartbeat, overlap: true },
      { name: 'daily-digest', cron: '0 8 * * *', timezone: 'Europe/Paris', job: sendDigest.withArgs({ audience: 'subscribers' }), missed: 'runOnce' },
    ],
  });
  const app = new Docket({ connection: options.connection, plugins: [election, schedules], logger: options.logger });
  return { app, election, schedules };
}

export function composeWorker(app: Docket, options: Partial<WorkerOptions> = {}): Worker {
  return new Worker(app, {
    jobs,
    queues: { maintenance: { concurrency: 2 }, emails: { concurrency: 10 } },
    handleSignals: true,
    ...options,
  });
}
