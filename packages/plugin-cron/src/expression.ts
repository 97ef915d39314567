/**
 * Cron expressions through `cron-parser`: five fields (minute precision) or six (a leading seconds
 * field), names (`mon`, `jan`), steps and ranges, and the `@daily`-style aliases; evaluated in an
 * IANA timezone (daylight-saving changes included).
 */
import { CronExpressionParser } from 'cron-parser';
import { InvalidOptionError } from '@docket/core';

export interface CronSpec {
  readonly expression: string;
  readonly timezone: string;
}

/** Throws DOCKET_INVALID_OPTION unless `timezone` is an IANA zone this runtime knows; returns its canonical name. */
export function checkTimezone(where: string, timezone: unknown): string {
  if (typeof timezone !== 'string' || timezone.trim() === '') {
    throw new InvalidOptionError(`${where}: \`timezone\` must be an IANA timezone name such as 'UTC' or 'Europe/Paris'.`, { details: { where, option: 'timezone' } });
  }
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: timezone }).resolvedOptions().timeZone;
  } catch {
    throw new InvalidOptionError(
      `${where}: unknown timezone '${timezone}'. Use an IANA timezone name such as 'UTC', 'Europe/Paris' or 'America/New_York'.`,
      { details: { where, option: 'timezone', value: timezone } },
    );
  }
}

/** Throws DOCKET_INVALID_OPTION unless the expression parses and has a next time. */
export function checkExpression(where: string, spec: CronSpec): void {
  if (typeof spec.expression !== 'string' || spec.expression.trim() === '') {
    throw new InvalidOptionError(`${where}: \`cron\` must be a cron expression such as '*/5 * * * *' (or with seconds, '*/10 * * * * *').`, {
      details: { where, option: 'cron' },
    });
  }
  try {
    CronExpressionParser.parse(spec.expression, { tz: spec.timezone, currentDate: new Date() }).next();
  } catch (error) {
    throw new InvalidOptionError(
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
