/**
 * Latency benchmark (not a test; prints numbers, asserts nothing):
 *
 *   plain        push → handler start, on an app without plugins
 *   plain+wf     push → handler start, on an app with the workflow plugin (its push hooks tapped)
 *   dependent    the later of two parents' handlers returns → the step that waits for both starts
 *   dep.commit   the later parent's completion commits → that step starts (the wake-up path alone)
 *   parent done  the later parent's handler returns → its completion (which pushes the step) commits
 *   chain        a chain step's handler returns → the next step's handler starts
 *   hand-off     without the plugin: a job returns → its completion commits → an afterSettle
 *                hook pushes the next job → that job starts (what you would write by hand)
 *
 * Everything runs in this process (one clock): one worker per app, sequential iterations, so
 * nothing queues. The dependent path is: completion transaction (lock, settle → the plugin pushes
 * the step, write outcome) → commit delivers the NOTIFY → the worker fetches → the handler starts.
 *
 *   pnpm --filter @docket/plugin-workflow bench                      # embedded PostgreSQL
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres pnpm --filter @docket/plugin-workflow bench
 *   BENCH_ITERATIONS=500 pnpm --filter @docket/plugin-workflow bench
 */
import { performance } from 'node:perf_hooks';
import { Docket, type DocketPlugin, defineJob, HOOK_STAGE, Worker } from '@docket/core';
import { createTestDatabase } from '@docket/testing';
import { chain, pushWorkflow, waitForWorkflow, workflow, workflows } from '../src/index.js';

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 300);
const WARMUP = 30;

const starts = new Map<string, number>();
const ends = new Map<string, number>();
const commits = new Map<string, number>();
const mark = (map: Map<string, number>, key: string) => map.set(key, performance.now());

const probe = defineJob({ name: 'probe', queue: 'bench' }, async ({ key }: { key: string }) => {
  mark(starts, key);
  return key;
});
const parent = defineJob({ name: 'parent', queue: 'bench' }, async ({ key }: { key: string }) => {
  mark(ends, key); // the handler is done: what follows is the platform's latency
  return key;
});
const link = defineJob({ name: 'link', queue: 'bench' }, async (previous: string) => {
  const key = `${previous}>`;
  mark(starts, key);
  mark(ends, key);
  return key;
});

const handoff = defineJob({ name: 'handoff', queue: 'bench' }, async ({ key }: { key: string }) => {
  mark(ends, key);
  return key;
});

/** Bench-only: notes when a parent's completion commits (right after COMMIT returns). */
const commitClock: DocketPlugin = {
  name: 'bench-commit-clock',
  apply(app) {
    app.hooks.settle.tapPromise({ name: 'bench-commit-clock', stage: HOOK_STAGE.LAST }, async (settlements, ctx) => {
      for (const s of settlements) {
        if (s.job.name === 'parent' && s.outcome.state === 'succeeded') {
          const key = (s.job.args as { key: string }).key;
          ctx.afterCommit(() => void mark(commits, key));
        }
      }
      return settlements;
    });
  },
};

/** Bench-only, on an app without the workflow plugin: the hand-written dependency (afterSettle → push). */
const handOff: DocketPlugin = {
  name: 'bench-hand-off',
  apply(app) {
    app.hooks.afterSettle.tapPromise('bench-hand-off', async (settled) => {
      for (const s of settled) {
        if (s.job.name === 'handoff') await app.push(probe.withArgs({ key: `${(s.job.args as { key: string }).key}:next` }));
      }
    });
  },
};

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return { n: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), mean };
}

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('the benchmark timed out waiting for a job');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

async function main() {
  const db = await createTestDatabase({ template: false });
  const plainApp = new Docket({ connection: db.url, schema: 'bench_plain', logger: false });
  const wfApp = new Docket({ connection: db.url, schema: 'bench_wf', logger: false, plugins: [workflows(), commitClock] });
  const handOffApp = new Docket({ connection: db.url, schema: 'bench_handoff', logger: false, plugins: [handOff] });
  await plainApp.migrate();
  await wfApp.migrate();
  await handOffApp.migrate();
  const workers = [
    new Worker(plainApp, { jobs: [probe], queues: { bench: { concurrency: 10 } } }),
    new Worker(wfApp, { jobs: [probe, parent, link], queues: { bench: { concurrency: 10 } } }),
    new Worker(handOffApp, { jobs: [probe, handoff], queues: { bench: { concurrency: 10 } } }),
  ];
  for (const w of workers) await w.start();

  const results: Record<string, number[]> = {};
  try {
    for (const [label, app] of [
      ['plain', plainApp],
      ['plain+wf', wfApp],
    ] as const) {
      const samples: number[] = [];
      for (let i = 0; i < WARMUP + ITERATIONS; i++) {
        const key = `${label}:${i}`;
        const t0 = performance.now();
        const ref = await app.push(probe.withArgs({ key }));
        await app.waitForJob(ref, { timeoutMs: 10_000 });
        if (i >= WARMUP) samples.push(starts.get(key)! - t0);
      }
      results[label] = samples;
    }

    const dependent: number[] = [];
    const afterCommit: number[] = [];
    const parentDone: number[] = [];
    for (let i = 0; i < WARMUP + ITERATIONS; i++) {
      const key = `dep:${i}`;
      const flow = workflow('latency')
        .step('p1', parent.withArgs({ key: `${key}:p1` }))
        .step('p2', parent.withArgs({ key: `${key}:p2` }))
        .step('child', probe.withArgs({ key }), { after: ['p1', 'p2'] });
      await waitForWorkflow(wfApp, await pushWorkflow(wfApp, flow), { timeoutMs: 10_000 });
      const last = ends.get(`${key}:p1`)! > ends.get(`${key}:p2`)! ? `${key}:p1` : `${key}:p2`;
      if (i < WARMUP) continue;
      dependent.push(starts.get(key)! - ends.get(last)!);
      afterCommit.push(starts.get(key)! - commits.get(last)!);
      parentDone.push(commits.get(last)! - ends.get(last)!);
    }
    results.dependent = dependent;
    results['dep.commit'] = afterCommit;
    results['parent done'] = parentDone;

    const chained: number[] = [];
    for (let i = 0; i < WARMUP + ITERATIONS / 10; i++) {
      const key = `chain:${i}`;
      await waitForWorkflow(
        wfApp,
        await pushWorkflow(wfApp, chain(parent.withArgs({ key }), link, link, link, link, link, link, link, link, link, link)),
        {
          timeoutMs: 10_000,
        },
      );
      if (i < WARMUP) continue;
      let previous = key;
      for (let s = 0; s < 10; s++) {
        const next = `${previous}>`;
        chained.push(starts.get(next)! - ends.get(previous)!);
        previous = next;
      }
    }
    results.chain = chained;

    const handOffs: number[] = [];
    for (let i = 0; i < WARMUP + ITERATIONS; i++) {
      const key = `ho:${i}`;
      await handOffApp.push(handoff.withArgs({ key }));
      await waitUntil(() => starts.has(`${key}:next`));
      if (i >= WARMUP) handOffs.push(starts.get(`${key}:next`)! - ends.get(key)!);
    }
    results['hand-off'] = handOffs;
  } finally {
    for (const w of workers) await w.stop();
    await plainApp.close();
    await wfApp.close();
    await handOffApp.close();
    await db.drop();
  }

  const rows = Object.entries(results).map(([label, samples]) => ({ label, ...stats(samples) }));
  const base = rows.find((r) => r.label === 'plain')!;
  console.log(
    `\nlatency to handler start (${ITERATIONS} iterations after ${WARMUP} warm-up, node ${process.version}, ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL'})\n`,
  );
  console.log(['path', 'n', 'p50', 'p95', 'p99', 'mean', 'p50 vs plain'].map((h, i) => (i === 0 ? h.padEnd(12) : h.padStart(10))).join(''));
  for (const r of rows) {
    console.log(
      [
        r.label.padEnd(12),
        String(r.n).padStart(10),
        fmt(r.p50).padStart(10),
        fmt(r.p95).padStart(10),
        fmt(r.p99).padStart(10),
        fmt(r.mean).padStart(10),
        `${(r.p50 / base.p50).toFixed(2)}×`.padStart(10),
      ].join(''),
    );
  }
  console.log(
    '\nplain, plain+wf: push() called → the handler starts.' +
      '\ndependent: the later of two parents returns → the step that waits for both starts (= parent done + dep.commit).' +
      "\ndep.commit: that parent's completion (which pushed the step) has committed → the step starts." +
      '\nparent done: the parent returns → its completion transaction (lock, settle, push the step, write) commits.' +
      '\nchain: a step returns → the next step starts (10 links per chain).' +
      '\nhand-off: no workflow plugin; a job returns → completion commits → afterSettle pushes the next job → it starts.',
  );
}

await main();
