#!/usr/bin/env node
/**
 * `docket-dashboard CONFIG_MODULE [--port 4100] [--host 127.0.0.1] [--base-path /docket] [--read-only]`,
 * also reached as `docket dashboard …` (the core's command line runs `docket-<command>`).
 * CONFIG_MODULE's default export is the Docket app with its plugins (or a function returning it).
 * Secrets come from the environment, so they do not show in the process list:
 *   DOCKET_DASHBOARD_TOKEN                         a bearer token (the login form asks for it)
 *   DOCKET_DASHBOARD_USER, DOCKET_DASHBOARD_PASSWORD  basic credentials
 *   DOCKET_DASHBOARD_SECRET                        signs CSRF tokens and sessions (several processes behind one address)
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Docket, isDocketError } from '@docket/core';
import type { DashboardAuth } from './security.js';
import { serveDashboard } from './serve.js';

const USAGE = `usage: docket dashboard CONFIG_MODULE [--port 4100] [--host 127.0.0.1] [--base-path PATH] [--read-only]
  CONFIG_MODULE: a module whose default export is a Docket app (with its plugins) or a function returning one.
  Authentication from the environment: DOCKET_DASHBOARD_TOKEN, or DOCKET_DASHBOARD_USER and DOCKET_DASHBOARD_PASSWORD.
  Without it the dashboard listens only on a loopback address.`;

class UsageError extends Error {}

function parse(argv: string[]) {
  const out: { module?: string; port?: number; host?: string; basePath?: string; readOnly: boolean } = { readOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (arg === '--port') out.port = Number(value());
    else if (arg === '--host') out.host = value();
    else if (arg === '--base-path') out.basePath = value();
    else if (arg === '--read-only') out.readOnly = true;
    else if (arg === '--help' || arg === '-h') throw new UsageError('');
    else if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
    else if (out.module === undefined) out.module = arg;
    else throw new UsageError(`unexpected argument ${arg}`);
  }
  if (!out.module) throw new UsageError('CONFIG_MODULE is missing');
  return out;
}

function authFromEnv(env: NodeJS.ProcessEnv): DashboardAuth | undefined {
  if (env.DOCKET_DASHBOARD_TOKEN) return { token: env.DOCKET_DASHBOARD_TOKEN };
  if (env.DOCKET_DASHBOARD_USER || env.DOCKET_DASHBOARD_PASSWORD) {
    return { username: env.DOCKET_DASHBOARD_USER ?? '', password: env.DOCKET_DASHBOARD_PASSWORD ?? '' };
  }
  return undefined;
}

async function main(argv: string[]): Promise<void> {
  const args = parse(argv);
  const loaded = (await import(pathToFileURL(resolve(args.module as string)).href)) as { default?: unknown };
  const value = typeof loaded.default === 'function' ? await (loaded.default as () => unknown)() : loaded.default;
  if (!(value instanceof Docket)) throw new UsageError(`${args.module}: the default export must be a Docket app or a function returning one.`);
  const app = value;
  let served: Awaited<ReturnType<typeof serveDashboard>>;
  try {
    served = await serveDashboard(app, {
      port: args.port,
      host: args.host,
      basePath: args.basePath,
      readOnly: args.readOnly,
      auth: authFromEnv(process.env),
      secret: process.env.DOCKET_DASHBOARD_SECRET || undefined,
    });
  } catch (error) {
    await app.close();
    throw error;
  }
  process.stdout.write(`docket dashboard: ${served.url}${args.readOnly ? ' (read-only)' : ''}\n`);
  const stop = async () => {
    await served.close();
    await app.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`${error.message ? `docket dashboard: ${error.message}\n` : ''}${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `docket dashboard: ${isDocketError(error) ? `${error.code}: ` : ''}${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
