import { randomUUID } from 'node:crypto';
import os from 'node:os';
import postgres from 'postgres';
import { type AppInternals, type Docket, internals } from '../app.js';
import { explainDriverError } from '../driver-errors.js';
import { ClosedError, InvalidOptionError, WorkerShutdownError, WorkerStateError } from '../errors.js';
import { AsyncExecutor } from '../executors/async.js';
import type { Executor, ExecutorSettings, RecycleSettings } from '../executors/executor.js';
import { createExecutor } from '../executors/index.js';
import type { MaintenanceContext } from '../hooks.js';
import { tapped } from '../hooks.js';
import { assertQueueName } from '../identifiers.js';
import { type AnyJobDefinition, isJobDefinition } from '../job-definition.js';
import { booleanOption, describe, integerOption, oneOfOption, rejectUnknownKeys } from '../options.js';
import { type PeriodicLoops, startPeriodicTasks } from '../periodic.js';
import type { ExecutorKind } from '../sql/queues.js';
import type { JobError, PrimaryStatus, RunningJob, WorkerView } from '../types.js';
import type { AttemptAbort } from './attempt-abort.js';
import type { AttemptContext } from './attempt-context.js';
import { Completer } from './completer.js';
import { successOutcome } from './outcome.js';
import { registerForSignals, type SignalParticipant, type StopSignal } from './process-signals.js';
import { ProgressWriter } from './progress-writer.js';
import { QueueRunner, type QueueSettings } from './queue-runner.js';

/** Internal: an atomic attempt found its row no longer fenced to it; its transaction is rolled back. */
class StaleAttemptError extends Error {
  constructor(job: RunningJob) {
    super(`job ${job.id} attempt ${job.attempt} is no longer this worker's`);
  }
}

/** How one worker serves one queue (`new Worker(app, { queues: { name: options } })`). */
export interface WorkerQueueOptions {
  /** Jobs of this queue run at once on this worker. Default: the queue's declared concurrency, else 10. */
  concurrency?: number;
  /** Default: the queue's declared executor, else 'async'. */
  executor?: ExecutorKind;
  /** Poll interval when no notification arrives. Default: the queue's declared one, else 1000 ms. */
  pollIntervalMs?: number;
  /** Jobs claimed ahead of free slots. Default: equal to concurrency. */
  prefetch?: number;
  /**
   * Thread and process executors: replace a worker thread or child process with a fresh one after
   * it ran `afterJobs` attempts, or once its memory after an attempt is above `aboveMemoryMb` (a
   * child process's resident set; a thread's V8 heap in use). Checked between attempts, so no job
   * is cut short, lost or run twice. Default: never. Not for the async executor, which runs
   * handlers on the worker's own event loop: there is no thread or process to replace (restart the
   * worker process instead, or run the queue on a thread or process executor).
   */
  recycle?: { afterJobs?: number; aboveMemoryMb?: number };
}

/** Options of `new Worker(app, options)`: the jobs it can run, the queues it serves, and its timings. */
export interface WorkerOptions {
  /** The job definitions this worker can run. */
  jobs: ReadonlyArray<AnyJobDefinition>;
  /** Queues to serve, by name. */
  queues: Readonly<Record<string, WorkerQueueOptions>>;
  /** Stable id for this worker's heartbeat row. Default: hostname-pid-random. */
  id?: string;
  /** How often the heartbeat row is refreshed. Default 5000 ms. */
  heartbeatIntervalMs?: number;
  /** How often the maintenance hook fires. Default 1000 ms. */
  maintenanceIntervalMs?: number;
  /** Default timeout of `stop()`. Default 30000 ms. */
  shutdownTimeoutMs?: number;
  /**
   * How long an aborted async handler may take to return before it is abandoned: its attempt ends
   * (the job goes back to the queue, or fails on a time limit) although its code may still run — a
   * promise cannot be killed. Default 1000 ms.
   */
  hardStopGraceMs?: number;
  /**
   * Answer SIGINT/SIGTERM as a long-running worker should. Default true. The first signal stops
   * gracefully (running jobs get up to `shutdownTimeoutMs`), the second aborts running jobs (they go
   * back to the queue), the third exits at once. After a clean stop the process exits with code 0 —
   * unless another listener of the signal is installed in the process (yours, a test runner's, or
   * another worker's still stopping), which then owns it. Set `false` when your code owns the
   * process's signals.
   */
  handleSignals?: boolean;
  /** Module (path or URL) exporting the job definitions; needed by 'thread' and 'process' executors. */
  jobsModule?: string | URL;
  /** Most outcomes written per statement. Default 500. */
  completionBatchSize?: number;
  /**
   * How often, at most, this worker stores its running jobs' latest `ctx.progress` reports (one
   * statement for all of them). A report in between only replaces the latest in memory; the last
   * report of an attempt is always stored, with its outcome. Default 250 ms.
   */
  progressIntervalMs?: number;
  /**
   * How a claim (pending → running) commits. 'async' (default): without waiting for the WAL flush,
   * which takes a flush off every push-to-start path. Trade-off: if the PostgreSQL server itself
   * crashes, claims from its last fraction of a second (up to 3 × wal_writer_delay) are forgotten
   * and those jobs run again: at-least-once, as after a worker crash. Outcomes and pushes always
   * wait for the flush. 'sync': claims wait too.
   */
  claimCommit?: 'async' | 'sync';
}

const OPTION_KEYS = [
  'jobs',
  'queues',
  'id',
  'heartbeatIntervalMs',
  'maintenanceIntervalMs',
  'shutdownTimeoutMs',
  'hardStopGraceMs',
  'handleSignals',
  'jobsModule',
  'completionBatchSize',
  'progressIntervalMs',
  'claimCommit',
] as const;
const QUEUE_KEYS = ['concurrency', 'executor', 'pollIntervalMs', 'prefetch', 'recycle'] as const;

type WorkerPhase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * A long-running worker: serves its queues, heart-beats, fires the maintenance hook, and writes
 * outcomes in batches. `stop()` is graceful: no job is left `running`.
 */
export class Worker {
  readonly id: string;
  readonly app: Docket;
  readonly queueNames: readonly string[];
  readonly heartbeatIntervalMs: number;
  readonly maintenanceIntervalMs: number;
  private readonly options: WorkerOptions;
  private readonly internals: AppInternals;
  private readonly definitions = new Map<string, AnyJobDefinition>();
  private readonly runners = new Map<string, QueueRunner>();
  private readonly executors: Executor[] = [];
  private readonly unsubscribe: Array<() => void> = [];
  private completer!: Completer;
  private phase: WorkerPhase = 'new';
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private maintenanceTimer: NodeJS.Timeout | null = null;
  private maintenanceRunning: Promise<void> | null = null;
  private periodicLoops: PeriodicLoops | null = null;
  private primaryAsked: Promise<PrimaryStatus> | null = null;
  private tick = 0;
  private readonly lifetime = new AbortController();
  private releaseSignals: (() => void) | null = null;
  private stopping: Promise<void> | null = null;
  private primaryStatus: PrimaryStatus = { primary: true, term: null };
  /** The heartbeat's own connection, apart from the app's pool (see `controlConnection`). */
  private control: postgres.Sql | null = null;

  constructor(app: Docket, options: WorkerOptions) {
    const where = 'new Worker(app, options)';
    rejectUnknownKeys(where, options, OPTION_KEYS);
    if (!options || !Array.isArray(options.jobs))
      throw new InvalidOptionError(`${where}: \`jobs\` must be an array of job definitions (from defineJob).`);
    if (!options.queues || typeof options.queues !== 'object' || Object.keys(options.queues).length === 0) {
      throw new InvalidOptionError(`${where}: \`queues\` must name at least one queue, e.g. { default: { concurrency: 10 } }.`);
    }
    for (const job of options.jobs) {
      if (!isJobDefinition(job)) throw new InvalidOptionError(`${where}: \`jobs\` holds ${describe(job)}, not a job made with defineJob.`);
      if (this.definitions.has(job.jobName)) throw new InvalidOptionError(`${where}: two jobs are named '${job.jobName}'.`);
      this.definitions.set(job.jobName, job);
    }
    for (const [name, q] of Object.entries(options.queues)) {
      assertQueueName(name);
      rejectUnknownKeys(`${where}.queues.${name}`, q ?? {}, QUEUE_KEYS);
      recycleSettings(`${where}.queues.${name}`, q?.recycle, q?.executor);
    }
    this.app = app;
    this.internals = internals(app);
    this.options = options;
    this.id = options.id ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.queueNames = Object.freeze(Object.keys(options.queues));
    this.heartbeatIntervalMs = integerOption(where, 'heartbeatIntervalMs', options.heartbeatIntervalMs, 5000, { min: 50, max: 600_000 });
    this.maintenanceIntervalMs = integerOption(where, 'maintenanceIntervalMs', options.maintenanceIntervalMs, 1000, { min: 10, max: 3_600_000 });
    integerOption(where, 'shutdownTimeoutMs', options.shutdownTimeoutMs, 30_000, { min: 0 });
    integerOption(where, 'hardStopGraceMs', options.hardStopGraceMs, 1000, { min: 0, max: 600_000 });
    integerOption(where, 'completionBatchSize', options.completionBatchSize, 500, { min: 1, max: 500 });
    const progressIntervalMs = integerOption(where, 'progressIntervalMs', options.progressIntervalMs, 250, { min: 10, max: 600_000 });
    this.progress = new ProgressWriter(
      (items) => this.internals.jobs.progressWrite(this.app.sql, { workerId: this.id, items }),
      progressIntervalMs,
      app.logger,
    );
    this.handleSignals = booleanOption(where, 'handleSignals', options.handleSignals, true);
    this.asyncClaims = oneOfOption(where, 'claimCommit', options.claimCommit, ['async', 'sync'], 'async') === 'async';
  }

  /** Claims commit without waiting for the WAL flush (`claimCommit: 'async'`). */
  readonly asyncClaims: boolean;
  /** Stores the progress reports of this worker's attempts. @internal (used by the queue runners) */
  readonly progress: ProgressWriter;
  /** SIGINT/SIGTERM stop this worker (option `handleSignals`, default true). */
  readonly handleSignals: boolean;

  get running(): boolean {
    return this.phase === 'running';
  }

  /** The latest primary-role answer (of a maintenance tick or of `resolvePrimary()`). */
  get primary(): PrimaryStatus {
    return this.primaryStatus;
  }

  /** Aborted when the worker stops; plugins tie their timers to it. */
  get signal(): AbortSignal {
    return this.lifetime.signal;
  }

  /** Number of jobs running now, over all queues. */
  get activeJobs(): number {
    let n = 0;
    for (const r of this.runners.values()) n += r.activeCount;
    return n;
  }

  /** Checks migrations, registers the worker, starts its queues, heartbeat and maintenance; resolves once it is running. */
  async start(): Promise<void> {
    if (this.phase !== 'new') throw new WorkerStateError(`Worker ${this.id} was already started; create a new Worker to start again.`);
    if (this.app.closed) throw new ClosedError('Cannot start a worker on a closed app.');
    this.phase = 'starting';
    try {
      await this.app.assertMigrated();
      const { queues, workers, notifier, hooks } = this.internals;
      await queues.ensure(this.app.sql, { names: this.queueNames });
      const declared = new Map((await queues.list(this.app.sql, { names: this.queueNames })).map((q) => [q.name, q]));
      const jobsModule = this.options.jobsModule === undefined ? null : String(this.options.jobsModule);
      const hardStopGraceMs = this.options.hardStopGraceMs ?? 1000;
      this.completer = new Completer(
        this.internals.workerSql(),
        this.internals.settlements,
        this.internals.settling,
        this.app.logger,
        this.id,
        this.options.completionBatchSize ?? 500,
        () => this.shapedQueues,
        (batch) => {
          for (const runner of this.runners.values()) runner.nudge(batch);
        },
      );

      for (const name of this.queueNames) {
        const opts = this.options.queues[name] ?? {};
        const db = declared.get(name);
        const where = `new Worker(app, options).queues.${name}`;
        const concurrency = integerOption(where, 'concurrency', opts.concurrency, db?.concurrency ?? 10, { min: 1, max: 10_000 });
        const settings: QueueSettings = {
          name,
          concurrency,
          executor: oneOfOption(where, 'executor', opts.executor, ['async', 'thread', 'process'], db?.executor ?? 'async'),
          pollIntervalMs: integerOption(where, 'pollIntervalMs', opts.pollIntervalMs, db?.pollIntervalMs ?? 1000, { min: 10, max: 3_600_000 }),
          prefetch: integerOption(where, 'prefetch', opts.prefetch, concurrency, { min: 0, max: 10_000 }),
        };
        const executorSettings: ExecutorSettings = {
          jobsModule,
          hardStopGraceMs,
          concurrency,
          recycle: recycleSettings(where, opts.recycle, settings.executor),
        };
        const executor =
          settings.executor === 'async' ? new AsyncExecutor(executorSettings) : await createExecutor(settings.executor, executorSettings);
        this.executors.push(executor);
        this.runners.set(name, new QueueRunner(settings, this, this.app, this.internals, this.definitions, executor, this.completer));
      }
      this.warnUnservedJobs();

      this.control = controlConnection(this.app.sql);
      await workers.beat(this.control, this.workerRow());
      if (notifier.enabled) {
        this.unsubscribe.push(
          notifier.on('p', (body) => {
            for (const q of body.split(',')) this.runners.get(q)?.wake();
          }),
          notifier.on('t', (body) => {
            for (const item of body.split(',')) {
              const at = item.lastIndexOf('@');
              this.runners.get(item.slice(0, at))?.wakeAt(Number(item.slice(at + 1)));
            }
          }),
          notifier.on('c', (id) => this.cancelLocal(id)),
          notifier.on('q', (body) => {
            for (const q of body.split(',')) this.runners.get(q)?.pause();
          }),
          notifier.onReconnect(() => {
            for (const runner of this.runners.values()) runner.wake();
          }),
        );
        await notifier.start();
      }
      if (tapped(hooks.workerStarted)) await hooks.workerStarted.promise(this.view);
      // Jobs scheduled before this worker started: wake at the earliest (later ones announce themselves).
      if (notifier.enabled) await Promise.all([...this.runners.values()].map((runner) => runner.armNextDue()));
      this.phase = 'running';
      for (const runner of this.runners.values()) runner.start();
      this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatIntervalMs);
      this.maintenanceTimer = setInterval(() => void this.maintenance(), this.maintenanceIntervalMs);
      this.periodicLoops = startPeriodicTasks(this);
      if (this.handleSignals) {
        const participant: SignalParticipant = { logger: this.app.logger, signalled: (count, signal) => this.onStopSignal(count, signal) };
        this.releaseSignals = registerForSignals(participant);
      }
      void this.maintenance();
    } catch (error) {
      this.phase = 'stopped';
      this.lifetime.abort();
      for (const off of this.unsubscribe) off();
      await Promise.all(this.executors.map((e) => e.close().catch(() => undefined)));
      await this.control?.end({ timeout: 5 }).catch(() => undefined);
      throw await explainDriverError(error, this.app);
    }
  }

  private workerRow() {
    return { id: this.id, hostname: os.hostname(), pid: process.pid, queues: this.queueNames, heartbeatIntervalMs: this.heartbeatIntervalMs };
  }

  private async heartbeat(): Promise<void> {
    if (this.phase !== 'running' || !this.control) return;
    try {
      await this.internals.workers.beat(this.control, this.workerRow());
      // Without LISTEN, cancellation requests are found here instead of by notification.
      if (!this.internals.notifier.enabled && this.activeJobs > 0) {
        for (const { id } of await this.internals.jobs.listCancelRequested(this.control, { workerId: this.id })) this.cancelLocal(id);
      }
    } catch (error) {
      this.app.logger.error('heartbeat failed', { error, worker: this.id });
    }
  }

  private maintenance(): Promise<void> {
    if (this.phase !== 'running' || this.maintenanceRunning) return this.maintenanceRunning ?? Promise.resolve();
    this.maintenanceRunning = (async () => {
      const { hooks } = this.internals;
      try {
        const tick = ++this.tick;
        if (tapped(hooks.resolvePrimary)) await this.resolvePrimary();
        if (tapped(hooks.maintenance) && this.phase === 'running') {
          const ctx: MaintenanceContext = { app: this.app, worker: this.view, primary: this.primaryStatus, signal: this.signal, tick };
          await hooks.maintenance.promise(ctx);
        }
      } catch (error) {
        this.app.logger.error('maintenance tick failed', { error, worker: this.id });
      } finally {
        this.maintenanceRunning = null;
      }
    })();
    return this.maintenanceRunning;
  }

  /**
   * Asks the election now (the `resolvePrimary` hook) and keeps the answer as `primary`; a call
   * while an answer is on its way shares it. Each maintenance tick starts with it, and a
   * `primaryOnly` periodic task calls it before each run, so neither acts on an answer older than
   * the election's latest renewal. Untapped, answers primary (term null) without a call.
   */
  resolvePrimary(): Promise<PrimaryStatus> {
    const { hooks } = this.internals;
    if (!tapped(hooks.resolvePrimary)) return Promise.resolve(this.primaryStatus);
    this.primaryAsked ??= hooks.resolvePrimary
      .promise({ app: this.app, workerId: this.id, signal: this.signal })
      .then((answer) => (this.primaryStatus = answer ?? { primary: true, term: null }))
      .finally(() => (this.primaryAsked = null));
    return this.primaryAsked;
  }

  private cancelLocal(id: string): void {
    for (const runner of this.runners.values()) if (runner.cancel(id)) return;
  }

  /**
   * Stores an attempt's last progress report now (before its job is given back, which ends the
   * attempt the write is fenced to). A failure is logged: the report is lost, the job is not.
   * @internal (called by the queue runner)
   */
  async storeProgress(job: RunningJob, progress: string): Promise<void> {
    try {
      await this.internals.jobs.progressWrite(this.app.sql, { workerId: this.id, items: [{ id: job.id, attempt: job.attempt, progress }] });
    } catch (error) {
      this.app.logger.warn('storing the last progress report of an interrupted attempt failed', { error, job: job.id });
    }
  }

  /** Returns claimed jobs to `pending` without spending their attempt (shutdown). */
  giveBack(ids: string[], error: JobError | null): void {
    this.pendingGiveBacks.push(
      this.internals.jobs.release(this.app.sql, { workerId: this.id, ids, error }).then(
        () => undefined,
        (e) =>
          this.app.logger.error('returning jobs to the queue failed (they stay running until a stale-heartbeat sweep requeues them)', {
            error: e,
            jobs: ids,
          }),
      ),
    );
  }
  private readonly pendingGiveBacks: Array<Promise<void>> = [];

  /**
   * Runs an atomic job: the handler's writes (through ctx.sql) and the job's completion commit in
   * one transaction; if the handler throws, the transaction rolls back and the failure is recorded
   * outside it. @internal (called by the queue runner)
   */
  async runAtomic(definition: AnyJobDefinition, job: RunningJob, ctx: AttemptContext, abort: AttemptAbort, executor: Executor): Promise<void> {
    // Settling until its after-commit work is done: a claim of its next attempt waits (SettlingJobs).
    await this.internals.settling.during(
      () => [job.id],
      async () => {
        const afterCommit = await this.app.sql.begin(async (tx: postgres.TransactionSql) => {
          // Fence first: if this attempt is no longer ours (recovered, cancelled), run nothing here.
          const locked = await this.internals.jobs.lockRunning(tx, { workerId: this.id, jobs: [job] });
          if (locked.length === 0) throw new StaleAttemptError(job);
          // The same context (fields plugins made for it included), now with the transaction.
          ctx.sql = tx;
          const result = await executor.run(definition, job, ctx, abort);
          const progress = ctx.endProgress();
          return this.internals.settlements.writeAttemptsIn(
            tx,
            [{ job, outcome: successOutcome(job, result), ctx }],
            this.id,
            this.shapedQueues,
            progress === undefined ? undefined : new Map([[job.id, progress]]),
          );
        });
        await afterCommit();
      },
    );
  }

  /** Queues whose claims a plugin shaped on this worker (their settled jobs announce freed capacity). */
  get shapedQueues(): readonly string[] {
    return this.shaped;
  }
  private shaped: string[] = [];
  /** A runner's claim was shaped by a plugin. */
  markShaped(queue: string): void {
    if (!this.shaped.includes(queue)) this.shaped = [...this.shaped, queue];
  }

  /** What hooks and plugins see of this worker. */
  readonly view: WorkerView = createView(this);

  /**
   * A job whose queue this worker does not serve runs here only when pushed to a served queue
   * (withQueue); listing it usually means a queue is missing from `queues`, so say so at start.
   */
  private warnUnservedJobs(): void {
    const unserved = [...this.definitions.values()].filter((job) => !this.runners.has(job.defaults.queue));
    if (unserved.length === 0) return;
    const served = this.queueNames.map((q) => `'${q}'`).join(', ');
    this.app.logger.warn(
      `worker ${this.id}: ${unserved.map((job) => `job '${job.jobName}' is on queue '${job.defaults.queue}'`).join(', ')}, which this worker does not serve ` +
        `(it serves ${served}); it runs ${unserved.length === 1 ? 'that job' : 'those jobs'} only when pushed to a queue it serves (withQueue). ` +
        'Add the queue to `queues`, or drop the job from `jobs`.',
      { worker: this.id, jobs: unserved.map((job) => ({ job: job.jobName, queue: job.defaults.queue })) },
    );
  }

  /** How this worker answers the nth SIGINT/SIGTERM (process-signals.ts counts them for the process). */
  private onStopSignal(count: number, signal: StopSignal): Promise<void> | void {
    const again = signal === 'SIGINT' ? 'press Ctrl-C again' : 'send SIGTERM again';
    const running = this.activeJobs;
    const jobs = (n: number) => `${n} running job${n === 1 ? '' : 's'}`;
    const log = this.app.logger;
    if (count === 1) {
      const timeoutMs = this.options.shutdownTimeoutMs ?? 30_000;
      if (running === 0) log.info(`worker ${this.id}: ${signal}: stopping (no job running)`);
      else
        log.warn(
          `worker ${this.id}: ${signal}: stopping: waiting for ${jobs(running)}, up to ${seconds(timeoutMs)}; ${again} to abort ${running === 1 ? 'it' : 'them'} (they go back to the queue)`,
        );
      return this.stop();
    }
    if (count === 2) {
      if (running > 0) {
        log.warn(
          `worker ${this.id}: ${signal} again: aborting ${jobs(running)}; ${running === 1 ? 'it goes' : 'they go'} back to the queue ` +
            `(a handler that ignores ctx.signal is abandoned after ${seconds(this.options.hardStopGraceMs ?? 1000)}); ${again} to exit at once`,
        );
      }
      void this.stop({ timeoutMs: 0 });
      return;
    }
    if (running > 0)
      log.warn(
        `worker ${this.id}: ${signal} a third time: exiting at once; ${jobs(running)} stay running until a stale-heartbeat sweep requeues them`,
      );
  }

  /**
   * Stops fetching, lets running jobs finish for up to `timeoutMs`, then aborts the rest
   * (ctx.signal, reason WorkerShutdownError) and gives them back to the queue without spending
   * their attempt. Writes every outcome, removes the heartbeat row. No job is left `running`.
   */
  stop(options: { timeoutMs?: number } = {}): Promise<void> {
    rejectUnknownKeys('worker.stop(options)', options, ['timeoutMs']);
    const timeoutMs = integerOption('worker.stop(options)', 'timeoutMs', options.timeoutMs, this.options.shutdownTimeoutMs ?? 30_000, { min: 0 });
    if (this.phase === 'new') {
      this.phase = 'stopped';
      this.resolveStopped();
      return Promise.resolve();
    }
    if (this.stopping) {
      // A second call with a shorter deadline hurries the first.
      if (timeoutMs === 0) this.hurry?.();
      return this.stopping;
    }
    this.stopping = this.doStop(timeoutMs);
    return this.stopping;
  }
  private hurry: (() => void) | null = null;
  private resolveStopped!: () => void;
  /** Resolves once the worker has stopped (by `stop()` or, with `handleSignals`, by a signal). */
  readonly stopped: Promise<void> = new Promise((resolve) => (this.resolveStopped = resolve));

  private async doStop(timeoutMs: number): Promise<void> {
    while (this.phase === 'starting') await new Promise((r) => setTimeout(r, 10));
    if (this.phase === 'stopped') return;
    this.phase = 'stopping';
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.maintenanceTimer) clearInterval(this.maintenanceTimer);
    const periodicStopped = this.periodicLoops?.stop();
    const unstarted: string[] = [];
    for (const runner of this.runners.values()) unstarted.push(...runner.stopFetching());
    if (unstarted.length > 0) this.giveBack(unstarted, null);

    const runners = [...this.runners.values()];
    // A claim under way gives its jobs back when it returns (fetch sees the runner stopping).
    await Promise.all(runners.map((r) => r.fetchSettled()));
    const hurried = new Promise<void>((resolve) => (this.hurry = resolve));
    const idle = Promise.all(runners.map((r) => r.waitIdle(timeoutMs))).then((all) => all.every(Boolean));
    const finished = await Promise.race([idle, hurried.then(() => false)]);
    if (!finished) {
      const reason = new WorkerShutdownError(`Worker ${this.id} stopped before the job finished; it goes back to the queue.`);
      await Promise.all(runners.map((r) => r.abortAll(reason)));
      const abandoned = this.executors.reduce((n, e) => n + (e instanceof AsyncExecutor ? e.abandoned : 0), 0);
      if (abandoned > 0) {
        this.app.logger.warn(
          `worker ${this.id}: ${abandoned} handler${abandoned === 1 ? '' : 's'} ignored ctx.signal for hardStopGraceMs and ${abandoned === 1 ? 'was' : 'were'} abandoned: ` +
            'the jobs are back in the queue, but that code may still be running in this process (a promise cannot be killed); ' +
            'its database calls fail once the app is closed. Make handlers honour ctx.signal.',
        );
      }
    }
    await this.maintenanceRunning;
    await periodicStopped;
    this.lifetime.abort();
    await this.completer.drain();
    await this.progress.drain();
    await Promise.all(this.pendingGiveBacks);
    const { hooks, workers } = this.internals;
    if (tapped(hooks.workerStopping))
      await hooks.workerStopping.promise(this.view).catch((error) => this.app.logger.error('workerStopping hook failed', { error }));
    for (const off of this.unsubscribe) off();
    await Promise.all(this.executors.map((e) => e.close().catch((error) => this.app.logger.error('closing an executor failed', { error }))));
    const control = this.control ?? this.app.sql;
    await workers.remove(control, { id: this.id }).catch((error) => this.app.logger.error('removing the heartbeat row failed', { error }));
    await this.control?.end({ timeout: 5 }).catch((error) => this.app.logger.error('closing the heartbeat connection failed', { error }));
    this.releaseSignals?.();
    this.phase = 'stopped';
    this.resolveStopped();
  }
}

/**
 * The worker's heartbeat connection: one connection of its own, with the pool's settings (URL or
 * your pool's options, credentials, timeouts, reconnect backoff). Handlers that hold every pooled
 * connection — long statements, reserved sessions, long transactions — would otherwise delay the
 * heartbeat until whatever judges workers by their heartbeats takes this one for dead and hands
 * its jobs to another while it still runs them. A worker uses one more connection than its app's
 * pool for it.
 */
function controlConnection(pool: postgres.Sql): postgres.Sql {
  // postgres.js takes options it parsed before as they are (it does the same for its LISTEN connection).
  return postgres({ ...pool.options, max: 1 } as unknown as postgres.Options<Record<string, postgres.PostgresType>>);
}

/** A live, read-only view of the worker's public face (what `WorkerView` promises, nothing more). */
function createView(worker: Worker): WorkerView {
  return Object.freeze({
    get id() {
      return worker.id;
    },
    get queueNames() {
      return worker.queueNames;
    },
    get heartbeatIntervalMs() {
      return worker.heartbeatIntervalMs;
    },
    get maintenanceIntervalMs() {
      return worker.maintenanceIntervalMs;
    },
    get signal() {
      return worker.signal;
    },
    get primary() {
      return worker.primary;
    },
    get activeJobs() {
      return worker.activeJobs;
    },
  });
}

/**
 * A queue's `recycle` option, checked: null when unset. Refused for the async executor (known in
 * the constructor when the worker names it, at start when it comes from `declareQueue`).
 */
function recycleSettings(where: string, recycle: WorkerQueueOptions['recycle'], executor: ExecutorKind | undefined): RecycleSettings | null {
  if (recycle === undefined) return null;
  if (recycle === null || typeof recycle !== 'object' || Array.isArray(recycle)) {
    throw new InvalidOptionError(`${where}: \`recycle\` must be an object like { afterJobs: 100, aboveMemoryMb: 512 }, got ${describe(recycle)}.`);
  }
  rejectUnknownKeys(`${where}.recycle`, recycle, ['afterJobs', 'aboveMemoryMb']);
  const afterJobs =
    recycle.afterJobs === undefined ? null : integerOption(`${where}.recycle`, 'afterJobs', recycle.afterJobs, 1, { min: 1, max: 1_000_000_000 });
  const aboveMemoryMb =
    recycle.aboveMemoryMb === undefined
      ? null
      : integerOption(`${where}.recycle`, 'aboveMemoryMb', recycle.aboveMemoryMb, 1, { min: 1, max: 1_048_576 });
  if (afterJobs === null && aboveMemoryMb === null) {
    throw new InvalidOptionError(`${where}: \`recycle\` needs \`afterJobs\`, \`aboveMemoryMb\` or both; leave it out to never recycle.`);
  }
  if (executor === 'async') {
    throw new InvalidOptionError(
      `${where}: \`recycle\` applies to the 'thread' and 'process' executors. The 'async' executor runs handlers on this worker's own event loop, so there is no thread or process to replace; run the queue with executor 'thread' or 'process', or restart the worker process.`,
      { details: { option: 'recycle', executor } },
    );
  }
  return { afterJobs, aboveMemoryMb };
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
