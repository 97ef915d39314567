import { Worker } from 'node:worker_threads';
import { PooledExecutor, type RunnerEvents, type RunnerHandle, runnerUrl, tsxApiUrl, usesTsx } from './pool.js';
import { WORKER_DATA_KEY } from './runner.js';

/**
 * Started with `eval` so that the runner can be a TypeScript file: on Node 20, tsx's `--import`
 * hook does not register itself in worker threads, so when this process runs under tsx the
 * thread registers tsx's ESM API first, then imports the runner (which imports the jobs module).
 * An import failure is thrown as an uncaught exception: the Worker's 'error' event.
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx) (await import(workerData.tsx)).register();
  await import(workerData.runner);
})().catch((error) => process.nextTick(() => { throw error; }));
`;

/**
 * Runs handlers in worker threads (CPU-bound work), loaded from `jobsModule`: pooled per memory
 * limit (see pool.ts), one attempt at a time per thread. An aborted attempt's thread is
 * terminated; `limits.memoryMb` becomes the thread's `resourceLimits.maxOldGenerationSizeMb`, and
 * a thread that runs out of it ends the attempt with LimitExceededError. Threads inherit this
 * process's execArgv (`--import tsx`, `--conditions`, …; Node's default, which also leaves out
 * the V8 flags a thread may not take).
 */
export class ThreadExecutor extends PooledExecutor {
  readonly kind = 'thread';
  protected readonly noun = 'its worker thread';

  protected spawn(memoryMb: number | undefined, events: RunnerEvents): RunnerHandle {
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: {
        [WORKER_DATA_KEY]: { jobsModule: this.jobsModule },
        runner: runnerUrl.href,
        tsx: usesTsx() ? tsxApiUrl(this.jobsModule) : null,
      },
      ...(memoryMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: memoryMb } }),
    });
    let error: (Error & { code?: string }) | undefined;
    worker.on('message', events.message);
    worker.on('error', (e: Error) => {
      error ??= e;
    });
    worker.on('messageerror', (e: Error) => {
      error ??= e;
      void worker.terminate().catch(() => {});
    });
    worker.on('exit', (code: number) => {
      const outOfMemory = error?.code === 'ERR_WORKER_OUT_OF_MEMORY';
      const description = error ? `stopped with ${error.name}: ${error.message}` : `exited with code ${code}`;
      events.end({ outOfMemory, description, cause: error });
    });
    return {
      send: (message) => worker.postMessage(message),
      stop: () => void worker.terminate().catch(() => {}),
      ref: () => worker.ref(),
      unref: () => worker.unref(),
    };
  }
}
