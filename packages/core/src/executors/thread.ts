import { ExecutorFailedError } from '../errors.js';
import type { JobDefinition } from '../job-definition.js';
import type { JobContext, RunningJob } from '../types.js';
import type { Executor, ExecutorSettings } from './executor.js';

// Being written: worker_threads executor (see issue #2). Until it lands, using it fails loudly.
export class ThreadExecutor implements Executor {
  readonly kind = 'thread';
  constructor(readonly settings: ExecutorSettings) {}
  async run(_d: JobDefinition<any, any>, _job: RunningJob, _ctx: JobContext): Promise<unknown> {
    throw new ExecutorFailedError('The thread executor is not available in this build.');
  }
  async close(): Promise<void> {}
}
