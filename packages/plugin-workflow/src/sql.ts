/**
 * Every statement the workflow plugin runs, in one place. Functions are named noun-then-verb and
 * take the client to run on (the settle or push transaction, or the pool) and a params object.
 * Locks are always taken in one order: subtask parents by descending id (children before their
 * parents, the way releases nest), then workflow runs by ascending id.
 */
import type { Docket, JobError, SqlClient } from '@docket/core';
import type { WorkflowRecord } from './api.js';
import type { FailurePolicy, FlowKind } from './flows.js';
import type { JobSpec } from './spec.js';

type Row = Record<string, unknown>;

/** A row of `workflow_runs` as `runGet` reads it. */
export interface RunRow {
  id: string;
  name: string;
  kind: FlowKind;
  state: string;
  on_failure: FailurePolicy;
  steps_total: number;
  steps_open: number;
  steps_failed: number;
  error: WorkflowRecord['error'] | null;
  created_at: Date;
  finished_at: Date | null;
}

/** A step with its job's state, as `stepsGet` reads it. */
export interface StepRow {
  key: string;
  position: number;
  parents: string[] | null;
  step_state: string;
  input: string;
  name: string;
  job_id: string | null;
  job_state: string | null;
  result: unknown;
  errors: JobError[] | null;
  started_at: Date | null;
  finished_at: Date | null;
}

/** A row of `workflow_parents` as `parentGet` reads it. */
export interface ParentRow {
  job_id: string;
  root_id: string;
  total: number;
  open: number;
  failed: number;
  on_failure: string;
  created_at: Date;
}

/** A step a completion touched (unblocked) in `stepsFinish`. */
export interface TouchedStep {
  run_id: string;
  key: string;
  blocking: number;
  spec: JobSpec;
  input: string;
  parents: string[];
}

export interface StepInsert {
  key: string;
  position: number;
  spec: string;
  input: string;
  parents: readonly string[];
  blocking: number;
  state: 'blocked' | 'queued';
  jobId: string | null;
}

export class WorkflowSql {
  private readonly s: string;
  private readonly prepare: boolean;

  constructor(app: Docket) {
    this.s = app.schema;
    this.prepare = app.sql.options?.prepare ?? false;
  }

  private run<T = Row>(sql: SqlClient, text: string, params: unknown[]): Promise<T[]> {
    return (sql as Docket['sql']).unsafe(text, params as never[], { prepare: this.prepare }) as unknown as Promise<T[]>;
  }

  // ---------------------------------------------------------------------------------------------
  // Runs

  async runInsert(sql: SqlClient, p: { name: string; kind: string; onFailure: string; steps: number }): Promise<string> {
    const [row] = await this.run<{ id: string }>(
      sql,
      `INSERT INTO ${this.s}.workflow_runs (name, kind, on_failure, steps_total, steps_open) VALUES ($1::text, $2::text, $3::text, $4::int, $4::int) RETURNING id::text AS id`,
      [p.name, p.kind, p.onFailure, p.steps],
    );
    if (!row) throw new Error('Inserting a workflow run returned no row.');
    return row.id;
  }

  /** Locks runs in id order (the one lock order between workers finishing steps of the same runs). */
  runsLock(sql: SqlClient, p: { ids: readonly string[] }): Promise<Array<{ id: string; state: string; on_failure: string; steps_open: number }>> {
    return this.run(
      sql,
      `SELECT id::text AS id, state, on_failure, steps_open FROM ${this.s}.workflow_runs WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`,
      [p.ids],
    );
  }

  /**
   * Records the jobs pushed for steps that became runnable and counts finished steps into their
   * runs, in one statement. A running run fails at once when `failNow` (fail-fast), and ends when
   * no step is open: failed if any step did not succeed, else succeeded.
   */
  runsAdvance(
    sql: SqlClient,
    p: {
      ids: string[];
      finished: number[];
      failed: number[];
      failNow: boolean[];
      errors: Array<string | null>;
      queued: { runIds: string[]; keys: string[]; jobIds: string[] };
    },
  ): Promise<Array<{ id: string; state: string }>> {
    return this.run(
      sql,
      `WITH q AS (
         UPDATE ${this.s}.workflow_steps s SET state = 'queued', job_id = u.job_id
         FROM unnest($6::bigint[], $7::text[], $8::bigint[]) AS u(run_id, key, job_id)
         WHERE s.run_id = u.run_id AND s.key = u.key AND s.state = 'blocked'
         RETURNING 1
       )
       UPDATE ${this.s}.workflow_runs r SET
         steps_open = r.steps_open - u.finished,
         steps_failed = r.steps_failed + u.failed,
         error = COALESCE(r.error, u.error::jsonb),
         state = CASE
           WHEN r.state <> 'running' THEN r.state
           WHEN u.fail_now = 1 THEN 'failed'
           WHEN r.steps_open - u.finished = 0 THEN CASE WHEN r.steps_failed + u.failed > 0 THEN 'failed' ELSE 'succeeded' END
           ELSE r.state END,
         finished_at = CASE
           WHEN r.state = 'running' AND (u.fail_now = 1 OR r.steps_open - u.finished = 0) THEN now()
           ELSE r.finished_at END
       FROM unnest($1::bigint[], $2::int[], $3::int[], $4::int[], $5::text[]) AS u(id, finished, failed, fail_now, error)
       CROSS JOIN (SELECT count(*) FROM q) AS queued
       WHERE r.id = u.id
       RETURNING r.id::text AS id, r.state`,
      [p.ids, p.finished, p.failed, p.failNow.map((f) => (f ? 1 : 0)), p.errors, p.queued.runIds, p.queued.keys, p.queued.jobIds],
    );
  }

  /** Cancels a running run: its blocked steps will never run. Returns the jobs of its queued steps. */
  async runCancel(sql: SqlClient, p: { id: string }): Promise<{ found: boolean; cancelled: boolean; jobIds: string[] }> {
    const [run] = await this.run(sql, `SELECT state FROM ${this.s}.workflow_runs WHERE id = $1 FOR UPDATE`, [p.id]);
    if (!run) return { found: false, cancelled: false, jobIds: [] };
    if (run.state !== 'running') return { found: true, cancelled: false, jobIds: [] };
    const rows = await this.run<{ blocked: number; job_ids: string[] | null }>(
      sql,
      `WITH blocked AS (
         UPDATE ${this.s}.workflow_steps SET state = 'cancelled' WHERE run_id = $1 AND state = 'blocked' RETURNING key
       ),
       queued AS (SELECT job_id FROM ${this.s}.workflow_steps WHERE run_id = $1 AND state = 'queued'),
       upd AS (
         UPDATE ${this.s}.workflow_runs SET state = 'cancelled', finished_at = now(),
           steps_open = steps_open - (SELECT count(*) FROM blocked),
           steps_failed = steps_failed + (SELECT count(*) FROM blocked)
         WHERE id = $1 RETURNING id
       )
       SELECT (SELECT count(*) FROM blocked)::int AS blocked, (SELECT array_agg(job_id::text) FROM queued) AS job_ids
       FROM upd`,
      [p.id],
    );
    return { found: true, cancelled: true, jobIds: rows[0]?.job_ids ?? [] };
  }

  runGet(sql: SqlClient, p: { id: string }): Promise<RunRow[]> {
    return this.run(
      sql,
      `SELECT id::text AS id, name, kind, state, on_failure, steps_total, steps_open, steps_failed, error, created_at, finished_at
       FROM ${this.s}.workflow_runs WHERE id = $1`,
      [p.id],
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Steps and edges

  /** Stores a flow's steps and edges (one statement). */
  stepsInsert(sql: SqlClient, p: { runId: string; steps: readonly StepInsert[] }): Promise<Row[]> {
    const { steps } = p;
    const parents: string[] = [];
    const children: string[] = [];
    for (const step of steps) {
      for (const parent of step.parents) {
        parents.push(parent);
        children.push(step.key);
      }
    }
    return this.run(
      sql,
      `WITH st AS (
         INSERT INTO ${this.s}.workflow_steps (run_id, key, position, spec, input, parents, blocking, state, job_id)
         SELECT $1::bigint, u.key, u.position, u.spec::jsonb, u.input, ARRAY(SELECT jsonb_array_elements_text(u.parents::jsonb)),
                u.blocking, u.state, u.job_id
         FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::bigint[])
           AS u(key, position, spec, input, parents, blocking, state, job_id)
         RETURNING 1
       ),
       ed AS (
         INSERT INTO ${this.s}.workflow_edges (run_id, parent_key, child_key)
         SELECT $1::bigint, e.parent_key, e.child_key FROM unnest($10::text[], $11::text[]) AS e(parent_key, child_key)
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM st)::int AS steps, (SELECT count(*) FROM ed)::int AS edges`,
      [
        p.runId,
        steps.map((s) => s.key),
        steps.map((s) => s.position),
        steps.map((s) => s.spec),
        steps.map((s) => s.input),
        steps.map((s) => JSON.stringify(s.parents)),
        steps.map((s) => s.blocking),
        steps.map((s) => s.state),
        steps.map((s) => s.jobId),
        parents,
        children,
      ],
    );
  }

  /**
   * Marks the steps run by these jobs final (only once: a step leaves `queued` a single time) and,
   * in the same statement, takes one blocking parent off each child of the steps that succeeded,
   * in the runs that go on (running, and not failing fast in this batch). Returns the steps that
   * finished, and the children it touched (those left with 0 blocking parents are runnable). Run
   * it after `runsLock` (pipelined in the same round trip): it reads the runs' current state.
   */
  async stepsFinish(
    sql: SqlClient,
    p: { jobIds: string[]; states: string[] },
  ): Promise<{
    finished: Array<{ run_id: string; key: string; state: string; job_id: string }>;
    touched: TouchedStep[];
  }> {
    const rows = await this.run<{ fin: boolean; run_id: string; key: string; state: string; job_id: string } & Omit<TouchedStep, 'run_id' | 'key'>>(
      sql,
      `WITH fin AS (
         UPDATE ${this.s}.workflow_steps s SET state = u.state
         FROM unnest($1::bigint[], $2::text[]) AS u(job_id, state)
         WHERE s.job_id = u.job_id AND s.state = 'queued'
         RETURNING s.run_id, s.key, s.state, s.job_id
       ),
       go AS (
         SELECT r.id FROM ${this.s}.workflow_runs r
         WHERE r.id IN (SELECT run_id FROM fin) AND r.state = 'running'
           AND NOT (r.on_failure = 'fail-fast' AND EXISTS (SELECT 1 FROM fin f WHERE f.run_id = r.id AND f.state <> 'succeeded'))
       ),
       counts AS (
         SELECT e.run_id, e.child_key, count(*)::int AS n
         FROM fin f JOIN go ON go.id = f.run_id
         JOIN ${this.s}.workflow_edges e ON e.run_id = f.run_id AND e.parent_key = f.key
         WHERE f.state = 'succeeded'
         GROUP BY e.run_id, e.child_key
       ),
       unb AS (
         UPDATE ${this.s}.workflow_steps s SET blocking = s.blocking - c.n
         FROM counts c WHERE s.run_id = c.run_id AND s.key = c.child_key AND s.state = 'blocked'
         RETURNING s.run_id, s.key, s.blocking, s.spec, s.input, s.parents
       )
       SELECT true AS fin, run_id::text AS run_id, key, state, job_id::text AS job_id,
              NULL::int AS blocking, NULL::jsonb AS spec, NULL::text AS input, NULL::text[] AS parents
       FROM fin
       UNION ALL
       SELECT false, run_id::text, key, NULL, NULL, blocking, spec, input, parents FROM unb`,
      [p.jobIds, p.states],
    );
    const finished: Array<{ run_id: string; key: string; state: string; job_id: string }> = [];
    const touched: TouchedStep[] = [];
    for (const r of rows) {
      if (r.fin) finished.push({ run_id: r.run_id, key: r.key, state: r.state, job_id: r.job_id });
      else touched.push({ run_id: r.run_id, key: r.key, blocking: r.blocking, spec: r.spec, input: r.input, parents: r.parents });
    }
    return { finished, touched };
  }

  /** The job and stored result of the given steps. */
  stepsResults(
    sql: SqlClient,
    p: { runIds: string[]; keys: string[] },
  ): Promise<Array<{ run_id: string; key: string; job_id: string | null; result: unknown }>> {
    return this.run(
      sql,
      `SELECT s.run_id::text AS run_id, s.key, s.job_id::text AS job_id, j.result
       FROM unnest($1::bigint[], $2::text[]) AS u(run_id, key)
       JOIN ${this.s}.workflow_steps s ON s.run_id = u.run_id AND s.key = u.key
       LEFT JOIN ${this.s}.jobs j ON j.id = s.job_id`,
      [p.runIds, p.keys],
    );
  }

  /** Steps that could not be pushed (a plugin answered the push with another job): failed without a job. */
  stepsFailUnpushed(sql: SqlClient, p: { runIds: string[]; keys: string[] }): Promise<Row[]> {
    return this.run(
      sql,
      `UPDATE ${this.s}.workflow_steps s SET state = 'failed'
       FROM unnest($1::bigint[], $2::text[]) AS u(run_id, key)
       WHERE s.run_id = u.run_id AND s.key = u.key AND s.state = 'blocked'`,
      [p.runIds, p.keys],
    );
  }

  /** Fail-fast: every blocked step of these runs is cancelled. Returns how many per run. */
  stepsCancelBlocked(sql: SqlClient, p: { runIds: string[] }): Promise<Array<{ run_id: string; n: number }>> {
    return this.run(
      sql,
      `WITH c AS (
         UPDATE ${this.s}.workflow_steps SET state = 'cancelled' WHERE run_id = ANY($1::bigint[]) AND state = 'blocked' RETURNING run_id
       )
       SELECT run_id::text AS run_id, count(*)::int AS n FROM c GROUP BY run_id`,
      [p.runIds],
    );
  }

  /** Continue policy: the blocked descendants of failed steps can never run; they are cancelled. */
  stepsCancelDescendants(sql: SqlClient, p: { runIds: string[]; keys: string[] }): Promise<Array<{ run_id: string; n: number }>> {
    return this.run(
      sql,
      `WITH RECURSIVE d(run_id, key) AS (
         SELECT e.run_id, e.child_key FROM ${this.s}.workflow_edges e
         JOIN unnest($1::bigint[], $2::text[]) AS u(run_id, key) ON e.run_id = u.run_id AND e.parent_key = u.key
         UNION
         SELECT e.run_id, e.child_key FROM ${this.s}.workflow_edges e JOIN d ON e.run_id = d.run_id AND e.parent_key = d.key
       ),
       c AS (
         UPDATE ${this.s}.workflow_steps s SET state = 'cancelled' FROM d
         WHERE s.run_id = d.run_id AND s.key = d.key AND s.state = 'blocked'
         RETURNING s.run_id
       )
       SELECT run_id::text AS run_id, count(*)::int AS n FROM c GROUP BY run_id`,
      [p.runIds, p.keys],
    );
  }

  /** Jobs of queued steps of these runs that have not started (fail-fast cancels them). */
  stepsPendingJobs(sql: SqlClient, p: { runIds: string[] }): Promise<Array<{ job_id: string }>> {
    return this.run(
      sql,
      `SELECT s.job_id::text AS job_id FROM ${this.s}.workflow_steps s JOIN ${this.s}.jobs j ON j.id = s.job_id
       WHERE s.run_id = ANY($1::bigint[]) AND s.state = 'queued' AND j.state = 'pending'
       ORDER BY s.job_id`,
      [p.runIds],
    );
  }

  /** Results of a step's parents, in the order the step names them. */
  stepParentResults(sql: SqlClient, p: { runId: string; key: string }): Promise<Array<{ key: string; result: unknown; state: string | null }>> {
    return this.run(
      sql,
      `SELECT par.key, j.result, j.state
       FROM ${this.s}.workflow_steps c
       CROSS JOIN LATERAL unnest(c.parents) WITH ORDINALITY AS k(key, ord)
       JOIN ${this.s}.workflow_steps par ON par.run_id = c.run_id AND par.key = k.key
       LEFT JOIN ${this.s}.jobs j ON j.id = par.job_id
       WHERE c.run_id = $1 AND c.key = $2
       ORDER BY k.ord`,
      [p.runId, p.key],
    );
  }

  stepsGet(sql: SqlClient, p: { runId: string }): Promise<StepRow[]> {
    return this.run(
      sql,
      `SELECT s.key, s.position, s.parents, s.state AS step_state, s.input, s.spec->>'name' AS name, s.job_id::text AS job_id,
              j.state AS job_state, j.result, j.errors, j.started_at, j.finished_at
       FROM ${this.s}.workflow_steps s LEFT JOIN ${this.s}.jobs j ON j.id = s.job_id
       WHERE s.run_id = $1 ORDER BY s.position`,
      [p.runId],
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Subtasks

  subtasksInsert(
    sql: SqlClient,
    p: { parentIds: string[]; rootIds: string[]; totals: number[]; onFailure: string[]; childIds: string[]; childParents: string[] },
  ): Promise<Row[]> {
    return this.run(
      sql,
      `WITH par AS (
         INSERT INTO ${this.s}.workflow_parents (job_id, root_id, total, open, on_failure)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $3::int[], $4::text[])
         RETURNING 1
       )
       INSERT INTO ${this.s}.workflow_subtasks (child_id, parent_id)
       SELECT u.child_id, u.parent_id FROM unnest($5::bigint[], $6::bigint[]) AS u(child_id, parent_id)
       CROSS JOIN (SELECT count(*) FROM par) x`,
      [p.parentIds, p.rootIds, p.totals, p.onFailure, p.childIds, p.childParents],
    );
  }

  /** Locks parents children-first (descending id), the order in which nested releases take them. */
  parentsLock(sql: SqlClient, p: { ids: string[] }): Promise<Array<{ job_id: string }>> {
    return this.run(
      sql,
      `SELECT job_id::text AS job_id FROM ${this.s}.workflow_parents WHERE job_id = ANY($1::bigint[]) ORDER BY job_id DESC FOR UPDATE`,
      [p.ids],
    );
  }

  /**
   * Counts children that ended into their parents — each child once (its row's state is set only
   * while it is null). Returns the parents it changed, with what is left open.
   */
  subtasksFinish(
    sql: SqlClient,
    p: { childIds: string[]; states: string[] },
  ): Promise<Array<{ job_id: string; open: number; failed: number; total: number; on_failure: string; attempt: number | null }>> {
    return this.run(
      sql,
      `WITH fin AS (
         UPDATE ${this.s}.workflow_subtasks s SET state = u.state
         FROM unnest($1::bigint[], $2::text[]) AS u(child_id, state)
         WHERE s.child_id = u.child_id AND s.state IS NULL
         RETURNING s.parent_id, s.state
       ),
       agg AS (
         SELECT parent_id, count(*)::int AS n, (count(*) FILTER (WHERE state <> 'succeeded'))::int AS f FROM fin GROUP BY parent_id
       )
       UPDATE ${this.s}.workflow_parents par SET open = par.open - agg.n, failed = par.failed + agg.f
       FROM agg WHERE par.job_id = agg.parent_id
       RETURNING par.job_id::text AS job_id, par.open, par.failed, par.total, par.on_failure,
         (SELECT j.attempt FROM ${this.s}.jobs j WHERE j.id = par.job_id) AS attempt`,
      [p.childIds, p.states],
    );
  }

  /** Children not yet finished of these parents (cancelled parents cancel them). */
  subtasksUnfinished(sql: SqlClient, p: { parentIds: string[] }): Promise<Array<{ child_id: string }>> {
    return this.run(
      sql,
      `SELECT child_id::text AS child_id FROM ${this.s}.workflow_subtasks WHERE parent_id = ANY($1::bigint[]) AND state IS NULL ORDER BY child_id`,
      [p.parentIds],
    );
  }

  parentGet(sql: SqlClient, p: { id: string }): Promise<ParentRow[]> {
    return this.run(
      sql,
      `SELECT job_id::text AS job_id, root_id::text AS root_id, total, open, failed, on_failure, created_at
       FROM ${this.s}.workflow_parents WHERE job_id = $1`,
      [p.id],
    );
  }

  subtasksGet(sql: SqlClient, p: { parentId: string }): Promise<Array<{ child_id: string; state: string | null }>> {
    return this.run(sql, `SELECT child_id::text AS child_id, state FROM ${this.s}.workflow_subtasks WHERE parent_id = $1 ORDER BY child_id`, [
      p.parentId,
    ]);
  }

  // ---------------------------------------------------------------------------------------------
  // Pruning

  /**
   * Jobs were deleted (the pruner): delete what hangs off them — their subtask rows, and every
   * finished run none of whose jobs remain.
   */
  prune(sql: SqlClient, p: { jobIds: readonly string[] }): Promise<Array<{ subtasks: number; parents: number; runs: number }>> {
    return this.run(
      sql,
      `WITH st AS (DELETE FROM ${this.s}.workflow_subtasks WHERE child_id = ANY($1::bigint[]) OR parent_id = ANY($1::bigint[]) RETURNING 1),
       pa AS (DELETE FROM ${this.s}.workflow_parents WHERE job_id = ANY($1::bigint[]) RETURNING 1),
       touched AS (SELECT DISTINCT run_id FROM ${this.s}.workflow_steps WHERE job_id = ANY($1::bigint[])),
       ru AS (
         DELETE FROM ${this.s}.workflow_runs r USING touched t
         WHERE r.id = t.run_id AND r.state <> 'running'
           AND NOT EXISTS (
             SELECT 1 FROM ${this.s}.workflow_steps s JOIN ${this.s}.jobs j ON j.id = s.job_id
             WHERE s.run_id = r.id AND NOT (s.job_id = ANY($1::bigint[]))
           )
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM st)::int AS subtasks,
              (SELECT count(*) FROM pa)::int AS parents, (SELECT count(*) FROM ru)::int AS runs`,
      [p.jobIds],
    );
  }
}
