import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { Docket } from '@docket/core';
import { recovery } from '@docket/plugin-recovery';
import { createTestDatabase, nextMessage, stopChild, type TestDatabase } from '@docket/testing';
import { type ConcurrencyOptions, concurrency } from '../src/index.js';

/** A worker process running test/fixtures/worker.ts. */
export interface WorkerProcess {
  readonly child: ChildProcess;
  /** The worker's id, once it has started. */
  readonly started: Promise<string>;
  /** Resolves once `count` handlers have started in this process. */
  running(count: number): Promise<void>;
  /** Resolves once this process has started a handler for job `jobId`; never, if another did. */
  ran(jobId: string): Promise<void>;
  /** SIGKILL (kill -9) and wait for the exit. */
  kill(): Promise<void>;
  /** Graceful stop over IPC. */
  stop(): Promise<void>;
}

export interface RunRow {
  job_id: string;
  attempt: number;
  key: string | null;
  n: number | null;
  worker: string;
  /** Database clock, microseconds since the epoch (exact: timestamptz has microsecond precision). */
  start_us: number;
  end_us: number | null;
}

/**
 * A fresh database migrated with the concurrency plugin (with `rules`) and plugin-recovery, the
 * fixture's `runs` and `gauge` tables, an app that pushes, and worker processes with the same rules.
 */
export async function setup(queue: string, rules: ConcurrencyOptions) {
  const db: TestDatabase = await createTestDatabase();
  const plugin = concurrency(rules);
  const app = new Docket({ connection: db.url, logger: false, plugins: [plugin, recovery()] });
  await app.migrate();
  await db.sql`CREATE TABLE runs (job_id bigint NOT NULL, attempt int NOT NULL, key text, n int, worker text NOT NULL,
    started_at timestamptz NOT NULL, ended_at timestamptz, PRIMARY KEY (job_id, attempt))`;
  await db.sql`CREATE TABLE gauge (queue text PRIMARY KEY, running int NOT NULL DEFAULT 0, peak int NOT NULL DEFAULT 0)`;
  await db.sql`INSERT INTO gauge (queue) VALUES (${queue})`;
  const processes: WorkerProcess[] = [];
  return {
    db,
    app,
    plugin,
    /** Starts a worker process; `env` adds CONCURRENCY, PREFETCH, POLL_MS, RECOVERY. */
    spawn(env: Record<string, string | number> = {}): WorkerProcess {
      const child = fork(new URL('./fixtures/worker.ts', import.meta.url), {
        env: {
          ...process.env,
          TEST_DATABASE_URL: db.url,
          QUEUE: queue,
          RULES: JSON.stringify(rules),
          ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])),
        },
        execArgv: process.execArgv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const exited = once(child, 'exit');
      const started = nextMessage<{ type: string; workerId: string }>(child, 'started').then((m) => m.workerId);
      let starts = 0;
      const waiters: Array<{ count: number; resolve: () => void }> = [];
      const jobsRun = new Set<string>();
      const jobWaiters = new Map<string, () => void>();
      child.on('message', (m: { type?: string; jobId?: string }) => {
        if (m?.type !== 'running') return;
        starts++;
        jobsRun.add(String(m.jobId));
        jobWaiters.get(String(m.jobId))?.();
        for (const w of waiters.filter((w) => w.count <= starts)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      });
      const p: WorkerProcess = {
        child,
        started,
        running: (count) =>
          count <= starts
            ? Promise.resolve()
            : Promise.race([
                new Promise<void>((resolve) => waiters.push({ count, resolve })),
                exited.then(() => Promise.reject(new Error(`worker process ${child.pid} exited before ${count} handlers started`))),
              ]),
        ran: (jobId) => (jobsRun.has(jobId) ? Promise.resolve() : new Promise<void>((resolve) => jobWaiters.set(jobId, resolve))),
        async kill() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
        stop: () => stopChild(child),
      };
      processes.push(p);
      return p;
    },
    /** Every run the handlers recorded, by start time. */
    async runs(): Promise<RunRow[]> {
      const rows = await db.sql<Array<Omit<RunRow, 'start_us' | 'end_us'> & { start_us: string; end_us: string | null }>>`
        SELECT job_id::text, attempt, key, n, worker,
          (extract(epoch FROM started_at) * 1000000)::bigint::text AS start_us, (extract(epoch FROM ended_at) * 1000000)::bigint::text AS end_us
        FROM runs ORDER BY started_at, job_id`;
      return rows.map((r) => ({ ...r, start_us: Number(r.start_us), end_us: r.end_us === null ? null : Number(r.end_us) }));
    },
    async gauge(): Promise<{ running: number; peak: number }> {
      const [row] = await db.sql<{ running: number; peak: number }[]>`SELECT running, peak FROM gauge WHERE queue = ${queue}`;
      return { running: row!.running, peak: row!.peak };
    },
    async close() {
      await Promise.all(processes.map((p) => p.kill()));
      await app.close();
      await db.drop();
    },
  };
}

/**
 * The most runs in progress at once among `runs` (finished ones: [start, end]); a run that starts
 * exactly when another ends does not overlap it.
 */
export function peakOverlap(runs: readonly RunRow[]): number {
  const events: Array<[number, number]> = [];
  for (const r of runs) {
    if (r.end_us === null) continue;
    events.push([r.start_us, 1], [r.end_us, -1]);
  }
  // At equal times the end comes first.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let peak = 0;
  for (const [, delta] of events) {
    now += delta;
    peak = Math.max(peak, now);
  }
  return peak;
}

/** Runs grouped by key (runs without a key are left out). */
export function byKey(runs: readonly RunRow[]): Map<string, RunRow[]> {
  const out = new Map<string, RunRow[]>();
  for (const r of runs) {
    if (r.key === null) continue;
    const list = out.get(r.key);
    if (list) list.push(r);
    else out.set(r.key, [r]);
  }
  return out;
}
