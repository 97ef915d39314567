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
 *   docket <other> [args...]
 *       runs the executable `docket-<other>` with the arguments, as git runs `git-<other>`: found
 *       in node_modules/.bin of the working directory or one above it, else on PATH. Another
 *       package adds a command by shipping such a bin; the core knows none of them.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { constants as os } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Docket } from '../app.js';
import { isDocketError } from '../errors.js';

const USAGE = `usage: docket <migrate|pending> (--url URL [--schema NAME] | CONFIG_MODULE)
       docket <command> [args...]   runs docket-<command> (node_modules/.bin, then PATH)
  CONFIG_MODULE: a module whose default export is a Docket app or a function returning one.
  --url defaults to $DATABASE_URL.`;

/** The executable `docket-<command>`: in node_modules/.bin of the working directory or one above it, else on PATH. */
function findExternal(command: string): string | null {
  const names = process.platform === 'win32' ? [`docket-${command}.cmd`, `docket-${command}.exe`] : [`docket-${command}`];
  const dirs: string[] = [];
  for (let dir = process.cwd(); ; dir = dirname(dir)) {
    dirs.push(join(dir, 'node_modules', '.bin'));
    if (dirname(dir) === dir) break;
  }
  dirs.push(...(process.env.PATH ?? '').split(delimiter).filter(Boolean));
  for (const dir of dirs) {
    for (const name of names) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // not here
      }
    }
  }
  return null;
}

/** Runs an external command with stdio passed through; resolves with its exit code (a signal's death as 128 + n, like a shell). */
function runExternal(path: string, args: string[]): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(path, args, { stdio: 'inherit', shell: process.platform === 'win32' });
    // Forward Ctrl-C and termination to the command, which owns the terminal's work now.
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward).on('SIGTERM', forward);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      resolvePromise(code ?? 128 + (signal ? os.signals[signal] : 1));
    });
  });
}

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
    const external = command && /^[a-z][a-z0-9-]{0,63}$/.test(command) ? findExternal(command) : null;
    if (external) return runExternal(external, args);
    process.stderr.write(
      `${command ? `docket: unknown command '${command}' (no docket-${command} in node_modules/.bin or on PATH)\n` : ''}${USAGE}\n`,
    );
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
