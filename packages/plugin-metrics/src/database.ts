/**
 * What the exporter reads from the database when it is scraped, through the core's operations API
 * (it writes no SQL of its own): jobs per queue and state (`countJobs`: exact for the open states,
 * estimated from the statistics for large finished groups, so a long history costs nothing),
 * each queue's lag (`queueLag`: one index probe per queue and priority) and the workers
 * (`listWorkers`). One read serves every gauge of a scrape, and every scrape within `cacheMs`;
 * scrapes that arrive while a read is in flight share it.
 */
import type { Docket, JobCount, QueueLag, WorkerInfo } from '@docket/core';

export interface Snapshot {
  readonly counts: readonly JobCount[];
  readonly lag: readonly QueueLag[];
  readonly workers: readonly WorkerInfo[];
}

export class DatabaseReader {
  private cached: { at: number; snapshot: Promise<Snapshot | null> } | null = null;

  constructor(
    private readonly app: () => Docket,
    private readonly cacheMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** The latest snapshot, read again when older than `cacheMs`; null when the read failed. */
  read(): Promise<Snapshot | null> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < this.cacheMs) return this.cached.snapshot;
    const snapshot = this.load();
    this.cached = { at: now, snapshot };
    return snapshot;
  }

  private async load(): Promise<Snapshot | null> {
    const app = this.app();
    try {
      const [counts, lag, workers] = await Promise.all([app.countJobs(), app.queueLag(), app.listWorkers()]);
      return { counts, lag, workers };
    } catch (error) {
      // A failed read is not cached: the next scrape tries again.
      this.cached = null;
      this.onError(error);
      return null;
    }
  }
}

/** A worker counts as alive while its last heartbeat is younger than three of its intervals. */
export function isAlive(worker: WorkerInfo): boolean {
  return worker.heartbeatAgeMs < 3 * worker.heartbeatIntervalMs;
}
