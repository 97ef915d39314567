import { Docket, type DocketOptions, Worker, type WorkerOptions } from '@docket/core';
import { type Harness as TestHarness, testHarness } from '@docket/testing';
import { type WorkflowPluginOptions, workflows } from '../src/index.js';

export type Harness = TestHarness<Docket, Worker, WorkerOptions>;

/** A fresh database, an app with the workflow plugin, migrated; `close()` cleans everything. */
export function harness(options: { plugin?: WorkflowPluginOptions; app?: Partial<DocketOptions> } = {}): Promise<Harness> {
  return testHarness({
    app: (url) => new Docket({ connection: url, logger: false, plugins: [workflows(options.plugin)], ...options.app }),
    worker: (app, workerOptions: WorkerOptions) => new Worker(app, workerOptions),
  });
}
