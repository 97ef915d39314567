import { createTestDatabase, type TestDatabase } from '@docket/testing';
import { Docket, type DocketOptions, Worker, type WorkerOptions } from '@docket/core';

export interface Harness {
  db: TestDatabase;
  app: Docket;
  /** Starts a worker that `close()` stops. */
  worker(options: WorkerOptions): Promise<Worker>;
  close(): Promise<void>;
}

/** A fresh database, a migrated app with the given plugins, and cleanup of what it started. */
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

/** A promise with its resolve function, for handlers that wait on the test. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
