/**
 * The expiry plugin's own error codes (docs/ERRORS.md, section `expiry`). Neither is thrown at a
 * caller: both are written into the `errors` of the job they end (like the core's codes for stopped
 * attempts), so `job.errors.at(-1).code` says why it ended. A malformed time or duration given to a
 * builder is the core's DOCKET_INVALID_JOB_OPTION.
 */
import { definePluginErrors } from '@docket/core';

export const EXPIRY_ERRORS = definePluginErrors('expiry', {
  DOCKET_EXPIRY_EXPIRED:
    'The job did not start before it expired (withExpiresAt/withExpiresIn, or its deadline): it ended `cancelled` without running (again); written into the job’s errors.',
  DOCKET_EXPIRY_DEADLINE_EXCEEDED:
    'The job was still running at its deadline (withDeadline/withDeadlineIn): the attempt was stopped and the job ended `failed` (no retry after a deadline); written into the job’s errors.',
});

export class JobExpiredError extends EXPIRY_ERRORS.errorClass('DOCKET_EXPIRY_EXPIRED') {}
export class DeadlineExceededError extends EXPIRY_ERRORS.errorClass('DOCKET_EXPIRY_DEADLINE_EXCEEDED') {}
