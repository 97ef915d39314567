/**
 * The cron plugin's own error codes (docs/ERRORS.md, section `cron`). Option mistakes that are not
 * about cron itself (an unknown key, a bad name, a job with its own run time) stay the core's
 * DOCKET_INVALID_OPTION.
 */
import { definePluginErrors } from '@docket/core';

export const CRON_ERRORS = definePluginErrors('cron', {
  DOCKET_CRON_INVALID_EXPRESSION: 'A schedule’s cron expression does not parse, or has no time in the future; nothing is stored.',
  DOCKET_CRON_UNKNOWN_TIMEZONE: 'A schedule’s timezone is not an IANA timezone this runtime knows; nothing is stored.',
  DOCKET_CRON_SCHEDULE_NOT_FOUND: 'No schedule has that name (runNow); nothing was pushed.',
});

export class CronExpressionError extends CRON_ERRORS.errorClass('DOCKET_CRON_INVALID_EXPRESSION') {}
export class CronTimezoneError extends CRON_ERRORS.errorClass('DOCKET_CRON_UNKNOWN_TIMEZONE') {}
export class CronScheduleNotFoundError extends CRON_ERRORS.errorClass('DOCKET_CRON_SCHEDULE_NOT_FOUND') {}
