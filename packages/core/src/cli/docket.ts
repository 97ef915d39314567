#!/usr/bin/env node
/**
 * `docket` command line. Today: `docket migrate`, the same as `app.migrate()`.
 *
 *   docket migrate --url postgres://… [--schema docket]
 *       the core's migrations only
 *   docket migrate ./docket.config.js
 *       a module whose default export is a Docket app, or a function returning one (possibly
 *       async): its plugins' migrations are applied too
 *   docket pending [same arguments]
 *       lists the migrations the database lacks; exit code 1 when there are any
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Docket } from '../app.js';
import { isDocketError } from '../errors.js';

const USAGE = `usage: docket <migrate|pending> (--url URL [--schema NAME] | CONFIG_MODULE)
  CONFIG_MODULE: a module whose default export is a Docket app or a function returning one.
  --url defaults to $DATABASE_URL.`;

async function appFrom(args: string[]): Promise<Docket> {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const module = args.find((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')));
  if (module) {
    const loaded = (await import(pathToFileURL(resolve(module)).href)) as { default?: unknown };
    const value = typeof loaded.default === 'function' ? await (loaded.default as () => unknown)() : loaded.default;
    if (!(value instanceof Docket)) throw new Error(`${module}: the default export must be a Docket app or a function returning one.`);
    return value;
  }
  const url = flag('--url') ?? process.env.DATABASE_URL;
  if (!url) throw new Error(`no database: pass --url or set DATABASE_URL.\n${USAGE}`);
  return new Docket({ connection: url, schema: flag('--schema') ?? 'docket', listen: false });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command !== 'migrate' && command !== 'pending') {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const app = await appFrom(args);
  try {
    if (command === 'migrate') {
      const applied = await app.migrate();
      process.stdout.write(
        applied.length === 0 ? 'docket: schema up to date\n' : applied.map((m) => `docket: applied ${m.owner}@${m.version} ${m.name}\n`).join(''),
      );
      return 0;
    }
    const pending = await app.pendingMigrations();
    process.stdout.write(
      pending.length === 0 ? 'docket: no pending migrations\n' : pending.map((m) => `docket: pending ${m.owner}@${m.version} ${m.name}\n`).join(''),
    );
    return pending.length === 0 ? 0 : 1;
  } finally {
    await app.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`docket: ${isDocketError(error) ? `${error.code}: ` : ''}${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
