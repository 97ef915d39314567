import type { AnyJobDefinition } from '../job-definition.js';
import type { JobContext, RunningJob } from '../types.js';
import type { AttemptAbort } from '../worker/attempt-abort.js';
import type { Executor, ExecutorSettings } from './executor.js';

/**
 * Runs handlers on this event loop (I/O-bound work). On abort the handler gets `hardStopGraceMs`
 * to honour `ctx.signal`; after that the attempt ends with the abort reason and the handler's
 * eventual result is ignored (JavaScript cannot kill a promise; the slot is freed anyway).
 */
export class AsyncExecutor implements Executor {
  readonly kind = 'async';

  /** Handlers whose attempt the hard stop ended and whose promise has not settled yet (their code may still run). */
  abandoned = 0;

  constructor(private readonly settings: ExecutorSettings) {}

  run(definition: AnyJobDefinition, job: RunningJob, ctx: JobContext, abort: AttemptAbort): Promise<unknown> {
    let attempt: Promise<unknown>;
    try {
      attempt = Promise.resolve(definition.handler(job.args, ctx));
    } catch (error) {
      attempt = Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      let hardStop: NodeJS.Timeout | undefined;
      let abandoned = false;
      abort.onAbort((reason) => {
        hardStop = setTimeout(() => {
          abandoned = true;
          this.abandoned++;
          reject(reason);
        }, this.settings.hardStopGraceMs);
      });
      attempt.then(
        (value) => {
          clearTimeout(hardStop);
          if (abandoned) this.abandoned--;
          abort.onAbort(null);
          // A handler that returns normally after an abort still ends with the abort reason.
          if (abort.aborted) reject(abort.reason);
          else resolve(value);
        },
        (error) => {
          clearTimeout(hardStop);
          if (abandoned) this.abandoned--;
          abort.onAbort(null);
          reject(abort.aborted ? abort.reason : error);
        },
      );
    });
  }

  async close(): Promise<void> {}
}
