import { InvalidJobOptionError } from './errors.js';
import { describe, rejectUnknownKeys } from './options.js';

/** A class of errors, for `retryOn` and `noRetry`: matched with `instanceof`, subclasses included. */
export type ErrorClass = abstract new (...args: never[]) => Error;
/** Errors a rule applies to: error classes (matched with instanceof) or a predicate. */
export type ErrorMatcher = readonly ErrorClass[] | ((error: unknown) => boolean);

/**
 * How a failed attempt is retried (a job definition's `retry` option): the delay before the next
 * attempt and which errors are worth another one. The number of attempts is `maxAttempts`.
 */
export interface RetryOptions {
  /** 'exponential' (default, with jitter), 'fixed', or a function of the attempt (1-based) and error giving the delay in ms. */
  backoff?: 'exponential' | 'fixed' | ((attempt: number, error: unknown) => number);
  /** Base delay for exponential backoff, or the delay for fixed backoff. Default 1000 ms. */
  delayMs?: number;
  /** Cap on the delay. Default one hour. */
  maxDelayMs?: number;
  /** Randomise each delay by ±25% so retries of many jobs spread out. Default true. */
  jitter?: boolean;
  /** Only errors that match are retried (Celery's autoretry_for). Default: all errors. */
  retryOn?: ErrorMatcher;
  /** Errors that match fail the job at once, whatever attempts are left. */
  noRetry?: ErrorMatcher;
}

const RETRY_KEYS = ['backoff', 'delayMs', 'maxDelayMs', 'jitter', 'retryOn', 'noRetry'] as const;

export function validateRetry(where: string, retry: RetryOptions | undefined): RetryOptions {
  if (retry === undefined) return {};
  rejectUnknownKeys(`${where}.retry`, retry, RETRY_KEYS);
  const { backoff, delayMs, maxDelayMs, retryOn, noRetry } = retry;
  if (backoff !== undefined && backoff !== 'exponential' && backoff !== 'fixed' && typeof backoff !== 'function') {
    throw new InvalidJobOptionError(`${where}.retry.backoff must be 'exponential', 'fixed' or a function, got ${describe(backoff)}.`);
  }
  for (const [key, value] of [
    ['delayMs', delayMs],
    ['maxDelayMs', maxDelayMs],
  ] as const) {
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < 0)) {
      throw new InvalidJobOptionError(`${where}.retry.${key} must be a number of milliseconds ≥ 0, got ${describe(value)}.`);
    }
  }
  for (const [key, value] of [
    ['retryOn', retryOn],
    ['noRetry', noRetry],
  ] as const) {
    if (value !== undefined && typeof value !== 'function' && !Array.isArray(value)) {
      throw new InvalidJobOptionError(`${where}.retry.${key} must be an array of error classes or a predicate function.`);
    }
  }
  return retry;
}

function matches(matcher: ErrorMatcher, error: unknown): boolean {
  if (typeof matcher === 'function') return (matcher as (error: unknown) => boolean)(error);
  return matcher.some((cls) => error instanceof cls);
}

/** Whether a failed attempt may be retried by the policy (attempts left is checked by the caller). */
export function isRetryable(retry: RetryOptions, error: unknown): boolean {
  if (retry.noRetry && matches(retry.noRetry, error)) return false;
  if (retry.retryOn && !matches(retry.retryOn, error)) return false;
  return true;
}

/** Delay before the next attempt after `attempt` (1-based) failed. */
export function retryDelayMs(retry: RetryOptions, attempt: number, error: unknown): number {
  const base = retry.delayMs ?? 1000;
  const max = retry.maxDelayMs ?? 3_600_000;
  let delay: number;
  if (typeof retry.backoff === 'function') {
    delay = retry.backoff(attempt, error);
    if (!Number.isFinite(delay) || delay < 0) delay = base;
    return Math.min(delay, max);
  }
  delay = retry.backoff === 'fixed' ? base : base * 2 ** Math.min(attempt - 1, 30);
  if (retry.jitter !== false) delay *= 0.75 + Math.random() * 0.5;
  return Math.round(Math.min(delay, max));
}
