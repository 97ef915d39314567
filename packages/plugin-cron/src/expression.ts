/**
 * Cron expressions through `cron-parser`: five fields (minute precision) or six (a leading seconds
 * field), names (`mon`, `jan`), steps and ranges, and the `@daily`-style aliases; evaluated in an
 * IANA timezone (daylight-saving changes included).
 */

import { InvalidOptionError } from '@docket/core';
import { CronExpressionParser } from 'cron-parser';
import { CronExpressionError, CronTimezoneError } from './errors.js';

export interface CronSpec {
  readonly expression: string;
  readonly timezone: string;
}

/** Throws unless `timezone` is an IANA zone this runtime knows (DOCKET_CRON_UNKNOWN_TIMEZONE; not a string: DOCKET_INVALID_OPTION); returns its canonical name. */
export function checkTimezone(where: string, timezone: unknown): string {
  if (typeof timezone !== 'string' || timezone.trim() === '') {
    throw new InvalidOptionError(`${where}: \`timezone\` must be an IANA timezone name such as 'UTC' or 'Europe/Paris'.`, {
      details: { where, option: 'timezone' },
    });
  }
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: timezone }).resolvedOptions().timeZone;
  } catch {
    throw new CronTimezoneError(
      `${where}: unknown timezone '${timezone}'. Use an IANA timezone name such as 'UTC', 'Europe/Paris' or 'America/New_York'.`,
      { details: { where, option: 'timezone', value: timezone } },
    );
  }
}

/** Throws DOCKET_CRON_INVALID_EXPRESSION unless the expression parses and has a next time (not a string: DOCKET_INVALID_OPTION). */
export function checkExpression(where: string, spec: CronSpec): void {
  if (typeof spec.expression !== 'string') {
    throw new InvalidOptionError(`${where}: \`cron\` must be a cron expression string such as '*/5 * * * *'.`, {
      details: { where, option: 'cron' },
    });
  }
  if (spec.expression.trim() === '') {
    throw new CronExpressionError(`${where}: \`cron\` must be a cron expression such as '*/5 * * * *' (or with seconds, '*/10 * * * * *').`, {
      details: { where, option: 'cron' },
    });
  }
  try {
    CronExpressionParser.parse(spec.expression, { tz: spec.timezone, currentDate: new Date() }).next();
  } catch (error) {
    throw new CronExpressionError(
      `${where}: invalid cron expression '${spec.expression}' (${error instanceof Error ? error.message : String(error)}). ` +
        "Use five fields 'minute hour day-of-month month day-of-week', six with a leading seconds field, or an alias such as '@daily'.",
      { cause: error, details: { where, option: 'cron', value: spec.expression } },
    );
  }
}

/** The first scheduled time strictly after `after`, or null when there is none. */
export function timeAfter(spec: CronSpec, after: Date): Date | null {
  const it = CronExpressionParser.parse(spec.expression, { tz: spec.timezone, currentDate: after });
  try {
    return it.next().toDate();
  } catch {
    return null;
  }
}

/** The last scheduled time strictly before `before`, or null when there is none. */
export function timeBefore(spec: CronSpec, before: Date): Date | null {
  const it = CronExpressionParser.parse(spec.expression, { tz: spec.timezone, currentDate: before });
  try {
    return it.prev().toDate();
  } catch {
    return null;
  }
}

/** Scheduled times from `from` (inclusive) to `to` (inclusive), at most `limit`; also the first time after them. */
export function timesBetween(spec: CronSpec, from: Date, to: Date, limit: number): { times: Date[]; next: Date | null } {
  const it = CronExpressionParser.parse(spec.expression, { tz: spec.timezone, currentDate: new Date(from.getTime() - 1) });
  const times: Date[] = [];
  for (;;) {
    let t: Date;
    try {
      t = it.next().toDate();
    } catch {
      return { times, next: null };
    }
    if (t > to || times.length >= limit) return { times, next: t };
    times.push(t);
  }
}
