import { type Backend, bullmqParts } from '../systems/bullmq.js';
import { runWorker } from './common.js';

await runWorker(async (config, handle) => {
  const backend = (config.env.BENCH_BULLMQ_BACKEND ?? 'redis') as Backend;
  const parts = await bullmqParts(backend, config.url, config.namespace);
  const worker = parts.worker(async (job) => handle(job.data), { concurrency: config.concurrency });
  worker.on('error', (error) => process.stderr.write(`[bullmq worker] ${String(error)}\n`));
  await worker.waitUntilReady();
  return async () => {
    await worker.close();
  };
});
