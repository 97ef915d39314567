/**
 * `ctx.progress(value, data)`: what a report may hold, and the JSON it is stored as in
 * `jobs.progress`. The same checks run wherever a handler runs (this event loop, a worker thread, a
 * child process), so a bad report throws in the handler, at the call.
 */
import { InvalidOptionError } from './errors.js';
import { toJsonText } from './json.js';
import { describe } from './options.js';
import type { JobProgress } from './types.js';

/** Largest `data` a report may carry, in characters of its JSON text (a report is written often). */
export const MAX_PROGRESS_DATA_LENGTH = 65_536;

/** A checked report: the value and the data as JSON text (null without data). */
export interface ProgressReport {
  readonly value: number;
  readonly dataText: string | null;
}

/** Checks `ctx.progress(value, data)`'s arguments; throws InvalidOptionError or ArgsNotSerializableError. */
export function checkProgress(value: unknown, data: unknown): ProgressReport {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) {
    throw new InvalidOptionError(`ctx.progress(value, data): value must be a percentage from 0 to 100, got ${describe(value)}.`, {
      details: { option: 'value' },
    });
  }
  if (data === undefined || data === null) return { value, dataText: null };
  const dataText = toJsonText(data, 'The data of ctx.progress(value, data)');
  if (dataText.length > MAX_PROGRESS_DATA_LENGTH) {
    throw new InvalidOptionError(
      `ctx.progress(value, data): data must be at most ${MAX_PROGRESS_DATA_LENGTH} characters as JSON, got ${dataText.length}; report a summary, and keep large output for the result.`,
      { details: { option: 'data' } },
    );
  }
  return { value, dataText };
}

/** The JSON text stored in `jobs.progress` for a report of `attempt` made at `at`. */
export function progressText(report: ProgressReport, attempt: number, at: Date): string {
  return `{"value":${report.value},"data":${report.dataText ?? 'null'},"attempt":${attempt},"at":"${at.toISOString()}"}`;
}

/** `jobs.progress` as read back (jsonb, so already parsed) as a `JobProgress`. */
export function toJobProgress(stored: unknown): JobProgress | null {
  if (stored === null || typeof stored !== 'object') return null;
  const { value, data, attempt, at } = stored as { value: number; data: JobProgress['data']; attempt: number; at: string };
  return { value, data: data ?? null, attempt, at: new Date(at) };
}
