/**
 * What the harness needs from each queue, in the parent process (enqueueing, checking the
 * database) and in a worker process (workers/<system>.ts, see workers/common.ts).
 */

/** The job payload every system carries: a sequence number, a kind (mixed run) and a due time. */
export interface Payload {
  i: number;
  /** n normal, h high priority, r fails on its first attempt, s scheduled. */
  k?: 'n' | 'h' | 'r' | 's';
  /** Scheduled jobs: epoch ms at which the job is due. */
  at?: number;
}

export interface MixedItem {
  payload: Payload;
  /** High priority (runs before normal jobs). */
  high?: boolean;
  /** Not before this time. */
  runAt?: Date;
  /** 2 for jobs that fail once and must be retried; 1 otherwise. */
  maxAttempts?: number;
}

export interface Session {
  /** The system's own batch API, one call for all `payloads`. */
  bulk(payloads: Payload[]): Promise<void>;
  /** The system's own single-job API: one job, one call. */
  single(payload: Payload): Promise<void>;
  /** Enqueue the mixed-run jobs (batch API where it takes per-job options). */
  mixed(items: MixedItem[]): Promise<void>;
  /** Jobs of the bench queue not yet finished (pending, running, retry...), read from the database. */
  remaining(): Promise<number>;
  /** Leave `n` finished jobs of the bench queue in the table (as the system would keep them). */
  seedFinished(n: number, log: (line: string) => void): Promise<string>;
  close(): Promise<void>;
}

export interface WorkerSpec {
  /** Module path of the worker process entry point. */
  entry: string;
  /** Passed to the worker process as BENCH_* environment variables. */
  env: Record<string, string>;
}

export interface SystemAdapter {
  id: string;
  label: string;
  version: string;
  /** Settings used, printed in the output. */
  settings: Record<string, string>;
  /** Runs in a PostgreSQL database (false: Redis; `url` is then only a name). */
  usesPostgres: boolean;
  /** Whether finished jobs can be left in the table (the history drain). */
  history: boolean | string;
  /** Create the schema in a fresh database (or Redis namespace) and open the producer side. */
  open(target: { url: string; namespace: string }): Promise<Session>;
  worker(target: { url: string; namespace: string }): WorkerSpec;
}

/** Thrown by an adapter factory when the system cannot be loaded: the harness skips it. */
export class SkipSystem extends Error {}
