/**
 * The recovery plugin's own error code (docs/ERRORS.md, section `recovery`). It is not thrown: it
 * is written into the `errors` of the job it ends, like the core's codes for stopped attempts. A
 * job put back after its worker was lost keeps the core's DOCKET_WORKER_SHUTDOWN, and one stuck
 * past its time limit the core's DOCKET_LIMIT_EXCEEDED: those are the core's concepts.
 */
import { definePluginErrors } from '@docket/core';

export const RECOVERY_ERRORS = definePluginErrors('recovery', {
  DOCKET_RECOVERY_POISON_JOB:
    'A job kept losing its worker (or getting stuck) and was recovered maxRecoveries times, so it was failed instead of run again (written into the job’s errors).',
});

export class PoisonJobError extends RECOVERY_ERRORS.errorClass('DOCKET_RECOVERY_POISON_JOB') {}
