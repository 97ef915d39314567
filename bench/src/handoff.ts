/**
 * Workflow hand-off: how long from a step's handler returning to its dependent's handler starting,
 * against a plain push → start on the same idle worker.
 *
 * One app with plugin-workflow and one in-process worker (the bench queue's usual options) on a
 * fresh database. Each sample is sequential on an idle worker:
 *   - plain: `push` of a job carrying the monotonic push time; its handler reports now − that time;
 *   - hand-off: a two-step chain whose first step returns the monotonic time at its end, which the
 *     chain hands to the second step as its arguments; the second step reports now − that time.
 * The hand-off therefore covers the first step's completion (the settle transaction that pushes
 * the dependent), the NOTIFY, the wake-up and the claim of the dependent.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres pnpm --filter @docket/bench handoff
 *   options: --samples N (300), --rounds N (3), --json FILE (the summary, for `pnpm bench`'s targets)
 */
import { Docket, defineJob, Worker } from '@docket/core';
import { chain, pushWorkflow, workflows } from '@docket/plugin-workflow';
import { nowUs, sleep } from './clock.js';
import { createDatabase, dropDatabase, serverVersion, startServer, stopServer } from './db.js';
import { fmt, median, percentile } from './stats.js';
import { writeSummary } from './summaries.js';
import { DOCKET_QUEUE, DOCKET_WORKER_QUEUE_OPTIONS } from './systems/docket.js';

const argv = process.argv.slice(2).filter((a) => a !== '--');
const value = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  const v = i >= 0 ? Number(argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} takes a positive integer`);
  return v;
};
const KNOWN = ['--samples', '--rounds', '--json'];
for (const a of argv) if (a.startsWith('--') && !KNOWN.includes(a)) throw new Error(`unknown option ${a}; known: ${KNOWN.join(' ')}`);
const jsonPath = argv.includes('--json') ? argv[argv.indexOf('--json') + 1] : undefined;
const samples = value('--samples', 300);
const rounds = value('--rounds', 3);

let report: ((ms: number) => void) | null = null;
const started = (since: number) => {
  const ms = (nowUs() - since) / 1000;
  report?.(ms);
};
const plain = defineJob({ name: 'plain', queue: DOCKET_QUEUE }, async ({ t }: { t: number }) => started(t));
const first = defineJob({ name: 'first', queue: DOCKET_QUEUE }, async (_: { i: number }) => nowUs());
const second = defineJob({ name: 'second', queue: DOCKET_QUEUE }, async (t: number) => started(t));

/** Runs `push` `samples` times, each time waiting for the measured handler to report. */
async function measure(push: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const reported = new Promise<number>((resolve) => (report = resolve));
    await push(i);
    out.push(await reported);
    await sleep(5); // idle again: the worker's completion of the last job is written
  }
  report = null;
  return out;
}

const server = await startServer((line) => console.log(line));
process.on('SIGINT', () => void stopServer().finally(() => process.exit(130)));
try {
  console.log(`handoff: ${samples} samples × ${rounds} round(s); ${await serverVersion(server)}; ${server.origin}`);
  const db = `handoff_${process.pid}`;
  const url = await createDatabase(server, db);
  const app = new Docket({ connection: url, plugins: [workflows()] });
  const worker = new Worker(app, { jobs: [plain, first, second], queues: { [DOCKET_QUEUE]: DOCKET_WORKER_QUEUE_OPTIONS } });
  const rows: Array<{ round: number; plain: number[]; handoff: number[] }> = [];
  try {
    await app.migrate();
    await worker.start();
    // Warm-up, not counted: the first pushes compile the paths.
    await measure(() => app.push(plain.withArgs({ t: nowUs() })));
    for (let round = 1; round <= rounds; round++) {
      const p = await measure(() => app.push(plain.withArgs({ t: nowUs() })));
      const h = await measure((i) => pushWorkflow(app, chain(first.withArgs({ i }), second)));
      rows.push({ round, plain: p, handoff: h });
      console.log(
        `round ${round}: plain push → start p50 ${fmt(median(p), 2)} ms p99 ${fmt(percentile(p, 99), 2)} ms; ` +
          `hand-off p50 ${fmt(median(h), 2)} ms p99 ${fmt(percentile(h, 99), 2)} ms`,
      );
    }
  } finally {
    await worker.stop();
    await app.close();
    await dropDatabase(server, db);
  }
  const all = (pick: 'plain' | 'handoff') => rows.flatMap((r) => r[pick]);
  const p50Plain = median(all('plain'));
  const p50Hand = median(all('handoff'));
  console.log(`\nall rounds: plain p50 ${fmt(p50Plain, 2)} ms p99 ${fmt(percentile(all('plain'), 99), 2)} ms`);
  console.log(`            hand-off p50 ${fmt(p50Hand, 2)} ms p99 ${fmt(percentile(all('handoff'), 99), 2)} ms`);
  console.log(`target: hand-off p50 ≤ 2 × plain p50 (${fmt(2 * p50Plain, 2)} ms) and ≤ 1.2 ms → ${fmt(p50Hand / p50Plain, 2)} × plain`);
  writeSummary(jsonPath, {
    samples: samples * rounds,
    plain: { p50: p50Plain, p99: percentile(all('plain'), 99) },
    handoff: { p50: p50Hand, p99: percentile(all('handoff'), 99) },
  });
} finally {
  await stopServer();
}
