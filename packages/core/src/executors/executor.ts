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
}
