import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { Docket, type DocketPlugin } from '@docket/core';
import { createTestDatabase, type TestDatabase } from '@docket/testing';

export interface WorkerMessage {
  type: 'started' | 'running' | 'warn';
  workerId?: string;
  jobId?: string;
  attempt?: number;
  message?: string;
  fields?: Record<string, unknown>;
}

/** A worker process running test/fixtures/worker.ts. */
export class WorkerProcess {
  readonly child: ChildProcess;
  readonly messages: WorkerMessage[] = [];
  readonly started: Promise<string>;
  readonly exited: Promise<void>;
  private listeners: Array<(m: WorkerMessage) => void> = [];

  constructor(url: string, env: Record<string, string | number> = {}) {
    this.child = fork(new URL('./fixtures/worker.ts', import.meta.url), {
      env: { ...process.env, TEST_DATABASE_URL: url, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) },
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = once(this.child, 'exit').then(() => undefined);
    this.child.on('message', (m: WorkerMessage) => {
      this.messages.push(m);
      for (const l of this.listeners) l(m);
    });
    this.started = this.next((m) => m.type === 'started', 60_000).then((m) => m.workerId!);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first message (already received or to come) that matches. */
  next(match: (m: WorkerMessage) => boolean, timeoutMs = 30_000): Promise<WorkerMessage> {
    const seen = this.messages.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== listener);
        reject(new Error(`worker process ${this.child.pid}: no matching message within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (m: WorkerMessage) => {
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

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await this.exited;
  }

  /** Graceful stop over IPC (falls back to SIGKILL after 15 s). */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.signal('SIGCONT');
    this.child.send({ type: 'stop' });
    const timer = setTimeout(() => this.signal('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A migrated database with the recovery plugin's column, a `runs` table and an app for the test. */
export async function setup(plugins: DocketPlugin[] = []) {
  const db: TestDatabase = await createTestDatabase();
  const app = new Docket({ connection: db.url, logger: false, plugins });
  await app.migrate();
  // Migrate once with the fixture's plugin set too (the recovery column), whatever `plugins` holds.
  const { recovery } = await import('../src/index.js');
  const migrator = new Docket({ connection: db.url, logger: false, plugins: [recovery()] });
  await migrator.migrate();
  await migrator.close();
  await db.sql`CREATE TABLE runs (job_id bigint NOT NULL, attempt int NOT NULL, worker text, label text, at timestamptz NOT NULL DEFAULT clock_timestamp())`;
  const processes: WorkerProcess[] = [];
  return {
    db,
    app,
    spawn(env: Record<string, string | number> = {}) {
      const p = new WorkerProcess(db.url, env);
      processes.push(p);
      return p;
    },
    async close() {
      await Promise.all(processes.map((p) => p.kill()));
      await app.close();
      await db.drop();
    },
  };
}

export async function count(db: TestDatabase, query: string): Promise<number> {
  const [row] = await db.sql.unsafe(query);
  return Number(Object.values(row!)[0]);
}
