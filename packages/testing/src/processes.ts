/**
 * The stop protocol of tests that run workers in child processes (fork with an IPC channel):
 * the test sends 'stop'; the child stops its worker gracefully, closes its app and exits 0. A child
 * that does not exit in time is killed, so a hung worker fails its test instead of hanging the run.
 */

import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { HarnessApp, HarnessWorker } from './harness.js';

/** In the child: on the 'stop' message, `worker.stop(stopOptions)`, `app.close()`, then exit 0. */
export function stopOnMessage(worker: HarnessWorker, app: Pick<HarnessApp, 'close'>, stopOptions?: { timeoutMs?: number }): void {
  process.on('message', async (message) => {
    if (message !== 'stop') return;
    await worker.stop(stopOptions);
    await app.close();
    process.exit(0);
  });
}

/**
 * In the test: asks a child to stop (the 'stop' message, when its channel is still open) and
 * resolves once it has exited; SIGKILLs it after `killAfterMs`. Resolves at once for a child that
 * has already exited.
 */
export async function stopChild(child: ChildProcess, killAfterMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  if (child.connected) child.send('stop');
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}
