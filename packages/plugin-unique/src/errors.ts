/**
 * The unique plugin's own error codes (docs/ERRORS.md, section `unique`). A key or a period that
 * is malformed is an invalid job option like any other (the core's DOCKET_INVALID_JOB_OPTION);
 * these are the failures only unique keys have.
 */
import { definePluginErrors } from '@docket/core';

export const UNIQUE_ERRORS = definePluginErrors('unique', {
  DOCKET_UNIQUE_CONFLICTING_OPTIONS:
    'withUniqueKey options that cannot go together: throttleMs with debounceMs, or debounceMs on a push that sets its own run time (withDelay/withScheduledAt).',
  DOCKET_UNIQUE_HOLDER_GONE:
    'The job holding the unique key finished and was deleted while the push ran, so there is no job to answer with; push again. Raised in a push hook: it is the `cause` of DOCKET_PLUGIN_FAILED.',
});

export class UniqueOptionsConflictError extends UNIQUE_ERRORS.errorClass('DOCKET_UNIQUE_CONFLICTING_OPTIONS') {}
export class UniqueHolderGoneError extends UNIQUE_ERRORS.errorClass('DOCKET_UNIQUE_HOLDER_GONE') {}
