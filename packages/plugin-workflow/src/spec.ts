/**
 * Stored job specs: a step, a callback or a subtask is kept as JSON until it becomes runnable, then
 * rebuilt into a `JobInvocation` and pushed with `app.pushMany` (so every plugin's push hooks see it
 * like any other push).
 */
import {
  type Docket,
  defineJob,
  InvalidJobOptionError,
  isJobDefinition,
  type JobDefinition,
  JobInvocation,
  type JobLimits,
  type Pushable,
  toJsonText,
} from '@docket/core';

/** A job as stored until it is pushed. Plain JSON. */
export interface JobSpec {
  name: string;
  queue: string;
  /** The bound arguments (used when the step's input is its own arguments). */
  args: unknown;
  /** The definition's default arguments, merged under an input that replaces `args` (as `withArgs` does). */
  defaultArgs: unknown;
  priority: number;
  maxAttempts: number;
  /** ISO time, or null. */
  scheduledAt: string | null;
  /** Delay counted from the moment the job is pushed (when the step becomes runnable). */
  delayMs: number | null;
  limits: JobLimits;
  meta: Record<string, unknown>;
  extensions: Record<string, unknown>;
}

export function toInvocation(job: Pushable, what: string): JobInvocation {
  if (job instanceof JobInvocation) return job;
  if (isJobDefinition(job)) return job.invocation();
  throw new InvalidJobOptionError(`${what} must be a job made with defineJob (or its withArgs(...)), got ${describeValue(job)}.`);
}

/** Turns a job into its stored spec, refusing what cannot be stored as JSON now (not later, in a completion). */
export function toSpec(job: Pushable, what: string): JobSpec {
  const invocation = toInvocation(job, what);
  const { options } = invocation;
  const name = invocation.name;
  toJsonText(invocation.args, `Arguments of ${what} ('${name}')`);
  toJsonText(options.meta, `Meta of ${what} ('${name}')`);
  toJsonText(options.extensions, `Plugin options (with(key, value)) of ${what} ('${name}')`);
  const defaults = (invocation.definition as JobDefinition).defaults;
  return {
    name,
    queue: options.queue,
    args: invocation.args ?? null,
    defaultArgs: defaults?.args ?? null,
    priority: options.priority,
    maxAttempts: options.maxAttempts,
    scheduledAt: options.scheduledAt ? options.scheduledAt.toISOString() : null,
    delayMs: options.delayMs,
    limits: { ...options.limits },
    meta: { ...options.meta },
    extensions: { ...options.extensions },
  };
}

/**
 * Specs stored in the plugin's tables hold their arguments (and the definition's default
 * arguments) as the app's payload codec encodes them, so an encryption plugin leaves no plaintext
 * there; `openSpecs` turns them back before a spec is pushed (the push encodes them again).
 */
export async function sealSpecs(app: Docket, specs: readonly JobSpec[]): Promise<JobSpec[]> {
  if (!app.codec.active) return specs.slice();
  const coded = await app.codec.encodeArgs(specs.flatMap((s) => [s.args, s.defaultArgs]));
  return specs.map((s, i) => ({ ...s, args: coded[2 * i] ?? null, defaultArgs: coded[2 * i + 1] ?? null }));
}

export async function openSpecs(app: Docket, specs: readonly JobSpec[]): Promise<JobSpec[]> {
  if (!app.codec.active) return specs.slice();
  const plain = await app.codec.decodeArgs(specs.flatMap((s) => [s.args, s.defaultArgs]));
  return specs.map((s, i) => ({ ...s, args: plain[2 * i] ?? null, defaultArgs: plain[2 * i + 1] ?? null }));
}

const stubs = new Map<string, JobDefinition>();

/** A definition that only names the job: the worker that runs it has the real one. */
function stub(name: string): JobDefinition {
  let definition = stubs.get(name);
  if (!definition) {
    definition = defineJob<unknown, unknown>({ name }, () => {
      throw new InvalidJobOptionError(`Job '${name}' was rebuilt from a stored workflow spec and cannot run here; a worker runs it.`);
    }) as JobDefinition;
    stubs.set(name, definition);
  }
  return definition;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;
}

/** Merges a definition's default arguments under `input`, like `withArgs` does. */
export function withDefaults(defaultArgs: unknown, input: unknown): unknown {
  if (isPlainObject(defaultArgs) && isPlainObject(input)) return { ...defaultArgs, ...input };
  return input;
}

/**
 * Rebuilds the invocation of a stored spec. `input`, when given, replaces the arguments (a chain
 * step gets the previous result, a chord callback the list of results, a callback the result).
 */
export function fromSpec(spec: JobSpec, meta: Record<string, unknown>, input?: { value: unknown }): JobInvocation {
  const args = input ? withDefaults(spec.defaultArgs, input.value) : spec.args;
  return new JobInvocation(stub(spec.name), args, {
    queue: spec.queue,
    priority: spec.priority,
    maxAttempts: spec.maxAttempts,
    scheduledAt: spec.scheduledAt ? new Date(spec.scheduledAt) : null,
    delayMs: spec.delayMs,
    limits: spec.limits ?? {},
    meta: { ...spec.meta, ...meta },
    extensions: spec.extensions ?? {},
  });
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}
