export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** Writes warn and error (or the level in DOCKET_LOG) to stderr. */
export function consoleLogger(level: (typeof LEVELS)[number] = (process.env.DOCKET_LOG as never) ?? 'warn'): Logger {
  const min = Math.max(0, LEVELS.indexOf(level));
  const write = (at: (typeof LEVELS)[number]) => (message: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(at) < min) return;
    const extra = fields ? ` ${Object.entries(fields).map(([k, v]) => `${k}=${v instanceof Error ? (v.stack ?? v.message) : typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ')}` : '';
    process.stderr.write(`[docket] ${at}: ${message}${extra}\n`);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
