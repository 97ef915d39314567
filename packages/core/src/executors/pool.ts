/**
 * The parent side shared by the thread and process executors: a pool of runners (worker threads
 * or child processes running `runner.ts`/`runner.js`), one attempt at a time each.
 *
 * Pooling. A runner that finished an attempt cleanly goes back to the pool, idle and unref'd (it
 * never keeps the process alive). Runners are keyed by memory limit: a job without
 * `limits.memoryMb` reuses an unlimited runner, a job with one reuses a runner started with
 * exactly that limit (a heap limit is fixed when a thread or process starts, and the jobs of one
 * queue usually share one limit, so they still get warm runners). The executor never holds more
 * than `concurrency` runners: when it needs a new one and is at the cap, it ends the least
 * recently used idle runner first. Runners are started lazily, on the first attempt that needs
 * one; one that was terminated (abort, crash, memory limit) is simply not returned to the pool,
 * and a new one is started when needed.
 *
 * Recycling (`settings.recycle`). A runner that has run `afterJobs` attempts, or whose memory after
 * an attempt is above `aboveMemoryMb` (the runner measures itself and says so with its result), is
 * ended once that attempt's result is in, instead of going back to the pool, and a replacement
 * with the same memory limit starts at once (warm: it loads the jobs module while it waits). It is
 * checked only between attempts: an attempt is never cut short, and no attempt is sent to a runner
 * that is being replaced, so no job is lost or run twice by a replacement.
 *
 * Aborts. On `ctx.signal` abort the attempt rejects at once with `signal.reason`, the runner is
 * told (its ctx.signal aborts too) and terminated (thread) or killed (process); it is never
 * reused. (`hardStopGraceMs` is the async executor's: these executors can stop a handler.)
 *
 * What a handler sees in a runner: `ctx.job` (a structured clone), `ctx.signal`, `ctx.workerId`;
 * `ctx.app` is null, `ctx.sql` undefined (`atomic` has no transaction here), and fields plugins
 * add to the context in the worker do not cross. Thrown errors come back rebuilt (runner.ts):
 * retry policies match them by predicate (name, message, code), not by class.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ClosedError, ExecutorFailedError, LimitExceededError } from '../errors.js';
import type { AnyJobDefinition } from '../job-definition.js';
import type { JobContext, RunningJob } from '../types.js';
import type { AttemptAbort } from '../worker/attempt-abort.js';
import type { Executor, ExecutorSettings } from './executor.js';
import { type ChildMessage, deserializeError, deserializeThrown, jobsModuleUrl, type ParentMessage, serializeError } from './runner.js';

/**
 * The runner module next to this one: `runner.ts` when this file runs from source (under tsx or
 * another TypeScript loader), `runner.js` when it runs from the build.
 */
export const runnerUrl: URL = new URL(`./runner${new URL(import.meta.url).pathname.match(/\.[cm]?[jt]s$/)?.[0] ?? '.js'}`, import.meta.url);

/** How a runner ended. */
export interface RunnerEnd {
  /** It ran out of heap under its memory limit. */
  readonly outOfMemory: boolean;
  /** For people: 'exited with code 1', 'was killed by SIGSEGV', with the error when there was one. */
  readonly description: string;
  readonly cause?: unknown;
}

export interface RunnerEvents {
  message(message: ChildMessage): void;
  /** Called once, when the thread or process is gone. */
  end(end: RunnerEnd): void;
}

/** One thread or process, as the pool drives it. */
export interface RunnerHandle {
  /** Sends a message; throws when it cannot be serialised. */
  send(message: ParentMessage): void;
  /** Ends it now; `end` follows. */
  stop(): void;
  ref(): void;
  unref(): void;
}

interface Attempt {
  start(): void;
  message(message: ChildMessage): void;
  end(end: RunnerEnd): void;
}

class Runner {
  state: 'starting' | 'idle' | 'busy' | 'stopping' | 'ended' = 'starting';
  attempt: Attempt | null = null;
  lastUsed = Date.now();
  /** It loaded the jobs module and said 'ready'. */
  ready = false;
  /** Attempts it finished cleanly (for `recycle.afterJobs`). */
  jobs = 0;
  /** Its memory after its latest attempt, in bytes, when `recycle.aboveMemoryMb` asks for it. */
  memory: number | null = null;
  handle!: RunnerHandle;
  readonly ended: Promise<void>;
  private resolveEnded!: () => void;

  constructor(readonly memoryMb: number | undefined) {
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  markEnded(): void {
    this.state = 'ended';
    this.resolveEnded();
  }
}

let attemptIds = 0;

export abstract class PooledExecutor implements Executor {
  abstract readonly kind: 'thread' | 'process';
  /** 'a worker thread' / 'a child process', for messages. */
  protected abstract readonly noun: string;
  protected readonly jobsModule: string;
  private readonly runners = new Set<Runner>();
  private idle: Runner[] = [];
  private closed = false;
  /** Runners replaced by `recycle` so far, for tests and metrics. */
  recycled = 0;

  constructor(readonly settings: ExecutorSettings) {
    if (!settings.jobsModule) throw new ExecutorFailedError('The thread and process executors need `jobsModule`.');
    this.jobsModule = jobsModuleUrl(settings.jobsModule);
  }

  /** Starts a thread or process running the runner with this heap limit, reporting to `events`. */
  protected abstract spawn(memoryMb: number | undefined, events: RunnerEvents): RunnerHandle;

  /** Threads and processes alive now (busy, idle or starting), for tests and metrics. */
  get size(): number {
    let n = 0;
    for (const r of this.runners) if (r.state !== 'stopping' && r.state !== 'ended') n++;
    return n;
  }

  run(definition: AnyJobDefinition, job: RunningJob, ctx: JobContext, abort: AttemptAbort): Promise<unknown> {
    const { signal } = abort;
    if (this.closed) return Promise.reject(new ClosedError(`The ${this.kind} executor is closed; job '${job.name}' (${job.id}) was not started.`));
    if (signal.aborted) return Promise.reject(signal.reason);
    const memoryMb = job.limits.memoryMb;
    let runner: Runner;
    try {
      runner = this.acquire(memoryMb);
    } catch (error) {
      return Promise.reject(
        new ExecutorFailedError(`Job '${job.name}' (${job.id}) could not start ${this.noun}: ${(error as Error)?.message ?? String(error)}`, {
          cause: error,
        }),
      );
    }
    const id = ++attemptIds;
    const label = `Job '${job.name}' (${job.id})`;

    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      const finish = (settle: () => void) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (runner.attempt === attempt) runner.attempt = null;
        settle();
      };
      const onAbort = () => {
        finish(() => reject(signal.reason));
        try {
          runner.handle.send({ type: 'abort', id, reason: serializeError(signal.reason) });
        } catch {
          // It is being stopped anyway.
        }
        this.retire(runner);
      };
      const attempt: Attempt = {
        start: () => {
          if (settled) return;
          try {
            runner.handle.send({
              type: 'run',
              id,
              name: definition.jobName,
              args: job.args,
              job: plainJob(job),
              workerId: ctx.workerId,
              measure: this.settings.recycle?.aboveMemoryMb != null,
            });
          } catch (error) {
            finish(() =>
              reject(new ExecutorFailedError(`${label} could not be sent to ${this.noun}: ${(error as Error).message}`, { cause: error })),
            );
            this.release(runner);
          }
        },
        message: (message) => {
          if (message.type === 'load-failed') {
            const cause = deserializeError(message.error);
            finish(() =>
              reject(
                new ExecutorFailedError(`${label} could not run: ${this.noun} failed to load jobsModule ${this.jobsModule}: ${cause.message}`, {
                  cause,
                }),
              ),
            );
            this.retire(runner);
          } else if (message.type === 'progress' && message.id === id) {
            // Checked in the runner already; the worker's ctx.progress stores it.
            if (!settled) ctx.progress(message.value, message.data === null ? undefined : JSON.parse(message.data));
          } else if (message.type === 'done' && message.id === id) {
            if (message.memory !== undefined) runner.memory = message.memory;
            if (message.ok) finish(() => resolve(message.result));
            else finish(() => reject(deserializeThrown(message.error)));
            this.release(runner);
          }
        },
        end: (end) => {
          if (end.outOfMemory && memoryMb !== undefined) {
            finish(() =>
              reject(
                new LimitExceededError(`${label} exceeded its memory limit of ${memoryMb} MB and was stopped.`, {
                  details: { limit: 'memoryMb', value: memoryMb },
                }),
              ),
            );
          } else {
            const when = runner.ready ? 'while it ran' : 'before it could run';
            finish(() => reject(new ExecutorFailedError(`${label} failed: ${this.noun} ${end.description} ${when}.`, { cause: end.cause })));
          }
        },
      };
      runner.attempt = attempt;
      signal.addEventListener('abort', onAbort, { once: true });
      runner.handle.ref();
      if (runner.state === 'busy') attempt.start(); // warm runner; a starting one starts it on 'ready'
    });
  }

  /**
   * An idle runner for this memory limit, or a replacement still starting that no attempt took yet
   * (the attempt starts when it is ready), or a new one (ending an idle one first when at the cap).
   */
  private acquire(memoryMb: number | undefined): Runner {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const runner = this.idle[i];
      if (runner.memoryMb === memoryMb) {
        this.idle.splice(i, 1);
        runner.state = 'busy';
        return runner;
      }
    }
    for (const runner of this.runners) {
      if (runner.state === 'starting' && runner.attempt === null && runner.memoryMb === memoryMb) return runner;
    }
    if (this.size >= this.settings.concurrency && this.idle.length > 0) {
      this.retire(this.idle.reduce((a, b) => (a.lastUsed <= b.lastUsed ? a : b)));
    }
    return this.start(memoryMb);
  }

  private start(memoryMb: number | undefined): Runner {
    const runner = new Runner(memoryMb);
    runner.handle = this.spawn(memoryMb, {
      message: (message) => {
        if (message.type === 'ready') {
          runner.ready = true;
          if (runner.state !== 'starting') return;
          if (runner.attempt === null) {
            // A replacement no attempt has taken yet: it waits in the pool.
            this.makeIdle(runner);
            return;
          }
          runner.state = 'busy';
          runner.attempt.start();
          return;
        }
        if (runner.attempt) runner.attempt.message(message);
        else if (message.type === 'load-failed') this.retire(runner); // a replacement that cannot load: the next attempt starts another and reports why
      },
      end: (end) => {
        this.runners.delete(runner);
        this.idle = this.idle.filter((r) => r !== runner);
        const attempt = runner.attempt;
        runner.attempt = null;
        runner.markEnded();
        attempt?.end(end);
      },
    });
    this.runners.add(runner);
    return runner;
  }

  /**
   * Back to the pool after a clean attempt (or ended, when the pool is closed or full; or replaced,
   * when `recycle` says it has served its time).
   */
  private release(runner: Runner): void {
    if (runner.state !== 'busy') return;
    runner.jobs++;
    if (this.closed) {
      this.retire(runner);
      return;
    }
    if (this.dueForRecycling(runner)) {
      this.recycled++;
      this.retire(runner);
      // Warm at once; unref'd until an attempt takes it, like an idle runner.
      this.start(runner.memoryMb).handle.unref();
      return;
    }
    this.makeIdle(runner);
  }

  private makeIdle(runner: Runner): void {
    runner.state = 'idle';
    runner.lastUsed = Date.now();
    runner.handle.unref();
    this.idle.push(runner);
    while (this.idle.length > this.settings.concurrency) this.retire(this.idle[0]);
  }

  private dueForRecycling(runner: Runner): boolean {
    const recycle = this.settings.recycle;
    if (recycle === null || recycle === undefined) return false;
    if (recycle.afterJobs !== null && runner.jobs >= recycle.afterJobs) return true;
    return recycle.aboveMemoryMb !== null && runner.memory !== null && runner.memory > recycle.aboveMemoryMb * 1024 * 1024;
  }

  /** Ends a runner for good: it is never reused. */
  private retire(runner: Runner): void {
    this.idle = this.idle.filter((r) => r !== runner);
    if (runner.state === 'stopping' || runner.state === 'ended') return;
    runner.state = 'stopping';
    try {
      runner.handle.ref(); // so that close() waiting for its end keeps the process alive
      runner.handle.stop();
    } catch {
      // Already gone: its `end` follows or has happened.
    }
  }

  /** Terminates every thread or process (an attempt still running rejects with ExecutorFailedError). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.runners];
    for (const runner of all) this.retire(runner);
    await Promise.all(all.map((r) => r.ended));
  }
}

/** The serialisable fields of a running job, as the handler sees them in the runner. */
function plainJob(job: RunningJob): RunningJob {
  return {
    id: job.id,
    name: job.name,
    queue: job.queue,
    args: job.args,
    errors: job.errors,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    priority: job.priority,
    meta: job.meta,
    limits: job.limits,
    scheduledAt: job.scheduledAt,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    workerId: job.workerId,
  };
}

// -------------------------------------------------------------------------------------------------
// Running TypeScript in the children

/** Flags of this process that must not reach a runner: debugger ports, test and watch modes, -e/-p code. */
export function runnerExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  const args = execArgv[Symbol.iterator]();
  for (const arg of args) {
    if (/^--(inspect|debug|test|watch)/.test(arg)) continue;
    if (/^(-e|--eval|-p|--print|-pe)$/.test(arg)) {
      args.next(); // and its code
      continue;
    }
    if (/^(--eval|--print)=/.test(arg)) continue;
    out.push(arg);
  }
  return out;
}

/** True when this process loads TypeScript through tsx (`--import tsx`, the `tsx` command, NODE_OPTIONS). */
export function usesTsx(): boolean {
  return [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((arg) => /(^|[\s=/\\@])tsx([\s/\\@]|$)/.test(arg));
}

let tsxApi: string | null | undefined;

/**
 * URL of tsx's ESM API (`tsx/esm/api`), found from this package, the jobs module or the working
 * directory; null when it cannot be found. Worker threads need it: on Node before 22.22.3 / 24.11.1
 * tsx's `--import` hook registers itself only on the main thread, so a thread must register it.
 */
export function tsxApiUrl(jobsModule: string): string | null {
  if (tsxApi !== undefined) return tsxApi;
  const bases = [import.meta.url, pathToFileURL(join(process.cwd(), 'package.json')).href];
  if (jobsModule.startsWith('file:')) bases.splice(1, 0, jobsModule);
  for (const base of bases) {
    try {
      const manifest = createRequire(base).resolve('tsx/package.json');
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: Record<string, unknown> };
      const entry = pkg.exports?.['./esm/api'] as { import?: string | { default?: string } } | string | undefined;
      const target = typeof entry === 'string' ? entry : typeof entry?.import === 'string' ? entry.import : entry?.import?.default;
      if (typeof target === 'string') return (tsxApi = pathToFileURL(join(dirname(manifest), target)).href);
    } catch {
      // Not found from this base; try the next.
    }
  }
  return (tsxApi = null);
}

export function runnerPath(): string {
  return fileURLToPath(runnerUrl);
}
