/**
 * Pushing, reading, waiting for and cancelling workflow runs, and reading a job's subtasks.
 * Every function takes the app (which must have the plugin) as its first argument.
 */
import {
  type Docket,
  InvalidOptionError,
  integerOption,
  type JobError,
  JobNotFoundError,
  type JobRef,
  oneOfOption,
  type PushTransaction,
  rejectUnknownKeys,
  type SqlClient,
  transactionSql,
  WaitTimeoutError,
} from '@docket/core';
import { WorkflowDefinitionError, WorkflowNotFoundError, WorkflowStepDeduplicatedError } from './errors.js';
import { type FailurePolicy, Flow, type FlowKind } from './flows.js';
import { type GraphFormat, renderWorkflow } from './graph.js';
import { META } from './meta.js';
import { announceRuns, NOTIFY_TOPIC, PLUGIN_NAME, runtimeOf } from './plugin.js';
import { describeValue, fromSpec, sealSpecs } from './spec.js';
import type { StepRow } from './sql.js';

declare const workflowResult: unique symbol;

/** A reference to a pushed workflow run; carries the type of its result. */
export interface WorkflowRef<R = unknown> {
  readonly id: string;
  readonly name: string;
  readonly kind: FlowKind;
  readonly [workflowResult]?: R;
}

export type WorkflowState = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** Payloads of the events the plugin emits: `workflow.finished` once a run ends (after its transaction commits). */
export interface WorkflowEvents {
  'workflow.finished': { readonly id: string; readonly state: WorkflowState };
}

declare module '@docket/core' {
  interface DocketEventMap extends WorkflowEvents {}
}
/** `blocked`: waiting for its parents (no job exists yet); otherwise the state of the step's job. */
export type StepState = 'blocked' | 'pending' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';

export interface WorkflowStepRecord {
  readonly key: string;
  /** The job's name. */
  readonly name: string;
  /** Keys of the steps this one runs after. */
  readonly parents: readonly string[];
  readonly state: StepState;
  /** Null until the step is runnable (or when it was cancelled before it was). */
  readonly jobId: string | null;
  readonly result: unknown;
  readonly errors: readonly JobError[];
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
}

export interface WorkflowRecord<R = unknown> {
  readonly id: string;
  readonly name: string;
  readonly kind: FlowKind;
  /** `pending` until a step starts; `failed` as soon as a step fails under fail-fast. */
  readonly state: WorkflowState;
  readonly onFailure: FailurePolicy;
  /**
   * Once succeeded: a chain's last result; a group's results in order; a chord's callback result;
   * a workflow's results by step key. Null otherwise.
   */
  readonly result: R | null;
  /** The first step that did not succeed, and why. */
  readonly error: { step: string; jobId: string | null; state: string; error: JobError | null } | null;
  readonly steps: readonly WorkflowStepRecord[];
  readonly createdAt: Date;
  readonly finishedAt: Date | null;
}

export interface PushWorkflowOptions {
  /**
   * Push inside your transaction — a postgres.js `sql.begin` transaction, or another library's
   * through a TransactionAdapter (`@docket/tx`): nothing exists until it commits. If the call fails,
   * roll your transaction back.
   */
  tx?: PushTransaction;
}

type RefInput = WorkflowRef<unknown> | { id: string } | string;

function refId(ref: RefInput, what: string): string {
  const id = typeof ref === 'string' ? ref : ref?.id;
  if (typeof id !== 'string' || !/^\d{1,19}$/.test(id)) {
    throw new InvalidOptionError(`${what} takes a workflow reference (from pushWorkflow) or a run id, got ${describeValue(ref)}.`);
  }
  return id;
}

/**
 * Stores a flow (workflow, chain, group or chord) and pushes the steps that can run at once — all
 * in one transaction (yours with `{ tx }`). Later steps are pushed by the completions of their
 * parents, in the same transactions.
 */
export async function pushWorkflow<R>(app: Docket, flow: Flow<R>, options: PushWorkflowOptions = {}): Promise<WorkflowRef<R>> {
  const { db, options: defaults } = runtimeOf(app, 'pushWorkflow');
  rejectUnknownKeys('pushWorkflow options', options, ['tx']);
  if (!(flow instanceof Flow)) {
    throw new InvalidOptionError(`pushWorkflow(app, flow) takes a workflow(...), chain(...), group(...) or chord(...), got ${describeValue(flow)}.`);
  }
  if (flow.steps.length === 0) throw new WorkflowDefinitionError(`Workflow '${flow.name}' has no steps; add some with .step(key, job).`);
  const onFailure = flow.onFailure ?? defaults.onFailure;
  const run = async (tx: SqlClient): Promise<WorkflowRef<R>> => {
    const runId = await db.runInsert(tx, { name: flow.name, kind: flow.kind, onFailure, steps: flow.steps.length });
    const roots = flow.steps.filter((s) => s.after.length === 0);
    const refs = await app.pushMany(
      roots.map((s) => fromSpec(s.spec, { [META.workflowId]: runId, [META.workflowStep]: s.key })),
      { tx },
    );
    const stored = await sealSpecs(
      app,
      flow.steps.map((s) => s.spec),
    );
    const jobOf = new Map<string, string>();
    refs.forEach((ref, i) => {
      const root = roots[i];
      if (!root) throw new Error(`pushMany returned ${refs.length} refs for ${roots.length} root steps.`);
      if (ref.duplicate) {
        throw new WorkflowStepDeduplicatedError(
          `Step '${root.key}' of workflow '${flow.name}' was answered with existing job ${ref.id} by a plugin (deduplication); workflow steps need their own job. Remove the unique option from this step.`,
        );
      }
      jobOf.set(root.key, ref.id);
    });
    await db.stepsInsert(tx, {
      runId,
      steps: flow.steps.map((s, position) => ({
        key: s.key,
        position,
        spec: JSON.stringify(stored[position]),
        input: s.input,
        parents: s.after,
        blocking: s.after.length,
        state: s.after.length === 0 ? 'queued' : 'blocked',
        jobId: jobOf.get(s.key) ?? null,
      })),
    });
    return { id: runId, name: flow.name, kind: flow.kind };
  };
  // transactionSql: the run's own statements go where the core's push goes (an adapter's facade).
  if (options.tx) return run(transactionSql(options.tx));
  return app.sql.begin((tx) => run(tx)) as Promise<WorkflowRef<R>>;
}

function stepState(row: StepRow): StepState {
  if (row.step_state === 'blocked') return 'blocked';
  if (row.step_state === 'queued') return (row.job_state ?? 'pending') as StepState;
  return row.step_state as StepState;
}

/** The run with each step's state (and result); WorkflowNotFoundError when there is none. */
export async function getWorkflow<R = unknown>(app: Docket, ref: WorkflowRef<R> | RefInput): Promise<WorkflowRecord<R>> {
  const { db } = runtimeOf(app, 'getWorkflow');
  const id = refId(ref, 'getWorkflow');
  return readRun<R>(app, db, id);
}

async function readRun<R>(app: Docket, db: ReturnType<typeof runtimeOf>['db'], id: string): Promise<WorkflowRecord<R>> {
  const [run] = await db.runGet(app.sql, { id });
  if (!run) throw new WorkflowNotFoundError(`No workflow run with id ${id} (it may have been pruned).`, { details: { workflowId: id } });
  const rows = await db.stepsGet(app.sql, { runId: id });
  if (app.codec.active) {
    const results = await app.codec.decodeResults(rows.map((r) => r.result));
    rows.forEach((r, i) => {
      r.result = results[i];
    });
  }
  const steps: WorkflowStepRecord[] = rows.map((r) => ({
    key: r.key,
    name: r.name,
    parents: r.parents ?? [],
    state: stepState(r),
    jobId: r.job_id,
    result: r.result ?? null,
    errors: r.errors ?? [],
    startedAt: r.started_at ?? null,
    finishedAt: r.finished_at ?? null,
  }));
  let state = run.state as WorkflowState;
  if (state === 'running' && steps.every((s) => s.state === 'blocked' || s.state === 'pending')) state = 'pending';
  let result: unknown = null;
  if (state === 'succeeded') {
    const kind = run.kind as FlowKind;
    if (kind === 'chain' || kind === 'chord') result = steps[steps.length - 1]?.result ?? null;
    else if (kind === 'group') result = steps.map((s) => s.result);
    else result = Object.fromEntries(steps.map((s) => [s.key, s.result]));
  }
  return {
    id: run.id,
    name: run.name,
    kind: run.kind,
    state,
    onFailure: run.on_failure,
    result: result as R | null,
    error: run.error ?? null,
    steps,
    createdAt: run.created_at,
    finishedAt: run.finished_at ?? null,
  };
}

const FINISHED: readonly WorkflowState[] = ['succeeded', 'failed', 'cancelled'];

export interface WaitForWorkflowOptions {
  /** Give up with a WaitTimeoutError after this long. Default: wait until the run ends. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Resolves with the run once it has ended (succeeded, failed or cancelled). Woken by a notification
 * from the transaction that ends it; polls (every second at most) as a fallback, or with backoff
 * when the app does not listen.
 */
export async function waitForWorkflow<R = unknown>(
  app: Docket,
  ref: WorkflowRef<R> | RefInput,
  options: WaitForWorkflowOptions = {},
): Promise<WorkflowRecord<R>> {
  const { db } = runtimeOf(app, 'waitForWorkflow');
  rejectUnknownKeys('waitForWorkflow options', options, ['timeoutMs', 'signal']);
  const id = refId(ref, 'waitForWorkflow');
  const timeoutMs = options.timeoutMs === undefined ? undefined : integerOption('waitForWorkflow', 'timeoutMs', options.timeoutMs, 0, { min: 0 });
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  let wake: () => void = () => {};
  let woken = false;
  let off: (() => void) | null = null;
  try {
    off = await app.listen(NOTIFY_TOPIC, (payload) => {
      if (payload.split(',').includes(id)) {
        woken = true;
        wake();
      }
    });
  } catch (error) {
    if (!(error instanceof InvalidOptionError)) throw error; // the app does not listen: poll
  }
  try {
    let pollDelay = 25;
    for (;;) {
      woken = false;
      const record = await readRun<R>(app, db, id);
      if (FINISHED.includes(record.state)) return record;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new WaitTimeoutError(
          `Workflow ${id} ('${record.name}') did not end within ${timeoutMs} ms (it is ${record.state}). Wait longer or check that workers serve its queues.`,
          {
            details: { workflowId: id, state: record.state },
          },
        );
      }
      if (options.signal?.aborted) throw options.signal.reason;
      if (woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, off ? 1000 : pollDelay));
        const onAbort = () => done();
        const done = () => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        options.signal?.addEventListener('abort', onAbort, { once: true });
        wake = done;
      });
      pollDelay = Math.min(pollDelay * 2, 1000);
    }
  } finally {
    off?.();
  }
}

/**
 * Cancels a run: it ends `cancelled` at once, its blocked steps never run, and the jobs of its
 * started or queued steps are cancelled through `app.cancelJob` (a running handler sees
 * `ctx.signal` abort). A run that already ended is left as it is. Returns the run after the call.
 */
export async function cancelWorkflow<R = unknown>(app: Docket, ref: WorkflowRef<R> | RefInput): Promise<WorkflowRecord<R>> {
  const { db } = runtimeOf(app, 'cancelWorkflow');
  const id = refId(ref, 'cancelWorkflow');
  const outcome = await app.sql.begin(async (tx) => {
    const result = await db.runCancel(tx, { id });
    if (result.cancelled) await announceRuns(app, [{ id }], tx);
    return result;
  });
  if (!outcome.found)
    throw new WorkflowNotFoundError(`No workflow run with id ${id} to cancel (it may have been pruned).`, { details: { workflowId: id } });
  if (outcome.cancelled) {
    app.emit(PLUGIN_NAME, 'workflow.finished', { id, state: 'cancelled' });
    for (const jobId of outcome.jobIds) {
      await app.cancelJob(jobId).catch((error) => {
        if (!(error instanceof JobNotFoundError)) throw error;
      });
    }
  }
  return readRun<R>(app, db, id);
}

/** The run's graph with each step's state, as Mermaid (default) or DOT. */
export async function exportWorkflow(app: Docket, ref: RefInput, options: { format?: GraphFormat } = {}): Promise<string> {
  rejectUnknownKeys('exportWorkflow options', options, ['format']);
  const format = oneOfOption<GraphFormat>('exportWorkflow', 'format', options.format, ['mermaid', 'dot'], 'mermaid');
  return renderWorkflow(await getWorkflow(app, ref), format);
}

export interface SubtaskSummary {
  readonly parentId: string;
  readonly rootId: string;
  readonly total: number;
  /** Children not finished yet. */
  readonly open: number;
  /** Children that failed or were cancelled. */
  readonly failed: number;
  readonly children: ReadonlyArray<{ readonly id: string; readonly state: 'succeeded' | 'failed' | 'cancelled' | null }>;
}

/** The subtasks a job pushed with `ctx.subtask`, or null when it pushed none. */
export async function getSubtasks(app: Docket, ref: JobRef | { id: string } | string): Promise<SubtaskSummary | null> {
  const { db } = runtimeOf(app, 'getSubtasks');
  const id = refId(ref as RefInput, 'getSubtasks');
  const [parent] = await db.parentGet(app.sql, { id });
  if (!parent) return null;
  const children = await db.subtasksGet(app.sql, { parentId: id });
  return {
    parentId: parent.job_id,
    rootId: parent.root_id,
    total: parent.total,
    open: parent.open,
    failed: parent.failed,
    children: children.map((c) => ({ id: c.child_id, state: c.state as 'succeeded' | 'failed' | 'cancelled' | null })),
  };
}
