import os from 'node:os';
import { InvalidOptionError } from './errors.js';
import { describe } from './options.js';

/** PostgreSQL keeps the first NAMEDATALEN - 1 bytes of an application_name. */
const MAX_LENGTH = 63;
/** Only printable ASCII survives: the server turns any other byte into '?'. */
const PRINTABLE = /^[\x20-\x7e]+$/;

/**
 * What Docket's own connections call themselves when nobody chose: `docket:<host>-<pid>`, so an
 * operator tells Docket's sessions from the application's in pg_stat_activity, and one process
 * from another. It is `<host>-<pid>` rather than the worker id because the pool exists before any
 * worker (and one pool serves every worker of the process); worker ids start with the same
 * `<host>-<pid>`, so the two line up. The host is shortened to fit the 63 bytes PostgreSQL keeps.
 */
export function defaultApplicationName(): string {
  const tail = `-${process.pid}`;
  const host = os
    .hostname()
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, MAX_LENGTH - 'docket:'.length - tail.length);
  return `docket:${host}${tail}`;
}

/**
 * The application_name for connections Docket opens from a URL, or undefined to leave the choice
 * to PGAPPNAME (libpq's environment variable, which postgres.js reads too): Docket's default only
 * fills in when neither the option nor the environment names the application. A name in the URL
 * (`?application_name=…`) wins over both; postgres.js applies it after these options.
 */
export function applicationNameOption(where: string, value: unknown): string | undefined {
  if (value === undefined) return process.env.PGAPPNAME ? undefined : defaultApplicationName();
  if (typeof value !== 'string' || !PRINTABLE.test(value) || value.length > MAX_LENGTH) {
    throw new InvalidOptionError(
      `${where}: \`applicationName\` must be 1 to ${MAX_LENGTH} printable ASCII characters (PostgreSQL keeps no more), got ${describe(value)}.`,
      { details: { where, option: 'applicationName' } },
    );
  }
  return value;
}
