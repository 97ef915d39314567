import { createTestDatabase, type TestDatabase } from '@docket/testing';
import { Docket, type DocketOptions, Worker, type WorkerOptions } from '@docket/core';
import { workflows, type WorkflowPluginOptions } from '../src/index.js';

export interface Harness {
  db: TestDatabase;
  app: Docket;
  /** Starts a worker on `app` that `close()` stops. */
  worker(options: WorkerOptions): Promise<Worker>;
  close(): Promise<void>;
}

/** A fresh database, an app with the workflow plugin, migrated; `close()` cleans everything. */
export async function harness(options: { plugin?: WorkflowPluginOptions; app?: Partial<DocketOptions> } = {}): Promise<Harness> {
  const db = await createTestDatabase();
  const app = new Docket({ connection: db.url, logger: false, plugins: [workflows(options.plugin)], ...options.app });
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
