/**
 * The stop protocol of tests that run workers in child processes (fork with an IPC channel):
 * the test sends 'stop'; the child stops its worker gracefully, closes its app and exits 0. A child
 * that does not exit in time is killed, so a hung worker fails its test instead of hanging the run.
 */

import { type ChildProcess, fork } from 'node:child_process';
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

/** What a worker process sends its test over IPC: `{ type: 'started', workerId }` once its worker runs, then messages of its own. */
export interface WorkerMessage {
  type: string;
  workerId?: string;
  jobId?: string;
  attempt?: number;
  message?: string;
  fields?: Record<string, unknown>;
}

/**
 * A worker process for multi-process tests: `module` forked with `env` (values stringified) and an
 * IPC channel. It keeps every message, resolves `started` with the worker id of the child's
 * `{ type: 'started', workerId }`, and answers the stop protocol above (`stop()`).
 */
export class WorkerProcess<M extends WorkerMessage = WorkerMessage> {
  readonly child: ChildProcess;
  readonly messages: M[] = [];
  /** The worker id the child announced. */
  readonly started: Promise<string>;
  readonly exited: Promise<void>;
  private listeners: Array<(m: M) => void> = [];

  constructor(module: URL | string, env: Record<string, string | number> = {}) {
    this.child = fork(module, {
      env: { ...process.env, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) },
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = once(this.child, 'exit').then(() => undefined);
    this.child.on('message', (m: M) => {
      this.messages.push(m);
      for (const l of this.listeners) l(m);
    });
    this.started = this.next((m) => m.type === 'started', 60_000).then((m) => {
      if (typeof m.workerId !== 'string') throw new Error(`worker process ${this.child.pid} announced no workerId`);
      return m.workerId;
    });
    // A test that never awaits `started` (a process killed early) must not fail on its rejection.
    this.started.catch(() => {});
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('the worker process was not spawned');
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first message (already received or to come) that matches. */
  next(match: (m: M) => boolean, timeoutMs = 30_000): Promise<M> {
    const seen = this.messages.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== listener);
        reject(new Error(`worker process ${this.child.pid}: no matching message within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (m: M) => {
        if (!match(m)) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== listener);
        resolve(m);
      };
      this.listeners.push(listener);
      this.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`worker process ${this.child.pid} exited before a matching message`));
      });
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** SIGKILL (after SIGCONT, for a stopped process) and wait for the exit. */
  async kill(): Promise<void> {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await this.exited;
  }

  /** Graceful stop over IPC (`stopChild`: SIGKILL after `killAfterMs`). */
  async stop(killAfterMs = 15_000): Promise<void> {
    this.signal('SIGCONT');
    await stopChild(this.child, killAfterMs);
  }
}
