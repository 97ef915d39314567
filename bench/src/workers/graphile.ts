import { Logger, run } from 'graphile-worker';
import { GRAPHILE_WORKER_OPTIONS } from '../systems/graphile.js';
import type { Payload } from '../systems/types.js';
import { runWorker } from './common.js';

const logger = new Logger((scope) => (level, message) => {
  // The mixed run's planned first-attempt failures are expected: keep them out of the output.
  if (level === 'error' && !message.includes('planned failure')) process.stderr.write(`[graphile-worker ${scope.label ?? ''}] ${message}\n`);
});

await runWorker(async (config, handle) => {
  const runner = await run({
    noHandleSignals: true,
    logger,
    taskList: {
      noop: async (payload) => {
        await handle(payload as Payload);
      },
    },
    preset: {
      worker: { ...GRAPHILE_WORKER_OPTIONS, connectionString: config.url, concurrentJobs: config.concurrency },
    },
  });
  return async () => {
    await runner.stop();
  };
});
