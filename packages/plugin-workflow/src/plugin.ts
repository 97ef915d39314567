/**
 * The plugin: every piece of bookkeeping happens in the core's `settle` hook, inside the
 * transaction that writes the outcome of the jobs that ended. A dependent step, a subtask, a
 * callback is pushed in that same transaction (`app.pushMany(..., { tx })`): it becomes runnable —
 * and idle workers are woken — the moment the completion commits.
 */
import {
  type Docket,
  type DocketPlugin,
  HOOK_STAGE,
  type JobContext,
  type JobError,
  type JobInvocation,
  oneOfOption,
  PluginInvalidError,
  type Pushable,
  pluginBinding,
  rejectUnknownKeys,
  type SettleContext,
  type Settlement,
  sendNow,
  type WaitingRelease,
} from '@docket/core';
import type { WorkflowState } from './api.js';
import { FAILURE_POLICIES, type FailureInfo, type FailurePolicy, type LinkSpec } from './flows.js';
import { META, metaString } from './meta.js';
import { MIGRATIONS } from './migrations.js';
import { fromSpec, type JobSpec, openSpecs, toSpec } from './spec.js';
import { WorkflowSql } from './sql.js';

export const PLUGIN_NAME = 'workflow';
export const PLUGIN_VERSION = '0.1.0';
/** The `app.notify` topic on which finished workflow runs are announced (payload: comma-separated run ids). */
export const NOTIFY_TOPIC = 'workflow';

export type SubtaskFailurePolicy = 'fail-parent' | 'ignore';

export interface WorkflowPluginOptions {
  /** Default failure policy of workflows, chains, groups and chords. Default 'fail-fast'. */
  onFailure?: FailurePolicy;
  /** A parent whose subtask failed or was cancelled ends 'failed' ('fail-parent', default) or 'succeeded' ('ignore'). */
  subtaskFailure?: SubtaskFailurePolicy;
}

const OPTION_KEYS = ['onFailure', 'subtaskFailure'] as const;

export interface WorkflowPlugin extends DocketPlugin {
  readonly options: Readonly<Required<WorkflowPluginOptions>>;
}

/** What the API functions need of an app the plugin was applied to. */
export interface Runtime {
  readonly db: WorkflowSql;
  readonly options: Readonly<Required<WorkflowPluginOptions>>;
}

const runtimes = new WeakMap<Docket, Runtime>();

export function runtimeOf(app: Docket, what: string): Runtime {
  const runtime = runtimes.get(app);
  if (!runtime) {
    throw new PluginInvalidError(
      `${what} needs the workflow plugin on this app: new Docket({ connection, plugins: [workflows()] }) (and app.migrate() once).`,
    );
  }
  return runtime;
}

/** Step context for handlers of workflow steps (`ctx.workflow`). */
export interface WorkflowStepContext {
  /** The workflow run's id. */
  readonly id: string;
  /** This step's key. */
  readonly step: string;
  /** Results of the steps this one runs after, keyed by step key, in the order `after` names them. */
  parentResults<T extends Record<string, unknown> = Record<string, unknown>>(): Promise<T>;
}

declare module '@docket/core' {
  interface JobContextExtensions {
    /**
     * Pushes `job` as a subtask of the running job, in the transaction that records this attempt's
     * success; the job then stays `waiting` until every subtask has finished. Nothing is pushed if
     * the attempt fails. (A job pushed with `app.push` from a handler is not a subtask.)
     */
    subtask(job: Pushable): void;
    /** Set when the job is a step of a workflow (also a chain, group or chord). */
    workflow: WorkflowStepContext;
  }
}

const SUBTASKS = Symbol('docket.workflow.subtasks');
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** A run or parent id the settlement was selected for carrying (so its absence is a bug). */
function requiredMeta(s: Settlement, key: string): string {
  const id = metaString(s.job.meta, key);
  if (id === undefined) throw new Error(`Job ${s.job.id} has no \`${key}\` meta, though it was selected for having one.`);
  return id;
}

type FinalState = 'succeeded' | 'failed' | 'cancelled';

/**
 * `workflows(options)`: the plugin. Register it on every app that pushes flows or runs their jobs:
 * `new Docket({ connection, plugins: [workflows()] })`.
 */
export function workflows(options: WorkflowPluginOptions = {}): WorkflowPlugin {
  const where = 'workflows(options)';
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const resolved = Object.freeze({
    onFailure: oneOfOption<FailurePolicy>(where, 'onFailure', options.onFailure, FAILURE_POLICIES, 'fail-fast'),
    subtaskFailure: oneOfOption<SubtaskFailurePolicy>(where, 'subtaskFailure', options.subtaskFailure, ['fail-parent', 'ignore'], 'fail-parent'),
  });
  // Per-app state lives in `runtimes` (by app), so the value could serve two apps; it is refused
  // anyway so that every plugin follows one rule: call the factory once per app.
  const binding = pluginBinding(PLUGIN_NAME, 'workflows');
  return {
    name: PLUGIN_NAME,
    version: PLUGIN_VERSION,
    migrations: MIGRATIONS,
    options: resolved,
    // The dashboard's extension point (a registered symbol: no import of the dashboard here); the
    // panel module is loaded only when a dashboard asks.
    [Symbol.for('docket.dashboard.panels')]: () => import('./dashboard.js').then((m) => m.workflowPanels()),
    apply(app: Docket) {
      binding.bind(app);
      const db = new WorkflowSql(app);
      runtimes.set(app, { db, options: resolved });
      const engine = new Engine(app, db, resolved);

      // Made on the handler's first read: a job that never reads them costs nothing.
      app.defineJobContextField('subtask', (ctx) => engine.subtaskOf(ctx));
      app.defineJobContextField('workflow', (ctx) => engine.workflowOf(ctx));
      // LATE: bookkeeping sees the outcomes other plugins settled on at the default stage.
      app.hooks.settle.tapPromise({ name: PLUGIN_NAME, stage: HOOK_STAGE.LATE, wants: (s) => engine.wants(s) }, (settlements, ctx) =>
        engine.settle(settlements, ctx),
      );
      app.hooks.jobsDeleted.tapPromise(PLUGIN_NAME, async ({ sql, ids }) => {
        await db.prune(sql, { jobIds: ids });
      });
    },
  };
}

interface HeldParent {
  readonly settlement: Settlement;
  readonly children: readonly JobSpec[];
}

interface Failure {
  readonly run: string;
  readonly key: string;
  readonly jobId: string | null;
  readonly state: FinalState;
  readonly error: JobError | null;
}

interface Queued {
  runIds: string[];
  keys: string[];
  jobIds: string[];
}

interface RunTally {
  finished: number;
  failed: number;
  failNow: boolean;
  error: string | null;
}

class Engine {
  constructor(
    private readonly app: Docket,
    private readonly db: WorkflowSql,
    private readonly options: Readonly<Required<WorkflowPluginOptions>>,
  ) {}

  /** `ctx.subtask`: collects the attempt's subtasks, pushed if the attempt succeeds (`settle`). */
  subtaskOf(ctx: JobContext): (job: Pushable) => void {
    const children: JobSpec[] = [];
    Object.defineProperty(ctx, SUBTASKS, { value: children, enumerable: false, writable: false });
    return (job: Pushable) => {
      children.push(toSpec(job, 'subtask'));
    };
  }

  /** `ctx.workflow`: the run and step of a workflow step's job; undefined for any other job. */
  workflowOf(ctx: JobContext): WorkflowStepContext | undefined {
    const runId = metaString(ctx.job.meta, META.workflowId);
    const step = ctx.job.meta[META.workflowStep];
    if (!runId || typeof step !== 'string') return undefined;
    const { app, db } = this;
    return {
      id: runId,
      step,
      async parentResults<T extends Record<string, unknown>>(): Promise<T> {
        const rows = await db.stepParentResults(app.sql, { runId, key: step });
        const results = await app.codec.decodeResults(rows.map((r) => r.result));
        return Object.fromEntries(rows.map((r, i) => [r.key, results[i] ?? null])) as T;
      },
    };
  }

  /**
   * Whether a settlement concerns this plugin (the cases `settle` acts on): an attempt that made
   * subtasks, or a final outcome of a job with callbacks, a parent, a workflow step, or a
   * cancellation (whose subtasks are cancelled too). Plain jobs are settled without the plugin.
   */
  wants(s: Settlement): boolean {
    if (s.ctx && s.outcome.state === 'succeeded') {
      const children = (s.ctx as unknown as Record<symbol, JobSpec[] | undefined>)[SUBTASKS];
      if (children && children.length > 0) return true;
    }
    if (!FINAL.has(s.outcome.state)) return false;
    const meta = s.job.meta;
    return (
      (Array.isArray(meta[META.callbacks]) && s.outcome.state !== 'cancelled') ||
      Boolean(metaString(meta, META.parentId)) ||
      (s.outcome.state === 'cancelled' && s.ctx === null) ||
      (Boolean(metaString(meta, META.workflowId)) && typeof meta[META.workflowStep] === 'string')
    );
  }

  async settle(settlements: Settlement[], ctx: SettleContext): Promise<Settlement[]> {
    // 1. Attempts that succeeded and collected subtasks: push the children, hold the parent.
    let held: HeldParent[] | null = null;
    for (const s of settlements) {
      if (!s.ctx || s.outcome.state !== 'succeeded') continue;
      const children = (s.ctx as unknown as Record<symbol, JobSpec[] | undefined>)[SUBTASKS];
      if (children && children.length > 0) (held ??= []).push({ settlement: s, children });
    }
    if (held) await this.holdParents(held, ctx);

    // 2. Jobs that ended for good.
    let callbacks: Settlement[] | null = null;
    let children: Settlement[] | null = null;
    let cancelled: Settlement[] | null = null;
    let steps: Settlement[] | null = null;
    for (const s of settlements) {
      if (!FINAL.has(s.outcome.state)) continue;
      const meta = s.job.meta;
      if (Array.isArray(meta[META.callbacks]) && s.outcome.state !== 'cancelled') (callbacks ??= []).push(s);
      if (metaString(meta, META.parentId)) (children ??= []).push(s);
      if (s.outcome.state === 'cancelled' && s.ctx === null) (cancelled ??= []).push(s);
      if (metaString(meta, META.workflowId) && typeof meta[META.workflowStep] === 'string') (steps ??= []).push(s);
    }
    if (callbacks) await this.fireCallbacks(callbacks, ctx);
    if (cancelled) await this.cancelChildrenOf(cancelled, ctx);
    // Subtask parents are locked before workflow runs: the order nested releases take them in.
    if (children) await this.finishChildren(children, ctx);
    if (steps) await this.advanceRuns(steps, ctx);
    return settlements;
  }

  // ---------------------------------------------------------------------------------------------
  // Subtasks

  private async holdParents(held: HeldParent[], ctx: SettleContext): Promise<void> {
    const invocations: JobInvocation[] = [];
    const owner: number[] = [];
    held.forEach(({ settlement, children }, i) => {
      const parentId = settlement.job.id;
      const rootId = metaString(settlement.job.meta, META.rootId) ?? parentId;
      for (const spec of children) {
        invocations.push(fromSpec(spec, { [META.parentId]: parentId, [META.rootId]: rootId }));
        owner.push(i);
      }
    });
    const refs = await ctx.app.pushMany(invocations, { tx: ctx.sql });
    const counts = new Array<number>(held.length).fill(0);
    const childIds: string[] = [];
    const childParents: string[] = [];
    refs.forEach((ref, index) => {
      // A push a plugin answered with an existing job (deduplication) is not this job's subtask.
      if (ref.duplicate) return;
      const i = owner[index];
      counts[i]++;
      childIds.push(ref.id);
      childParents.push(held[i].settlement.job.id);
    });
    const parentIds: string[] = [];
    const rootIds: string[] = [];
    const totals: number[] = [];
    held.forEach(({ settlement }, i) => {
      if (counts[i] === 0) return;
      parentIds.push(settlement.job.id);
      rootIds.push(metaString(settlement.job.meta, META.rootId) ?? settlement.job.id);
      totals.push(counts[i]);
      const outcome = settlement.outcome as { state: 'succeeded'; result: unknown };
      settlement.outcome = { state: 'waiting', result: outcome.result };
    });
    if (parentIds.length === 0) return;
    await this.db.subtasksInsert(ctx.sql, {
      parentIds,
      rootIds,
      totals,
      onFailure: parentIds.map(() => this.options.subtaskFailure),
      childIds,
      childParents,
    });
  }

  private async finishChildren(children: Settlement[], ctx: SettleContext): Promise<void> {
    const parentIds = [...new Set(children.map((s) => requiredMeta(s, META.parentId)))];
    // One round trip: lock the parents (children-first order), then count (pipelined).
    const [, rows] = await Promise.all([
      sendNow(this.db.parentsLock(ctx.sql, { ids: parentIds })),
      this.db.subtasksFinish(ctx.sql, { childIds: children.map((s) => s.job.id), states: children.map((s) => s.outcome.state) }),
    ]);
    const releases: WaitingRelease[] = [];
    for (const row of rows) {
      if (row.open !== 0) continue;
      if (row.failed > 0 && row.on_failure === 'fail-parent') {
        const error: JobError = {
          attempt: row.attempt ?? 0,
          name: 'SubtaskFailedError',
          message: `${row.failed} of ${row.total} subtasks did not succeed (failed or cancelled).`,
          at: new Date().toISOString(),
        };
        releases.push({ id: row.job_id, state: 'failed', error });
      } else {
        releases.push({ id: row.job_id, state: 'succeeded' });
      }
    }
    // Fires `settle` again for the parents, in this transaction: a parent that is itself a subtask
    // or a workflow step is counted in turn, so whole trees complete in one commit.
    if (releases.length > 0) await ctx.app.releaseWaitingJobs(ctx, releases);
  }

  /** A cancelled job that held subtasks: its unfinished children are cancelled after the commit. */
  private async cancelChildrenOf(cancelled: Settlement[], ctx: SettleContext): Promise<void> {
    const rows = await this.db.subtasksUnfinished(ctx.sql, { parentIds: cancelled.map((s) => s.job.id) });
    if (rows.length === 0) return;
    const app = ctx.app;
    ctx.afterCommit(async () => {
      for (const { child_id } of rows) {
        await app.cancelJob(child_id).catch((error) => app.logger.warn('cancelling a subtask of a cancelled job failed', { error, job: child_id }));
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Callbacks

  /** Pushes the callbacks of jobs that ended for good (read from their meta; a job's final settle happens once). */
  private async fireCallbacks(ended: Settlement[], ctx: SettleContext): Promise<void> {
    const invocations: JobInvocation[] = [];
    for (const s of ended) {
      const meta = { [META.callbackOf]: s.job.id, [META.callbackOn]: s.outcome.state };
      for (const link of s.job.meta[META.callbacks] as LinkSpec[]) {
        if (link?.on !== s.outcome.state || !link.spec) continue;
        if (s.outcome.state === 'succeeded') {
          invocations.push(fromSpec(link.spec, meta, { value: s.outcome.result ?? null }));
        } else if (s.outcome.state === 'failed') {
          const info: FailureInfo = {
            job: { id: s.job.id, name: s.job.name, queue: s.job.queue, args: s.job.args, attempt: s.job.attempt },
            error: s.outcome.error ?? null,
          };
          invocations.push(fromSpec(link.spec, meta, { value: info }));
        }
      }
    }
    if (invocations.length > 0) await ctx.app.pushMany(invocations, { tx: ctx.sql });
  }

  // ---------------------------------------------------------------------------------------------
  // Workflows

  private async advanceRuns(ended: Settlement[], ctx: SettleContext): Promise<void> {
    const { db } = this;
    const sql = ctx.sql;
    const runIds = [...new Set(ended.map((s) => requiredMeta(s, META.workflowId)))];
    // One round trip: the runs are locked (in id order) by the first statement before the second
    // one reads them and moves their steps (postgres.js pipelines queries on a transaction).
    const [locked, { finished, touched }] = await Promise.all([
      sendNow(db.runsLock(sql, { ids: runIds })),
      db.stepsFinish(sql, { jobIds: ended.map((s) => s.job.id), states: ended.map((s) => s.outcome.state) }),
    ]);
    const runs = new Map(locked.map((r) => [r.id, r]));
    const running = (runId: string) => runs.get(runId)?.state === 'running';
    if (finished.length === 0) return;

    const byJob = new Map(ended.map((s) => [s.job.id, s]));
    const tallies = new Map<string, RunTally>();
    const tally = (runId: string) => {
      let t = tallies.get(runId);
      if (!t) tallies.set(runId, (t = { finished: 0, failed: 0, failNow: false, error: null }));
      return t;
    };
    // Results of the steps that ended in this batch: an attempt's outcome is not written yet.
    const results = new Map<string, unknown>();
    const failed: Failure[] = [];
    for (const row of finished) {
      const t = tally(row.run_id);
      t.finished++;
      const s = byJob.get(row.job_id);
      if (row.state === 'succeeded') {
        results.set(`${row.run_id}\u0000${row.key}`, s && s.outcome.state === 'succeeded' ? s.outcome.result : undefined);
      } else {
        t.failed++;
        const error = s && (s.outcome.state === 'failed' || s.outcome.state === 'cancelled') ? s.outcome.error : null;
        failed.push({ run: row.run_id, key: row.key, jobId: row.job_id, state: row.state as FinalState, error });
      }
    }

    const cancelJobs: string[] = [];
    const applyFailures = async (list: Failure[]) => {
      const failFast: string[] = [];
      const cont: Array<{ run: string; key: string }> = [];
      for (const f of list) {
        const t = tally(f.run);
        t.error ??= JSON.stringify({ step: f.key, jobId: f.jobId, state: f.state, error: f.error });
        const run = runs.get(f.run);
        if (run?.state !== 'running') continue;
        if (run.on_failure === 'fail-fast') {
          if (!t.failNow) failFast.push(f.run);
          t.failNow = true;
        } else {
          cont.push({ run: f.run, key: f.key });
        }
      }
      if (failFast.length > 0) {
        for (const { run_id, n } of await db.stepsCancelBlocked(sql, { runIds: failFast })) {
          tally(run_id).finished += n;
          tally(run_id).failed += n;
        }
        for (const { job_id } of await db.stepsPendingJobs(sql, { runIds: failFast })) cancelJobs.push(job_id);
      }
      if (cont.length > 0) {
        for (const { run_id, n } of await db.stepsCancelDescendants(sql, { runIds: cont.map((c) => c.run), keys: cont.map((c) => c.key) })) {
          tally(run_id).finished += n;
          tally(run_id).failed += n;
        }
      }
    };
    if (failed.length > 0) await applyFailures(failed);

    // Children left with no blocking parent (in runs that go on) are pushed now, in this transaction.
    const ready = touched.filter((t) => t.blocking === 0);
    let queued: Queued = { runIds: [], keys: [], jobIds: [] };
    if (ready.length > 0) {
      // Which job of this batch released each ready step: one of its parents that finished now.
      const finishedJob = new Map(finished.map((row) => [`${row.run_id}\u0000${row.key}`, row.job_id]));
      const releasedBy = ready.map((r) => r.parents.map((p) => finishedJob.get(`${r.run_id}\u0000${p}`)).find((id) => id !== undefined));
      const pushed = await this.pushSteps(ready, releasedBy, results, ctx);
      queued = pushed.queued;
      if (pushed.unpushed.length > 0) {
        // Rare (a plugin deduplicated a step): record what was pushed first, then fail the rest.
        await db.runsAdvance(sql, { ids: [], finished: [], failed: [], failNow: [], errors: [], queued });
        queued = { runIds: [], keys: [], jobIds: [] };
        await db.stepsFailUnpushed(sql, { runIds: pushed.unpushed.map((u) => u.run_id), keys: pushed.unpushed.map((u) => u.key) });
        await applyFailures(
          pushed.unpushed.map((u) => {
            const t = tally(u.run_id);
            t.finished++;
            t.failed++;
            const error: JobError = {
              attempt: 0,
              name: 'StepNotPushedError',
              message: `Step '${u.key}' was answered with existing job ${u.duplicateOf} by a plugin (deduplication); workflow steps need their own job.`,
              at: new Date().toISOString(),
            };
            return { run: u.run_id, key: u.key, jobId: null, state: 'failed' as const, error };
          }),
        );
      }
    }

    const ids = [...tallies.keys()];
    const runTallies = [...tallies.values()];
    const advance = db.runsAdvance(sql, {
      ids,
      finished: runTallies.map((t) => t.finished),
      failed: runTallies.map((t) => t.failed),
      failNow: runTallies.map((t) => t.failNow),
      errors: runTallies.map((t) => t.error),
      queued,
    });
    // A run ends here only if it is running and fails now or has no step left open (the locked
    // rows say how many were open). When none can, nothing waits on the answer: the statement is
    // pipelined with the core's write and the COMMIT (a chain's hand-off saves a round trip).
    const mayEnd = [...tallies].some(([id, t]) => {
      const run = runs.get(id);
      return run !== undefined && run.state === 'running' && (t.failNow || run.steps_open - t.finished <= 0);
    });
    if (!mayEnd && cancelJobs.length === 0) {
      ctx.pipeline(advance);
      return;
    }
    const advanced = await advance;
    const ended_ = advanced.filter((r) => running(r.id) && r.state !== 'running');
    if (ended_.length > 0) await this.announce(ended_, ctx);
    if (cancelJobs.length > 0) {
      const app = ctx.app;
      // "Cancel what has not started": through the core's cancelJob, after this commit (it runs
      // its own transaction and settle, where the plugin records each step as cancelled).
      ctx.afterCommit(async () => {
        for (const id of cancelJobs) {
          await app.cancelJob(id).catch((error) => app.logger.warn('cancelling a workflow step failed', { error, job: id }));
        }
      });
    }
  }

  /** Pushes runnable steps; returns the jobs pushed, and the steps a plugin answered with an existing job instead. */
  private async pushSteps(
    ready: Array<{ run_id: string; key: string; spec: JobSpec; input: string; parents: string[] }>,
    releasedBy: ReadonlyArray<string | undefined>,
    results: Map<string, unknown>,
    ctx: SettleContext,
  ): Promise<{ queued: Queued; unpushed: Array<{ run_id: string; key: string; duplicateOf: string }> }> {
    // Steps whose arguments are their parents' results (chain steps, chord callbacks): the parents
    // that ended in this batch are in `results`; the others' results are read from their jobs.
    const parentResult = new Map(results);
    const missing = { runIds: [] as string[], keys: [] as string[] };
    for (const r of ready) {
      if (r.input === 'args') continue;
      for (const parent of r.parents) {
        if (parentResult.has(`${r.run_id}\u0000${parent}`)) continue;
        missing.runIds.push(r.run_id);
        missing.keys.push(parent);
      }
    }
    if (missing.keys.length > 0) {
      const rows = await this.db.stepsResults(ctx.sql, missing);
      const stored = await ctx.app.codec.decodeResults(rows.map((row) => row.result));
      rows.forEach((row, i) => {
        parentResult.set(`${row.run_id}\u0000${row.key}`, stored[i]);
      });
    }
    const resultOf = (run: string, key: string) => parentResult.get(`${run}\u0000${key}`) ?? null;
    const specs = await openSpecs(
      ctx.app,
      ready.map((r) => r.spec),
    );
    const invocations = ready.map((r, i) => {
      const meta: Record<string, string> = { [META.workflowId]: r.run_id, [META.workflowStep]: r.key };
      const by = releasedBy[i];
      if (by !== undefined) meta[META.releasedBy] = by;
      const spec = specs[i];
      if (r.input === 'previous') return fromSpec(spec, meta, { value: resultOf(r.run_id, r.parents[0]) });
      if (r.input === 'list') return fromSpec(spec, meta, { value: r.parents.map((p) => resultOf(r.run_id, p)) });
      return fromSpec(spec, meta);
    });
    const refs = await ctx.app.pushMany(invocations, { tx: ctx.sql });
    const queued: Queued = { runIds: [], keys: [], jobIds: [] };
    const unpushed: Array<{ run_id: string; key: string; duplicateOf: string }> = [];
    refs.forEach((ref, i) => {
      const r = ready[i];
      if (ref.duplicate) {
        unpushed.push({ run_id: r.run_id, key: r.key, duplicateOf: ref.id });
        return;
      }
      queued.runIds.push(r.run_id);
      queued.keys.push(r.key);
      queued.jobIds.push(ref.id);
    });
    return { queued, unpushed };
  }

  /** Tells waiters in every process (on commit) and listeners of this one (after commit) that runs ended. */
  private async announce(ended: Array<{ id: string; state: string }>, ctx: SettleContext): Promise<void> {
    // runs_advance answers a run's state as text; a run that ended is in one of WorkflowState's.
    await announceRuns(ctx.app, ended, ctx.sql);
    ctx.afterCommit(() => {
      for (const run of ended) ctx.app.emit(PLUGIN_NAME, 'workflow.finished', { id: run.id, state: run.state as WorkflowState });
    });
  }
}

/** NOTIFY payloads are limited to 8000 bytes: send the ids in chunks. */
export async function announceRuns(app: Docket, ended: ReadonlyArray<{ id: string }>, sql: Parameters<Docket['notify']>[2]): Promise<void> {
  for (let i = 0; i < ended.length; i += 200) {
    await app.notify(
      NOTIFY_TOPIC,
      ended
        .slice(i, i + 200)
        .map((r) => r.id)
        .join(','),
      sql,
    );
  }
}
