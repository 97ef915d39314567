/**
 * The in-memory side of plugin-logs: lines a handler logged that are not written yet, per attempt,
 * and the flusher that writes them in batches.
 *
 * A line is *ready* once it, or a later line of the same attempt, was logged with `publish` (the
 * default); the flusher writes ready lines within `flushIntervalMs`, or at once when `batchSize`
 * are waiting, one statement per batch for every attempt of the process. Lines not yet ready wait
 * for the next published line, or for the attempt's outcome: `claim` hands the settle hook every
 * line of an attempt to write inside the completion transaction, and `release` drops them once
 * that committed. An attempt never keeps more than `limit` unwritten lines (the oldest go first:
 * the database would trim them anyway).
 */
import type { Logger, RunningJob } from '@docket/core';
import type { LineRow, LogLevel } from './sql.js';

interface Buffered {
  readonly seq: number;
  readonly at: Date;
  readonly level: LogLevel;
  readonly message: string;
}

export interface Entry {
  readonly key: string;
  readonly jobId: string;
  readonly attempt: number;
  readonly rootId: string | null;
  readonly parentId: string | null;
  nextSeq: number;
  /** Unwritten lines, oldest first; `lines[0..ready)` may be written now. */
  lines: Buffered[];
  ready: number;
  /** When the settle hook claimed the lines (0: not claimed); the flusher leaves them to it. */
  claimedAt: number;
  /** The attempt's outcome committed; the entry goes once its lines are written. */
  closed: boolean;
}

export interface BufferSettings {
  readonly limit: number;
  readonly batchSize: number;
  readonly flushIntervalMs: number;
}

/** A settle transaction that never committed gives the flusher its lines back after this long. */
const CLAIM_TIMEOUT_MS = 30_000;

export class LogBuffer {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private again = false;
  private failures = 0;
  /** Lines made ready since the last flush began (a cheap trigger for size-based flushes). */
  private readySinceFlush = 0;
  /** The write in progress and the attempts whose lines it carries. */
  private inFlight: { readonly keys: ReadonlySet<string>; readonly done: Promise<unknown> } | null = null;

  constructor(
    private readonly settings: BufferSettings,
    /** Writes rows in a transaction of its own. */
    private readonly write: (rows: LineRow[]) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  static key(jobId: string, attempt: number): string {
    return `${jobId}:${attempt}`;
  }

  /** Whether this attempt logged anything this process still holds (what the settle hook needs to see). */
  has(jobId: string, attempt: number): boolean {
    return this.entries.has(LogBuffer.key(jobId, attempt));
  }

  entry(job: RunningJob, rootId: string | null, parentId: string | null): Entry {
    const key = LogBuffer.key(job.id, job.attempt);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { key, jobId: job.id, attempt: job.attempt, rootId, parentId, nextSeq: 0, lines: [], ready: 0, claimedAt: 0, closed: false };
      this.entries.set(key, entry);
    }
    return entry;
  }

  add(entry: Entry, level: LogLevel | null, message: string, publish: boolean): void {
    if (!this.entries.has(entry.key)) this.entries.set(entry.key, entry); // logged again after it was written out
    if (level !== null) {
      entry.lines.push({ seq: entry.nextSeq++, at: new Date(), level, message });
      if (entry.lines.length > this.settings.limit) this.dropOldest(entry, entry.lines.length - this.settings.limit);
    }
    if (publish || entry.closed) {
      this.readySinceFlush += entry.lines.length - entry.ready;
      entry.ready = entry.lines.length;
      this.schedule();
    }
  }

  private dropOldest(entry: Entry, n: number): void {
    entry.lines.splice(0, n);
    entry.ready = Math.max(0, entry.ready - n);
  }

  private writable(e: Entry): boolean {
    return e.ready > 0 && (e.claimedAt === 0 || Date.now() - e.claimedAt > CLAIM_TIMEOUT_MS);
  }

  private schedule(): void {
    if (this.flushing) {
      this.again = true;
      return;
    }
    if (this.readySinceFlush >= this.settings.batchSize) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      void this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, this.settings.flushIntervalMs);
      this.timer.unref?.();
    }
  }

  /** Writes ready lines (every line with `everything`) in batches until none is left. */
  flush(everything = false): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return this.flushing.then(() => (everything ? this.flush(true) : undefined));
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.readySinceFlush = 0;
    this.flushing = (async () => {
      for (;;) {
        this.again = false;
        const taken = this.take(everything);
        if (taken.rows.length === 0) break;
        const written = this.write(taken.rows);
        this.inFlight = { keys: new Set(taken.from.map((e) => e.key)), done: written.catch(() => undefined) };
        try {
          await written;
          this.failures = 0;
          for (const e of taken.from) if (e.closed && e.lines.length === 0) this.entries.delete(e.key);
        } catch (error) {
          taken.restore();
          this.failures++;
          this.logger.error('logs: writing log lines failed; retrying', { error, lines: taken.rows.length, failures: this.failures });
          if (everything) throw error;
          await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** this.failures, 5000)).unref?.());
        } finally {
          this.inFlight = null;
        }
      }
    })().finally(() => {
      this.flushing = null;
      if (this.again) this.schedule();
    });
    return this.flushing;
  }

  /** Removes up to `batchSize` writable lines from the entries, with a way to put them back. */
  private take(everything: boolean): { rows: LineRow[]; from: Entry[]; restore(): void } {
    const rows: LineRow[] = [];
    const taken: Array<{ entry: Entry; lines: Buffered[] }> = [];
    for (const e of this.entries.values()) {
      if (rows.length >= this.settings.batchSize) break;
      const available = everything ? e.lines.length : this.writable(e) ? e.ready : 0;
      if (available === 0) continue;
      const n = Math.min(available, this.settings.batchSize - rows.length);
      const lines = e.lines.splice(0, n);
      e.ready = Math.max(0, e.ready - n);
      taken.push({ entry: e, lines });
      for (const l of lines) rows.push(toRow(e, l));
    }
    return {
      rows,
      from: taken.map((t) => t.entry),
      restore: () => {
        for (const { entry, lines } of taken) {
          entry.lines.unshift(...lines);
          entry.ready += lines.length;
          if (entry.lines.length > this.settings.limit) this.dropOldest(entry, entry.lines.length - this.settings.limit);
        }
      },
    };
  }

  /**
   * For the settle hook: every unwritten line of these attempts (published or not), claimed so the
   * flusher leaves them alone. Waits for a write in progress that carries earlier lines of them, so
   * the settle transaction's trim sees those lines and the cap stays exact.
   */
  async claim(attempts: ReadonlyArray<{ id: string; attempt: number }>): Promise<Array<{ entry: Entry; rows: LineRow[]; lastSeq: number }>> {
    const entries: Entry[] = [];
    for (const { id, attempt } of attempts) {
      const entry = this.entries.get(LogBuffer.key(id, attempt));
      if (!entry) continue;
      entry.claimedAt = Date.now();
      entries.push(entry);
    }
    if (entries.length === 0) return [];
    while (true) {
      const flight = this.inFlight;
      if (!flight || !entries.some((e) => flight.keys.has(e.key))) break;
      await flight.done;
    }
    return entries.map((entry) => {
      const lines = entry.lines.slice();
      return { entry, rows: lines.map((l) => toRow(entry, l)), lastSeq: lines.at(-1)?.seq ?? -1 };
    });
  }

  /** The settle transaction committed: the claimed lines are stored; the attempt is over. */
  release(entry: Entry, lastSeq: number): void {
    entry.lines = entry.lines.filter((l) => l.seq > lastSeq);
    this.readySinceFlush += entry.lines.length - entry.ready;
    entry.ready = entry.lines.length; // anything logged after the outcome goes out with the next flush
    entry.claimedAt = 0;
    entry.closed = true;
    if (entry.lines.length === 0) this.entries.delete(entry.key);
    else this.schedule();
  }

  /** Writes everything left (worker stopping); later lines are written as they come. */
  async drain(): Promise<void> {
    await this.flush(true);
  }

  get size(): number {
    return this.entries.size;
  }
}

function toRow(e: Entry, l: Buffered): LineRow {
  return { jobId: e.jobId, attempt: e.attempt, seq: l.seq, rootId: e.rootId, parentId: e.parentId, at: l.at, level: l.level, message: l.message };
}
