/**
 * The dead-letter plugin's own error codes (docs/ERRORS.md, section `dead-letter`). A malformed
 * option or id is the core's DOCKET_INVALID_OPTION.
 */
import { definePluginErrors } from '@docket/core';

export const DEAD_LETTER_ERRORS = definePluginErrors('dead-letter', {
  DOCKET_DEAD_LETTER_NOT_FOUND: 'No dead letter with that id exists (it may have been deleted); nothing was re-driven.',
  DOCKET_DEAD_LETTER_ALREADY_REDRIVEN:
    'The dead letter was re-driven already (`details.jobId` names the job it was pushed as); a dead letter is re-driven once, and nothing was pushed.',
});

export class DeadLetterNotFoundError extends DEAD_LETTER_ERRORS.errorClass('DOCKET_DEAD_LETTER_NOT_FOUND') {}
export class DeadLetterAlreadyRedrivenError extends DEAD_LETTER_ERRORS.errorClass('DOCKET_DEAD_LETTER_ALREADY_REDRIVEN') {}
