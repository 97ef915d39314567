import type { Logger } from '../logger.js';
import { type ProgressReport, progressText } from '../progress.js';
import type { RunningJob } from '../types.js';

/** One running attempt's latest report. */
interface Entry {
  readonly id: string;
  readonly attempt: number;
  /** The latest report, and when it was made (epoch ms): made into JSON only when it is written. */
  report: ProgressReport;
  at: number;
  /** Counts reports; `stored` is the count the database is known to hold. */
  version: number;
  stored: number;
  /** Written by the throttled flushes; false for atomic jobs, whose row their own transaction locks. */
  readonly live: boolean;
}

/** What stores a batch of reports (`JobsSql.progressWrite` for this worker). */
export type ProgressWrite = (items: ReadonlyArray<{ id: string; attempt: number; progress: string }>) => Promise<unknown>;

/**
 * Stores the progress handlers report with `ctx.progress`, for one worker. A report only replaces
 * its attempt's latest in memory; the writer stores the latest report of every attempt that has a
 * new one in one fenced statement, at most once per `intervalMs` (the first report after a quiet
 * period at once), so a handler reporting a thousand times a second costs the database a few
 * statements a second. When an attempt ends, `close` hands its latest report that is not known to
 * be stored to the outcome's write: the completion statement stores it with the outcome, so the
 * last value is always kept, whatever the throttle skipped or a failed write lost.
 */
export class ProgressWriter {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private lastWriteAt = 0;
  private failures = 0;

  constructor(
    private readonly write: ProgressWrite,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  /** The attempt reported `report` (already checked) at `at` (epoch ms). */
  report(job: RunningJob, report: ProgressReport, at: number, live: boolean): void {
    let entry = this.entries.get(job.id);
    if (entry === undefined || entry.attempt !== job.attempt) {
      entry = { id: job.id, attempt: job.attempt, report, at, version: 0, stored: 0, live };
      this.entries.set(job.id, entry);
    }
    entry.report = report;
    entry.at = at;
    entry.version++;
    if (live) this.schedule();
  }

  /** The attempt ended: forget it, and return its latest report unless it is known to be stored. */
  close(job: RunningJob): string | undefined {
    const entry = this.entries.get(job.id);
    if (entry === undefined || entry.attempt !== job.attempt) return undefined;
    this.entries.delete(job.id);
    return entry.version === entry.stored ? undefined : textOf(entry);
  }

  /** Resolves once no write is in flight (the worker is stopping). */
  async drain(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flushing;
  }

  private schedule(): void {
    if (this.timer !== null || this.flushing !== null) return;
    const wait = Math.max(0, this.lastWriteAt + this.intervalMs * (this.failures === 0 ? 1 : Math.min(2 ** this.failures, 20)) - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flushing = this.flush().finally(() => {
        this.flushing = null;
        for (const e of this.entries.values()) {
          if (e.live && e.version !== e.stored) {
            this.schedule();
            break;
          }
        }
      });
    }, wait);
    this.timer.unref?.();
  }

  private async flush(): Promise<void> {
    const taken: Array<{ entry: Entry; version: number }> = [];
    const items: Array<{ id: string; attempt: number; progress: string }> = [];
    for (const entry of this.entries.values()) {
      if (!entry.live || entry.version === entry.stored) continue;
      taken.push({ entry, version: entry.version });
      items.push({ id: entry.id, attempt: entry.attempt, progress: textOf(entry) });
    }
    if (items.length === 0) return;
    this.lastWriteAt = Date.now();
    try {
      await this.write(items);
      this.failures = 0;
      for (const { entry, version } of taken) if (entry.stored < version) entry.stored = version;
    } catch (error) {
      // Kept in memory: the next flush tries again, and an attempt that ends meanwhile stores its
      // latest report with its outcome.
      this.failures++;
      this.logger.warn('storing progress reports failed; retrying', { error, jobs: items.length, failures: this.failures });
    }
  }
}

function textOf(entry: Entry): string {
  return progressText(entry.report, entry.attempt, new Date(entry.at));
}
