/**
 * @docket/plugin-workflow — workflows (named DAGs), subtasks, chains, groups, chords and
 * link / linkError callbacks for Docket, built only on the core's public hooks.
 *
 *   const app = new Docket({ connection, plugins: [workflows()] });
 *   const run = await pushWorkflow(app, chain(fetchPage.withArgs({ url }), parse, store));
 *   const done = await waitForWorkflow(app, run); // done.result: store's result
 */

export {
  cancelWorkflow,
  exportWorkflow,
  getSubtasks,
  getWorkflow,
  type PushWorkflowOptions,
  pushWorkflow,
  type StepState,
  type SubtaskSummary,
  type WaitForWorkflowOptions,
  type WorkflowRecord,
  type WorkflowRef,
  type WorkflowState,
  type WorkflowStepRecord,
  waitForWorkflow,
} from './api.js';
export { WORKFLOW_ERRORS, WorkflowDefinitionError, WorkflowNotFoundError, WorkflowStepDeduplicatedError } from './errors.js';
export {
  type Accepting,
  type ArgsMismatch,
  chain,
  chord,
  FAILURE_POLICIES,
  type FailureInfo,
  type FailurePolicy,
  Flow,
  type FlowKind,
  type FlowStep,
  GroupFlow,
  type GroupResults,
  group,
  type LinkSpec,
  link,
  linkError,
  type Step,
  type StepArgs,
  type StepInput,
  type StepOptions,
  type StepResult,
  WorkflowBuilder,
  workflow,
} from './flows.js';
export { type GraphFormat, renderWorkflow } from './graph.js';
export { META } from './meta.js';
export { MIGRATIONS } from './migrations.js';
export {
  NOTIFY_TOPIC,
  PLUGIN_NAME,
  PLUGIN_VERSION,
  type SubtaskFailurePolicy,
  type WorkflowPlugin,
  type WorkflowPluginOptions,
  type WorkflowStepContext,
  workflows,
} from './plugin.js';
export type { JobSpec } from './spec.js';
