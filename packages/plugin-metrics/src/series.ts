import type { HistogramCell, LocalHistogram } from './histogram.js';

/**
 * The job counters of one process, kept as plain numbers per (queue, job name) and handed to
 * prom-client when it is scraped: counting a job is a map lookup and an addition, whatever the
 * registry does. The number of (queue, name) pairs is bounded: past `maxSeries`, jobs of new pairs
 * are counted under the job name OVERFLOW_NAME of their queue, so a program that makes job names
 * from data cannot grow the exporter without bound. Job ids and arguments are never labels.
 */

/** The job name that pairs past `maxSeries` are counted under. */
export const OVERFLOW_NAME = '_other';

/** What is counted per (queue, job name). */
export const COUNTED = ['pushed', 'started', 'succeeded', 'failed', 'retried', 'cancelled', 'recovered'] as const;
export type Counted = (typeof COUNTED)[number];

export interface Series {
  readonly labels: { readonly queue: string; readonly name: string };
  /** Counts not yet handed to prom-client, per counter. */
  readonly pending: Record<Counted, number>;
  /** This pair's queue wait and run time histograms. */
  readonly wait: HistogramCell;
  readonly run: HistogramCell;
}

export class SeriesTable {
  private readonly byKey = new Map<string, Series>();

  constructor(
    private readonly maxSeries: number,
    private readonly histograms: { readonly wait: LocalHistogram; readonly run: LocalHistogram },
  ) {}

  /** The series of (queue, name), or its queue's overflow series once the table is full. */
  get(queue: string, name: string): Series {
    const key = `${queue}\u0000${name}`;
    const found = this.byKey.get(key);
    if (found) return found;
    if (this.byKey.size >= this.maxSeries) return this.overflow(queue);
    return this.add(key, queue, name);
  }

  count(queue: string, name: string, what: Counted, n = 1): void {
    this.get(queue, name).pending[what] += n;
  }

  /** Hands each series' pending count of `what` to `inc` and zeroes it (prom-client's collect). */
  flush(what: Counted, inc: (labels: Series['labels'], n: number) => void): void {
    for (const series of this.byKey.values()) {
      const n = series.pending[what];
      if (n === 0) continue;
      series.pending[what] = 0;
      inc(series.labels, n);
    }
  }

  private overflow(queue: string): Series {
    const key = `${queue}\u0000${OVERFLOW_NAME}\u0000`;
    return this.byKey.get(key) ?? this.add(key, queue, OVERFLOW_NAME);
  }

  private add(key: string, queue: string, name: string): Series {
    const pending = Object.fromEntries(COUNTED.map((c) => [c, 0])) as Record<Counted, number>;
    const labels = Object.freeze({ queue, name });
    const series: Series = { labels, pending, wait: this.histograms.wait.cell(labels), run: this.histograms.run.cell(labels) };
    this.byKey.set(key, series);
    return series;
  }
}
