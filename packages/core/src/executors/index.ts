import { ExecutorFailedError } from '../errors.js';
import type { Executor, ExecutorSettings } from './executor.js';

/** Creates a thread or process executor (loaded lazily: async-only workers never load them). */
export async function createExecutor(kind: 'thread' | 'process', settings: ExecutorSettings): Promise<Executor> {
  if (!settings.jobsModule) {
    throw new ExecutorFailedError(
      `The '${kind}' executor runs jobs outside this event loop and must load their definitions: pass \`jobsModule\` (a path or URL of a module exporting your jobs) to new Worker(...).`,
    );
  }
  if (kind === 'thread') {
    const { ThreadExecutor } = await import('./thread.js');
    return new ThreadExecutor(settings);
  }
  const { ProcessExecutor } = await import('./process.js');
  return new ProcessExecutor(settings);
}
