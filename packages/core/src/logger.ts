/**
 * Where Docket and its plugins write what happens (the app's `logger` option; `app.logger`).
 * `fields` carries structured context, such as `{ error }` or a job id; pass your own logger to send
 * both to your logging library.
 */
export interface Logger {
  /** Detail for whoever debugs a job or Docket itself (each failed attempt, say). */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Something worth knowing happened (a worker stopping gracefully on a signal). */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Something unexpected that Docket handled (an outcome not written because the job was recovered meanwhile). */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Something failed in the background, where no caller can be told (a heartbeat, a hook after commit, a maintenance tick). */
  error(message: string, fields?: Record<string, unknown>): void;
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** Writes warn and error (or the level in DOCKET_LOG) to stderr. */
export function consoleLogger(level: (typeof LEVELS)[number] = (process.env.DOCKET_LOG as never) ?? 'warn'): Logger {
  const min = Math.max(0, LEVELS.indexOf(level));
  const write = (at: (typeof LEVELS)[number]) => (message: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(at) < min) return;
    const extra = fields
      ? ` ${Object.entries(fields)
          .map(([k, v]) => `${k}=${v instanceof Error ? (v.stack ?? v.message) : typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
          .join(' ')}`
      : '';
    process.stderr.write(`[docket] ${at}: ${message}${extra}\n`);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** A logger that drops everything (what `logger: false` gives). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
