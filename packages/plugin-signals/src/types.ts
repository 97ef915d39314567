import type { DocketEventMap, DocketEventType, JobError } from '@docket/core';

/** The job a lifecycle signal is about (fetch the rest with `app.getJob(job.id)`). */
export interface SignalJob {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  /** The attempt (1 for the first run). */
  readonly attempt: number;
}

interface Base<T extends string> {
  readonly type: T;
  /** When it happened, on the clock of the process where it happened. */
  readonly at: Date;
}

/** A job was pushed and its transaction committed (one signal per inserted job; duplicates send none). */
export interface EnqueuedSignal extends Base<'enqueued'> {
  readonly job: Omit<SignalJob, 'attempt'>;
  readonly priority: number;
  /** When the job becomes runnable (database clock). */
  readonly scheduledAt: Date;
}

/** A worker is about to run the handler (the `jobStart` hook). */
export interface ExecutingSignal extends Base<'executing'> {
  readonly job: SignalJob;
  readonly workerId: string | null;
}

/** The job succeeded (its outcome committed). */
export interface SucceededSignal extends Base<'succeeded'> {
  readonly job: SignalJob;
}

/** The job failed for good (no attempt left, or an error that is not retried). */
export interface FailedSignal extends Base<'failed'> {
  readonly job: SignalJob;
  readonly error: JobError;
}

/** The attempt failed and the job will run again at `retryAt`. */
export interface RetryingSignal extends Base<'retrying'> {
  readonly job: SignalJob;
  readonly error: JobError;
  readonly retryAt: Date;
}

/** The job was cancelled (while pending, waiting or running). */
export interface CancelledSignal extends Base<'cancelled'> {
  readonly job: SignalJob;
  readonly error: JobError | null;
}

/**
 * Jobs lost by a dead or stuck worker were put back in the queue: a plugin event whose type is
 * `recovered` or ends in `.recovered` (plugin-recovery emits `recovery.recovered`), with the jobs it
 * lists under `payload.jobs`.
 */
export interface RecoveredSignal extends Base<'recovered'> {
  /** The plugin event's own type, e.g. 'recovery.recovered'. */
  readonly event: string;
  readonly source: string;
  readonly jobs: readonly SignalJob[];
  /** The event's payload as the plugin emitted it. */
  readonly payload: unknown;
}

/** Any event a plugin published with `app.emit` (the core's `event` hook), under its own type. */
export interface PluginSignal<T extends string = string> extends Base<T> {
  /** The plugin (or 'core') that emitted it. */
  readonly source: string;
  /** Typed by the emitting plugin's declaration in `DocketEventMap`. */
  readonly payload: T extends DocketEventType ? DocketEventMap[T] : unknown;
}

/** The typed signals, by type. Other types are plugin events (`PluginSignal`). */
export interface SignalMap {
  enqueued: EnqueuedSignal;
  executing: ExecutingSignal;
  succeeded: SucceededSignal;
  failed: FailedSignal;
  retrying: RetryingSignal;
  cancelled: CancelledSignal;
  recovered: RecoveredSignal;
}

export type LifecycleSignal = SignalMap[keyof SignalMap];
export type AnySignal = LifecycleSignal | PluginSignal;
export type SignalType = keyof SignalMap;

/**
 * The plugin event types a listener can name: every type a plugin declared in `DocketEventMap`.
 * One that shadows a lifecycle signal's name arrives as `<source>.<type>` instead.
 */
export type PluginSignalType = Exclude<DocketEventType, SignalType> | `${string}.${Extract<DocketEventType, SignalType>}`;

/** Every type `on`, `next` and `broadcast` accept. A name nobody declared (a typo) does not compile. */
export type ListenableType = SignalType | PluginSignalType;

export type Listener<S> = (signal: S) => unknown;
