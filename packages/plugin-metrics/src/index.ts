/**
 * @docket/plugin-metrics — Prometheus metrics for Docket, with prom-client.
 *
 *   const exporter = metrics();
 *   const app = new Docket({ connection, plugins: [exporter] });
 *   await exporter.serve();                      // http://127.0.0.1:9464/metrics
 *   // or mount exporter.handler as a route of your own server, or read exporter.registry
 *
 * Counters and histograms count what this process does (its pushes, the attempts its workers run,
 * the recoveries it sweeps), by queue and job name; gauges read the whole database through the
 * core's operations API when scraped (cached for `cacheMs`). Built only on the public hooks:
 * `pushCommitted`/`afterPush` (taps that need no transaction), `wrapAttempt`, `afterSettle` and
 * `event`.
 */
import {
  type AnyDocketEvent,
  booleanOption,
  type Docket,
  type DocketPlugin,
  InvalidOptionError,
  integerOption,
  pluginBinding,
  rejectUnknownKeys,
  type SettledJob,
} from '@docket/core';
import { Counter, Gauge, Registry } from 'prom-client';
import { DatabaseReader, isAlive } from './database.js';
import { MetricsNameTakenError } from './errors.js';
import { LocalHistogram } from './histogram.js';
import { type MetricsHandler, type MetricsServer, metricsHandler, type ServeOptions, serveMetrics } from './http.js';
import { type Counted, SeriesTable } from './series.js';

export { METRICS_ERRORS, MetricsNameTakenError, MetricsPublicBindError } from './errors.js';
export type { MetricsHandler, MetricsServer, ServeOptions } from './http.js';
export { OVERFLOW_NAME } from './series.js';

export const PLUGIN_NAME = 'metrics';
export const PLUGIN_VERSION = '0.0.0';

/** Queue wait buckets, seconds: from a job claimed at once to one that waited an hour. */
export const DEFAULT_WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** Run time buckets, seconds: prom-client's defaults stretched to ten minutes. */
export const DEFAULT_RUN_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];

export interface MetricsOptions {
  /** The prom-client registry to register into (e.g. prom-client's global `register`). Default: a registry of the plugin's own (`plugin.registry`). */
  registry?: Registry;
  /** Prefix of every metric name. Default 'docket_'. */
  prefix?: string;
  /** Read the database gauges (jobs per queue and state, queue lag, workers) when scraped. Default true. */
  databaseMetrics?: boolean;
  /** How long one database read serves scrapes, ms. Default 5000. */
  cacheMs?: number;
  /** Most (queue, job name) label pairs; jobs of further pairs are counted as job name '_other' of their queue. Default 1000. */
  maxSeries?: number;
  /** Bucket bounds (seconds) of the queue wait histogram. Default DEFAULT_WAIT_BUCKETS. */
  waitBuckets?: readonly number[];
  /** Bucket bounds (seconds) of the run time histogram. Default DEFAULT_RUN_BUCKETS. */
  runBuckets?: readonly number[];
}

const OPTION_KEYS = ['registry', 'prefix', 'databaseMetrics', 'cacheMs', 'maxSeries', 'waitBuckets', 'runBuckets'] as const;

export interface MetricsPlugin extends DocketPlugin {
  /** The registry the metrics are in (the one given, or the plugin's own). */
  readonly registry: Registry;
  /** Serves the text format: mount it as a GET route (`app.get('/metrics', metrics.handler)`), or pass it to `http.createServer`. */
  readonly handler: MetricsHandler;
  /** The text format now, as a scrape would get it. */
  metrics(): Promise<string>;
  /** Starts a standalone HTTP server for the metrics (127.0.0.1:9464/metrics by default). */
  serve(options?: ServeOptions): Promise<MetricsServer>;
}

/** The event a recovery sweep emits for the jobs it put back (by @docket/plugin-recovery, when installed). */
const RECOVERED_EVENT = 'recovery.recovered';

export function metrics(options: MetricsOptions = {}): MetricsPlugin {
  const where = `${PLUGIN_NAME}(options)`;
  rejectUnknownKeys(where, options, OPTION_KEYS);
  if (options.registry !== undefined && typeof (options.registry as { registerMetric?: unknown } | null)?.registerMetric !== 'function') {
    throw new InvalidOptionError(`${where}: \`registry\` must be a prom-client Registry.`, { details: { option: 'registry' } });
  }
  const prefix = options.prefix ?? 'docket_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new InvalidOptionError(
      `${where}: \`prefix\` must be a valid start of a Prometheus metric name (letters, digits, _ and :), got ${String(prefix)}.`,
      {
        details: { option: 'prefix' },
      },
    );
  }
  const databaseMetrics = booleanOption(where, 'databaseMetrics', options.databaseMetrics, true);
  const cacheMs = integerOption(where, 'cacheMs', options.cacheMs, 5000, { min: 0, max: 3_600_000 });
  const maxSeries = integerOption(where, 'maxSeries', options.maxSeries, 1000, { min: 1, max: 100_000 });
  const waitBuckets = buckets(where, 'waitBuckets', options.waitBuckets, DEFAULT_WAIT_BUCKETS);
  const runBuckets = buckets(where, 'runBuckets', options.runBuckets, DEFAULT_RUN_BUCKETS);
  const registry = options.registry ?? new Registry();

  const binding = pluginBinding(PLUGIN_NAME, PLUGIN_NAME);
  const logError = (message: string) => (error: unknown) => {
    binding.current?.logger.warn(`${PLUGIN_NAME}: ${message}`, { error });
  };
  const reader = new DatabaseReader(
    () => binding.app('metrics'),
    cacheMs,
    (error) => {
      readErrors.inc();
      logError('reading the database gauges failed; they are left out of this scrape')(error);
    },
  );

  const waitSeconds = new LocalHistogram(
    `${prefix}job_queue_wait_seconds`,
    'Time from when an attempt was due to when a worker of this process claimed it (database clock).',
    waitBuckets,
  );
  const runSeconds = new LocalHistogram(
    `${prefix}job_run_seconds`,
    'Time the handler of an attempt ran on a worker of this process, whatever its outcome.',
    runBuckets,
  );
  const series = new SeriesTable(maxSeries, { wait: waitSeconds, run: runSeconds });
  const labelNames = ['queue', 'name'] as const;
  const metric = <T>(make: () => T): T => {
    try {
      return make();
    } catch (error) {
      if (error instanceof Error && /already been registered/.test(error.message)) {
        throw new MetricsNameTakenError(
          `${where}: ${error.message} Two apps export into this registry: give each its own \`prefix\` (e.g. 'docket_billing_') or registry.`,
          { cause: error, details: { prefix } },
        );
      }
      throw error;
    }
  };
  const counter = (what: Counted, help: string) =>
    metric(
      () =>
        new Counter({
          name: `${prefix}jobs_${what}_total`,
          help,
          labelNames,
          registers: [registry],
          collect(this: Counter<'queue' | 'name'>) {
            series.flush(what, (labels, n) => this.inc(labels, n));
          },
        }),
    );
  counter('pushed', 'Jobs pushed by this process (inserted; duplicates answered with an existing job are not counted).');
  counter('started', 'Attempts started by the workers of this process.');
  counter('succeeded', 'Jobs that succeeded, settled by this process.');
  counter('failed', 'Jobs that failed for good (no attempt left, or not retryable), settled by this process.');
  counter('retried', 'Failed attempts scheduled to run again, settled by this process.');
  counter('cancelled', 'Jobs cancelled, settled by this process.');
  counter('recovered', 'Jobs put back in their queue after their worker was lost, by recovery sweeps of this process.');
  metric(() => waitSeconds.register(registry));
  metric(() => runSeconds.register(registry));
  const readErrors = metric(
    () =>
      new Counter({
        name: `${prefix}metrics_database_read_errors_total`,
        help: 'Scrapes whose database read failed (the database gauges were left out).',
        registers: [registry],
      }),
  );
  if (databaseMetrics) {
    metric(
      () =>
        new Gauge({
          name: `${prefix}jobs`,
          help: 'Jobs in the database per queue and state (large finished groups are estimates from the table statistics).',
          labelNames: ['queue', 'state'],
          registers: [registry],
          async collect() {
            const snapshot = await reader.read();
            this.reset();
            for (const c of snapshot?.counts ?? []) this.set({ queue: c.queue, state: c.state }, c.count);
          },
        }),
    );
    metric(
      () =>
        new Gauge({
          name: `${prefix}queue_oldest_pending_age_seconds`,
          help: 'Per queue with pending jobs: how long its longest-waiting due job has waited (0 when none is due yet).',
          labelNames: ['queue'],
          registers: [registry],
          async collect() {
            const snapshot = await reader.read();
            this.reset();
            for (const l of snapshot?.lag ?? []) this.set({ queue: l.queue }, l.lagMs / 1000);
          },
        }),
    );
    metric(
      () =>
        new Gauge({
          name: `${prefix}workers_alive`,
          help: 'Workers whose last heartbeat is younger than three heartbeat intervals.',
          registers: [registry],
          async collect() {
            const snapshot = await reader.read();
            this.reset();
            if (snapshot) this.set(snapshot.workers.filter(isAlive).length);
          },
        }),
    );
    metric(
      () =>
        new Gauge({
          name: `${prefix}queue_workers_alive`,
          help: 'Live workers serving each queue.',
          labelNames: ['queue'],
          registers: [registry],
          async collect() {
            const snapshot = await reader.read();
            this.reset();
            const perQueue = new Map<string, number>();
            for (const w of snapshot?.workers ?? []) if (isAlive(w)) for (const q of w.queues) perQueue.set(q, (perQueue.get(q) ?? 0) + 1);
            for (const [queue, n] of perQueue) this.set({ queue }, n);
          },
        }),
    );
  }

  const exposition = {
    metrics: () => registry.metrics(),
    get contentType() {
      return registry.contentType;
    },
  };
  const handler = metricsHandler(exposition, (error) => logError('serving metrics failed')(error));

  return {
    name: PLUGIN_NAME,
    version: PLUGIN_VERSION,
    registry,
    handler,
    metrics: () => registry.metrics(),
    serve: (serveOptions) => serveMetrics(handler, serveOptions),

    apply(app: Docket) {
      binding.bind(app);
      const { hooks } = app;
      const tap = { name: PLUGIN_NAME, transaction: false } as const;
      hooks.pushCommitted.tap(PLUGIN_NAME, (jobs) => {
        for (const job of jobs) series.count(job.queue, job.name, 'pushed');
      });
      // A push in the caller's transaction has no commit Docket sees: counted when inserted.
      hooks.afterPush.tapPromise(tap, async (jobs, ctx) => {
        if (!ctx.callerTransaction) return;
        for (const job of jobs) series.count(job.queue, job.name, 'pushed');
      });
      hooks.wrapAttempt.tap(PLUGIN_NAME, (run, ctx) => {
        const { job } = ctx;
        const s = series.get(job.queue, job.name);
        return async () => {
          s.pending.started++;
          if (job.startedAt) waitSeconds.observe(s.wait, Math.max(0, job.startedAt.getTime() - job.scheduledAt.getTime()) / 1000);
          const t0 = performance.now();
          try {
            return await run();
          } finally {
            runSeconds.observe(s.run, (performance.now() - t0) / 1000);
          }
        };
      });
      hooks.afterSettle.tap(PLUGIN_NAME, (settled: SettledJob[]) => {
        for (const { job, outcome } of settled) {
          const what = OUTCOME_COUNTER[outcome.state];
          if (what) series.count(job.queue, job.name, what);
        }
      });
      hooks.event.tap(PLUGIN_NAME, (event) => {
        const e = event as AnyDocketEvent;
        if (e.type !== RECOVERED_EVENT) return;
        const jobs = (e.payload as { jobs?: ReadonlyArray<{ queue: string; name: string }> }).jobs ?? [];
        for (const job of jobs) series.count(job.queue, job.name, 'recovered');
      });
    },
  };
}

/** The counter each outcome of `afterSettle` adds to (`waiting`: the job is not finished yet). */
const OUTCOME_COUNTER: Record<SettledJob['outcome']['state'], Counted | null> = {
  succeeded: 'succeeded',
  failed: 'failed',
  retry: 'retried',
  cancelled: 'cancelled',
  waiting: null,
};

function buckets(where: string, name: string, value: unknown, fallback: readonly number[]): number[] {
  if (value === undefined) return [...fallback];
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    value.length > 50 ||
    !value.every((b, i) => typeof b === 'number' && Number.isFinite(b) && b > 0 && (i === 0 || b > value[i - 1]))
  ) {
    throw new InvalidOptionError(`${where}: \`${name}\` must be 1 to 50 increasing positive numbers of seconds.`, { details: { option: name } });
  }
  return [...value];
}

/** The metric names without a prefix, for documentation and tests. */
export const METRIC_NAMES = [
  'jobs_pushed_total',
  'jobs_started_total',
  'jobs_succeeded_total',
  'jobs_failed_total',
  'jobs_retried_total',
  'jobs_cancelled_total',
  'jobs_recovered_total',
  'job_queue_wait_seconds',
  'job_run_seconds',
  'metrics_database_read_errors_total',
  'jobs',
  'queue_oldest_pending_age_seconds',
  'workers_alive',
  'queue_workers_alive',
] as const;
