/**
 * Building flows: named DAG workflows, chains, groups and chords, and the link / linkError
 * callbacks. A flow is a plain, immutable description; `pushWorkflow(app, flow)` stores it and
 * pushes the steps that can run at once.
 */
import { InvalidJobOptionError, InvalidOptionError, type JobDefinition, type JobError, type JobInvocation, type Pushable } from '@docket/core';
import { WorkflowDefinitionError } from './errors.js';
import { META } from './meta.js';
import { describeValue, type JobSpec, toInvocation, toSpec } from './spec.js';

/** A job a flow can hold: a definition (its default arguments) or an invocation (`withArgs(...)` etc.). */
// biome-ignore lint/suspicious/noExplicitAny: the defaults mean "any step"; the argument type is invariant, so `unknown` would refuse every job.
export type Step<A = any, R = any> = JobDefinition<A, R> | JobInvocation<A, R>;
type AnyStep = Step;

/** The result type of a step. */
export type StepResult<S> = S extends JobInvocation<infer _A, infer R> ? R : S extends JobDefinition<infer _A, infer R> ? R : never;
/** The argument type of a step. */
export type StepArgs<S> = S extends JobInvocation<infer A, infer _R> ? A : S extends JobDefinition<infer A, infer _R> ? A : never;

/** What a step type error says: the step does not accept what it would be given. */
export interface ArgsMismatch<Given, Accepts> {
  readonly 'this job does not accept the value it would be given': { readonly given: Given; readonly accepts: Accepts };
}
/** `C` when its arguments accept `In`, else a type no job matches (so the call does not compile). */
export type Accepting<In, C> = [In] extends [StepArgs<C>] ? C : ArgsMismatch<In, StepArgs<C>>;

/** What happens to the rest of a workflow when a step fails (after its retries) or is cancelled. */
export type FailurePolicy = 'fail-fast' | 'continue';
export const FAILURE_POLICIES: readonly FailurePolicy[] = ['fail-fast', 'continue'];

export type FlowKind = 'workflow' | 'chain' | 'group' | 'chord';

/** How a step gets its arguments: its own, the single parent's result, or the list of its parents' results. */
export type StepInput = 'args' | 'previous' | 'list';

export interface FlowStep {
  readonly key: string;
  readonly spec: JobSpec;
  readonly after: readonly string[];
  readonly input: StepInput;
}

declare const flowResult: unique symbol;

/**
 * A flow ready to push: its steps (in declaration order), its kind and name, and the failure policy
 * (undefined = the plugin's default). `R` is the type of the workflow's result.
 */
export class Flow<R = unknown> {
  declare readonly [flowResult]?: R;

  constructor(
    readonly kind: FlowKind,
    readonly name: string,
    readonly steps: readonly FlowStep[],
    readonly onFailure: FailurePolicy | undefined,
  ) {
    Object.freeze(this);
  }

  /** A copy with another name (shown by getWorkflow and in exported graphs). */
  named(name: string): this {
    return new (this.constructor as typeof Flow)(this.kind, checkName(name), this.steps, this.onFailure) as this;
  }

  /** A copy with a failure policy: 'fail-fast' (fail the workflow, cancel what has not started) or 'continue'. */
  withFailurePolicy(policy: FailurePolicy): this {
    return new (this.constructor as typeof Flow)(this.kind, this.name, this.steps, checkPolicy(policy)) as this;
  }
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw new WorkflowDefinitionError(`A workflow name must be a string of 1 to 200 characters, got ${describeValue(name)}.`);
  }
  return name;
}

function checkPolicy(policy: unknown): FailurePolicy {
  if (!FAILURE_POLICIES.includes(policy as FailurePolicy)) {
    throw new InvalidOptionError(`A failure policy must be 'fail-fast' or 'continue', got ${describeValue(policy)}.`);
  }
  return policy as FailurePolicy;
}

function checkKey(key: unknown, taken: ReadonlySet<string>): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 200) {
    throw new WorkflowDefinitionError(`A workflow step key must be a string of 1 to 200 characters, got ${describeValue(key)}.`);
  }
  if (taken.has(key)) throw new WorkflowDefinitionError(`The workflow already has a step '${key}'; step keys must be unique.`);
  return key;
}

export interface StepOptions<K extends string> {
  /** Steps that must succeed before this one runs (declared earlier, so a workflow can have no cycle). */
  after?: readonly K[];
}

type NewKey<Results, K extends string> = string extends keyof Results ? K : K extends keyof Results ? never : K;

/**
 * A named DAG under construction. Each `step` returns a new builder; a step can only run after
 * steps declared before it, so cycles cannot be written. `Results` maps step keys to result types.
 */
// biome-ignore lint/complexity/noBannedTypes: `{}` is the empty result map; TypeScript drops it from `{} & { a: A }`, which `Record<never, never>` would leave in every result type.
export class WorkflowBuilder<Results extends Record<string, unknown> = {}> extends Flow<Results> {
  step<K extends string, S extends AnyStep>(
    key: NewKey<Results, K>,
    job: S,
    options: StepOptions<keyof Results & string> = {},
  ): WorkflowBuilder<Results & { [P in K]: StepResult<S> }> {
    if (options === null || typeof options !== 'object') throw new InvalidOptionError(`step('${String(key)}') options must be an object.`);
    for (const k of Object.keys(options)) {
      if (k !== 'after')
        throw new InvalidOptionError(`Unknown option \`${k}\` in step('${String(key)}') options; did you mean \`after\`? Known options: after.`);
    }
    const taken = new Set(this.steps.map((s) => s.key));
    const stepKey = checkKey(key, taken);
    const after = options.after ?? [];
    if (!Array.isArray(after)) throw new InvalidOptionError(`step('${stepKey}'): \`after\` must be an array of step keys.`);
    for (const parent of after) {
      if (!taken.has(parent)) {
        throw new WorkflowDefinitionError(
          `step('${stepKey}') runs after '${String(parent)}', which is not a step declared before it. Declare steps after the steps they depend on.`,
        );
      }
    }
    if (new Set(after).size !== after.length) throw new WorkflowDefinitionError(`step('${stepKey}') names a parent twice in \`after\`.`);
    const step: FlowStep = { key: stepKey, spec: toSpec(job, `workflow step '${stepKey}'`), after: [...after], input: 'args' };
    return new WorkflowBuilder(this.kind, this.name, [...this.steps, step], this.onFailure) as never;
  }
}

/**
 * Starts a named workflow (a DAG of steps). Add steps with `.step(key, job, { after: [...] })`.
 * A step runs once every step it names in `after` has succeeded; it can read their results with
 * `ctx.workflow.parentResults()`.
 */
// biome-ignore lint/complexity/noBannedTypes: `{}` is the empty result map; TypeScript drops it from `{} & { a: A }`, which `Record<never, never>` would leave in every result type.
export function workflow(name: string, options: { onFailure?: FailurePolicy } = {}): WorkflowBuilder<{}> {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('workflow(name, options): options must be an object.');
  for (const k of Object.keys(options)) {
    if (k !== 'onFailure') throw new InvalidOptionError(`Unknown option \`${k}\` in workflow('${name}') options. Known options: onFailure.`);
  }
  return new WorkflowBuilder('workflow', checkName(name), [], options.onFailure === undefined ? undefined : checkPolicy(options.onFailure));
}

// ------------------------------------------------------------------------------------------------
// Chains

type ChainCheck<Prev, T extends readonly unknown[]> = T extends readonly [infer H, ...infer Rest]
  ? [Accepting<Prev, H>, ...ChainCheck<StepResult<H>, Rest>]
  : T extends readonly []
    ? []
    : Array<Accepting<Prev, T[number]>>;

type Last<F, T extends readonly unknown[]> = T extends readonly [...unknown[], infer L] ? L : T extends readonly [] ? F : T[number];

/**
 * `chain(a.withArgs(3), b, c)`: runs `a`, then `b` with `a`'s result as its arguments, then `c`
 * with `b`'s. A step whose arguments do not accept the previous result does not compile. Pushed
 * atomically with `pushWorkflow`; its result is the last step's.
 */
export function chain<F extends AnyStep, T extends AnyStep[]>(first: F, ...rest: T & ChainCheck<StepResult<F>, T>): Flow<StepResult<Last<F, T>>> {
  const all = [first, ...(rest as AnyStep[])];
  const steps: FlowStep[] = all.map((job, i) => ({
    key: String(i),
    spec: toSpec(job as Pushable, `chain step ${i}`),
    after: i === 0 ? [] : [String(i - 1)],
    input: i === 0 ? 'args' : 'previous',
  }));
  return new Flow('chain', 'chain', steps, undefined);
}

// ------------------------------------------------------------------------------------------------
// Groups and chords

/** The results of a group, in the order of its jobs. */
export type GroupResults<T extends readonly unknown[]> = { -readonly [K in keyof T]: StepResult<T[K]> };

/** A group: jobs that run in parallel; its result is the list of their results, in order. */
export class GroupFlow<R extends readonly unknown[] = unknown[]> extends Flow<R> {}

/** `group(a.withArgs(1), a.withArgs(2), b)`: run in parallel; the result lists their results in order. */
export function group<T extends AnyStep[]>(...jobs: T): GroupFlow<GroupResults<T>> {
  if (jobs.length === 0) throw new WorkflowDefinitionError('group() needs at least one job.');
  const steps: FlowStep[] = jobs.map((job, i) => ({ key: String(i), spec: toSpec(job, `group job ${i}`), after: [], input: 'args' }));
  return new GroupFlow('group', 'group', steps, undefined);
}

/**
 * `chord(group(...), callback)`: when every job of the group has succeeded, `callback` runs with
 * the list of their results (in order) as its arguments. The chord's result is the callback's.
 */
export function chord<G extends readonly unknown[], C extends AnyStep>(header: GroupFlow<G>, callback: C & Accepting<G, C>): Flow<StepResult<C>> {
  if (!(header instanceof GroupFlow)) throw new WorkflowDefinitionError('chord(header, callback): `header` must be a group(...).');
  const key = String(header.steps.length);
  const steps: FlowStep[] = [
    ...header.steps,
    { key, spec: toSpec(callback as Pushable, 'chord callback'), after: header.steps.map((s) => s.key), input: 'list' },
  ];
  return new Flow('chord', header.name === 'group' ? 'chord' : header.name, steps, header.onFailure);
}

// ------------------------------------------------------------------------------------------------
// Callbacks

/** A callback stored in the job's `meta.callbacks`, pushed when the job ends in state `on`. */
export interface LinkSpec {
  readonly on: 'succeeded' | 'failed';
  readonly spec: JobSpec;
}

/** What a `linkError` callback receives as its arguments. */
export interface FailureInfo<A = unknown> {
  readonly job: { readonly id: string; readonly name: string; readonly queue: string; readonly args: A; readonly attempt: number };
  /** The error of the last attempt. */
  readonly error: JobError | null;
}

function addLink<A, R>(job: Pushable<A, R>, on: LinkSpec['on'], callback: Pushable, what: string): JobInvocation<A, R> {
  const invocation = toInvocation(job, `${what}(job, …): job`) as JobInvocation<A, R>;
  if (callback === undefined || callback === null) throw new InvalidJobOptionError(`${what}(job, callback): callback is missing.`);
  const existing = invocation.options.meta[META.callbacks];
  const links = Array.isArray(existing) ? (existing as LinkSpec[]) : [];
  // A callback always receives the job's result (or failure) as its arguments, so its bound
  // arguments are not kept: the job's meta is stored as it is, outside any payload codec.
  const link: LinkSpec = { on, spec: { ...toSpec(callback, `${what} callback`), args: null } };
  // Kept in the job's own meta: no table, no push hook; the job's final settle (which happens
  // once, fenced by the core) reads them from the settlement.
  return invocation.withMeta({ [META.callbacks]: [...links, link] });
}

/**
 * Celery's `link`: `callback` is pushed, with this job's result as its arguments, in the
 * transaction that records the job's success. Chain them: `link(link(job, a), b)`.
 */
export function link<S extends AnyStep, C extends AnyStep>(
  job: S,
  callback: C & Accepting<StepResult<S>, C>,
): JobInvocation<StepArgs<S>, StepResult<S>> {
  return addLink(job as Pushable, 'succeeded', callback as Pushable, 'link') as never;
}

/**
 * Celery's `link_error`: `callback` is pushed with a `FailureInfo` (the job and its last error) in
 * the transaction that records the job's final failure — once, after the last retry; never for an
 * attempt that will be retried, never for a cancellation.
 */
export function linkError<S extends AnyStep, C extends AnyStep>(
  job: S,
  callback: C & Accepting<FailureInfo<StepArgs<S>>, C>,
): JobInvocation<StepArgs<S>, StepResult<S>> {
  return addLink(job as Pushable, 'failed', callback as Pushable, 'linkError') as never;
}
