/**
 * The workflow plugin's own error codes (docs/ERRORS.md, section `workflow`). Option objects (an
 * unknown key, a failure policy that does not exist) stay the core's DOCKET_INVALID_OPTION, and
 * something that is not a job where a job belongs stays DOCKET_INVALID_JOB_OPTION.
 */
import { definePluginErrors } from '@docket/core';

export const WORKFLOW_ERRORS = definePluginErrors('workflow', {
  DOCKET_WORKFLOW_INVALID_FLOW:
    'A workflow, chain, group or chord cannot be built: a bad name or step key, a key used twice, `after` naming a step not declared before it (or one twice), no steps, or a chord whose header is not a group.',
  DOCKET_WORKFLOW_NOT_FOUND: 'No workflow run with that id exists (it may have been pruned).',
  DOCKET_WORKFLOW_STEP_DEDUPLICATED:
    'A deduplicating plugin (a unique key) answered a workflow step with an existing job; steps need jobs of their own, so nothing was pushed.',
});

export class WorkflowDefinitionError extends WORKFLOW_ERRORS.errorClass('DOCKET_WORKFLOW_INVALID_FLOW') {}
export class WorkflowNotFoundError extends WORKFLOW_ERRORS.errorClass('DOCKET_WORKFLOW_NOT_FOUND') {}
export class WorkflowStepDeduplicatedError extends WORKFLOW_ERRORS.errorClass('DOCKET_WORKFLOW_STEP_DEDUPLICATED') {}
