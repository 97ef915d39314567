/**
 * The summaries the companion scripts write with `--json` (plugins-drain, handoff, sustained) and
 * `pnpm bench` reads back into its targets table (`companions.ts`): one definition for the writer
 * and the reader.
 */
import { writeFileSync } from 'node:fs';

export interface PluginsSummary {
  jobs: number;
  rounds: number;
  /** Per configuration: median jobs/s, its ratio to `none`, `none`'s CPU per job over its own, buffer accesses per job. */
  configs: Record<string, { rate: number; ratio: number; cpuRatio: number; blocks: number }>;
}

export interface HandoffSummary {
  samples: number;
  plain: { p50: number; p99: number };
  handoff: { p50: number; p99: number };
}

/** One interval of a sustained run. */
export interface SustainedInterval {
  from: number;
  offered: number;
  completed: number;
  p50: number;
  p99: number;
  max: number;
  heapMb: number;
  indexMb: number;
  dead: number;
  pending: number;
}

/** What the held transaction did to the table, and how fast vacuum caught up once it ended. */
export interface HeldXmin {
  from: number;
  to: number;
  deadBefore: number;
  deadAtEnd: number;
  deadPeak: number;
  heapBeforeMb: number;
  heapAtEndMb: number;
  heapLastMb: number;
  /** Seconds from the end of the transaction to the dead tuples' return near their level before; null: not by the end of the run. */
  backAfterS: number | null;
}

export interface SustainedRun {
  intervals: SustainedInterval[];
  held: HeldXmin | null;
  /** Jobs pushed but not finished when the pushing stopped. */
  unfinished: number;
}

export interface SustainedSummary {
  rate: number;
  /** The calibrated drain (jobs/s), or null when `--rate` fixed the rate. */
  drain: number | null;
  minutes: number;
  intervalS: number;
  pruneAfterS: number;
  holdS: number;
  runs: Record<string, SustainedRun>;
}

/** Writes a summary where `--json` asked for it (nothing without the option). */
export function writeSummary(path: string | undefined, summary: PluginsSummary | HandoffSummary | SustainedSummary): void {
  if (path) writeFileSync(path, JSON.stringify(summary, null, 2));
}
