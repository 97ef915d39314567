import type { AnyJobDefinition } from '../job-definition.js';
import type { JobContext, RunningJob } from '../types.js';
import type { AttemptAbort } from '../worker/attempt-abort.js';

/**
 * Runs one attempt's handler. The worker owns timeouts and cancellation: it aborts the attempt
 * (`abort`, which `ctx.signal` mirrors) with the reason (LimitExceededError, JobCancelledError, WorkerShutdownError); an executor must
 * then settle promptly — a thread is terminated, a process killed, an async handler is given a
 * short grace period and then abandoned (the hard stop).
 */
export interface Executor {
  readonly kind: 'async' | 'thread' | 'process';
  run(definition: AnyJobDefinition, job: RunningJob, ctx: JobContext, abort: AttemptAbort): Promise<unknown>;
  close(): Promise<void>;
}

export interface ExecutorSettings {
  /** Module exporting the job definitions, loaded by thread and process executors. */
  readonly jobsModule: string | null;
  /** How long an aborted async handler may take to wind down before it is abandoned. */
  readonly hardStopGraceMs: number;
  readonly concurrency: number;
  /** When the thread and process executors replace a runner (absent or null: never; the async executor has none). */
  readonly recycle?: RecycleSettings | null;
}

/**
 * When a thread or process is replaced by a fresh one (Celery's `max_tasks_per_child` and
 * `max_memory_per_child`): checked after each attempt it ran, so no attempt is ever cut short.
 */
export interface RecycleSettings {
  /** After this many attempts (null: no count). */
  readonly afterJobs: number | null;
  /**
   * Once its memory after an attempt is above this many MB (null: no mark): a child process's
   * resident set (RSS), a worker thread's V8 heap in use (threads share the process's RSS).
   */
  readonly aboveMemoryMb: number | null;
}
