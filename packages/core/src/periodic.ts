import { performance } from 'node:perf_hooks';
import type { Docket } from './app.js';

import { booleanOption, integerOption, rejectUnknownKeys } from './options.js';
import { pluginBinding } from './plugin-binding.js';
import type { PrimaryStatus, WorkerView } from './types.js';
import type { Worker } from './worker/worker.js';

/** What one run of a periodic task is given. */
export interface PeriodicRun {
  readonly app: Docket;
  /** The worker this run is on. */
  readonly worker: WorkerView;
  /**
   * The primary-role answer the run was decided on: with `primaryOnly`, asked of the election just
   * before the run (`worker.resolvePrimary()`); otherwise the worker's latest answer.
   */
  readonly primary: PrimaryStatus;
  /** Aborted when the worker stops: long runs should check it between batches. */
  readonly signal: AbortSignal;
}

/** The options of {@link periodicTask}. */
export interface PeriodicTaskOptions<R> {
  /** Name used for events (`<name>.finished`) and tap names; usually the plugin's name. */
  name: string;
  /** Minimum time between the starts of two runs on one worker. */
  intervalMs: number;
  /** Skip the run on workers that are not primary (when an election plugin answers). Default true. */
  primaryOnly?: boolean;
  /** The work of one run. A throw is logged and emitted as `<name>.failed`; the next run happens as planned. */
  run(ctx: PeriodicRun): Promise<R>;
}

/** The payload of a periodic task's `<name>.started` event, emitted as a run begins. */
export interface PeriodicStartedEvent {
  readonly workerId: string;
}
/** The payload of a periodic task's `<name>.finished` event: the run's duration (milliseconds) and what `run` returned. */
export interface PeriodicFinishedEvent<R = unknown> {
  readonly workerId: string;
  readonly durationMs: number;
  readonly result: R;
}
/** The payload of a periodic task's `<name>.failed` event: what `run` threw (the next run happens as planned). */
export interface PeriodicFailedEvent {
  readonly workerId: string;
  readonly error: unknown;
}

/**
 * The events `periodicTask` emits for a task named `Name`, to declare with the plugin's others:
 * `declare module '@docket/core' { interface DocketEventMap extends PeriodicEvents<'reports'> {} }`.
 */
export type PeriodicEvents<Name extends string, R = unknown> = { readonly [K in `${Name}.started`]: PeriodicStartedEvent } & {
  readonly [K in `${Name}.finished`]: PeriodicFinishedEvent<R>;
} & { readonly [K in `${Name}.failed`]: PeriodicFailedEvent };

/** A periodic task made by {@link periodicTask}. */
export interface PeriodicTask<R> {
  readonly name: string;
  /** Resolves with the result of the next run that finishes on this process (for tests and tooling). */
  nextRun(options?: { timeoutMs?: number }): Promise<R>;
  /** Runs that finished on this process so far. */
  readonly runs: number;
}

/** What a worker's loop needs of a task. */
interface LoopedTask {
  readonly name: string;
  readonly intervalMs: number;
  readonly primaryOnly: boolean;
  /** A run is in flight on some worker of this process: the task never overlaps itself. */
  busy: boolean;
  /** Runs once, with events; never throws. */
  execute(run: PeriodicRun): Promise<void>;
}

/** The periodic tasks of one app, and how to start a task on each of its running workers. */
interface AppPeriodic {
  readonly tasks: Set<LoopedTask>;
  readonly startOnWorkers: Set<(task: LoopedTask) => void>;
}

const periodicByApp = new WeakMap<Docket, AppPeriodic>();

function periodicOf(app: Docket): AppPeriodic {
  let periodic = periodicByApp.get(app);
  if (!periodic) {
    periodic = { tasks: new Set(), startOnWorkers: new Set() };
    periodicByApp.set(app, periodic);
  }
  return periodic;
}

/**
 * The skeleton shared by periodic plugins. Each running worker gives the task a loop of its own
 * (its own timer, apart from the maintenance tick and from other tasks, so a slow run delays only
 * this task): it runs at most every `intervalMs` on that worker, only on the primary worker when
 * `primaryOnly`, never overlapping itself on this process, and ends with the worker's `stop()`.
 * Emits `<name>.started|finished|failed` events and lets tests wait for a run instead of sleeping.
 */
export function periodicTask<R>(app: Docket, options: PeriodicTaskOptions<R>): PeriodicTask<R> {
  rejectUnknownKeys(`periodicTask('${options.name}')`, options, ['name', 'intervalMs', 'primaryOnly', 'run']);
  const intervalMs = integerOption(`periodicTask('${options.name}')`, 'intervalMs', options.intervalMs, 1000, { min: 1 });
  const primaryOnly = booleanOption(`periodicTask('${options.name}')`, 'primaryOnly', options.primaryOnly, true);
  const { name } = options;
  // The task's events are declared by its plugin (PeriodicEvents<name>), not known here.
  const emit = app.emit.bind(app) as (
    source: string,
    type: string,
    payload: PeriodicStartedEvent | PeriodicFinishedEvent<R> | PeriodicFailedEvent,
  ) => void;
  let runs = 0;
  let waiters: Array<{ resolve: (r: R) => void; reject: (e: unknown) => void }> = [];

  const task: LoopedTask = {
    name,
    intervalMs,
    primaryOnly,
    busy: false,
    async execute(run) {
      const workerId = run.worker.id;
      const started = Date.now();
      emit(name, `${name}.started`, { workerId });
      try {
        const result = await options.run(run);
        runs++;
        emit(name, `${name}.finished`, { workerId, durationMs: Date.now() - started, result });
        const w = waiters;
        waiters = [];
        for (const { resolve } of w) resolve(result);
      } catch (error) {
        app.logger.error(`periodic task '${name}' failed`, { error });
        emit(name, `${name}.failed`, { workerId, error });
      }
    },
  };
  const periodic = periodicOf(app);
  periodic.tasks.add(task);
  for (const start of periodic.startOnWorkers) start(task);

  return {
    name,
    get runs() {
      return runs;
    },
    nextRun({ timeoutMs = 30_000 } = {}) {
      return new Promise<R>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`periodic task '${name}' did not run within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
          reject,
        });
      });
    },
  };
}

/** One task's loop on one worker. */
class PeriodicLoop {
  private timer: NodeJS.Timeout | null = null;
  private turning: Promise<void> | null = null;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly task: LoopedTask,
    private readonly worker: Worker,
  ) {
    // The first turn comes at once, as the first maintenance tick of a worker used to run it.
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.turning = this.turn()
        .catch((error) => {
          // Not expected (a run's own failure is caught and reported by `execute`).
          this.worker.app.logger.error(`periodic task '${this.task.name}': its loop failed`, { error, worker: this.worker.id });
          return this.task.intervalMs;
        })
        .then((nextInMs) => {
          this.turning = null;
          this.schedule(nextInMs);
        });
    }, delayMs);
  }

  /** Runs the task if it may now; answers how long until the next turn. */
  private async turn(): Promise<number> {
    const { task, worker } = this;
    // Not now (running on another worker of this process, or this worker is not primary): look
    // again after a maintenance interval, so a worker that becomes primary runs a task it has not
    // run yet about when its tick would have, not a whole intervalMs later.
    const notNowMs = Math.min(task.intervalMs, worker.maintenanceIntervalMs);
    if (task.busy) return notNowMs;
    let primary = worker.primary;
    if (task.primaryOnly) {
      // Asked now rather than read from the last tick, so a worker paused past its lease's renewal
      // renews (and may learn it lost) before it acts, even while its tick is held up.
      try {
        primary = await worker.resolvePrimary();
      } catch (error) {
        worker.app.logger.error(`periodic task '${task.name}': asking the election failed; it asks again`, { error, worker: worker.id });
        return notNowMs;
      }
      if (!primary.primary) return notNowMs;
    }
    if (this.stopped || task.busy) return notNowMs;
    const startedAt = performance.now();
    task.busy = true;
    try {
      await task.execute({ app: worker.app, worker: worker.view, primary, signal: this.abort.signal });
    } finally {
      task.busy = false;
    }
    return Math.max(0, startedAt + task.intervalMs - performance.now());
  }

  /** No further turn; a run in flight sees its signal abort. Resolves once that run returned. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort();
    return this.turning ?? Promise.resolve();
  }
}

export interface PeriodicLoops {
  /** Ends every loop of the worker; resolves once the runs in flight returned. */
  stop(): Promise<void>;
}

/**
 * Internal, for `Worker`: once the worker runs, gives every periodic task of its app (including
 * tasks made later) a loop on it. The worker calls `stop()` first thing when it stops.
 */
export function startPeriodicTasks(worker: Worker): PeriodicLoops {
  const periodic = periodicOf(worker.app);
  const loops: PeriodicLoop[] = [];
  const start = (task: LoopedTask) => void loops.push(new PeriodicLoop(task, worker));
  for (const task of periodic.tasks) start(task);
  periodic.startOnWorkers.add(start);
  return {
    async stop() {
      periodic.startOnWorkers.delete(start);
      await Promise.all(loops.map((loop) => loop.stop()));
    },
  };
}

/** A periodic plugin value tied to the one app it is applied to; made by {@link periodicBinding}. */
export interface PeriodicBinding<R> {
  /** For the plugin's `apply`: creates the task on this app. A plugin value serves one app. */
  apply(app: Docket): void;
  /** The app and task the plugin was applied to; DOCKET_PLUGIN_INVALID before `apply`. */
  bound(): { app: Docket; task: PeriodicTask<R> };
}

/**
 * The tie between a periodic plugin value and its one app, for plugins whose factory returns one
 * value per app: `apply` makes the task (refusing a second app), and methods that need the app
 * or the task (`nextRun`, `runNow`, …) get them from `bound()`, which refuses before `apply`.
 * `factory` names the function that makes the plugin, for the message.
 */
export function periodicBinding<R>(factory: string, options: PeriodicTaskOptions<R>): PeriodicBinding<R> {
  const binding = pluginBinding(options.name, factory);
  let task: PeriodicTask<R> | null = null;
  return {
    apply(app) {
      binding.bind(app);
      task = periodicTask(app, options);
    },
    bound() {
      const app = binding.app();
      // `apply` binds the app and then makes the task: a bound app without a task means periodicTask threw in `apply`.
      if (task === null) throw new Error(`${options.name}: the periodic task was not created (periodicTask() failed in apply).`);
      return { app, task };
    },
  };
}
