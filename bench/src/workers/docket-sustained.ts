/**
 * The worker process of the sustained-load bench (sustained.ts): one Docket worker with the pruner
 * (and recovery, as a production worker would run) on the bench queue. Each job carries the
 * monotonic time of its push (`t`, µs); the handler turns it into push → start latency and the
 * process reports, once per wall-clock second, how many jobs started in it and their latency
 * percentiles — a per-job IPC message would cost more than the jobs at these rates.
 *
 * IPC: sends `ready` when loaded; on `start` starts the worker and sends `started`; sends
 * `second` { s, n, p50, p99, max } every second; on `{ type: 'expect', n }` sends `handled` once
 * that many jobs have started in all; on `stop` stops gracefully and exits.
 */
import { Docket, defineJob, Worker } from '@docket/core';
import { pruner } from '@docket/plugin-pruner';
import { recovery } from '@docket/plugin-recovery';
import { nowUs } from '../clock.js';
import { percentile } from '../stats.js';
import { DOCKET_JOB_OPTIONS, DOCKET_QUEUE, DOCKET_WORKER_QUEUE_OPTIONS } from '../systems/docket.js';

const url = process.env.BENCH_URL;
const windowMs = Number(process.env.BENCH_PRUNE_AFTER_MS);
if (!url || !Number.isFinite(windowMs)) throw new Error('BENCH_URL and BENCH_PRUNE_AFTER_MS are required');
const send = (message: Record<string, unknown>) => process.send?.(message);

const app = new Docket({
  connection: url,
  plugins: [
    recovery(),
    // Finished jobs older than the window go; the pruner runs every 5 s on every worker (one here).
    pruner({ intervalMs: 5_000, maxAgeMs: { succeeded: windowMs, failed: windowMs, cancelled: windowMs }, primaryOnly: false }),
  ],
});

let latencies: number[] = [];
let started = 0;
let expected = Number.POSITIVE_INFINITY;
const job = defineJob(DOCKET_JOB_OPTIONS, async (args: { t: number }) => {
  latencies.push((nowUs() - args.t) / 1000);
  if (++started === expected) send({ type: 'handled', n: started });
});
const worker = new Worker(app, { jobs: [job], queues: { [DOCKET_QUEUE]: DOCKET_WORKER_QUEUE_OPTIONS } });

let second = 0;
const reporter = setInterval(() => {
  const batch = latencies;
  latencies = [];
  send({
    type: 'second',
    s: ++second,
    n: batch.length,
    p50: percentile(batch, 50),
    p99: percentile(batch, 99),
    max: batch.length ? Math.max(...batch) : Number.NaN,
  });
}, 1000);

process.on('message', async (m: { type: string; n?: number }) => {
  if (m.type === 'start') {
    await worker.start();
    send({ type: 'started', t: nowUs() });
  } else if (m.type === 'expect') {
    expected = m.n ?? Number.POSITIVE_INFINITY;
    if (started >= expected) send({ type: 'handled', n: started });
  } else if (m.type === 'stop') {
    clearInterval(reporter);
    await worker.stop();
    await app.close();
    process.exit(0);
  }
});
// The plugins' tables and indexes, as a deploy step would create them before workers start.
await app.migrate();
send({ type: 'ready' });
