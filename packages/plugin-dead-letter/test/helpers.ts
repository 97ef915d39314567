import { Docket, type DocketOptions, Worker, type WorkerOptions } from '@docket/core';
import { type Harness as TestHarness, testHarness } from '@docket/testing';

export { deferred, nextMessage } from '@docket/testing';

export type Harness = TestHarness<Docket, Worker, WorkerOptions>;

/** A fresh database, a migrated app with the given options, and cleanup of what it started. */
export function harness(options: Partial<DocketOptions> = {}): Promise<Harness> {
  return testHarness({
    app: (url) => new Docket({ connection: url, logger: false, ...options }),
    worker: (app, workerOptions: WorkerOptions) => new Worker(app, workerOptions),
  });
}
