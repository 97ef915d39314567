/**
 * A guard for a server process a test process starts (PostgreSQL, PgBouncer): a detached shell
 * that outlives the test process and, once it is gone (kill -9 included), stops the server (SIGINT,
 * then SIGQUIT after 10 s) and removes its directory. A clean stop kills the guard.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export function startWatchdog(serverPid: number, dir: string): ChildProcess | undefined {
  if (process.platform === 'win32') return undefined;
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    'kill -INT "$2" 2>/dev/null',
    'n=0; while kill -0 "$2" 2>/dev/null && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n+1)); done',
    'kill -QUIT "$2" 2>/dev/null',
    'rm -rf "$3"',
  ].join('\n');
  const watchdog = spawn('/bin/sh', ['-c', script, 'docket-watchdog', String(process.pid), String(serverPid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.on('error', () => {});
  watchdog.unref();
  return watchdog;
}

/** Ends a guard (its process group: the shell and its sleep) once the server stopped cleanly. */
export function killWatchdog(watchdog: ChildProcess | undefined): void {
  if (!watchdog?.pid) return;
  try {
    process.kill(-watchdog.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
