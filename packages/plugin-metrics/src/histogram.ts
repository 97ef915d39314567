/**
 * A Prometheus histogram kept as plain numbers per (queue, job name): observing an attempt is a
 * walk over at most 50 bounds and three additions, with no label hashing (prom-client's
 * `observe` hashes and validates its labels on every call, about a microsecond, which a drain of
 * tens of thousands of jobs a second notices). It registers into a prom-client registry as a
 * metric of its own — `registry.registerMetric` takes any object that `get()`s the values in
 * prom-client's shape — and is rendered by the registry like prom-client's own histograms.
 */
import type { Registry } from 'prom-client';

/** One sample as prom-client's registry renders it. */
interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/** The counts of one label set: per bucket (not cumulative; the last is +Inf), their sum and number. */
export interface HistogramCell {
  readonly labels: Readonly<Record<string, string>>;
  readonly buckets: number[];
  sum: number;
  count: number;
}

export class LocalHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly cells: HistogramCell[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  /** A new label set's counts (kept by the caller next to its other numbers, so observing needs no lookup). */
  cell(labels: Readonly<Record<string, string>>): HistogramCell {
    const cell: HistogramCell = { labels, buckets: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 };
    this.cells.push(cell);
    return cell;
  }

  observe(cell: HistogramCell, value: number): void {
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    cell.buckets[i] = (cell.buckets[i] ?? 0) + 1;
    cell.sum += value;
    cell.count++;
  }

  /** What prom-client's registry renders: cumulative `_bucket`s with `le`, then `_sum` and `_count`, per label set. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: Sample[]; aggregator: 'sum' }> {
    const values: Sample[] = [];
    for (const cell of this.cells) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += cell.buckets[i] ?? 0;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...cell.labels, le: bound }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...cell.labels, le: '+Inf' }, value: cell.count });
      values.push({ metricName: `${this.name}_sum`, labels: cell.labels, value: cell.sum });
      values.push({ metricName: `${this.name}_count`, labels: cell.labels, value: cell.count });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** `registry.resetMetrics()`: every count back to zero (the label sets stay). */
  reset(): void {
    for (const cell of this.cells) {
      cell.buckets.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }

  register(registry: Registry): void {
    registry.registerMetric(this as never);
  }
}
