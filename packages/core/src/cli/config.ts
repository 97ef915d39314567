/**
 * Where the command line gets its app: a config module (`docket worker CONFIG`, `--config FILE`,
 * or the module argument of migrate/pending) or `--url`/DATABASE_URL with `--schema`.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Docket } from '../app.js';
import { ConfigInvalidError } from '../errors.js';
import type { WorkerOptions } from '../worker/worker.js';
import { UsageError } from './args.js';

/**
 * What a config module's default export is (or a function, possibly async, returns): the app,
 * with its plugins and connection, and for `docket worker` the worker's options.
 *
 *   // docket.config.ts
 *   export default { app, worker: { jobs: [sendEmail], queues: { emails: {} } } } satisfies DocketConfig;
 */
export interface DocketConfig {
  app: Docket;
  /** The worker `docket worker` runs (`new Worker(app, worker)`). */
  worker?: WorkerOptions;
}

export async function loadConfig(file: string): Promise<DocketConfig> {
  let loaded: { default?: unknown };
  try {
    loaded = (await import(pathToFileURL(resolve(file)).href)) as { default?: unknown };
  } catch (error) {
    throw new ConfigInvalidError(
      `${file}: the config module could not be loaded: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
      {
        cause: error,
        details: { file },
      },
    );
  }
  let value: unknown;
  try {
    value = typeof loaded.default === 'function' ? await (loaded.default as () => unknown)() : loaded.default;
  } catch (error) {
    throw new ConfigInvalidError(
      `${file}: the config module's default export threw: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
      {
        cause: error,
        details: { file },
      },
    );
  }
  if (value instanceof Docket) return { app: value };
  if (value !== null && typeof value === 'object' && (value as { app?: unknown }).app instanceof Docket) {
    const config = value as DocketConfig;
    if (config.worker !== undefined && (config.worker === null || typeof config.worker !== 'object')) {
      throw new ConfigInvalidError(`${file}: \`worker\` must be the worker's options ({ jobs, queues, ... }).`, { details: { file } });
    }
    return config;
  }
  throw new ConfigInvalidError(
    `${file}: the default export must be a Docket app, { app, worker }, or a function returning one (got ${value === null ? 'null' : typeof value}).`,
    { details: { file } },
  );
}

/** The app of a command that reads or changes the database. */
export async function appFrom(command: string, options: { url?: string; schema?: string; config?: string }): Promise<Docket> {
  if (options.config !== undefined) {
    if (options.url !== undefined || options.schema !== undefined)
      throw new UsageError('--config replaces --url and --schema; give one or the other', command);
    return (await loadConfig(options.config)).app;
  }
  const url = options.url ?? process.env.DATABASE_URL;
  if (!url) throw new UsageError('no database: pass --url URL, set DATABASE_URL, or give a config module', command);
  return new Docket({ connection: url, schema: options.schema ?? 'docket', listen: false, maxConnections: 2 });
}
