/**
 * The concurrency plugin's own error codes (docs/ERRORS.md, section `concurrency`). Malformed
 * options and keys are the core's DOCKET_INVALID_OPTION / DOCKET_INVALID_JOB_OPTION; this is the
 * failure only concurrency keys have.
 */
import { definePluginErrors } from '@docket/core';

export const CONCURRENCY_ERRORS = definePluginErrors('concurrency', {
  DOCKET_CONCURRENCY_QUEUE_NOT_CONFIGURED:
    'A job with a concurrency key was pushed to a queue the concurrency plugin does not govern (not in its `queues`), where the key would limit nothing; nothing is stored. Raised in a push hook: it is the `cause` of DOCKET_PLUGIN_FAILED.',
});

export class ConcurrencyQueueNotConfiguredError extends CONCURRENCY_ERRORS.errorClass('DOCKET_CONCURRENCY_QUEUE_NOT_CONFIGURED') {}
