import type postgres from 'postgres';
import type { Docket } from './app.js';
import type { Json } from './json.js';

/** Every state a job row can be in. `waiting` = the handler returned but a plugin holds the outcome open. */
export const JOB_STATES = ['pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'] as const;
/** The state of a job row: one of {@link JOB_STATES}. */
export type JobState = (typeof JOB_STATES)[number];
/** States a job never leaves. */
export const FINISHED_STATES = ['succeeded', 'failed', 'cancelled'] as const satisfies readonly JobState[];
/** A state a job never leaves: one of {@link FINISHED_STATES}. */
export type FinishedState = (typeof FINISHED_STATES)[number];

/** Limits of each attempt of a job; a limit left out is not enforced. */
export interface JobLimits {
  /** Wall-clock limit of one attempt, in milliseconds: past it `ctx.signal` aborts with a LimitExceededError. */
  timeoutMs?: number;
  /** Heap limit of one attempt, in megabytes (thread and process executors only). */
  memoryMb?: number;
}

/** One failed attempt, kept in `errors` in order. */
export interface JobError {
  attempt: number;
  name: string;
  message: string;
  code?: string;
  stack?: string;
  /** ISO time the attempt failed. */
  at: string;
  /** ISO time the attempt started (on the database clock, as the claim recorded it); absent for errors recorded without an attempt. */
  startedAt?: string;
}

/**
 * How far a job got, as its handler last reported it with `ctx.progress(value, data)`: what
 * `getJob` and `listJobs` show (null until the handler reports). Kept after the attempt ends, and
 * across attempts until a later attempt reports.
 */
export interface JobProgress {
  /** A percentage, 0 to 100. */
  value: number;
  /** What the handler passed beside it (a step, counts), or null. */
  data: Json | null;
  /** The attempt that reported it. */
  attempt: number;
  /** When the handler reported it (the worker's clock). */
  at: Date;
}

/**
 * A job as stored, with its arguments `A` and result `R` (null until it succeeds): what `getJob`
 * and `waitForJob` return. Ids are decimal strings (bigint in the database).
 */
export interface JobRecord<A = unknown, R = unknown> {
  id: string;
  name: string;
  queue: string;
  state: JobState;
  args: A;
  result: R | null;
  errors: JobError[];
  attempt: number;
  maxAttempts: number;
  priority: number;
  meta: Record<string, unknown>;
  limits: JobLimits;
  scheduledAt: Date;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  workerId: string | null;
  /** The handler's last `ctx.progress` report (of this or an earlier attempt), or null. */
  progress: JobProgress | null;
}

declare const resultType: unique symbol;
declare const argsType: unique symbol;

/** A reference to a pushed job; carries the argument and result types for `waitForJob`. */
export interface JobRef<A = unknown, R = unknown> {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  /** True when the push collided with an existing job (a plugin's unique index) and this names that job. */
  readonly duplicate: boolean;
  readonly [argsType]?: A;
  readonly [resultType]?: R;
}

/** What the handler sees of its job while it runs. */
export type RunningJob<A = unknown> = Omit<JobRecord<A, never>, 'result' | 'state' | 'finishedAt' | 'progress'>;

/**
 * Fields plugins add to the handler's context. Augment it from a plugin package:
 * `declare module '@docket/core' { interface JobContextExtensions { log: LogFn } }`
 * and declare the field with `app.defineJobContextField` (made on its first read in an attempt:
 * free for handlers that never read it), or assign it in a `jobContext` tap (run for every attempt).
 */
// biome-ignore lint/suspicious/noEmptyInterface: plugins add their fields by declaration merging, which a type alias cannot take.
export interface JobContextExtensions {}

/**
 * The second argument of a job's handler: the job as it runs, the abort signal to honour, and the
 * fields plugins add (`JobContextExtensions`, absent when the plugin is not installed).
 */
export interface JobContext<A = unknown> extends Partial<JobContextExtensions> {
  /** The job being run (its arguments, attempt, meta, limits). */
  readonly job: RunningJob<A>;
  /** Aborted on timeout, cancellation or worker shutdown; `signal.reason` is the DocketError that says which. */
  readonly signal: AbortSignal;
  /** For `atomic: true` jobs: the transaction the job's completion commits in. */
  readonly sql: postgres.TransactionSql | undefined;
  /** The app the worker runs for; null when the job function is called directly. */
  readonly app: Docket | null;
  /** The id of the worker running the job; null when the job function is called directly. */
  readonly workerId: string | null;
  /**
   * Reports how far the job is: `value` a percentage from 0 to 100, `data` any small JSON beside
   * it (a step name, counts; at most 64 KiB). Returns at once: the worker stores the latest report
   * on the job (`getJob(ref).progress`) at most once per `progressIntervalMs`, and the last one of
   * the attempt always, with its outcome; `app.onProgress` listeners in any process hear each
   * stored report. Throws `InvalidOptionError` for a value out of range and
   * `ArgsNotSerializableError` for data that is not JSON. A no-op when the job function is called
   * directly, and after the attempt ended.
   */
  readonly progress: (value: number, data?: Json) => void;
}

/** A postgres.js pool or a transaction on it: where a statement may run. */
export type SqlClient = postgres.Sql | postgres.TransactionSql;

/**
 * What hooks and plugins see of a worker: who it is, what it serves and its lifetime — not the
 * `Worker` class with its runners and executors.
 */
export interface WorkerView {
  readonly id: string;
  readonly queueNames: readonly string[];
  readonly heartbeatIntervalMs: number;
  readonly maintenanceIntervalMs: number;
  /** Aborted when the worker stops; plugins tie their timers to it. */
  readonly signal: AbortSignal;
  /** The primary-role answer of the latest maintenance tick. */
  readonly primary: { readonly primary: boolean; readonly term: string | null };
  /** Jobs running now on this worker, over all its queues. */
  readonly activeJobs: number;
}

// ---------------------------------------------------------------------------------------------
// What the hooks carry (the hooks and their contexts are in hooks.ts)

/** A row about to be inserted into `jobs`; `beforePush` taps may change any field. */
export interface JobInsert {
  queue: string;
  name: string;
  args: unknown;
  priority: number;
  maxAttempts: number;
  /** Absolute run time, or null for "now + delayMs" on the database clock. */
  scheduledAt: Date | null;
  delayMs: number | null;
  limits: JobLimits;
  meta: Record<string, unknown>;
  /** Plugin options from `JobInvocation.with(key, value)`; not stored by the core. */
  extensions: Record<string, unknown>;
  /** Values for extra `jobs` columns plugins declared with `app.defineJobColumn`. */
  columns: Record<string, unknown>;
  /**
   * Set by a `beforePush` tap that decided this push duplicates an existing job (throttling,
   * debouncing): the row is not inserted and the push answers with a reference to that job.
   */
  duplicateOf?: string;
}

/** A job a push inserted, as `afterPush` and `pushCommitted` taps see it. */
export interface InsertedJob {
  id: string;
  name: string;
  queue: string;
  priority: number;
  scheduledAt: Date;
  /** Position of the row in the push (0 for `push`). */
  index: number;
  /** The row as inserted (after the `beforePush` taps). */
  row: JobInsert;
}

/** How an attempt ended, before it is written. `settle` taps may replace it. */
export type Outcome =
  | { state: 'succeeded'; result: unknown }
  | { state: 'failed'; error: JobError }
  | { state: 'retry'; error: JobError; retryAt: Date }
  | { state: 'cancelled'; error: JobError | null }
  /** Handler done but the job stays open until a plugin calls `app.releaseWaitingJobs`. */
  | { state: 'waiting'; result: unknown };

/** A job ending, as `settle` taps see it (inside the transaction that writes it): the tap may replace `outcome`. */
export interface Settlement {
  readonly job: RunningJob;
  outcome: Outcome;
  /** The handler's context when the outcome comes from an attempt on this worker. */
  readonly ctx: JobContext | null;
}

/** A job whose ending committed, as `afterSettle` taps see it. */
export interface SettledJob {
  readonly job: RunningJob;
  readonly outcome: Outcome;
  readonly finishedAt: Date;
}

/** A job a shaped claim took, with the plugin columns of its row (for usage counters, leases). */
export interface ClaimedJob {
  readonly job: RunningJob;
  readonly columns: Readonly<Record<string, unknown>>;
}

/** Whether a worker holds the primary role, as a `resolvePrimary` tap answers it (every worker is primary, term null, without one). */
export interface PrimaryStatus {
  /** Whether this worker holds the primary role this tick (does the work only one worker should do). */
  readonly primary: boolean;
  /** A fencing token that grows with every new term (null when nothing elects). */
  readonly term: string | null;
}

/**
 * The events plugins publish with `app.emit`, by type. Each plugin declares its own, so that
 * `emit` checks the payload and a tap of the `event` hook narrows by `type`:
 *
 *   declare module '@docket/core' {
 *     interface DocketEventMap { 'reports.ready': ReportReady }
 *   }
 *
 * A type nobody declared does not compile in `emit`, nor in listeners typed by this map (the
 * signals plugin's `on`).
 */
// biome-ignore lint/suspicious/noEmptyInterface: plugins declare their events by declaration merging, which a type alias cannot take.
export interface DocketEventMap {}

/** Any event, declared or not: for a consumer that handles every type (and reads `payload` as unknown). */
export interface AnyDocketEvent {
  readonly type: string;
  readonly payload: unknown;
  readonly source: string;
  readonly at: Date;
}

/** A declared event type. */
export type DocketEventType = keyof DocketEventMap & string;

/** An event as the `event` hook carries it; `DocketEvent` alone is any declared event, narrowed by `type`. */
export type DocketEvent<T extends DocketEventType = DocketEventType> = {
  [K in T]: {
    readonly type: K;
    readonly payload: DocketEventMap[K];
    /** Name of the plugin (or 'core') that emitted it. */
    readonly source: string;
    readonly at: Date;
  };
}[T];
