import type postgres from 'postgres';
import type { Logger } from './logger.js';
import type { Notifier } from './notifier.js';
import { toJobProgress } from './progress.js';
import type { JobsSql } from './sql/jobs.js';
import type { JobProgress } from './types.js';

type Listener = (progress: JobProgress) => void;

/**
 * `app.onProgress`: the app's listeners of job progress, fed from any worker process. A worker
 * announces the jobs whose reports it stored (`g:<ids>` on the progress channel; the last report
 * of an attempt comes with its outcome, announced by `s:<ids>`); the followers of those jobs read
 * the stored reports back, in one statement for every job due, and each listener hears a report it
 * has not heard. Reports stored in between two reads are skipped (the latest is what counts); the
 * last one of each attempt is always read, since it is stored with the outcome.
 */
export class ProgressFollowers {
  private readonly followers = new Map<string, Set<{ listener: Listener; heard: string | null }>>();
  private readonly due = new Set<string>();
  private reading: Promise<void> | null = null;
  private installed = false;

  constructor(
    private readonly sql: postgres.Sql,
    private readonly notifier: Notifier,
    private readonly jobs: () => JobsSql,
    private readonly logger: Logger,
  ) {}

  async follow(id: string, listener: Listener): Promise<() => void> {
    this.install();
    await Promise.all([this.notifier.start(), this.notifier.startSettled(), this.notifier.startProgress()]);
    const follower = { listener, heard: null as string | null };
    let set = this.followers.get(id);
    if (!set) this.followers.set(id, (set = new Set()));
    set.add(follower);
    // Listening already: what is stored now is read after the LISTEN, so nothing falls in between.
    this.wake([id]);
    const followers = set;
    return () => {
      followers.delete(follower);
      if (followers.size === 0 && this.followers.get(id) === followers) this.followers.delete(id);
    };
  }

  private install(): void {
    if (this.installed) return;
    this.installed = true;
    const onIds = (body: string) => this.wake(body.split(','));
    this.notifier.on('g', onIds);
    this.notifier.on('s', onIds);
    // Anything announced while the connection was down is lost: read every followed job again.
    this.notifier.onReconnect(() => this.wake([...this.followers.keys()]));
  }

  private wake(ids: readonly string[]): void {
    for (const id of ids) if (this.followers.has(id)) this.due.add(id);
    if (this.due.size > 0) this.reading ??= this.read();
  }

  private async read(): Promise<void> {
    try {
      while (this.due.size > 0) {
        const ids = [...this.due];
        this.due.clear();
        let rows: Awaited<ReturnType<JobsSql['progressRead']>>;
        try {
          rows = await this.jobs().progressRead(this.sql, { ids });
        } catch (error) {
          this.logger.error('reading job progress for onProgress listeners failed', { error, jobs: ids.length });
          return;
        }
        for (const row of rows) {
          if (row.progress === null || row.progress === undefined) continue;
          const text = JSON.stringify(row.progress);
          const progress = toJobProgress(row.progress);
          if (progress === null) continue;
          for (const follower of this.followers.get(row.id) ?? []) {
            if (follower.heard === text) continue;
            follower.heard = text;
            try {
              follower.listener(progress);
            } catch (error) {
              this.logger.error('an onProgress listener failed', { error, job: row.id });
            }
          }
        }
      }
    } finally {
      this.reading = null;
      if (this.due.size > 0) this.reading = this.read();
    }
  }
}
