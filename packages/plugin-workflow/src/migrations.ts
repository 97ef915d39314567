import type { Migration } from '@docket/core';

/** The plugin's migrations (owner 'workflow' in the ledger). Append only. */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'workflow runs, steps and edges; subtask parents and children',
    up: ({ schema }) => `
      -- One row per pushed flow (workflow, chain, group, chord).
      CREATE TABLE ${schema}.workflow_runs (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name          text NOT NULL,
        kind          text NOT NULL CHECK (kind IN ('workflow', 'chain', 'group', 'chord')),
        state         text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
        on_failure    text NOT NULL CHECK (on_failure IN ('fail-fast', 'continue')),
        steps_total   integer NOT NULL CHECK (steps_total > 0),
        -- Steps not yet in a final state, and steps that ended other than succeeded.
        steps_open    integer NOT NULL CHECK (steps_open >= 0),
        steps_failed  integer NOT NULL DEFAULT 0,
        error         jsonb,
        created_at    timestamptz NOT NULL DEFAULT now(),
        finished_at   timestamptz
      );

      -- Steps: a stored job spec until the step is runnable, then the job that runs it.
      CREATE TABLE ${schema}.workflow_steps (
        run_id    bigint NOT NULL REFERENCES ${schema}.workflow_runs (id) ON DELETE CASCADE,
        key       text NOT NULL,
        position  integer NOT NULL,
        spec      jsonb NOT NULL,
        input     text NOT NULL CHECK (input IN ('args', 'previous', 'list')),
        parents   text[] NOT NULL DEFAULT '{}',
        -- Parents that have not succeeded yet; the step is pushed when this reaches 0.
        blocking  integer NOT NULL CHECK (blocking >= 0),
        state     text NOT NULL CHECK (state IN ('blocked', 'queued', 'succeeded', 'failed', 'cancelled')),
        job_id    bigint,
        PRIMARY KEY (run_id, key)
      );
      CREATE INDEX workflow_steps_job_idx ON ${schema}.workflow_steps (job_id) WHERE job_id IS NOT NULL;

      CREATE TABLE ${schema}.workflow_edges (
        run_id      bigint NOT NULL REFERENCES ${schema}.workflow_runs (id) ON DELETE CASCADE,
        parent_key  text NOT NULL,
        child_key   text NOT NULL,
        PRIMARY KEY (run_id, parent_key, child_key)
      );

      -- Subtasks: a parent held 'waiting' counts its unfinished children; a row per child,
      -- finished (state set) once, so a child that runs twice is counted once.
      CREATE TABLE ${schema}.workflow_parents (
        job_id      bigint PRIMARY KEY,
        root_id     bigint NOT NULL,
        total       integer NOT NULL CHECK (total > 0),
        open        integer NOT NULL CHECK (open >= 0),
        failed      integer NOT NULL DEFAULT 0,
        on_failure  text NOT NULL CHECK (on_failure IN ('fail-parent', 'ignore')),
        created_at  timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE ${schema}.workflow_subtasks (
        child_id   bigint PRIMARY KEY,
        parent_id  bigint NOT NULL,
        state      text CHECK (state IN ('succeeded', 'failed', 'cancelled'))
      );
      CREATE INDEX workflow_subtasks_parent_idx ON ${schema}.workflow_subtasks (parent_id);
    `,
  },
]);
