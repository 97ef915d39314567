import { JobCancelledError, ResultNotSerializableError, UnknownJobError, WorkerShutdownError } from '../errors.js';

import type { JobDefinition } from '../job-definition.js';
import { toJsonText } from '../json.js';
import { isRetryable, retryDelayMs } from '../retry.js';
import { describeThrown } from '../thrown.js';
import type { JobError, Outcome, RunningJob } from '../types.js';

/** A thrown value as a job's error record (a non-Error throw as what it is: see thrown.ts). */
export function toJobError(error: unknown, attempt: number): JobError {
  const { name, message, code, stack } = describeThrown(error);
  const out: JobError = { attempt, name, message, at: new Date().toISOString() };
  if (code !== undefined) out.code = code;
  if (stack !== undefined) out.stack = stack;
  return out;
}

/** The outcome of an attempt that returned `result`. */
export function successOutcome(job: RunningJob, result: unknown): Outcome {
  if (result === undefined || result === null) return { state: 'succeeded', result: null };
  try {
    toJsonText(
      result,
      () => `The result of job '${job.name}' (${job.id})`,
      (message) => new ResultNotSerializableError(message),
    );
  } catch (error) {
    return { state: 'failed', error: toJobError(error, job.attempt) };
  }
  return { state: 'succeeded', result: result === undefined ? null : result };
}

/**
 * The outcome of an attempt that threw. `null` means "give the job back" (worker shutdown): the
 * attempt is not spent.
 */
export function failureOutcome(job: RunningJob, definition: JobDefinition | undefined, error: unknown): Outcome | null {
  if (error instanceof WorkerShutdownError) return null;
  const jobError = toJobError(error, job.attempt);
  if (error instanceof JobCancelledError) return { state: 'cancelled', error: jobError };
  if (error instanceof UnknownJobError || !definition) return { state: 'failed', error: jobError };
  const attemptsLeft = job.attempt < job.maxAttempts;
  // A limit breach is retried like any failure (the next attempt may fit); `noRetry` may exclude it.
  const retryable = attemptsLeft && isRetryable(definition.retry, error);
  if (!retryable) return { state: 'failed', error: jobError };
  const delay = retryDelayMs(definition.retry, job.attempt, error);
  return { state: 'retry', error: jobError, retryAt: new Date(Date.now() + delay) };
}
