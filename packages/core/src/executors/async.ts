import type { JobDefinition } from '../job-definition.js';
import type { JobContext, RunningJob } from '../types.js';
import type { Executor, ExecutorSettings } from './executor.js';

/**
 * Runs handlers on this event loop (I/O-bound work). On abort the handler gets `hardStopGraceMs`
 * to honour `ctx.signal`; after that the attempt ends with the abort reason and the handler's
 * eventual result is ignored (JavaScript cannot kill a promise; the slot is freed anyway).
 */
export class AsyncExecutor implements Executor {
  readonly kind = 'async';

  constructor(private readonly settings: ExecutorSettings) {}

  run(definition: JobDefinition<any, any>, job: RunningJob, ctx: JobContext): Promise<unknown> {
    const attempt = Promise.resolve().then(() => definition.handler(job.args, ctx));
    const { signal } = ctx;
    return new Promise((resolve, reject) => {
      let hardStop: NodeJS.Timeout | undefined;
      const onAbort = () => {
        hardStop = setTimeout(() => reject(signal.reason), this.settings.hardStopGraceMs);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      attempt.then(
        (value) => {
          clearTimeout(hardStop);
          signal.removeEventListener('abort', onAbort);
          // A handler that returns normally after an abort still ends with the abort reason.
          if (signal.aborted) reject(signal.reason);
          else resolve(value);
        },
        (error) => {
          clearTimeout(hardStop);
          signal.removeEventListener('abort', onAbort);
          reject(signal.aborted ? signal.reason : error);
        },
      );
    });
  }

  async close(): Promise<void> {}
}
