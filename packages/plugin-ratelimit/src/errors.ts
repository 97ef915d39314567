/**
 * The rate-limit plugin's own error codes (docs/ERRORS.md, section `ratelimit`). Malformed options
 * and keys are the core's DOCKET_INVALID_OPTION / DOCKET_INVALID_JOB_OPTION like any other; these
 * are the failures only rate limits have.
 */
import { definePluginErrors } from '@docket/core';

export const RATELIMIT_ERRORS = definePluginErrors('ratelimit', {
  DOCKET_RATELIMIT_NO_KEY_RULE:
    'A job carries a rate-limit key (withRateLimitKey) but its queue has no perKey rule in ratelimit({ queues }), so the key would limit nothing; nothing is stored. Raised in a push hook: it is the `cause` of DOCKET_PLUGIN_FAILED.',
});

export class RateLimitNoKeyRuleError extends RATELIMIT_ERRORS.errorClass('DOCKET_RATELIMIT_NO_KEY_RULE') {}
