/**
 * Where the time goes, split between Docket (this Node process) and PostgreSQL: a bulk push of N
 * no-op jobs into a fresh database, their drain by one in-process worker, then single pushes from
 * a fresh producer. For each phase: wall time, this process's CPU (user + system), PostgreSQL's
 * CPU (every server process, read from /proc), and WAL written, per job. `--cpu-prof*` write V8
 * CPU profiles of one phase (open them in Chrome DevTools).
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres pnpm --filter @docket/bench profile-drain -- --jobs 100000
 *   options: --rounds N, --no-bare, --history N, --single N, --without-ops-indexes, --cpu-prof F, --cpu-prof-push F, --cpu-prof-single F
 *
 * Also runs the bare loop (limits/bare.ts) on the same server for the same N, so the two rows
 * read side by side. Linux only (/proc).
 */
import { readdirSync, readFileSync } from 'node:fs';
import postgres from 'postgres';
import { nowUs } from './clock.js';
import { profiled } from './cpu-profile.js';
import { createDatabase, dropDatabase, type Server, startServer } from './db.js';
import { bareDrain, bareSetup } from './limits/bare.js';
import { DOCKET_JOB_OPTIONS, DOCKET_QUEUE, DOCKET_WORKER_QUEUE_OPTIONS, docketRemaining, loadDocket } from './systems/docket.js';

const argv = process.argv.slice(2).filter((a) => a !== '--');
const arg = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
};
const jobs = Number(arg('--jobs', '100000'));
const rounds = Number(arg('--rounds', '1'));
const skipBare = argv.includes('--no-bare');
/** `--history N`: N finished jobs of the same queue in the table before the drain (as the bench's history drain). */
const history = Number(arg('--history', '0'));
/**
 * `--without-ops-indexes`: drop what core migration 2 adds for the operations API (its indexes and
 * statistics) right after migrating, so that runs with and without it can alternate.
 */
const withoutOpsIndexes = argv.includes('--without-ops-indexes');
/** `--single N`: also N single pushes one after another (default 2000). */
const singles = Number(arg('--single', '2000'));
/** `--cpu-prof FILE`: a V8 CPU profile of this process during the Docket drain only (open it in Chrome DevTools). */
const cpuProfile = argv.includes('--cpu-prof') ? arg('--cpu-prof', 'drain.cpuprofile') : undefined;
/** `--cpu-prof-push FILE`: the same for the bulk push. */
const pushProfile = argv.includes('--cpu-prof-push') ? arg('--cpu-prof-push', 'push.cpuprofile') : undefined;
/** `--cpu-prof-single FILE`: the same for the single pushes. */
const singleProfile = argv.includes('--cpu-prof-single') ? arg('--cpu-prof-single', 'single.cpuprofile') : undefined;

const ticks = 100; // USER_HZ on Linux

/** CPU seconds (user + system) of every process whose command line names a PostgreSQL server process. */
function postgresCpu(): number {
  let total = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm !== 'postgres' && !comm.startsWith('postgres')) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / ticks;
    } catch {
      // the process ended between readdir and read
    }
  }
  return total;
}

interface Sample {
  wallS: number;
  nodeCpuS: number;
  pgCpuS: number;
  walMB: number;
}

async function measure(adminUrl: string, run: () => Promise<void>): Promise<Sample> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  const [w0] = await admin<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
  const cpu0 = process.cpuUsage();
  const pg0 = postgresCpu();
  const t0 = nowUs();
  await run();
  const wallS = (nowUs() - t0) / 1e6;
  const pg1 = postgresCpu();
  const cpu1 = process.cpuUsage(cpu0);
  const [w] = await admin<{ bytes: string }[]>`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${w0!.lsn}::pg_lsn)::text as bytes`;
  await admin.end();
  return { wallS, nodeCpuS: (cpu1.user + cpu1.system) / 1e6, pgCpuS: pg1 - pg0, walMB: Number(w!.bytes) / 1e6 };
}

function print(label: string, s: Sample, n = jobs): void {
  const rate = Math.round(n / s.wallS);
  console.log(
    `${label.padEnd(28)} ${String(rate).padStart(7)} jobs/s  wall ${s.wallS.toFixed(2)} s  ` +
      `node CPU ${s.nodeCpuS.toFixed(2)} s (${((s.nodeCpuS / s.wallS) * 100).toFixed(0)}%, ${((s.nodeCpuS / n) * 1e6).toFixed(1)} µs/job)  ` +
      `PostgreSQL CPU ${s.pgCpuS.toFixed(2)} s (${((s.pgCpuS / s.wallS) * 100).toFixed(0)}%, ${((s.pgCpuS / n) * 1e6).toFixed(1)} µs/job)  ` +
      `WAL ${s.walMB.toFixed(0)} MB (${((s.walMB * 1e6) / n).toFixed(0)} B/job)`,
  );
}

async function docketRound(server: Server, round: number): Promise<void> {
  const db = `profile_docket_${process.pid}_${round}`;
  const url = await createDatabase(server, db);
  const core = await loadDocket();
  const app = new core.Docket({ connection: url });
  await app.migrate();
  if (withoutOpsIndexes) {
    const ddl = postgres(url, { max: 1, onnotice: () => {} });
    await ddl`DROP INDEX docket.jobs_attention_idx, docket.jobs_created_brin`;
    await ddl`DROP STATISTICS docket.jobs_queue_state_stats`;
    await ddl.end();
  }
  let done = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  // Pushed with { i } (the measured jobs) and { h } (the history seeded before them).
  const noop = core.defineJob<{ i?: number; h?: number }>(DOCKET_JOB_OPTIONS, async () => {
    if (++done === jobs) finish();
  });
  if (history > 0) {
    for (let i = 0; i < history; i += 20_000) {
      await app.pushMany(Array.from({ length: Math.min(20_000, history - i) }, (_, k) => noop.withArgs({ h: i + k })));
    }
    const seed = postgres(url, { max: 1, onnotice: () => {} });
    await seed`update docket.jobs set state = 'succeeded', attempt = 1, started_at = now(), finished_at = now()`;
    await seed`vacuum analyze docket.jobs`;
    await seed`checkpoint`;
    await seed.end();
  }
  const pushed = await profiled(pushProfile, () =>
    measure(server.adminUrl, async () => {
      for (let i = 0; i < jobs; i += 20_000) {
        await app.pushMany(Array.from({ length: Math.min(20_000, jobs - i) }, (_, k) => noop.withArgs({ i: i + k })));
      }
    }),
  );
  print(`Docket pushMany, round ${round}`, pushed);
  const check = postgres(url, { max: 1, onnotice: () => {} });
  await check`vacuum analyze docket.jobs`;
  const worker = new core.Worker(app, { jobs: [noop], queues: { [DOCKET_QUEUE]: DOCKET_WORKER_QUEUE_OPTIONS } });
  const sample = await profiled(cpuProfile, () =>
    measure(server.adminUrl, async () => {
      await worker.start();
      await finished;
      for (;;) {
        if ((await docketRemaining(check)) === 0) break;
        await new Promise((r) => setTimeout(r, 1));
      }
    }),
  );
  print(`Docket, round ${round}`, sample);
  await worker.stop();
  // A fresh app, as a producer process has: nothing listens on the database.
  await app.close();
  const producer = new core.Docket({ connection: url });
  await producer.push(noop.withArgs({ i: -1 }));
  const single = await profiled(singleProfile, () =>
    measure(server.adminUrl, async () => {
      for (let i = 0; i < singles; i++) await producer.push(noop.withArgs({ i }));
    }),
  );
  await producer.close();
  if (singles > 0) print(`Docket push ×${singles}, round ${round}`, single, singles);
  await check.end();
  await dropDatabase(server, db);
}

async function bareRound(server: Server, round: number): Promise<void> {
  const db = `profile_bare_${process.pid}_${round}`;
  const sql = await bareSetup(await createDatabase(server, db));
  const pushed = await measure(server.adminUrl, async () => {
    for (let i = 0; i < jobs; i += 20_000) {
      const args = Array.from({ length: Math.min(20_000, jobs - i) }, (_, k) => JSON.stringify({ i: i + k }));
      await sql`insert into bare_jobs (args) select a::jsonb from unnest(${args}::text[]) as a`;
    }
  });
  print(`bare insert, round ${round}`, pushed);
  const sample = await measure(server.adminUrl, async () => {
    await bareDrain(sql, jobs);
  });
  const single = await measure(server.adminUrl, async () => {
    for (let i = 0; i < singles; i++) await sql`insert into bare_jobs (args) values (${JSON.stringify({ i })}::text::jsonb)`;
  });
  print(`bare loop ×2, round ${round}`, sample);
  if (singles > 0) print(`bare one-row insert ×${singles}, round ${round}`, single, singles);
  await sql.end();
  await dropDatabase(server, db);
}

const server = await startServer((line) => console.log(line));
try {
  console.log(`drain of ${jobs} jobs${history ? ` with ${history} finished jobs in the table` : ''}; ${server.origin}`);
  for (let r = 1; r <= rounds; r++) {
    await docketRound(server, r);
    if (!skipBare) await bareRound(server, r);
  }
} finally {
  await server.stop();
}
