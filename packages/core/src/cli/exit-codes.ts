/**
 * The command line's exit codes (README, "Exit codes"), and which errors map to which: the code
 * of a DocketError decides, a PostgreSQL error is a database error.
 */
import { isDocketError } from '../errors.js';
import { UsageError } from './args.js';

export const EXIT = Object.freeze({
  OK: 0,
  /** The command ran and the answer is no: pending migrations, no such job, a job in the wrong state. */
  NO: 1,
  USAGE: 2,
  DATABASE: 3,
  CONFIG: 4,
  /** Anything else: a plugin failed, the worker could not start or stopped on an error. */
  FAILED: 5,
});

const NO_CODES = new Set(['DOCKET_JOB_NOT_FOUND', 'DOCKET_JOB_STATE']);
const DATABASE_CODES = new Set(['DOCKET_CONNECTION_FAILED', 'DOCKET_MIGRATIONS_PENDING', 'DOCKET_SCHEMA_TOO_NEW', 'DOCKET_MIGRATION_FAILED']);

/** A PostgreSQL error as the driver throws it (SQLSTATE in `code`). */
function isPostgresError(error: unknown): error is Error & { code: string } {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.USAGE;
  if (isDocketError(error)) {
    if (error.code === 'DOCKET_CONFIG_INVALID') return EXIT.CONFIG;
    if (NO_CODES.has(error.code)) return EXIT.NO;
    if (DATABASE_CODES.has(error.code)) return EXIT.DATABASE;
    // Anything else the core refused is a value the command line passed through from its arguments.
    if (error.code.startsWith('DOCKET_INVALID_')) return EXIT.USAGE;
    return EXIT.FAILED;
  }
  return isPostgresError(error) ? EXIT.DATABASE : EXIT.FAILED;
}

/** The one line an error is reported as: `docket: CODE: message` (the first line of the message only, never a stack). */
export function errorLine(error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]?.trim() ?? '';
  if (isDocketError(error)) return `docket: ${error.code}: ${message}`;
  if (isPostgresError(error)) return `docket: SQLSTATE ${error.code}: ${message}`;
  if (error instanceof UsageError) return `docket: ${message}`;
  const code = typeof (error as { code?: unknown })?.code === 'string' ? `${(error as { code: string }).code}: ` : '';
  return `docket: ${code}${message}`;
}
