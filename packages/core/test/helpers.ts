import { createTestDatabase, type TestDatabase } from '@docket/testing';
import { Docket, type DocketOptions, Worker, type WorkerOptions } from '@docket/core';

export interface Harness {
  db: TestDatabase;
  app: Docket;
  /** Starts a worker that is stopped by `close()`. */
  worker(options: WorkerOptions): Promise<Worker>;
  close(): Promise<void>;
}

/** A fresh database, a migrated app, and cleanup of everything started through it. */
export async function harness(options: Partial<DocketOptions> = {}): Promise<Harness> {
  const db = await createTestDatabase();
  const app = new Docket({ connection: db.url, logger: false, ...options });
  await app.migrate();
  const workers: Worker[] = [];
  return {
    db,
    app,
    async worker(workerOptions) {
      const worker = new Worker(app, workerOptions);
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

export async function jobStates(db: TestDatabase): Promise<Record<string, number>> {
  const rows = await db.sql`SELECT state, count(*)::int AS n FROM docket.jobs GROUP BY state`;
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

/** A promise with its resolve function, for handlers that signal the test. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
