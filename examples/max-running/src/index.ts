/**
 * A toy plugin on the claim hooks: at most `max` jobs of a queue running at once, across every
 * worker. (A real one — with per-key limits and fairness — is a package of its own; this shows the
 * shape in a few lines.)
 *
 *   new Docket({ connection, plugins: [maxRunning({ emails: 2 })] });
 */
import { type DocketPlugin, InvalidOptionError, integerOption } from '@docket/core';

export function maxRunning(limits: Readonly<Record<string, number>>): DocketPlugin {
  for (const [queue, max] of Object.entries(limits)) integerOption('maxRunning(limits)', queue, max, 1, { min: 1 });
  if (Object.keys(limits).length === 0) throw new InvalidOptionError('maxRunning(limits): name at least one queue, e.g. { emails: 2 }.');
  return {
    name: 'example-max-running',
    apply(app) {
      // Only the capped queues' claims open a transaction; every other queue keeps the plain claim.
      const wants = (queue: string) => queue in limits;
      app.hooks.beforeClaim.tapPromise({ name: 'example-max-running', wants }, async (claim) => {
        // Claimers of this queue take turns until their claim commits, so two workers cannot both
        // see "one slot left" and both take it.
        await claim.sql`SELECT pg_advisory_xact_lock(hashtext(${`max-running:${claim.queue}`}))`;
        const [{ running }] = await claim.sql.unsafe<[{ running: number }]>(
          `SELECT count(*)::int AS running FROM ${app.schema}.jobs WHERE state = 'running' AND queue = $1`,
          [claim.queue],
        );
        claim.limitTo(limits[claim.queue] - running);
        // Nothing more to do: when a capped job settles on any worker, the core wakes the runners
        // whose claim this cut short (the queue is "shaped"), so freed slots do not wait for a poll.
      });
    },
  };
}
