import postgres from 'postgres';
import { pkgVersion, workerEntry } from '../pkg.js';
import { type MixedItem, type Payload, type Session, SkipSystem, type SystemAdapter } from './types.js';

/**
 * Docket (@docket/core from the workspace, loaded from source). One worker process, queue `bench`
 * at concurrency 10 with prefetch 500 (a local buffer the size of graphile-worker's localQueue 500,
 * as the core README recommends for short jobs). Jobs stay in `docket.jobs` when finished (state
 * 'succeeded'). Mixed run: priority 10 for high (higher runs first), maxAttempts 2 and a fixed
 * retry delay of 0 ms for the jobs that fail once, scheduledAt for the scheduled ones.
 */
export const DOCKET_QUEUE = 'bench';
export const DOCKET_WORKER_QUEUE_OPTIONS = { concurrency: 10, prefetch: 500 } as const;
export const DOCKET_JOB_OPTIONS = {
  name: 'noop',
  queue: DOCKET_QUEUE,
  retry: { backoff: 'fixed', delayMs: 0, jitter: false },
} as const;

// The core is being written alongside this harness: import it by a computed name so the bench
// typechecks (and skips Docket with a reason) while its API is still taking shape.
type Core = Record<string, unknown>;
const CORE_MODULE = '@docket/core';

/**
 * The part of the core the bench calls, typed loosely on purpose (the core API is being written
 * while this harness is): a job with its arguments bound, as `defineJob(...).withArgs(...)` returns it.
 */
export interface DocketJob {
  withPriority(priority: number): DocketJob;
  withScheduledAt(at: Date): DocketJob;
  withMaxAttempts(maxAttempts: number): DocketJob;
}
/** What `defineJob` returns, as the bench uses it. */
export interface DocketJobDefinition<A extends object = Payload> {
  withArgs(args: A): DocketJob;
}
/** A `Docket` instance, as the bench uses it. */
export interface DocketApp {
  migrate(): Promise<unknown>;
  push(job: DocketJob): Promise<unknown>;
  pushMany(jobs: DocketJob[]): Promise<unknown>;
  close(): Promise<void>;
}
/** A `Worker` instance, as the bench uses it. */
export interface DocketWorker {
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
}
/** The exports of @docket/core the bench uses. */
export interface DocketCore {
  Docket: new (options: { connection: string }) => DocketApp;
  Worker: new (app: DocketApp, options: { jobs: DocketJobDefinition<never>[]; queues: Record<string, object> }) => DocketWorker;
  defineJob<A extends object = Payload>(options: object, handler: (args: A) => Promise<void>): DocketJobDefinition<A>;
}

export async function loadDocket(): Promise<DocketCore> {
  try {
    const core = (await import(CORE_MODULE)) as Core;
    for (const name of ['Docket', 'Worker', 'defineJob'] as const) {
      if (typeof core[name] !== 'function') {
        throw new Error(`@docket/core does not export ${name} yet`);
      }
    }
    return core as unknown as DocketCore;
  } catch (error) {
    const message = String((error as Error)?.message ?? error).split('\n')[0];
    throw new SkipSystem(`@docket/core did not load: ${message}`);
  }
}

/**
 * Jobs of the bench queue not finished yet: pending or running (no bench job waits: no plugin
 * holds outcomes). One count per state so each is served by its partial index: an IN list over
 * the states cannot use them and scanned the whole history (76 ms with 1,000,000 finished jobs, on
 * every check at the end of a drain).
 */
export async function docketRemaining(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select ((select count(*) from docket.jobs where queue = ${DOCKET_QUEUE} and state = 'pending')
          + (select count(*) from docket.jobs where queue = ${DOCKET_QUEUE} and state = 'running'))::int as n`;
  return row!.n;
}

export async function docketAdapter(): Promise<SystemAdapter> {
  const { Docket, defineJob } = await loadDocket();
  return {
    id: 'docket',
    label: 'Docket',
    version: pkgVersion('@docket/core'),
    usesPostgres: true,
    history: true,
    settings: {
      worker: `queues: { ${DOCKET_QUEUE}: ${JSON.stringify(DOCKET_WORKER_QUEUE_OPTIONS)} }`,
      job: JSON.stringify(DOCKET_JOB_OPTIONS),
      enqueue: 'app.pushMany (bulk), app.push (single)',
    },
    async open({ url }) {
      const app = new Docket({ connection: url });
      await app.migrate();
      const noop = defineJob(DOCKET_JOB_OPTIONS, async () => {});
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      const session: Session = {
        async bulk(payloads: Payload[]) {
          await app.pushMany(payloads.map((p) => noop.withArgs(p)));
        },
        async single(payload: Payload) {
          await app.push(noop.withArgs(payload));
        },
        async mixed(items: MixedItem[]) {
          await app.pushMany(
            items.map(({ payload, high, runAt, maxAttempts }) => {
              let job = noop.withArgs(payload);
              if (high) job = job.withPriority(10);
              if (runAt) job = job.withScheduledAt(runAt);
              if (maxAttempts && maxAttempts > 1) job = job.withMaxAttempts(maxAttempts);
              return job;
            }),
          );
        },
        remaining() {
          return docketRemaining(sql);
        },
        async seedFinished(n, log) {
          for (let done = 0; done < n; done += 20_000) {
            const size = Math.min(20_000, n - done);
            await app.pushMany(Array.from({ length: size }, (_, j) => noop.withArgs({ i: done + j })));
          }
          log(`  Docket: ${n} jobs pushed, marking them succeeded…`);
          const columns = new Set(
            (
              await sql<{ c: string }[]>`
                select column_name as c from information_schema.columns
                where table_schema = 'docket' and table_name = 'jobs'`
            ).map((r) => r.c),
          );
          const sets = [`state = 'succeeded'`];
          for (const c of ['started_at', 'finished_at']) if (columns.has(c)) sets.push(`${c} = now()`);
          if (columns.has('attempt')) sets.push('attempt = 1');
          await sql.unsafe(`update docket.jobs set ${sets.join(', ')} where queue = '${DOCKET_QUEUE}'`);
          await sql`vacuum analyze docket.jobs`;
          return `${n} succeeded jobs`;
        },
        async close() {
          await app.close();
          await sql.end({ timeout: 5 });
        },
      };
      return session;
    },
    worker({ url, namespace }) {
      return { entry: workerEntry('docket'), env: { BENCH_URL: url, BENCH_NAMESPACE: namespace } };
    },
  };
}
