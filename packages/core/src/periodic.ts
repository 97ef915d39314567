import type { Docket } from './app.js';
import { PluginInvalidError } from './errors.js';
import type { MaintenanceContext } from './hooks.js';
import { integerOption, booleanOption, rejectUnknownKeys } from './options.js';

export interface PeriodicRun {
  readonly app: Docket;
  readonly maintenance: MaintenanceContext;
  /** Aborted when the worker stops: long runs should check it between batches. */
  readonly signal: AbortSignal;
}

export interface PeriodicTaskOptions<R> {
  /** Name used for events (`<name>.finished`) and tap names; usually the plugin's name. */
  name: string;
  /** Minimum time between two runs on one worker. */
  intervalMs: number;
  /** Skip the run on workers that are not primary (when an election plugin answers). Default true. */
  primaryOnly?: boolean;
  run(ctx: PeriodicRun): Promise<R>;
}

export interface PeriodicTask<R> {
  readonly name: string;
  /** Resolves with the result of the next run that finishes on this process (for tests and tooling). */
  nextRun(options?: { timeoutMs?: number }): Promise<R>;
  readonly runs: number;
}

/**
 * The skeleton shared by periodic plugins: runs on the maintenance tick of every worker at most
 * every `intervalMs`, only on the primary worker when `primaryOnly`, never
 * overlapping itself, stopped with the worker; emits `<name>.started|finished|failed` events and
 * lets tests wait for a run instead of sleeping.
 */
export function periodicTask<R>(app: Docket, options: PeriodicTaskOptions<R>): PeriodicTask<R> {
  rejectUnknownKeys(`periodicTask('${options.name}')`, options, ['name', 'intervalMs', 'primaryOnly', 'run']);
  const intervalMs = integerOption(`periodicTask('${options.name}')`, 'intervalMs', options.intervalMs, 1000, { min: 1 });
  const primaryOnly = booleanOption(`periodicTask('${options.name}')`, 'primaryOnly', options.primaryOnly, true);
  const lastRun = new WeakMap<object, number>();
  let running = false;
  let runs = 0;
  let waiters: Array<{ resolve: (r: R) => void; reject: (e: unknown) => void }> = [];

  app.hooks.maintenance.tapPromise(options.name, async (maintenance) => {
    if (running) return;
    if (primaryOnly && !maintenance.primary.primary) return;
    const now = Date.now();
    const last = lastRun.get(maintenance.worker) ?? 0;
    if (now - last < intervalMs) return;
    lastRun.set(maintenance.worker, now);
    running = true;
    const started = Date.now();
    app.emit(options.name, `${options.name}.started`, { workerId: maintenance.worker.id });
    try {
      const result = await options.run({ app, maintenance, signal: maintenance.signal });
      runs++;
      app.emit(options.name, `${options.name}.finished`, { workerId: maintenance.worker.id, durationMs: Date.now() - started, result });
      const w = waiters;
      waiters = [];
      for (const { resolve } of w) resolve(result);
    } catch (error) {
      app.logger.error(`periodic task '${options.name}' failed`, { error });
      app.emit(options.name, `${options.name}.failed`, { workerId: maintenance.worker.id, error });
    } finally {
      running = false;
    }
  });

  return {
    name: options.name,
    get runs() {
      return runs;
    },
    nextRun({ timeoutMs = 30_000 } = {}) {
      return new Promise<R>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`periodic task '${options.name}' did not run within ${timeoutMs} ms`)), timeoutMs);
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
  let bound: { app: Docket; task: PeriodicTask<R> } | null = null;
  return {
    apply(app) {
      if (bound) throw new PluginInvalidError(`${options.name}: one plugin value serves one app; call ${factory}() again for another app.`);
      bound = { app, task: periodicTask(app, options) };
    },
    bound() {
      if (!bound) throw new PluginInvalidError(`${options.name}: the plugin is not registered with an app yet (pass it in \`plugins\`).`);
      return bound;
    },
  };
}
