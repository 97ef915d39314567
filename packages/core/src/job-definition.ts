import { InvalidJobOptionError } from './errors.js';
import { assertJobName, assertQueueName } from './identifiers.js';
import type { JsonPayload } from './json.js';
import { describe, rejectUnknownKeys } from './options.js';
import { checkProgress } from './progress.js';
import { type RetryOptions, validateRetry } from './retry.js';
import type { JobContext, JobLimits, RunningJob } from './types.js';

/**
 * The function a job runs: it gets the job's arguments (merged over the definition's defaults) and
 * its context, and returns (or resolves with) the result, which is stored as JSON. A throw fails
 * the attempt (retried when attempts remain).
 */
export type JobHandler<A, R> = (args: A, ctx: JobContext<A>) => Promise<R> | R;

/**
 * The options of {@link defineJob}: the job's name and the defaults of every push of it (each can
 * be overridden per push with the `with*` builders). Unknown keys and out-of-range values throw
 * `InvalidJobOptionError` when the job is defined.
 */
export interface JobOptions<A, D extends DefaultArgs<A> | undefined = DefaultArgs<A> | undefined> {
  /** Unique name workers find the handler by. */
  name: string;
  /** The queue its jobs go to. Default 'default'. */
  queue?: string;
  /** Higher runs first. Default 0. */
  priority?: number;
  /** Attempts in all, the first included. Default 1 (no retry). */
  maxAttempts?: number;
  /** Default arguments, merged under the arguments of each push: their keys are optional in `withArgs`. */
  args?: D;
  /** Limits of each attempt (time, memory). Default: none. */
  limits?: JobLimits;
  /** When and how a failed attempt is retried (within `maxAttempts`). */
  retry?: RetryOptions;
  /** Run the handler in a transaction (`ctx.sql`) that commits together with the job's completion. */
  atomic?: boolean;
  /** Stored with each job (JSON), visible to plugins and handlers; merged under `withMeta`. */
  meta?: Record<string, unknown>;
}

const JOB_OPTION_KEYS = ['name', 'queue', 'priority', 'maxAttempts', 'args', 'limits', 'retry', 'atomic', 'meta'] as const;
const LIMIT_KEYS = ['timeoutMs', 'memoryMb'] as const;

/** Everything a push needs besides the arguments; immutable. */
export interface InvocationOptions {
  readonly queue: string;
  readonly priority: number;
  readonly maxAttempts: number;
  readonly scheduledAt: Date | null;
  readonly delayMs: number | null;
  readonly limits: Readonly<JobLimits>;
  readonly meta: Readonly<Record<string, unknown>>;
  /** Options set by plugins' builders (`with(key, value)`); read by their `beforePush` taps, not stored by the core. */
  readonly extensions: Readonly<Record<string, unknown>>;
}

function checkInteger(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidJobOptionError(`${what} must be an integer from ${min} to ${max}, got ${describe(value)}.`);
  }
  return value;
}

function checkLimits(where: string, limits: JobLimits | undefined): JobLimits {
  if (limits === undefined) return {};
  rejectUnknownKeys(`${where}.limits`, limits, LIMIT_KEYS);
  if (limits.timeoutMs !== undefined) checkInteger(`${where}.limits.timeoutMs`, limits.timeoutMs, 1, 2_147_483_647);
  if (limits.memoryMb !== undefined) checkInteger(`${where}.limits.memoryMb`, limits.memoryMb, 8, 1_048_576);
  return { ...limits };
}

function checkMeta(where: string, meta: unknown): Record<string, unknown> {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
    throw new InvalidJobOptionError(`${where} must be a plain object, got ${describe(meta)}.`);
  }
  return meta as Record<string, unknown>;
}

/**
 * A job with its arguments and push options bound: what `push` takes. Every `with*` returns a new
 * invocation (typed `this`, so an invocation still waiting for its arguments stays marked as such
 * through a chain of builders). Plugins may add builders to the prototype (with module
 * augmentation for the types, returning `this`) that call `with(key, value)`.
 */
export class JobInvocation<A = unknown, R = unknown> {
  constructor(
    readonly definition: AnyJobDefinition<A, R>,
    readonly args: A,
    readonly options: InvocationOptions,
  ) {
    Object.freeze(this);
  }

  get name(): string {
    return this.definition.jobName;
  }

  /** A new invocation with `changes` over these options (same definition and arguments): what every builder returns, and what a plugin's builder calls through `with`. */
  protected copy(changes: Partial<InvocationOptions>): this {
    return new JobInvocation(this.definition, this.args, { ...this.options, ...changes }) as this;
  }

  /** Binds the arguments, merged over the definition's defaults (the definition's own `withArgs` types the defaulted keys optional). */
  withArgs(args: A): JobInvocation<A, R> {
    return new JobInvocation(this.definition, mergeArgs(this.definition.defaults.args, args), this.options);
  }
  /** Sets the priority: higher runs first. An integer from -1,000,000 to 1,000,000, else `InvalidJobOptionError`. */
  withPriority(priority: number): this {
    return this.copy({ priority: checkInteger('priority', priority, -1_000_000, 1_000_000) });
  }
  /** Sets the attempts in all, the first included (1 = no retry). An integer from 1 to 1,000,000, else `InvalidJobOptionError`. */
  withMaxAttempts(maxAttempts: number): this {
    return this.copy({ maxAttempts: checkInteger('maxAttempts', maxAttempts, 1, 1_000_000) });
  }
  /** Run at or after `at`, never before; replaces a `withDelay`. An invalid Date throws `InvalidJobOptionError`. */
  withScheduledAt(at: Date): this {
    if (!(at instanceof Date) || Number.isNaN(at.getTime())) {
      throw new InvalidJobOptionError(`scheduledAt must be a valid Date, got ${describe(at)}.`);
    }
    return this.copy({ scheduledAt: at, delayMs: null });
  }
  /** Run no sooner than `ms` milliseconds after the push (measured on the database clock); replaces a `withScheduledAt`. A negative or non-finite `ms` throws `InvalidJobOptionError`. */
  withDelay(ms: number): this {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new InvalidJobOptionError(`delay must be a number of milliseconds ≥ 0, got ${describe(ms)}.`);
    }
    return this.copy({ delayMs: ms, scheduledAt: null });
  }
  /** Pushes to `queue` instead of the definition's queue; an invalid queue name throws. */
  withQueue(queue: string): this {
    return this.copy({ queue: assertQueueName(queue) });
  }
  /** Merges `limits` over the definition's (per key); unknown keys or out-of-range values throw `InvalidJobOptionError`. */
  withLimits(limits: JobLimits): this {
    return this.copy({ limits: { ...this.options.limits, ...checkLimits('withLimits', limits) } });
  }
  /** Merge into the job's `meta` (stored with the job, visible to plugins and handlers). */
  withMeta(meta: Record<string, unknown>): this {
    return this.copy({ meta: { ...this.options.meta, ...checkMeta('withMeta', meta) } });
  }
  /** Set a plugin option (namespaced by the plugin, e.g. 'unique.key'); read by that plugin's `beforePush`. */
  with(key: string, value: unknown): this {
    return this.copy({ extensions: { ...this.options.extensions, [key]: value } });
  }
}

function mergeArgs<A>(defaults: unknown, args: A): A {
  if (defaults === undefined) return args;
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return args;
  return { ...defaults, ...args } as A;
}

export interface JobDefinitionDefaults<A> {
  readonly queue: string;
  readonly priority: number;
  readonly maxAttempts: number;
  readonly args: DefaultArgs<A> | undefined;
  readonly limits: Readonly<JobLimits>;
  readonly meta: Readonly<Record<string, unknown>>;
}

/**
 * Nothing when the handler's arguments and result are JSON (`JsonPayload`); otherwise a property
 * the handler lacks, named for what is wrong and typed with the offending parts marked
 * `not JSON: …`, so that the compiler's error points at them. (A constraint `A extends
 * JsonPayload<A>` would be circular.)
 */
export type JsonHandlerCheck<A, R> = [A] extends [JsonPayload<A>]
  ? [R] extends [JsonPayload<R>]
    ? unknown
    : { readonly resultNotJson: JsonPayload<R> }
  : { readonly argumentsNotJson: JsonPayload<A> };

/** What `args` in `defineJob`'s options may hold: some of the arguments' keys. */
export type DefaultArgs<A> = A extends object ? Partial<A> : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The arguments a push gives when the definition has defaults `D`: the keys `D` holds become optional. */
export type ArgsInput<A, D> = [D] extends [undefined]
  ? A
  : A extends object
    ? Simplify<Omit<A, keyof D & keyof A> & Partial<Pick<A, keyof D & keyof A>>>
    : A;

declare const argsRequired: unique symbol;

/** The message a push of a job that still needs its arguments fails to compile with. */
export type ArgsRequiredMessage = 'this job needs arguments: push job.withArgs({ … })';

/**
 * Whether a job taking `I` can be pushed with no arguments: `undefined` when it can (its arguments
 * are void, optional, or all have defaults), the message when it cannot. `any` stays `any`, so
 * `JobDefinition<any, any>` (a worker's list of jobs) accepts every definition.
 */
export type ArgsRequired<I> = 0 extends 1 & I
  ? I
  : undefined extends I
    ? undefined
    : Record<never, never> extends I
      ? undefined
      : ArgsRequiredMessage;

/** An invocation made from a definition without `withArgs`: marked when the job needs arguments, so `push` refuses it. */
export type InvocationOf<A, R, I> =
  ArgsRequired<I> extends undefined ? JobInvocation<A, R> : JobInvocation<A, R> & { readonly [argsRequired]: ArgsRequiredMessage };

/**
 * A job: still a plain async function (calling it runs the handler now, in this process, with no
 * queue), plus the builders that make a `JobInvocation` to push. `A` is what the handler
 * receives, `R` what it returns, `I` what a push gives (`A` with the defaulted keys optional).
 */
export interface JobDefinition<A = unknown, R = unknown, I = A> {
  (args: I): Promise<R>;
  readonly jobName: string;
  readonly handler: JobHandler<A, R>;
  readonly defaults: JobDefinitionDefaults<A>;
  readonly retry: RetryOptions;
  readonly atomic: boolean;
  /** Type-level only: set when the job cannot be pushed without `withArgs` (see `Pushable`). */
  readonly [argsRequired]?: ArgsRequired<I>;
  /** An invocation with the default arguments (for jobs whose arguments all have defaults). */
  invocation(): InvocationOf<A, R, I>;
  /** An invocation with these arguments, merged over the default arguments (the defaulted keys may be left out). */
  withArgs(args: I): JobInvocation<A, R>;
  /** An invocation with this priority (higher runs first); see {@link JobInvocation.withPriority}. */
  withPriority(priority: number): InvocationOf<A, R, I>;
  /** An invocation with this many attempts in all; see {@link JobInvocation.withMaxAttempts}. */
  withMaxAttempts(maxAttempts: number): InvocationOf<A, R, I>;
  /** An invocation that runs at or after `at`; see {@link JobInvocation.withScheduledAt}. */
  withScheduledAt(at: Date): InvocationOf<A, R, I>;
  /** An invocation that runs no sooner than `ms` milliseconds after the push; see {@link JobInvocation.withDelay}. */
  withDelay(ms: number): InvocationOf<A, R, I>;
  /** An invocation pushed to `queue`; see {@link JobInvocation.withQueue}. */
  withQueue(queue: string): InvocationOf<A, R, I>;
  /** An invocation with `limits` merged over the definition's; see {@link JobInvocation.withLimits}. */
  withLimits(limits: JobLimits): InvocationOf<A, R, I>;
  /** An invocation with `meta` merged into the job's meta; see {@link JobInvocation.withMeta}. */
  withMeta(meta: Record<string, unknown>): InvocationOf<A, R, I>;
  /** An invocation with a plugin option set; see {@link JobInvocation.with}. */
  with(key: string, value: unknown): InvocationOf<A, R, I>;
}

/**
 * A job definition whatever its push input `I` (and, unless given, its argument and result types):
 * for code that holds the definitions of many jobs, such as a worker's list of jobs.
 */
// biome-ignore lint/suspicious/noExplicitAny: any job must fit: the argument type is invariant, so with `unknown` (or `never`) no definition would.
export type AnyJobDefinition<A = any, R = any> = JobDefinition<A, R, any>;

/** The argument type of a job definition or invocation (what its handler receives); `never` for anything else. */
export type ArgsOf<J> = J extends AnyJobDefinition<infer A, unknown> ? A : J extends JobInvocation<infer A, unknown> ? A : never;
/** The result type of a job definition or invocation (what its handler returns, resolved); `never` for anything else. */
export type ResultOf<J> = J extends AnyJobDefinition<infer _A, infer R> ? R : J extends JobInvocation<infer _A, infer R> ? R : never;

/**
 * What `push` accepts: an invocation with its arguments, or a definition (or an invocation made
 * from one without `withArgs`) whose arguments are void, optional or all defaulted. Pushing a job
 * that needs arguments without them fails to compile with `ArgsRequiredMessage`.
 */
// biome-ignore lint/suspicious/noExplicitAny: the defaults mean "any job" (`Pushable` alone); the argument type is invariant, so `unknown` would refuse every job.
export type Pushable<A = any, R = any> = (JobInvocation<A, R> | AnyJobDefinition<A, R>) & { readonly [argsRequired]?: undefined };

/**
 * Defines a job. Its arguments (`A`, from the handler's parameter) and result (`R`) must be JSON
 * (`JsonCompatible`): a Date, Map, BigInt or function in them fails to compile. Default `args`
 * in the options make those keys optional when pushing.
 */
export function defineJob<A = void, R = unknown, D extends DefaultArgs<A> | undefined = undefined>(
  options: JobOptions<A, D>,
  handler: JobHandler<A, R> & JsonHandlerCheck<A, R>,
): JobDefinition<A, R, ArgsInput<A, D>> {
  rejectUnknownKeys('defineJob(options, handler)', options, JOB_OPTION_KEYS);
  const where = `job '${String(options.name)}'`;
  const name = assertJobName(options.name);
  if (typeof handler !== 'function') {
    throw new InvalidJobOptionError(`defineJob('${name}') needs a handler function as its second argument.`);
  }
  const defaults: JobDefinitionDefaults<A> = Object.freeze({
    queue: assertQueueName(options.queue ?? 'default'),
    priority: options.priority === undefined ? 0 : checkInteger(`${where}: priority`, options.priority, -1_000_000, 1_000_000),
    maxAttempts: options.maxAttempts === undefined ? 1 : checkInteger(`${where}: maxAttempts`, options.maxAttempts, 1, 1_000_000),
    args: options.args as DefaultArgs<A> | undefined,
    limits: Object.freeze(checkLimits(where, options.limits)),
    meta: Object.freeze(options.meta === undefined ? {} : { ...checkMeta(`${where}: meta`, options.meta) }),
  });
  const retry = Object.freeze(validateRetry(where, options.retry));

  const run = (async (args: A) => handler(mergeArgs(defaults.args, args), localContext(name, args))) as unknown as JobDefinition<
    A,
    R,
    ArgsInput<A, D>
  >;
  const base = (): JobInvocation<A, R> =>
    new JobInvocation<A, R>(run, (defaults.args ?? {}) as A, {
      queue: defaults.queue,
      priority: defaults.priority,
      maxAttempts: defaults.maxAttempts,
      scheduledAt: null,
      delayMs: null,
      limits: defaults.limits,
      meta: defaults.meta,
      extensions: {},
    });
  Object.assign(run, {
    jobName: name,
    handler,
    defaults,
    retry,
    atomic: options.atomic === true,
    invocation: base,
    withArgs: (args: A) => base().withArgs(args),
    withPriority: (priority: number) => base().withPriority(priority),
    withMaxAttempts: (n: number) => base().withMaxAttempts(n),
    withScheduledAt: (at: Date) => base().withScheduledAt(at),
    withDelay: (ms: number) => base().withDelay(ms),
    withQueue: (queue: string) => base().withQueue(queue),
    withLimits: (limits: JobLimits) => base().withLimits(limits),
    withMeta: (meta: Record<string, unknown>) => base().withMeta(meta),
    with: (key: string, value: unknown) => base().with(key, value),
  });
  return Object.freeze(run);
}

/** Whether `value` is a job made with {@link defineJob} (a function with a `jobName` and a `handler`). */
export function isJobDefinition(value: unknown): value is AnyJobDefinition<unknown, unknown> {
  return typeof value === 'function' && typeof (value as { jobName?: unknown }).jobName === 'string' && 'handler' in value;
}

export function toInvocation(job: Pushable): JobInvocation {
  if (job instanceof JobInvocation) return job;
  if (isJobDefinition(job)) return job.invocation();
  throw new InvalidJobOptionError(`push() takes a job made with defineJob (or its withArgs(...)), got ${describe(job)}.`);
}

function localContext<A>(name: string, args: A): JobContext<A> {
  const now = new Date();
  const job: RunningJob<A> = {
    id: 'local',
    name,
    queue: 'local',
    args,
    errors: [],
    attempt: 1,
    maxAttempts: 1,
    priority: 0,
    meta: {},
    limits: {},
    scheduledAt: now,
    createdAt: now,
    startedAt: now,
    workerId: null,
  };
  // Called directly there is no job to store progress on: reports are checked, then dropped.
  const progress = (value: number, data?: unknown) => void checkProgress(value, data);
  return { job, signal: new AbortController().signal, progress, sql: undefined, app: null, workerId: null };
}
