/**
 * `pnpm bench`: Docket against graphile-worker, pg-boss and BullMQ on one PostgreSQL server (and
 * Redis), plus the physical-limit rows (a bare postgres.js loop and pgbench). Prints figures, asserts
 * nothing. See --help and docs/PERFORMANCE.md.
 */
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import postgres from 'postgres';
import { handoff, pluginTax, sustained } from './companions.js';
import { type Config, parseArgs, type WorkloadId } from './config.js';
import { createDatabase, dropDatabase, type Server, serverVersion, startServer, stopServer } from './db.js';
import { bareBulk, bareDrain, bareLatency, bareSetup, bareSingle } from './limits/bare.js';
import { findPgbench, pgbenchDequeue, pgbenchVersion } from './limits/pgbench.js';
import { pkgVersion } from './pkg.js';
import { killAllChildren } from './proc.js';
import { METRICS, type Results, renderTables, renderTargets, type TargetRow, targets } from './report.js';
import { fmt, percentile } from './stats.js';
import { bullmqAdapter } from './systems/bullmq.js';
import { docketAdapter } from './systems/docket.js';
import { graphileAdapter } from './systems/graphile.js';
import { pgbossAdapter } from './systems/pgboss.js';
import { SkipSystem, type SystemAdapter } from './systems/types.js';
import {
  bigDrainWorkload,
  drainWorkload,
  dropTemplates,
  historyWorkload,
  latencyWorkload,
  mixedDefinition,
  mixedWorkload,
  rssWorkload,
  type Samples,
  scaleWorkload,
} from './workloads.js';

const log = (line: string) => {
  if (!interrupted) console.log(line);
};

const FACTORIES: Record<string, () => Promise<SystemAdapter>> = {
  docket: docketAdapter,
  graphile: graphileAdapter,
  pgboss: pgbossAdapter,
  bullmq: () => bullmqAdapter('redis'),
  'bullmq-pg': () => bullmqAdapter('postgres'),
};

let interrupted = false;
let cleaning: Promise<never> | undefined;
/** Kills the worker processes, stops the embedded server, exits; the first caller's code wins. */
function cleanup(code: number): Promise<never> {
  cleaning ??= (async () => {
    killAllChildren();
    await stopServer().catch(() => {});
    process.exit(code);
  })();
  return cleaning;
}
const onSignal = (code: number) => {
  interrupted = true;
  console.log('\nInterrupted: stopping the worker processes and the database server…');
  void cleanup(code);
};
process.on('SIGINT', () => onSignal(130));
process.on('SIGTERM', () => onSignal(143));

function record(results: Results, system: string, samples: Samples, round: number): void {
  const bySystem = (results[system] ??= {});
  for (const [k, v] of Object.entries(samples)) {
    const arr = (bySystem[k] ??= []);
    arr[round] = v;
  }
}

/**
 * The limit rows run right after the systems' runs of the same workload in each round, so they
 * meet the same conditions (the machine may be shared).
 */
async function limitsDrain(server: Server, config: Config, round: number, limits: Results, notes: string[]): Promise<void> {
  const name = `bench_bare_r${round}`;
  const url = await createDatabase(server, name);
  try {
    let sql = await bareSetup(url);
    const bulk = await bareBulk(sql, config.bulk);
    const drain = await bareDrain(sql, config.bulk);
    await sql.end({ timeout: 5 });
    const samples: Samples = { bulk, drain };
    if (config.bareBig > 0) {
      await dropDatabase(server, name);
      await createDatabase(server, name);
      sql = await bareSetup(url);
      samples.bulk_big = await bareBulk(sql, config.bareBig);
      samples.drain_big = await bareDrain(sql, config.bareBig);
      await sql.end({ timeout: 5 });
    }
    record(limits, 'bare', samples, round);
    log(
      `    bare: bulk ${Math.round(bulk)} jobs/s, drain ${Math.round(drain)} jobs/s` +
        (samples.drain_big ? `, drain of ${config.bareBig} ${Math.round(samples.drain_big)} jobs/s` : ''),
    );
  } finally {
    await dropDatabase(server, name);
  }
  const pgbench = findPgbench();
  if (!pgbench) {
    if (round === 0) notes.push('pgbench row skipped: no pgbench binary found (PATH, /usr/lib/postgresql/*/bin, $PGBENCH)');
    return;
  }
  const pname = `bench_pgbench_r${round}`;
  const purl = await createDatabase(server, pname);
  try {
    const b10 = await pgbenchDequeue(pgbench, purl, config.pgbenchRows, 10);
    const b100 = await pgbenchDequeue(pgbench, purl, config.pgbenchRows, 100);
    record(limits, 'pgbench', { b10, b100 }, round);
    log(`    pgbench ideal dequeue: batch 10 ${Math.round(b10)} rows/s, batch 100 ${Math.round(b100)} rows/s`);
  } catch (error) {
    const message = String((error as Error).message)
      .split('\n')
      .slice(0, 3)
      .join(' ');
    log(`    pgbench failed: ${message}`);
    if (round === 0) notes.push(`pgbench row failed: ${message}`);
  } finally {
    await dropDatabase(server, pname);
  }
}

async function limitsLatency(server: Server, config: Config, round: number, limits: Results, latency: boolean, single: boolean): Promise<void> {
  const name = `bench_bare_lat_r${round}`;
  const url = await createDatabase(server, name);
  try {
    const samples: Samples = {};
    if (latency) {
      const sql = await bareSetup(url);
      await sql.end({ timeout: 5 });
      const lat = await bareLatency(url, config.latencyPushes, config.latencyRate);
      samples.lat_p50 = percentile(lat, 50);
      samples.lat_p95 = percentile(lat, 95);
      samples.lat_p99 = percentile(lat, 99);
    }
    if (single) {
      const sql = latency ? postgres(url, { max: 2, onnotice: () => {} }) : await bareSetup(url);
      samples.single = await bareSingle(sql, config.single);
      await sql.end({ timeout: 5 });
    }
    record(limits, 'bare', samples, round);
    log(
      `    bare:` +
        (latency ? ` notify latency p50 ${fmt(samples.lat_p50!)} p95 ${fmt(samples.lat_p95!)} p99 ${fmt(samples.lat_p99!)} ms` : '') +
        (single ? ` single ${Math.round(samples.single!)} jobs/s` : ''),
    );
  } finally {
    await dropDatabase(server, name);
  }
}

async function main(): Promise<void> {
  const config = parseArgs(process.argv.slice(2));
  const started = Date.now();
  log(`Docket benchmark — ${config.quick ? 'quick' : 'full'} run, ${config.rounds} round(s), systems: ${config.systems.join(', ')}`);
  const server = await startServer(log);
  const pgVersion = await serverVersion(server);
  log(`PostgreSQL: ${pgVersion} (${server.origin})`);
  const loadAtStart = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  log(
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load average ${loadAtStart}`,
  );

  // Load each system; one that fails to load is skipped with its reason.
  const systems: SystemAdapter[] = [];
  const skipped: Record<string, string> = {};
  for (const id of config.systems) {
    try {
      systems.push(await FACTORIES[id]!());
    } catch (error) {
      const reason = error instanceof SkipSystem ? error.message : `failed to load: ${String((error as Error)?.message ?? error)}`;
      skipped[id] = reason;
      log(`  skipping ${id}: ${reason}`);
    }
  }
  log('\nSystems and settings:');
  for (const s of systems) {
    log(`  ${s.label} ${s.version}`);
    for (const [k, v] of Object.entries(s.settings)) log(`      ${k}: ${v}`);
  }
  const pgbench = findPgbench();
  const pgbenchInfo = pgbench ? `${await pgbenchVersion(pgbench).catch(() => '?')} (${pgbench})` : 'not found';
  log(`  limits: postgres.js ${pkgVersion('postgres')}; pgbench ${pgbenchInfo}`);

  const results: Results = {};
  const limits: Results = {};
  const errors: string[] = [];
  const notes: string[] = [];
  /** Runs one measurement: a failure is logged and kept for the report, and the run goes on. */
  const attempt = async (heading: string, failure: string, fn: () => Promise<void>) => {
    if (interrupted) return;
    log(heading);
    try {
      await fn();
    } catch (error) {
      const message = String((error as Error)?.stack ?? error)
        .split('\n')
        .slice(0, 4)
        .join(' | ');
      log(`    FAILED: ${message}`);
      errors.push(`${failure}: ${message}`);
    }
  };
  const run = (system: SystemAdapter, workload: string, fn: () => Promise<Samples>, round: number) =>
    attempt(`  ${system.label} — ${workload}`, `round ${round + 1}, ${system.label}, ${workload}`, async () =>
      record(results, system.id, await fn(), round),
    );
  const limit = (what: string, fn: () => Promise<void>, round: number) => attempt(`  limits — ${what}`, `round ${round + 1}, limits (${what})`, fn);
  const want = (w: WorkloadId) => config.workloads.has(w);

  try {
    for (let round = 0; round < config.rounds; round++) {
      log(`\n— Round ${round + 1} of ${config.rounds} —`);
      if (want('drain')) {
        for (const s of systems) await run(s, 'bulk enqueue + drain', () => drainWorkload(server, s, config, log), round);
        if (config.limits)
          await limit('bulk insert + drain: bare postgres.js and pgbench', () => limitsDrain(server, config, round, limits, notes), round);
      }
      if (want('bigdrain') && config.bareBig > 0) {
        for (const s of systems) {
          if (s.id === 'bullmq-pg') {
            if (round === 0)
              notes.push(
                `BullMQ (Postgres): ${config.bareBig.toLocaleString('en-US')}-job drain left out (about 2,000 jobs/s: close to a minute per round)`,
              );
            continue;
          }
          await run(s, `drain of ${config.bareBig.toLocaleString('en-US')} jobs`, () => bigDrainWorkload(server, s, config, log), round);
        }
      }
      if (want('latency') || want('single')) {
        for (const s of systems) {
          await run(
            s,
            [want('latency') && 'latency', want('single') && 'single enqueue'].filter(Boolean).join(' + '),
            () => latencyWorkload(server, s, config, log, want('single'), want('latency')),
            round,
          );
        }
        if (config.limits)
          await limit(
            'latency + single insert: bare postgres.js',
            () => limitsLatency(server, config, round, limits, want('latency'), want('single')),
            round,
          );
      }
      if (want('history')) {
        for (const s of systems) {
          if (typeof s.history === 'string' && s.history.startsWith('not measured')) {
            if (round === 0) notes.push(`${s.label}: history drain ${s.history}`);
            continue;
          }
          await run(s, `drain with ${config.history.toLocaleString('en-US')} finished jobs`, () => historyWorkload(server, s, config, log), round);
          const d = results[s.id]?.drain?.[round];
          const h = results[s.id]?.hist_drain?.[round];
          if (d && h) record(results, s.id, { hist_ratio: (100 * h) / d }, round);
        }
      }
      if (want('mixed')) for (const s of systems) await run(s, 'mixed run', () => mixedWorkload(server, s, config, log), round);
      if (want('scale'))
        for (const s of systems) await run(s, 'drain by 1, 2 and 4 worker processes', () => scaleWorkload(server, s, config, log), round);
      if (want('rss') && round === 0) {
        for (const s of systems) {
          if (s.id === 'bullmq-pg' && !config.systems.includes('bullmq-pg')) continue;
          if (s.id === 'bullmq-pg' && config.systems.length > 1) {
            notes.push('BullMQ (Postgres): long RSS drain left out (about 1,500 jobs/s: 1,000,000 jobs take over ten minutes)');
            continue;
          }
          await run(s, `long drain of ${config.rssJobs.toLocaleString('en-US')} jobs (RSS)`, () => rssWorkload(server, s, config, log), round);
        }
      }
    }
  } finally {
    await dropTemplates(server);
  }

  // Docket alone, once per run: the targets with scripts of their own (they take their own rounds).
  const companionRows: TargetRow[] = [];
  const companion = (what: string, fn: () => Promise<TargetRow[]>) =>
    attempt(`\n— ${what} —`, what, async () => {
      companionRows.push(...(await fn()));
    });
  if (config.systems.includes('docket')) {
    if (want('plugins')) await companion('the plugin tax (plugins-drain)', () => pluginTax(server, config.quick, config.rounds, log));
    if (want('handoff')) await companion('workflow hand-off (handoff)', () => handoff(server, config.quick, config.rounds, log));
    if (want('sustained')) await companion('sustained load (sustained)', () => sustained(server, config.quick, log));
  }

  if (interrupted) return;
  // Report.
  const ordered = systems.map((s) => ({ id: s.id, label: s.label }));
  log(
    `\n${'='.repeat(100)}\nResults: median [min – max] over ${config.rounds} round(s)${config.quick ? ' (quick mode)' : ''}; same server, same run.`,
  );
  log(renderTables(config, results, ordered, limits));
  if (want('mixed')) log(`\n${mixedDefinition(config)}`);
  for (const s of systems) {
    if (s.history !== true && typeof s.history === 'string' && !s.history.startsWith('not measured'))
      log(`Note — ${s.label} history rows: ${s.history}.`);
  }
  const docketSkip = skipped.docket ?? (config.systems.includes('docket') ? null : 'not selected');
  const targetRows = [...targets(config, results, limits, docketSkip), ...companionRows];
  log(
    `\nTargets of issues 7 and 18 (ratios from this run; the plugin tax, hand-off and sustained load run by their own scripts: plugins-drain, handoff, sustained):\n${renderTargets(targetRows)}`,
  );
  if (Object.keys(skipped).length) {
    log('\nSkipped systems:');
    for (const [id, why] of Object.entries(skipped)) log(`  ${id}: ${why}`);
  }
  for (const note of notes) log(`Note: ${note}`);
  if (errors.length) {
    log('\nErrors:');
    for (const e of errors) log(`  ${e}`);
  }
  const seconds = (Date.now() - started) / 1000;
  const loadAtEnd = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  log(`\nDone in ${seconds.toFixed(0)} s. Load average at the end: ${loadAtEnd} (other work on the machine skews every figure).`);

  if (config.json) {
    const json = {
      generatedAt: new Date().toISOString(),
      mode: config.quick ? 'quick' : 'full',
      config: { ...config, workloads: [...config.workloads] },
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: totalmem() / 2 ** 30, node: process.version, loadAtStart, loadAtEnd },
      postgres: { version: pgVersion, origin: server.origin },
      pgbench: pgbenchInfo,
      systems: systems.map((s) => ({ id: s.id, label: s.label, version: s.version, settings: s.settings })),
      skipped,
      metrics: METRICS.map((m) => ({ key: m.key, title: m.title(config), unit: m.unit, better: m.better })),
      results,
      limits,
      mixedDefinition: mixedDefinition(config),
      targets: targetRows,
      notes,
      errors,
      seconds,
    };
    await writeFile(config.json, `${JSON.stringify(json, null, 2)}\n`);
    log(`JSON written to ${config.json}`);
  }
  await server.stop();
}

main().then(
  () => cleanup(0),
  (error) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    void cleanup(1);
  },
);
