import { DOCKET_JOB_OPTIONS, DOCKET_QUEUE, DOCKET_WORKER_QUEUE_OPTIONS, loadDocket } from '../systems/docket.js';
import type { Payload } from '../systems/types.js';
import { runWorker } from './common.js';

await runWorker(async (config, handle) => {
  const { Docket, Worker, defineJob } = await loadDocket();
  const app = new Docket({ connection: config.url });
  const noop = defineJob(DOCKET_JOB_OPTIONS, async (args: Payload) => {
    await handle(args);
  });
  const worker = new Worker(app, {
    jobs: [noop],
    queues: { [DOCKET_QUEUE]: { ...DOCKET_WORKER_QUEUE_OPTIONS, concurrency: config.concurrency } },
  });
  await worker.start();
  return async () => {
    await worker.stop();
    await app.close();
  };
});
