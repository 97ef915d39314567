/**
 * The one harness of the chaos scenarios: a migrated database with a `runs` table, worker
 * processes (fixtures/chaos-worker.ts) that journal every handler run, and the checks every
 * scenario makes after its fault:
 * - every job reached the state the scenario expects (`assertStates`);
 * - per job, no run was repeated unless the process that ran the earlier one was killed (or cut
 *   off, or presumed dead — the scenario says which processes and why: `explain`); a run after a
 *   failed attempt (the handler threw, the error is in the job's `errors`) is a retry, not a repeat
 *   (`checkRuns`);
 * - every process that was not killed is alive and still drains: each runs a probe job pushed to
 *   its own queue (`assertDraining`);
 * - and each prints its figures (`report`): jobs, runs, repeats and what explains them, recovery time.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Docket, type DocketPlugin, defineJob } from '@docket/core';
import { cron } from '@docket/plugin-cron';
import { leadership } from '@docket/plugin-leadership';
import { recovery } from '@docket/plugin-recovery';
import { createTestDatabase, type TestDatabase, type TestServer, WorkerProcess, waitFor } from '@docket/testing';

export type PluginName = 'recovery' | 'leadership' | 'cron';

/** How a chaos worker process runs (the environment of fixtures/chaos-worker.ts). */
export interface WorkerSettings {
  /** Where it connects. Default: the scenario's database. */
  url?: string;
  /** Default: the scenario's plugins. */
  plugins?: readonly PluginName[];
  concurrency?: number;
  prefetch?: number;
  pollMs?: number;
  heartbeatMs?: number;
  maintenanceMs?: number;
  maxConnections?: number;
  deadAfterMs?: number;
  recoveryIntervalMs?: number;
  maxRecoveries?: number;
  leaseMs?: number;
  renewIntervalMs?: number;
  cronIntervalMs?: number;
}

const ENV: Record<Exclude<keyof WorkerSettings, 'url' | 'plugins'>, string> = {
  concurrency: 'CONCURRENCY',
  prefetch: 'PREFETCH',
  pollMs: 'POLL_MS',
  heartbeatMs: 'HEARTBEAT_MS',
  maintenanceMs: 'MAINTENANCE_MS',
  maxConnections: 'MAX_CONNECTIONS',
  deadAfterMs: 'DEAD_AFTER_MS',
  recoveryIntervalMs: 'RECOVERY_INTERVAL_MS',
  maxRecoveries: 'MAX_RECOVERIES',
  leaseMs: 'LEASE_MS',
  renewIntervalMs: 'RENEW_INTERVAL_MS',
  cronIntervalMs: 'CRON_INTERVAL_MS',
};

const FIXTURE = new URL('./fixtures/chaos-worker.ts', import.meta.url);

/** The job definitions as the test pushes them (the worker process has the handlers). */
export const jobs = {
  sleep: defineJob({ name: 'sleep', queue: 'work' }, async (_: { ms: number }) => ({ label: '' })),
  flaky: defineJob({ name: 'flaky', queue: 'work', maxAttempts: 3 }, async (_: { failures: number }) => ({ label: '' })),
  hold: defineJob({ name: 'hold', queue: 'work' }, async (_: { ms: number }) => ({ label: '' })),
  block: defineJob({ name: 'block', queue: 'work' }, async (_: { ms: number }) => ({ label: '' })),
  exit: defineJob({ name: 'exit', queue: 'work' }, async (_: Record<string, never>) => undefined),
  tick: defineJob({ name: 'tick', queue: 'work' }, async (_: Record<string, never>) => ({ label: '' })),
  probe: defineJob({ name: 'probe', queue: 'solo' }, async (_: Record<string, never>) => ({ label: '' })),
};

/** Errors the recovery plugin writes for an attempt it took back: a run after one is a repeat. */
const RECOVERY_ERRORS = new Set(['WorkerLostError', 'JobStuckError', 'PoisonJobError']);

export interface LogMessage {
  type: string;
  workerId?: string;
  level?: 'warn' | 'error';
  message?: string;
  fields?: Record<string, unknown>;
}

export interface RunFigures {
  jobs: number;
  runs: number;
  /** Runs after a failed attempt (the handler threw): retries. */
  retries: number;
  /** Runs repeated because the earlier run's attempt was taken back; by what explains them. */
  repeats: Record<string, number>;
}

export class Scenario {
  private readonly processes: Array<{ label: string; process: WorkerProcess<LogMessage> }> = [];
  /** pid → what happened to that process that explains a repeat of its runs. */
  private readonly explained = new Map<number, string>();
  /** Processes the scenario kills, or lets end on their own; any other exit is a crash. */
  private readonly mayExit = new Set<number>();
  private readonly crashes: string[] = [];

  private constructor(
    readonly name: string,
    readonly db: TestDatabase,
    readonly app: Docket,
    readonly plugins: readonly PluginName[],
    /** The plugin instances of the test's own app, by name (e.g. cron's, to schedule). */
    readonly installed: ReadonlyMap<PluginName, DocketPlugin>,
    private readonly journals: string,
    /** `PostgreSQL 15.x` */
    readonly server: string,
  ) {}

  static async start(name: string, options: { plugins?: readonly PluginName[]; server?: TestServer } = {}): Promise<Scenario> {
    const plugins = options.plugins ?? ['recovery'];
    const db = await createTestDatabase({ server: options.server });
    const installed = new Map(plugins.map((name) => [name, instance(name)] as const));
    const app = new Docket({ connection: db.url, logger: false, plugins: [...installed.values()] });
    await app.migrate();
    await db.sql`CREATE TABLE runs (job_id bigint NOT NULL, attempt int NOT NULL, name text NOT NULL, pid int NOT NULL,
      worker text NOT NULL, label text NOT NULL, at timestamptz NOT NULL)`;
    const [{ server_version }] = await db.sql`SHOW server_version`;
    const journals = await mkdtemp(join(tmpdir(), 'docket-chaos-'));
    return new Scenario(name, db, app, plugins, installed, journals, `PostgreSQL ${String(server_version).split(' ')[0]}`);
  }

  /** Starts a worker process; resolves once its worker runs. */
  async spawn(label: string, settings: WorkerSettings = {}): Promise<WorkerProcess<LogMessage>> {
    const env: Record<string, string | number> = {
      TEST_DATABASE_URL: settings.url ?? this.db.url,
      LABEL: label,
      JOURNAL: join(this.journals, `${label}.jsonl`),
      PLUGINS: (settings.plugins ?? this.plugins).join(','),
    };
    for (const [key, name] of Object.entries(ENV)) {
      const value = settings[key as keyof typeof ENV];
      if (value !== undefined) env[name] = value;
    }
    const process = new WorkerProcess<LogMessage>(FIXTURE, env);
    this.processes.push({ label, process });
    process.child.once('exit', (code, signal) => {
      if (!this.mayExit.has(process.pid)) this.crashes.push(`${label} (pid ${process.pid}) exited with ${signal ?? `code ${code}`}`);
    });
    await process.started;
    return process;
  }

  /** SIGKILLs a worker process: repeats of the runs it had started are explained. */
  async kill(process: WorkerProcess<LogMessage>): Promise<void> {
    this.explain(process, 'killed');
    this.mayExit.add(process.pid);
    await process.kill();
  }

  /** The process may end on its own (a handler ends it): not a crash. */
  expectExit(process: WorkerProcess<LogMessage>): void {
    this.mayExit.add(process.pid);
  }

  /** The worker processes alive now. */
  liveProcesses(): Array<{ label: string; process: WorkerProcess<LogMessage> }> {
    return this.processes.filter(({ process }) => process.alive);
  }

  /** Fails at once when a worker process exited that nobody killed or expected to exit. */
  assertNoCrash(): void {
    assert.deepEqual(this.crashes, [], `${this.name}: a worker process crashed`);
  }

  /** Repeats of this process's runs are explained by `why` (cut off, presumed dead, exited). */
  explain(process: WorkerProcess<LogMessage>, why: string): void {
    this.explained.set(process.pid, why);
  }

  /** The database's clock now. */
  async now(): Promise<Date> {
    return (await this.db.sql`SELECT clock_timestamp() AS now`)[0]!.now;
  }

  /** Waits until no job is pending, running or waiting (polling: the jobs finish in other processes). */
  async drained(timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        this.assertNoCrash();
        return (await this.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE state IN ('pending', 'running', 'waiting')`)[0]!.n === 0;
      },
      { timeoutMs, intervalMs: 200, message: `every job of ${this.name} finished` },
    );
  }

  /** The first outcome written after `at` (database clock), if any yet. */
  async firstOutcomeAfter(at: Date): Promise<Date | undefined> {
    return (await this.db.sql`SELECT min(finished_at) AS t FROM docket.jobs WHERE finished_at > ${at}`)[0]!.t ?? undefined;
  }

  /** The longest time between two consecutive outcomes written between `from` and `to` (database clock), in ms. */
  async longestPause(from: Date, to: Date): Promise<number> {
    const [row] = await this.db.sql`
      SELECT coalesce(max(gap), 0)::float8 AS ms FROM (
        SELECT extract(epoch FROM finished_at - lag(finished_at) OVER (ORDER BY finished_at)) * 1000 AS gap
          FROM docket.jobs WHERE finished_at BETWEEN ${from} AND ${to}) g`;
    return row!.ms;
  }

  /** The last outcome written (database clock). */
  async lastOutcome(): Promise<Date> {
    return (await this.db.sql`SELECT max(finished_at) AS t FROM docket.jobs`)[0]!.t;
  }

  /** Asserts how many jobs (probes left out) ended in each state. */
  async assertStates(expected: Partial<Record<'succeeded' | 'failed' | 'cancelled', number>>): Promise<void> {
    const rows = await this.db.sql`SELECT state, count(*)::int AS n FROM docket.jobs WHERE name <> 'probe' GROUP BY state ORDER BY state`;
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.state, r.n])), expected, `${this.name}: jobs by end state`);
  }

  /** Loads every journal into `runs` (again: it replaces what was loaded before). */
  async loadRuns(): Promise<number> {
    const lines: Array<{ job: string; attempt: number; name: string; pid: number; worker: string; label: string; at: number }> = [];
    for (const file of await readdir(this.journals)) {
      const text = await readFile(join(this.journals, file), 'utf8');
      for (const line of text.split('\n')) if (line) lines.push(JSON.parse(line));
    }
    await this.db.sql`TRUNCATE runs`;
    for (let i = 0; i < lines.length; i += 5000) {
      const chunk = lines.slice(i, i + 5000);
      await this.db.sql`
        INSERT INTO runs (job_id, attempt, name, pid, worker, label, at)
        SELECT * FROM unnest(${chunk.map((l) => l.job)}::bigint[], ${chunk.map((l) => l.attempt)}::int[], ${chunk.map((l) => l.name)}::text[],
                             ${chunk.map((l) => l.pid)}::int[], ${chunk.map((l) => l.worker)}::text[], ${chunk.map((l) => l.label)}::text[],
                             ${chunk.map((l) => new Date(l.at).toISOString())}::timestamptz[])`;
    }
    return lines.length;
  }

  /**
   * The per-job check of the runs (after `loadRuns`): no attempt ran twice; each job's last run is
   * the attempt its row ended with; every run before a job's last is either a retry (its attempt
   * failed with the handler's own error, kept in `errors`) or a repeat whose process is explained.
   */
  async checkRuns(): Promise<RunFigures> {
    const [twice] = await this.db.sql`
      SELECT count(*)::int AS n, min(job_id)::text AS example FROM (SELECT job_id FROM runs GROUP BY job_id, attempt HAVING count(*) > 1) d`;
    assert.equal(twice!.n, 0, `${this.name}: an attempt ran twice (job ${twice!.example})`);
    const [unrun] = await this.db.sql`
      SELECT count(*)::int AS n, min(j.id)::text AS example FROM docket.jobs j
       WHERE j.state = 'succeeded' AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = j.id AND r.attempt = j.attempt)`;
    assert.equal(unrun!.n, 0, `${this.name}: a job succeeded with no run of its final attempt (job ${unrun!.example})`);

    const earlier = await this.db.sql`
      WITH ranked AS (
        SELECT r.*, row_number() OVER (PARTITION BY job_id ORDER BY attempt DESC) AS from_last FROM runs r
      )
      SELECT r.job_id::text AS job, r.attempt, r.pid, r.label,
             (SELECT e->>'name' FROM jsonb_array_elements(j.errors) e WHERE (e->>'attempt')::int = r.attempt LIMIT 1) AS error
        FROM ranked r JOIN docket.jobs j ON j.id = r.job_id
       WHERE r.from_last > 1`;
    let retries = 0;
    const repeats: Record<string, number> = {};
    for (const run of earlier) {
      if (run.error !== null && !RECOVERY_ERRORS.has(run.error)) {
        retries++;
        continue;
      }
      const why = this.explained.get(run.pid);
      assert.ok(
        why !== undefined,
        `${this.name}: job ${run.job} ran again after attempt ${run.attempt} on ${run.label} (pid ${run.pid}), ` +
          `which was neither killed nor cut off (error recorded for that attempt: ${run.error ?? 'none'})`,
      );
      repeats[why] = (repeats[why] ?? 0) + 1;
    }
    const [counts] = await this.db.sql`SELECT count(DISTINCT job_id)::int AS jobs, count(*)::int AS runs FROM runs WHERE name <> 'probe'`;
    return { jobs: counts!.jobs, runs: counts!.runs, retries, repeats };
  }

  /**
   * Every worker process that was neither killed nor allowed to exit is alive, and every live one
   * runs a probe job pushed to its own queue: it still claims, runs and completes.
   */
  async assertDraining(timeoutMs = 30_000): Promise<void> {
    this.assertNoCrash();
    for (const { label, process } of this.processes) {
      if (!this.mayExit.has(process.pid)) assert.ok(process.alive, `${this.name}: worker process ${label} died`);
    }
    const live = this.liveProcesses();
    const refs = await Promise.all(live.map(({ label }) => this.app.push(jobs.probe.withQueue(`solo.${label}`).withArgs({}))));
    for (const [i, ref] of refs.entries()) {
      const job = await this.app.waitForJob(ref, { timeoutMs });
      assert.equal(job.state, 'succeeded', `${this.name}: the probe of ${live[i]!.label} ended ${job.state}`);
    }
  }

  /** Warnings and errors the worker processes logged, by message. */
  logs(level: 'warn' | 'error', pattern?: RegExp): LogMessage[] {
    return this.processes.flatMap(({ process }) =>
      process.messages.filter((m) => m.type === 'log' && m.level === level && (pattern === undefined || pattern.test(m.message ?? ''))),
    );
  }

  /** Prints the scenario's figures (one line, picked up by docs/RELIABILITY.md). */
  report(figures: RunFigures, extra: Record<string, string | number>): void {
    const repeats = Object.entries(figures.repeats);
    const repeated = repeats.length === 0 ? '0' : repeats.map(([why, n]) => `${n} (${why})`).join(', ');
    const rest = Object.entries(extra)
      .map(([k, v]) => `${k} ${v}`)
      .join('; ');
    console.log(
      `[chaos] ${this.name} on ${this.server}: jobs ${figures.jobs}, runs ${figures.runs}, retries ${figures.retries}, repeated runs ${repeated}; ${rest}`,
    );
  }

  /** Kills what is left, drops the database, removes the journals. */
  async close(): Promise<void> {
    for (const { process } of this.processes) this.mayExit.add(process.pid);
    await Promise.all(this.processes.map(({ process }) => process.kill()));
    await this.app.close();
    await this.db.drop();
    await rm(this.journals, { recursive: true, force: true });
  }
}

function instance(name: PluginName): DocketPlugin {
  return name === 'recovery' ? recovery() : name === 'leadership' ? leadership() : cron();
}

/** Seconds with one decimal, for figures. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
