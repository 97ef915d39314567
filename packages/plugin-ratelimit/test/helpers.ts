import { type ChildProcess, fork } from 'node:child_process';
import { Docket, defineJob, type WorkerQueueOptions } from '@docket/core';
import { createTestDatabase, nextMessage, stopChild, type TestDatabase } from '@docket/testing';
import { type RateLimitOptions, type RateLimitPlugin, ratelimit } from '../src/index.js';

/** The job the fixture worker serves in `queue` (same name and queue; the handler lives in the fixture). */
export function tick(queue: string) {
  return defineJob({ name: `tick-${queue}`, queue }, async (_: { key: string | null }) => undefined);
}

/**
 * A migrated database with the plugin's tables and a `starts` table the fixture's handlers write
 * (one row per start, with the database clock), an app with the plugin, and worker processes.
 */
export async function setup(options: RateLimitOptions) {
  const db: TestDatabase = await createTestDatabase();
  const plugin: RateLimitPlugin = ratelimit(options);
  const app = new Docket({ connection: db.url, logger: false, plugins: [plugin] });
  await app.migrate();
  await db.sql`CREATE TABLE starts (job_id bigint NOT NULL, queue text NOT NULL, key text, attempt int NOT NULL, worker text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`;
  const children: ChildProcess[] = [];
  return {
    db,
    app,
    plugin,
    /** Starts a worker process serving `queues`; resolves once it runs (its worker id). */
    async spawn(queues: Record<string, WorkerQueueOptions>): Promise<string> {
      const child = fork(new URL('./fixtures/worker.ts', import.meta.url), {
        env: { ...process.env, TEST_DATABASE_URL: db.url, RATELIMIT: JSON.stringify(options), QUEUES: JSON.stringify(queues) },
        execArgv: process.execArgv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.push(child);
      const { workerId } = await nextMessage<{ type: string; workerId: string }>(child, 'started');
      return workerId;
    },
    /** Stops every worker process (gracefully: buffered jobs go back to pending). */
    async stopWorkers() {
      await Promise.all(children.map((child) => stopChild(child)));
    },
    async close() {
      await Promise.all(children.map((child) => stopChild(child, 5000)));
      await app.close();
      await db.drop();
    },
  };
}

export type Setup = Awaited<ReturnType<typeof setup>>;

/**
 * The most starts of `queue` (and `key`, when given) that fall within any `periodMs` by the jobs'
 * `started_at` (the claim's time): for each start, how many start at it or less than a period
 * after it.
 */
export async function busiestWindow(db: TestDatabase, params: { queue: string; periodMs: number; key?: string }): Promise<number> {
  const [row] = await db.sql`
    SELECT coalesce(max(n), 0)::int AS n FROM (
      SELECT count(*) OVER (ORDER BY started_at RANGE BETWEEN CURRENT ROW AND ${`${params.periodMs * 1000 - 1} microseconds`}::interval FOLLOWING) AS n
      FROM docket.jobs
      WHERE queue = ${params.queue} AND started_at IS NOT NULL AND (${params.key ?? null}::text IS NULL OR ratelimit_key = ${params.key ?? null})
    ) w`;
  return row!.n;
}
