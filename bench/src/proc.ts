/**
 * Worker processes: one per system per timed run, forked with IPC and tsx's loader so the parent
 * can read its RSS from /proc/<pid> (no wrapper process in between). Every child is killed on
 * exit, on ^C and on an uncaught error, so runs leave nothing behind.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { nowUs, sleep } from './clock.js';

const children = new Set<ChildProcess>();

export function killAllChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

export interface Message {
  type: string;
  t?: number;
  i?: number;
  n?: number;
  message?: string;
  summary?: unknown;
}

export function rssMb(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
    return kb ? Number(kb) / 1024 : null;
  } catch {
    return null;
  }
}

export class WorkerProcess {
  readonly child: ChildProcess;
  private waiters: { type: string; resolve: (m: Message) => void; reject: (e: Error) => void }[] = [];
  private queued: Message[] = [];
  readonly errors: string[] = [];
  onMessage?: (m: Message) => void;
  private rssTimer?: NodeJS.Timeout;
  readonly rss: { t: number; mb: number }[] = [];
  exited = false;

  constructor(entry: string, env: Record<string, string>) {
    this.child = fork(entry, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(this.child);
    this.child.on('message', (m: Message) => {
      if (m.type === 'error') this.errors.push(m.message ?? '?');
      this.onMessage?.(m);
      const index = this.waiters.findIndex((w) => w.type === m.type);
      if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(m);
      else this.queued.push(m);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      children.delete(this.child);
      this.stopRss();
      const error = new Error(
        `worker process exited (code ${code}, signal ${signal})${this.errors.length ? `: ${this.errors.join(' | ').slice(0, 2000)}` : ''}`,
      );
      for (const w of this.waiters.splice(0)) w.reject(error);
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  send(type: string): void {
    if (!this.exited && this.child.connected) this.child.send({ type });
  }

  /** Resolves on the next message of `type` (or one already received), rejects on exit/timeout. */
  wait(type: string, timeoutMs = 120_000): Promise<Message> {
    const index = this.queued.findIndex((m) => m.type === type);
    if (index >= 0) return Promise.resolve(this.queued.splice(index, 1)[0]!);
    if (this.exited) return Promise.reject(new Error(`worker process already exited; ${this.errors.join(' | ')}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.findIndex((w) => w.resolve === wrapped);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for '${type}' from the worker${this.errors.length ? `: ${this.errors.join(' | ')}` : ''}`,
          ),
        );
      }, timeoutMs);
      const wrapped = (m: Message) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.push({
        type,
        resolve: wrapped,
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  startRss(intervalMs = 50): void {
    const sample = () => {
      const mb = rssMb(this.pid);
      if (mb !== null) this.rss.push({ t: nowUs(), mb });
    };
    sample();
    this.rssTimer = setInterval(sample, intervalMs);
  }

  stopRss(): void {
    if (this.rssTimer) clearInterval(this.rssTimer);
    this.rssTimer = undefined;
  }

  /** Graceful stop, then SIGKILL if it lingers. */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopRss();
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.send('stop');
    const result = await Promise.race([exited.then(() => 'exited'), sleep(timeoutMs).then(() => 'timeout')]);
    if (result === 'timeout' && !this.exited) {
      this.child.kill('SIGKILL');
      await exited;
    }
  }
}
