import { checkProgress } from '../progress.js';
import type { RunningJob } from '../types.js';
import type { ProgressWriter } from './progress-writer.js';

/**
 * One attempt's `ctx.progress`: checks each report, hands it to the worker's writer, and stops
 * taking reports when the attempt ends (a callback the handler left behind cannot write over a
 * later attempt). Made on the first read of `ctx.progress`.
 */
export class ProgressReporter {
  private ended = false;

  constructor(
    private readonly writer: ProgressWriter,
    private readonly job: RunningJob,
    /** False for an atomic job: its transaction holds the row, so only the last report is stored, with the outcome. */
    private readonly live: boolean,
  ) {}

  /** `ctx.progress` itself (bound: handlers may pass it around). */
  readonly report = (value: number, data?: unknown): void => {
    const checked = checkProgress(value, data);
    if (this.ended) return;
    this.writer.report(this.job, checked, Date.now(), this.live);
  };

  /** The attempt ended: its last report not yet stored, for the outcome's write. */
  end(): string | undefined {
    this.ended = true;
    return this.writer.close(this.job);
  }
}
