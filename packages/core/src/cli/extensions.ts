/**
 * Commands from other packages. `docket NAME ...` with a NAME the core does not know runs the
 * executable `docket-NAME` — from `node_modules/.bin` in the working directory or any directory
 * above it (a package's `bin`), then from PATH — with the remaining arguments, the same
 * environment and standard streams, and exits with its exit code. A package adds a subcommand by
 * declaring `"bin": { "docket-NAME": "..." }`; the core names none of them.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

/** The executable for `docket NAME`, or null when there is none. */
export function findExtension(name: string, cwd = process.cwd()): string | null {
  if (!/^[a-z][a-z0-9-]{0,63}$/.test(name)) return null;
  const file = `docket-${name}`;
  const dirs: string[] = [];
  for (let dir = cwd; ; dir = dirname(dir)) {
    dirs.push(join(dir, 'node_modules', '.bin'));
    if (dirname(dir) === dir) break;
  }
  dirs.push(...(process.env.PATH ?? '').split(delimiter).filter(Boolean));
  for (const dir of dirs) {
    const path = join(dir, file);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // Not here: the next directory.
    }
  }
  return null;
}

/** Runs the extension and resolves with its exit code (128 + n when a signal ended it). */
export function runExtension(path: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: 'inherit' });
    // While the extension runs it answers the signals: Ctrl-C reaches it from the terminal (its
    // process group), a SIGTERM sent to this process is passed on.
    const ignore = () => {};
    const forward = () => child.kill('SIGTERM');
    process.on('SIGINT', ignore);
    process.on('SIGTERM', forward);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', forward);
      resolve(code ?? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 9));
    });
  });
}
