/**
 * @docket/plugin-workflow — workflows (named DAGs), subtasks, chains, groups, chords and
 * link / linkError callbacks for Docket, built only on the core's public hooks.
 *
 *   const app = new Docket({ connection, plugins: [workflows()] });
 *   const run = await pushWorkflow(app, chain(fetchPage.withArgs({ url }), parse, store));
 *   const done = await waitForWorkflow(app, run); // done.result: store's result
 */
export { WORKFLOW_ERRORS, WorkflowDefinitionError, WorkflowNotFoundError, WorkflowStepDeduplicatedError } from './errors.js';
export { workflows, PLUGIN_NAME, PLUGIN_VERSION, NOTIFY_TOPIC, type WorkflowPlugin, type WorkflowPluginOptions, type SubtaskFailurePolicy, type WorkflowStepContext } from './plugin.js';
export {
  workflow,
  chain,
  group,
  chord,
  link,
  linkError,
  Flow,
  WorkflowBuilder,
  GroupFlow,
  FAILURE_POLICIES,
  type Step,
  type StepResult,
  type StepArgs,
  type StepOptions,
  type StepInput,
  type FlowStep,
  type FlowKind,
  type FailurePolicy,
  type FailureInfo,
  type GroupResults,
  type Accepting,
  type ArgsMismatch,
  type LinkSpec,
} from './flows.js';
export {
  pushWorkflow,
  getWorkflow,
  waitForWorkflow,
  cancelWorkflow,
  exportWorkflow,
  getSubtasks,
  type WorkflowRef,
  type WorkflowRecord,
  type WorkflowStepRecord,
  type WorkflowState,
  type StepState,
  type PushWorkflowOptions,
  type WaitForWorkflowOptions,
  type SubtaskSummary,
} from './api.js';
export { renderWorkflow, type GraphFormat } from './graph.js';
export { META } from './meta.js';
export type { JobSpec } from './spec.js';
export { MIGRATIONS } from './migrations.js';
