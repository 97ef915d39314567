/**
 * The targets that have their own scripts, run by `pnpm bench` so that one run prints every target:
 * the plugin tax (`plugins-drain`), the workflow hand-off (`handoff`) and sustained load
 * (`sustained`). Each script runs as a child process against the bench's own server (its
 * `DATABASE_URL` is the server's maintenance database), prints its own report (indented into the
 * bench's log), and writes a summary (`--json`) that becomes rows of the targets table here.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from './db.js';
import { benchDir } from './pkg.js';
import type { TargetRow } from './report.js';
import { fmt } from './stats.js';
import type { HandoffSummary, PluginsSummary, SustainedInterval, SustainedSummary } from './summaries.js';

export type CompanionId = 'plugins' | 'handoff' | 'sustained';

/** Runs `script` with `args` (plus `--json`), its output indented into `log`; returns its summary. */
async function runScript<T>(server: Server, script: string, args: string[], log: (line: string) => void): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'docket-bench-'));
  const json = join(dir, 'summary.json');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', join(benchDir, 'src', `${script}.ts`), ...args, '--json', json], {
      cwd: benchDir,
      env: { ...process.env, DATABASE_URL: server.adminUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const forward = (stream: NodeJS.ReadableStream) => {
      let buffer = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffer += chunk;
        let end = buffer.indexOf('\n');
        while (end >= 0) {
          log(`    ${buffer.slice(0, end)}`);
          buffer = buffer.slice(end + 1);
          end = buffer.indexOf('\n');
        }
      });
      stream.on('end', () => buffer && log(`    ${buffer}`));
    };
    forward(child.stdout);
    forward(child.stderr);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`${script} exited with code ${code}`);
    return JSON.parse(readFileSync(json, 'utf8')) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every plugin installed on plain jobs, and the logs plugin in use, against no plugin (same run). */
export async function pluginTax(server: Server, quick: boolean, rounds: number, log: (line: string) => void): Promise<TargetRow[]> {
  const args = ['--configs', 'none,all,logs-used', '--rounds', String(quick ? 1 : rounds), '--jobs', quick ? '20000' : '50000'];
  const s = await runScript<PluginsSummary>(server, 'plugins-drain', args, log);
  const all = s.configs.all!;
  const used = s.configs['logs-used']!;
  const jobs = s.jobs.toLocaleString('en-US');
  return [
    {
      target: `Every plugin installed, plain jobs: drain ≥ 90% of no plugin (${jobs} jobs, ${s.rounds} round(s))`,
      value: `${fmt(100 * all.ratio, 0)}% (cpu ${fmt(100 * all.cpuRatio, 0)}%)`,
      verdict: all.ratio >= 0.9 ? 'met' : 'missed',
    },
    { target: 'Logs plugin in use (two lines a job): drain against no plugin', value: `${fmt(100 * used.ratio, 0)}%`, verdict: 'reported' },
  ];
}

/** A workflow step's end → its dependent's start, against plain push → start on the same worker. */
export async function handoff(server: Server, quick: boolean, rounds: number, log: (line: string) => void): Promise<TargetRow[]> {
  const args = ['--samples', quick ? '100' : '300', '--rounds', String(quick ? 1 : rounds)];
  const s = await runScript<HandoffSummary>(server, 'handoff', args, log);
  return [
    { target: 'Workflow hand-off p50 ≤ 1.2 ms', value: `${fmt(s.handoff.p50, 2)} ms`, verdict: s.handoff.p50 <= 1.2 ? 'met' : 'missed' },
    {
      target: 'Workflow hand-off p50 ≤ 2 × plain push → start p50',
      value: `${fmt(s.handoff.p50 / s.plain.p50, 2)}×`,
      verdict: s.handoff.p50 <= 2 * s.plain.p50 ? 'met' : 'missed',
    },
    {
      target: 'Workflow hand-off p99 (plain push → start p99 beside it)',
      value: `${fmt(s.handoff.p99, 2)} / ${fmt(s.plain.p99, 2)} ms`,
      verdict: 'reported',
    },
  ];
}

/** A steady offered rate with the pruner running; then the same with the xmin horizon held. */
export async function sustained(server: Server, quick: boolean, log: (line: string) => void): Promise<TargetRow[]> {
  // Quick: one-minute runs (the script's own --quick is two), a 20 s window and hold.
  const args = quick ? ['--quick', '--minutes', '1', '--prune-after', '20', '--hold', '20', '--calibrate', '10000'] : [];
  const s = await runScript<SustainedSummary>(server, 'sustained', args, log);
  const rows: TargetRow[] = [];
  const share = s.drain ? `, ${fmt((100 * s.rate) / s.drain, 0)}% of the drain` : '';
  const label = `${fmt(s.minutes, 0)} min at ${s.rate.toLocaleString('en-US')} jobs/s${share}`;
  /** Jobs run over jobs offered in a run (intervals are of equal length). */
  const keptUp = (list: SustainedInterval[]) => list.reduce((n, i) => n + i.completed, 0) / list.reduce((n, i) => n + i.offered, 0);
  const plain = s.runs.plain;
  if (plain && plain.intervals.length >= 2) {
    const list = plain.intervals;
    const kept = keptUp(list);
    rows.push({
      target: `Sustained (${label}): completed ≥ 99% of offered`,
      value: `${fmt(100 * kept, 1)}%`,
      verdict: kept >= 0.99 ? 'met' : 'missed',
    });
    const first = list[0]!;
    const last = list.at(-1)!;
    rows.push({
      target: 'Sustained: p99 push → start flat (last interval ≤ 1.5 × the first)',
      value: `${fmt(first.p99, 1)} → ${fmt(last.p99, 1)} ms`,
      verdict: last.p99 <= 1.5 * first.p99 ? 'met' : 'missed',
    });
    // Once finished jobs older than the window are deleted, the table holds a window's worth of them.
    const settled = list.filter((i) => i.from >= s.pruneAfterS + s.intervalS);
    if (settled.length >= 2) {
      const size = (i: SustainedInterval) => i.heapMb + i.indexMb;
      const reached = settled[0]!;
      rows.push({
        target: `Sustained: table + indexes stop growing after the pruner's ${s.pruneAfterS} s window (last ≤ 110%)`,
        value: `${fmt(size(reached), 1)} → ${fmt(size(last), 1)} MB`,
        verdict: size(last) <= 1.1 * size(reached) ? 'met' : 'missed',
      });
      const half = Math.ceil(settled.length / 2);
      const early = Math.max(...settled.slice(0, half).map((i) => i.dead));
      const late = Math.max(...settled.slice(half).map((i) => i.dead));
      rows.push({
        target: 'Sustained: dead tuples bounded (max of the later half ≤ 1.5 × the earlier half)',
        value: `${fmt(early, 0)} → ${fmt(late, 0)}`,
        verdict: late <= 1.5 * Math.max(early, 10_000) ? 'met' : 'missed',
      });
    }
  }
  const xmin = s.runs.xmin;
  if (xmin?.held) {
    const h = xmin.held;
    rows.push({
      target: `Held xmin (${s.holdS} s): completed ÷ offered over the run`,
      value: `${fmt(100 * keptUp(xmin.intervals), 1)}%`,
      verdict: 'reported',
    });
    rows.push({
      target: 'Held xmin: dead tuples at their peak, and back near the level before',
      value: `${fmt(h.deadPeak, 0)}, ${h.backAfterS === null ? 'not by the end' : `${fmt(h.backAfterS, 0)} s after`}`,
      verdict: 'reported',
    });
  }
  return rows;
}
