import type { ChildProcess } from 'node:child_process';
import { createTestDatabase, type TestDatabase } from './database.js';

/** What the harness needs of an app: the shape of `Docket` (this package does not import the core). */
export interface HarnessApp {
  migrate(): Promise<unknown>;
  close(): Promise<void>;
}

/** What the harness needs of a worker: the shape of `Worker`. */
export interface HarnessWorker {
  start(): Promise<void>;
  stop(options?: { timeoutMs?: number }): Promise<void>;
}

export interface Harness<A extends HarnessApp, W extends HarnessWorker, O> {
  db: TestDatabase;
  app: A;
  /** Starts a worker that `close()` stops. */
  worker(options: O): Promise<W>;
  /** Stops every worker started through `worker()`, closes the app, drops the database. */
  close(): Promise<void>;
}

/**
 * A fresh database, a migrated app, and cleanup of everything started through it. Pass how to
 * build the app and a worker, e.g.
 * `testHarness({ app: (url) => new Docket({ connection: url }), worker: (app, o) => new Worker(app, o) })`.
 */
export async function testHarness<A extends HarnessApp, W extends HarnessWorker, O>(make: {
  app: (url: string) => A;
  worker: (app: A, options: O) => W;
}): Promise<Harness<A, W, O>> {
  const db = await createTestDatabase();
  const app = make.app(db.url);
  await app.migrate();
  const workers: W[] = [];
  return {
    db,
    app,
    async worker(options) {
      const worker = make.worker(app, options);
      workers.push(worker);
      await worker.start();
      return worker;
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop({ timeoutMs: 2000 })));
      await app.close();
      await db.drop();
    },
  };
}

/** A promise with its resolve function, for handlers that signal the test. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The next IPC message of `type` from a child; rejects on an `error` message or an early exit. */
export function nextMessage<T extends { type: string }>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: T & { message?: string }) => {
      if (message?.type === type) {
        cleanup();
        resolve(message);
      } else if (message?.type === 'error') {
        cleanup();
        reject(new Error(`child ${child.pid}: ${message.message}`));
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child ${child.pid} exited (${code}) before sending '${type}'`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}
